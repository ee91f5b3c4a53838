// SPDX-License-Identifier: MIT
// tls/tls: client sessions against a BoringSSL server, both over memory
// BIOs (no sockets): verification (chain, names, dates, pins), the error
// codes, resumption and the protocol floor; and the listener's server side
// (server_context, Session::server). Certificates are made here.
#include "tls/tls.h"

#include <doctest/doctest.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>

namespace tls = spoolgate::tls;
using spoolgate::Errc;

namespace {

struct Cert {
  bssl::UniquePtr<EVP_PKEY> key;
  bssl::UniquePtr<X509> x509;
};

bssl::UniquePtr<EVP_PKEY> new_key() {
  bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
  REQUIRE(EC_KEY_generate_key(ec.get()));
  bssl::UniquePtr<EVP_PKEY> k(EVP_PKEY_new());
  REQUIRE(EVP_PKEY_assign_EC_KEY(k.get(), ec.release()));
  return k;
}

void add_ext(X509* subject, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, subject, nullptr, nullptr, 0);
  bssl::UniquePtr<X509_EXTENSION> ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value));
  REQUIRE(ext);
  REQUIRE(X509_add_ext(subject, ext.get(), -1));
}

// A certificate for `cn` (subject CN) with subjectAltName `san` (empty:
// none), valid from `from` to `until` seconds relative to now, signed by
// `issuer` (null: self-signed CA); `ca`: may sign others.
Cert make_cert(const std::string& cn, const std::string& san, const Cert* issuer, long from = -3600,
               long until = 86400, bool ca = false) {
  static long serial = 1;
  Cert c{new_key(), bssl::UniquePtr<X509>(X509_new())};
  X509* x = c.x509.get();
  REQUIRE(X509_set_version(x, 2));
  REQUIRE(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++));
  REQUIRE(X509_gmtime_adj(X509_getm_notBefore(x), from));
  REQUIRE(X509_gmtime_adj(X509_getm_notAfter(x), until));
  X509_NAME* name = X509_get_subject_name(x);
  REQUIRE(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const uint8_t*>(cn.c_str()), -1, -1,
                                     0));
  REQUIRE(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer->x509.get()) : name));
  REQUIRE(X509_set_pubkey(x, c.key.get()));
  X509* signer = issuer ? issuer->x509.get() : x;
  if (!issuer || ca) {
    add_ext(x, signer, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  }
  if (!san.empty()) add_ext(x, signer, NID_subject_alt_name, san.c_str());
  REQUIRE(X509_sign(x, issuer ? issuer->key.get() : c.key.get(), EVP_sha256()));
  return c;
}

// A file that removes itself.
struct PemFile {
  std::filesystem::path path;
  explicit PemFile(const std::vector<const Cert*>& certs) {
    static int n = 0;
    path = std::filesystem::temp_directory_path() /
           ("sg-tls-test-" + std::to_string(getpid()) + "-" + std::to_string(n++) + ".pem");
    bssl::UniquePtr<BIO> bio(BIO_new_file(path.c_str(), "w"));
    REQUIRE(bio);
    for (const Cert* c : certs) REQUIRE(PEM_write_bio_X509(bio.get(), c->x509.get()));
  }
  ~PemFile() { std::filesystem::remove(path); }
  PemFile(const PemFile&) = delete;
  PemFile& operator=(const PemFile&) = delete;
};

// A private key file that removes itself.
struct KeyFile {
  std::filesystem::path path;
  explicit KeyFile(const Cert& c) {
    path = std::filesystem::temp_directory_path() / ("sg-tls-test-" + std::to_string(getpid()) + "-" +
                                                     std::to_string(reinterpret_cast<std::uintptr_t>(this)) + ".key");
    bssl::UniquePtr<BIO> bio(BIO_new_file(path.c_str(), "w"));
    REQUIRE(bio);
    REQUIRE(PEM_write_bio_PrivateKey(bio.get(), c.key.get(), nullptr, nullptr, 0, nullptr, nullptr));
  }
  ~KeyFile() { std::filesystem::remove(path); }
  KeyFile(const KeyFile&) = delete;
  KeyFile& operator=(const KeyFile&) = delete;
};

