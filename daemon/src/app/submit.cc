// SPDX-License-Identifier: MIT
#include "app/submit.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "core/result.h"
#include "smtp/reply.h"

namespace spoolgate::app {
namespace {

constexpr int kCommandTimeout = 60;   // seconds, for each reply
constexpr int kCommitTimeout = 600;   // the reply after the final dot waits for fsync

class Conversation {
 public:
  explicit Conversation(int fd) : fd_(fd) {}
  ~Conversation() { ::close(fd_); }
  Conversation(const Conversation&) = delete;
  Conversation& operator=(const Conversation&) = delete;

  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  std::optional<smtp::Reply> reply(int timeout_s) {
    timeval tv{timeout_s, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (;;) {
      if (auto r = parser_.next()) return r;
      char buf[4096];
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return std::nullopt;
      if (!parser_.feed(std::string_view(buf, static_cast<size_t>(n)))) return std::nullopt;
    }
  }

 private:
  int fd_;
  smtp::ReplyParser parser_;
};

bool non_ascii(const std::string& s) {
  for (unsigned char c : s)
    if (c >= 0x80) return true;
  return false;
}

}  // namespace

Submitted submit(const std::string& socket_path, const spool::Record& envelope, const std::string& content) {
  Submitted out;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (fd < 0 || socket_path.empty() || socket_path.size() >= sizeof addr.sun_path) {
    if (fd >= 0) ::close(fd);
    out.detail = "no usable submission socket";
    return out;
  }
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  timeval tv{kCommandTimeout, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    out.detail = fail_errno("nothing answers on " + socket_path, errno).value().message();
    ::close(fd);
    return out;
  }
  Conversation c(fd);
  out.outcome = Submitted::Outcome::Refused;
  // One step: send a command (or nothing), expect a reply class.
  auto step = [&](const std::string& line, int want, int timeout = kCommandTimeout) -> bool {
    if (!line.empty() && !c.send(line + "\r\n")) {
      out.detail = "the daemon closed the connection";
      return false;
    }
    auto r = c.reply(timeout);
    if (!r) {
      out.detail = "no reply from the daemon";
      return false;
    }
    if (r->code / 100 != want) {
      out.code = r->code;
      out.detail = r->summary();
      return false;
    }
    out.detail = r->summary();
    return true;
  };
  bool utf8 = non_ascii(envelope.sender);
  for (const auto& rc : envelope.recipients) utf8 = utf8 || non_ascii(rc);
  std::string mail = "MAIL FROM:<" + envelope.sender + ">";
  if (envelope.body_8bit) mail += " BODY=8BITMIME";
  if (utf8) mail += " SMTPUTF8";
  if (!step("", 2) || !step("EHLO " + envelope.helo, 2) || !step(mail, 2)) return out;
  for (const auto& rc : envelope.recipients)
    if (!step("RCPT TO:<" + rc + ">", 2)) return out;
  if (!step("DATA", 3)) return out;
  bool crlf = content.empty() || content.ends_with("\r\n");
  if (!c.send(content) || !c.send(crlf ? ".\r\n" : "\r\n.\r\n")) {
    out.detail = "the daemon closed the connection during DATA";
    return out;
  }
  if (!step("", 2, kCommitTimeout)) return out;
  out.outcome = Submitted::Outcome::Queued;
  std::string queued = out.detail;
  (void)step("QUIT", 2);
  out.detail = queued;
  return out;
}

}  // namespace spoolgate::app
