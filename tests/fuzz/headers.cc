// SPDX-License-Identifier: MIT
// Header fix-ups (Received, Date, Message-ID, From rewriting) on arbitrary
// canonical header blocks, split anywhere. Oracles: the same output however
// the input is split; canonical in, canonical out; the body passes unchanged.
#include "oracle.h"
#include "smtp/data.h"
#include "smtp/headers.h"

using namespace spoolgate;

namespace {
std::string fix(const smtp::HeaderFixSettings& s, const std::vector<std::string>& pieces) {
  smtp::HeaderFixer f(s);
  std::string out;
  for (const auto& p : pieces) f.feed(p, out);
  f.finish(out);
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  smtp::HeaderFixSettings s;
  s.received = in.ConsumeBool() ? "Received: from dev by relay.test; Tue, 14 Nov 2023 22:13:20 +0000\r\n" : "";
  s.add_missing = in.ConsumeBool();
  s.rewrite_from = in.ConsumeBool() ? "alerts@example.com" : "";
  s.message_id = "ID@relay.test";
  s.now = 1700000000;
  s.max_header_bytes = in.ConsumeIntegralInRange<size_t>(16, 8192);
  // Canonical content, as the DATA decoder hands it over.
  smtp::DataDecoder d;
  std::string content;
  d.decode(in.ConsumeRemainingBytesAsString(), content);
  FuzzedDataProvider cut(data, size);
  std::vector<std::string> pieces;
  for (size_t pos = 0; pos < content.size();) {
    size_t n = cut.ConsumeIntegralInRange<size_t>(1, 97);
    pieces.push_back(content.substr(pos, n));
    pos += n;
  }
  std::string a = fix(s, pieces);
  std::string b = fix(s, {content});
  SG_REQUIRE(a == b);
  smtp::HeaderFixer probe(s);
  std::string sink;
  probe.feed(content, sink);
  if (!probe.too_big()) {
    SG_REQUIRE(fuzz::canonical(a));
    size_t end = content.find("\r\n\r\n");
    if (end != std::string::npos) {
      std::string body = content.substr(end + 4);
      SG_REQUIRE(a.size() >= body.size() && a.compare(a.size() - body.size(), body.size(), body) == 0);
    }
  }
  return 0;
}
