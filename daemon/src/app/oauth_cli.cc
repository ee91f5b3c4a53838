// SPDX-License-Identifier: MIT
#include "app/oauth_cli.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>

#include "app/request_server.h"
#include "app/tokens.h"
#include "core/clock.h"
#include "fetch/client.h"
#include "loop/loop.h"
#include "oauth/manager.h"
#include "oauth/store.h"
#include "oauth/token.h"

namespace spoolgate::app {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

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

// One sign-in with the device-code flow, on its own loop.
class DeviceLogin {
 public:
  DeviceLogin(loop::Loop& loop, const config::Upstream& u, std::ostream& out)
      : loop_(loop), u_(u), out_(out), client_(oauth_client(u)),
        fetch_(loop, loop::Process::sibling("spoolgate-https")) {
    timer_ = loop::Timer::create(loop_, [this] { poll(); });
  }

  // 0: signed in and stored; 1: not.
  int run() {
    auto auth = client_.client_auth();
    if (!auth) return fail_with(auth.error().message());
    auth_ = *auth;
    http::Request r = request(o().device_authorization_url, {{"client_id", o().client_id}, {"scope", o().scope}});
    fetch_.send(std::move(r), [this](Result<http::Response> a) { on_device(std::move(a)); });
    loop_.run();
    fetch_.close();
    timer_.reset();
    return rc_;
  }

  std::optional<oauth::Token> token;

 private:
  const config::OAuth& o() const { return u_.oauth; }

  http::Request request(const std::string& url, Fields form) {
    http::Request r;
    r.url = url;
    r.headers = {"Accept: application/json"};
    r.ca_file = o().ca_file;
    r.form = std::move(form);
    return r;
  }

  int fail_with(const std::string& why) {
    out_ << "oauth login: " << why << "\n";
    rc_ = 1;
    loop_.stop();
    return 1;
  }

  void on_device(Result<http::Response> a) {
    if (!a) return (void)fail_with(a.error().message());
    auto d = oauth::parse_device_answer(a->status, a->body);
    if (auto* p = std::get_if<oauth::Problem>(&d))
      return (void)fail_with("the device authorization endpoint refused: " + p->error +
                             (p->description.empty() ? "" : ": " + p->description));
    code_ = std::get<oauth::DeviceCode>(d);
    out_ << (code_.message.empty() ? "To sign in, open " + code_.verification_uri + " and enter the code " +
                                         code_.user_code
                                   : code_.message)
         << "\n"
         << "code: " << code_.user_code << "\n"
         << "url: " << code_.verification_uri << "\n"
         << "waiting for the sign-in (up to " << code_.expires_in / 60 << " minutes)..." << std::endl;
    deadline_ = unix_now_ms() + code_.expires_in * 1000;
    interval_ = code_.interval;
    timer_->start(Millis(interval_ * 1000));
  }

  void poll() {
    if (unix_now_ms() > deadline_) return (void)fail_with("the code expired before the sign-in; run it again");
    Fields f = {{"grant_type", "urn:ietf:params:oauth:grant-type:device_code"},
                {"device_code", code_.device_code},
                {"client_id", o().client_id}};
    for (const auto& x : auth_) f.push_back(x);
    fetch_.send(request(o().token_url, std::move(f)), [this](Result<http::Response> a) { on_token(std::move(a)); });
  }

  void on_token(Result<http::Response> a) {
    if (!a) {  // the endpoint unreachable for a moment: poll on until the code expires
      out_ << "oauth login: " << a.error().message() << "; still waiting\n";
      timer_->start(Millis(interval_ * 1000));
      return;
    }
    auto t = oauth::parse_token_answer(a->status, a->body);
    if (auto* p = std::get_if<oauth::Problem>(&t)) {
      if (p->kind == oauth::Problem::Kind::Pending || p->kind == oauth::Problem::Kind::SlowDown) {
        if (p->kind == oauth::Problem::Kind::SlowDown) interval_ += 5;  // RFC 8628 3.5
        timer_->start(Millis(interval_ * 1000));
        return;
      }
      return (void)fail_with("the token endpoint refused the sign-in: " + p->error +
                             (p->description.empty() ? "" : ": " + p->description));
    }
    token = std::get<oauth::Token>(t);
    if (token->refresh.empty())
      return (void)fail_with("the endpoint gave no refresh token (for Microsoft, the scope needs offline_access)");
    rc_ = 0;
    loop_.stop();
  }

  loop::Loop& loop_;
  const config::Upstream& u_;
  std::ostream& out_;
  oauth::ClientConfig client_;
  fetch::Client fetch_;
  loop::HandlePtr<loop::Timer> timer_;
  Fields auth_;
  oauth::DeviceCode code_;
  std::int64_t deadline_ = 0;
  std::int64_t interval_ = 5;
  int rc_ = 1;
};

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

int oauth_login(const config::Config& cfg, const std::string& which, std::ostream& out) {
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
  if (u.oauth.device_authorization_url.empty()) {
    out << "oauth login: upstreams[" << candidates[0] << "].oauth.device_authorization_url is not set\n";
    return 1;
  }
  if (u.oauth.provider == config::OAuthProvider::Google) {
    // Google's device flow does not grant the Gmail scope.
    out << "oauth login: the browser sign-in with PKCE that Google needs for Gmail is not built yet\n";
    return 1;
  }
  auto store = oauth::Store::open(cfg.spool.dir);
  if (!store) {
    out << "oauth login: token store: " << store.error().message() << "\n";
    return 1;
  }
  std::string key = oauth_key(u);
  out << "upstream: " << u.url << " (" << u.username << ")\n";
  std::optional<oauth::Token> token;
  loop::Loop loop;
  {
    DeviceLogin login(loop, u, out);
    if (login.run() == 0) token = login.token;
  }
  // Every handle closed and the loop with them, on either path (the
  // sanitizer build checks that nothing is left).
  if (loop.close() != 0) out << "oauth login: a loop handle was left open (a bug; the sign-in is kept)\n";
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
