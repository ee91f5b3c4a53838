// SPDX-License-Identifier: MIT
// app/control: the daemon's control socket, <spool>/control.sock.
//
// One request per connection: a single line ("flush", "retry ID",
// "delete ID", "show ID"), answered with "ok" or "error: why" on the first
// line, then any text, then the connection closes. The socket lives in the
// spool directory (mode 0700) and is itself 0600: only the spool's owner can
// talk to the daemon. Requests are bounded (1 KiB); a slow client is cut off
// by a timer.
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>

#include "core/result.h"
#include "loop/loop.h"
#include "net/stream.h"

namespace spoolgate::app {

class Control {
 public:
  using Respond = std::function<void(std::string reply)>;
  using Handler = std::function<void(const std::string& verb, const std::string& arg, Respond respond)>;

  Control(loop::Loop& loop, std::string path, Handler handler);
  ~Control();
  Result<void> start();
  void close();

 private:
  struct Client;
  void accept(std::unique_ptr<net::Connection> c);
  void release(Client* c);

  loop::Loop& loop_;
  std::string path_;
  Handler handler_;
  loop::HandlePtr<net::Listener> listener_;
  std::set<Client*> clients_;
};

// The CLI side: sends one request; nullopt when no daemon answers (no socket,
// or nobody listening), else the daemon's reply.
std::optional<std::string> control_request(const std::string& path, const std::string& line);

}  // namespace spoolgate::app
