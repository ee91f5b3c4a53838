// SPDX-License-Identifier: MIT
#include "listener/inbound.h"

#include <sys/stat.h>

#include <algorithm>

#include "core/log.h"
#include "listener/session.h"

namespace spoolgate::listener {

Inbound::Inbound(loop::Loop& loop, const std::shared_ptr<spool::Spool>& spool, Settings settings, Usage initial)
    : loop_(loop), spool_(spool), settings_(std::move(settings)), usage_(initial), committer_(loop, spool) {}

Inbound::~Inbound() = default;

namespace {
std::string spec_key(const net::ListenSpec& s) {
  if (s.fd >= 0) return "fd:" + std::to_string(s.fd);
  return s.unix_socket ? "unix:" + s.path : s.host + "|" + std::to_string(s.port);
}
}  // namespace

Result<loop::HandlePtr<net::Listener>> Inbound::listen_on(const net::ListenSpec& spec) {
  auto l = net::Listener::create(loop_, spec, [this](std::unique_ptr<net::Connection> c) { accept(std::move(c)); });
  if (l) log::info("listening").kv("address", (*l)->address());
  return l;
}

Result<void> Inbound::start() {
  for (const auto& spec : settings_.listen) {
    auto l = listen_on(spec);
    if (!l) {
      listeners_.clear();
      return tl::unexpected(l.error());
    }
    listeners_.emplace_back(spec_key(spec), std::move(*l));
  }
  start_submission();
  return {};
}

void Inbound::start_submission() {
  std::string want = settings_.submission ? settings_.submission->path : "";
  if (want == submission_path_ && (submission_ || want.empty())) return;
  submission_.reset();
  submission_path_ = want;
  if (want.empty()) return;
  // Its directory (/run/spoolgate under systemd's RuntimeDirectory) is made
  // if missing, searchable by everyone.
  std::string dir = want.substr(0, want.rfind('/'));
  if (!dir.empty()) (void)::mkdir(dir.c_str(), 0755);
  auto l = net::Listener::create(loop_, *settings_.submission,
                                 [this](std::unique_ptr<net::Connection> c) { accept(std::move(c)); });
  if (!l) {
    log::warn("submission_unavailable")
        .kv("address", "unix:" + want)
        .kv("reason", l.error().message())
        .kv("action", "spoolgate sendmail cannot hand mail to this daemon; fix submission_socket");
    return;
  }
  log::info("submission_listening").kv("address", (*l)->address());
  submission_ = std::move(*l);
}

Result<void> Inbound::reconfigure(Settings s) {
  // Open what is new first; only when all of it worked, close what went away.
  decltype(listeners_) next;
  for (const auto& spec : s.listen) {
    std::string key = spec_key(spec);
    auto it = std::find_if(listeners_.begin(), listeners_.end(), [&](auto& p) { return p.first == key && p.second; });
    if (it != listeners_.end()) {
      next.emplace_back(key, std::move(it->second));
      continue;
    }
    auto l = listen_on(spec);
    if (!l) {
      // Put back what was moved; new listeners in `next` close when it goes.
      for (auto& [k, lst] : next)
        for (auto& [ok, old] : listeners_)
          if (ok == k && !old && lst) old = std::move(lst);
      return tl::unexpected(l.error());
    }
    next.emplace_back(key, std::move(*l));
  }
  for (auto& [k, old] : listeners_)
    if (old) log::info("unlistening").kv("address", old->address());
  listeners_ = std::move(next);
  settings_ = std::move(s);
  over_ = false;
  start_submission();
  return {};
}

std::vector<std::string> Inbound::addresses() const {
  std::vector<std::string> out;
  for (const auto& [k, l] : listeners_)
    if (l) out.push_back(l->address());
  return out;
}

void Inbound::accept(std::unique_ptr<net::Connection> c) {
  bool is_unix = c->is_unix();
  IpAddress ip = c->peer_ip();
  auto owned = std::make_unique<Session>(*this, std::move(c));
  Session* s = owned.get();
  sessions_.emplace(s, std::move(owned));
  counted_.insert(s);
  std::uint64_t from_client = ++per_client_[s->peer()];
  ++counters_.connections;
  auto refuse = [this, s](const std::string& reply, const std::string& why) {
    ++counters_.refused;
    s->refuse(reply, why);
  };
  if (!is_unix) {
    bool allowed = false;
    for (const auto& n : settings_.allow_networks) allowed = allowed || n.contains(ip);
    if (!allowed) {
      refuse("554 5.7.1 Error: access denied for " + s->peer(), "client not in allow_networks");
      return;
    }
  }
  if (shutting_down_) {
    refuse("421 4.3.2 " + settings_.smtp.hostname + " Service shutting down, try again later", "shutting down");
    return;
  }
  if (far_over()) {
    // Far over the watermarks: say so at connect instead of after MAIL.
    refuse("421 4.3.2 " + settings_.smtp.hostname + " Service temporarily unavailable: spool full",
           "spool far over its watermark");
    return;
  }
  if (counted_.size() > settings_.max_connections) {
    refuse("421 4.7.0 " + settings_.smtp.hostname + " Error: too many connections", "max_connections");
    return;
  }
  if (from_client > settings_.max_connections_per_client) {
    refuse("421 4.7.0 " + settings_.smtp.hostname + " Error: too many connections from " + s->peer(),
           "max_connections_per_client");
    return;
  }
  s->start();
}

void Inbound::count_out(Session* s) {
  if (!counted_.erase(s)) return;
  auto it = per_client_.find(s->peer());
  if (it != per_client_.end() && --it->second == 0) per_client_.erase(it);
}

bool Inbound::reserve(Session* s, std::uint64_t bytes) {
  unreserve(s);
  reservations_[s] = bytes;
  reserved_ += bytes;
  if (accepting()) return true;
  unreserve(s);
  return false;
}

void Inbound::grow(Session* s, std::uint64_t written) {
  auto it = reservations_.find(s);
  if (it == reservations_.end() || it->second >= written) return;
  reserved_ += written - it->second;
  it->second = written;
}

void Inbound::unreserve(Session* s) {
  auto it = reservations_.find(s);
  if (it == reservations_.end()) return;
  reserved_ -= it->second;
  reservations_.erase(it);
}

void Inbound::release(Session* s) {
  count_out(s);
  unreserve(s);
  sessions_.erase(s);
  if (shutting_down_ && sessions_.empty() && all_closed_) {
    auto done = std::move(all_closed_);
    all_closed_ = nullptr;
    done();
  }
}

void Inbound::shutdown(std::function<void()> all_closed) {
  shutting_down_ = true;
  all_closed_ = std::move(all_closed);
  listeners_.clear();  // closes them
  submission_.reset();
  std::vector<Session*> snapshot;
  for (auto& [s, _] : sessions_) snapshot.push_back(s);
  for (Session* s : snapshot) s->shutdown();
  if (sessions_.empty() && all_closed_) {
    auto done = std::move(all_closed_);
    all_closed_ = nullptr;
    done();
  }
}

void Inbound::abort_sessions() {
  std::vector<Session*> snapshot;
  for (auto& [s, _] : sessions_) snapshot.push_back(s);
  for (Session* s : snapshot) s->close("shutdown deadline");
}

void Inbound::committed(const spool::Record& r) {
  add_usage(r);
  ++counters_.received;
  if (on_committed) on_committed(r);
}

void Inbound::add_usage(const spool::Record& r) {
  usage_.bytes += r.size;
  usage_.messages += 1;
}

void Inbound::removed(std::uint64_t bytes) {
  usage_.bytes -= std::min(usage_.bytes, bytes);
  if (usage_.messages) --usage_.messages;
}

void Inbound::set_free_disk(std::uint64_t bytes) { usage_.free_disk = bytes; }

bool Inbound::far_over() const {
  const auto& s = settings_;
  return usage_.bytes >= s.spool_max_bytes + std::max<std::uint64_t>(1, s.spool_max_bytes / 4) ||
         usage_.messages >= s.spool_max_messages + std::max<std::uint64_t>(1, s.spool_max_messages / 4) ||
         usage_.free_disk < s.spool_min_free_disk / 2;
}

bool Inbound::accepting() {
  const auto& s = settings_;
  // What transactions in progress reserved counts as written already.
  std::uint64_t bytes = usage_.bytes + reserved_;
  std::uint64_t free = usage_.free_disk - std::min(usage_.free_disk, reserved_);
  bool high = bytes >= s.spool_max_bytes || usage_.messages >= s.spool_max_messages || free < s.spool_min_free_disk;
  bool low = bytes < s.spool_max_bytes - s.spool_max_bytes / 10 &&
             usage_.messages < s.spool_max_messages - s.spool_max_messages / 10 &&
             free >= s.spool_min_free_disk + s.spool_min_free_disk / 10;
  if (!over_ && high) {
    over_ = true;
    log::warn("watermark_high")
        .kv("queue_bytes", usage_.bytes)
        .kv("queue_messages", usage_.messages)
        .kv("free_disk", usage_.free_disk);
  } else if (over_ && low) {
    over_ = false;
    log::info("watermark_low")
        .kv("queue_bytes", usage_.bytes)
        .kv("queue_messages", usage_.messages)
        .kv("free_disk", usage_.free_disk);
  }
  return !over_;
}

}  // namespace spoolgate::listener
