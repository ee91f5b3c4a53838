// SPDX-License-Identifier: MIT
// Server replies, multiline and split anywhere, then EHLO capabilities.
// Oracles: the same replies whatever the split; every reply has a code in
// 200..599 (RFC 5321 4.2) and at most kMaxLines lines of at most kMaxLine.
#include "oracle.h"
#include "smtp/reply.h"

using namespace spoolgate;

namespace {
std::vector<smtp::Reply> parse(const std::vector<std::string>& pieces, bool& failed) {
  smtp::ReplyParser p;
  std::vector<smtp::Reply> out;
  failed = false;
  for (const auto& piece : pieces) {
    if (!p.feed(piece)) {
      failed = true;
      break;
    }
    while (auto r = p.next()) out.push_back(*r);
  }
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  std::vector<std::string> pieces = fuzz::chunks(in);
  std::string whole;
  for (const auto& p : pieces) whole += p;
  bool failed_split = false, failed_whole = false;
  auto split = parse(pieces, failed_split);
  auto one = parse({whole}, failed_whole);
  SG_REQUIRE(failed_split == failed_whole);
  // After a protocol error the session ends: how many complete replies came
  // out before it depends on the reads, so only error-free streams compare.
  if (!failed_split) SG_REQUIRE(split.size() == one.size());
  for (size_t i = 0; i < split.size(); ++i) {
    const smtp::Reply& r = split[i];
    SG_REQUIRE(r.code >= 200 && r.code <= 599);
    if (!failed_split) SG_REQUIRE(r.code == one[i].code && r.lines == one[i].lines);
    SG_REQUIRE(r.lines.size() <= smtp::ReplyParser::kMaxLines);
    for (const auto& l : r.lines) SG_REQUIRE(l.size() <= smtp::ReplyParser::kMaxLine);
    smtp::Capabilities caps = smtp::Capabilities::parse(r);
    for (const auto& m : caps.auth) SG_REQUIRE(!m.empty() && m.find(' ') == std::string::npos);
    (void)r.summary();
  }
  return 0;
}
