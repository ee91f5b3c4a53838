// SPDX-License-Identifier: MIT
#include "app/probe.h"

#include <ostream>
#include <utility>

#include "app/upstreams.h"
#include "core/clock.h"
#include "loop/loop.h"
#include "net/connector.h"
#include "smtp/client.h"

namespace spoolgate::app {
namespace {

class Probe {
 public:
  Probe(loop::Loop& loop, const upstream::Upstream& u, const upstream::Settings& s, bool auth, std::ostream& out)
      : loop_(loop), u_(u), out_(out), machine_(settings(u, s, auth)), timeout_(s.timeouts.connect) {}

  void start() {
    timer_ = loop::Timer::create(loop_, [this] { finish("timed out waiting for the server", false); });
    timer_->start(timeout_);
    cancel_connect_ =
        net::connect(loop_, u_.host, u_.port, timeout_, [this](Result<std::unique_ptr<net::Connection>> r) {
          cancel_connect_ = nullptr;
          if (!r) return finish("connect: " + r.error().message(), false);
          conn_ = std::move(*r);
          out_ << "connected: " << conn_->peer() << " port " << u_.port << "\n";
          conn_->on_read([this](std::string_view b, bool eof) {
            if (eof)
              machine_.connection_lost("closed by the server");
            else
              machine_.receive(b);
            pump();
          });
          conn_->on_closed([this] { conn_.reset(); });
          if (u_.tls == smtp::TlsMode::Implicit)
            start_tls();
          else
            conn_->start_reading();
        });
  }

  int result() const { return ok_ ? 0 : 1; }

 private:
  static smtp::ClientSettings settings(const upstream::Upstream& u, const upstream::Settings& s, bool auth) {
    smtp::ClientSettings c;
    c.helo = s.helo;
    c.tls = u.tls;
    c.auth = u.auth;
    if (auth) {
      c.username = u.username;
      c.secret = u.secret;
    }
    return c;
  }

  void start_tls() {
    auto s = tls::Session::client(u_.tls_ctx, u_.host);
    if (!s) return finish("TLS: " + s.error().message(), false);
    tls_ = s->get();
    conn_->start_tls(std::move(*s), [this](const Result<void>& r) {
      report_tls(r);
      if (!r) return finish("TLS handshake failed", false);
      if (u_.tls == smtp::TlsMode::StartTls) {
        machine_.tls_established();
        pump();
      }
    });
  }

  void report_tls(const Result<void>& r) {
    std::int64_t now = unix_now();
    auto chain = tls_->chain();
    if (r) out_ << "tls: " << tls_->version() << " " << tls_->cipher() << "\n";
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
      out_ << "verification: ok (host " << u_.host << " matches, chain trusted)\n";
    else
      out_ << "verification: FAILED: " << (tls_->verify_error().empty() ? r.error().message() : tls_->verify_error())
           << "\n";
  }

  void pump() {
    while (!done_) {
      switch (machine_.next()) {
        case smtp::ClientEvent::NeedInput:
          if (conn_ && machine_.has_output()) conn_->write(machine_.take_output());
          return;
        case smtp::ClientEvent::StartTls:
          if (conn_ && machine_.has_output()) conn_->write(machine_.take_output());
          out_ << "starttls: offered and accepted\n";
          start_tls();
          return;
        case smtp::ClientEvent::Ready: {
          const auto& caps = machine_.capabilities();
          out_ << "ehlo" << (machine_.tls_active() ? " (after TLS):" : " (no TLS):");
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
          if (machine_.authenticated()) out_ << "auth: ok as " << u_.username << "\n";
          machine_.quit();
          if (conn_) conn_->write(machine_.take_output());
          ok_ = true;
          continue;
        }
        case smtp::ClientEvent::Failed: {
          const auto& f = machine_.failure();
          if (f.kind == smtp::Failure::Auth) out_ << "auth: FAILED: " << f.reason << "\n";
          return finish(f.reason, false);
        }
        case smtp::ClientEvent::Closed:
          return finish("", ok_);
        default:
          return finish("unexpected state", false);
      }
    }
  }

  void finish(const std::string& why, bool ok) {
    if (done_) return;
    done_ = true;
    ok_ = ok;
    out_ << "result: " << (ok ? "ok" : "FAILED" + (why.empty() ? std::string() : ": " + why)) << "\n";
    timer_.reset();
    if (cancel_connect_) std::exchange(cancel_connect_, nullptr)();
    if (conn_) {
      conn_->tls_close_notify();
      conn_->close_after_writes();
    }
  }

  loop::Loop& loop_;
  const upstream::Upstream& u_;
  std::ostream& out_;
  smtp::Client machine_;
  Millis timeout_;
  net::CancelConnect cancel_connect_;
  std::unique_ptr<net::Connection> conn_;
  tls::Session* tls_ = nullptr;
  loop::HandlePtr<loop::Timer> timer_;
  bool done_ = false;
  bool ok_ = false;
};

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
  loop::Loop loop;
  int rc;
  {
    Probe p(loop, u, *s, auth, out);
    p.start();
    loop.run();
    rc = p.result();
  }
  if (loop.close() != 0) rc = 70;
  return rc;
}

}  // namespace spoolgate::app
