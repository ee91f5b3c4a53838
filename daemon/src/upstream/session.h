// SPDX-License-Identifier: MIT
// upstream/session: one connection to one upstream, carrying messages.
//
// Drives smtp::Client over a net::Connection (TLS from the start for smtps,
// after STARTTLS for smtp+starttls), takes messages from Delivery one at a
// time, streams their content from the spool in pieces (a worker thread
// reads, the loop writes, the next read starts when the socket drained), and
// records each outcome in the spool before telling the scheduler.
//
// Every wait is bounded by the RFC 5321 4.5.3.2 timeout of its stage; the
// data-block timer restarts with every write, so a slow but steady server is
// fine.
//
// Held (Delivery::park): with no message to take, the session waits up to
// idle_hold for Delivery to resume() it with one; the hold ends with QUIT
// (end_hold), or quietly when the server closes or speaks first (a server's
// idle timeout is not a site failure).
//
// Teardown: finalize() is the one path for every ending (done, error,
// timeout, peer close, shutdown). It sends QUIT only when the protocol
// allows, queues TLS close_notify, closes the connection after pending
// writes (bounded by a linger timer), hands a carried message back (deferred
// with the reason, or to the next upstream), and the session is released by
// Delivery in the last callback, once the connection is closed and no disk
// job is in flight.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "loop/loop.h"
#include "net/stream.h"
#include "smtp/client.h"
#include "spool/spool.h"
#include "upstream/delivery.h"

namespace spoolgate::upstream {

class Session {
 public:
  Session(Delivery& d, std::size_t upstream, std::string first_job);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void start();
  // Shutdown deadline: end now; a carried message is handed back untouched.
  void abort();
  // While held: carry this message (due, taken from the scheduler).
  void resume(std::string job);
  // While held: QUIT now.
  void end_hold();

 private:
  enum class Hand { Defer, Failover, Untouched };

  void connect();
  void on_connect(Result<std::unique_ptr<net::Connection>> r);
  void on_tls(Result<void> r);
  void on_read(std::string_view bytes, bool eof);
  void pump();
  void flush();
  void arm(smtp::Stage stage);
  void next_job();
  void load_job();
  void send_chunk();
  void read_more();
  void on_delivered();
  void on_failed(const smtp::Failure& f);
  void hand_back(Hand how, const std::string& reason);
  // A deferral, written to the spool or not: count, schedule and log it.
  void deferred(const std::string& msg, bool written, std::int64_t due, const std::string& reason, unsigned attempts);
  void finalize(const std::string& reason, bool graceful);
  void maybe_release();
  void quit();
  void leave_hold();  // no longer parked (Delivery forgets it)

  Delivery& d_;
  std::size_t up_;
  Upstream u_;  // a copy: a reload does not change a live session
  std::string id_;
  smtp::Client machine_;
  std::unique_ptr<net::Connection> conn_;
  loop::HandlePtr<loop::Timer> timer_;
  loop::HandlePtr<loop::Timer> linger_;

  std::optional<std::string> job_id_;
  spool::Record rec_;
  std::vector<std::size_t> job_rcpts_;  // recipient indexes of this attempt
  std::unique_ptr<spool::Reader> reader_;
  std::string chunk_;
  char last_[2] = {'\r', '\n'};  // the last two content bytes written
  bool loaded_ = false;
  bool content_started_ = false;
  bool dot_sent_ = false;   // awaiting the reply to the final dot
  bool throttled_ = false;  // the server asked us to slow down: QUIT after this message
  bool held_ = false;       // parked with Delivery, waiting for a message

  std::uint64_t generation_;  // Delivery's, when this session started
  unsigned jobs_done_ = 0;
  // Set while connecting (reading the secret, then net::connect); calling it
  // abandons that. net::connect never calls back before it returns, so it is
  // set from start() until on_connect() or finalize().
  std::function<void()> cancel_connect_;
  bool disk_busy_ = false;
  bool closing_ = false;
  bool conn_closed_ = false;
};

}  // namespace spoolgate::upstream
