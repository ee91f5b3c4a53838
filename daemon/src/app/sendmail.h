// SPDX-License-Identifier: MIT
// app/sendmail: `spoolgate sendmail [-t] [-i] [-f sender] [-F name] [rcpt...]`,
// the interface cron jobs and scripts expect from /usr/sbin/sendmail.
//
// Reads one message from stdin (LF or CRLF lines; with -i a lone "." does not
// end it, without -i it does), makes it canonical (CRLF, dot-stuffed), adds
// Received:, Date:, Message-ID: and From: as needed, and commits it to the
// spool with the same durability as SMTP mail (file fsync, rename, directory
// fsync). Then it tells the running daemon through the control socket
// ("inject ID") so delivery starts at once; with no daemon running the
// message waits in the spool for the next start. Exit 0 only once the message
// is durable; 75 (EX_TEMPFAIL) on local trouble, 64 (EX_USAGE) on bad input.
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
