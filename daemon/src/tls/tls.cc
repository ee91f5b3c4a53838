// SPDX-License-Identifier: MIT
#include "tls/tls.h"

#include <openssl/base64.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <ctime>

namespace spoolgate::tls {

class Context {
 public:
  bssl::UniquePtr<SSL_CTX> ctx;
  std::vector<std::string> pins;
  // The newest session a server of this context gave us (a TLS 1.3 ticket
  // or a TLS 1.2 session), offered by the next connection to the same host.
  // It came from a handshake verified under this context's anchors and pins;
  // a reload builds a new context, so a changed trust never resumes an old
  // session.
  bssl::UniquePtr<SSL_SESSION> resume;
  std::string resume_host;
  CertInfo leaf;  // a server context's own certificate
};

struct Session::Impl {
  bssl::UniquePtr<SSL> ssl;
  BIO* net_in = nullptr;   // owned by ssl
  BIO* net_out = nullptr;  // owned by ssl
  std::shared_ptr<Context> ctx;
  std::string host;
  Session* owner = nullptr;
  std::uint16_t offered = 0;  // server side: the highest version in the client's hello
};

namespace {

std::string ssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown TLS error" : out;
}

std::string spki_pin(X509* cert) {
  uint8_t* der = nullptr;
  int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
  if (len <= 0) return "";
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(der, static_cast<size_t>(len), digest);
  OPENSSL_free(der);
  uint8_t b64[64];
  size_t n = EVP_EncodeBlock(b64, digest, sizeof digest);
  return std::string(reinterpret_cast<char*>(b64), n);
}

std::int64_t to_unix(const ASN1_TIME* t) {
  int days = 0, secs = 0;
  if (!t || !ASN1_TIME_diff(&days, &secs, nullptr, t)) return 0;  // from now to t
  return static_cast<std::int64_t>(::time(nullptr)) + std::int64_t{days} * 86400 + secs;
}

std::string name_of(const X509_NAME* n) {
  char buf[512];
  X509_NAME_oneline(n, buf, sizeof buf);
  return buf;
}

CertInfo info_of(X509* c) {
  return CertInfo{name_of(X509_get_subject_name(c)), name_of(X509_get_issuer_name(c)), to_unix(X509_get0_notBefore(c)),
                  to_unix(X509_get0_notAfter(c)), spki_pin(c)};
}

int ssl_index() {
  static int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}

// Called for every certificate while the chain is verified. After the leaf
// (depth 0) passed, the pins are checked against the whole verified chain.
int verify_cb(int ok, X509_STORE_CTX* store) noexcept {
  SSL* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* impl = static_cast<Session::Impl*>(SSL_get_ex_data(ssl, ssl_index()));
  if (!ok) return 0;
  if (X509_STORE_CTX_get_error_depth(store) != 0 || impl->ctx->pins.empty()) return 1;
  STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(store);
  for (size_t i = 0; i < sk_X509_num(chain); ++i) {
    std::string pin = spki_pin(sk_X509_value(chain, i));
    for (const auto& p : impl->ctx->pins)
      if (p == pin) return 1;
  }
  X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
  return 0;
}

// A server issued a session (after the handshake with TLS 1.3): keep it.
int new_session_cb(SSL* ssl, SSL_SESSION* session) noexcept {
  auto* impl = static_cast<Session::Impl*>(SSL_get_ex_data(ssl, ssl_index()));
  if (!impl) return 0;
  impl->ctx->resume.reset(session);
  impl->ctx->resume_host = impl->host;
  return 1;  // ours now
}

// Server side, before the version is negotiated: remember the highest
// version the client offers (RFC 8446 4.2.1 supported_versions, else the
// hello's own version), so that a refused handshake can say what the
// device spoke.
ssl_select_cert_result_t on_client_hello(const SSL_CLIENT_HELLO* hello) noexcept {
  auto* impl = static_cast<Session::Impl*>(SSL_get_ex_data(hello->ssl, ssl_index()));
  if (!impl) return ssl_select_cert_success;
  std::uint16_t best = hello->version;
  const std::uint8_t* data = nullptr;
  std::size_t len = 0;
  if (SSL_early_callback_ctx_extension_get(hello, TLSEXT_TYPE_supported_versions, &data, &len) && len >= 1 &&
      data[0] + std::size_t{1} <= len) {
    best = 0;
    for (std::size_t i = 1; i + 1 < std::size_t{1} + data[0]; i += 2) {
      auto v = static_cast<std::uint16_t>((data[i] << 8) | data[i + 1]);
      if ((v & 0x0f0f) != 0x0a0a && v <= TLS1_3_VERSION && v > best) best = v;  // not GREASE (RFC 8701)
    }
  }
  impl->offered = best;
  return ssl_select_cert_success;
}

}  // namespace

