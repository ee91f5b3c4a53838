// SPDX-License-Identifier: MIT
#include "app/probe.h"

#include <ostream>
#include <utility>

#include "api/claims.h"
#include "api/request.h"
#include "app/upstreams.h"
#include "core/clock.h"
#include "core/text.h"
#include "core/units.h"
#include "fetch/client.h"
#include "loop/loop.h"
#include "oauth/store.h"
#include "smtp/client.h"
#include "upstream/link.h"

namespace spoolgate::app {
namespace {

// Connects through the same upstream::Link as a delivery session (secret
// file, connect, TLS, EHLO, AUTH, the delivery stage timeouts), prints what
// each step found, and QUITs once the link is ready.
// An OAuth upstream's secret in a probe: the access token the daemon
// stored, if it is still valid. The probe never asks the token endpoint
// itself: a refresh here could rotate the refresh token under the running
// daemon.
class StoredToken final : public upstream::Credentials {
 public:
  explicit StoredToken(Result<std::string> token) : token_(std::move(token)) {}
  net::CancelConnect get(loop::Loop&, const upstream::Upstream&, const std::string&, Done done) override {
    done(token_);
    return [] {};
  }

 private:
  Result<std::string> token_;
};

Result<std::string> stored_token(const config::Config& cfg, std::size_t index, const upstream::Upstream& u) {
  auto store = oauth::Store::open(cfg.spool.dir);
  if (!store) return tl::unexpected(store.error());
  auto rec = store->load(u.oauth_key);
  if (!rec) return tl::unexpected(rec.error());
  if (cfg.upstreams[index].oauth.grant == config::OAuthGrant::RefreshToken && (!*rec || (*rec)->refresh.empty()))
    return fail(Errc::NotFound, "no sign-in stored: run spoolgate oauth login --upstream " + std::to_string(index));
  if (!*rec || (*rec)->access.empty() || (*rec)->expires_at <= unix_now_ms())
    return fail(Errc::NotFound, "no valid access token in " + store->dir() + "/" + u.oauth_key +
                                    ".json (the running daemon gets one; see spoolgate oauth status)");
  return (*rec)->access;
}

class Probe {
 public:
  Probe(loop::Loop& loop, const upstream::Upstream& u, const upstream::Settings& s, bool auth,
        upstream::Credentials& credentials, std::ostream& out)
      : out_(out), link_(loop, u, s.helo, s.timeouts, credentials, "probe", auth, hooks()) {}

  void start() { link_.start(); }
  int result() const { return ok_ ? 0 : 1; }

 private:
  upstream::Link::Hooks hooks() {
    upstream::Link::Hooks h;
    h.connected = [this](const net::Connection& c) {
      out_ << "connected: " << c.peer() << " port " << link_.upstream().port << "\n";
    };
    h.tls = [this](const tls::Session& t, const Result<void>& r) { report_tls(t, r); };
    h.ready = [this] { on_ready(); };
    h.failed = [this](const smtp::Failure& f) {
      if (f.kind == smtp::Failure::Auth) out_ << "auth: FAILED: " << f.reason << "\n";
      finish(f.reason, false);
    };
    h.read = [this](std::string_view b, bool eof) {
      link_.feed(b, eof);
      after_quit();
    };
    return h;
  }

  void report_tls(const tls::Session& t, const Result<void>& r) {
    const upstream::Upstream& u = link_.upstream();
    if (u.tls == smtp::TlsMode::StartTls) out_ << "starttls: offered and accepted\n";
    std::int64_t now = unix_now();
    auto chain = t.chain();
    if (r) out_ << "tls: " << t.version() << " " << t.cipher() << "\n";
    out_ << "certificate chain (" << chain.size() << " presented by the server):\n";
    for (std::size_t i = 0; i < chain.size(); ++i) {
      const auto& c = chain[i];
      long days = static_cast<long>((c.not_after - now) / 86400);
      out_ << "  [" << i << "] subject: " << c.subject << "\n"
           << "      issuer:  " << c.issuer << "\n"
           << "      valid:   " << iso8601(c.not_before) << " .. " << iso8601(c.not_after) << " (" << days
           << " days left)\n"
           << "      pin:     " << c.spki_pin << "\n";
    }
    if (r)
      out_ << "verification: ok (host " << u.host << " matches, chain trusted)\n";
    else
      out_ << "verification: FAILED: " << (t.verify_error().empty() ? r.error().message() : t.verify_error()) << "\n";
  }

