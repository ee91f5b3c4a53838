// SPDX-License-Identifier: MIT
// fetch/client: the daemon's side of the HTTPS helper (spoolgate-https,
// daemon/src/https/; http/wire.h says why it is a process of its own).
//
// Owns the helper process and the socket to it, the requests in flight and
// their callbacks. The helper is started on the first request, not before
// (a daemon without OAuth or API upstreams never runs it), and again on the
// next request after it died. When it dies, closes its socket or sends a
// malformed frame, every request in flight fails with Errc::Io, and it is
// killed and reaped; nothing is retried here (the caller owns its backoff).
//
// All on the loop thread: the loop never waits for HTTP, it only reads
// answers when they are there.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "http/fetcher.h"
#include "loop/loop.h"
#include "net/connection.h"

namespace spoolgate::fetch {

class Client final : public http::Fetcher {
 public:
  // helper: the path of spoolgate-https. grace: how long past a request's
  // own timeout a helper that has not answered is given before it is
  // replaced (the helper enforces timeouts itself; this catches one that hangs).
  Client(loop::Loop& loop, std::string helper, Millis grace = Millis(10'000));
  ~Client() override;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  std::uint64_t send(http::Request r, Done done) override;
  void cancel(std::uint64_t id) override;
  // Drops every request in flight without calling back, closes the socket
  // (the helper exits on EOF) and the process handles. Idempotent.
  void close();

  std::size_t in_flight() const { return pending_.size(); }
  // The helper's pid while one runs, else 0 (for tests).
  int helper_pid() const;
  unsigned starts() const { return starts_; }

 private:
  Result<void> start();
  void on_bytes(std::string_view bytes, bool eof);
  void broken(const std::string& why);
  void exited(int pid, std::int64_t status, int signal);
  void later(std::uint64_t id, Error e);
  void flush_later();
  void arm_watchdog();
  void check_deadlines();

  struct Pending {
    Done done;
    std::uint64_t deadline = 0;  // loop ms; 0: failing from later_timer_, never sent
  };

  loop::Loop& loop_;
  std::string helper_;
  Millis grace_;
  std::unique_ptr<net::Connection> conn_;
  std::map<int, loop::HandlePtr<loop::Process>> procs_;  // by pid, until reaped
  int pid_ = 0;
  http::Decoder decoder_;
  std::map<std::uint64_t, Pending> pending_;
  std::vector<std::pair<std::uint64_t, Error>> failed_;  // delivered from the timer
  loop::HandlePtr<loop::Timer> later_timer_;
  loop::HandlePtr<loop::Timer> watchdog_;
  std::uint64_t next_id_ = 0;
  unsigned starts_ = 0;
  bool closed_ = false;
};

}  // namespace spoolgate::fetch
