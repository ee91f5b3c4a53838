// SPDX-License-Identifier: MIT
// api/answer: any HTTP answer from an API upstream (status, headers, body).
// Oracles: the reply is one printable line whose class is its row's
// (smtp/trouble.h) whatever the API's text says, a Retry-After wait lies within [0, 1 day], and the
// request id is short and printable; api/claims reads any text as a token
// without failing, and the scopes it finds are single words.
#include <string>

#include "api/answer.h"
#include "api/claims.h"
#include "oracle.h"
#include "smtp/trouble.h"

using namespace spoolgate;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  http::Response r;
  r.status = in.ConsumeIntegralInRange<long>(0, 700);
  auto kind = in.ConsumeBool() ? api::Kind::Graph : api::Kind::Gmail;
  for (int n = in.ConsumeIntegralInRange<int>(0, 3); n > 0; --n) {
    static const char* names[] = {"retry-after: ", "request-id: ", "x-request-id: "};
    r.headers.push_back(names[in.ConsumeIntegralInRange<int>(0, 2)] +
                        in.ConsumeBytesAsString(in.ConsumeIntegralInRange<size_t>(0, 40)));
  }
  std::int64_t now = in.ConsumeIntegralInRange<std::int64_t>(0, 4'000'000'000);
  r.body = in.ConsumeRemainingBytesAsString();
  auto m = api::meaning(kind, r, now);
  std::string line = m.reply.summary();
  SG_REQUIRE(m.reply.lines.size() == 1);
  for (char c : line) SG_REQUIRE(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
  for (char c : m.request_id) SG_REQUIRE(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
  SG_REQUIRE(m.request_id.size() <= 100);
  static const smtp::Trouble rows[] = {smtp::Trouble::Positive,  smtp::Trouble::Misconfigured, smtp::Trouble::Quota,
                                       smtp::Trouble::Throttled, smtp::Trouble::Misconfigured, smtp::Trouble::Permanent,
                                       smtp::Trouble::Permanent, smtp::Trouble::Temporary};
  SG_REQUIRE(m.row >= 1 && m.row <= 8);
  SG_REQUIRE(m.trouble == rows[m.row - 1]);
  // The reply's code agrees with its class (a DSN and a log line say the same).
  SG_REQUIRE(m.reply.positive() == (m.trouble == smtp::Trouble::Positive));
  SG_REQUIRE(m.reply.temporary() == (m.trouble == smtp::Trouble::Temporary || m.trouble == smtp::Trouble::Throttled));
  if (m.row == 1) SG_REQUIRE(r.status >= 200 && r.status < 300);
  if (m.retry_after) SG_REQUIRE(m.retry_after->count() >= 0 && m.retry_after->count() <= 86'400'000);
  // The body read as an access token: claims, when any, are words.
  if (auto c = api::claims(r.body)) {
    for (const auto& s : c->scopes) SG_REQUIRE(!s.empty() && s.find(' ') == std::string::npos);
    for (const auto& s : c->roles) SG_REQUIRE(!s.empty());
  }
  return 0;
}