  void on_ready() {
    smtp::Client& m = link_.machine();
    const auto& caps = m.capabilities();
    out_ << "ehlo" << (m.tls_active() ? " (after TLS):" : " (no TLS):");
    if (caps.pipelining) out_ << " PIPELINING";
    if (caps.size) out_ << " SIZE=" << caps.max_size;
    if (caps.eight_bit_mime) out_ << " 8BITMIME";
    if (caps.smtputf8) out_ << " SMTPUTF8";
    if (caps.enhanced_status) out_ << " ENHANCEDSTATUSCODES";
    if (!caps.auth.empty()) {
      out_ << " AUTH";
      for (const auto& a : caps.auth) out_ << " " << a;
    }
    out_ << "\n";
    if (m.authenticated()) out_ << "auth: ok as " << link_.upstream().username << "\n";
    m.quit();
    link_.flush();
    link_.arm(smtp::Stage::Quit);
  }

  void after_quit() {
    switch (link_.machine().next()) {
      case smtp::ClientEvent::NeedInput:
        return;
      case smtp::ClientEvent::Closed:
        return finish("", true);
      case smtp::ClientEvent::Failed:
        return finish(link_.machine().failure().reason, false);
      default:
        return finish("unexpected state", false);
    }
  }

  void finish(const std::string& why, bool ok) {
    if (done_) return;
    done_ = true;
    ok_ = ok;
    out_ << "result: " << (ok ? "ok" : "FAILED" + (why.empty() ? std::string() : ": " + why)) << "\n";
    link_.close();
  }

  std::ostream& out_;
  upstream::Link link_;
  bool done_ = false;
  bool ok_ = false;
};

// An API upstream: the token (as a delivery gets it), the permission it
// claims (Microsoft's tokens say; Google's are opaque), and a read of the
// mailbox through the API with it. Neither API has a dry run of a send:
// nothing is sent.
class ApiProbe {
 public:
  ApiProbe(loop::Loop& loop, const upstream::Upstream& u, upstream::Credentials& credentials, std::ostream& out)
      : loop_(loop),
        u_(u),
        credentials_(credentials),
        out_(out),
        fetch_(loop, loop::Process::sibling("spoolgate-https")) {}

