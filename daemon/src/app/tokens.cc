// SPDX-License-Identifier: MIT
#include "app/tokens.h"

#include <algorithm>

#include "app/upstreams.h"
#include "core/clock.h"
#include "core/files.h"
#include "core/log.h"
#include "oauth/assertion.h"
#include "tls/sign.h"

namespace spoolgate::app {

std::string oauth_key(const config::Upstream& u) {
  std::string k = u.username + "_" + u.host;
  for (char& c : k) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
    if (!ok) c = c == '@' ? '-' : '_';
  }
  if (k.size() > 100) k.resize(100);
  if (!k.empty() && k.front() == '.') k.front() = '_';
  return k;
}

oauth::ClientConfig oauth_client(const config::Upstream& u) {
  const config::OAuth& o = u.oauth;
  oauth::ClientConfig c;
  c.key = oauth_key(u);
  c.refresh_grant = o.grant == config::OAuthGrant::RefreshToken;
  c.jwt_bearer = o.grant == config::OAuthGrant::ServiceAccount;
  c.token_url = o.token_url;
  // A service account is the key file's (its identity in the store's
  // fingerprint; not sent).
  c.client_id = c.jwt_bearer ? "service-account:" + o.key_file : o.client_id;
  c.scope = o.scope;
  c.ca_file = o.ca_file;
  std::string file = o.client_secret_file, env = o.client_secret_env, cert = o.client_cert, key = o.client_key;
  std::string token_url = o.token_url, client_id = o.client_id;
  if (c.jwt_bearer) {
    // Read and signed afresh for each request: a rotated key needs no reload.
    c.client_auth = [key_file = o.key_file, token_url, scope = o.scope,
                     subject = u.username]() -> Result<std::vector<std::pair<std::string, std::string>>> {
      auto text = files::read_small(key_file, std::size_t{64} * 1024);
      if (!text) return fail(text.error().code, "oauth.key_file: " + text.error().message());
      auto k = oauth::parse_service_account_key(*text);
      if (!k) return fail(k.error().code, "oauth.key_file " + key_file + ": " + k.error().message());
      auto jwt = oauth::service_account_grant(*k, {token_url, scope, subject, unix_now()}, [&](std::string_view d) {
        return tls::sign_rs256_pem(k->private_key, "oauth.key_file " + key_file, d);
      });
      if (!jwt) return tl::unexpected(jwt.error());
      std::vector<std::pair<std::string, std::string>> fields;
      fields.emplace_back("assertion", std::move(*jwt));
      return fields;
    };
    return c;
  }
  c.client_auth = [file, env, cert, key, token_url,
                   client_id]() -> Result<std::vector<std::pair<std::string, std::string>>> {
    using Fields = std::vector<std::pair<std::string, std::string>>;
    if (!cert.empty()) {
      // A client assertion signed afresh for each request (ten minutes of validity).
      auto thumb = tls::certificate_sha256(cert);
      if (!thumb) return fail(thumb.error().code, "oauth.client_cert: " + thumb.error().message());
      oauth::AssertionInput in{token_url, client_id, *thumb, tls::random_hex(16), unix_now()};
      auto jwt = oauth::client_assertion(in, [&key](std::string_view data) { return tls::sign_rs256(key, data); });
      if (!jwt) return fail(jwt.error().code, "oauth.client_key: " + jwt.error().message());
      return oauth::assertion_fields(std::move(*jwt));
    }
    if (!file.empty()) {
      auto s = upstream::read_secret_file(file);
      if (!s) return fail(s.error().code, "oauth.client_secret_file: " + s.error().message());
      return Fields{{"client_secret", *s}};
    }
    if (!env.empty()) {
      auto v = secret_from_env(env, "oauth.client_secret_env");
      if (!v) return tl::unexpected(v.error());
      return Fields{{"client_secret", *v}};
    }
    return Fields{};  // a public client (refresh_token grant without a secret)
  };
  return c;
}

Tokens::Tokens(loop::Loop& loop, std::string spool_dir)
    : loop_(loop),
      spool_dir_(std::move(spool_dir)),
      fetch_(std::make_unique<fetch::Client>(loop_, loop::Process::sibling("spoolgate-https"))) {}

Tokens::~Tokens() { close(); }

Result<void> Tokens::configure(const config::Config& cfg) {
  std::vector<std::string> keys;
  for (const auto& u : cfg.upstreams) {
    if (!u.oauth.configured()) continue;
    if (!manager_) {
      auto store = oauth::Store::open(spool_dir_);
      if (!store) return fail(store.error().code, "OAuth token store: " + store.error().message());
      manager_ = std::make_unique<oauth::Manager>(loop_, *fetch_, std::move(*store), [] { return unix_now_ms(); });
    }
    auto c = oauth_client(u);
    keys.push_back(c.key);
    manager_->add(std::move(c));
  }
  if (manager_) manager_->retain(keys);
  return {};
}

net::CancelConnect Tokens::get(loop::Loop&, const upstream::Upstream& u, const std::string&, Done done) {
  if (!manager_) {
    done(fail(Errc::Invalid, "no OAuth client for " + u.name));
    return [] {};
  }
  return manager_->get(u.oauth_key, std::move(done));
}

bool Tokens::refused(const upstream::Upstream& u, const std::string& secret) {
  return manager_ && manager_->refused(u.oauth_key, secret);
}

void Tokens::reload(const std::string& key) {
  if (!manager_) return;
  if (!key.empty()) return manager_->reload(key);
  for (const auto& s : manager_->status()) manager_->reload(s.key);
}

std::vector<oauth::ClientStatus> Tokens::status() const {
  return manager_ ? manager_->status() : std::vector<oauth::ClientStatus>{};
}

std::vector<Snapshot::OAuth> Tokens::snapshot(const config::Config& cfg) const {
  std::vector<Snapshot::OAuth> out;
  if (!manager_) return out;
  auto all = manager_->status();
  for (const auto& u : cfg.upstreams) {
    if (!u.oauth.configured()) continue;
    std::string key = oauth_key(u);
    auto it = std::find_if(all.begin(), all.end(), [&](const oauth::ClientStatus& c) { return c.key == key; });
    if (it == all.end()) continue;
    Snapshot::OAuth o;
    o.upstream = u.url;
    o.state = oauth::to_string(it->state);
    o.expires_at = it->expires_at / 1000;
    o.reauth = it->state == oauth::Refresher::State::Reauth;
    if (it->last_outcome != "ok") o.reason = it->last_outcome;
    out.push_back(std::move(o));
  }
  return out;
}

void Tokens::close() {
  if (manager_) manager_->close();
  if (fetch_) fetch_->close();
}

}  // namespace spoolgate::app
