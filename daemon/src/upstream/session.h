// SPDX-License-Identifier: MIT
// upstream/session: one connection to one upstream, carrying messages.
//
// Gets to the point where mail can go through an upstream/link (secret,
// connect, TLS, EHLO, AUTH: exactly what `probe` does), then drives the
// link's smtp::Client: takes messages from Delivery one at a time, streams their content from the spool in pieces (a
// worker thread reads, the loop writes, the next read starts when the socket drained), and ends each attempt through
// Delivery::record (the outcome made durable, then the scheduler told); it never touches the scheduler itself. What an
// attempt or a failure means is upstream/policy.h's decision.
//
// Every wait is bounded by the RFC 5321 4.5.3.2 timeout of its stage (the
// link's stage timer); the data-block timer restarts with every write, so a
// slow but steady server is fine.
//
// Held (Delivery::park): with no message to take, the session waits up to
// idle_hold (its own hold timer; no stage timer runs) for Delivery to resume() it with one; the hold ends with QUIT
// (end_hold), or quietly when the server closes or speaks first (a server's
// idle timeout is not a site failure).
//
// Disk work (STYLE.md rule 9): at most one job at a time, started only by
// disk(), held as a value (disk_) while it is out. While it is out no stage
// timer runs (the disk is not the server, and a timeout must not start a
// second job that writes the same state file), pump() waits, and whatever
// the server said meanwhile (a reply, a close) is latched by the client
// machine; every job's completion re-enters the one event pump. The worker
// side of a job touches only the spool and values it was given: never the
// scheduler, the settings or this session's members other than its own
// reader and chunk, which live as long as the session, and the session
// lives until the job is back.
//
// Teardown: finalize() is the one path for every ending (done, error,
// timeout, peer close, shutdown). It sends QUIT only when the protocol
// allows, closes the link (Link::close: close_notify, pending writes, a
// linger bound), hands a carried message back (deferred
// with the reason, to the next upstream, or untouched at the shutdown
// deadline) once no disk job is out, and the session is released by
// Delivery in the last callback, once the connection is closed and no disk
// job is in flight.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "loop/loop.h"
#include "smtp/client.h"
#include "smtp/headers.h"
#include "spool/spool.h"
#include "upstream/carrier.h"
#include "upstream/delivery.h"
#include "upstream/link.h"

namespace spoolgate::upstream {

class Session final : public Carrier {
 public:
  Session(Delivery& d, std::size_t upstream, std::string first_job);
  ~Session() override;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void start() override;
  // Shutdown deadline: end now; a carried message is handed back untouched.
  void abort() override;
  // While held: carry this message (due, taken from the scheduler).
  void resume(std::string job) override;
  // While held: QUIT now.
  void end_hold() override;
  std::size_t upstream() const override { return up_; }

 private:
  enum class Hand { Defer, Failover, Untouched };

  Link::Hooks link_hooks();
  void on_tls(const tls::Session& tls, const Result<void>& r);
  void on_ready();
  void on_read(std::string_view bytes, bool eof);
  void pump();
  void flush();
  void arm(smtp::Stage stage);
  void next_job();
  void load_job();
  void on_loaded(const spool::Record& rec);
  void on_load_error(const std::string& id, const Error& e);
  void send_chunk();
  void read_more();
  void on_delivered();
  void on_failed(const smtp::Failure& f);
  // The one way to run disk work: `work` on a worker, then `then` on the
  // loop, then (when closing) the hand-back and release the finalizer left.
  void disk(const char* what, std::function<void()> work, std::function<void()> then);
  // The same for work another owner runs: start(back) hands it off, and
  // back() is called on the loop, once, when it is done.
  void disk_via(const char* what, const std::function<void(std::function<void()>)>& start, std::function<void()> then);
  void hand_back(Hand how, const std::string& reason);
  void write_deferral(const std::shared_ptr<spool::Record>& rec, const std::string& reason);
  // Ends the attempt through Delivery::record (one disk job: persist, then
  // the scheduler), then takes the next message unless closing.
  void record(const std::shared_ptr<spool::Record>& rec, std::vector<std::string> failed,
              std::vector<std::size_t> attempt_rcpts);
  void finalize(const std::string& reason, bool graceful, Hand how = Hand::Defer);
  // Closing: hand back a carried message when no disk job is out, release
  // when nothing is left.
  void finish_closing();
  void maybe_release();
  void quit();
  void leave_hold();  // no longer parked (Delivery forgets it)

  smtp::Client& machine() { return link_.machine(); }

  Delivery& d_;
  std::size_t up_;
  std::string id_;
  Link link_;
  const Upstream& u_;  // the link's copy: a reload does not change a live session
  loop::HandlePtr<loop::Timer> hold_;

  std::optional<std::string> job_id_;
  spool::Record rec_;
  std::vector<std::size_t> job_rcpts_;  // recipient indexes of this attempt
  std::int64_t pacing_stamp_ = 0;       // when this attempt was counted against the limits (0: not)
  std::unique_ptr<spool::Reader> reader_;
  // The upstream's sender policy rewrites this message's From: on the way
  // out (Upstream::from_for); null: the content goes as it is.
  std::unique_ptr<smtp::HeaderFixer> fixer_;
  std::string chunk_;
  char last_[2] = {'\r', '\n'};  // the last two content bytes written
  bool loaded_ = false;
  bool content_started_ = false;
  bool streaming_ = false;    // between SendContent and the final dot
  bool chunk_ready_ = false;  // a chunk read from the spool waits to be written
  bool dot_sent_ = false;     // awaiting the reply to the final dot
  bool throttled_ = false;    // the server asked us to slow down: QUIT after this message
  bool held_ = false;         // parked with Delivery, waiting for a message

  std::uint64_t generation_;  // Delivery's, when this session started
  unsigned jobs_done_ = 0;
  Hand closing_hand_ = Hand::Defer;  // what finalize() asked for a carried message
  std::string closing_reason_;
  bool closing_ = false;
};

}  // namespace spoolgate::upstream
