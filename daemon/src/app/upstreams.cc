// SPDX-License-Identifier: MIT
#include "app/upstreams.h"

#include <sys/stat.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>

#include "app/routes.h"
#include "app/tokens.h"
#include "core/log.h"

namespace spoolgate::app {
namespace {

// A secret every local user can read is worth a loud word (a password file
// left 0644 by an editor or a config-management run).
void warn_if_world_readable(const std::string& path, const std::string& key) {
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0 || !(st.st_mode & S_IROTH)) return;
  char mode[8];
  (void)std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  log::warn("secret_permissions")
      .kv("key", key)
      .kv("file", path)
      .kv("mode", mode)
      .kv("action", "readable by every local user: chmod o-rwx (and keep the group to the daemon's)");
}

Result<std::string> read_secret(const config::Upstream& u, const std::string& where) {
  if (!u.password_file.empty()) {
    auto s = upstream::read_secret_file(u.password_file);
    if (!s) return fail(s.error().code, where + ".password_file: " + s.error().message());
    return s;
  }
  if (!u.password_env.empty()) return secret_from_env(u.password_env, where + ".password_env");
  return std::string();
}

}  // namespace

Result<std::string> secret_from_env(const std::string& var, const std::string& key) {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): env is written only at start, before any thread
  const char* v = std::getenv(var.c_str());
  if (!v) return fail(Errc::NotFound, key + ": $" + var + " is not set");
  std::string s = v;
  if (auto bad = upstream::check_secret(s); !bad)
    return fail(Errc::Invalid, key + ": $" + var + ": " + bad.error().detail);
  return s;
}

std::string pacing_key(const config::Upstream& c) {
  // The name when it has one; else the URL made a file name. (Renaming an
  // upstream starts its counters afresh.)
  if (!c.name.empty()) return c.name;
  std::string key = "url-";
  for (char ch : c.url) key += std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '-' ? ch : '_';
  return key.substr(0, 200);
}

Result<upstream::Settings> delivery_settings_from(const config::Config& cfg) {
  upstream::Settings s;
  s.helo = cfg.hostname;
  s.max_connections = cfg.delivery.max_connections;
  s.messages_per_connection = cfg.delivery.messages_per_connection;
  s.idle_hold = cfg.delivery.idle_hold;
  s.bounce = cfg.delivery.bounce;
  const auto& t = cfg.delivery.timeouts;
  s.timeouts = {t.connect, t.greeting, t.mail, t.rcpt, t.data, t.block, t.done};
  for (std::size_t i = 0; i < cfg.upstreams.size(); ++i) {
    const config::Upstream& c = cfg.upstreams[i];
    std::string where = "upstreams[" + std::to_string(i) + "]";
    upstream::Upstream u;
    u.name = c.url;
    u.host = c.host;
    u.port = c.port;
    if (config::is_api(c.scheme)) {
      u.api = c.scheme == config::Scheme::Graph ? api::Kind::Graph : api::Kind::Gmail;
      u.api_base = c.api_base;
      u.mailbox = c.mailbox;
      u.ca_file = c.ca_file;
    }
    u.tls = c.scheme == config::Scheme::Smtps      ? smtp::TlsMode::Implicit
            : c.scheme == config::Scheme::StartTls ? smtp::TlsMode::StartTls
                                                   : smtp::TlsMode::None;
    u.auth = c.auth == config::AuthMode::Plain         ? smtp::AuthMech::Plain
             : c.auth == config::AuthMode::Login       ? smtp::AuthMech::Login
             : c.auth == config::AuthMode::XOAuth2     ? smtp::AuthMech::XOAuth2
             : c.auth == config::AuthMode::OAuthBearer ? smtp::AuthMech::OAuthBearer
                                                       : smtp::AuthMech::Auto;
    u.username = c.username;
    warn_if_world_readable(c.password_file, where + ".password_file");
    warn_if_world_readable(c.oauth.client_secret_file, where + ".oauth.client_secret_file");
    warn_if_world_readable(c.oauth.client_key, where + ".oauth.client_key");
    if (c.oauth.configured()) u.oauth_key = oauth_key(c);
    warn_if_world_readable(c.client_key, where + ".client_key");
    auto secret = read_secret(c, where);
    if (!secret) return tl::unexpected(secret.error());
    u.secret = std::move(*secret);
    u.secret_file = c.password_file;
    if (!u.username.empty() && u.secret.empty() && u.oauth_key.empty())
      return fail(Errc::Invalid, where + ": username is set but no password_file or password_env");
    if (u.tls != smtp::TlsMode::None && !u.api) {
      auto ctx = tls::client_context({c.ca_file, c.pins, c.client_cert, c.client_key});
      if (!ctx) return fail(Errc::Invalid, where + ": " + ctx.error().message());
      u.tls_ctx = *ctx;
    }
    const config::UpstreamLimits& l = c.limits;
    u.limits = pacing::Limits{l.max_connections,  l.messages_per_second, l.messages_per_minute,
                              l.messages_per_day, l.recipients_per_day,  l.max_message_size};
    u.quota_wait = l.quota_wait;
    u.pacing_key = pacing_key(c);
    u.config_name = c.name;
    u.send_as = c.send_as;
    u.rewrite_from = c.rewrite_from == "account" ? c.username : c.rewrite_from;
    s.upstreams.push_back(std::move(u));
  }
  s.routing = routing_table(cfg);
  return s;
}

scheduler::Policy scheduler_policy(const config::Config& cfg) {
  const auto& r = cfg.delivery.retry;
  return scheduler::Policy{r.first, r.max, r.factor, r.jitter, cfg.delivery.max_lifetime};
}

}  // namespace spoolgate::app
