// SPDX-License-Identifier: MIT
#include "upstream/link.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "core/log.h"
#include "core/text.h"
#include "smtp/address.h"
#include "spool/record.h"

namespace spoolgate::upstream {
namespace {

constexpr Millis kLinger{5000};

smtp::ClientSettings client_settings(const Upstream& u, const std::string& helo, bool authenticate) {
  smtp::ClientSettings c;
  c.helo = helo;
  c.tls = u.tls;
  c.auth = u.auth;
  c.bearer = !u.oauth_key.empty() || u.auth == smtp::AuthMech::XOAuth2 || u.auth == smtp::AuthMech::OAuthBearer;
  if (authenticate) {
    c.username = u.username;
    c.secret = u.secret;
  }
  return c;
}

}  // namespace

smtp::HeaderFixSettings rewrite_from_settings(const std::string& from) {
  smtp::HeaderFixSettings hs;
  hs.add_missing = false;
  hs.rewrite_from = from;
  hs.max_header_bytes = spool::kMaxHeaderBytes;
  return hs;
}

std::string Upstream::from_for(std::string_view sender) const {
  if (sender.empty() || rewrite_from.empty()) return {};
  if (!send_as.empty() && smtp::sender_listed(send_as, sender)) return {};
  return iequals(sender, rewrite_from) ? std::string() : rewrite_from;
}

Millis stage_timeout(const Timeouts& t, smtp::Stage stage) {
  switch (stage) {
    case smtp::Stage::Greeting:
      return t.greeting;
    case smtp::Stage::Command:
    case smtp::Stage::Mail:
    case smtp::Stage::Quit:
      return t.mail;
    case smtp::Stage::Rcpt:
      return t.rcpt;
    case smtp::Stage::DataInit:
      return t.data;
    case smtp::Stage::DataBlock:
      return t.block;
    case smtp::Stage::DataEnd:
      return t.done;
  }
  return t.mail;
}

const char* stage_name(smtp::Stage stage) {
  switch (stage) {
    case smtp::Stage::Greeting:
      return "greeting";
    case smtp::Stage::Command:
      return "command";
    case smtp::Stage::Mail:
      return "MAIL";
    case smtp::Stage::Rcpt:
      return "RCPT";
    case smtp::Stage::DataInit:
      return "DATA";
    case smtp::Stage::DataBlock:
      return "data block";
    case smtp::Stage::DataEnd:
      return "end of data";
    case smtp::Stage::Quit:
      return "QUIT";
  }
  return "?";
}

Result<std::string> read_secret_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(Errc::NotFound, "cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  if (auto bad = check_secret(s); !bad) return fail(Errc::Invalid, path + ": " + bad.error().detail);
  return s;
}

Result<void> check_secret(std::string_view s) {
  if (s.empty()) return fail(Errc::Invalid, "the secret is empty");
  if (s.find_first_of("\r\n") != std::string_view::npos) return fail(Errc::Invalid, "the secret must be one line");
  if (has_control(s)) return fail(Errc::Invalid, "the secret must not contain control characters");
  return {};
}

const std::string& SecretFiles::last_good(const Upstream& u) const {
  auto it = last_.find(u.name);
  return it == last_.end() ? u.secret : it->second;
}

net::CancelConnect SecretFiles::get(loop::Loop& loop, const Upstream& u, const std::string& log_id, Done done) {
  if (u.secret_file.empty()) {
    done(u.secret);
    return nullptr;
  }
  auto secret = std::make_shared<Result<std::string>>();
  auto abandoned = std::make_shared<bool>(false);
  loop.queue_work([secret, path = u.secret_file] { *secret = read_secret_file(path); },
                  [this, secret, abandoned, u, log_id, done = std::move(done)] {
                    if (*abandoned) return;  // the link closed meanwhile (and is perhaps freed)
                    if (*secret) {
                      last_[u.name] = **secret;
                      return done(std::move(**secret));
                    }
                    log::warn("secret_unreadable")
                        .kv("session", log_id)
                        .kv("upstream", u.name)
                        .kv("reason", secret->error().message())
                        .kv("action", "using the last good secret");
                    done(last_good(u));
                  });
  return [abandoned] { *abandoned = true; };
}

net::CancelConnect CredentialSources::get(loop::Loop& loop, const Upstream& u, const std::string& log_id, Done done) {
  if (u.oauth_key.empty()) return files_.get(loop, u, log_id, std::move(done));
  if (!tokens_) {
    done(fail(Errc::Invalid, "no token manager for " + u.name));
    return [] {};
  }
  return tokens_->get(loop, u, log_id, std::move(done));
}

bool CredentialSources::refused(const Upstream& u, const std::string& secret) {
  return !u.oauth_key.empty() && tokens_ && tokens_->refused(u, secret);
}

Link::Link(loop::Loop& loop, Upstream u, const std::string& helo, const Timeouts& t, Credentials& credentials,
           std::string log_id, bool authenticate, Hooks hooks)
    : loop_(loop),
      u_(std::move(u)),
      t_(t),
      credentials_(credentials),
      log_id_(std::move(log_id)),
      hooks_(std::move(hooks)),
      machine_(client_settings(u_, helo, authenticate)),
      authenticate_(authenticate) {}

Link::~Link() = default;

void Link::start() {
  timer_ = loop::Timer::create(loop_, [this] {
    if (early_) return fail(*std::exchange(early_, std::nullopt));
    std::string reason = std::string("timeout waiting for the server at ") + stage_name(machine_.stage());
    fail(smtp::Failure{smtp::Failure::Temporary, reason, false, true, Errc::Timeout});
  });
  if (!authenticate_ || u_.username.empty()) return connect();
  // The secret is fetched for every new link (Credentials); close()
  // abandons the fetch like a connect.
  fetching_ = true;
  auto cancel = credentials_.get(loop_, u_, log_id_, [this](Result<std::string> secret) {
    fetching_ = false;
    cancel_ = nullptr;
    if (!secret) {
      // Reported from the loop, never from here: done may run inside
      // get(), and so inside the owner's start().
      early_ = smtp::Failure{smtp::Failure::Auth, secret.error().message(), false, true, secret.error().code};
      timer_->start(Millis(0));
      return;
    }
    machine_.set_secret(std::move(*secret));
    connect();  // (never calls back before it returns)
  });
  if (fetching_) cancel_ = std::move(cancel);  // (else done ran already)
}

void Link::connect() {
  cancel_ = net::connect(loop_, u_.host, u_.port, t_.connect,
                         [this](Result<std::unique_ptr<net::Connection>> r) { on_connect(std::move(r)); });
}

void Link::on_connect(Result<std::unique_ptr<net::Connection>> r) {
  cancel_ = nullptr;
  if (!r) return fail(smtp::Failure{smtp::Failure::Temporary, r.error().message(), false, true, r.error().code});
  conn_ = std::move(*r);
  conn_->on_read([this](std::string_view b, bool eof) { on_read(b, eof); });
  conn_->on_closed([this] {
    conn_.reset();
    linger_.reset();
    auto closed = hooks_.closed;  // the owner may delete this link in it
    if (closed) closed();
  });
  if (hooks_.connected) hooks_.connected(*conn_);
  arm(smtp::Stage::Greeting);
  if (u_.tls == smtp::TlsMode::Implicit)
    start_tls();  // RFC 8314: TLS before anything else; a plaintext greeting fails the handshake
  else
    conn_->start_reading();
}

void Link::start_tls() {
  auto s = tls::Session::client(u_.tls_ctx, u_.host);
  if (!s) return fail(smtp::Failure{smtp::Failure::Temporary, s.error().message(), false, true});
  conn_->start_tls(std::move(*s), [this](const Result<void>& r) { on_tls(r); });
}

void Link::on_tls(const Result<void>& r) {
  if (closing_) return;
  if (hooks_.tls) hooks_.tls(*conn_->tls(), r);
  if (!r)
    return fail(smtp::Failure{smtp::Failure::Temporary, "TLS with " + u_.host + " failed: " + r.error().message(),
                              false, true, r.error().code});
  log::debug("upstream_tls")
      .kv("session", log_id_)
      .kv("upstream", u_.name)
      .kv("version", conn_->tls()->version())
      .kv("cipher", conn_->tls()->cipher())
      .kv("resumed", conn_->tls()->resumed() ? "yes" : "no");
  if (u_.tls == smtp::TlsMode::StartTls) {
    machine_.tls_established();
    pump();
  }
}

void Link::on_read(std::string_view bytes, bool eof) {
  if (closing_ || failed_) return;
  if (ready_) return hooks_.read(bytes, eof);
  feed(bytes, eof);
  pump();
}

void Link::feed(std::string_view bytes, bool eof) {
  if (eof)
    machine_.connection_lost("closed by the server");
  else
    machine_.receive(bytes);
}

void Link::flush() {
  if (conn_ && machine_.has_output()) conn_->write(machine_.take_output());
}

void Link::arm(smtp::Stage stage) {
  if (timer_) timer_->start(stage_timeout(t_, stage));
}

void Link::stop_timer() {
  if (timer_) timer_->stop();
}

void Link::pump() {
  while (!closing_ && !failed_) {
    switch (machine_.next()) {
      case smtp::ClientEvent::NeedInput:
        flush();
        arm(machine_.stage());
        return;
      case smtp::ClientEvent::StartTls:
        flush();
        arm(smtp::Stage::Command);
        start_tls();
        return;
      case smtp::ClientEvent::Ready:
        ready_ = true;
        stop_timer();
        hooks_.ready();
        return;
      case smtp::ClientEvent::Failed:
        return fail(machine_.failure());
      case smtp::ClientEvent::TokenRefused:
        return retry_with_new_token();
      case smtp::ClientEvent::SendContent:
      case smtp::ClientEvent::Delivered:
      case smtp::ClientEvent::Closed:
        // No transaction or QUIT is asked before ready: cannot happen.
        return fail(smtp::Failure{smtp::Failure::Temporary, "client machine out of step before ready", false, true});
    }
  }
}

void Link::retry_with_new_token() {
  if (!credentials_.refused(u_, machine_.secret())) return fail(machine_.failure());
  log::info("upstream_token_refused")
      .kv("session", log_id_)
      .kv("upstream", u_.name)
      .kv("reason", machine_.failure().reason)
      .kv("action", "one new token, one more AUTH on this connection");
  arm(smtp::Stage::Command);  // the wait for the token is bounded like a reply
  fetching_ = true;
  in_get_ = true;
  auto cancel = credentials_.get(loop_, u_, log_id_, [this](Result<std::string> token) {
    fetching_ = false;
    cancel_ = nullptr;
    if (!token) {
      smtp::Failure f = machine_.failure();
      f.reason += "; no new token: " + token.error().message();
      if (!in_get_) return fail(f);
      early_ = f;  // reported from the loop, as in start()
      timer_->start(Millis(0));
      return;
    }
    machine_.retry_auth(std::move(*token));
    if (!in_get_) pump();
  });
  in_get_ = false;
  if (fetching_)
    cancel_ = std::move(cancel);
  else if (!early_)
    pump();  // the token was there at once
}

void Link::fail(const smtp::Failure& f) {
  if (closing_ || failed_) return;
  failed_ = true;
  stop_timer();
  hooks_.failed(f);
}

void Link::close() {
  if (closing_) return;
  closing_ = true;
  timer_.reset();
  if (cancel_) std::exchange(cancel_, nullptr)();  // a secret read or a connect: abandoned, no callback
  if (!conn_) return;
  conn_->tls_close_notify();
  conn_->close_after_writes();
  linger_ = loop::Timer::create(loop_, [this] { conn_->close(); });
  linger_->start(kLinger);
}

}  // namespace spoolgate::upstream
