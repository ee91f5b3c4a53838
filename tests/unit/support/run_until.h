// SPDX-License-Identifier: MIT
// Runs a loop until a condition holds (polled every 5 ms) or 30 s pass: a
// failing test then fails on its next check instead of hanging (unit tests).
#pragma once

#include "loop/loop.h"

template <class F>
void run_until(spoolgate::loop::Loop& loop, F done) {
  using spoolgate::Millis;
  auto guard = spoolgate::loop::Timer::create(loop, [&] { loop.stop(); });
  auto poll = spoolgate::loop::Timer::create(loop, [&] {
    if (done()) loop.stop();
  });
  guard->start(Millis(30'000));
  poll->start(Millis(0), Millis(5));
  loop.run();
}