Result<std::shared_ptr<Context>> client_context(const ClientOptions& opts) {
  auto c = std::make_shared<Context>();
  c->pins = opts.pins;
  c->ctx.reset(SSL_CTX_new(TLS_method()));
  if (!c->ctx) return fail(Errc::Io, "SSL_CTX_new: " + ssl_errors());
  SSL_CTX* ctx = c->ctx.get();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  const std::string& bundle = opts.ca_file.empty() ? std::string(kSystemBundle) : opts.ca_file;
  ERR_clear_error();
  if (!SSL_CTX_load_verify_locations(ctx, bundle.c_str(), nullptr))
    return fail(Errc::Invalid, "cannot load trust anchors from " + bundle + ": " + ssl_errors());
  if (!opts.ca_file.empty()) {
    // Embedded users trust only their issuing CA, often an intermediate.
    X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_PARTIAL_CHAIN);
  }
  X509_VERIFY_PARAM_set_hostflags(SSL_CTX_get0_param(ctx), X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
  if (!opts.client_cert.empty()) {
    ERR_clear_error();
    if (!SSL_CTX_use_certificate_chain_file(ctx, opts.client_cert.c_str()))
      return fail(Errc::Invalid, "cannot load client certificate " + opts.client_cert + ": " + ssl_errors());
    if (!SSL_CTX_use_PrivateKey_file(ctx, opts.client_key.c_str(), SSL_FILETYPE_PEM))
      return fail(Errc::Invalid, "cannot load client key " + opts.client_key + ": " + ssl_errors());
    if (!SSL_CTX_check_private_key(ctx)) return fail(Errc::Invalid, "client key does not match the client certificate");
  }
  // Session resumption (tickets) makes reconnects cheap: the provider
  // skips its signature and we skip verifying the chain again.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
  SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
  return c;
}

Result<std::shared_ptr<Context>> server_context(const ServerOptions& opts) {
  static const std::pair<int, std::uint16_t> versions[] = {
      {10, TLS1_VERSION}, {11, TLS1_1_VERSION}, {12, TLS1_2_VERSION}, {13, TLS1_3_VERSION}};
  std::uint16_t min = 0;
  for (const auto& [n, v] : versions)
    if (n == opts.min_version) min = v;
  if (min == 0) return fail(Errc::Invalid, "unknown TLS version 1." + std::to_string(opts.min_version % 10));
  auto c = std::make_shared<Context>();
  c->ctx.reset(SSL_CTX_new(TLS_method()));
  if (!c->ctx) return fail(Errc::Io, "SSL_CTX_new: " + ssl_errors());
  SSL_CTX* ctx = c->ctx.get();
  SSL_CTX_set_min_proto_version(ctx, min);
  // TLS 1.3's suites are fixed (all AEAD). For 1.2: forward secrecy and
  // AEAD only; the legacy profile adds what TLS 1.0/1.1 clients have (CBC
  // with SHA-1 MACs, RSA key exchange for the oldest), never RC4 or 3DES.
  const char* ciphers = min >= TLS1_2_VERSION ? "ECDHE+AESGCM:ECDHE+CHACHA20"
                                              : "ECDHE+AESGCM:ECDHE+CHACHA20:ECDHE+AES:RSA+AESGCM:RSA+AES";
  ERR_clear_error();
  if (!SSL_CTX_set_strict_cipher_list(ctx, ciphers)) return fail(Errc::Io, "cipher list: " + ssl_errors());
  for (const std::string* f : {&opts.cert_file, &opts.key_file}) {
    // A missing or unreadable file says so plainly (BoringSSL's error
    // stack would name three libraries).
    std::FILE* fp = std::fopen(f->c_str(), "r");
    if (!fp) return fail_errno("cannot load " + std::string(f == &opts.cert_file ? "certificate " : "key ") + *f, errno);
    (void)std::fclose(fp);
  }
  if (!SSL_CTX_use_certificate_chain_file(ctx, opts.cert_file.c_str()))
    return fail(Errc::Invalid, "cannot load certificate " + opts.cert_file + ": " + ssl_errors());
  if (!SSL_CTX_use_PrivateKey_file(ctx, opts.key_file.c_str(), SSL_FILETYPE_PEM) ||
      !SSL_CTX_check_private_key(ctx)) {
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH ||
        ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_NO_PRIVATE_KEY_ASSIGNED)
      return fail(Errc::Invalid, "key " + opts.key_file + " does not match certificate " + opts.cert_file);
    return fail(Errc::Invalid, "cannot load key " + opts.key_file + ": " + ssl_errors());
  }
  X509* leaf = SSL_CTX_get0_certificate(ctx);
  if (!leaf) return fail(Errc::Invalid, "no certificate in " + opts.cert_file);
  c->leaf = info_of(leaf);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_select_certificate_cb(ctx, on_client_hello);
  return c;
}

