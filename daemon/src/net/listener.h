// SPDX-License-Identifier: MIT
// net/listener: a listening socket (TCP, unix, or inherited from systemd)
// that hands each accepted Connection to its callback.
//
// A unix socket file is created with no access for anyone but its owner and
// then given its mode (never more open than asked, whatever the umask); a
// stale one is replaced, one that something still answers on is not (that
// is EADDRINUSE). Closing the listener unlinks the file it created, never
// an inherited one. Accepted TCP connections have TCP_NODELAY set.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/result.h"
#include "loop/loop.h"
#include "net/connection.h"

namespace spoolgate::net {

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

 private:
  Listener() = default;
  void accept_one();
  Impl* impl_ = nullptr;
  loop::Loop* loop_ = nullptr;
  AcceptFn fn_;
  std::string address_;
  std::string unlink_on_close_;
};

}  // namespace spoolgate::net