  void start() {
    cancel_ = credentials_.get(loop_, u_, "probe", [this](Result<std::string> token) {
      if (!token) return finish("token: FAILED: " + token.error().message(), false);
      out_ << "token: ok\n";
      if (*u_.api == api::Kind::Graph && !permission(*token)) return finish("", false);
      http::Request r = api::probe_request(*u_.api, api::base_or_default(*u_.api, u_.api_base), u_.mailbox, *token);
      r.ca_file = u_.ca_file;
      r.timeout = Millis(30'000);
      fetch_.send(std::move(r), [this](const Result<http::Response>& a) { on_answer(a); });
    });
  }
  int result() const { return ok_ ? 0 : 1; }

 private:
  bool permission(const std::string& token) {
    auto c = api::claims(token);
    if (!c) {
      out_ << "permission: not readable from the token (not a JWT); the first send will tell\n";
      return true;
    }
    if (c->has("Mail.Send")) {
      out_ << "permission: Mail.Send (" << (c->roles.empty() ? "delegated" : "application") << ")\n";
      // A message over one request's size goes as a draft (api/graph_draft.h).
      std::uint64_t most = u_.limits.max_message_size;
      if (most == 0 || most > api::kGraphRequestMax) {
        if (c->has("Mail.ReadWrite"))
          out_ << "large messages: Mail.ReadWrite (over " << api::kGraphRequestMax
               << " bytes they go as a draft with upload sessions)\n";
        else
          out_ << "large messages: WARNING: the token has no Mail.ReadWrite, which messages over "
               << api::kGraphRequestMax
               << " bytes need (a draft with upload sessions): grant it, or set limits.max_message_size: "
               << api::kGraphRequestMax << " so that the listener refuses them\n";
      }
      return true;
    }
    std::string has;
    for (const auto& x : c->roles) has += (has.empty() ? "" : " ") + x;
    for (const auto& x : c->scopes) has += (has.empty() ? "" : " ") + x;
    out_ << "permission: FAILED: the token has no Mail.Send (it has: " << (has.empty() ? "nothing" : has)
         << "); grant it to the app registration and give admin consent\n";
    return false;
  }

  void on_answer(const Result<http::Response>& a) {
    if (!a) return finish("api: FAILED: " + a.error().message(), false);
    std::string who = u_.mailbox;
    switch (a->status) {
      case 200:
        out_ << "mailbox: " << who << " found\n";
        return finish("", true);
      case 401:
        return finish("mailbox: FAILED: the API refused the token (401)", false);
      case 404:
        return finish("mailbox: FAILED: no such mailbox " + who + " (404)", false);
      case 403:
        // Reading a user needs more than sending: a Mail.Send-only app or
        // a gmail.send token may not read it, and that is fine.
        out_ << "mailbox: not readable with this token (403; sending needs only "
             << (*u_.api == api::Kind::Graph ? "Mail.Send" : "gmail.send") << ")\n";
        return finish("", true);
      default:
        return finish("mailbox: FAILED: " + api::meaning(*u_.api, *a, unix_now()).reply.summary(), false);
    }
  }

  void finish(const std::string& why, bool ok) {
    ok_ = ok;
    if (!why.empty()) out_ << why << "\n";
    out_ << "send: not tried (neither API has a dry run; nothing was sent)\n";
    out_ << "result: " << (ok ? "ok" : "FAILED") << "\n";
    fetch_.close();
  }

  loop::Loop& loop_;
  const upstream::Upstream& u_;
  upstream::Credentials& credentials_;
  std::ostream& out_;
  fetch::Client fetch_;
  net::CancelConnect cancel_;
  bool ok_ = false;
};

// What the configuration says this account will do, and what its provider
// is known to require of it (no mail is sent to find out).
void report_policy(const config::Upstream& c, const upstream::Upstream& u, std::ostream& out) {
  const config::UpstreamLimits& l = c.limits;
  std::string limits;
  auto add = [&limits](std::uint64_t n, const std::string& what) {
    if (n) limits += (limits.empty() ? "" : ", ") + std::to_string(n) + " " + what;
  };
  add(l.max_connections, "sessions at once");
  add(l.messages_per_second, "a second");
  add(l.messages_per_minute, "a minute");
  add(l.messages_per_day, "messages a day");
  add(l.recipients_per_day, "recipients a day");
  if (l.max_message_size) limits += (limits.empty() ? "" : ", ") + format_size(l.max_message_size) + " at most";
  out << "provider: " << config::to_string(c.provider) << " (limits kept: " << (limits.empty() ? "none" : limits)
      << ")\n";
  std::string as = u.rewrite_from;
  if (as.empty())
    out << "sender policy: mail goes out with the sender and From: it came with"
        << (u.send_as.empty() ? "" : " (others than send_as are refused at RCPT)") << "\n";
  else if (u.send_as.empty())
    out << "sender policy: every message goes out as " << as << " (rewrite_from; the original From: as Reply-To:)\n";
  else
    out << "sender policy: senders in send_as keep their From:, others go out as " << as << "\n";
  const std::string& account = u.username;
  bool as_account = !account.empty() && iequals(as, account) && u.send_as.empty();
  switch (c.provider) {
    case config::Provider::Microsoft365:
      if (!as_account)
        out << "check: Microsoft 365 takes a From: other than the mailbox" << (account.empty() ? "" : " " + account)
            << " only with Send As rights on it (else 550 5.7.60 or SendAsDenied, held, never bounced);"
               " rewrite_from: account avoids it\n";
      if (!c.oauth.configured() && !config::is_api(c.scheme))
        out << "check: Microsoft 365 turns SMTP AUTH with a password off by default (Basic Auth ends"
               " December 2026): prefer an oauth block\n";
      break;
    case config::Provider::Gmail:
    case config::Provider::GoogleWorkspace:
      if (!as_account)
        out << "check: Gmail replaces a From: the account does not own (a \"Send mail as\" alias) with the"
               " account's address\n";
      break;
    case config::Provider::Ses:
      out << "check: SES sends only from verified identities: list them in send_as\n";
      break;
    case config::Provider::Generic:
      break;
  }
}

}  // namespace

int probe(const config::Config& cfg, std::size_t index, bool auth, std::ostream& out) {
  if (cfg.upstreams.empty()) {
    out << "no upstream configured\n";
    return 1;
  }
  if (index >= cfg.upstreams.size()) {
    out << "no upstream " << index << " (there are " << cfg.upstreams.size() << ", counted from 0)\n";
    return 1;
  }
  auto s = delivery_settings_from(cfg);
  if (!s) {
    out << "configuration: " << s.error().message() << "\n";
    return 1;
  }
  const upstream::Upstream& u = s->upstreams[index];
  out << "upstream: " << u.name << "\n";
  report_policy(cfg.upstreams[index], u, out);
  loop::Loop loop;
  int rc;
  {
    upstream::SecretFiles files;
    StoredToken token(u.oauth_key.empty() ? Result<std::string>(std::string()) : stored_token(cfg, index, u));
    if (!u.oauth_key.empty() && auth) out << "auth: OAuth2 token from the daemon's store (" << u.oauth_key << ")\n";
    upstream::Credentials& credentials = u.oauth_key.empty() ? static_cast<upstream::Credentials&>(files) : token;
    if (u.api) {
      out << "api: " << (*u.api == api::Kind::Graph ? "Microsoft Graph sendMail" : "Gmail messages.send") << " at "
          << (u.api_base.empty() ? api::default_base(*u.api) : u.api_base) << ", as " << u.mailbox << "\n";
      ApiProbe p(loop, u, credentials, out);
      p.start();
      loop.run();
      rc = p.result();
    } else {
      Probe p(loop, u, *s, auth, credentials, out);
      p.start();
      loop.run();
      rc = p.result();
    }
  }
  if (loop.close() != 0) rc = 70;
  return rc;
}

}  // namespace spoolgate::app
