// SPDX-License-Identifier: MIT
// oauth/store: the tokens of each OAuth upstream on disk, under the spool
// (<spool>/oauth/<key>.json, directory 0700, files 0600).
//
// What is kept: the refresh token (the one secret that cannot be got again
// without a person), and the current access token with its expiry, so that
// a restart does not cost a token request. A record is replaced like every
// spool record (core/files.h: temp, fsync, rename, directory fsync), so a
// crash at any instant leaves the old record or the new one. The token
// manager saves a rotated refresh token before it uses the access token
// that came with it: once the provider has rotated it, the old one may be
// dead, and the new one is already on disk.
//
// Each record has a format version (a newer one is refused, not guessed
// at) and a generation that grows with every save (`oauth status`, and to
// tell which of two writers came last). `client` fingerprints the
// configuration the tokens were issued for (token endpoint, client id,
// scope): tokens for another client are not used.
//
// Blocking file I/O: for the worker threads, `oauth login` and tests.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace spoolgate::oauth {

struct Stored {
  static constexpr int kFormat = 1;
  std::string client;         // fingerprint of the configuration (client_fingerprint)
  std::string refresh;        // empty for client_credentials
  std::string access;         // empty: none kept
  std::int64_t expires_at = 0;    // unix ms of the access token's end
  std::int64_t refreshed_at = 0;  // unix ms of the answer that gave it
  std::uint64_t generation = 0;   // set by save()
};

class Store {
 public:
  // <spool>/oauth; created (0700) if missing.
  static Result<Store> open(const std::string& spool_dir);
  const std::string& dir() const { return dir_; }

  // nullopt: nothing stored for `key` yet.
  Result<std::optional<Stored>> load(std::string_view key) const;
  // Durably replaces the record of `key`; s.generation becomes the previous
  // generation + 1.
  Result<void> save(std::string_view key, Stored& s) const;
  Result<void> remove(std::string_view key) const;

  // A key is a file name: letters, digits, '-', '_', '.', at most 100, not
  // starting with '.'.
  static bool valid_key(std::string_view key);

 private:
  std::string dir_;
};

// The same endpoint, client, scope and grant ("client_credentials",
// "refresh_token") give the same text (none of them is a secret: they are
// in the config file).
std::string client_fingerprint(std::string_view token_url, std::string_view client_id, std::string_view scope,
                               std::string_view grant);

// The record as JSON and back (pure; fuzzed with the token answers).
std::string encode(const Stored& s);
Result<Stored> decode(std::string_view json);

}  // namespace spoolgate::oauth
