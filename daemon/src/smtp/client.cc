// SPDX-License-Identifier: MIT
#include "smtp/client.h"

#include "core/base64.h"
#include "core/text.h"

namespace spoolgate::smtp {
namespace {

Reply synthetic(int code, std::string text) { return Reply{code, {std::move(text)}}; }

std::string printable(std::string_view s, size_t max) {
  std::string out;
  for (char c : s.substr(0, max)) out += (c >= 32 && c < 127) ? c : '?';
  return out;
}

}  // namespace

Client::Client(ClientSettings s) : s_(std::move(s)), tls_active_(s_.tls == TlsMode::Implicit) {}

void Client::send(std::string_view line) {
  out_.append(line);
  out_ += "\r\n";
}

std::string Client::take_output() {
  std::string o;
  o.swap(out_);
  return o;
}

void Client::receive(std::string_view bytes) {
  if (state_ == State::Failed || state_ == State::Done) return;
  auto r = parser_.feed(bytes);
  if (!r) {
    pending_ = fail(Failure::Temporary, "protocol error: " + r.error().detail);
    pending_event_ = true;
  }
}

void Client::connection_lost(std::string_view why) {
  if (state_ == State::Failed || state_ == State::Done) return;
  if (state_ == State::Quit) {
    state_ = State::Done;
    pending_ = ClientEvent::Closed;
  } else {
    pending_ = fail(Failure::Temporary, "connection lost: " + std::string(why), true, Errc::Closed);
  }
  pending_event_ = true;
}

ClientEvent Client::fail(Failure::Kind kind, std::string reason, bool site, Errc code) {
  state_ = State::Failed;
  failure_ = Failure{kind, std::move(reason), in_job_, site, code};
  return ClientEvent::Failed;
}

namespace {

enum class LoginPrompt { Invalid, Username, Password, Other };

// What an AUTH LOGIN challenge asks for ("VXNlcm5hbWU6" is "Username:").
// An empty challenge or an unknown text is Other (some servers send those).
LoginPrompt login_prompt(std::string_view challenge) {
  auto text = base64_decode(challenge);
  if (!text) return LoginPrompt::Invalid;
  std::string t = lower(*text);
  if (t.find("pass") != std::string::npos) return LoginPrompt::Password;
  if (t.find("user") != std::string::npos || t.find("login") != std::string::npos) return LoginPrompt::Username;
  return LoginPrompt::Other;
}

// RFC 5801 4: in a GS2 authzid, ',' is =2C and '=' is =3D.
std::string saslname(std::string_view user) {
  std::string out;
  for (char c : user) {
    if (c == ',')
      out += "=2C";
    else if (c == '=')
      out += "=3D";
    else
      out += c;
  }
  return out;
}

}  // namespace

ClientEvent Client::next() {
  if (pending_event_) {
    pending_event_ = false;
    return pending_;
  }
  if (state_ == State::Failed) return ClientEvent::Failed;
  if (state_ == State::Done) return ClientEvent::Closed;
  while (auto r = parser_.next()) {
    ClientEvent e = handle(*r);
    if (e != ClientEvent::NeedInput) return e;
  }
  return ClientEvent::NeedInput;
}

Stage Client::stage() const {
  switch (state_) {
    case State::Greeting:
      return Stage::Greeting;
    case State::Mail:
      if (expect_.empty()) return Stage::Mail;
      return expect_.front() == Expect::Mail   ? Stage::Mail
             : expect_.front() == Expect::Rcpt ? Stage::Rcpt
                                               : Stage::DataInit;
    case State::Content:
      return Stage::DataBlock;
    case State::DataEnd:
      return Stage::DataEnd;
    case State::Quit:
      return Stage::Quit;
    default:
      return Stage::Command;
  }
}

ClientEvent Client::handle(const Reply& r) {
  if (r.code == 421 && state_ != State::Quit)  // RFC 5321 3.8: the server is closing
    return fail(Failure::Temporary, "server closing the connection: " + r.summary());
  switch (state_) {
    case State::Greeting:
      if (r.code != 220) return fail(Failure::Temporary, "greeting refused: " + r.summary());
      send("EHLO " + s_.helo);
      state_ = State::Ehlo;
      return ClientEvent::NeedInput;
    case State::Ehlo:
      if (r.code == 250) {
        caps_ = Capabilities::parse(r);
        return after_ehlo();
      }
      if (s_.tls == TlsMode::None && r.permanent()) {
        send("HELO " + s_.helo);
        state_ = State::Helo;
        return ClientEvent::NeedInput;
      }
      return fail(Failure::Temporary, "EHLO refused: " + r.summary());
    case State::Helo:
      if (r.code != 250) return fail(Failure::Temporary, "HELO refused: " + r.summary());
      caps_ = Capabilities{};
      return start_auth();
    case State::StartTls:
      if (r.code != 220) return fail(Failure::Temporary, "STARTTLS refused: " + r.summary());
      // RFC 3207 5: anything the server sent after its 220 was not protected
      // by TLS and must not be believed (response injection).
      if (parser_.buffered() > 0 || parser_.has_reply())
        return fail(Failure::Temporary, "response injection: the server sent data after the STARTTLS 220");
      state_ = State::TlsWait;
      return ClientEvent::StartTls;
    case State::Auth: {
      if (r.code == 235) {
        authenticated_ = true;
        state_ = State::Ready;
        return ClientEvent::Ready;
      }
      if (r.code == 334) {
        if (mech_ == AuthMech::Login && auth_step_ <= 1) {
          // RFC 4954 4: the challenge is base64. Username first, then the
          // password: a prompt that is not base64, or that asks for the
          // other one, is not answered with a secret.
          LoginPrompt p = login_prompt(r.lines.empty() ? "" : r.lines[0]);
          bool ok = p != LoginPrompt::Invalid &&
                    (auth_step_ == 0 ? p != LoginPrompt::Password : p != LoginPrompt::Username);
          if (!ok) {
            auth_detail_ = "unexpected AUTH LOGIN challenge '" + printable(r.lines.empty() ? "" : r.lines[0], 80) +
                            "'; exchange cancelled, no secret sent";
            send("*");
            auth_step_ = 9;
          } else {
            send(base64_encode(auth_step_ == 0 ? s_.username : s_.secret));
            auth_step_ = auth_step_ == 0 ? 1 : 2;
          }
        } else if ((mech_ == AuthMech::XOAuth2 || mech_ == AuthMech::OAuthBearer) && auth_step_ == 1) {
          // The challenge is a base64 JSON error (XOAUTH2: Google's
          // documentation; OAUTHBEARER: RFC 7628 3.2.2). The answer that
          // makes the server send its final reply: an empty line for
          // XOAUTH2, a single %x01 for OAUTHBEARER.
          std::string detail;
          if (auto d = base64_decode(r.lines.empty() ? "" : r.lines[0])) detail = printable(*d, 200);
          auth_detail_ = detail;
          token_invalid_ = detail.find("\"401\"") != std::string::npos ||
                           detail.find("invalid_token") != std::string::npos;
          send(mech_ == AuthMech::XOAuth2 ? std::string() : base64_encode("\x01"));
          auth_step_ = 2;
        } else if (mech_ == AuthMech::Plain && auth_step_ == 1) {
          send(base64_encode(std::string("\0", 1) + s_.username + std::string("\0", 1) + s_.secret));
          auth_step_ = 2;
        } else {
          send("*");  // RFC 4954 4: cancel an exchange we do not understand
          auth_step_ = 9;
        }
        return ClientEvent::NeedInput;
      }
      std::string why = r.summary() + (auth_detail_.empty() ? "" : " (" + auth_detail_ + ")");
      if (r.temporary()) return fail(Failure::Temporary, "authentication deferred: " + why);
      bool bearer = mech_ == AuthMech::XOAuth2 || mech_ == AuthMech::OAuthBearer;
      if (bearer && !token_retried_ && (r.code == 535 || token_invalid_)) {
        fail(Failure::Auth, "authentication failed: " + why);
        state_ = State::AuthRefused;
        token_retried_ = true;
        return ClientEvent::TokenRefused;
      }
      return fail(Failure::Auth, "authentication failed: " + why);
    }
    case State::AuthRefused:
      return fail(Failure::Temporary, "unexpected reply while getting a new token: " + r.summary());
    case State::Rset:
      if (!r.positive()) return fail(Failure::Temporary, "RSET refused: " + r.summary());
      need_rset_ = false;
      send_transaction();
      return ClientEvent::NeedInput;
    case State::Mail: {
      if (expect_.empty()) return fail(Failure::Temporary, "unexpected reply: " + r.summary());
      Expect what = expect_.front();
      expect_.erase(expect_.begin());
      if (what == Expect::Rset) {
        if (!r.positive()) return fail(Failure::Temporary, "RSET refused: " + r.summary());
        return ClientEvent::NeedInput;
      }
      if (what == Expect::Mail) {
        mail_ok_ = r.positive();
        mail_reply_ = r;
        if (!caps_.pipelining) {
          if (!mail_ok_) return finish_transaction(nullptr);
          send("RCPT TO:<" + job_.recipients[0] + ">");
          expect_.push_back(Expect::Rcpt);
        }
        return ClientEvent::NeedInput;
      }
      if (what == Expect::Rcpt) {
        outcome_.recipients[rcpt_replies_++] = r;
        if (!caps_.pipelining) {
          if (rcpt_replies_ < job_.recipients.size()) {
            send("RCPT TO:<" + job_.recipients[rcpt_replies_] + ">");
            expect_.push_back(Expect::Rcpt);
          } else if (any_accepted()) {
            send("DATA");
            expect_.push_back(Expect::Data);
          } else {
            return finish_transaction(nullptr);
          }
        }
        return ClientEvent::NeedInput;
      }
      // DATA reply.
      if (r.code == 354) {
        if (!mail_ok_ || !any_accepted()) {
          // RFC 2920 3.1: a 354 after the recipients all failed gets an
          // immediate end of data; the reply to it is read and ignored.
          send(".");
          discard_final_ = true;
          state_ = State::DataEnd;
          return ClientEvent::NeedInput;
        }
        state_ = State::Content;
        return ClientEvent::SendContent;
      }
      return finish_transaction(&r);
    }
    case State::DataEnd:
      if (discard_final_) return finish_transaction(nullptr);
      outcome_.content_sent = true;
      return finish_transaction(&r);
    case State::Quit:
      state_ = State::Done;
      return ClientEvent::Closed;
    default:
      return fail(Failure::Temporary, "unexpected reply: " + r.summary());
  }
}

bool Client::any_accepted() const {
  for (size_t i = 0; i < rcpt_replies_; ++i)
    if (outcome_.recipients[i].positive()) return true;
  return false;
}

ClientEvent Client::after_ehlo() {
  if (s_.tls == TlsMode::StartTls && !tls_active_) {
    // RFC 3207: required, never optional; no fallback to plaintext.
    if (!caps_.starttls) return fail(Failure::Temporary, "STARTTLS is required but the server does not offer it");
    send("STARTTLS");
    state_ = State::StartTls;
    return ClientEvent::NeedInput;
  }
  return start_auth();
}

void Client::tls_established() {
  if (state_ != State::TlsWait) return;
  tls_active_ = true;
  caps_ = Capabilities{};  // RFC 3207 4.2: forget everything learned before TLS
  parser_.clear();
  send("EHLO " + s_.helo);
  state_ = State::Ehlo;
}

ClientEvent Client::start_auth() {
  if (s_.username.empty()) {
    state_ = State::Ready;
    return ClientEvent::Ready;
  }
  if (!tls_active_) return fail(Failure::Auth, "refusing to send credentials without TLS");
  auto no_mechanism = [this](const char* what) {
    std::string offered;
    for (const auto& a : caps_.auth) offered += (offered.empty() ? "" : " ") + a;
    return fail(Failure::Auth, std::string("the server offers no AUTH mechanism ") + what + " (offered: " +
                                   (offered.empty() ? std::string("none") : offered) + ")");
  };
  mech_ = s_.auth;
  if (mech_ == AuthMech::Auto && s_.bearer) {
    if (caps_.has_auth("OAUTHBEARER"))
      mech_ = AuthMech::OAuthBearer;
    else if (caps_.has_auth("XOAUTH2"))
      mech_ = AuthMech::XOAuth2;
    else
      return no_mechanism("for an OAuth2 token");
  }
  if (mech_ == AuthMech::Auto) {
    if (caps_.has_auth("PLAIN"))
      mech_ = AuthMech::Plain;
    else if (caps_.has_auth("LOGIN"))
      mech_ = AuthMech::Login;
    else
      return no_mechanism("we use with a password");
  }
  auth_detail_.clear();
  switch (mech_) {
    case AuthMech::Plain:
      // RFC 4616: authzid NUL authcid NUL passwd, as an initial response.
      send("AUTH PLAIN " + base64_encode(std::string("\0", 1) + s_.username + std::string("\0", 1) + s_.secret));
      auth_step_ = 2;
      break;
    case AuthMech::Login:
      send("AUTH LOGIN");
      auth_step_ = 0;
      break;
    case AuthMech::XOAuth2:
      send("AUTH XOAUTH2 " + base64_encode("user=" + s_.username +
                                           "\x01"
                                           "auth=Bearer " +
                                           s_.secret + "\x01\x01"));
      auth_step_ = 1;
      break;
    case AuthMech::OAuthBearer:
      // RFC 7628 3.1: a GS2 header naming the user (saslname: ',' and '='
      // escaped), then key=value pairs ended by %x01, the last one empty.
      send("AUTH OAUTHBEARER " + base64_encode("n,a=" + saslname(s_.username) + ",\x01"
                                               "auth=Bearer " + s_.secret +
                                               "\x01\x01"));
      auth_step_ = 1;
      break;
    case AuthMech::Auto:
      break;
  }
  token_invalid_ = false;
  state_ = State::Auth;
  return ClientEvent::NeedInput;
}

void Client::retry_auth(std::string token) {
  if (state_ != State::AuthRefused) return;
  s_.secret = std::move(token);
  failure_ = Failure{};
  pending_ = start_auth();
  pending_event_ = true;
}

void Client::begin(const Job& job) {
  if (state_ != State::Ready) return;
  job_ = job;
  outcome_ = Outcome{};
  outcome_.recipients.assign(job_.recipients.size(), Reply{});
  in_job_ = true;
  auto refuse_all = [&](const Reply& r, std::string note) {
    for (auto& o : outcome_.recipients) o = r;
    outcome_.note = std::move(note);
    in_job_ = false;
    pending_ = ClientEvent::Delivered;
    pending_event_ = true;
  };
  if (caps_.size && caps_.max_size > 0 && job_.size > caps_.max_size) {
    std::string why = "message size " + std::to_string(job_.size) + " exceeds the server's limit of " +
                      std::to_string(caps_.max_size) + " bytes";
    return refuse_all(synthetic(552, "5.3.4 " + why + " (not sent)"), why);
  }
  if (job_.smtputf8 && !caps_.smtputf8) {
    std::string why = "message needs SMTPUTF8, which the server does not offer";
    return refuse_all(synthetic(553, "5.6.7 " + why + " (not sent)"), why);
  }
  if (need_rset_ && !caps_.pipelining) {
    send("RSET");
    state_ = State::Rset;
    return;
  }
  send_transaction();
}

void Client::send_transaction() {
  std::string mail = "MAIL FROM:<" + job_.sender + ">";
  if (caps_.size) mail += " SIZE=" + std::to_string(job_.size);
  if (job_.body_8bit && caps_.eight_bit_mime) mail += " BODY=8BITMIME";
  if (job_.smtputf8) mail += " SMTPUTF8";
  expect_.clear();
  rcpt_replies_ = 0;
  mail_ok_ = false;
  discard_final_ = false;
  if (need_rset_) {
    // RFC 2920 3.1: RSET may lead a pipelined group; one round trip fewer
    // per message on a reused connection.
    send("RSET");
    expect_.push_back(Expect::Rset);
    need_rset_ = false;
  }
  send(mail);
  expect_.push_back(Expect::Mail);
  if (caps_.pipelining) {
    // RFC 2920: MAIL, every RCPT and DATA in one group; DATA is last.
    for (const auto& r : job_.recipients) {
      send("RCPT TO:<" + r + ">");
      expect_.push_back(Expect::Rcpt);
    }
    send("DATA");
    expect_.push_back(Expect::Data);
  }
  state_ = State::Mail;
}

void Client::content_sent() {
  if (state_ == State::Content) state_ = State::DataEnd;
}

ClientEvent Client::finish_transaction(const Reply* data_reply) {
  for (size_t i = 0; i < outcome_.recipients.size(); ++i) {
    Reply& o = outcome_.recipients[i];
    if (!mail_ok_)
      o = mail_reply_;
    else if (o.code == 0)
      o = synthetic(451, "4.5.0 no reply to RCPT");
    else if (o.positive())
      o = data_reply ? *data_reply : synthetic(451, "4.5.0 message not sent");
  }
  in_job_ = false;
  need_rset_ = true;
  expect_.clear();
  state_ = State::Ready;
  return ClientEvent::Delivered;
}

void Client::quit() {
  if (state_ == State::Failed || state_ == State::Done || state_ == State::Quit) return;
  send("QUIT");
  state_ = State::Quit;
}

}  // namespace spoolgate::smtp
