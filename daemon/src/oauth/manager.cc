// SPDX-License-Identifier: MIT
#include "oauth/manager.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/log.h"
#include "core/units.h"

namespace spoolgate::oauth {
namespace {

constexpr Millis kRequestTimeout{30'000};
constexpr std::size_t kMaxAnswer = 64 * std::size_t{1024};
// Timers are re-armed at least this often, so a wall clock that jumped
// (a suspended VM) is noticed within this long.
constexpr std::int64_t kMaxSleepMs = 300'000;

const char* grant_name(const ClientConfig& c) {
  return c.jwt_bearer ? "service_account" : c.refresh_grant ? "refresh_token" : "client_credentials";
}

}  // namespace

struct Manager::Client {
  ClientConfig cfg;
  std::string fingerprint;
  Refresher r;
  Stored stored;
  bool loaded = false;
  bool loading = false;
  bool working = false;  // credentials being made, or a token being saved
  bool reload_pending = false;
  std::uint64_t fetch_id = 0;
  std::map<std::uint64_t, Done> waiters;
  loop::HandlePtr<loop::Timer> timer;

  bool in_flight() const { return working || fetch_id != 0; }
};

Manager::Manager(loop::Loop& loop, http::Fetcher& fetcher, Store store, Clock clock)
    : loop_(loop), fetcher_(fetcher), store_(std::move(store)), clock_(std::move(clock)) {}

Manager::~Manager() { close(); }

void Manager::add(ClientConfig cfg) {
  if (closed_) return;
  std::string fp = client_fingerprint(cfg.token_url, cfg.client_id, cfg.scope, grant_name(cfg));
  if (auto it = clients_.find(cfg.key); it != clients_.end()) {
    if (it->second->fingerprint == fp) {
      it->second->cfg = std::move(cfg);  // the same client: a new secret source at most
      return;
    }
    if (it->second->fetch_id) fetcher_.cancel(it->second->fetch_id);
    clients_.erase(it);  // waiters are dropped with it: their links are being replaced too
  }
  auto c = std::make_shared<Client>();
  c->cfg = std::move(cfg);
  c->fingerprint = std::move(fp);
  std::weak_ptr<Client> weak = c;
  c->timer = loop::Timer::create(loop_, [this, weak] {
    if (auto cl = weak.lock()) tick(*cl);
  });
  Client& ref = *c;
  clients_.emplace(c->cfg.key, std::move(c));
  load(ref, false);
}

void Manager::retain(const std::vector<std::string>& keep) {
  for (auto it = clients_.begin(); it != clients_.end();) {
    if (std::find(keep.begin(), keep.end(), it->first) == keep.end()) {
      if (it->second->fetch_id) fetcher_.cancel(it->second->fetch_id);
      it = clients_.erase(it);
    } else {
      ++it;
    }
  }
}

void Manager::load(Client& c, bool force) {
  c.loading = true;
  auto weak = std::weak_ptr<Client>(clients_.at(c.cfg.key));
  auto got = std::make_shared<Result<std::optional<Stored>>>(std::optional<Stored>());
  Store store = store_;
  std::string key = c.cfg.key;
  loop_.queue_work([store, key, got] { *got = store.load(key); },
                   [this, weak, got, force] {
                     if (auto cl = weak.lock(); cl && !closed_) loaded(*cl, std::move(*got), force);
                   });
}

void Manager::loaded(Client& c, Result<std::optional<Stored>> got, bool force) {
  c.loading = false;
  c.loaded = true;
  std::int64_t now = clock_();
  if (!got) {
    log::error("oauth_store_unreadable")
        .kv("upstream", c.cfg.key)
        .kv("reason", got.error().message())
        .kv("action", c.cfg.refresh_grant ? "run spoolgate oauth login" : "getting a new token");
    c.stored = Stored{};
  } else if (!(*got)) {
    c.stored = Stored{};
  } else if ((*got)->client != c.fingerprint) {
    log::warn("oauth_store_ignored")
        .kv("upstream", c.cfg.key)
        .kv("reason", "the stored tokens were issued for another endpoint, client or scope")
        .kv("action", c.cfg.refresh_grant ? "run spoolgate oauth login" : "getting a new token");
    c.stored = Stored{};
  } else {
    c.stored = std::move(**got);
    // The stored access token, if still good, is used until its
    // 80 % mark like a fresh one (no request at every restart).
    if (!c.stored.access.empty() && c.stored.expires_at > now && c.stored.refreshed_at > 0 &&
        c.stored.refreshed_at <= now) {
      Token t;
      t.access = c.stored.access;
      t.expires_in = (c.stored.expires_at - c.stored.refreshed_at) / 1000;
      c.r.started(c.stored.refreshed_at);
      c.r.answered(now, t);
    }
  }
  // A reload asks for a new token now, unless the record brought a good one
  // (`oauth login` stores the access token it got: refreshing at once would
  // only rotate the refresh token it just stored).
  if (force && !c.r.token(now)) c.r.reset();
  tick(c);
  if (!c.in_flight()) settle(c);
}

void Manager::reload(const std::string& key) {
  auto it = clients_.find(key);
  if (it == clients_.end() || closed_) return;
  Client& c = *it->second;
  if (c.loading) return;  // the load under way reads the new record too
  if (c.working) {
    // A secret being read or a token being saved: reloaded when that is
    // done, so that an old save cannot land over the new sign-in.
    c.reload_pending = true;
    return;
  }
  // A request in flight is for the old grant: its answer is dropped.
  if (c.fetch_id) {
    fetcher_.cancel(c.fetch_id);
    c.fetch_id = 0;
  }
  c.r = Refresher{};
  load(c, true);
}

std::function<void()> Manager::get(const std::string& key, Done done) {
  auto it = clients_.find(key);
  if (it == clients_.end() || closed_) {
    done(fail(Errc::Invalid, "no OAuth client for " + key));
    return [] {};
  }
  Client& c = *it->second;
  std::int64_t now = clock_();
  if (c.loaded) {
    if (const std::string* t = c.r.token(now)) {
      done(*t);
      return [] {};
    }
    // No valid token and none coming: say why at once rather than hold the
    // session until the next retry, minutes away.
    if (!c.in_flight() && !c.r.due(now)) {
      done(tl::unexpected(no_token(c)));
      return [] {};
    }
  }
  std::uint64_t id = ++next_waiter_;
  c.waiters.emplace(id, std::move(done));
  std::weak_ptr<Client> weak = it->second;
  if (c.loaded && !c.in_flight()) tick(c);
  return [weak, id] {
    if (auto cl = weak.lock()) cl->waiters.erase(id);
  };
}

bool Manager::refused(const std::string& key, const std::string& token) {
  auto it = clients_.find(key);
  if (it == clients_.end() || closed_) return false;
  Client& c = *it->second;
  if (!c.r.rejected(token)) return false;
  log::warn("oauth_token_refused").kv("upstream", key).kv("action", "getting a new token, then one retry");
  if (c.stored.access == token) c.stored.access.clear();
  tick(c);
  return true;
}

void Manager::tick(Client& c) {
  if (closed_ || !c.loaded || c.in_flight()) return;
  std::int64_t now = clock_();
  if (!c.r.due(now)) return arm(c);
  c.r.started(now);
  if (c.cfg.refresh_grant && c.stored.refresh.empty()) {
    Problem p;
    p.kind = Problem::Kind::Reauth;
    p.error = "no_refresh_token";
    p.description = "no sign-in stored: run spoolgate oauth login";
    c.r.answered(now, p);
    log::error("oauth_reauth_required")
        .kv("upstream", c.cfg.key)
        .kv("reason", p.description)
        .kv("action", "run: spoolgate oauth login --upstream " + c.cfg.key);
    settle(c);
    return arm(c);
  }
  // The client's credentials may come from a file (or be signed): made on
  // a worker, like every blocking step.
  c.working = true;
  auto weak = std::weak_ptr<Client>(clients_.at(c.cfg.key));
  auto made = std::make_shared<Result<std::vector<std::pair<std::string, std::string>>>>();
  auto make = c.cfg.client_auth;
  loop_.queue_work([make, made] { *made = make ? make() : Result<std::vector<std::pair<std::string, std::string>>>(); },
                   [this, weak, made] {
                     if (auto cl = weak.lock(); cl && !closed_) made_auth(*cl, std::move(*made));
                   });
}

void Manager::made_auth(Client& c, Result<std::vector<std::pair<std::string, std::string>>> made) {
  c.working = false;
  if (c.reload_pending) {
    c.reload_pending = false;
    return reload(c.cfg.key);
  }
  if (!made) {
    c.r.failed(clock_(), "client credentials: " + made.error().message());
    log::error("oauth_token_failed").kv("upstream", c.cfg.key).kv("reason", c.r.last_outcome());
    settle(c);
    return arm(c);
  }
  request(c, std::move(*made));
}

void Manager::request(Client& c, std::vector<std::pair<std::string, std::string>> auth) {
  http::Request req;
  req.url = c.cfg.token_url;
  req.method = "POST";
  req.headers = {"Accept: application/json"};
  req.ca_file = c.cfg.ca_file;
  req.timeout = kRequestTimeout;
  req.max_body = kMaxAnswer;
  if (c.cfg.jwt_bearer) {
    req.form = {{"grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"}};
  } else {
    if (c.cfg.refresh_grant)
      req.form = {{"grant_type", "refresh_token"}, {"refresh_token", c.stored.refresh}};
    else
      req.form = {{"grant_type", "client_credentials"}};
    req.form.emplace_back("client_id", c.cfg.client_id);
    if (!c.cfg.scope.empty()) req.form.emplace_back("scope", c.cfg.scope);
  }
  for (auto& f : auth) req.form.push_back(std::move(f));
  auto weak = std::weak_ptr<Client>(clients_.at(c.cfg.key));
  c.fetch_id = fetcher_.send(std::move(req), [this, weak](Result<http::Response> r) {
    auto cl = weak.lock();
    if (!cl || closed_) return;
    cl->fetch_id = 0;
    on_answer(*cl, std::move(r));
  });
}

void Manager::on_answer(Client& c, Result<http::Response> r) {
  std::int64_t now = clock_();
  if (!r) {
    c.r.failed(now, r.error().message());
    log::warn("oauth_token_failed")
        .kv("upstream", c.cfg.key)
        .kv("reason", c.r.last_outcome())
        .kv("retry_in_s", (c.r.next_wake(now).value_or(now) - now) / 1000);
    settle(c);
    return arm(c);
  }
  TokenAnswer a = parse_token_answer(r->status, r->body);
  if (auto* p = std::get_if<Problem>(&a)) {
    c.r.answered(now, a);
    auto line = p->kind == Problem::Kind::Transient ? log::warn("oauth_token_failed")
                                                    : log::error("oauth_token_refused_by_endpoint");
    line.kv("upstream", c.cfg.key).kv("status", static_cast<std::int64_t>(p->status)).kv("reason", c.r.last_outcome());
    if (p->kind == Problem::Kind::Reauth)
      line.kv("state", "reauthorisation needed").kv("action", "run: spoolgate oauth login --upstream " + c.cfg.key);
    else if (p->kind == Problem::Kind::Misconfigured)
      line.kv("state", "misconfigured").kv("action", "check client_id, its secret or certificate, tenant and scope");
    else
      line.kv("retry_in_s", (c.r.next_wake(now).value_or(now) - now) / 1000);
    settle(c);
    return arm(c);
  }
  Token t = std::get<Token>(std::move(a));
  Stored next = c.stored;
  next.client = c.fingerprint;
  bool rotated = c.cfg.refresh_grant && !t.refresh.empty() && t.refresh != c.stored.refresh;
  if (c.cfg.refresh_grant && !t.refresh.empty()) next.refresh = t.refresh;
  next.access = t.access;
  std::int64_t base = c.r.last_attempt() ? c.r.last_attempt() : now;
  next.expires_at = base + (t.expires_in > 0 ? t.expires_in * 1000 : Refresher::kDefaultLifetimeMs);
  next.refreshed_at = base;
  // Stored first, then used (the header says why).
  c.working = true;
  auto weak = std::weak_ptr<Client>(clients_.at(c.cfg.key));
  auto saved = std::make_shared<Result<void>>();
  auto rec = std::make_shared<Stored>(std::move(next));
  Store store = store_;
  std::string key = c.cfg.key;
  loop_.queue_work([store, key, rec, saved] { *saved = store.save(key, *rec); },
                   [this, weak, rec, saved, t = std::move(t), rotated] {
                     if (auto cl = weak.lock(); cl && !closed_) stored(*cl, *rec, *saved, t, rotated);
                   });
}

void Manager::stored(Client& c, const Stored& rec, const Result<void>& saved, const Token& t, bool rotated) {
  c.working = false;
  if (!saved)
    log::error("oauth_store_failed")
        .kv("upstream", c.cfg.key)
        .kv("reason", saved.error().message())
        .kv("action", rotated ? "the new refresh token is kept in memory only: fix the spool's disk"
                              : "the token is used; the next refresh writes again");
  c.stored = rec;
  c.r.answered(clock_(), t);
  log::info("oauth_token_refreshed")
      .kv("upstream", c.cfg.key)
      .kv("expires_in_s", (c.r.expires_at() - clock_()) / 1000)
      .kv("refresh_token", rotated ? "rotated" : "unchanged")
      .kv("generation", static_cast<std::int64_t>(c.stored.generation));
  settle(c);
  arm(c);
  if (c.reload_pending) {
    c.reload_pending = false;
    reload(c.cfg.key);
  }
}

void Manager::settle(Client& c) {
  if (c.waiters.empty()) return;
  std::int64_t now = clock_();
  const std::string* t = c.r.token(now);
  if (!t && c.in_flight()) return;  // still coming
  std::string token = t ? *t : std::string();
  Error err = no_token(c);
  auto waiters = std::move(c.waiters);
  c.waiters.clear();
  for (auto& [id, done] : waiters) {
    if (t)
      done(token);
    else
      done(tl::unexpected(err));
    if (closed_) return;
  }
}

Error Manager::no_token(const Client& c) const {
  std::string why = c.r.last_outcome().empty() ? std::string("no token yet") : c.r.last_outcome();
  std::int64_t now = clock_();
  switch (c.r.state(now)) {
    case Refresher::State::Reauth:
      return Error{Errc::Refused, 0,
                   "OAuth sign-in for " + c.cfg.key + " is no longer valid (" + why +
                       "): run spoolgate oauth login --upstream " + c.cfg.key};
    case Refresher::State::Misconfigured:
      return Error{Errc::Refused, 0, "the token endpoint refused the OAuth client of " + c.cfg.key + " (" + why + ")"};
    default:
      return Error{Errc::Io, 0, "no OAuth token for " + c.cfg.key + " yet (" + why + ")"};
  }
}

void Manager::arm(Client& c) {
  if (closed_ || !c.timer) return;
  std::int64_t now = clock_();
  auto when = c.r.next_wake(now);
  if (!when) {
    c.timer->stop();
    return;
  }
  std::int64_t wait = std::clamp<std::int64_t>(*when - now, 0, kMaxSleepMs);
  c.timer->start(Millis(wait));
}

std::vector<ClientStatus> Manager::status() const {
  std::vector<ClientStatus> out;
  std::int64_t now = clock_();
  for (const auto& [key, c] : clients_) {
    ClientStatus s;
    s.key = key;
    s.grant = grant_name(c->cfg);
    s.state = c->r.state(now);
    s.expires_at = c->r.token(now) ? c->r.expires_at() : 0;
    s.last_attempt = c->r.last_attempt();
    s.last_outcome = c->r.last_outcome();
    s.generation = c->stored.generation;
    s.has_refresh_token = !c->stored.refresh.empty();
    out.push_back(std::move(s));
  }
  return out;
}

std::string status_text(const std::vector<ClientStatus>& all, std::int64_t now_ms) {
  if (all.empty()) return "no upstream uses OAuth\n";
  std::string out;
  for (const auto& c : all) {
    out += c.key + ": " + c.grant + ", " + to_string(c.state);
    if (c.expires_at) {
      std::int64_t left = std::max<std::int64_t>(0, c.expires_at - now_ms);
      out += ", token expires " + iso8601(c.expires_at / 1000) + " (in " + format_duration(Millis(left)) + ")";
    } else {
      out += ", no valid token";
    }
    if (c.last_attempt) out += ", last refresh " + iso8601(c.last_attempt / 1000) + ": " + c.last_outcome;
    if (c.grant == "refresh_token") out += c.has_refresh_token ? ", signed in" : ", not signed in";
    out += ", store generation " + std::to_string(c.generation) + "\n";
    if (c.state == Refresher::State::Reauth) out += "  run: spoolgate oauth login --upstream " + c.key + "\n";
  }
  return out;
}

std::string status_json(const std::vector<ClientStatus>& all) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& c : all)
    list.push_back({{"upstream", c.key},
                    {"grant", c.grant},
                    {"state", to_string(c.state)},
                    {"reauth_required", c.state == Refresher::State::Reauth},
                    {"expires_at", c.expires_at / 1000},
                    {"last_refresh", c.last_attempt / 1000},
                    {"last_outcome", c.last_outcome},
                    {"signed_in", c.has_refresh_token},
                    {"generation", c.generation}});
  return nlohmann::json{{"clients", list}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

void Manager::close() {
  if (closed_) return;
  closed_ = true;
  for (auto& [key, c] : clients_) {
    if (c->fetch_id) fetcher_.cancel(c->fetch_id);
    c->waiters.clear();
  }
  clients_.clear();
}

}  // namespace spoolgate::oauth
