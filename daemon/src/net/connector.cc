// SPDX-License-Identifier: MIT
#include "net/connector.h"

#include <sys/socket.h>
#include <uv.h>

#include <cstring>
#include <optional>
#include <vector>

#include "net/connection_impl.h"

namespace spoolgate::net {
namespace {

// Owns itself (`self`) until it has finished and nothing it started is in
// flight; the caller's cancel function holds only a weak reference.
struct ConnectOp {
  std::shared_ptr<ConnectOp> self;
  loop::Loop* loop = nullptr;
  std::string host;
  std::uint16_t port = 0;
  Millis timeout{0};
  std::function<void(Result<std::unique_ptr<Connection>>)> done;
  uv_getaddrinfo_t gai{};
  uv_connect_t req{};
  std::vector<sockaddr_storage> addrs;
  size_t next = 0;
  std::unique_ptr<Connection> conn;
  loop::HandlePtr<loop::Timer> timer;
  std::string last_error;
  std::optional<Error> early;  // failed before connect() returned: reported from the loop
  bool finished = false;
  bool connecting = false;

  void finish(Result<std::unique_ptr<Connection>> r) {
    if (finished) return;
    stop();
    auto d = std::move(done);
    d(std::move(r));
    maybe_free();
  }
  void cancel() {
    if (finished) return;
    stop();
    done = nullptr;
    maybe_free();
  }
  void stop() {
    finished = true;
    timer.reset();
    if (!connecting) return;
    if (conn) {
      // Closing the handle cancels the TCP handshake: on_connected runs with
      // UV_ECANCELED before the handle's close callback.
      Connection::discard(std::move(conn));
    } else {
      // A lookup not yet started is cancelled; one running finishes first.
      uv_cancel(reinterpret_cast<uv_req_t*>(&gai));
    }
  }
  void maybe_free() {
    if (finished && !connecting) self.reset();  // may delete this
  }
  void try_next();
};

void on_connected(uv_connect_t* req, int status) noexcept {
  auto* op = static_cast<ConnectOp*>(req->data);
  op->connecting = false;
  if (op->finished) {  // timed out or cancelled: stop() closed the handle (UV_ECANCELED)
    op->maybe_free();
    return;
  }
  if (status == 0) {
    // Commands and content go out in separate writes: Nagle plus delayed
    // ACKs would add tens of milliseconds per message.
    uv_tcp_nodelay(Connection::Hooks::tcp(*op->conn), 1);
    op->finish(std::move(op->conn));
    return;
  }
  op->last_error = uv_strerror(status);
  Connection::discard(std::move(op->conn));
  op->try_next();
}

void ConnectOp::try_next() {
  if (next >= addrs.size()) {
    finish(fail(Errc::Io, "cannot connect to " + host + ":" + std::to_string(port) + ": " + last_error));
    return;
  }
  conn = Connection::Hooks::make(*loop, false);
  const sockaddr* sa = reinterpret_cast<const sockaddr*>(&addrs[next++]);
  Connection::Hooks::set_peer(*conn, sa);
  req.data = this;
  int rc = uv_tcp_connect(&req, Connection::Hooks::tcp(*conn), sa, on_connected);
  if (rc != 0) {
    last_error = uv_strerror(rc);
    Connection::discard(std::move(conn));
    try_next();
    return;
  }
  connecting = true;
}

void on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res) noexcept {
  auto* op = static_cast<ConnectOp*>(req->data);
  op->connecting = false;
  if (op->finished) {
    uv_freeaddrinfo(res);
    op->maybe_free();
    return;
  }
  if (status != 0) {
    op->finish(fail(Errc::Io, "cannot resolve " + op->host + ": " + uv_strerror(status)));
    return;
  }
  for (addrinfo* a = res; a; a = a->ai_next) {
    sockaddr_storage ss{};
    std::memcpy(&ss, a->ai_addr, a->ai_addrlen);
    op->addrs.push_back(ss);
  }
  uv_freeaddrinfo(res);
  op->try_next();
}

}  // namespace

CancelConnect connect(loop::Loop& loop, const std::string& host, std::uint16_t port, Millis timeout,
                      std::function<void(Result<std::unique_ptr<Connection>>)> done) {
  auto owner = std::make_shared<ConnectOp>();
  ConnectOp* op = owner.get();
  op->self = owner;
  std::weak_ptr<ConnectOp> weak = owner;
  owner.reset();
  op->loop = &loop;
  op->host = host;
  op->port = port;
  op->timeout = timeout;
  op->done = std::move(done);
  op->timer = loop::Timer::create(loop, [op] {
    if (op->early) return op->finish(tl::unexpected(*op->early));
    op->finish(fail(Errc::Timeout, "connect to " + op->host + ":" + std::to_string(op->port) + " timed out"));
  });
  op->timer->start(timeout);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  op->gai.data = op;
  op->connecting = true;
  std::string port_s = std::to_string(port);
  int rc = uv_getaddrinfo(loop.raw(), &op->gai, on_resolved, host.c_str(), port_s.c_str(), &hints);
  if (rc != 0) {
    // done never runs before connect() returns: the caller may not be ready.
    op->connecting = false;
    op->early = Error{Errc::Io, 0, "cannot resolve " + host + ": " + uv_strerror(rc)};
    op->timer->start(Millis(0));
  }
  return [weak] {
    if (auto live = weak.lock()) live->cancel();
  };
}

}  // namespace spoolgate::net
