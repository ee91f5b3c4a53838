// SPDX-License-Identifier: MIT
#include "app/oauth_signin.h"

#include <memory>

#include "app/request_server.h"
#include "app/tokens.h"
#include "core/clock.h"
#include "core/text.h"
#include "fetch/client.h"
#include "loop/loop.h"
#include "oauth/assertion.h"
#include "oauth/manager.h"
#include "tls/sign.h"

namespace spoolgate::app {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

constexpr std::int64_t kBrowserWaitSeconds = 600;

// What a peer sent, fit for a terminal line: bounded, no control bytes.
std::string printable(const std::string& s) {
  if (has_control(s)) return "(unprintable)";
  return s.size() > 200 ? s.substr(0, 200) + "..." : s;
}

std::string refused(const oauth::Problem& p) {
  return printable(p.error) + (p.description.empty() ? "" : ": " + printable(p.description));
}

// One sign-in on its own loop: the parts both flows share (the token
// endpoint through the helper, a timer, the outcome).
class SignIn {
 public:
  SignIn(loop::Loop& loop, const config::Upstream& u, std::ostream& out)
      : loop_(loop),
        u_(u),
        out_(out),
        client_(oauth_client(u)),
        fetch_(loop, loop::Process::sibling("spoolgate-https")) {
    timer_ = loop::Timer::create(loop_, [this] { on_timer(); });
  }

  std::optional<oauth::Token> run(SignInFlow flow, std::uint16_t port) {
    auto auth = client_.client_auth();
    if (!auth) {
      out_ << "oauth login: " << auth.error().message() << "\n";
      return std::nullopt;
    }
    auth_ = *auth;
    if (flow == SignInFlow::DeviceCode ? start_device() : start_browser(port)) loop_.run();
    fetch_.close();
    timer_.reset();
    server_.reset();
    if (!ok_) return std::nullopt;
    return token_;
  }

 private:
  const config::OAuth& o() const { return u_.oauth; }

  // To the token endpoint with the client's credentials (with_auth), or to
  // the device authorization endpoint without.
  http::Request request(const std::string& url, Fields form, bool with_auth = true) {
    http::Request r;
    r.url = url;
    r.headers = {"Accept: application/json"};
    r.ca_file = o().ca_file;
    r.form = std::move(form);
    if (with_auth)
      for (const auto& x : auth_) r.form.push_back(x);
    return r;
  }

  // The end, either way: the loop stops once the browser (if any) has its
  // answer.
  void finish(bool ok, const std::string& why = {}) {
    if (done_) return;
    done_ = true;
    ok_ = ok;
    if (!why.empty()) out_ << "oauth login: " << why << "\n";
    timer_->stop();
    if (server_)
      server_->close_when_idle([this] { loop_.stop(); });
    else
      loop_.stop();
  }

  // The token answer for either grant; true when it is a sign-in.
  bool take_token(const http::Response& a, std::string* why) {
    auto t = oauth::parse_token_answer(a.status, a.body);
    if (auto* p = std::get_if<oauth::Problem>(&t)) {
      *why = "the token endpoint refused the sign-in: " + refused(*p);
      return false;
    }
    token_ = std::get<oauth::Token>(t);
    if (token_.refresh.empty()) {
      *why = o().provider == config::OAuthProvider::Google
                 ? "the endpoint gave no refresh token (Google gives one with access_type=offline and consent)"
                 : "the endpoint gave no refresh token (for Microsoft, the scope needs offline_access)";
      return false;
    }
    return true;
  }

  void on_timer() {
    if (browser_)
      return finish(false, "no sign-in in the browser within " + std::to_string(kBrowserWaitSeconds / 60) +
                               " minutes; run it again");
    poll();
  }

  // --- device code (RFC 8628) ---

  bool start_device() {
    fetch_.send(request(o().device_authorization_url, {{"client_id", o().client_id}, {"scope", o().scope}}, false),
                [this](Result<http::Response> a) { on_device(std::move(a)); });
    return true;
  }