CertInfo server_leaf(const Context& ctx) { return ctx.leaf; }

namespace {

// Memory BIOs on a new SSL of `ctx` for `s`.
Result<void> attach(Session& s, Session::Impl& i) {
  ERR_clear_error();
  i.ssl.reset(SSL_new(i.ctx->ctx.get()));
  if (!i.ssl) return fail(Errc::Io, "SSL_new: " + ssl_errors());
  SSL_set_ex_data(i.ssl.get(), ssl_index(), &i);
  i.net_in = BIO_new(BIO_s_mem());
  i.net_out = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(i.net_in, -1);
  SSL_set_bio(i.ssl.get(), i.net_in, i.net_out);
  i.owner = &s;
  return {};
}

}  // namespace

Result<std::unique_ptr<Session>> Session::server(std::shared_ptr<Context> ctx) {
  std::unique_ptr<Session> s(new Session());
  s->impl_ = std::make_unique<Impl>();
  s->impl_->ctx = std::move(ctx);
  if (auto a = attach(*s, *s->impl_); !a) return tl::unexpected(a.error());
  SSL_set_accept_state(s->impl_->ssl.get());
  return s;
}

Result<std::unique_ptr<Session>> Session::client(std::shared_ptr<Context> ctx, const std::string& host) {
  std::unique_ptr<Session> s(new Session());
  s->impl_ = std::make_unique<Impl>();
  Impl& i = *s->impl_;
  i.ctx = std::move(ctx);
  i.host = host;
  if (auto a = attach(*s, i); !a) return tl::unexpected(a.error());
  SSL_set_connect_state(i.ssl.get());
  bool is_ip = host.find(':') != std::string::npos || host.find_first_not_of("0123456789.") == std::string::npos;
  if (is_ip) {
    if (!X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(i.ssl.get()), host.c_str()))
      return fail(Errc::Invalid, "bad IP address " + host);
  } else {
    // RFC 6066: SNI carries DNS names only.
    if (!SSL_set_tlsext_host_name(i.ssl.get(), host.c_str()) || !SSL_set1_host(i.ssl.get(), host.c_str()))
      return fail(Errc::Invalid, "bad host name " + host);
    SSL_set_hostflags(i.ssl.get(), X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
  }
  Context& c = *i.ctx;
  if (c.resume && c.resume_host == host) {
    if (!SSL_set_session(i.ssl.get(), c.resume.get())) return fail(Errc::Io, "SSL_set_session: " + ssl_errors());
    // RFC 8446 C.4: a TLS 1.3 ticket is offered once; the server sends new ones.
    if (SSL_SESSION_should_be_single_use(c.resume.get())) c.resume.reset();
  }
  return s;
}

bool Session::resumed() const { return SSL_session_reused(impl_->ssl.get()) != 0; }

Session::~Session() = default;

