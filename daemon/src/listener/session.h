// SPDX-License-Identifier: MIT
// listener/session: one inbound SMTP connection.
//
// Drives an smtp::Server over a net::Connection and streams each message into
// a spool::Writer. Every disk call runs on a worker thread; while one is in
// flight the session consumes no input and, once its input buffer is full,
// stops reading from the socket (a slow disk throttles the client instead of
// filling memory). The 250 for a message is produced only after the group
// commit covering it has completed (invariant 1). Local trouble becomes 452
// (no space) or 451 and the partial file is removed.
//
// TLS: on an implicit-TLS listener the handshake comes first and the
// greeting after it; with STARTTLS the machine's StartTls event has the 220
// written in plaintext, then the connection switches (net::Connection
// start_tls) and the machine forgets the session so far (RFC 3207 4.2). A
// failed handshake closes the connection; either way it is logged with the
// version and cipher, or why not.
//
// AUTH: the machine reads the exchange; the password is checked on a worker
// (argon2id), and a failure is answered only after a delay that grows with
// the client address's recent failures (Inbound counts them; after ten in
// fifteen minutes the next attempt gets 421). The session is not released
// while a check is out.
//
// Timers: a command must be complete within idle_timeout of our last reply;
// inside DATA each read restarts it and the whole DATA phase has
// data_timeout. A timer that fires while a disk job is out only queues the
// 421 in the machine: pump() waits for the job.
//
// Disk jobs (STYLE.md rule 9): one at a time; disk_busy_ is set only by
// write_chunk() and discard_message(), each of which is called only with no
// job out (the callers check), and cleared only in the job's completion.
// The worker touches writer_, record_ and disk_result_ and nothing else
// while it is out; the session is not released until it is back.
//
// Teardown: close() is idempotent; the session stops counting against the
// connection limits as soon as its protocol ends, and is released by
// Inbound only when its connection has closed and no disk job is in flight,
// as the last statement of whichever callback saw the second of those
// happen.
#pragma once

#include <memory>
#include <string>

#include "core/log.h"
#include "loop/loop.h"
#include "net/connection.h"
#include "smtp/server.h"
#include "spool/spool.h"
#include "auth/users.h"
#include "tls/tls.h"

namespace spoolgate::listener {

class Inbound;
struct Endpoint;

class Session {
 public:
  Session(Inbound& in, std::unique_ptr<net::Connection> conn, const Endpoint& endpoint);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void start();
  // Sends `reply` and closes (refused at connect).
  void refuse(const std::string& reply, const std::string& why);
  void shutdown();
  void close(const std::string& reason);
  const std::string& id() const { return id_; }
  const std::string& peer() const { return conn_->peer(); }
  const std::string& device() const { return device_; }

 private:
  static constexpr std::size_t kMaxInput = 128 * std::size_t{1024};

  // A log line of this session: its id, the client and, once known, the
  // device (the line is written at the end of the caller's statement).
  log::Line& tag(log::Line& line) const;
  log::Line& tag(log::Line&& line) const { return tag(line); }
  void begin();  // after the connect line: TLS first, or the greeting
  void greet();
  void schedule_greeting();
  void start_tls();
  void on_tls(const Result<void>& r);
  void start_auth();
  // The session now speaks for `name` (its policy if configured).
  void become(const std::string& name, bool by_login);
  void auth_done(bool ok, const std::string& user, const std::string& mechanism);
  void on_read(std::string_view bytes, bool eof);
  void on_conn_closed();
  void pump();
  void flush();
  void begin_message();
  void write_chunk(bool final);
  void commit();
  void on_commit_done(Result<void> r);
  void discard_message();
  void disk_done();
  void maybe_release();
  void arm_idle();
  // Closes after our last reply is written, bounded by a timer.
  void linger();

  Inbound& in_;
  std::unique_ptr<net::Connection> conn_;
  std::string id_;
  smtp::Server machine_;
  loop::HandlePtr<loop::Timer> idle_timer_;
  loop::HandlePtr<loop::Timer> greet_timer_;
  loop::HandlePtr<loop::Timer> data_timer_;  // limits.data_timeout, from 354 to the final dot
  bool implicit_tls_ = false;
  std::shared_ptr<tls::Context> tls_ctx_;  // the certificate this session presents (kept across a reload)
  std::shared_ptr<auth::Verifier> verifier_;  // the users_file it started with
  bool auth_working_ = false;                 // a password check is out on a worker
  std::string device_;                        // who this session speaks for ("" = unknown)
  loop::HandlePtr<loop::Timer> auth_delay_;   // a failed login's answer waits

  spool::Record record_;
  std::unique_ptr<spool::Writer> writer_;  // touched by a worker only while disk_busy_
  std::string pending_;                    // content not yet handed to the disk
  std::uint64_t written_ = 0;              // content handed to the disk for this message
  Result<void> disk_result_;
  bool in_message_ = false;
  bool disk_busy_ = false;
  bool greeted_ = false;
  bool closing_ = false;
  bool conn_closed_ = false;
  bool draining_ = false;
  std::string close_reason_;
};

}  // namespace spoolgate::listener