  void on_device(Result<http::Response> a) {
    if (!a) return finish(false, a.error().message());
    auto d = oauth::parse_device_answer(a->status, a->body);
    if (auto* p = std::get_if<oauth::Problem>(&d))
      return finish(false, "the device authorization endpoint refused: " + refused(*p));
    code_ = std::get<oauth::DeviceCode>(d);
    out_ << (code_.message.empty()
                 ? "To sign in, open " + code_.verification_uri + " and enter the code " + code_.user_code
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
    if (unix_now_ms() > deadline_) return finish(false, "the code expired before the sign-in; run it again");
    fetch_.send(request(o().token_url, {{"grant_type", "urn:ietf:params:oauth:grant-type:device_code"},
                                        {"device_code", code_.device_code},
                                        {"client_id", o().client_id}}),
                [this](Result<http::Response> a) { on_device_token(std::move(a)); });
  }

  void on_device_token(Result<http::Response> a) {
    if (!a) {  // the endpoint unreachable for a moment: poll on until the code expires
      out_ << "oauth login: " << a.error().message() << "; still waiting\n";
      timer_->start(Millis(interval_ * 1000));
      return;
    }
    auto t = oauth::parse_token_answer(a->status, a->body);
    if (auto* p = std::get_if<oauth::Problem>(&t);
        p && (p->kind == oauth::Problem::Kind::Pending || p->kind == oauth::Problem::Kind::SlowDown)) {
      if (p->kind == oauth::Problem::Kind::SlowDown) interval_ += 5;  // RFC 8628 3.5
      timer_->start(Millis(interval_ * 1000));
      return;
    }
    std::string why;
    bool ok = take_token(*a, &why);
    finish(ok, why);
  }

  // --- authorization code with PKCE and a loopback redirect ---

  bool start_browser(std::uint16_t port) {
    browser_ = true;
    verifier_ = tls::random_hex(32);  // 64 unreserved characters (RFC 7636 4.1: 43 to 128)
    state_ = tls::random_hex(16);
    RequestServer::Options opt;
    opt.spec.host = "127.0.0.1";
    opt.spec.port = port;
    opt.terminator = "\r\n\r\n";
    opt.max_request = std::size_t{16} * 1024;
    opt.max_clients = 16;
    opt.timeout = Millis(120'000);
    opt.allow = {*Cidr::parse("127.0.0.0/8")};
    server_ = std::make_unique<RequestServer>(
        loop_, opt, [this](const std::string& head, RequestServer::Respond r) { on_browser(head, std::move(r)); });
    if (auto s = server_->start(); !s) {
      out_ << "oauth login: cannot listen for the browser: " << s.error().message() << "\n";
      return false;
    }
    std::string addr = server_->address();
    redirect_uri_ = "http://" + addr;
    std::string url = o().authorization_url + (o().authorization_url.find('?') == std::string::npos ? "?" : "&");
    Fields q = {{"response_type", "code"},
                {"client_id", o().client_id},
                {"redirect_uri", redirect_uri_},
                {"scope", o().scope},
                {"state", state_},
                {"code_challenge", oauth::base64url(tls::sha256(verifier_))},
                {"code_challenge_method", "S256"}};
    if (o().provider == config::OAuthProvider::Google) {
      // A refresh token, and a new one on a second sign-in too.
      q.emplace_back("access_type", "offline");
      q.emplace_back("prompt", "consent");
    }
    for (std::size_t i = 0; i < q.size(); ++i) url += (i ? "&" : "") + q[i].first + "=" + percent_encode(q[i].second);
    std::string port_s = addr.substr(addr.rfind(':') + 1);
    out_ << "To sign in, open this URL in a browser on this machine:\n"
         << "url: " << url << "\n"
         << "waiting for the browser at " << redirect_uri_ << " (up to " << kBrowserWaitSeconds / 60 << " minutes)...\n"
         << "(a browser on another machine: forward the port first, ssh -L " << port_s << ":127.0.0.1:" << port_s
         << " this-host, or pick one with --port)" << std::endl;
    timer_->start(Millis(kBrowserWaitSeconds * 1000));
    return true;
  }

  void on_browser(const std::string& head, RequestServer::Respond respond) {
    auto page = [&respond](const char* status, const std::string& text) {
      respond(http_response(status, "text/plain; charset=utf-8", "spoolgate: " + text + "\n"));
    };
    auto line = request_line(head);
    if (!line) return page("400 Bad Request", "bad request");
    if (line->method != "GET") return page("405 Method Not Allowed", "GET only");
    if (line->target.substr(0, line->target.find('?')) != "/") return page("404 Not Found", "not found");
    if (done_ || exchanging_) return page("409 Conflict", "this sign-in is already being completed");
    // The state ties the answer to the URL printed here (RFC 6749 10.12):
    // any other request is some other page's, refused.
    if (query_param(line->target, "state") != state_) {
      out_ << "oauth login: refused an answer that is not for this sign-in (state does not match); still waiting"
           << std::endl;
      return page("400 Bad Request", "this answer is not for the sign-in that is waiting; open the URL it printed");
    }
    if (auto error = query_param(line->target, "error")) {
      oauth::Problem p;
      p.error = *error;
      p.description = query_param(line->target, "error_description").value_or("");
      page("403 Forbidden", "the sign-in was refused: " + refused(p));
      return finish(false, "the authorization server refused the sign-in: " + refused(p));
    }
    auto code = query_param(line->target, "code");
    if (!code || code->empty()) return page("400 Bad Request", "the answer holds no code");
    exchanging_ = true;
    fetch_.send(request(o().token_url, {{"grant_type", "authorization_code"},
                                        {"code", *code},
                                        {"redirect_uri", redirect_uri_},
                                        {"client_id", o().client_id},
                                        {"code_verifier", verifier_}}),
                [this, respond = std::move(respond)](Result<http::Response> a) {
                  std::string why;
                  bool ok = a ? take_token(*a, &why) : (why = a.error().message(), false);
                  respond(http_response(ok ? "200 OK" : "502 Bad Gateway", "text/plain; charset=utf-8",
                                        ok ? "spoolgate: signed in; you can close this tab.\n"
                                           : "spoolgate: the sign-in failed: " + why + "\n"));
                  finish(ok, why);
                });
  }

  loop::Loop& loop_;
  const config::Upstream& u_;
  std::ostream& out_;
  oauth::ClientConfig client_;
  fetch::Client fetch_;
  loop::HandlePtr<loop::Timer> timer_;
  std::unique_ptr<RequestServer> server_;
  Fields auth_;
  oauth::Token token_;
  bool done_ = false;
  bool ok_ = false;
  // device code
  oauth::DeviceCode code_;
  std::int64_t deadline_ = 0;
  std::int64_t interval_ = 5;
  // browser
  bool browser_ = false;
  bool exchanging_ = false;
  std::string verifier_;
  std::string state_;
  std::string redirect_uri_;
};

}  // namespace

SignInFlow sign_in_flow(const config::OAuth& o, bool browser_asked) {
  if (browser_asked || o.provider == config::OAuthProvider::Google || o.device_authorization_url.empty())
    return SignInFlow::Browser;
  return SignInFlow::DeviceCode;
}

std::optional<oauth::Token> sign_in(const config::Upstream& u, SignInFlow flow, std::uint16_t port, std::ostream& out) {
  std::optional<oauth::Token> token;
  loop::Loop loop;
  {
    SignIn s(loop, u, out);
    token = s.run(flow, port);
  }
  // Every handle closed and the loop with them, on either path (the
  // sanitizer build checks that nothing is left).
  if (loop.close() != 0) out << "oauth login: a loop handle was left open (a bug; the sign-in is kept)\n";
  return token;
}

}  // namespace spoolgate::app
