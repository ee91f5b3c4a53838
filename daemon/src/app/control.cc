// SPDX-License-Identifier: MIT
#include "app/control.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "core/log.h"

namespace spoolgate::app {

struct Control::Client {
  Control* owner;
  std::unique_ptr<net::Connection> conn;
  loop::HandlePtr<loop::Timer> timer;
  std::string buf;
  bool answered = false;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
};

Control::Control(loop::Loop& loop, std::string path, Handler handler)
    : loop_(loop), path_(std::move(path)), handler_(std::move(handler)) {}

Control::~Control() = default;

Result<void> Control::start() {
  net::ListenSpec spec;
  spec.unix_socket = true;
  spec.path = path_;
  auto l = net::Listener::create(loop_, spec, [this](std::unique_ptr<net::Connection> c) { accept(std::move(c)); });
  if (!l) return tl::unexpected(l.error());
  ::chmod(path_.c_str(), 0600);
  listener_ = std::move(*l);
  return {};
}

void Control::close() {
  listener_.reset();
  std::set<Client*> snapshot = clients_;
  for (Client* c : snapshot) c->conn->close();
}

void Control::accept(std::unique_ptr<net::Connection> conn) {
  auto* c = new Client{this, std::move(conn), {}, {}};
  clients_.insert(c);
  c->timer = loop::Timer::create(loop_, [c] { c->conn->close(); });
  c->timer->start(Millis(10'000));
  c->conn->on_closed([this, c] { release(c); });
  c->conn->on_read([this, c](std::string_view bytes, bool eof) {
    if (c->answered) return;
    if (eof) {
      c->conn->close();
      return;
    }
    c->buf.append(bytes);
    size_t nl = c->buf.find('\n');
    if (nl == std::string::npos) {
      if (c->buf.size() > 1024) c->conn->close();
      return;
    }
    c->answered = true;
    std::string line = c->buf.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t sp = line.find(' ');
    std::string verb = line.substr(0, sp);
    std::string arg = sp == std::string::npos ? "" : line.substr(sp + 1);
    log::info("control").kv("verb", verb).kv("arg", arg);
    std::weak_ptr<bool> alive = c->alive;
    handler_(verb, arg, [c, alive](std::string reply) {
      if (alive.expired()) return;  // the client went away meanwhile
      c->conn->write(reply);
      c->conn->close_after_writes();
    });
  });
  c->conn->start_reading();
}

void Control::release(Client* c) {
  clients_.erase(c);
  c->alive.reset();
  delete c;
}

std::optional<std::string> control_request(const std::string& path, const std::string& line) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
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
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return reply;
}

}  // namespace spoolgate::app
