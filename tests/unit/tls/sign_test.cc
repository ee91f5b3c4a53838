// SPDX-License-Identifier: MIT
// tls/sign: an RS256 signature that verifies with the key's public half, the
// certificate thumbprint as SHA-256 of its DER, and the wrong key type or a
// missing file refused.
#include "tls/sign.h"

#include <doctest/doctest.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/obj.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <cstdio>

#include "../support/temp_dir.h"
#include "core/files.h"
#include "oauth/assertion.h"

using namespace spoolgate;

namespace {

void write_key(const std::string& path, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  REQUIRE(f);
  REQUIRE(PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr));
  std::fclose(f);
}

bssl::UniquePtr<EVP_PKEY> rsa_key() {
  bssl::UniquePtr<RSA> rsa(RSA_new());
  bssl::UniquePtr<BIGNUM> e(BN_new());
  BN_set_word(e.get(), RSA_F4);
  REQUIRE(RSA_generate_key_ex(rsa.get(), 2048, e.get(), nullptr));
  bssl::UniquePtr<EVP_PKEY> key(EVP_PKEY_new());
  EVP_PKEY_assign_RSA(key.get(), rsa.release());
  return key;
}

}  // namespace

TEST_SUITE("tls/sign") {
  TEST_CASE("RS256 verifies with the public key; a certificate's thumbprint is SHA-256 of its DER") {
    TempDir d;
    auto key = rsa_key();
    std::string key_path = (d.path / "key.pem").string();
    write_key(key_path, key.get());
    auto sig = tls::sign_rs256(key_path, "header.claims");
    REQUIRE(sig);
    CHECK(sig->size() == 256);
    bssl::ScopedEVP_MD_CTX v;
    REQUIRE(EVP_DigestVerifyInit(v.get(), nullptr, EVP_sha256(), nullptr, key.get()));
    auto data = reinterpret_cast<const std::uint8_t*>("header.claims");
    CHECK(EVP_DigestVerify(v.get(), reinterpret_cast<const std::uint8_t*>(sig->data()), sig->size(), data, 13) == 1);
    // The same key given as PEM text (a service account's key file) signs
    // the same (RSASSA-PKCS1-v1_5 is deterministic).
    auto pem = files::read_small(key_path);
    REQUIRE(pem);
    auto again = tls::sign_rs256_pem(*pem, "the key", "header.claims");
    REQUIRE(again);
    CHECK(*again == *sig);
    auto bad = tls::sign_rs256_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "k.json", "x");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().detail == "no private key in k.json");

    bssl::UniquePtr<X509> cert(X509_new());
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("app"), -1, -1, 0);
    X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
    X509_set_pubkey(cert.get(), key.get());
    REQUIRE(X509_sign(cert.get(), key.get(), EVP_sha256()));
    std::string cert_path = (d.path / "cert.pem").string();
    FILE* f = std::fopen(cert_path.c_str(), "w");
    REQUIRE(f);
    PEM_write_X509(f, cert.get());
    std::fclose(f);
    auto thumb = tls::certificate_sha256(cert_path);
    REQUIRE(thumb);
    unsigned char* der = nullptr;
    int len = i2d_X509(cert.get(), &der);
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(der, static_cast<std::size_t>(len), md);
    OPENSSL_free(der);
    CHECK(*thumb == std::string(reinterpret_cast<const char*>(md), sizeof md));
  }

  TEST_CASE("an EC key, a missing file and a file without a key are refused") {
    TempDir d;
    bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
    REQUIRE(EC_KEY_generate_key(ec.get()));
    bssl::UniquePtr<EVP_PKEY> key(EVP_PKEY_new());
    EVP_PKEY_assign_EC_KEY(key.get(), ec.release());
    std::string path = (d.path / "ec.pem").string();
    write_key(path, key.get());
    auto s = tls::sign_rs256(path, "x");
    REQUIRE_FALSE(s);
    CHECK(s.error().detail.find("not RSA") != std::string::npos);
    CHECK_FALSE(tls::sign_rs256((d.path / "none.pem").string(), "x"));
    CHECK_FALSE(tls::certificate_sha256(path));  // a key, no certificate
    CHECK(tls::random_hex(16).size() == 32);
    CHECK(tls::random_hex(16) != tls::random_hex(16));
  }
  TEST_CASE("HMAC-SHA256 as hex (RFC 4231 test case 2)") {
    CHECK(tls::hmac_sha256_hex("Jefe", "what do ya want for nothing?") ==
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  }
  TEST_CASE("sha256 gives PKCE's S256 challenge (RFC 7636 appendix B)") {
    CHECK(oauth::base64url(tls::sha256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")) ==
          "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    CHECK(tls::random_hex(32).size() == 64);
    CHECK(tls::random_hex(16) != tls::random_hex(16));
  }
}
