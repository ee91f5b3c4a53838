// SPDX-License-Identifier: MIT
// smtp/server: AUTH PLAIN and LOGIN (RFC 4954, 4616), the listener side, and
// the device a session speaks for.
// The machine only reads the exchange; whether the password is right is the
// driver's question (EventType::Authenticate, then auth_result()).
#include "core/base64.h"
#include "core/text.h"
#include "smtp/server.h"

namespace spoolgate::smtp {

bool Server::auth_offered() const { return s_.auth != ServerSettings::Auth::Off && (tls_ || s_.auth_plaintext); }

namespace {

// RFC 4422 3.1: a SASL mechanism name is 1 to 20 of A-Z 0-9 - _; what a
// client sent in its place is not repeated into the log.
std::string mechanism_name(std::string_view m) {
  if (m.empty() || m.size() > 20) return "?";
  std::string out;
  for (char c : m) {
    char u = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
    if (!((u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || u == '-' || u == '_')) return "?";
    out += u;
  }
  return out;
}

}  // namespace

void Server::auth_refuse(std::string_view line) {
  if (auth_refusals_.size() < kMaxAuthRefusals) auth_refusals_.push_back({creds_.mechanism, std::string(line)});
  creds_ = Credentials{};
  error(line);
}

void Server::auth(std::string_view args) {
  args = trim(args);
  std::string_view mech = args.substr(0, args.find(' '));
  std::string_view initial = mech.size() < args.size() ? trim(args.substr(mech.size())) : std::string_view();
  creds_ = Credentials{};
  creds_.mechanism = mechanism_name(mech);
  // RFC 4954 4: what the client must not do, and 538 where TLS must come
  // first (the mechanism is not offered in plaintext here).
  if (!auth_offered()) return auth_refuse("538 5.7.11 Encryption required for requested authentication mechanism");
  if (!helo_) return auth_refuse("503 5.5.1 Error: send HELO/EHLO first");
  if (!user_.empty()) return auth_refuse("503 5.5.1 Error: already authenticated");
  if (mail_) return auth_refuse("503 5.5.1 Error: MAIL transaction in progress");
  if (creds_.mechanism != "PLAIN" && creds_.mechanism != "LOGIN")
    return auth_refuse("504 5.5.4 Unrecognized authentication type");
  auth_step_ = 1;
  mode_ = Mode::AuthResponse;
  if (!initial.empty()) return auth_response(initial == "=" ? std::string_view() : initial);
  reply(creds_.mechanism == "PLAIN" ? "334 " : "334 VXNlcm5hbWU6");  // LOGIN: "Username:"
}

void Server::auth_response(std::string_view line) {
  mode_ = Mode::Command;
  if (line == "*") return auth_refuse("501 5.7.0 Authentication aborted");
  auto bytes = line.empty() ? std::optional<std::string>(std::string()) : base64_decode(line);
  if (!bytes) return auth_refuse("501 5.5.2 Error: cannot decode the response");
  auth_decoded(*bytes);
}

void Server::auth_decoded(const std::string& bytes) {
  if (creds_.mechanism == "LOGIN" && auth_step_ == 1) {
    creds_.user = bytes;
    auth_step_ = 2;
    mode_ = Mode::AuthResponse;
    return reply("334 UGFzc3dvcmQ6");  // "Password:"
  }
  if (creds_.mechanism == "LOGIN") {
    creds_.password = bytes;
  } else {
    // RFC 4616: [authzid] NUL authcid NUL passwd; acting for someone else
    // (an authzid other than the login) is not supported.
    auto a = bytes.find('\0');
    auto b = a == std::string::npos ? a : bytes.find('\0', a + 1);
    if (b == std::string::npos) return auth_refuse("501 5.5.2 Error: malformed PLAIN response");
    std::string authzid = bytes.substr(0, a);
    creds_.user = bytes.substr(a + 1, b - a - 1);
    creds_.password = bytes.substr(b + 1);
    if (!authzid.empty() && authzid != creds_.user) return auth_refuse("535 5.7.8 Error: authentication failed");
  }
  mode_ = Mode::Authenticate;
}

void Server::auth_result(bool ok) {
  if (mode_ != Mode::Authenticate) return;
  mode_ = Mode::Command;
  std::string user = std::move(creds_.user);
  creds_ = Credentials{};
  if (!ok) return error("535 5.7.8 Error: authentication failed");
  user_ = std::move(user);
  reply("235 2.7.0 Authentication successful");
}

void Server::set_device(const DevicePolicy& d) {
  device_ = d;
  if (d.max_message_size) s_.max_message_size = d.max_message_size;
  if (!d.rewrite_from.empty()) s_.rewrite_from = d.rewrite_from;
}

bool sender_allowed(const DevicePolicy& d, std::string_view sender) {
  return d.senders.empty() || sender_listed(d.senders, sender);
}

void Server::auth_locked() {
  if (mode_ != Mode::Authenticate) return;
  creds_ = Credentials{};
  close_with("421 4.7.0 " + s_.hostname + " Error: too many failed logins, try again later");
}

}  // namespace spoolgate::smtp
