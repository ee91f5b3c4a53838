// SPDX-License-Identifier: MIT
// app/notify: the systemd notify protocol, implemented directly (no
// libsystemd): datagrams to $NOTIFY_SOCKET ("/path" or "@abstract").
//
// READY=1 once listeners are bound and the spool recovered; STATUS= with the
// queue and upstream state; RELOADING=1 / READY=1 around a reload;
// STOPPING=1 at shutdown; WATCHDOG=1 every half $WATCHDOG_USEC, sent from the
// event loop so that a stuck loop stops the pings and gets restarted.
// Without $NOTIFY_SOCKET every call does nothing. Errors are ignored: the
// service manager going away must not take the relay down.
//
// listen_fds() is the other half of the protocol: socket activation
// ($LISTEN_PID, $LISTEN_FDS; the sockets start at fd 3).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spoolgate::app {

class Notifier {
 public:
  // Reads NOTIFY_SOCKET and WATCHDOG_USEC (honouring WATCHDOG_PID).
  Notifier();
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  bool enabled() const { return fd_ >= 0; }
  void send(std::string_view state);
  // Half the watchdog interval, when the service manager asked for pings.
  std::optional<std::chrono::milliseconds> watchdog_interval() const { return watchdog_; }

 private:
  int fd_ = -1;
  std::string path_;
  std::optional<std::chrono::milliseconds> watchdog_;
};

// The listening sockets systemd passed to this process (empty when none),
// made close-on-exec; the variables are removed so nothing inherits them.
std::vector<int> listen_fds();

}  // namespace spoolgate::app
