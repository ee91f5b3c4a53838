// SPDX-License-Identifier: MIT
// api/recipients: the copy of a message an HTTP API upstream sends, so that
// it reaches exactly the envelope recipients the attempt carries.
//
// Graph's MIME sendMail and Gmail's messages.send take their recipients
// from the To:, Cc: and Bcc: fields, not from an envelope. The envelope is
// the truth (a device's To: may name people the relay must not mail, a
// recipient may have failed or been delivered in an earlier attempt, or go
// through another upstream), so the copy sent is changed in its header
// block only, and only as far as needed:
//   - a To: or Cc: field whose addresses are all carried stays byte for byte
//     (one that names none stays only when it has no '@' at all, as
//     "undisclosed-recipients:;");
//   - one naming an address that is not carried is rewritten to the carried
//     addresses it names (as bare addresses), or removed when it names none;
//   - every Bcc: field is removed;
//   - one Bcc: field, added at the end of the header block, names the carried
//     recipients that no remaining To: or Cc: names.
// Addresses compare without case. Everything else, the body included, is
// sent as spooled.
//
// Pure; fuzzed (tests/fuzz/api_recipients.cc).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace spoolgate::api {

// The addr-specs of an address-list field body (RFC 5322 3.4): display
// names, comments, quoted strings and group names are skipped, the
// address inside <> taken; folding white space is allowed. Items without
// an '@' are dropped.
std::vector<std::string> addresses(std::string_view field_body);

// content: the message as spooled (CRLF lines; a header block, an empty
// line, the body). carried: the envelope recipients of this attempt.
std::string for_recipients(std::string_view content, const std::vector<std::string>& carried);

}  // namespace spoolgate::api
