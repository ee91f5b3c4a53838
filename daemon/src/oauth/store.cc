// SPDX-License-Identifier: MIT
#include "oauth/store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "core/files.h"

namespace spoolgate::oauth {
namespace {

using Json = nlohmann::json;

constexpr std::size_t kMaxRecord = 256 * std::size_t{1024};

}  // namespace

bool Store::valid_key(std::string_view key) {
  if (key.empty() || key.size() > 100 || key.front() == '.') return false;
  for (char c : key) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.';
    if (!ok) return false;
  }
  return true;
}

std::string client_fingerprint(std::string_view token_url, std::string_view client_id, std::string_view scope,
                               std::string_view grant) {
  std::string out;
  for (std::string_view part : {token_url, client_id, scope, grant}) {
    if (!out.empty()) out += ' ';
    out += part;
  }
  return out;
}

std::string encode(const Stored& s) {
  Json j = {{"format", Stored::kFormat}, {"generation", s.generation}, {"client", s.client},
            {"refresh_token", s.refresh}, {"access_token", s.access},     {"expires_at_ms", s.expires_at},
            {"refreshed_at_ms", s.refreshed_at}};
  return j.dump(1, ' ', false, Json::error_handler_t::replace) + "\n";
}

Result<Stored> decode(std::string_view text) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, false);
  if (!j.is_object()) return fail(Errc::SpoolCorrupt, "not a JSON object");
  auto fmt = j.find("format");
  if (fmt == j.end() || !fmt->is_number_integer()) return fail(Errc::SpoolCorrupt, "no format version");
  if (fmt->get<long long>() != Stored::kFormat)
    return fail(Errc::SpoolCorrupt, "format " + std::to_string(fmt->get<long long>()) + " is not one this version reads (" +
                                        std::to_string(Stored::kFormat) + ")");
  Stored s;
  auto str = [&](const char* k, std::string& out) {
    auto it = j.find(k);
    if (it == j.end() || !it->is_string()) return false;
    out = it->get<std::string>();
    return true;
  };
  auto num = [&](const char* k, std::int64_t& out) {
    auto it = j.find(k);
    if (it == j.end() || !it->is_number_integer()) return false;
    out = it->get<std::int64_t>();
    return true;
  };
  std::int64_t gen = 0;
  if (!str("client", s.client) || !str("refresh_token", s.refresh) || !str("access_token", s.access) ||
      !num("expires_at_ms", s.expires_at) || !num("refreshed_at_ms", s.refreshed_at) || !num("generation", gen) ||
      gen < 0)
    return fail(Errc::SpoolCorrupt, "a field is missing or of the wrong type");
  s.generation = static_cast<std::uint64_t>(gen);
  return s;
}

Result<Store> Store::open(const std::string& spool_dir) {
  Store st;
  st.dir_ = spool_dir + "/oauth";
  auto d = files::ensure_dir(st.dir_, 0700);
  if (!d) return tl::unexpected(d.error());
  return st;
}

Result<std::optional<Stored>> Store::load(std::string_view key) const {
  if (!valid_key(key)) return fail(Errc::Invalid, "not a token store key: " + std::string(key));
  std::string path = dir_ + "/" + std::string(key) + ".json";
  auto text = files::read_small(path, kMaxRecord);
  if (!text) {
    if (text.error().sys == ENOENT) return std::optional<Stored>();
    return tl::unexpected(text.error());
  }
  auto s = decode(*text);
  if (!s) return fail(s.error().code, path + ": " + s.error().detail);
  return std::optional<Stored>(std::move(*s));
}

Result<void> Store::save(std::string_view key, Stored& s) const {
  if (!valid_key(key)) return fail(Errc::Invalid, "not a token store key: " + std::string(key));
  auto before = load(key);
  std::uint64_t gen = before && *before ? (*before)->generation : 0;
  Stored next = s;
  next.generation = gen + 1;
  std::string path = dir_ + "/" + std::string(key) + ".json";
  auto w = files::replace_file(path + ".tmp." + std::to_string(::getpid()), path, encode(next), 0600);
  if (!w) return w;
  // Written by root (`oauth login` run as root): the record goes to the
  // store's owner, the daemon's user, or the daemon could not read it.
  struct stat st {};
  if (::geteuid() == 0 && ::stat(dir_.c_str(), &st) == 0 && st.st_uid != 0 &&
      ::chown(path.c_str(), st.st_uid, st.st_gid) != 0)
    return fail_errno("chown " + path, errno);
  auto d = files::fsync_dir(dir_);
  if (!d) return d;
  s.generation = next.generation;
  return {};
}

Result<void> Store::remove(std::string_view key) const {
  if (!valid_key(key)) return fail(Errc::Invalid, "not a token store key: " + std::string(key));
  std::string path = dir_ + "/" + std::string(key) + ".json";
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return fail_errno("unlink " + path, errno);
  return files::fsync_dir(dir_);
}

}  // namespace spoolgate::oauth
