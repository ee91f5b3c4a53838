// SPDX-License-Identifier: MIT
// pacing/pacer: any text as a <spool>/pacing/<upstream> counters file.
// Oracles: a file that decodes encodes to a text that decodes to the same
// encoding (nothing lost or invented); a refusal leaves no counters; a
// full window always opens later than now, and counting a start (or
// moving it later: restamp) never makes a window open sooner.
#include <string>

#include "oracle.h"
#include "pacing/pacer.h"

using namespace spoolgate;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  pacing::Limits l;
  l.messages_per_second = in.ConsumeIntegralInRange<std::uint64_t>(0, 5);
  l.messages_per_minute = in.ConsumeIntegralInRange<std::uint64_t>(0, 40);
  l.messages_per_day = in.ConsumeIntegralInRange<std::uint64_t>(0, 1000);
  l.recipients_per_day = in.ConsumeIntegralInRange<std::uint64_t>(0, 1000);
  std::int64_t now = in.ConsumeIntegralInRange<std::int64_t>(0, 4'000'000'000'000);
  std::uint64_t rcpts = in.ConsumeIntegralInRange<std::uint64_t>(1, 2000);
  std::int64_t later = in.ConsumeIntegralInRange<std::int64_t>(0, 600'000);
  std::string text = in.ConsumeRemainingBytesAsString();
  pacing::Pacer p(l);
  auto r = p.decode(text, now);
  if (!r) {
    SG_REQUIRE(p.encode() == "SPOOLGATE-PACING 1\n");
    return 0;
  }
  std::string e = p.encode();
  pacing::Pacer q(l);
  SG_REQUIRE(q.decode(e, now) && q.encode() == e);
  auto w = p.check(now, rcpts);
  if (w) SG_REQUIRE(w->until_ms > now && !w->reason.empty());
  std::int64_t stamp = p.count(now, rcpts);
  SG_REQUIRE(stamp >= now);
  auto after = p.check(now, rcpts);
  if (w) SG_REQUIRE(after && after->until_ms >= w->until_ms);
  // The provider took it later: the counts stay, the windows open no sooner.
  auto before = p.usage(now);
  p.restamp(stamp, rcpts, stamp + later);
  auto moved = p.usage(now);
  SG_REQUIRE(moved.messages_day == before.messages_day && moved.recipients_day == before.recipients_day);
  auto again = p.check(now, rcpts);
  if (after) SG_REQUIRE(again && again->until_ms >= after->until_ms);
  pacing::Pacer r2(l);
  SG_REQUIRE(r2.decode(p.encode(), now) && r2.encode() == p.encode());
  return 0;
}