Result<void> Session::handshake() {
  if (established_) return {};
  ERR_clear_error();
  int rc = SSL_do_handshake(impl_->ssl.get());
  if (rc == 1) {
    established_ = true;
    return pump_read();
  }
  int err = SSL_get_error(impl_->ssl.get(), rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return {};
  // A verification failure is one only when the handshake failed on the
  // certificate: before any certificate (a version or cipher mismatch) the
  // verify result is X509_V_ERR_INVALID_CALL, which is not the peer's fault
  // of that kind.
  uint32_t e = ERR_peek_error();
  long v = SSL_get_verify_result(impl_->ssl.get());
  if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED && v != X509_V_OK) {
    verify_error_ = v == X509_V_ERR_APPLICATION_VERIFICATION ? "no pinned key in the verified chain"
                                                             : X509_verify_cert_error_string(v);
    return fail(Errc::TlsVerify, "certificate verification failed: " + verify_error_);
  }
  return fail(Errc::Protocol, "TLS handshake failed: " + ssl_errors());
}

Result<void> Session::receive(std::string_view encrypted) {
  if (!encrypted.empty() && BIO_write(impl_->net_in, encrypted.data(), static_cast<int>(encrypted.size())) <= 0)
    return fail(Errc::Io, "BIO_write failed");
  if (!established_) {
    auto r = handshake();
    if (!r || !established_) return r;
  }
  return pump_read();
}

Result<void> Session::pump_read() {
  char buf[16384];
  for (;;) {
    ERR_clear_error();
    int n = SSL_read(impl_->ssl.get(), buf, sizeof buf);
    if (n > 0) {
      plain_.append(buf, static_cast<size_t>(n));
      continue;
    }
    int err = SSL_get_error(impl_->ssl.get(), n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return {};
    if (err == SSL_ERROR_ZERO_RETURN) {
      peer_closed_ = true;
      return {};
    }
    return fail(Errc::Protocol, "TLS read failed: " + ssl_errors());
  }
}

Result<void> Session::send(std::string_view plain) {
  if (!established_) return fail(Errc::Protocol, "TLS not established");
  while (!plain.empty()) {
    ERR_clear_error();
    int n = SSL_write(impl_->ssl.get(), plain.data(), static_cast<int>(std::min<size_t>(plain.size(), 1 << 20)));
    if (n <= 0) return fail(Errc::Protocol, "TLS write failed: " + ssl_errors());
    plain.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

std::string Session::take_encrypted() {
  std::string out;
  const uint8_t* data = nullptr;
  size_t len = 0;
  if (BIO_mem_contents(impl_->net_out, &data, &len) && len > 0) {
    out.assign(reinterpret_cast<const char*>(data), len);
    BIO_reset(impl_->net_out);
  }
  return out;
}

std::string Session::take_plain() {
  std::string p;
  p.swap(plain_);
  return p;
}

void Session::close_notify() {
  ERR_clear_error();
  if (established_) SSL_shutdown(impl_->ssl.get());
}

std::string Session::version() const { return SSL_get_version(impl_->ssl.get()); }

std::string Session::offered_version() const {
  switch (impl_->offered) {
    case 0:
      return "";
    case SSL3_VERSION:
      return "SSLv3";
    case TLS1_VERSION:
      return "TLSv1";
    case TLS1_1_VERSION:
      return "TLSv1.1";
    case TLS1_2_VERSION:
      return "TLSv1.2";
    case TLS1_3_VERSION:
      return "TLSv1.3";
    default:
      return "unknown";
  }
}

std::string Session::cipher() const {
  const SSL_CIPHER* c = SSL_get_current_cipher(impl_->ssl.get());
  return c ? SSL_CIPHER_get_name(c) : "";
}

std::vector<CertInfo> Session::chain() const {
  std::vector<CertInfo> out;
  STACK_OF(X509)* chain = SSL_get_peer_full_cert_chain(impl_->ssl.get());
  for (size_t i = 0; chain && i < sk_X509_num(chain); ++i) out.push_back(info_of(sk_X509_value(chain, i)));
  return out;
}

std::int64_t Session::leaf_not_after() const {
  bssl::UniquePtr<X509> leaf(SSL_get_peer_certificate(impl_->ssl.get()));
  return leaf ? to_unix(X509_get0_notAfter(leaf.get())) : 0;
}

Result<std::string> pin_of_pem_file(const std::string& path) {
  bssl::UniquePtr<BIO> bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) return fail(Errc::NotFound, "cannot open " + path);
  bssl::UniquePtr<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return fail(Errc::Invalid, "no certificate in " + path);
  return spki_pin(cert.get());
}

}  // namespace spoolgate::tls
