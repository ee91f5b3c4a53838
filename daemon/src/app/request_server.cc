// SPDX-License-Identifier: MIT
#include "app/request_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "core/log.h"

namespace spoolgate::app {

struct RequestServer::Client {
  std::unique_ptr<net::Connection> conn;
  loop::HandlePtr<loop::Timer> timer;
  std::string buf;
  std::uint64_t seq = 0;  // accept order
  bool answered = false;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
};

RequestServer::RequestServer(loop::Loop& loop, Options options, Handler handler)
    : loop_(loop), options_(std::move(options)), handler_(std::move(handler)) {}

RequestServer::~RequestServer() { close(); }

Result<void> RequestServer::start() {
  auto l =
      net::Listener::create(loop_, options_.spec, [this](std::unique_ptr<net::Connection> c) { accept(std::move(c)); });
  if (!l) return tl::unexpected(l.error());
  if (options_.spec.unix_socket) ::chmod(options_.spec.path.c_str(), 0600);
  listener_ = std::move(*l);
  return {};
}

std::string RequestServer::address() const { return listener_ ? listener_->address() : std::string(); }

void RequestServer::close() {
  listener_.reset();
  std::set<Client*> snapshot = clients_;
  for (Client* c : snapshot) c->conn->close();
}

void RequestServer::close_when_idle(std::function<void()> then) {
  listener_.reset();
  idle_ = std::move(then);
  if (clients_.empty()) {
    auto f = std::move(idle_);
    idle_ = nullptr;
    f();
  }
}

void RequestServer::accept(std::unique_ptr<net::Connection> conn) {
  auto* c = new Client{std::move(conn), {}, {}};
  c->seq = ++accepted_;
  clients_.insert(c);
  c->conn->on_closed([this, c] { release(c); });
  if (!c->conn->is_unix() && !options_.allow.empty()) {
    bool allowed = false;
    for (const auto& n : options_.allow) allowed = allowed || n.contains(c->conn->peer_ip());
    if (!allowed) {
      log::warn("refused").kv("server", address()).kv("client", c->conn->peer()).kv("reason", "not in allow_networks");
      c->conn->close();
      return;
    }
  }
  std::size_t live = 0;
  for (Client* o : clients_) live += o->conn->closing() ? 0 : 1;
  if (live > options_.max_clients) {
    // Make room: the oldest client that has not sent its whole request yet
    // goes (answered ones are finishing their write and go soon anyway).
    Client* oldest = nullptr;
    for (Client* o : clients_)
      if (o != c && !o->answered && !o->conn->closing() && (!oldest || o->seq < oldest->seq)) oldest = o;
    if (!oldest) {
      c->conn->close();
      return;
    }
    oldest->conn->close();
  }
  c->timer = loop::Timer::create(loop_, [c] { c->conn->close(); });
  c->timer->start(options_.timeout);
  c->conn->on_read([this, c](std::string_view bytes, bool eof) {
    if (c->answered) return;
    if (eof) {
      c->conn->close();
      return;
    }
    c->buf.append(bytes);
    size_t end = c->buf.find(options_.terminator);
    if (end == std::string::npos) {
      if (c->buf.size() > options_.max_request) c->conn->close();
      return;
    }
    c->answered = true;
    c->conn->stop_reading();
    std::weak_ptr<bool> alive = c->alive;
    handler_(c->buf.substr(0, end), [c, alive](std::string reply) {
      if (alive.expired()) return;  // the client went away meanwhile
      c->conn->write(std::move(reply));
      c->conn->close_after_writes();
    });
  });
  c->conn->start_reading();
}

void RequestServer::release(Client* c) {
  clients_.erase(c);
  c->alive.reset();
  delete c;
  if (idle_ && clients_.empty()) {
    auto f = std::move(idle_);
    idle_ = nullptr;
    f();
  }
}

std::optional<RequestLine> request_line(const std::string& head) {
  // Callers cut the head at CRLFCRLF, so each line ends with CRLF.
  for (std::size_t i = 0; i < head.size(); ++i)
    if ((head[i] == '\r' && (i + 1 >= head.size() || head[i + 1] != '\n')) ||
        (head[i] == '\n' && (i == 0 || head[i - 1] != '\r')))
      return std::nullopt;
  std::string line = head.substr(0, head.find("\r\n"));
  std::size_t sp1 = line.find(' ');
  std::size_t sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string::npos || line.compare(sp2 + 1, 5, "HTTP/") != 0) return std::nullopt;
  return RequestLine{line.substr(0, sp1), line.substr(sp1 + 1, sp2 - sp1 - 1)};
}

std::string http_response(const char* status, const char* type, const std::string& body, bool with_body,
                          const std::string& extra) {
  std::string r = std::string("HTTP/1.1 ") + status + "\r\nContent-Type: " + type +
                  "\r\nContent-Length: " + std::to_string(body.size()) +
                  "\r\nCache-Control: no-store\r\nConnection: close\r\n" + extra + "\r\n";
  if (with_body) r += body;
  return r;
}

std::optional<std::string> control_request(const std::string& path, const std::string& line, Millis timeout) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  // A daemon whose loop is stuck must not hang the caller (health checks).
  timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    ::close(fd);
    return std::nullopt;
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return std::nullopt;
  }
  std::string req = line + "\n";
  (void)::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string reply;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      ::close(fd);
      return std::nullopt;  // timed out
    }
    if (n == 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return reply;
}

}  // namespace spoolgate::app
