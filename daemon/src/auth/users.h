// SPDX-License-Identifier: MIT
// auth/users: who may log in on a listener (its users_file), and the check
// of a password. The one home of libsodium.
//
// A users file has one device per line, "name:hash", where the hash is an
// argon2id string ($argon2id$v=19$m=...,t=...,p=...$salt$hash, as
// libsodium's crypto_pwhash_str writes it); '#' starts a comment line, blank
// lines are ignored. Names are 1 to 64 of A-Z a-z 0-9 . _ @ + -. A file with
// anything else is refused as a whole, with the line that is wrong: a typo
// never silently locks a device out (or in). Passwords are never stored.
//
// Verifier checks a login. argon2id is slow on purpose (a few tens of ms and
// 19 MiB per check, the OWASP parameters), so check() runs on a worker
// thread, and a device that logs in for every message pays it once: a
// success is remembered as a keyed BLAKE2b digest of the password (the key
// random per process), valid while that device's hash is unchanged. An
// unknown name costs a full check too, so timing tells nothing.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace spoolgate::auth {

bool valid_name(std::string_view name);

class Users {
 public:
  // `where` (the file's path) prefixes every error, with the line number.
  static Result<Users> parse(std::string_view text, const std::string& where);
  static Result<Users> load(const std::string& path);

  const std::string* hash_of(std::string_view name) const;
  std::size_t size() const { return entries_.size(); }
  // Adds the device or replaces its hash; comments and order are kept.
  void set(const std::string& name, const std::string& hash);
  // The file's text.
  std::string render() const;

 private:
  struct Line {
    std::string name;  // empty: a comment or blank line, kept as `text`
    std::string text;  // the hash, or the whole comment line
  };
  std::vector<Line> lines_;
  std::map<std::string, std::size_t, std::less<>> entries_;  // name -> index in lines_
};

// An argon2id hash of `secret` (OWASP: 19 MiB, 2 passes).
Result<std::string> hash_password(std::string_view secret);
bool is_password_hash(std::string_view hash);

class Verifier {
 public:
  explicit Verifier(std::shared_ptr<const Users> users);
  // Blocks (argon2id): call on a worker thread. Thread-safe.
  bool check(const std::string& name, const std::string& password);
  const Users& users() const { return *users_; }

 private:
  std::shared_ptr<const Users> users_;
  std::mutex mu_;
  std::string key_;                                     // random, for the remembered digests
  std::map<std::string, std::string, std::less<>> ok_;  // name -> hash + digest of the last good password
};

}  // namespace spoolgate::auth
