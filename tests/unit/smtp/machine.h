// SPDX-License-Identifier: MIT
// tests/unit/smtp: a server machine driven by hand, for the tests of one
// feature at a time (STARTTLS, AUTH): feed bytes, get the event it stopped
// at and what it said; a message is committed at once.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "smtp/server.h"

namespace spoolgate::smtp::test {

struct Machine {
  explicit Machine(const std::function<void(ServerSettings&)>& tweak) {
    ServerSettings s;
    s.hostname = "relay.test";
    s.client_address = "192.0.2.1";
    s.now = [] { return std::int64_t{1795003200}; };
    s.new_id = [] { return std::string("QID1"); };
    tweak(s);
    server = std::make_unique<Server>(s);
    server->greet();
    (void)server->take_output();
  }
  std::pair<EventType, std::string> feed(const std::string& bytes) {
    server->receive(bytes);
    EventType e = server->next();
    while (e == EventType::MessageBegin || e == EventType::Content || e == EventType::MessageEnd) {
      (void)server->take_content();
      e = server->next();
    }
    if (e == EventType::Wait) {
      server->message_committed();
      e = server->next();
    }
    return {e, server->take_output()};
  }
  std::unique_ptr<Server> server;
};

}  // namespace spoolgate::smtp::test
