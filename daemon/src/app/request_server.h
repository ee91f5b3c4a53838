// SPDX-License-Identifier: MIT
// app/request_server: small one-request-per-connection servers on the loop.
//
// Two users: the control socket (<spool>/control.sock; a single line such as
// "flush", "retry ID", "health", answered with "ok" or "error: why" on the
// first line, then any text) and the metrics endpoint (an HTTP/1.x request
// head, answered with a whole HTTP response). Either way the server reads
// until the request's terminator, hands the request to the handler, writes
// the one reply and closes. Requests are bounded in size, connections in
// number, and a slow client is cut off by a timer; at the limit, a new
// client makes room by closing the oldest one still sending its request,
// so a few slow (or malicious) clients cannot keep a health check out.
//
// The control socket lives in the spool directory (mode 0700) and is itself
// 0600: only the spool's owner can talk to the daemon.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/cidr.h"
#include "core/result.h"
#include "loop/loop.h"
#include "net/listener.h"

namespace spoolgate::app {

class RequestServer {
 public:
  using Respond = std::function<void(std::string reply)>;
  // `request` is everything before the terminator.
  using Handler = std::function<void(const std::string& request, Respond respond)>;

  struct Options {
    net::ListenSpec spec;
    std::string terminator = "\n";
    std::size_t max_request = 1024;
    std::size_t max_clients = 64;
    Millis timeout{10'000};
    // TCP clients outside these networks are closed at once (empty: any;
    // unix sockets are guarded by their mode instead).
    std::vector<Cidr> allow;
  };

  RequestServer(loop::Loop& loop, Options options, Handler handler);
  ~RequestServer();
  RequestServer(const RequestServer&) = delete;
  RequestServer& operator=(const RequestServer&) = delete;

  // Binds (a unix socket is made 0600).
  Result<void> start();
  std::string address() const;
  void close();
  // Stops accepting; `then` runs once every client has gone (its answer
  // written), at once when none is left. A caller that is done with the
  // server uses it so that its last answer reaches the peer.
  void close_when_idle(std::function<void()> then);

 private:
  struct Client;
  void accept(std::unique_ptr<net::Connection> c);
  void release(Client* c);

  loop::Loop& loop_;
  Options options_;
  Handler handler_;
  loop::HandlePtr<net::Listener> listener_;
  std::set<Client*> clients_;
  std::uint64_t accepted_ = 0;
  std::function<void()> idle_;
};

// HTTP/1.1 for the two HTTP users (the metrics endpoint, the browser
// sign-in's loopback redirect).
struct RequestLine {
  std::string method;
  std::string target;  // as sent, query included
};
// The request line of a head (request line and headers, without the blank
// line); nothing when the head is malformed (RFC 9112 2.2: a bare CR or LF;
// no "METHOD SP target SP HTTP/").
std::optional<RequestLine> request_line(const std::string& head);
// A whole answer (Connection: close, no-store); the body only when with_body
// (not for HEAD).
// extra: more header fields, each ending in CRLF.
std::string http_response(const char* status, const char* type, const std::string& body, bool with_body = true,
                          const std::string& extra = {});

// The client side of the control socket: sends `line`, returns the whole
// reply, or nothing when no daemon answers within `timeout`.
std::optional<std::string> control_request(const std::string& path, const std::string& line,
                                           Millis timeout = Millis(60'000));

}  // namespace spoolgate::app
