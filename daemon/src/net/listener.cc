// SPDX-License-Identifier: MIT
#include "net/listener.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstring>

#include "core/log.h"
#include "net/connection_impl.h"

namespace spoolgate::net {

struct Listener::Impl {
  union {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } h;
  Listener* owner;
  bool unix_socket;
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&h); }

  static void on_connection(uv_stream_t* server, int status) noexcept {
    if (status < 0) {
      log::warn("accept_failed").kv("reason", uv_strerror(status));
      return;
    }
    static_cast<Listener::Impl*>(server->data)->owner->accept_one();
  }
};

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
  if (rc == 0) rc = uv_listen(l->impl_->stream(), 511, Impl::on_connection);
  if (rc != 0) {
    std::string where = spec.fd >= 0       ? "inherited socket " + std::to_string(spec.fd)
                        : spec.unix_socket ? "unix:" + spec.path
                                           : spec.host + ":" + std::to_string(spec.port);
    return fail(Errc::Io, "cannot listen on " + where + ": " + uv_strerror(rc));
  }
  return l;
}

void Listener::accept_one() {
  using Hooks = Connection::Hooks;
  std::unique_ptr<Connection> c = Hooks::make(*loop_, impl_->unix_socket);
  if (uv_accept(impl_->stream(), Hooks::stream(*c)) != 0) {
    // Nothing to accept after all; close the fresh handle and free it then.
    return Connection::discard(std::move(c));
  }
  if (impl_->unix_socket) {
    Hooks::set_unix_peer(*c);
  } else {
    uv_tcp_nodelay(Hooks::tcp(*c), 1);
    sockaddr_storage ss{};
    int len = sizeof ss;
    uv_tcp_getpeername(Hooks::tcp(*c), reinterpret_cast<sockaddr*>(&ss), &len);
    Hooks::set_peer(*c, reinterpret_cast<sockaddr*>(&ss));
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

}  // namespace spoolgate::net
