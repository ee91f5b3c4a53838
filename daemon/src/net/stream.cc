// SPDX-License-Identifier: MIT
#include "net/stream.h"

#include <arpa/inet.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "core/log.h"

namespace spoolgate::net {

struct Connection::Impl {
  union {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } h;
  Connection* owner;
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&h); }
};

struct Listener::Impl {
  union {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } h;
  Listener* owner;
  bool unix_socket;
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&h); }
};

namespace {

struct WriteReq {
  uv_write_t req;
  std::string bytes;
  Connection* conn;
};

void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) noexcept {
  // One buffer per loop: data is handed to the owner before the next read.
  buf->base = static_cast<loop::Loop*>(h->loop->data)->read_buffer();
  buf->len = loop::Loop::kReadBuffer;
}

void on_stream_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept {
  auto* impl = static_cast<Connection::Impl*>(s->data);
  if (nread > 0)
    impl->owner->deliver_raw(std::string_view(buf->base, static_cast<size_t>(nread)), false);
  else if (nread < 0)
    impl->owner->deliver_raw({}, true);  // EOF or error: nread == 0 is not EOF
}

void on_write(uv_write_t* req, int status) noexcept {
  auto* w = static_cast<WriteReq*>(req->data);
  Connection* c = w->conn;
  delete w;
  c->write_done(status);
}

void on_conn_closed(uv_handle_t* h) noexcept { static_cast<Connection::Impl*>(h->data)->owner->handle_closed(); }

void on_connection(uv_stream_t* server, int status) noexcept {
  if (status < 0) {
    log::warn("accept_failed").kv("reason", uv_strerror(status));
    return;
  }
  static_cast<Listener::Impl*>(server->data)->owner->accept_one();
}

}  // namespace

Connection::~Connection() {
  // Deleting an open connection is a bug in the owner; the handle memory would
  // be freed under libuv. Panic loudly rather than corrupt memory.
  if (impl_ && !closing_) {
    log::error("panic").kv("reason", "connection deleted while open");
    std::abort();
  }
  delete impl_;
}

void Connection::start_reading() {
  if (closing_ || reading_) return;
  if (uv_read_start(impl_->stream(), on_alloc, on_stream_read) == 0) reading_ = true;
}

void Connection::stop_reading() {
  if (closing_ || !reading_) return;
  uv_read_stop(impl_->stream());
  reading_ = false;
}

void Connection::deliver(std::string_view bytes, bool eof) {
  if (closing_) return;
  if (eof) {
    if (eof_reported_) return;
    eof_reported_ = true;
    stop_reading();
  }
  if (read_fn_) read_fn_(bytes, eof);
}

void Connection::deliver_raw(std::string_view bytes, bool eof) {
  if (!tls_ || eof) {
    if (eof && tls_done_) {
      auto done = std::move(tls_done_);
      tls_done_ = nullptr;
      done(fail(Errc::Closed, "connection closed during the TLS handshake"));
      if (closing_) return;
    }
    deliver(bytes, eof);
    return;
  }
  bool was_up = tls_->established();
  auto r = tls_->receive(bytes);
  write_raw(tls_->take_encrypted());  // handshake messages, alerts
  if (!r) {
    if (tls_done_) {
      auto done = std::move(tls_done_);
      tls_done_ = nullptr;
      done(tl::unexpected(r.error()));
    } else {
      deliver({}, true);
    }
    return;
  }
  if (!was_up && tls_->established() && tls_done_) {
    auto done = std::move(tls_done_);
    tls_done_ = nullptr;
    done({});
    if (closing_) return;
  }
  std::string plain = tls_->take_plain();
  if (!plain.empty()) deliver(plain, false);
  if (tls_ && tls_->peer_closed()) deliver({}, true);
}

void Connection::start_tls(std::unique_ptr<tls::Session> session, std::function<void(Result<void>)> done) {
  tls_ = std::move(session);
  tls_done_ = std::move(done);
  auto r = tls_->handshake();
  write_raw(tls_->take_encrypted());
  if (!r) {
    auto d = std::move(tls_done_);
    tls_done_ = nullptr;
    d(tl::unexpected(r.error()));
    return;
  }
  start_reading();
}

void Connection::tls_close_notify() {
  if (!tls_ || !tls_->established() || closing_) return;
  tls_->close_notify();
  write_raw(tls_->take_encrypted());
}

void Connection::write(std::string bytes) {
  if (closing_ || bytes.empty()) return;
  if (tls_) {
    if (!tls_->send(bytes)) {
      deliver({}, true);
      return;
    }
    write_raw(tls_->take_encrypted());
    return;
  }
  write_raw(std::move(bytes));
}

void Connection::write_raw(std::string bytes) {
  if (closing_ || bytes.empty()) return;
  auto* w = new WriteReq{{}, std::move(bytes), this};
  w->req.data = w;
  uv_buf_t buf = uv_buf_init(w->bytes.data(), static_cast<unsigned>(w->bytes.size()));
  int rc = uv_write(&w->req, impl_->stream(), &buf, 1, on_write);
  if (rc != 0) {
    delete w;
    deliver({}, true);
    return;
  }
  ++pending_writes_;
}

