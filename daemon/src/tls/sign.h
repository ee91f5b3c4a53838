// SPDX-License-Identifier: MIT
// tls/sign: what a certificate-based OAuth2 client assertion (RFC 7523,
// Microsoft's "certificate credentials") needs from BoringSSL: the
// certificate's SHA-256 thumbprint (the JWT header's x5t#S256) and an
// RS256 signature (RSASSA-PKCS1-v1_5 with SHA-256) made with its key.
// Blocking file reads: for worker threads.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"

namespace spoolgate::tls {

// SHA-256 of the DER of the first certificate in a PEM file (32 raw bytes).
Result<std::string> certificate_sha256(const std::string& cert_path);
// The raw RS256 signature of `data` with the RSA private key in a PEM file.
Result<std::string> sign_rs256(const std::string& key_path, std::string_view data);
// The same with the key given as PEM text; `what` names it in errors.
Result<std::string> sign_rs256_pem(std::string_view pem, const std::string& what, std::string_view data);
// HMAC-SHA256 of data with key, as lowercase hex (a webhook's signature).
std::string hmac_sha256_hex(std::string_view key, std::string_view data);
// SHA-256 of data (32 raw bytes): a PKCE code challenge (RFC 7636 4.2).
std::string sha256(std::string_view data);
// n random bytes, as lowercase hex (a JWT's jti, a PKCE verifier, a state).
std::string random_hex(std::size_t n);

}  // namespace spoolgate::tls
