// SPDX-License-Identifier: MIT
// An http::Fetcher that keeps each request and answers when the test says
// (unit tests of the token manager and the notification sender).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "http/fetcher.h"

struct FakeFetcher final : spoolgate::http::Fetcher {
  struct Sent {
    std::uint64_t id;
    spoolgate::http::Request req;
    Done done;
  };
  std::vector<Sent> sent;
  std::vector<std::uint64_t> cancelled;
  std::uint64_t next = 0;
  std::uint64_t send(spoolgate::http::Request r, Done done) override {
    sent.push_back({++next, std::move(r), std::move(done)});
    return next;
  }
  void cancel(std::uint64_t id) override { cancelled.push_back(id); }
  std::string field(std::size_t i, const std::string& k) const {
    for (const auto& [name, v] : sent.at(i).req.form)
      if (name == k) return v;
    return {};
  }
  void answer(std::size_t i, long status, const std::string& body) {
    sent.at(i).done(spoolgate::http::Response{status, "application/json", body, {}});
  }
};
