// SPDX-License-Identifier: MIT
#include "tls/sign.h"

#include <openssl/bio.h>
#include <openssl/digest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <vector>

namespace spoolgate::tls {

Result<std::string> certificate_sha256(const std::string& cert_path) {
  bssl::UniquePtr<BIO> bio(BIO_new_file(cert_path.c_str(), "r"));
  if (!bio) return fail(Errc::NotFound, "cannot open " + cert_path);
  bssl::UniquePtr<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return fail(Errc::Invalid, "no certificate in " + cert_path);
  unsigned char* der = nullptr;
  int len = i2d_X509(cert.get(), &der);
  if (len <= 0) return fail(Errc::Invalid, "cannot encode the certificate in " + cert_path);
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(der, static_cast<std::size_t>(len), md);
  OPENSSL_free(der);
  return std::string(reinterpret_cast<const char*>(md), sizeof md);
}

namespace {

Result<std::string> sign_with(BIO* bio, const std::string& what, std::string_view data) {
  bssl::UniquePtr<EVP_PKEY> key(PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr));
  if (!key) return fail(Errc::Invalid, "no private key in " + what);
  if (EVP_PKEY_id(key.get()) != EVP_PKEY_RSA)
    return fail(Errc::Invalid, what + ": the key is not RSA (a client assertion is signed with RS256)");
  bssl::ScopedEVP_MD_CTX ctx;
  if (!EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()))
    return fail(Errc::Invalid, "cannot sign with " + what);
  std::size_t len = 0;
  auto in = reinterpret_cast<const std::uint8_t*>(data.data());
  if (!EVP_DigestSign(ctx.get(), nullptr, &len, in, data.size()))
    return fail(Errc::Invalid, "cannot sign with " + what);
  std::vector<std::uint8_t> sig(len);
  if (!EVP_DigestSign(ctx.get(), sig.data(), &len, in, data.size()))
    return fail(Errc::Invalid, "cannot sign with " + what);
  return std::string(reinterpret_cast<const char*>(sig.data()), len);
}

}  // namespace

Result<std::string> sign_rs256(const std::string& key_path, std::string_view data) {
  bssl::UniquePtr<BIO> bio(BIO_new_file(key_path.c_str(), "r"));
  if (!bio) return fail(Errc::NotFound, "cannot open " + key_path);
  return sign_with(bio.get(), key_path, data);
}

Result<std::string> sign_rs256_pem(std::string_view pem, const std::string& what, std::string_view data) {
  if (pem.size() > (std::size_t{1} << 20)) return fail(Errc::Invalid, what + ": the key is too long");
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return fail(Errc::Invalid, "cannot read " + what);
  return sign_with(bio.get(), what, data);
}

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  HMAC(EVP_sha256(), key.data(), key.size(), reinterpret_cast<const std::uint8_t*>(data.data()), data.size(), md, &len);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

std::string sha256(std::string_view data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const std::uint8_t*>(data.data()), data.size(), md);
  return std::string(reinterpret_cast<const char*>(md), sizeof md);
}

std::string random_hex(std::size_t n) {
  std::vector<std::uint8_t> b(n);
  RAND_bytes(b.data(), n);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (auto c : b) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

}  // namespace spoolgate::tls
