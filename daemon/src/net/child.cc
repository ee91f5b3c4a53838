// SPDX-License-Identifier: MIT
#include "net/child.h"

#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <csignal>

#include "net/connection_impl.h"

namespace spoolgate::net {

Result<Child> spawn_child(loop::Loop& loop, const std::string& path, const std::vector<std::string>& args,
                          loop::Process::Exited exited) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    return fail_errno("socketpair", errno);
  auto proc = loop::Process::spawn(loop, path, args, fds[1], fds[1], std::move(exited));
  ::close(fds[1]);
  if (!proc) {
    ::close(fds[0]);
    return tl::unexpected(proc.error());
  }
  auto conn = Connection::Hooks::make(loop, true);
  Connection::Hooks::set_unix_peer(*conn);
  if (int rc = uv_pipe_open(reinterpret_cast<uv_pipe_t*>(Connection::Hooks::stream(*conn)), fds[0]); rc != 0) {
    ::close(fds[0]);
    (*proc)->kill(SIGKILL);
    Connection::discard(std::move(conn));
    return fail(Errc::Io, std::string("cannot adopt the helper's socket: ") + uv_strerror(rc));
  }
  return Child{std::move(conn), std::move(*proc)};
}

}  // namespace spoolgate::net