// Bytes between two of our sessions until neither has anything to say.
spoolgate::Result<void> pump(tls::Session& client, tls::Session& server) {
  for (int round = 0; round < 20; ++round) {
    std::string to_server = client.take_encrypted(), to_client = server.take_encrypted();
    if (to_server.empty() && to_client.empty()) return {};
    if (auto r = server.receive(to_server); !r) return r;
    if (auto r = client.receive(to_client); !r) return r;
  }
  FAIL("the handshake did not settle");
  return {};
}

// A BoringSSL server on memory BIOs presenting `leaf` (and `chain` after it).
class Server {
 public:
  explicit Server(const Cert& leaf, const Cert* chain = nullptr, uint16_t max_version = TLS1_3_VERSION) {
    ctx_.reset(SSL_CTX_new(TLS_method()));
    REQUIRE(SSL_CTX_use_certificate(ctx_.get(), leaf.x509.get()));
    REQUIRE(SSL_CTX_use_PrivateKey(ctx_.get(), leaf.key.get()));
    if (chain) REQUIRE(SSL_CTX_add1_chain_cert(ctx_.get(), chain->x509.get()));
    REQUIRE(SSL_CTX_set_min_proto_version(ctx_.get(), TLS1_VERSION));
    REQUIRE(SSL_CTX_set_max_proto_version(ctx_.get(), max_version));
  }

  // Runs the handshake (and what follows it: tickets) with `c` until
  // neither side has anything to say. Returns the client's last error.
  spoolgate::Result<void> talk(tls::Session& c) {
    if (!ssl_) {
      ssl_.reset(SSL_new(ctx_.get()));
      in_ = BIO_new(BIO_s_mem());
      out_ = BIO_new(BIO_s_mem());
      BIO_set_mem_eof_return(in_, -1);
      SSL_set_bio(ssl_.get(), in_, out_);
      SSL_set_accept_state(ssl_.get());
      if (auto r = c.handshake(); !r) return r;
    }
    for (int round = 0; round < 20; ++round) {
      std::string to_server = c.take_encrypted();
      if (!to_server.empty()) BIO_write(in_, to_server.data(), static_cast<int>(to_server.size()));
      if (!SSL_is_init_finished(ssl_.get())) {
        SSL_do_handshake(ssl_.get());
      } else {
        char buf[4096];
        int n;
        while ((n = SSL_read(ssl_.get(), buf, sizeof buf)) > 0) received_.append(buf, static_cast<size_t>(n));
      }
      const uint8_t* data = nullptr;
      size_t len = 0;
      BIO_mem_contents(out_, &data, &len);
      std::string to_client(reinterpret_cast<const char*>(data), len);
      BIO_reset(out_);
      if (to_server.empty() && to_client.empty()) return {};
      if (auto r = c.receive(to_client); !r) return r;
    }
    FAIL("the handshake did not settle");
    return {};
  }

  // The next talk() is a new connection to the same server (same ticket keys).
  void next_connection() {
    ssl_.reset();
    received_.clear();
  }

  void send(const std::string& s) { REQUIRE(SSL_write(ssl_.get(), s.data(), static_cast<int>(s.size())) > 0); }
  const std::string& received() const { return received_; }

 private:
  bssl::UniquePtr<SSL_CTX> ctx_;
  bssl::UniquePtr<SSL> ssl_;
  BIO* in_ = nullptr;
  BIO* out_ = nullptr;
  std::string received_;
};

struct Pki {
  Cert ca = make_cert("Test CA", "", nullptr);
  PemFile ca_file{{&ca}};
};

std::shared_ptr<tls::Context> context(const std::string& ca_file, std::vector<std::string> pins = {}) {
  tls::ClientOptions o;
  o.ca_file = ca_file;
  o.pins = std::move(pins);
  auto c = tls::client_context(o);
  REQUIRE(c);
  return *c;
}