void Connection::write_done(int status) {
  --pending_writes_;
  if (status < 0 && status != UV_ECANCELED) deliver({}, true);
  if (close_when_drained_ && pending_writes_ == 0) close();
  if (pending_writes_ == 0 && drain_fn_ && !closing_) {
    auto fn = std::move(drain_fn_);
    drain_fn_ = nullptr;
    fn();
  }
}

void Connection::close_after_writes() {
  stop_reading();
  if (pending_writes_ == 0)
    close();
  else
    close_when_drained_ = true;
}

void Connection::close() {
  if (closing_) return;
  stop_reading();
  closing_ = true;
  read_fn_ = nullptr;
  tls_done_ = nullptr;
  drain_fn_ = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&impl_->h), on_conn_closed);
}

void Connection::handle_closed() {
  // Pending write callbacks ran (cancelled) before this one.
  auto fn = std::move(closed_fn_);
  if (fn) fn();  // may delete this; nothing below touches members
}

std::size_t Connection::readable_bytes() const {
  uv_os_fd_t fd;
  if (closing_ || uv_fileno(reinterpret_cast<const uv_handle_t*>(&impl_->h), &fd) != 0) return 0;
  int n = 0;
  if (::ioctl(fd, FIONREAD, &n) != 0 || n < 0) return 0;
  return static_cast<std::size_t>(n);
}

namespace {
// "127.0.0.1:2525" / "[::1]:2525" of a bound TCP socket.
std::string address_of(const sockaddr_storage& ss) {
  char ip[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    uv_ip6_name(a, ip, sizeof ip);
    return "[" + std::string(ip) + "]:" + std::to_string(ntohs(a->sin6_port));
  }
  const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
  uv_ip4_name(a, ip, sizeof ip);
  return std::string(ip) + ":" + std::to_string(ntohs(a->sin_port));
}
}  // namespace

namespace {
// True when a process accepts connections on the unix socket at `path`.
bool unix_socket_in_use(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) return false;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  bool answered = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return answered;
}
}  // namespace

Result<loop::HandlePtr<Listener>> Listener::create(loop::Loop& loop, const ListenSpec& spec, AcceptFn fn) {
  loop::HandlePtr<Listener> l(new Listener());
  l->loop_ = &loop;
  l->fn_ = std::move(fn);
  l->impl_ = new Impl{};
  l->impl_->owner = l.get();
  l->impl_->unix_socket = spec.unix_socket;
  int rc;
  if (spec.fd >= 0) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    rc = ::getsockname(spec.fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0 ? 0 : uv_translate_sys_error(errno);
    if (rc == 0 && ss.ss_family == AF_UNIX) {
      l->impl_->unix_socket = true;
      uv_pipe_init(loop.raw(), &l->impl_->h.pipe, 0);
      l->impl_->h.pipe.data = l->impl_;
      rc = uv_pipe_open(&l->impl_->h.pipe, spec.fd);
      l->address_ = std::string("unix:") + reinterpret_cast<sockaddr_un*>(&ss)->sun_path;
    } else if (rc == 0) {
      uv_tcp_init(loop.raw(), &l->impl_->h.tcp);
      l->impl_->h.tcp.data = l->impl_;
      rc = uv_tcp_open(&l->impl_->h.tcp, spec.fd);
      l->address_ = address_of(ss);
    }
  } else if (spec.unix_socket) {
    uv_pipe_init(loop.raw(), &l->impl_->h.pipe, 0);
    l->impl_->h.pipe.data = l->impl_;
    // A socket file left by a previous run is removed; one that something
    // still answers on belongs to another process, which must not lose it.
    rc = unix_socket_in_use(spec.path) ? UV_EADDRINUSE : 0;
    if (rc == 0) ::unlink(spec.path.c_str());
    // Never more open than asked, not even between bind and chmod: bind
    // under a umask that leaves the owner alone, then set the mode. (The
    // spool's own files are created 0600 explicitly, so a worker creating
    // one meanwhile is not affected.)
    mode_t old = ::umask(0177);
    if (rc == 0) rc = uv_pipe_bind(&l->impl_->h.pipe, spec.path.c_str());
    ::umask(old);
    l->address_ = "unix:" + spec.path;
    if (rc == 0) {
      l->unlink_on_close_ = spec.path;
      if (::chmod(spec.path.c_str(), static_cast<mode_t>(spec.mode)) != 0) rc = -errno;
      if (rc == 0 && spec.gid >= 0 && ::chown(spec.path.c_str(), static_cast<uid_t>(-1), static_cast<gid_t>(spec.gid)) != 0)
        log::warn("listen_chown")
            .kv("address", l->address_)
            .kv("gid", static_cast<std::int64_t>(spec.gid))
            .kv("reason", fail_errno("chown " + spec.path, errno).value().message())
            .kv("action", "the socket keeps the daemon's group");
    }
  } else {
    uv_tcp_init(loop.raw(), &l->impl_->h.tcp);
    l->impl_->h.tcp.data = l->impl_;
    sockaddr_storage ss{};
    bool v6 = spec.host.find(':') != std::string::npos;
    if (v6)
      rc = uv_ip6_addr(spec.host.c_str(), spec.port, reinterpret_cast<sockaddr_in6*>(&ss));
    else
      rc = uv_ip4_addr(spec.host.c_str(), spec.port, reinterpret_cast<sockaddr_in*>(&ss));
    if (rc == 0) rc = uv_tcp_bind(&l->impl_->h.tcp, reinterpret_cast<sockaddr*>(&ss), v6 ? UV_TCP_IPV6ONLY : 0);
    if (rc == 0) {
      sockaddr_storage bound{};
      int len = sizeof bound;
      uv_tcp_getsockname(&l->impl_->h.tcp, reinterpret_cast<sockaddr*>(&bound), &len);
      l->address_ = address_of(bound);
    }
  }
  if (rc == 0) rc = uv_listen(l->impl_->stream(), 511, on_connection);
  if (rc != 0) {
    std::string where = spec.fd >= 0       ? "inherited socket " + std::to_string(spec.fd)
                        : spec.unix_socket ? "unix:" + spec.path
                                           : spec.host + ":" + std::to_string(spec.port);
    return fail(Errc::Io, "cannot listen on " + where + ": " + uv_strerror(rc));
  }
  return l;
}

