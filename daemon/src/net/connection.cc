// SPDX-License-Identifier: MIT
#include "net/connection.h"

#include <sys/ioctl.h>
#include <uv.h>

#include <cstdlib>

#include "core/log.h"
#include "net/connection_impl.h"

namespace spoolgate::net {
namespace {

struct WriteReq {
  uv_write_t req;
  std::string bytes;
  Connection* conn;
};

}  // namespace

std::unique_ptr<Connection> Connection::Hooks::make(loop::Loop& loop, bool unix_socket) {
  std::unique_ptr<Connection> c(new Connection());
  c->impl_ = new Connection::Impl{};
  c->impl_->owner = c.get();
  if (unix_socket)
    uv_pipe_init(loop.raw(), &c->impl_->h.pipe, 0);
  else
    uv_tcp_init(loop.raw(), &c->impl_->h.tcp);
  c->impl_->h.tcp.data = c->impl_;
  return c;
}

void Connection::Hooks::set_peer(Connection& c, const sockaddr* sa) {
  if (auto ip = IpAddress::from_sockaddr(sa)) {
    c.peer_ip_ = *ip;
    c.peer_ = ip->unmapped().str();
  }
}

void Connection::Hooks::set_unix_peer(Connection& c) {
  c.unix_ = true;
  c.peer_ = "unix";
}

void Connection::Hooks::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) noexcept {
  // One buffer per loop: data is handed to the owner before the next read.
  buf->base = static_cast<loop::Loop*>(h->loop->data)->read_buffer();
  buf->len = loop::Loop::kReadBuffer;
}

void Connection::Hooks::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept {
  auto* impl = static_cast<Connection::Impl*>(s->data);
  if (nread > 0)
    impl->owner->deliver_raw(std::string_view(buf->base, static_cast<size_t>(nread)), false);
  else if (nread < 0)
    impl->owner->deliver_raw({}, true);  // EOF or error: nread == 0 is not EOF
}

void Connection::Hooks::on_write(uv_write_t* req, int status) noexcept {
  auto* w = static_cast<WriteReq*>(req->data);
  Connection* c = w->conn;
  delete w;
  c->write_done(status);
}

void Connection::Hooks::on_closed(uv_handle_t* h) noexcept {
  static_cast<Connection::Impl*>(h->data)->owner->handle_closed();
}

void Connection::discard(std::unique_ptr<Connection> c) {
  if (!c) return;
  Connection* raw = c.release();
  raw->on_closed([raw] { delete raw; });
  raw->close();
}

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
  if (uv_read_start(impl_->stream(), Hooks::on_alloc, Hooks::on_read) == 0) reading_ = true;
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
  int rc = uv_write(&w->req, impl_->stream(), &buf, 1, Hooks::on_write);
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
  uv_close(reinterpret_cast<uv_handle_t*>(&impl_->h), Hooks::on_closed);
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

}  // namespace spoolgate::net
