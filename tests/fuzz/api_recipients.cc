// SPDX-License-Identifier: MIT
// api/recipients: any message and any carried recipients.
// Oracles: the body (everything after the header block) is sent as it was;
// every address the sent copy's To:, Cc: and Bcc: fields name is a carried
// recipient; every carried recipient is named by one of them; addresses()
// never returns an item without '@'.
#include <set>
#include <string>

#include "api/recipients.h"
#include "core/text.h"
#include "oracle.h"

using namespace spoolgate;

namespace {

std::size_t body_at(std::string_view m) {
  if (m.starts_with("\r\n")) return 0;
  auto e = m.find("\r\n\r\n");
  return e == std::string_view::npos ? m.size() : e + 2;
}

// The recipient fields' bodies of a header block, split independently of
// the code under test: a field starts at a line not starting with SP/HT.
std::vector<std::string> recipient_fields(std::string_view head) {
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&] {
    auto colon = cur.find(':');
    if (colon != std::string::npos) {
      std::string name = lower(trim(std::string_view(cur).substr(0, colon)));
      if (name == "to" || name == "cc" || name == "bcc") out.push_back(cur.substr(colon + 1));
    }
    cur.clear();
  };
  std::size_t pos = 0;
  while (pos < head.size()) {
    auto nl = head.find("\r\n", pos);
    std::size_t end = nl == std::string_view::npos ? head.size() : nl + 2;
    std::string_view line = head.substr(pos, end - pos);
    if (!(line.starts_with(" ") || line.starts_with("\t"))) flush();
    cur += line;
    pos = end;
  }
  flush();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  std::vector<std::string> carried;
  std::set<std::string> want;
  for (int n = in.ConsumeIntegralInRange<int>(0, 4); n > 0; --n) {
    std::string local = in.ConsumeBytesAsString(in.ConsumeIntegralInRange<size_t>(1, 3));
    std::string a;
    for (char c : local) a += static_cast<char>('a' + static_cast<unsigned char>(c) % 26);
    a += "@x.example";
    if (want.insert(a).second) carried.push_back(a);
  }
  std::string content = in.ConsumeRemainingBytesAsString();
  for (const auto& a : spoolgate::api::addresses(content)) SG_REQUIRE(a.find('@') != std::string::npos);
  std::string out = spoolgate::api::for_recipients(content, carried);
  std::size_t in_body = body_at(content);
  SG_REQUIRE(out.size() >= content.size() - in_body);
  SG_REQUIRE(out.compare(out.size() - (content.size() - in_body), std::string::npos, content, in_body) == 0);
  std::set<std::string> named;
  std::string_view head = std::string_view(out).substr(0, out.size() - (content.size() - in_body));
  for (const auto& f : recipient_fields(head))
    for (const auto& a : spoolgate::api::addresses(f)) {
      SG_REQUIRE(want.count(lower(a)));
      named.insert(lower(a));
    }
  SG_REQUIRE(named == want);
  return 0;
}
