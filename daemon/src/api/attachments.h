// SPDX-License-Identifier: MIT
// api/attachments: a message too large for one Graph request, taken apart
// the way Graph's large-message path needs it: the message without its
// largest attachments (the draft, one MIME request of at most
// kGraphRequestMax bytes before base64) and those attachments, decoded,
// each then added to the draft by its own requests (a POST of the file
// under 3 MB, an upload session above), and the draft sent.
//
// What is taken out: leaf parts (at any depth of multipart nesting) whose
// Content-Transfer-Encoding is base64 and that are attachments (a file
// name, Content-Disposition: attachment, or a type other than text/*),
// largest first, only as many as it takes to bring the rest under the
// limit. Everything else stays byte for byte; a part whose base64 does not
// decode cleanly stays too. A part taken out goes with its delimiter line,
// so the draft is well-formed MIME. Graph rebuilds the MIME of what it
// sends from the draft and the attachments: the file bytes, names, types
// and the text are what they were, the MIME structure is Graph's.
//
// Pure; fuzzed (tests/fuzz/api_attachments.cc: putting every part back
// where it stood gives the message again, byte for byte).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace spoolgate::api {

struct Attachment {
  std::string name;          // the file name (Content-Disposition's, else Content-Type's name), or "attachment-N"
  std::string content_type;  // "type/subtype" in lower case
  std::string content_id;    // without the <>; "" when none
  bool is_inline = false;    // Content-Disposition: inline with a Content-ID (an image the HTML shows)
  std::string bytes;         // decoded
};

struct Carved {
  std::size_t at = 0;  // where raw stood in the message
  std::string raw;     // the bytes taken out: the delimiter line and the part
  Attachment attachment;
};

struct Split {
  std::string draft;           // the message without the carved parts
  std::vector<Carved> carved;  // in the order they stood
};

// Errc::Invalid (with the reason for the DSN) when even without every
// attachment that can be taken out the message is larger than draft_max.
Result<Split> split_attachments(std::string_view message, std::size_t draft_max);

}  // namespace spoolgate::api
