// SPDX-License-Identifier: MIT
#include "listener/inbound.h"

#include <sys/stat.h>

#include <algorithm>

#include "core/clock.h"
#include "core/log.h"
#include "core/text.h"
#include "listener/session.h"

namespace spoolgate::listener {

Inbound::Inbound(loop::Loop& loop, const std::shared_ptr<spool::Spool>& spool, Settings settings,
                 spool::Accounting& accounting)
    : loop_(loop),
      spool_(spool),
      settings_(std::move(settings)),
      accounting_(accounting),
      committer_([&loop](std::function<void()> work,
                         std::function<void()> done) { loop.queue_work(std::move(work), std::move(done)); },
                 spool) {}

Inbound::~Inbound() = default;

namespace {
std::string spec_key(const net::ListenSpec& s) {
  if (s.fd >= 0) return "fd:" + std::to_string(s.fd);
  return s.unix_socket ? "unix:" + s.path : s.host + "|" + std::to_string(s.port);
}

// One key per endpoint, in order: the same address twice (port 0 in tests:
// the kernel picks two ports) gets "#2", "#3", ...
std::vector<std::string> keys_of(const std::vector<Endpoint>& listen) {
  std::vector<std::string> out;
  std::map<std::string, int> seen;
  for (const auto& e : listen) {
    std::string k = spec_key(e.spec);
    int n = ++seen[k];
    out.push_back(n == 1 ? k : k + "#" + std::to_string(n));
  }
  return out;
}
}  // namespace

Result<loop::HandlePtr<net::Listener>> Inbound::listen_on(const net::ListenSpec& spec, const std::string& key) {
  // The connection finds its endpoint by key at accept: after a reload, the
  // endpoint's new settings (a rotated certificate) apply.
  auto l = net::Listener::create(loop_, spec,
                                 [this, key](std::unique_ptr<net::Connection> c) { accept(std::move(c), key); });
  if (l) log::info("listening").kv("address", (*l)->address());
  return l;
}

Result<void> Inbound::start() {
  auto keys = keys_of(settings_.listen);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    auto l = listen_on(settings_.listen[i].spec, keys[i]);
    if (!l) {
      listeners_.clear();
      return tl::unexpected(l.error());
    }
    listeners_.emplace_back(keys[i], std::move(*l));
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
                                 [this](std::unique_ptr<net::Connection> c) { accept(std::move(c), ""); });
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
  auto keys = keys_of(s.listen);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const Endpoint& e = s.listen[i];
    const std::string& key = keys[i];
    auto it = std::find_if(listeners_.begin(), listeners_.end(), [&](auto& p) { return p.first == key && p.second; });
    if (it != listeners_.end()) {
      next.emplace_back(key, std::move(it->second));
      continue;
    }
    auto l = listen_on(e.spec, key);
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
  start_submission();
  return {};
}

std::vector<std::pair<std::string, std::int64_t>> Inbound::certificates() const {
  std::vector<std::pair<std::string, std::int64_t>> out;
  auto keys = keys_of(settings_.listen);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (!settings_.listen[i].tls_ctx) continue;
    for (const auto& [k, l] : listeners_)
      if (k == keys[i] && l) out.emplace_back(l->address(), tls::server_leaf(*settings_.listen[i].tls_ctx).not_after);
  }
  return out;
}

std::vector<std::string> Inbound::addresses() const {
  std::vector<std::string> out;
  for (const auto& [k, l] : listeners_)
    if (l) out.push_back(l->address());
  return out;
}

void Inbound::accept(std::unique_ptr<net::Connection> c, const std::string& key) {
  bool is_unix = c->is_unix();
  IpAddress ip = c->peer_ip();
  static const Endpoint plain;  // the submission socket
  const Endpoint* ep = &plain;
  auto keys = keys_of(settings_.listen);
  for (std::size_t i = 0; i < keys.size(); ++i)
    if (keys[i] == key) ep = &settings_.listen[i];
  auto owned = std::make_unique<Session>(*this, std::move(c), *ep);
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
    for (const auto& n : ep->allow_networks.empty() ? settings_.allow_networks : ep->allow_networks)
      allowed = allowed || n.contains(ip);
    if (!allowed) {
      refuse("554 5.7.1 Error: access denied for " + s->peer(), "client not in allow_networks");
      return;
    }
  }
  if (shutting_down_) {
    refuse("421 4.3.2 " + settings_.smtp.hostname + " Service shutting down, try again later", "shutting down");
    return;
  }
  if (accounting_.far_over()) {
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

void Inbound::release(Session* s) {
  count_out(s);
  accounting_.unreserve(s);
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

namespace {
constexpr std::int64_t kAuthWindowMs = std::int64_t{15} * 60 * 1000;
constexpr std::uint64_t kAuthLockAfter = 10;
}  // namespace

std::uint64_t Inbound::auth_failed(const std::string& client) {
  ++counters_.auth_failed;
  std::int64_t now = unix_now_ms();
  // Bounded: a client that rotates addresses must not grow this forever.
  if (auth_failures_.size() > 10000)
    std::erase_if(auth_failures_, [now](const auto& kv) { return now - kv.second.last > kAuthWindowMs; });
  Failures& f = auth_failures_[client];
  if (now - f.last > kAuthWindowMs) f.count = 0;
  f.last = now;
  return ++f.count;
}

bool Inbound::auth_locked(const std::string& client) const {
  auto it = auth_failures_.find(client);
  return it != auth_failures_.end() && it->second.count >= kAuthLockAfter &&
         unix_now_ms() - it->second.last <= kAuthWindowMs;
}

bool Inbound::within_rate(const std::string& device) {
  if (device.empty()) return true;
  const Settings::Device* d = nullptr;
  for (const auto& x : settings_.devices)
    if (x.policy.name == device) d = &x;
  if (!d || d->rate_limit == 0) return true;
  std::int64_t now = unix_now_ms();
  auto [it, fresh] = buckets_.try_emplace(device);
  Bucket& b = it->second;
  double cap = static_cast<double>(d->rate_limit);
  if (fresh) {
    b.tokens = cap;
  } else {
    b.tokens = std::min(cap, b.tokens + cap * static_cast<double>(now - b.at) / 60000.0);
  }
  b.at = now;
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  return true;
}

void Inbound::committed(const spool::Record& r) {
  accounting_.added(r);
  ++counters_.received;
  // Bounded by the names the daemon accepts (devices and users files).
  if (!r.device.empty()) ++counters_.received_by_device[r.device];
  auto& seen = counters_.seen;
  Counters::Seen& s = seen[r.device.empty() ? r.client : r.device];
  s.last = unix_now();
  ++s.messages;
  if (!settings_.watched_senders.empty()) {
    std::string sender = lower(r.sender);
    for (const auto& w : settings_.watched_senders)
      if (w == sender) counters_.senders_seen[w] = s.last;
  }
  if (seen.size() > Counters::kMaxSeen)
    seen.erase(std::min_element(seen.begin(), seen.end(),
                                [](const auto& a, const auto& b) { return a.second.last < b.second.last; }));
  if (on_committed) on_committed(r);
}

}  // namespace spoolgate::listener
