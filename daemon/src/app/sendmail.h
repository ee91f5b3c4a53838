// SPDX-License-Identifier: MIT
// app/sendmail: `spoolgate sendmail [-t] [-i] [-f sender] [-F name] [rcpt...]`,
// the interface cron jobs and scripts expect from /usr/sbin/sendmail.
//
// Reads one message from stdin (LF or CRLF lines; with -i a lone "." does not
// end it, without -i it does), makes it canonical (CRLF, dot-stuffed), adds
// Received:, Date:, Message-ID: and From: as needed, and hands it to the
// running daemon over its submission socket (app/submit.h): the daemon
// writes and owns the spool file, whoever runs sendmail, and its 250 means
// durable. With no daemon answering, the spool's owner (and only they)
// commits it to the spool directly, with the same durability (file fsync,
// rename, directory fsync), and the message waits for the next start;
// anyone else gets 75 and nothing is left behind. Exit 0 only once the
// message is durable; 75 (EX_TEMPFAIL) on local trouble or a 4xx, 65
// (EX_DATAERR) on a 5xx or a NUL, 64 (EX_USAGE) on bad input.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "config/config.h"

namespace spoolgate::app {

struct SendmailOptions {
  bool recipients_from_headers = false;  // -t
  bool ignore_dots = false;              // -i / -oi
  std::string sender;                    // -f
  std::string full_name;                 // -F
  std::vector<std::string> recipients;
};

int sendmail(const config::Config& cfg, const SendmailOptions& opt, std::istream& in);

}  // namespace spoolgate::app
