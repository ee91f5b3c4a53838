// SPDX-License-Identifier: MIT
// api/attachments and api/graph_draft: any message and any limit, then the
// large-message path driven with any answers.
// Oracles: putting every carved part back where it stood gives the message
// again, byte for byte; the draft is within the limit; each attachment is
// its part's base64 decoded; a refusal has a reason. Driving the path: the
// draft's request carries the draft; no upload carries the token; the
// uploads of a file are contiguous ranges that cover it exactly; every URL
// is https; the send comes last and only after every file.
#include <string>

#include "api/attachments.h"
#include "api/graph_draft.h"
#include "core/base64.h"
#include "oracle.h"

using namespace spoolgate;

namespace {

std::string stripped(std::string_view s) {
  std::string out;
  for (char c : s)
    if (c != '\r' && c != '\n' && c != ' ' && c != '\t') out += c;
  return out;
}

void drive(const api::Split& split, FuzzedDataProvider& in) {
  api::GraphDraft g(split, "https://graph.test", "m@x", "c");
  std::size_t files = 0, offset = 0;
  for (int guard = 0; guard < 10'000; ++guard) {
    http::Request r = g.request("TOKEN");
    SG_REQUIRE(r.url.starts_with("https://"));
    bool upload = r.method == "PUT";
    bool authorized = false;
    for (const auto& h : r.headers) authorized |= h == "Authorization: Bearer TOKEN";
    SG_REQUIRE(upload != authorized);
    if (upload) {
      const std::string& bytes = split.carved[files].attachment.bytes;
      std::string range = "Content-Range: bytes " + std::to_string(offset) + "-" +
                          std::to_string(offset + r.body.size() - 1) + "/" + std::to_string(bytes.size());
      bool has_range = false;
      for (const auto& h : r.headers) has_range |= h == range;
      SG_REQUIRE(has_range);
      SG_REQUIRE(r.body == bytes.substr(offset, r.body.size()));
      offset += r.body.size();
      if (offset == bytes.size()) {
        ++files;
        offset = 0;
      }
    } else if (r.url.ends_with("/attachments")) {
      ++files;
    } else if (r.url.ends_with("/messages")) {
      SG_REQUIRE(base64_decode(r.body) == split.draft);
    }
    bool sending = g.sending();
    if (sending) SG_REQUIRE(files == split.carved.size() && r.url.ends_with("/send"));
    http::Response a;
    a.status = 200;
    a.body = in.remaining_bytes() ? in.ConsumeRandomLengthString(200) : R"({"id":"d","uploadUrl":"https://u"})";
    auto next = g.answered(a);
    if (next == api::GraphDraft::Next::Malformed) {
      SG_REQUIRE(!g.reason().empty());
      return;
    }
    if (next == api::GraphDraft::Next::Sent) {
      SG_REQUIRE(sending && !g.discard("TOKEN"));
      return;
    }
  }
  SG_REQUIRE(false);  // the path ends
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  std::size_t most = in.ConsumeIntegralInRange<std::size_t>(0, 4096);
  std::string message = in.ConsumeRandomLengthString(1 << 16);
  auto split = api::split_attachments(message, most);
  if (!split) {
    SG_REQUIRE(!split.error().message().empty());
    SG_REQUIRE(message.size() > most);
    return 0;
  }
  SG_REQUIRE(split->draft.size() <= most || split->carved.empty());
  SG_REQUIRE(split->carved.empty() || message.size() > most);
  std::string rebuilt;
  std::size_t from = 0, pos = 0;
  for (const auto& c : split->carved) {
    SG_REQUIRE(c.at >= pos);
    std::size_t n = c.at - pos;
    rebuilt += split->draft.substr(from, n);
    from += n;
    rebuilt += c.raw;
    pos = c.at + c.raw.size();
    SG_REQUIRE(c.raw.starts_with("--"));
    auto blank = c.raw.find("\r\n\r\n");
    SG_REQUIRE(blank != std::string::npos);
    SG_REQUIRE(base64_decode(stripped(std::string_view(c.raw).substr(blank + 4))) == c.attachment.bytes);
    SG_REQUIRE(!c.attachment.name.empty() && c.attachment.content_type.find('/') != std::string::npos);
  }
  rebuilt += split->draft.substr(from);
  SG_REQUIRE(rebuilt == message);
  if (!split->carved.empty()) drive(*split, in);
  return 0;
}
