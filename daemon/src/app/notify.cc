// SPDX-License-Identifier: MIT
#include "app/notify.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace spoolgate::app {

Notifier::Notifier() {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): env is written only at start, before any thread
  const char* sock = std::getenv("NOTIFY_SOCKET");
  if (sock && *sock && (sock[0] == '/' || sock[0] == '@') && std::strlen(sock) < sizeof(sockaddr_un::sun_path)) {
    path_ = sock;
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  }
  // NOLINTNEXTLINE(concurrency-mt-unsafe): env is written only at start, before any thread
  const char* usec = std::getenv("WATCHDOG_USEC");
  // NOLINTNEXTLINE(concurrency-mt-unsafe): env is written only at start, before any thread
  const char* pid = std::getenv("WATCHDOG_PID");
  if (usec && (!pid || std::strtol(pid, nullptr, 10) == ::getpid())) {
    long long us = std::strtoll(usec, nullptr, 10);
    if (us > 0) watchdog_ = std::chrono::milliseconds(std::max<long long>(1, us / 2000));
  }
}

Notifier::~Notifier() {
  if (fd_ >= 0) ::close(fd_);
}

void Notifier::send(std::string_view state) {
  if (fd_ < 0) return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path_.data(), path_.size());
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path_.size());
  if (path_[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  (void)::sendto(fd_, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), len);
}

std::vector<int> listen_fds() {
  constexpr int kFirst = 3;  // SD_LISTEN_FDS_START
  std::vector<int> fds;
  // NOLINTNEXTLINE(concurrency-mt-unsafe): env is written only at start, before any thread
  const char* pid = std::getenv("LISTEN_PID");
  // NOLINTNEXTLINE(concurrency-mt-unsafe): env is written only at start, before any thread
  const char* n = std::getenv("LISTEN_FDS");
  if (pid && n && std::strtoll(pid, nullptr, 10) == ::getpid()) {
    long count = std::strtol(n, nullptr, 10);
    for (long i = 0; i < count && i < 64; ++i) {
      int fd = kFirst + static_cast<int>(i);
      if (::fcntl(fd, F_SETFD, FD_CLOEXEC) == 0) fds.push_back(fd);
    }
  }
  // NOLINTNEXTLINE(concurrency-mt-unsafe): env is written only at start, before any thread
  ::unsetenv("LISTEN_PID");
  // NOLINTNEXTLINE(concurrency-mt-unsafe): env is written only at start, before any thread
  ::unsetenv("LISTEN_FDS");
  // NOLINTNEXTLINE(concurrency-mt-unsafe): env is written only at start, before any thread
  ::unsetenv("LISTEN_FDNAMES");
  return fds;
}

}  // namespace spoolgate::app
