// SPDX-License-Identifier: MIT
#include "app/oauth_cli.h"

#include <sys/stat.h>

#include <algorithm>
#include <optional>

#include "app/oauth_signin.h"
#include "app/request_server.h"
#include "app/tokens.h"
#include "core/clock.h"
#include "oauth/manager.h"
#include "oauth/store.h"

namespace spoolgate::app {
namespace {

// What the store holds, as the daemon would report it right after a start.
std::vector<oauth::ClientStatus> from_store(const config::Config& cfg) {
  std::vector<oauth::ClientStatus> out;
  auto store = oauth::Store::open(cfg.spool.dir);
  for (const auto& u : cfg.upstreams) {
    if (!u.oauth.configured()) continue;
    oauth::ClientStatus s;
    s.key = oauth_key(u);
    s.grant = std::string(config::to_string(u.oauth.grant));
    if (store) {
      auto rec = store->load(s.key);
      if (rec && *rec) {
        s.generation = (*rec)->generation;
        s.has_refresh_token = !(*rec)->refresh.empty();
        s.last_attempt = (*rec)->refreshed_at;
        s.last_outcome = "ok";
        if (!(*rec)->access.empty() && (*rec)->expires_at > unix_now_ms()) {
          s.expires_at = (*rec)->expires_at;
          s.state = oauth::Refresher::State::Fresh;
        }
      } else if (!rec) {
        s.last_outcome = rec.error().message();
      }
    }
    if (s.grant == "refresh_token" && !s.has_refresh_token) s.state = oauth::Refresher::State::Reauth;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

int oauth_status(const config::Config& cfg, bool json, std::ostream& out) {
  std::string path = cfg.spool.dir + "/control.sock";
  auto reply = control_request(path, json ? "oauth-status json" : "oauth-status", Millis(5000));
  if (reply && reply->starts_with("ok\n")) {
    out << reply->substr(3);
    return 0;
  }
  if (!json) out << "(no daemon answers on " << path << ": from the token store)\n";
  auto all = from_store(cfg);
  out << (json ? oauth::status_json(all) : oauth::status_text(all, unix_now_ms()));
  return 0;
}

int oauth_login(const config::Config& cfg, const LoginOptions& opt, std::ostream& out) {
  const std::string& which = opt.upstream;
  std::optional<std::size_t> index;
  if (!which.empty() && which.find_first_not_of("0123456789") == std::string::npos && which.size() < 6) {
    index = std::stoul(which);
  } else if (!which.empty()) {
    for (std::size_t i = 0; i < cfg.upstreams.size(); ++i)
      if (cfg.upstreams[i].oauth.configured() && oauth_key(cfg.upstreams[i]) == which) index = i;
    if (!index) {
      out << "oauth login: no OAuth upstream named '" << which << "' (see spoolgate oauth status)\n";
      return 1;
    }
  }
  std::vector<std::size_t> candidates;
  for (std::size_t i = 0; i < cfg.upstreams.size(); ++i)
    if (cfg.upstreams[i].oauth.grant == config::OAuthGrant::RefreshToken && (!index || *index == i))
      candidates.push_back(i);
  if (index && *index >= cfg.upstreams.size()) {
    out << "oauth login: no upstream " << *index << " (there are " << cfg.upstreams.size() << ", counted from 0)\n";
    return 1;
  }
  if (candidates.size() != 1) {
    out << "oauth login: "
        << (candidates.empty() ? std::string(index ? "that upstream" : "no upstream") +
                                     " uses the refresh_token grant (client_credentials needs no sign-in)"
                               : std::string("several upstreams use the refresh_token grant: name one with --upstream N"))
        << "\n";
    return 1;
  }
  const config::Upstream& u = cfg.upstreams[candidates[0]];
  SignInFlow flow = sign_in_flow(u.oauth, opt.browser);
  if (flow == SignInFlow::Browser && u.oauth.authorization_url.empty()) {
    out << "oauth login: upstreams[" << candidates[0]
        << "].oauth.authorization_url is not set (nor device_authorization_url): no way to sign in\n";
    return 1;
  }
  // Checked before the sign-in, which a person would otherwise do in vain.
  struct stat st {};
  if (::stat(cfg.spool.dir.c_str(), &st) != 0) {
    out << "oauth login: the spool directory " << cfg.spool.dir
        << " does not exist yet: start the daemon once (it makes it, owned by its user), then sign in\n";
    return 1;
  }
  auto store = oauth::Store::open(cfg.spool.dir);
  if (!store) {
    out << "oauth login: token store: " << store.error().message() << "\n";
    return 1;
  }
  std::string key = oauth_key(u);
  out << "upstream: " << u.url << " (" << u.username << ")\n";
  auto token = sign_in(u, flow, opt.port, out);
  if (!token) return 1;
  std::int64_t now = unix_now_ms();
  oauth::Stored s;
  s.client = oauth::client_fingerprint(u.oauth.token_url, u.oauth.client_id, u.oauth.scope, "refresh_token");
  s.refresh = token->refresh;
  s.access = token->access;
  s.refreshed_at = now;
  s.expires_at = now + (token->expires_in > 0 ? token->expires_in : 3600) * 1000;
  if (auto w = store->save(key, s); !w) {
    out << "oauth login: cannot store the sign-in: " << w.error().message() << "\n";
    return 1;
  }
  out << "signed in; stored in " << store->dir() << "/" << key << ".json (generation " << s.generation << ")\n";
  auto reply = control_request(cfg.spool.dir + "/control.sock", "oauth-reload " + key, Millis(5000));
  if (reply && reply->starts_with("ok\n"))
    out << "the running daemon uses it now\n";
  else
    out << "no daemon answered: it uses the sign-in when it starts\n";
  return 0;
}

}  // namespace spoolgate::app
