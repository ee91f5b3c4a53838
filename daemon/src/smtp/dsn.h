// SPDX-License-Identifier: MIT
// smtp/dsn: delivery status notifications (RFC 3464, RFC 6522
// multipart/report, RFC 3834 Auto-Submitted).
//
// build_dsn() returns the canonical content (CRLF lines, dot-stuffed, see
// smtp/data.h) of a failure report to the original sender: a human-readable
// part, the machine-readable message/delivery-status part (one block per
// failed recipient with its Status and Diagnostic-Code), and the original
// header block as text/rfc822-headers. The report is sent with the null
// reverse-path <>, so a failing report can never produce another one.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace spoolgate::smtp {

struct DsnRecipient {
  std::string address;
  std::string reply;  // "550 5.1.1 no such user" or our own reason
  bool expired = false;
};

struct DsnInput {
  std::string hostname;         // Reporting-MTA
  std::string queue_id;         // of the failed message
  std::string dsn_id;           // of the report (Message-ID, boundary)
  std::string original_sender;  // To:
  std::int64_t arrived = 0;
  std::int64_t now = 0;
  std::vector<DsnRecipient> recipients;
  std::string original_headers;  // canonical (CRLF, stuffed) header block, may be empty
};

std::string build_dsn(const DsnInput& in);
// "5.1.1" from "550 5.1.1 text"; a class-only guess ("5.0.0") when absent.
std::string status_of(std::string_view reply);

}  // namespace spoolgate::smtp
