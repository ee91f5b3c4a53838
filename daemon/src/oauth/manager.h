// SPDX-License-Identifier: MIT
// oauth/manager: the token manager. Owns, per OAuth upstream, the access
// token in use, its refresh (timing by oauth/refresher.h), the token store
// (oauth/store.h) and the sessions waiting for a token.
//
// Everything runs on the loop thread, and nothing there waits: token
// requests go out through an http::Fetcher (the HTTPS helper) and come back
// as events; the store is read and written on worker threads. A session
// asks with get(): a valid token is handed over at once; otherwise the
// session waits for the request in flight (never a second one), and fails
// with the reason when it ends without a token. Tokens are refreshed ahead
// of time by a timer per client, so sessions normally never wait.
//
// A rotated refresh token is written to the store before the access token
// that came with it is handed to anyone (a crash after the provider
// rotated it must not leave only the old, dead one on disk). One window no
// client can close: a crash while the provider's answer is still on its
// way. A provider that kills the old refresh token at once (Microsoft
// does not) then refuses it after the restart: the operator state, logged,
// and mail waits; nothing is lost.
//
// Errors given to waiters: Errc::Refused when a person must act (consent
// revoked: `spoolgate oauth login`; a client the endpoint refuses: fix the
// config), Errc::Io/Timeout when the endpoint is down or slow (the message
// is deferred and retried like any other temporary failure). None of them
// holds a secret: they name the endpoint and its error code.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"
#include "http/fetcher.h"
#include "loop/loop.h"
#include "oauth/refresher.h"
#include "oauth/store.h"

namespace spoolgate::oauth {

// One upstream's OAuth client, as configured.
struct ClientConfig {
  std::string key;             // the store key (the upstream's name); unique
  bool refresh_grant = false;  // refresh_token (needs a login first) or client_credentials
  // The JWT-bearer grant (RFC 7523 2.1, a Google service account):
  // client_auth gives the assertion; no client_id or scope is sent.
  bool jwt_bearer = false;
  std::string token_url;
  std::string client_id;
  std::string scope;
  std::string ca_file;
  // The client's own credentials as form fields (client_secret, or
  // client_assertion_type + client_assertion), made afresh for each
  // request: a rotated secret file needs no reload, and an assertion is
  // signed with a new expiry. Called on a worker thread; may block (reads files).
  std::function<Result<std::vector<std::pair<std::string, std::string>>>()> client_auth;
};

struct ClientStatus {
  std::string key;
  std::string grant;  // "client_credentials" or "refresh_token"
  Refresher::State state = Refresher::State::Empty;
  std::int64_t expires_at = 0;    // unix ms; 0: no token
  std::int64_t last_attempt = 0;  // unix ms; 0: none yet
  std::string last_outcome;       // "ok", or the endpoint's error (no secret)
  std::uint64_t generation = 0;   // of the stored record
  bool has_refresh_token = false;
};

// `spoolgate oauth status`: one line per client, for a person, and JSON
// ({"clients": [{"upstream", "grant", "state", "expires_at", ...}]}); times
// are unix seconds in JSON. No token or secret in either.
std::string status_text(const std::vector<ClientStatus>& all, std::int64_t now_ms);
std::string status_json(const std::vector<ClientStatus>& all);

class Manager {
 public:
  using Clock = std::function<std::int64_t()>;  // unix ms
  using Done = std::function<void(Result<std::string> token)>;

  Manager(loop::Loop& loop, http::Fetcher& fetcher, Store store, Clock clock);
  ~Manager();
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  // Starts managing a client (reads its stored record, then fetches a
  // token if none is valid). A client already known with the same
  // settings keeps its token; with other settings it starts afresh.
  void add(ClientConfig c);
  // Stops managing every client whose key is not in `keep` (a reload).
  void retain(const std::vector<std::string>& keep);
  bool has(const std::string& key) const { return clients_.count(key) != 0; }

  // done runs once on the loop with a valid token, or why there is none;
  // it may run before get() returns. The returned function abandons the
  // wait (done will not run); it does nothing once done has run.
  std::function<void()> get(const std::string& key, Done done);
  // The upstream refused `token` (XOAUTH2 error challenge with 401, or
  // 535). True: it was the current token, it is dropped and a new one is
  // being fetched: get() again and retry once. False: it was refused
  // before, or is no longer current (do not retry in a loop).
  bool refused(const std::string& key, const std::string& token);
  // Reads the stored record again and fetches at once (after `oauth login`
  // wrote a new refresh token). Unknown keys are ignored.
  void reload(const std::string& key);

  std::vector<ClientStatus> status() const;
  // Drops every waiter silently, cancels requests, stops timers. Idempotent.
  void close();

 private:
  struct Client;
  void load(Client& c, bool force);
  void tick(Client& c);
  void loaded(Client& c, Result<std::optional<Stored>> got, bool force);
  void made_auth(Client& c, Result<std::vector<std::pair<std::string, std::string>>> made);
  void stored(Client& c, const Stored& rec, const Result<void>& saved, const Token& t, bool rotated);
  void request(Client& c, std::vector<std::pair<std::string, std::string>> auth);
  void on_answer(Client& c, Result<http::Response> r);
  // Hands the token to every waiter, or the reason there is none, unless
  // one is still coming.
  void settle(Client& c);
  void arm(Client& c);
  Error no_token(const Client& c) const;

  loop::Loop& loop_;
  http::Fetcher& fetcher_;
  Store store_;
  Clock clock_;
  std::map<std::string, std::shared_ptr<Client>> clients_;
  std::uint64_t next_waiter_ = 0;
  bool closed_ = false;
};

}  // namespace spoolgate::oauth
