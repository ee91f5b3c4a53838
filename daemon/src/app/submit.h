// SPDX-License-Identifier: MIT
// app/submit: hands one message to the running daemon over its submission
// socket (config submission_socket), for `spoolgate sendmail`.
//
// The conversation is plain SMTP on a blocking unix socket (EHLO, MAIL,
// RCPT per recipient, DATA, the content, QUIT): the daemon's listener
// applies the same checks and durability as for any client, and owns every
// spool file it writes, whoever runs sendmail. The content must already be
// canonical and dot-stuffed. Every wait is bounded.
//
// Nothing is retried here: a refusal or a lost connection is reported, and
// the caller exits non-zero; the daemon never acknowledged such a message.
#pragma once

#include <string>

#include "spool/record.h"

namespace spoolgate::app {

struct Submitted {
  enum class Outcome { Queued, NoDaemon, Refused } outcome = Outcome::NoDaemon;
  std::string detail;  // Queued: the daemon's 250 line; otherwise what went wrong
  int code = 0;        // Refused: the SMTP reply code (0: the connection failed midway)
};

Submitted submit(const std::string& socket_path, const spool::Record& envelope, const std::string& content);

}  // namespace spoolgate::app
