// SPDX-License-Identifier: MIT
// net/connection: one byte stream (TCP or unix socket), plain or TLS.
//
// Bytes in, bytes out; nothing here knows SMTP. A Connection is made by a
// Listener (accepted) or by connect() (net/connector.h), handed to a
// callback, and owned by whoever takes it.
//
// Lifetime: close() is the one idempotent teardown. It stops reading, drops
// the read callback and closes the handle; when libuv has closed it, the
// closed callback fires exactly once, as the last thing that happens to the
// Connection, and the Connection may then be deleted (even from inside that
// callback). close_after_writes() first lets queued writes drain, bounded by
// the owner's own timers. A write failure or any read error/EOF is reported
// through the read callback as an empty view with eof=true, once. A
// Connection nobody will own is given to discard(), the one place that
// closes and then deletes in the close callback.
//
// Reads go through one buffer per loop, so an idle connection holds no read
// buffer at all.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/cidr.h"
#include "core/result.h"
#include "tls/tls.h"

namespace spoolgate::net {

class Connection {
 public:
  using ReadFn = std::function<void(std::string_view bytes, bool eof)>;
  using ClosedFn = std::function<void()>;

  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void on_read(ReadFn fn) { read_fn_ = std::move(fn); }
  void on_closed(ClosedFn fn) { closed_fn_ = std::move(fn); }
  void start_reading();
  void stop_reading();
  bool reading() const { return reading_; }
  // Queues bytes; the Connection owns them until written.
  void write(std::string bytes);
  std::size_t pending_writes() const { return pending_writes_; }
  // Runs (once per registration) when every queued write has completed.
  void on_drain(std::function<void()> fn) { drain_fn_ = std::move(fn); }
  void close();
  void close_after_writes();
  bool closing() const { return closing_; }

  bool is_unix() const { return unix_; }
  // Peer address ("127.0.0.1", "::1"; "unix" for unix sockets).
  const std::string& peer() const { return peer_; }
  const IpAddress& peer_ip() const { return peer_ip_; }
  // Bytes the kernel already holds for us (FIONREAD), for early-talker checks.
  std::size_t readable_bytes() const;

  // Puts TLS on this connection: from now on reads are decrypted and writes
  // encrypted. done runs once: ok when the handshake finished, or the error
  // (verification failure included) after which the owner closes.
  void start_tls(std::unique_ptr<tls::Session> session, std::function<void(Result<void>)> done);
  tls::Session* tls() const { return tls_.get(); }
  // Queues TLS close_notify (if TLS is up); use before close_after_writes().
  void tls_close_notify();

  // Closes a connection nobody owns and deletes it in its close callback.
  static void discard(std::unique_ptr<Connection> c);

  struct Impl;   // the libuv handle (net/connection_impl.h)
  struct Hooks;  // the libuv callbacks, and the makers for Listener and connect()

 private:
  Connection() = default;
  void deliver(std::string_view bytes, bool eof);
  void deliver_raw(std::string_view bytes, bool eof);
  void write_raw(std::string bytes);
  void write_done(int status);
  void handle_closed();

  std::unique_ptr<tls::Session> tls_;
  std::function<void(Result<void>)> tls_done_;
  Impl* impl_ = nullptr;
  ReadFn read_fn_;
  ClosedFn closed_fn_;
  std::function<void()> drain_fn_;
  std::string peer_;
  IpAddress peer_ip_;
  bool unix_ = false;
  bool reading_ = false;
  bool closing_ = false;
  bool close_when_drained_ = false;
  bool eof_reported_ = false;
  std::size_t pending_writes_ = 0;
};

}  // namespace spoolgate::net
