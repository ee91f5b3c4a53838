// SPDX-License-Identifier: MIT
// loop::Timer: a timer closed from inside its own callback keeps that
// callback (and what it captured) alive until the callback has returned.
#include <doctest/doctest.h>

#include <csignal>
#include <memory>

#include "loop/loop.h"

using namespace spoolgate;

TEST_SUITE("loop/timer") {
  TEST_CASE("a timer closed by its own callback keeps the callback's captures until it returns") {
    loop::Loop l;
    auto token = std::make_shared<int>(7);
    std::weak_ptr<int> watch = token;
    loop::HandlePtr<loop::Timer> timer;
    bool alive_after_close = false;
    int fired = 0;
    timer = loop::Timer::create(l, [&timer, &alive_after_close, &fired, &watch, token] {
      ++fired;
      timer.reset();  // closes the timer from inside its callback
      alive_after_close = !watch.expired() && *token == 7;
    });
    token.reset();
    timer->start(Millis(1));
    l.run();
    CHECK(fired == 1);
    CHECK(alive_after_close);
    CHECK(watch.expired());  // released in the close callback
    CHECK(l.close() == 0);
  }

  TEST_CASE("a signal handle closed by its own callback keeps its captures until it returns") {
    loop::Loop l;
    auto token = std::make_shared<int>(9);
    std::weak_ptr<int> watch = token;
    loop::HandlePtr<loop::Signal> sig;
    bool alive_after_close = false;
    sig = loop::Signal::create(l, SIGUSR2, [&sig, &alive_after_close, &watch, token] {
      sig.reset();
      alive_after_close = !watch.expired() && *token == 9;
    });
    token.reset();
    auto kick = loop::Timer::create(l, [] { ::raise(SIGUSR2); });
    kick->start(Millis(1));
    l.run();
    kick.reset();
    CHECK(alive_after_close);
    CHECK(watch.expired());
    CHECK(l.close() == 0);
  }
}
