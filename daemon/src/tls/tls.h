// SPDX-License-Identifier: MIT
// tls/tls: BoringSSL contexts (client, and the listener's server side) and TLS
// sessions over memory BIOs.
//
// The only code that includes BoringSSL. A Session never owns a socket: the
// caller feeds it the bytes received from the network (receive) and sends
// what it produces (take_encrypted), so it can sit on any transport and be
// tested without one.
//
// Verification is always on: the chain must lead to a trust anchor (the
// system bundle, or ca_file; with ca_file any certificate in it may be the
// anchor, so an intermediate works: partial chain), the configured host must
// match a DNS SAN (wildcards for one whole left-most label, case-insensitive;
// the subject CN is never used), SNI carries the host, TLS 1.2 is the minimum.
// With pins, at least one certificate of the verified chain must have a
// SubjectPublicKeyInfo whose SHA-256 (base64) is pinned. A failed check fails
// the handshake; nothing is ever sent over an unverified session.
//
// A context keeps the newest session its servers issued and the next client
// session to the same host offers it (resumption: no full handshake). Only
// sessions verified under that context exist in it.
//
// Errors come back as Result: Errc::TlsVerify when the certificate failed
// verification (the detail and verify_error() say why), Errc::Protocol for
// any other handshake or record-layer failure.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace spoolgate::tls {

constexpr const char* kSystemBundle = "/etc/ssl/certs/ca-certificates.crt";

struct ClientOptions {
  std::string ca_file;            // "" = the system bundle
  std::vector<std::string> pins;  // base64 SHA-256 of SPKI
  std::string client_cert;        // PEM chain file
  std::string client_key;         // PEM key file
};

struct CertInfo {
  std::string subject;
  std::string issuer;
  std::int64_t not_before = 0;  // unix seconds
  std::int64_t not_after = 0;
  std::string spki_pin;  // base64 SHA-256 of SubjectPublicKeyInfo
};

class Context;

// Builds a client context; fails with a readable reason (file missing, no
// certificate in the CA file, key does not match the certificate, ...).
Result<std::shared_ptr<Context>> client_context(const ClientOptions& opts);

// The listener's side: our certificate (a PEM file with the full chain,
// leaf first) and its key. TLS 1.2 and up with ECDHE and AEAD suites only,
// unless min_version asks for 1.0 or 1.1: then the CBC suites those
// versions need are offered too (for old devices, on the listeners that
// allow it). No client certificates are asked for.
struct ServerOptions {
  std::string cert_file;
  std::string key_file;
  int min_version = 12;  // 10, 11, 12 or 13 (TLS 1.x)
};
// Fails with a readable reason (file missing, no certificate, key does not
// match the certificate, unknown version).
Result<std::shared_ptr<Context>> server_context(const ServerOptions& opts);
// The leaf certificate a server context presents.
CertInfo server_leaf(const Context& ctx);

class Session {
 public:
  // A client session for `host` (SNI and the name to verify).
  static Result<std::unique_ptr<Session>> client(std::shared_ptr<Context> ctx, const std::string& host);
  // A server session: waits for the client's hello.
  static Result<std::unique_ptr<Session>> server(std::shared_ptr<Context> ctx);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Bytes from the network. Advances the handshake and decrypts what it can.
  Result<void> receive(std::string_view encrypted);
  // Starts (or continues) the handshake; call once after creation.
  Result<void> handshake();
  bool established() const { return established_; }
  // Application data to encrypt; only once established.
  Result<void> send(std::string_view plain);
  // What to write to the network now.
  std::string take_encrypted();
  // Decrypted application data received so far.
  std::string take_plain();
  // The peer sent close_notify.
  bool peer_closed() const { return peer_closed_; }
  // Queues our close_notify (take_encrypted then holds it).
  void close_notify();

  std::string version() const;
  // Server side: the highest version the client's hello offered ("TLSv1",
  // ..., "TLSv1.3"; "" before a hello arrived), also after a refused
  // handshake: what an old device speaks.
  std::string offered_version() const;
  std::string cipher() const;
  // The handshake resumed an earlier session of the same context and host.
  bool resumed() const;
  // The verified chain, leaf first (after the handshake, or after a failed
  // verification: what the peer presented).
  std::vector<CertInfo> chain() const;
  // The leaf certificate's notAfter (unix seconds), 0 when there is none.
  std::int64_t leaf_not_after() const;
  // Why verification failed ("certificate has expired", "hostname mismatch",
  // "no pinned key in the chain", ...), empty when it did not.
  const std::string& verify_error() const { return verify_error_; }

  struct Impl;

 private:
  Session() = default;
  Result<void> pump_read();
  std::unique_ptr<Impl> impl_;
  bool established_ = false;
  bool peer_closed_ = false;
  std::string plain_;
  std::string verify_error_;
};

// base64(SHA-256(SubjectPublicKeyInfo)) of the first certificate in a PEM file
// (used by tests and `spoolgate probe`).
Result<std::string> pin_of_pem_file(const std::string& path);

}  // namespace spoolgate::tls
