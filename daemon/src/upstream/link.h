// SPDX-License-Identifier: MIT
// upstream/link: one connection to one upstream, made ready for mail.
//
// The one way anything here reaches an SMTP upstream, so that `probe`
// connects exactly as delivery does: the secret fetched (Credentials: the
// password file read afresh, or a token), the connect, TLS from the start
// (smtps) or after STARTTLS, EHLO, AUTH. Once the server has accepted all of
// that, ready() is called and the owner drives transactions on machine()
// (upstream/session) or just QUITs (app/probe); from then on the server's
// bytes go to the owner's read hook.
//
// Owns the connection, the client machine and the stage timer: every wait
// is bounded by the RFC 5321 4.5.3.2 timeout of its stage (arm()), before
// ready and after, and a timeout is reported through failed() with
// Errc::Timeout. Until ready, a failure of any step (connect, TLS, a
// refused greeting or STARTTLS or AUTH) is reported through failed(), once;
// the link then does nothing more until the owner calls close().
//
// Teardown: close() is the one ending. It abandons a secret fetch or a
// connect in progress, queues TLS close_notify, closes the connection after
// its pending writes (bounded by a linger timer), and calls closed() once
// the connection is gone — never from inside close() itself; closed() tells
// whether anything is still open. The owner outlives the link's callbacks
// by keeping the link until closed().
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/answer.h"
#include "core/result.h"
#include "core/units.h"
#include "loop/loop.h"
#include "net/connection.h"
#include "net/connector.h"
#include "pacing/pacer.h"
#include "smtp/client.h"
#include "smtp/headers.h"
#include "tls/tls.h"

namespace spoolgate::upstream {

struct Upstream {
  std::string name;  // the URL, for logs (never holds a secret)
  std::string host;
  std::uint16_t port = 465;
  smtp::TlsMode tls = smtp::TlsMode::Implicit;
  smtp::AuthMech auth = smtp::AuthMech::Auto;
  std::string username;
  std::string secret;       // password or token, loaded by app; never logged
  std::string secret_file;  // read again before each new session (empty: secret is fixed)
  std::string oauth_key;    // not empty: the secret is an access token from this OAuth client
  std::shared_ptr<tls::Context> tls_ctx;
  // The account's limits (config upstreams[].limits, the provider's
  // profile filled in), kept by Delivery before the provider must refuse.
  pacing::Limits limits;
  Millis quota_wait{3'600'000};  // after a quota reply, no new transaction for this long
  // Where the counters are kept across restarts: <spool>/pacing/<key>.
  std::string pacing_key;
  std::string config_name;  // upstreams[].name, "" when none
  // An HTTP API upstream (graph://, gmail-api://; upstream/api_session.h)
  // instead of SMTP: which API, its base URL, the mailbox it sends as, and
  // the CA file its HTTPS is verified with ("" for the system's).
  std::optional<api::Kind> api;
  std::string api_base, mailbox, ca_file;
  // Sender policy (config upstreams[].send_as and rewrite_from, "account"
  // resolved to the username): from_for() says what a message goes out as.
  std::vector<std::string> send_as;
  std::string rewrite_from;
  // The address this message's envelope sender and From: become here, ""
  // to keep them (send_as allows the sender, or nothing to rewrite with,
  // or the null sender of a report).
  std::string from_for(std::string_view sender) const;
  // For people: the config's name when there is one, else the URL.
  const std::string& label() const { return config_name.empty() ? name : config_name; }
};

// The header fix-up that sends a message out as `from` (upstreams[].
// rewrite_from: From: rewritten, the original kept as Reply-To:) and changes
// nothing else; for every kind of upstream session.
smtp::HeaderFixSettings rewrite_from_settings(const std::string& from);

struct Timeouts {
  Millis connect{30'000}, greeting{300'000}, mail{300'000}, rcpt{300'000}, data{120'000}, block{180'000}, done{600'000};
};

// The timeout of a stage, and its name for the reason of a timeout.
Millis stage_timeout(const Timeouts& t, smtp::Stage stage);
const char* stage_name(smtp::Stage stage);

// The one-line secret in `path` (trailing CR/LF dropped): a password or an
// OAuth2 access token; an empty one or one with a control character is an
// error. Blocking: call it off the loop.
Result<std::string> read_secret_file(const std::string& path);
// What every secret must be, wherever it comes from: not empty, one line,
// no control character.
Result<void> check_secret(std::string_view s);

// Where a new link's secret comes from (a password, or an access token).
// get() calls done on the loop, once, with the secret to send or why there
// is none (the link then fails with that reason, before it connects),
// unless the returned function is called first; done may run before get()
// returns.
class Credentials {
 public:
  virtual ~Credentials() = default;
  using Done = std::function<void(Result<std::string> secret)>;
  virtual net::CancelConnect get(loop::Loop& loop, const Upstream& u, const std::string& log_id, Done done) = 0;
  // The server refused `secret`, an OAuth2 token. True: a new one is on
  // its way, get() again and retry once on the same connection. A
  // password source never says true (retrying a password gains nothing).
  virtual bool refused(const Upstream& u, const std::string& secret) {
    (void)u;
    (void)secret;
    return false;
  }
};

// The secret of the configuration, or of its file read afresh for every
// link (an access token written by a refresher lives about an hour; a
// changed password needs no reload), keeping the last good one per
// upstream: a file being rewritten, emptied or unreadable keeps that in
// use. Loop thread only.
class SecretFiles final : public Credentials {
 public:
  net::CancelConnect get(loop::Loop& loop, const Upstream& u, const std::string& log_id, Done done) override;
  const std::string& last_good(const Upstream& u) const;

