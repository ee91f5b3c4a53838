// SPDX-License-Identifier: MIT
// smtp/client: the outbound SMTP state machine, without I/O (RFC 5321, 3207,
// 4954, 2920, 1870, 6152, 6531).
//
// The driver (upstream/session) feeds the server's bytes with receive() and
// calls next() until NeedInput. Commands accumulate in an output buffer
// (take_output). The machine:
//   - reads the greeting, sends EHLO (HELO only on a plaintext test upstream);
//   - with StartTls: requires STARTTLS in the EHLO reply, sends it, and on 220
//     aborts if any byte followed the 220 (response injection); otherwise it
//     asks the driver for the handshake (StartTls event). After
//     tls_established() every pre-TLS fact is forgotten and EHLO is sent again;
//   - authenticates (PLAIN, LOGIN, XOAUTH2, OAUTHBEARER) only when TLS is
//     up: credentials never leave over a plaintext connection, whatever the
//     configuration. With an OAuth2 token (ClientSettings::bearer), Auto
//     takes OAUTHBEARER (RFC 7628) or XOAUTH2, whichever the server offers
//     after TLS. When the server refuses a token (535, or an error
//     challenge with status 401 / invalid_token), TokenRefused lets the
//     driver get a fresh one and retry_auth() once on the same connection;
//   - runs transactions: begin(job) sends MAIL/RCPT/DATA (one group with
//     PIPELINING, every reply counted), asks the driver to stream the content
//     (SendContent) and reports each recipient's deciding reply (Delivered);
//   - quit() sends QUIT. A 421 anywhere, a malformed reply or a refused
//     STARTTLS ends the session (Failed).
// It never decides about retries: it reports replies; the caller classifies.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/reply.h"

namespace spoolgate::smtp {

enum class TlsMode { Implicit, StartTls, None };
enum class AuthMech { Auto, Plain, Login, XOAuth2, OAuthBearer };

struct ClientSettings {
  std::string helo = "localhost";
  TlsMode tls = TlsMode::Implicit;
  AuthMech auth = AuthMech::Auto;
  std::string username;  // empty: no AUTH
  std::string secret;    // password, or the OAuth2 token for XOAUTH2 / OAUTHBEARER
  bool bearer = false;   // secret is an OAuth2 access token: Auto picks OAUTHBEARER or XOAUTH2
};

struct Job {
  std::string sender;  // without brackets, "" for <>
  std::vector<std::string> recipients;
  std::uint64_t size = 0;
  bool smtputf8 = false;
  bool body_8bit = false;
};

enum class ClientEvent {
  NeedInput,
  StartTls,     // do the TLS handshake now, then call tls_established()
  Ready,        // idle in a session: begin() or quit()
  SendContent,  // stream the canonical content, then ".\r\n", then content_sent()
  Delivered,    // outcome() holds the transaction's results
  Failed,       // failure() says why; the session is over
  // The server refused the OAuth2 token (once per connection): failure()
  // says how. retry_auth() with a new token tries again on this
  // connection; otherwise treat it as Failed.
  TokenRefused,
  Closed,       // QUIT answered
};

enum class Stage { Greeting, Command, Mail, Rcpt, DataInit, DataBlock, DataEnd, Quit };

struct Failure {
  enum Kind { Temporary, Permanent, Auth } kind = Temporary;
  std::string reason;
  bool during_job = false;  // a begin()'d job did not complete
  bool site = true;         // about the server, not the message
  // What failed: Timeout (a stage timer), TlsVerify (the certificate),
  // Closed (the connection was lost), Protocol (a reply or the dialogue),
  // or the connect's own code. Decisions use this, never the reason text.
  Errc code = Errc::Protocol;
};

struct Outcome {
  std::vector<Reply> recipients;  // the deciding reply per job recipient
  bool content_sent = false;      // the final dot went out (a duplicate is possible)
  std::string note;               // for a refusal we made ourselves (size, SMTPUTF8)
};

class Client {
 public:
  explicit Client(ClientSettings s);
  // Before the session starts: the secret read afresh (a refreshed token).
  void set_secret(std::string secret) { s_.secret = std::move(secret); }
  const std::string& secret() const { return s_.secret; }
  // After TokenRefused: AUTH again with `token`.
  void retry_auth(std::string token);

  void receive(std::string_view bytes);
  ClientEvent next();
  std::string take_output();
  bool has_output() const { return !out_.empty(); }

  void tls_established();
  void begin(const Job& job);
  void content_sent();
  void quit();
  // The connection ended: a Failed event follows unless the session was done.
  void connection_lost(std::string_view why);

  const Outcome& outcome() const { return outcome_; }
  const Failure& failure() const { return failure_; }
  const Capabilities& capabilities() const { return caps_; }
  bool tls_active() const { return tls_active_; }
  Stage stage() const;
  bool authenticated() const { return authenticated_; }

 private:
  enum class State {
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    TlsWait,
    Auth,
    AuthRefused,  // TokenRefused reported; waiting for retry_auth()
    Ready,
    Rset,
    Mail,
    Rcpt,
    Data,
    Content,
    DataEnd,
    Quit,
    Done,
    Failed
  };
  enum class Expect { Rset, Mail, Rcpt, Data };

  void send(std::string_view line);
  ClientEvent handle(const Reply& r);
  ClientEvent after_ehlo();
  ClientEvent start_auth();
  ClientEvent fail(Failure::Kind kind, std::string reason, bool site = true, Errc code = Errc::Protocol);
  void send_transaction();
  ClientEvent finish_transaction(const Reply* data_reply);
  bool any_accepted() const;

  ClientSettings s_;
  State state_ = State::Greeting;
  ReplyParser parser_;
  std::string out_;
  Capabilities caps_;
  bool tls_active_;
  bool authenticated_ = false;
  AuthMech mech_ = AuthMech::Plain;
  int auth_step_ = 0;
  bool token_retried_ = false;  // retry_auth() is offered once per connection
  bool token_invalid_ = false;  // an error challenge said the token is bad
  bool need_rset_ = false;
  bool in_job_ = false;

  Job job_;
  std::vector<Expect> expect_;
  size_t rcpt_replies_ = 0;
  bool discard_final_ = false;
  std::string auth_detail_;
  bool mail_ok_ = false;
  Reply mail_reply_;
  Outcome outcome_;
  Failure failure_;
  bool pending_event_ = false;
  ClientEvent pending_;
};

}  // namespace spoolgate::smtp
