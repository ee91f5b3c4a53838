// SPDX-License-Identifier: MIT
// net/stream: accepted connections (TCP or unix socket) and listening sockets.
//
// Bytes in, bytes out; nothing here knows SMTP. A Connection is created by a
// Listener, handed to the accept callback, and owned by whoever takes it.
//
// Lifetime: close() is the one idempotent teardown. It stops reading, drops
// the read callback and closes the handle; when libuv has closed it, the
// closed callback fires exactly once, as the last thing that happens to the
// Connection, and the Connection may then be deleted (even from inside that
// callback). close_after_writes() first lets queued writes drain, bounded by
// the owner's own timers. A write failure or any read error/EOF is reported
// through the read callback as an empty view with eof=true, once.
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
#include "loop/loop.h"
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

  // For the trampolines.
  struct Impl;
  Impl* impl() { return impl_; }
  void deliver(std::string_view bytes, bool eof);
  void deliver_raw(std::string_view bytes, bool eof);
  void write_raw(std::string bytes);
  void write_done(int status);
  void handle_closed();

 private:
  friend class Listener;
  friend struct ConnectorAccess;
  Connection() = default;
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

struct ListenSpec {
  bool unix_socket = false;
  std::string host;  // IP literal
  std::uint16_t port = 0;
  std::string path;
  // A unix socket's permissions, whatever the process umask: it is created
  // with no access for anyone but its owner, then given `mode` and, when
  // gid >= 0, that group (a failed chown is reported, the socket kept).
  unsigned mode = 0660;
  int gid = -1;
  // An inherited listening socket (systemd socket activation): used as it
  // is, whatever the fields above say; never unlinked.
  int fd = -1;
};

class Listener final : public loop::Handle {
 public:
  using AcceptFn = std::function<void(std::unique_ptr<Connection>)>;
  static Result<loop::HandlePtr<Listener>> create(loop::Loop& loop, const ListenSpec& spec, AcceptFn fn);
  void close() override;
  // "127.0.0.1:2525", "[::1]:2525", "unix:/run/x.sock" with the bound port.
  const std::string& address() const { return address_; }

  struct Impl;
  void accept_one();

 private:
  Listener() = default;
  Impl* impl_ = nullptr;
  loop::Loop* loop_ = nullptr;
  AcceptFn fn_;
  std::string address_;
  std::string unlink_on_close_;
};

// Stops a connect still in progress: done will not run, and what is in
// flight (the name lookup, the TCP handshake) is abandoned at once, so a
// server that drops SYNs holds neither the caller nor the loop. Does nothing
// once done has run.
using CancelConnect = std::function<void()>;

// Connects to host:port (a name is resolved; every address is tried in turn)
// within `timeout`. done runs exactly once on the loop with the connection or
// the error, unless cancelled first; if the loop is torn down first it runs
// with Errc::Closed. It never runs before connect() returns.
[[nodiscard]] CancelConnect connect(loop::Loop& loop, const std::string& host, std::uint16_t port, Millis timeout,
                                    std::function<void(Result<std::unique_ptr<Connection>>)> done);

}  // namespace spoolgate::net
