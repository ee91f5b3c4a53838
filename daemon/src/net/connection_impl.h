// SPDX-License-Identifier: MIT
// net/connection_impl: inside net/ only. The libuv handle of a Connection
// and the makers Listener and connect() use; nothing outside net/ includes
// this (the handle types stay out of every other layer's headers).
#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <memory>

#include "loop/loop.h"
#include "net/connection.h"

namespace spoolgate::net {

struct Connection::Impl {
  union {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } h;
  Connection* owner;
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&h); }
};

struct Connection::Hooks {
  // A fresh, initialised but unconnected handle: a pipe or a TCP socket.
  static std::unique_ptr<Connection> make(loop::Loop& loop, bool unix_socket);
  static uv_stream_t* stream(Connection& c) { return c.impl_->stream(); }
  static uv_tcp_t* tcp(Connection& c) { return &c.impl_->h.tcp; }
  // The peer of an accepted TCP connection or the address being connected to.
  static void set_peer(Connection& c, const sockaddr* sa);
  static void set_unix_peer(Connection& c);

  // The libuv callbacks (noexcept trampolines into the members).
  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) noexcept;
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept;
  static void on_write(uv_write_t* req, int status) noexcept;
  static void on_closed(uv_handle_t* h) noexcept;
};

}  // namespace spoolgate::net
