// SPDX-License-Identifier: MIT
#include "auth/users.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "core/files.h"
#include "core/text.h"

namespace spoolgate::auth {
namespace {

constexpr unsigned long long kOpsLimit = 2;               // passes
constexpr std::size_t kMemLimit = std::size_t{19} << 20;  // bytes
constexpr std::size_t kMaxHash = crypto_pwhash_STRBYTES - 1;

bool sodium_ready() {
  static const bool ok = sodium_init() >= 0;
  return ok;
}

// A hash to check unknown names against, so that they take as long.
const std::string& dummy_hash() {
  static const std::string h = hash_password("spoolgate: no such device").value_or("");
  return h;
}

}  // namespace

bool valid_name(std::string_view name) { return valid_device_name(name); }

bool is_password_hash(std::string_view h) {
  if (!h.starts_with("$argon2id$v=19$m=") || h.size() > kMaxHash) return false;
  for (char c : h)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '$' || c == '=' ||
          c == ',' || c == '+' || c == '/'))
      return false;
  return std::count(h.begin(), h.end(), '$') == 5;
}

Result<Users> Users::parse(std::string_view text, const std::string& where) {
  Users u;
  std::size_t lineno = 0;
  std::vector<std::string_view> lines = split(text, '\n');
  lines.pop_back();  // after the last newline: nothing, or a last line without one
  if (!text.empty() && !text.ends_with('\n')) lines.push_back(text.substr(text.rfind('\n') + 1));
  for (std::string_view line : lines) {
    ++lineno;
    while (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // CRLF files (and CR CR LF)
    std::string at = where + ":" + std::to_string(lineno) + ": ";
    std::string_view t = trim(line);
    if (t.empty() || t.front() == '#') {
      u.lines_.push_back({"", std::string(line)});
      continue;
    }
    auto colon = t.find(':');
    if (colon == std::string_view::npos) return fail(Errc::Invalid, at + "expected name:hash");
    std::string_view name = t.substr(0, colon), hash = t.substr(colon + 1);
    if (!valid_name(name)) return fail(Errc::Invalid, at + "a device name is 1 to 64 of A-Z a-z 0-9 . _ @ + -");
    if (!is_password_hash(hash))
      return fail(Errc::Invalid, at + "expected an argon2id hash ($argon2id$v=19$...; spoolgate passwd writes one)");
    if (u.entries_.count(name)) return fail(Errc::Invalid, at + "'" + std::string(name) + "' is listed twice");
    u.entries_.emplace(std::string(name), u.lines_.size());
    u.lines_.push_back({std::string(name), std::string(hash)});
  }
  return u;
}

Result<Users> Users::load(const std::string& path) {
  auto text = files::read_small(path);
  if (!text) return fail(text.error().code, "users_file " + path + ": " + text.error().message());
  return parse(*text, path);
}

const std::string* Users::hash_of(std::string_view name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &lines_[it->second].text;
}

void Users::set(const std::string& name, const std::string& hash) {
  if (auto it = entries_.find(name); it != entries_.end()) {
    lines_[it->second].text = hash;
    return;
  }
  entries_.emplace(name, lines_.size());
  lines_.push_back({name, hash});
}

std::string Users::render() const {
  std::string out;
  for (const auto& l : lines_) out += (l.name.empty() ? l.text : l.name + ":" + l.text) + "\n";
  return out;
}

Result<std::string> hash_password(std::string_view secret) {
  if (!sodium_ready()) return fail(Errc::Io, "libsodium failed to initialise");
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, secret.data(), secret.size(), kOpsLimit, kMemLimit) != 0)
    return fail(Errc::Io, "argon2id: out of memory");
  return std::string(out);
}

Verifier::Verifier(std::shared_ptr<const Users> users) : users_(std::move(users)) {
  (void)sodium_ready();
  key_.resize(crypto_generichash_KEYBYTES);
  randombytes_buf(key_.data(), key_.size());
}

bool Verifier::check(const std::string& name, const std::string& password) {
  const std::string* hash = users_->hash_of(name);
  unsigned char digest[crypto_generichash_BYTES];
  crypto_generichash(digest, sizeof digest, reinterpret_cast<const unsigned char*>(password.data()), password.size(),
                     reinterpret_cast<const unsigned char*>(key_.data()), key_.size());
  std::string remembered = (hash ? *hash : std::string()) + std::string(reinterpret_cast<char*>(digest), sizeof digest);
  if (hash) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = ok_.find(name);
    if (it != ok_.end() && it->second.size() == remembered.size() &&
        sodium_memcmp(it->second.data(), remembered.data(), remembered.size()) == 0)
      return true;
  }
  const std::string& against = hash ? *hash : dummy_hash();
  bool ok = !against.empty() && crypto_pwhash_str_verify(against.c_str(), password.data(), password.size()) == 0;
  ok = ok && hash != nullptr;
  if (ok) {
    std::lock_guard<std::mutex> lock(mu_);
    ok_[name] = remembered;
  }
  return ok;
}

}  // namespace spoolgate::auth
