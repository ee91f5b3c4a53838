// SPDX-License-Identifier: MIT
#include "fetch/client.h"

#include <csignal>
#include <memory>

#include "core/log.h"
#include "net/child.h"

namespace spoolgate::fetch {

Client::Client(loop::Loop& loop, std::string helper, Millis grace)
    : loop_(loop), helper_(std::move(helper)), grace_(grace) {
  later_timer_ = loop::Timer::create(loop_, [this] { flush_later(); });
  watchdog_ = loop::Timer::create(loop_, [this] { check_deadlines(); });
}

Client::~Client() { close(); }

int Client::helper_pid() const { return conn_ ? pid_ : 0; }

Result<void> Client::start() {
  auto who = std::make_shared<int>(0);  // the pid, known once spawned
  auto child = net::spawn_child(loop_, helper_, {}, [this, who](std::int64_t status, int signal) {
    exited(*who, status, signal);
  });
  if (!child) return tl::unexpected(child.error());
  int pid = child->process->pid();
  *who = pid;
  ++starts_;
  pid_ = pid;
  procs_.emplace(pid, std::move(child->process));
  conn_ = std::move(child->conn);
  decoder_ = http::Decoder{};
  conn_->on_read([this](std::string_view bytes, bool eof) { on_bytes(bytes, eof); });
  conn_->start_reading();
  log::info("https_helper_started").kv("pid", pid);
  return {};
}

void Client::exited(int pid, std::int64_t status, int signal) {
  if (pid == pid_ && conn_) {
    broken("the HTTPS helper exited (status " + std::to_string(status) + ", signal " + std::to_string(signal) + ")");
  }
  procs_.erase(pid);  // closes the handle from inside its own callback, as loop.h allows
}

std::uint64_t Client::send(http::Request r, Done done) {
  std::uint64_t id = ++next_id_;
  if (closed_) return id;  // shutting down: done is dropped, as after close()
  if (!conn_) {
    if (auto s = start(); !s) {
      pending_.emplace(id, Pending{std::move(done), 0});
      later(id, s.error());
      return id;
    }
  }
  std::uint64_t deadline = loop_.now_ms() + static_cast<std::uint64_t>(r.timeout.count() + grace_.count());
  pending_.emplace(id, Pending{std::move(done), deadline});
  arm_watchdog();
  http::Frame f;
  f.kind = http::Frame::Kind::Request;
  f.id = id;
  f.request = std::move(r);
  conn_->write(http::encode(f));  // a failed write comes back as EOF, from the loop
  return id;
}

void Client::cancel(std::uint64_t id) {
  if (pending_.erase(id) == 0) return;
  if (conn_) {
    http::Frame f;
    f.kind = http::Frame::Kind::Cancel;
    f.id = id;
    conn_->write(http::encode(f));
  }
}

void Client::later(std::uint64_t id, Error e) {
  failed_.emplace_back(id, std::move(e));
  later_timer_->start(Millis(0));
}

void Client::flush_later() {
  auto failed = std::move(failed_);
  failed_.clear();
  for (auto& [id, e] : failed) {
    auto it = pending_.find(id);
    if (it == pending_.end()) continue;  // cancelled meanwhile
    Done done = std::move(it->second.done);
    pending_.erase(it);
    done(tl::unexpected(std::move(e)));
    if (closed_) return;
  }
}

void Client::on_bytes(std::string_view bytes, bool eof) {
  if (eof) {
    broken("the HTTPS helper closed its socket");
    return;
  }
  decoder_.feed(bytes);
  net::Connection* conn = conn_.get();
  while (conn_.get() == conn && !closed_) {
    auto f = decoder_.next();
    if (!f) return;
    if (!*f) {
      broken("the HTTPS helper sent a malformed frame: " + f->error().message());
      return;
    }
    http::Frame& fr = **f;
    if (fr.kind != http::Frame::Kind::Answer) {
      broken("the HTTPS helper sent a frame that is not an answer");
      return;
    }
    auto it = pending_.find(fr.id);
    if (it == pending_.end()) continue;  // cancelled after the helper answered
    Done done = std::move(it->second.done);
    pending_.erase(it);
    done(std::move(fr.answer));
  }
}

void Client::broken(const std::string& why) {
  if (!conn_) return;
  log::warn("https_helper_failed").kv("pid", pid_).kv("reason", why).kv("requests_failed", pending_.size());
  net::Connection::discard(std::move(conn_));
  if (auto it = procs_.find(pid_); it != procs_.end()) it->second->kill(SIGKILL);
  std::vector<std::uint64_t> ids;
  for (const auto& [id, p] : pending_)
    if (p.deadline != 0) ids.push_back(id);  // not those already failing from the timer
  for (std::uint64_t id : ids) {
    auto it = pending_.find(id);
    if (it == pending_.end()) continue;
    Done done = std::move(it->second.done);
    pending_.erase(it);
    done(fail(Errc::Io, why));
    if (closed_) return;
  }
}

void Client::arm_watchdog() {
  std::uint64_t first = 0;
  for (const auto& [id, p] : pending_)
    if (p.deadline != 0 && (first == 0 || p.deadline < first)) first = p.deadline;
  if (first == 0) {
    watchdog_->stop();
    return;
  }
  std::uint64_t now = loop_.now_ms();
  watchdog_->start(Millis(first > now ? static_cast<Millis::rep>(first - now) : 0));
}

void Client::check_deadlines() {
  std::uint64_t now = loop_.now_ms();
  for (const auto& [id, p] : pending_) {
    if (p.deadline != 0 && p.deadline <= now) {
      broken("the HTTPS helper did not answer in time");
      break;
    }
  }
  if (!closed_) arm_watchdog();
}

void Client::close() {
  if (closed_) return;
  closed_ = true;
  pending_.clear();
  failed_.clear();
  if (conn_) net::Connection::discard(std::move(conn_));
  procs_.clear();  // the helper exits on EOF; the daemon is going away
  later_timer_.reset();
  watchdog_.reset();
}

}  // namespace spoolgate::fetch