void Listener::accept_one() {
  std::unique_ptr<Connection> c(new Connection());
  c->impl_ = new Connection::Impl{};
  c->impl_->owner = c.get();
  if (impl_->unix_socket)
    uv_pipe_init(loop_->raw(), &c->impl_->h.pipe, 0);
  else
    uv_tcp_init(loop_->raw(), &c->impl_->h.tcp);
  c->impl_->h.tcp.data = c->impl_;
  if (uv_accept(impl_->stream(), c->impl_->stream()) != 0) {
    // Nothing to accept after all; close the fresh handle and free it then.
    Connection* raw = c.release();
    raw->on_closed([raw] { delete raw; });
    raw->close();
    return;
  }
  if (impl_->unix_socket) {
    c->unix_ = true;
    c->peer_ = "unix";
  } else {
    uv_tcp_nodelay(&c->impl_->h.tcp, 1);
    sockaddr_storage ss{};
    int len = sizeof ss;
    uv_tcp_getpeername(&c->impl_->h.tcp, reinterpret_cast<sockaddr*>(&ss), &len);
    if (auto ip = IpAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&ss))) {
      c->peer_ip_ = *ip;
      c->peer_ = ip->unmapped().str();
    }
  }
  fn_(std::move(c));
}

void Listener::close() {
  if (!impl_) return;
  Impl* impl = impl_;
  impl_ = nullptr;
  fn_ = nullptr;
  if (!unlink_on_close_.empty()) ::unlink(unlink_on_close_.c_str());
  uv_close(reinterpret_cast<uv_handle_t*>(&impl->h), [](uv_handle_t* h) noexcept {
    auto* i = static_cast<Impl*>(h->data);
    delete i->owner;
    delete i;
  });
}

// Outbound connections: resolve, then try each address until one connects.
struct ConnectorAccess {
  static std::unique_ptr<Connection> make(loop::Loop& loop) {
    std::unique_ptr<Connection> c(new Connection());
    c->impl_ = new Connection::Impl{};
    c->impl_->owner = c.get();
    uv_tcp_init(loop.raw(), &c->impl_->h.tcp);
    c->impl_->h.tcp.data = c->impl_;
    return c;
  }
  static void set_peer(Connection& c, const sockaddr* sa) {
    if (auto ip = IpAddress::from_sockaddr(sa)) {
      c.peer_ip_ = *ip;
      c.peer_ = ip->unmapped().str();
    }
  }
  static uv_tcp_t* tcp(Connection& c) { return &c.impl_->h.tcp; }
};

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
      Connection* c = conn.release();
      c->on_closed([c] { delete c; });
      c->close();
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
    uv_tcp_nodelay(ConnectorAccess::tcp(*op->conn), 1);
    op->finish(std::move(op->conn));
    return;
  }
  op->last_error = uv_strerror(status);
  Connection* c = op->conn.release();
  c->on_closed([c] { delete c; });
  c->close();
  op->try_next();
}

void ConnectOp::try_next() {
  if (next >= addrs.size()) {
    finish(fail(Errc::Io, "cannot connect to " + host + ":" + std::to_string(port) + ": " + last_error));
    return;
  }
  conn = ConnectorAccess::make(*loop);
  const sockaddr* sa = reinterpret_cast<const sockaddr*>(&addrs[next++]);
  ConnectorAccess::set_peer(*conn, sa);
  req.data = this;
  int rc = uv_tcp_connect(&req, ConnectorAccess::tcp(*conn), sa, on_connected);
  if (rc != 0) {
    last_error = uv_strerror(rc);
    Connection* c = conn.release();
    c->on_closed([c] { delete c; });
    c->close();
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