 private:
  std::map<std::string, std::string> last_;  // by upstream URL
};

// Each upstream's secret from where it comes: its OAuth client (tokens,
// when set) or its password (SecretFiles). Loop thread only.
class CredentialSources final : public Credentials {
 public:
  net::CancelConnect get(loop::Loop& loop, const Upstream& u, const std::string& log_id, Done done) override;
  bool refused(const Upstream& u, const std::string& secret) override;
  void set_tokens(Credentials* tokens) { tokens_ = tokens; }

 private:
  SecretFiles files_;
  Credentials* tokens_ = nullptr;
};

class Link {
 public:
  struct Hooks {
    // The TCP connection is up (before any byte).
    std::function<void(const net::Connection&)> connected;
    // A TLS handshake ended, well or not (a failure is then also failed()).
    std::function<void(const tls::Session&, const Result<void>&)> tls;
    // EHLO (and AUTH) done: machine() is idle in the session, the timer is off.
    std::function<void()> ready;
    // Before ready: why the link failed; at any time: a stage timeout.
    std::function<void(const smtp::Failure&)> failed;
    // After ready: the server's bytes (eof: the connection ended).
    std::function<void(std::string_view bytes, bool eof)> read;
    // After close(): the connection is closed.
    std::function<void()> closed;
  };

  // log_id names the link in log lines (the session's id). authenticate:
  // false leaves the credentials out (probe without --auth).
  // The upstream and the timeouts are copied: a reload does not change a
  // live link.
  Link(loop::Loop& loop, Upstream u, const std::string& helo, const Timeouts& t, Credentials& credentials,
       std::string log_id, bool authenticate, Hooks hooks);
  ~Link();
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  void start();
  void close();
  bool closed() const { return closing_ && !conn_ && !cancel_; }

  const Upstream& upstream() const { return u_; }
  // After ready: the session's dialogue.
  smtp::Client& machine() { return machine_; }
  net::Connection& conn() { return *conn_; }
  const tls::Session* tls() const { return conn_ ? conn_->tls() : nullptr; }
  // Feeds the server's bytes (or its close) to the machine.
  void feed(std::string_view bytes, bool eof);
  // Writes what the machine has queued.
  void flush();
  // The stage timer: started for `stage`, or stopped.
  void arm(smtp::Stage stage);
  void stop_timer();

 private:
  void connect();
  void on_connect(Result<std::unique_ptr<net::Connection>> r);
  void start_tls();
  void on_tls(const Result<void>& r);
  void on_read(std::string_view bytes, bool eof);
  void pump();
  // The server refused the token: one new one, one more AUTH, same connection.
  void retry_with_new_token();
  void fail(const smtp::Failure& f);

  loop::Loop& loop_;
  Upstream u_;
  Timeouts t_;
  Credentials& credentials_;
  std::string log_id_;
  Hooks hooks_;
  smtp::Client machine_;
  std::unique_ptr<net::Connection> conn_;
  loop::HandlePtr<loop::Timer> timer_;
  loop::HandlePtr<loop::Timer> linger_;
  // Set while the secret is fetched and while connecting: calling it abandons that.
  net::CancelConnect cancel_;
  bool authenticate_;
  bool fetching_ = false;               // the secret is being fetched
  bool in_get_ = false;                 // inside credentials_.get() (its done may run there)
  std::optional<smtp::Failure> early_;  // no secret: reported from the loop by the timer
  bool ready_ = false;
  bool failed_ = false;
  bool closing_ = false;
};

}  // namespace spoolgate::upstream
