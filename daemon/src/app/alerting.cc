// SPDX-License-Identifier: MIT
#include "app/alerting.h"

#include <unistd.h>

#include <algorithm>
#include <sstream>

#include "app/status.h"
#include "core/clock.h"
#include "core/files.h"
#include "core/log.h"

namespace spoolgate::app {

namespace {

std::int64_t seconds(Millis m) { return m.count() / 1000; }

notify::Format format_of(config::NotifyFormat f) {
  switch (f) {
    case config::NotifyFormat::Generic:
      return notify::Format::Generic;
    case config::NotifyFormat::Ntfy:
      return notify::Format::Ntfy;
    case config::NotifyFormat::Teams:
      return notify::Format::Teams;
    case config::NotifyFormat::Slack:
      return notify::Format::Slack;
    case config::NotifyFormat::GoogleChat:
      return notify::Format::GoogleChat;
  }
  return notify::Format::Generic;
}

std::vector<notify::Target> targets_of(const config::Config& c) {
  std::vector<notify::Target> out;
  for (const auto& t : c.notify) out.push_back({t.url, format_of(t.format), t.secret_file, t.ca_file, t.events});
  return out;
}

void expiring(std::vector<notify::Condition>& out, const Snapshot& s, std::int64_t within, const std::string& what,
              const std::string& key, std::int64_t not_after) {
  if (not_after == 0 || not_after - s.now > within) return;
  std::string when = not_after <= s.now ? "expired " + status::ago(s.now - not_after) + " ago"
                                        : "expires in " + status::ago(not_after - s.now);
  out.push_back({"expiring",
                 key,
                 "the certificate of " + what + " " + when,
                 "notAfter " + iso8601(not_after) + "; renew it before then (a reload picks up a listener's new file)",
                 {{"certificate", what}, {"not_after", iso8601(not_after)}}});
}

}  // namespace

AlertThresholds thresholds_of(const config::Config& c) {
  const auto& n = c.notify_thresholds;
  return {seconds(n.upstream_down), seconds(n.queue_age), seconds(n.expiry), seconds(n.repeat), n.crash_loop};
}

std::vector<notify::Condition> conditions_of(const Snapshot& s, const AlertThresholds& t,
                                             const std::vector<std::int64_t>& unclean, Keys* undecided) {
  std::vector<notify::Condition> out;
  for (const auto& [name, st] : s.upstreams) {
    auto [state, error] = upstream_state(st, oauth_of(s, name));
    if (undecided && state != "ok") undecided->emplace("upstream_down", name);
    if (undecided && st.cert_not_after == 0) undecided->emplace("expiring", "upstream " + name);
    std::vector<std::pair<std::string, std::string>> fields{{"upstream", name}, {"state", state}};
    if (!error.empty()) fields.emplace_back("last_error", error);
    if (state == "reauth") {
      out.push_back({"upstream_down", name, "upstream " + name + " needs a new OAuth sign-in", error, fields});
    } else if (state == "misconfigured") {
      out.push_back({"upstream_down", name, "upstream " + name + " refuses our account", error, fields});
    } else if (st.failing_since != 0 && s.now - st.failing_since >= t.upstream_down) {
      fields.emplace_back("failing_since", iso8601(st.failing_since));
      out.push_back({"upstream_down", name,
                     "upstream " + name + " unusable since " + iso8601(st.failing_since) +
                         (st.last_success ? "" : " (no delivery yet)"),
                     error, fields});
    }
  }
  if (s.oldest_arrival != 0 && s.now - s.oldest_arrival >= t.queue_age)
    out.push_back({"queue_stale",
                   "queue",
                   "the oldest queued message waits since " + iso8601(s.oldest_arrival),
                   std::to_string(s.usage.messages) + " message(s) queued; see the status page or spoolgate queue list",
                   {{"messages", std::to_string(s.usage.messages)}, {"oldest_arrival", iso8601(s.oldest_arrival)}}});
  if (!s.spool_writable)
    out.push_back({"spool_full",
                   "spool",
                   "the spool cannot be written: new mail is refused",
                   "check the spool directory's disk and permissions",
                   {}});
  else if (s.over_watermark)
    out.push_back(
        {"spool_full",
         "spool",
         "the spool is over its watermark: new mail gets 452",
         std::to_string(s.usage.bytes) + " bytes queued, " + std::to_string(s.usage.free_disk) +
             " bytes free on the disk",
         {{"queued_bytes", std::to_string(s.usage.bytes)}, {"free_disk", std::to_string(s.usage.free_disk)}}});
  for (const auto& [address, not_after] : s.listener_certificates)
    expiring(out, s, t.expiry, "the listener " + address, "listen " + address, not_after);
  for (const auto& [name, st] : s.upstreams)
    expiring(out, s, t.expiry, "upstream " + name, "upstream " + name, st.cert_not_after);
  for (const auto& h : s.heartbeats) {
    if (!h.missed) continue;
    out.push_back(
        {"heartbeat",
         h.name,
         "no message from " + h.name + (h.last ? " since " + iso8601(h.last) : " since the start"),
         "expected at least every " + status::ago(h.every),
         {{"expected", h.name}, {"every", status::ago(h.every)}, {"last", h.last ? iso8601(h.last) : "never"}}});
  }
  auto recent = static_cast<std::uint64_t>(
      std::count_if(unclean.begin(), unclean.end(), [&](std::int64_t at) { return at > s.now - 3600; }));
  if (recent > t.crash_loop)
    out.push_back({"crash_loop",
                   "daemon",
                   "spoolgate restarted after " + std::to_string(recent) + " unclean stops within an hour",
                   "see the service's log (journalctl -u spoolgate) for why it stopped",
                   {{"unclean_stops", std::to_string(recent)}}});
  return out;
}

notify::Condition failed_condition(const spool::Record& rec, const std::string& reason) {
  std::string failed;
  for (std::size_t i = 0; i < rec.recipients.size() && i < rec.rcpt_state.size(); ++i)
    if (rec.rcpt_state[i] == spool::Record::RcptState::Failed)
      failed += (failed.empty() ? "" : ", ") + rec.recipients[i];
  std::string sender = rec.sender.empty() ? "<>" : rec.sender;
  return {"message_failed",
          rec.id,
          "a message from " + sender + " failed for good",
          reason,
          {{"message", rec.id}, {"sender", sender}, {"recipients", failed}, {"reason", reason}}};
}

Result<std::vector<std::int64_t>> note_start(const std::string& dir, std::int64_t now) {
  if (auto d = files::ensure_dir(dir); !d) return tl::unexpected(d.error());
  std::vector<std::int64_t> unclean;
  if (auto text = files::read_small(dir + "/unclean", 64 * std::size_t{1024})) {
    std::istringstream in(*text);
    for (std::int64_t at = 0; in >> at;)
      if (at > now - 3600 && at <= now) unclean.push_back(at);
  }
  if (::access((dir + "/running").c_str(), F_OK) == 0) unclean.push_back(now);
  std::string list;
  for (auto at : unclean) list += std::to_string(at) + "\n";
  auto w = files::replace_file(dir + "/.unclean.tmp", dir + "/unclean", list);
  if (w) w = files::replace_file(dir + "/.running.tmp", dir + "/running", std::to_string(now) + "\n");
  if (w) w = files::fsync_dir(dir);
  if (!w) return tl::unexpected(w.error());
  return unclean;
}

void note_clean_stop(const std::string& dir) {
  ::unlink((dir + "/running").c_str());
  (void)files::fsync_dir(dir);
}

Alerting::Alerting(loop::Loop& loop, http::Fetcher& fetcher, const std::string& spool_dir, std::string hostname)
    : loop_(loop), dir_(spool_dir + "/notify"), alerts_(0), sender_(loop, fetcher, dir_, std::move(hostname)) {}

Result<void> Alerting::start(const config::Config& cfg) {
  auto unclean = note_start(dir_, unix_now());
  if (!unclean) return tl::unexpected(unclean.error());
  unclean_ = std::move(*unclean);
  if (!unclean_.empty())
    log::warn("unclean_stops").kv("within_the_last_hour", static_cast<std::uint64_t>(unclean_.size()));
  started_ = true;
  if (auto state = files::read_small(dir_ + "/alerts.state")) alerts_.restore(*state);
  configure(cfg);
  return sender_.open();
}

void Alerting::configure(const config::Config& cfg) {
  thresholds_ = thresholds_of(cfg);
  alerts_.set_repeat(thresholds_.repeat);
  sender_.configure(targets_of(cfg));
}

void Alerting::evaluate(const Snapshot& s) {
  Keys undecided;
  auto now = conditions_of(s, thresholds_, unclean_, &undecided);
  auto events = alerts_.update(s.now, now, undecided);
  for (const auto& e : events) {
    log::warn("alert")
        .kv("event", e.name)
        .kv("key", e.key)
        .kv("change", notify::to_string(e.change))
        .kv("title", e.title);
    sender_.post(e);
  }
  if (!events.empty()) save_state();
}

void Alerting::save_state() {
  if (writing_) {
    dirty_ = true;
    return;
  }
  writing_ = true;
  auto bytes = std::make_shared<std::string>(alerts_.save());
  auto written = std::make_shared<Result<void>>();
  loop_.queue_work([dir = dir_, bytes,
                    written] { *written = files::replace_file(dir + "/.alerts.tmp", dir + "/alerts.state", *bytes); },
                   [this, written] {
                     writing_ = false;
                     if (!*written) log::error("alerts_not_kept").kv("reason", written->error().message());
                     if (dirty_) {
                       dirty_ = false;
                       save_state();
                     }
                   });
}

void Alerting::message_failed(const spool::Record& rec, const std::string& reason) {
  std::int64_t now = unix_now();
  sender_.post(notify::event_of(failed_condition(rec, reason), notify::Change::Raised, now, now));
}

void Alerting::close() { sender_.close(); }

void Alerting::stopped_cleanly() {
  if (started_) note_clean_stop(dir_);
}

std::vector<status::Alert> Alerting::active() const {
  std::vector<status::Alert> out;
  for (const auto& [k, a] : alerts_.active()) out.push_back({a.c.name, a.c.key, a.c.title, a.since});
  std::sort(out.begin(), out.end(), [](const status::Alert& a, const status::Alert& b) { return a.since < b.since; });
  return out;
}

}  // namespace spoolgate::app