std::unique_ptr<tls::Session> session(const std::shared_ptr<tls::Context>& ctx, const std::string& host) {
  auto s = tls::Session::client(ctx, host);
  REQUIRE(s);
  return std::move(*s);
}

std::string pin_of(const Cert& c) {
  PemFile f({&c});
  auto p = tls::pin_of_pem_file(f.path);
  REQUIRE(p);
  return *p;
}

// One handshake of a client verifying `host` (trusting ca_file, with pins)
// against a server presenting `leaf` (and `chain`): what the client saw.
struct Handshake {
  bool established = false;
  std::optional<Errc> code;  // the error, if the handshake failed
  std::string verify_error;
  std::vector<tls::CertInfo> chain;
};

Handshake handshake(const Cert& leaf, const std::string& ca_file, const std::string& host,
                    std::vector<std::string> pins = {}, const Cert* chain = nullptr,
                    uint16_t max_version = TLS1_3_VERSION) {
  Server srv(leaf, chain, max_version);
  auto c = session(context(ca_file, std::move(pins)), host);
  auto r = srv.talk(*c);
  Handshake h{c->established(), std::nullopt, c->verify_error(), c->chain()};
  if (!r) h.code = r.error().code;
  return h;
}

}  // namespace

TEST_SUITE("tls/tls") {
  TEST_CASE("a chain to the configured CA with a matching DNS name is established, and data flows both ways") {
    Pki pki;
    Cert leaf = make_cert("ignored", "DNS:smtp.example.test", &pki.ca);
    Server srv(leaf);
    auto c = session(context(pki.ca_file.path), "smtp.example.test");
    REQUIRE(srv.talk(*c));
    CHECK(c->established());
    CHECK(c->version() == "TLSv1.3");
    CHECK(c->verify_error().empty());
    CHECK(c->leaf_not_after() > 0);
    REQUIRE(c->send("EHLO me\r\n"));
    REQUIRE(srv.talk(*c));
    CHECK(srv.received() == "EHLO me\r\n");
    srv.send("250 ok\r\n");
    REQUIRE(srv.talk(*c));
    CHECK(c->take_plain() == "250 ok\r\n");
  }

  TEST_CASE("a name mismatch fails verification with Errc::TlsVerify, and the presented chain is still readable") {
    Pki pki;
    Cert leaf = make_cert("smtp.example.test", "DNS:other.example.test", &pki.ca);
    Handshake h = handshake(leaf, pki.ca_file.path, "smtp.example.test");
    CHECK(h.code == Errc::TlsVerify);
    CHECK(h.verify_error.find("mismatch") != std::string::npos);
    CHECK_FALSE(h.established);
    REQUIRE(h.chain.size() >= 1);
    CHECK(h.chain[0].subject.find("smtp.example.test") != std::string::npos);
  }

  TEST_CASE("the subject CN is never used as the name, even without any subjectAltName") {
    Pki pki;
    Cert leaf = make_cert("smtp.example.test", "", &pki.ca);
    CHECK(handshake(leaf, pki.ca_file.path, "smtp.example.test").code == Errc::TlsVerify);
  }

  TEST_CASE("a wildcard covers one whole left-most label, case-insensitively") {
    Pki pki;
    Cert leaf = make_cert("w", "DNS:*.example.test", &pki.ca);
    CHECK(handshake(leaf, pki.ca_file.path, "SMTP.Example.test").established);
    CHECK(handshake(leaf, pki.ca_file.path, "a.b.example.test").code == Errc::TlsVerify);
  }

  TEST_CASE("an IP address is checked against the IP subjectAltName, not a DNS one") {
    Pki pki;
    Cert by_ip = make_cert("ip", "IP:127.0.0.1", &pki.ca);
    Cert by_dns = make_cert("ip", "DNS:127.0.0.1", &pki.ca);
    CHECK(handshake(by_ip, pki.ca_file.path, "127.0.0.1").established);
    CHECK(handshake(by_dns, pki.ca_file.path, "127.0.0.1").code == Errc::TlsVerify);
  }

  TEST_CASE("an expired certificate and one not yet valid fail verification") {
    Pki pki;
    Cert expired = make_cert("x", "DNS:smtp.example.test", &pki.ca, -7200, -3600);
    Cert future = make_cert("x", "DNS:smtp.example.test", &pki.ca, 3600, 7200);
    Handshake h = handshake(expired, pki.ca_file.path, "smtp.example.test");
    CHECK(h.code == Errc::TlsVerify);
    CHECK(h.verify_error.find("expired") != std::string::npos);
    CHECK(handshake(future, pki.ca_file.path, "smtp.example.test").code == Errc::TlsVerify);
  }

  TEST_CASE("a chain to another CA fails verification") {
    Pki pki;
    Cert stranger = make_cert("Other CA", "", nullptr);
    Cert leaf = make_cert("x", "DNS:smtp.example.test", &stranger);
    CHECK(handshake(leaf, pki.ca_file.path, "smtp.example.test").code == Errc::TlsVerify);
  }

  TEST_CASE("an intermediate in ca_file is anchor enough (partial chain)") {
    Pki pki;
    Cert inter = make_cert("Intermediate", "", &pki.ca, -3600, 86400, true);
    Cert leaf = make_cert("x", "DNS:smtp.example.test", &inter);
    PemFile only_intermediate({&inter});
    CHECK(handshake(leaf, only_intermediate.path, "smtp.example.test", {}, &inter).established);
    CHECK(handshake(leaf, pki.ca_file.path, "smtp.example.test", {}, &inter).established);
  }

  TEST_CASE("pins: the leaf's or the anchor's key passes, any other key fails with Errc::TlsVerify") {
    Pki pki;
    Cert leaf = make_cert("x", "DNS:smtp.example.test", &pki.ca);
    Cert other = make_cert("y", "DNS:smtp.example.test", &pki.ca);
    CHECK(handshake(leaf, pki.ca_file.path, "smtp.example.test", {pin_of(leaf)}).established);
    CHECK(handshake(leaf, pki.ca_file.path, "smtp.example.test", {pin_of(pki.ca)}).established);
    Handshake h = handshake(leaf, pki.ca_file.path, "smtp.example.test", {pin_of(other)});
    CHECK(h.code == Errc::TlsVerify);
    CHECK(h.verify_error == "no pinned key in the verified chain");
  }

  TEST_CASE("a server that stops at TLS 1.1 is refused as a protocol failure, not a verification one") {
    Pki pki;
    Cert leaf = make_cert("x", "DNS:smtp.example.test", &pki.ca);
    Handshake h = handshake(leaf, pki.ca_file.path, "smtp.example.test", {}, nullptr, TLS1_1_VERSION);
    CHECK(h.code == Errc::Protocol);
    CHECK(h.verify_error.empty());
    CHECK_FALSE(h.established);
  }

  TEST_CASE("the next session to the same host resumes; a session to another host does not") {
    Pki pki;
    Cert leaf = make_cert("x", "DNS:smtp.example.test,DNS:other.example.test", &pki.ca);
    auto ctx = context(pki.ca_file.path);
    Server srv(leaf);
    auto first = session(ctx, "smtp.example.test");
    REQUIRE(srv.talk(*first));
    CHECK_FALSE(first->resumed());
    // BoringSSL's server sends its tickets with its first write (a real
    // server's greeting or reply): the context keeps the newest.
    srv.send("220 x\r\n");
    REQUIRE(srv.talk(*first));
    // The server's ticket came after the handshake; the context kept it.
    srv.next_connection();
    auto second = session(ctx, "smtp.example.test");
    REQUIRE(srv.talk(*second));
    CHECK(second->established());
    CHECK(second->resumed());
    srv.next_connection();
    auto other = session(ctx, "other.example.test");
    REQUIRE(srv.talk(*other));
    CHECK(other->established());
    CHECK_FALSE(other->resumed());
  }

  TEST_CASE("the listener's side: our client and our server agree, and data flows both ways") {
    Pki pki;
    Cert leaf = make_cert("relay", "DNS:relay.test", &pki.ca);
    PemFile chain({&leaf});
    KeyFile key(leaf);
    auto ctx = tls::server_context({chain.path, key.path, 12});
    REQUIRE(ctx);
    CHECK(tls::server_leaf(**ctx).subject == "/CN=relay");
    CHECK(tls::server_leaf(**ctx).not_after > 0);
    auto srv = tls::Session::server(*ctx);
    REQUIRE(srv);
    CHECK((*srv)->offered_version().empty());  // no hello yet
    auto c = session(context(pki.ca_file.path), "relay.test");
    REQUIRE(c->handshake());
    REQUIRE(pump(*c, **srv));
    CHECK(c->established());
    CHECK((*srv)->established());
    CHECK((*srv)->version() == "TLSv1.3");
    CHECK((*srv)->offered_version() == "TLSv1.3");  // from supported_versions, GREASE aside
    REQUIRE(c->send("EHLO dev\r\n"));
    REQUIRE(pump(*c, **srv));
    CHECK((*srv)->take_plain() == "EHLO dev\r\n");
    REQUIRE((*srv)->send("250 ok\r\n"));
    REQUIRE(pump(*c, **srv));
    CHECK(c->take_plain() == "250 ok\r\n");
  }

  TEST_CASE("server_context refuses a key of another certificate, a missing file and an unknown version") {
    Pki pki;
    Cert leaf = make_cert("relay", "DNS:relay.test", &pki.ca);
    Cert other = make_cert("other", "DNS:other.test", &pki.ca);
    PemFile chain({&leaf});
    KeyFile wrong(other);
    auto r = tls::server_context({chain.path, wrong.path, 12});
    REQUIRE_FALSE(r);
    CHECK(r.error().message().find("does not match certificate") != std::string::npos);
    r = tls::server_context({"/nonexistent/relay.crt", wrong.path, 12});
    REQUIRE_FALSE(r);
    CHECK(r.error().message().find("cannot load certificate /nonexistent/relay.crt") != std::string::npos);
    r = tls::server_context({chain.path, wrong.path, 14});
    REQUIRE_FALSE(r);
    CHECK(r.error().message().find("unknown TLS version") != std::string::npos);
  }

  TEST_CASE("a server at TLS 1.3 only refuses a client that stops at 1.2") {
    Pki pki;
    Cert leaf = make_cert("relay", "DNS:relay.test", &pki.ca);
    PemFile chain({&leaf});
    KeyFile key(leaf);
    auto ctx = tls::server_context({chain.path, key.path, 13});
    REQUIRE(ctx);
    auto srv = tls::Session::server(*ctx);
    REQUIRE(srv);
    bssl::UniquePtr<SSL_CTX> cctx(SSL_CTX_new(TLS_method()));
    REQUIRE(SSL_CTX_set_max_proto_version(cctx.get(), TLS1_2_VERSION));
    bssl::UniquePtr<SSL> cssl(SSL_new(cctx.get()));
    BIO* in = BIO_new(BIO_s_mem());
    BIO* out = BIO_new(BIO_s_mem());
    SSL_set_bio(cssl.get(), in, out);
    SSL_set_connect_state(cssl.get());
    SSL_do_handshake(cssl.get());
    const uint8_t* data = nullptr;
    size_t len = 0;
    BIO_mem_contents(out, &data, &len);
    auto r = (*srv)->receive(std::string_view(reinterpret_cast<const char*>(data), len));
    REQUIRE_FALSE(r);
    CHECK(r.error().message().find("UNSUPPORTED_PROTOCOL") != std::string::npos);
    CHECK((*srv)->offered_version() == "TLSv1.2");  // what the device spoke, for the log
  }
}
