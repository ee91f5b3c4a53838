// SPDX-License-Identifier: MIT
#include "app/listeners.h"

#include <sys/stat.h>

#include <algorithm>

#include "app/routes.h"
#include "auth/users.h"
#include "core/clock.h"
#include "core/log.h"
#include "smtp/address.h"
#include "spool/spool.h"
#include "tls/tls.h"

namespace spoolgate::app {
namespace {

constexpr std::int64_t kCertWarnSeconds = std::int64_t{30} * 86400;

// The listener's certificate, checked; `i` is its place in `listen`.
Result<std::shared_ptr<tls::Context>> listener_tls(const config::ListenAddress& l, std::size_t i) {
  std::string where = "listen[" + std::to_string(i) + "] (" + l.text + ")";
  auto ctx = tls::server_context({l.cert_file, l.key_file, l.tls_min_version});
  if (!ctx) return fail(ctx.error().code, where + ": " + ctx.error().message());
  tls::CertInfo leaf = tls::server_leaf(**ctx);
  std::int64_t now = unix_now_ms() / 1000;
  if (leaf.not_after <= now) return fail(Errc::Invalid, where + ": the certificate " + l.cert_file + " has expired");
  if (leaf.not_before > now)
    return fail(Errc::Invalid, where + ": the certificate " + l.cert_file + " is not valid yet");
  if (leaf.not_after - now < kCertWarnSeconds)
    log::warn("certificate_expiring")
        .kv("listen", l.text)
        .kv("cert_file", l.cert_file)
        .kv("days_left", (leaf.not_after - now) / 86400)
        .kv("action", "replace the certificate, then reload");
  return ctx;
}

}  // namespace

net::ListenSpec spec_of(const config::ListenAddress& l) { return {l.unix_socket, l.host, l.port, l.path}; }

Result<listener::Settings> inbound_settings_from(const config::Config& c, const std::vector<int>& inherited) {
  listener::Settings s;
  // unix:/path listeners: the configured mode, the spool directory's group
  // (the local users who may submit are in it).
  struct stat spool_st {};
  int spool_gid = ::stat(c.spool.dir.c_str(), &spool_st) == 0 ? static_cast<int>(spool_st.st_gid) : -1;
  for (std::size_t i = 0; i < c.listen.size(); ++i) {
    const config::ListenAddress& l = c.listen[i];
    listener::Endpoint e;
    e.spec = spec_of(l);
    e.spec.mode = c.unix_socket_mode;
    e.spec.gid = spool_gid;
    e.allow_networks = l.allow_networks;
    if (l.tls != config::ListenTls::None) {
      auto ctx = listener_tls(l, i);
      if (!ctx) return tl::unexpected(ctx.error());
      e.tls_ctx = *ctx;
      e.tls = l.tls == config::ListenTls::StartTls ? listener::TlsMode::StartTls : listener::TlsMode::Implicit;
    }
    if (l.auth != config::ListenAuth::Off) {
      auto users = auth::Users::load(l.users_file);
      if (!users)
        return fail(users.error().code,
                    "listen[" + std::to_string(i) + "] (" + l.text + "): " + users.error().message());
      if (users->size() == 0)
        log::warn("users_file_empty")
            .kv("listen", l.text)
            .kv("users_file", l.users_file)
            .kv("action", "add a device: spoolgate passwd -c FILE NAME");
      e.verifier = std::make_shared<auth::Verifier>(std::make_shared<const auth::Users>(std::move(*users)));
      e.auth = l.auth == config::ListenAuth::Required ? smtp::ServerSettings::Auth::Required
                                                      : smtp::ServerSettings::Auth::Optional;
      e.auth_plaintext_networks = l.auth_plaintext_networks;
    }
    s.listen.push_back(std::move(e));
  }
  if (!c.submission_socket.empty()) {
    // Local submission (`spoolgate sendmail`): SMTP over a unix socket that
    // every local user may write to; the daemon owns every spool file.
    net::ListenSpec spec;
    spec.unix_socket = true;
    spec.path = c.submission_socket;
    spec.mode = 0666;
    s.submission = spec;
  }
  if (!inherited.empty()) {
    s.listen.clear();
    for (int fd : inherited) {
      listener::Endpoint e;
      e.spec.fd = fd;
      s.listen.push_back(std::move(e));
    }
  }
  s.allow_networks = c.allow_networks;
  for (const auto& e : c.expect)
    if (!e.sender.empty()) s.watched_senders.push_back(e.sender);
  s.routing = routing_table(c);
  // The largest message a group takes is its largest upstream's (0: one
  // without a limit).
  auto group_cap = [&c](const std::vector<std::size_t>& group) {
    std::uint64_t cap = 0;
    for (std::size_t u : group) {
      std::uint64_t m = c.upstreams[u].limits.max_message_size;
      if (!m) return std::uint64_t{0};
      cap = std::max(cap, m);
    }
    return cap;
  };
  for (std::size_t r = 0; r < s.routing->rules().size(); ++r)
    s.rule_size_caps.push_back(group_cap(s.routing->group(r)));
  std::vector<std::size_t> all(c.upstreams.size());
  for (std::size_t u = 0; u < all.size(); ++u) all[u] = u;
  s.size_cap = all.empty() ? 0 : group_cap(all);
  // A sender no upstream of the group may send as, with nothing to rewrite
  // it to, is refused at RCPT (the route's 550 5.7.1).
  bool policed = false;
  for (const auto& u : c.upstreams) policed = policed || (!u.send_as.empty() && u.rewrite_from.empty());
  if (policed) {
    std::vector<std::vector<std::size_t>> groups;
    for (std::size_t r = 0; r < s.routing->rules().size(); ++r) groups.push_back(s.routing->group(r));
    std::vector<std::pair<std::vector<std::string>, bool>> policy;  // send_as, rewrites
    for (const auto& u : c.upstreams) policy.emplace_back(u.send_as, !u.rewrite_from.empty());
    s.sender_ok = [groups, all, policy](std::size_t rule, std::string_view sender) {
      const auto& g = rule < groups.size() ? groups[rule] : all;
      return std::any_of(g.begin(), g.end(), [&](std::size_t u) {
        const auto& [send_as, rewrites] = policy[u];
        return send_as.empty() || rewrites || sender.empty() || smtp::sender_listed(send_as, sender);
      });
    };
  }
  for (const auto& d : c.devices)
    s.devices.push_back(
        {smtp::DevicePolicy{d.name, d.senders, d.rewrite_from, d.max_message_size}, d.networks, d.rate_limit});
  s.smtp.hostname = c.hostname;
  s.smtp.max_message_size = c.limits.max_message_size;
  s.smtp.max_recipients = c.limits.max_recipients;
  s.smtp.max_envelope_bytes = spool::kMaxHeaderBytes;
  s.smtp.max_bad_commands = static_cast<int>(std::min<std::uint64_t>(c.limits.max_bad_commands, 1000000));
  s.smtp.reject_bare_newlines = c.bare_newlines == config::BareNewlines::Reject;
  s.smtp.add_missing_headers = c.headers.add_missing;
  s.smtp.rewrite_from = c.headers.rewrite_from;
  s.max_connections = c.limits.max_connections;
  s.max_connections_per_client = c.limits.max_connections_per_client;
  s.idle_timeout = c.limits.idle_timeout;
  s.data_timeout = c.limits.data_timeout;
  s.greeting_delay = c.limits.greeting_delay;
  return s;
}

Result<std::vector<std::string>> describe_listener_tls(const config::Config& c) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < c.listen.size(); ++i) {
    const config::ListenAddress& l = c.listen[i];
    if (l.auth != config::ListenAuth::Off) {
      auto users = auth::Users::load(l.users_file);
      if (!users) return fail(users.error().code, "listen[" + std::to_string(i) + "]: " + users.error().message());
      out.push_back(l.text + ": auth " + std::string(config::to_string(l.auth)) + ", " + std::to_string(users->size()) +
                    " device(s) in " + l.users_file);
    }
    if (l.tls == config::ListenTls::None) continue;
    auto ctx = listener_tls(l, i);
    if (!ctx) return tl::unexpected(ctx.error());
    tls::CertInfo leaf = tls::server_leaf(**ctx);
    out.push_back(l.text + ": tls " + std::string(config::to_string(l.tls)) + ", TLS 1." +
                  std::to_string(l.tls_min_version % 10) + " and up, certificate " + leaf.subject + ", " +
                  std::to_string((leaf.not_after - unix_now_ms() / 1000) / 86400) + " days left");
  }
  return out;
}

}  // namespace spoolgate::app
