// SPDX-License-Identifier: MIT
#include "notify/sender.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>

#include "core/clock.h"
#include "core/files.h"
#include "core/log.h"
#include "tls/sign.h"

namespace spoolgate::notify {

namespace {

constexpr std::string_view kSuffix = ".json";

std::string file_name(std::uint64_t seq, const std::string& key) {
  char n[32];
  (void)std::snprintf(n, sizeof n, "%020llu", static_cast<unsigned long long>(seq));
  return std::string(n) + "-" + key + std::string(kSuffix);
}

bool retryable(long status) { return status == 408 || status == 425 || status == 429 || status >= 500; }

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

bool Target::wants(const std::string& event) const {
  return std::any_of(events.begin(), events.end(), [&](const std::string& e) { return e == "all" || e == event; });
}

std::string target_key(const std::string& url) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string digest = tls::sha256(url), out;
  for (std::size_t i = 0; i < 6; ++i) {
    auto b = static_cast<unsigned char>(digest[i]);
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

std::string target_host(const std::string& url) {
  std::string_view u = url;
  if (auto p = u.find("://"); p != std::string_view::npos) u.remove_prefix(p + 3);
  u = u.substr(0, u.find_first_of("/?#"));
  if (auto at = u.rfind('@'); at != std::string_view::npos) u.remove_prefix(at + 1);  // never userinfo
  return std::string(u);
}

Sender::Sender(loop::Loop& loop, http::Fetcher& fetcher, std::string dir, std::string host)
    : loop_(loop), fetcher_(fetcher), dir_(std::move(dir)), host_(std::move(host)) {
  timer_ = loop::Timer::create(loop_, [this] {
    for (auto& [key, q] : queues_) pump(q);
    arm();
  });
}

Sender::~Sender() { close(); }

void Sender::configure(std::vector<Target> targets) {
  std::map<std::string, Queue> next;
  for (auto& t : targets) {
    std::string key = target_key(t.url);
    auto it = queues_.find(key);
    Queue q;
    if (it != queues_.end()) q = std::move(it->second), queues_.erase(it);
    q.target = std::move(t);
    q.key = key;
    q.host = target_host(q.target.url);
    next[key] = std::move(q);
  }
  for (auto& [key, q] : queues_) {  // removed targets
    if (q.busy) fetcher_.cancel(q.request);
    for (const auto& item : q.items) drop(q, item, "its target is no longer in notify:");
  }
  queues_ = std::move(next);
  for (auto& [key, q] : queues_) pump(q);
  arm();
}

Result<void> Sender::open() {
  if (auto d = files::ensure_dir(dir_); !d) return d;
  auto names = files::names_in(dir_);
  if (!names) return tl::unexpected(names.error());
  std::size_t kept = 0;
  for (const auto& name : *names) {
    std::string path = dir_ + "/" + name;
    if (name.starts_with(".tmp-")) {  // a write interrupted by a crash: never acknowledged
      ::unlink(path.c_str());
      continue;
    }
    if (!name.ends_with(kSuffix)) continue;  // the daemon's own markers live here too
    auto text = files::read_small(path, 256 * std::size_t{1024});
    std::optional<Entry> e;
    if (text) e = decode(*text);
    if (!e) {
      log::error("notify_dropped").kv("file", path).kv("reason", text ? "not a notification" : text.error().message());
      ::unlink(path.c_str());
      ++stats_.dropped;
      continue;
    }
    next_seq_ = std::max(next_seq_, e->seq + 1);
    auto it = queues_.find(e->target);
    if (it == queues_.end()) {
      log::warn("notify_dropped")
          .kv("target", e->target)
          .kv("event", e->event.id)
          .kv("reason", "its target is no longer in notify:");
      ::unlink(path.c_str());
      ++stats_.dropped;
      continue;
    }
    it->second.items.push_back({std::move(*e), path});
    ++kept;
  }
  if (kept) log::info("notify_pending").kv("notifications", static_cast<std::uint64_t>(kept));
  for (auto& [key, q] : queues_) {
    std::sort(q.items.begin(), q.items.end(), [](const Item& a, const Item& b) { return a.entry.seq < b.entry.seq; });
    pump(q);
  }
  arm();
  return {};
}

void Sender::post(const Event& e) {  // also once closed: kept for the next start
  for (auto& [key, q] : queues_) {
    if (!q.target.wants(e.name)) continue;
    Item item{{next_seq_++, key, e}, ""};
    q.writing.insert(item.entry.seq);
    std::string file = dir_ + "/" + file_name(item.entry.seq, key);
    auto bytes = std::make_shared<std::string>(encode(item.entry));
    auto written = std::make_shared<Result<void>>();
    loop_.queue_work(
        [dir = dir_, file, bytes, written] {
          std::string tmp = dir + "/.tmp-" + file.substr(dir.size() + 1);
          *written = files::replace_file(tmp, file, *bytes);
          if (*written) *written = files::fsync_dir(dir);
        },
        [this, key = key, item = std::move(item), file, written]() mutable {
          if (*written) {
            item.file = file;
          } else {
            log::error("notify_not_kept")
                .kv("target", key)
                .kv("event", item.entry.event.id)
                .kv("reason", written->error().message())
                .kv("action", "sent from memory; lost if the daemon stops before it is delivered");
          }
          queued(key, std::move(item));
        });
  }
}

void Sender::queued(const std::string& key, Item item) {
  auto it = queues_.find(key);
  if (closed_ || it == queues_.end()) {  // closed, or the target went with a reload meanwhile
    if (!item.file.empty() && !closed_) unlink(item.file);
    return;
  }
  Queue& q = it->second;
  q.writing.erase(item.entry.seq);
  auto at = std::upper_bound(q.items.begin(), q.items.end(), item.entry.seq,
                             [](std::uint64_t seq, const Item& i) { return seq < i.entry.seq; });
  if (q.busy && at == q.items.begin()) ++at;  // never ahead of the one in flight
  q.items.insert(at, std::move(item));
  pump(q);
  arm();
}

void Sender::pump(Queue& q) {
  if (closed_ || q.busy || q.items.empty()) return;
  // Written out of order by the workers: the earlier ones first.
  if (!q.writing.empty() && *q.writing.begin() < q.items.front().entry.seq) return;
  std::int64_t now = unix_now();
  if (now < q.retry_at) return;
  while (!q.recent.empty() && q.recent.front() <= now - 60) q.recent.pop_front();
  if (q.recent.size() >= kPerMinute) return;
  const Item& head = q.items.front();
  if (now - head.entry.event.at > kMaxAge) {
    drop(q, head, "not delivered within 3 days");
    q.items.pop_front();
    return pump(q);
  }
  send(q);
}

void Sender::send(Queue& q) {
  const Entry& e = q.items.front().entry;
  Payload p = render(q.target.format, e.event, host_);
  http::Request r;
  r.url = q.target.url;
  r.method = "POST";
  r.headers.push_back("Content-Type: " + p.content_type);
  for (auto& h : p.headers) r.headers.push_back(std::move(h));
  if (!q.target.secret_file.empty()) {
    auto secret = files::read_small(q.target.secret_file, 4096);
    if (!secret || trimmed(*secret).empty()) {  // never sent unsigned
      return retry(q,
                   "cannot read secret_file " + q.target.secret_file + ": " +
                       (secret ? std::string("it is empty") : secret.error().message()),
                   0);
    }
    std::int64_t ts = unix_now();
    for (auto& h : signature_headers(ts, tls::hmac_sha256_hex(trimmed(*secret), signing_input(ts, p.body))))
      r.headers.push_back(std::move(h));
  }
  r.body = std::move(p.body);
  r.ca_file = q.target.ca_file;
  r.timeout = Millis(15'000);
  r.max_body = 64 * std::size_t{1024};
  q.busy = true;
  q.recent.push_back(unix_now());
  q.request = fetcher_.send(std::move(r), [this, key = q.key](const Result<http::Response>& a) { answered(key, a); });
}

void Sender::answered(const std::string& key, const Result<http::Response>& r) {
  auto it = queues_.find(key);
  if (it == queues_.end()) return;
  Queue& q = it->second;
  q.busy = false;
  q.request = 0;
  if (q.items.empty()) return;
  const Event& e = q.items.front().entry.event;
  if (!r) return retry(q, r.error().message(), 0);
  if (r->status >= 200 && r->status < 300) {
    ++stats_.sent;
    log::info("notify_sent").kv("target", key).kv("host", q.host).kv("event", e.id).kv("status", r->status);
    q.backoff = 0;
    done(q, true);
    return;
  }
  if (retryable(r->status)) {
    auto after = http::retry_after(r->header("retry-after"), unix_now());
    return retry(q, "HTTP " + std::to_string(r->status), after ? after->count() / 1000 : 0);
  }
  drop(q, q.items.front(), "the receiver refused it for good: HTTP " + std::to_string(r->status));
  done(q, false);
}

void Sender::done(Queue& q, bool remove) {
  if (remove && !q.items.front().file.empty()) unlink(q.items.front().file);
  q.items.pop_front();
  pump(q);
  arm();
}

void Sender::retry(Queue& q, const std::string& why, std::int64_t after) {
  q.backoff = q.backoff == 0 ? kFirstRetry : std::min(q.backoff * 2, kMaxRetry);
  std::int64_t wait = std::max(q.backoff, std::min(after, kMaxRetry));
  q.retry_at = unix_now() + wait;
  ++stats_.retried;
  log::warn("notify_retry")
      .kv("target", q.key)
      .kv("host", q.host)
      .kv("event", q.items.front().entry.event.id)
      .kv("reason", why)
      .kv("retry_in_s", wait);
  arm();
}

void Sender::drop(Queue& q, const Item& item, const std::string& why) {
  ++stats_.dropped;
  log::error("notify_dropped")
      .kv("target", q.key)
      .kv("host", q.host)
      .kv("event", item.entry.event.id)
      .kv("reason", why);
  if (!item.file.empty()) unlink(item.file);
}

void Sender::unlink(const std::string& file) {
  // A removal lost to a crash sends the notification again: the receiver
  // sees the same id twice, nothing is lost. No directory fsync needed.
  loop_.queue_work([file] { ::unlink(file.c_str()); }, [] {});
}

void Sender::arm() {
  if (closed_ || !timer_) return;
  std::int64_t now = unix_now();
  std::optional<std::int64_t> wake;
  for (const auto& [key, q] : queues_) {
    if (q.busy || q.items.empty()) continue;
    std::int64_t at = std::max(q.retry_at, q.recent.size() >= kPerMinute ? q.recent.front() + 60 : 0);
    if (!wake || at < *wake) wake = at;
  }
  if (!wake) return timer_->stop();
  // Seconds are whole: wake just after the second turns.
  timer_->start(Millis(std::max<std::int64_t>(*wake - now, 0) * 1000 + 50));
}

std::size_t Sender::pending() const {
  std::size_t n = 0;
  for (const auto& [key, q] : queues_) n += q.items.size();
  return n;
}

void Sender::close() {
  if (closed_) return;
  closed_ = true;
  for (auto& [key, q] : queues_)
    if (q.busy) fetcher_.cancel(q.request);
  timer_.reset();
}

}  // namespace spoolgate::notify
