// SPDX-License-Identifier: MIT
// upstreams: the providers, tried in order; each entry's keys and checks.
#include <set>

#include "config/sections.h"
#include "config/url.h"
#include "core/text.h"

namespace spoolgate::config {
namespace {

bool has_ctl(std::string_view s) {
  for (char c : s)
    if (c == '\r' || c == '\n' || c == '\0') return true;
  return false;
}

// graph:// and gmail-api:// upstreams: what they need and what they do
// not use; the largest message is the API's at most.
void api_check(Parser& p, const Value& at, const std::string& path, Upstream& u) {
  if (!is_api(u.scheme)) {
    if (!u.api_base.empty()) p.err(at, path + ".api_base", "only for graph:// and gmail-api:// upstreams");
    return;
  }
  // The API's host, for the token store's key and for people.
  std::string base = u.api_base.empty()
                         ? (u.scheme == Scheme::Graph ? "https://graph.microsoft.com" : "https://gmail.googleapis.com")
                         : u.api_base;
  if (!base.starts_with("https://") || base.size() <= 8 || has_ctl(base) ||
      base.find_first_of(" ?#") != std::string::npos)
    p.err(at, path + ".api_base", "expected an https:// URL like https://graph.microsoft.us, got '" + base + "'");
  std::string_view host(base);
  host.remove_prefix(std::min<std::size_t>(8, host.size()));
  u.host = std::string(host.substr(0, host.find('/')));
  if (!u.oauth.configured() && u.password_file.empty() && u.password_env.empty())
    p.err(at, path, "an API upstream needs an oauth: block (or password_file / password_env with an access token)");
  if (u.auth != AuthMode::Auto) p.err(at, path + ".auth", "not used by API upstreams (they send a bearer token)");
  if (!u.pins.empty() || !u.client_cert.empty())
    p.err(at, path,
          "pins and client_cert are for SMTP upstreams; an API upstream verifies with ca_file or the system's");
  if (u.insecure_plaintext) p.err(at, path + ".insecure_plaintext", "API upstreams are always HTTPS");
  bool graph = u.scheme == Scheme::Graph;
  std::uint64_t most = graph ? kGraphMaxMessage : kGmailApiMaxMessage;
  if (!u.limits.max_message_size) u.limits.max_message_size = graph ? kGraphDefaultMessage : most;
  if (u.limits.max_message_size > most) u.limits.max_message_size = most;
}

}  // namespace

Table upstream_fields(Upstream& u, Shown shown) {
  Table t{
      text("name", u.name),
      text("url", u.url),
      text("username", u.username),
      text("password_file", u.password_file),
      text("password_env", u.password_env),
      choice("auth", u.auth,
             {{"auto", AuthMode::Auto},
              {"plain", AuthMode::Plain},
              {"login", AuthMode::Login},
              {"xoauth2", AuthMode::XOAuth2},
              {"oauthbearer", AuthMode::OAuthBearer}}),
      text("ca_file", u.ca_file),
      custom(
          "pins", true,
          [&u](Parser& p, const Value& v, const std::string& path) {
            u.pins.clear();
            for (const Value* e : p.items(v, path)) {
              std::string_view s = trim(e->scalar);
              if (s.starts_with("sha256/")) s.remove_prefix(7);
              bool ok = s.size() == 44 && s.back() == '=';
              for (char ch : s.substr(0, 43))
                ok = ok && ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                            ch == '+' || ch == '/');
              if (!ok)
                p.err(*e, path,
                      "expected a base64 SHA-256 of a SubjectPublicKeyInfo (44 characters), got '" + e->scalar + "'");
              else
                u.pins.emplace_back(s);
            }
          },
          [&u] { return quoted_list(u.pins); }),
      text("client_cert", u.client_cert),
      text("client_key", u.client_key),
      boolean("insecure_plaintext", u.insecure_plaintext),
      choice("provider", u.provider,
             {{"generic", Provider::Generic},
              {"microsoft365", Provider::Microsoft365},
              {"gmail", Provider::Gmail},
              {"google-workspace", Provider::GoogleWorkspace},
              {"ses", Provider::Ses}}),
      count("limits.max_connections", u.limits.max_connections, 0, 1000000000),
      count("limits.messages_per_second", u.limits.messages_per_second, 0, 1000000000),
      count("limits.messages_per_minute", u.limits.messages_per_minute, 0, 1000000000),
      count("limits.messages_per_day", u.limits.messages_per_day, 0, 1000000000),
      count("limits.recipients_per_day", u.limits.recipients_per_day, 0, 1000000000),
      size("limits.max_message_size", u.limits.max_message_size),
      duration("limits.quota_wait", u.limits.quota_wait),
      strings("send_as", u.send_as),
      text("rewrite_from", u.rewrite_from),
      text("api_base", u.api_base),
  };
  if (shown == Shown::All || u.oauth.configured())
    for (auto& f : oauth_fields(u.oauth)) t.push_back(std::move(f));
  return t;
}

std::vector<EnvName> upstream_env_names() {
  Upstream scratch;
  std::vector<EnvName> out;
  for (const auto& f : upstream_fields(scratch)) out.push_back({f.path, env_name("upstream." + f.path), f.list});
  out.push_back({"username", "SPOOLGATE_USERNAME", false});
  out.push_back({"password_file", "SPOOLGATE_PASSWORD_FILE", false});
  out.push_back({"password_env", "SPOOLGATE_PASSWORD_ENV", false});
  return out;
}

void upstreams_check(Check& k, Config& c) {
  Parser& p = k.parser();
  const Value* ups = k.root().kind == Value::Map ? k.root().find("upstreams") : nullptr;
  std::set<std::string> names;
  for (size_t i = 0; i < c.upstreams.size(); ++i) {
    Upstream& u = c.upstreams[i];
    std::string path = "upstreams[" + std::to_string(i) + "]";
    Value at = ups && i < ups->list.size() ? ups->list[i] : k.where("upstreams");
    if (!u.name.empty() && !valid_device_name(u.name))
      p.err(at, path + ".name", "an upstream name is 1 to 64 of A-Z a-z 0-9 . _ @ + -");
    else if (!u.name.empty() && !names.insert(u.name).second)
      p.err(at, path + ".name", "'" + u.name + "' names two upstreams");
    if (u.url.empty()) {
      p.err(at, path + ".url", "expected a URL like smtps://smtp.example.com:465");
      continue;
    }
    parse_upstream_url(p, at, path, u);
    // Also a %01 the URL decoded into the username: a control character
    // in a credential would split the XOAUTH2 string (0x01 separates it).
    if (has_control(u.username)) p.err(at, path + ".username", "must not contain control characters");
    for (auto [name, val] :
         {std::pair{"password_file", &u.password_file}, {"password_env", &u.password_env}, {"ca_file", &u.ca_file}})
      if (has_ctl(*val)) p.err(at, path + "." + name, "must not contain CR, LF or NUL");
    if (!u.password_file.empty() && !u.password_env.empty())
      p.err(at, path, "set password_file or password_env, not both");
    if (u.client_cert.empty() != u.client_key.empty()) p.err(at, path, "client_cert and client_key go together");
    oauth_check(p, at, path, u);
    for (const auto& a : u.send_as)
      if (a.find('@') == std::string::npos || a.find_first_of(" <>\t,;") != std::string::npos)
        p.err(at, path + ".send_as",
              "expected an address (alerts@example.com) or a domain (@example.com), got '" + a + "'");
    if (!u.rewrite_from.empty() && u.rewrite_from != "account" &&
        (u.rewrite_from.find('@') == std::string::npos || u.rewrite_from.front() == '@' ||
         u.rewrite_from.find_first_of(" <>\t\r\n,;") != std::string::npos))
      p.err(at, path + ".rewrite_from", "expected an address, or account (the username), got '" + u.rewrite_from + "'");
    if (u.rewrite_from == "account" && u.username.find('@') == std::string::npos)
      p.err(at, path + ".rewrite_from", "account needs a username that is an address (it is '" + u.username + "')");
    // What is not given comes from the provider's profile.
    UpstreamLimits d = profile_limits(u.provider);
    UpstreamLimits& l = u.limits;
    for (auto [mine, theirs] : {std::pair{&l.max_connections, d.max_connections},
                                {&l.messages_per_second, d.messages_per_second},
                                {&l.messages_per_minute, d.messages_per_minute},
                                {&l.messages_per_day, d.messages_per_day},
                                {&l.recipients_per_day, d.recipients_per_day},
                                {&l.max_message_size, d.max_message_size}})
      if (*mine == kUnset) *mine = theirs;
    if (l.quota_wait.count() < 0) l.quota_wait = d.quota_wait;
    api_check(p, at, path, u);
    if (l.quota_wait > Millis(7 * 86'400'000))
      p.err(at, path + ".limits.quota_wait",
            "at most 7d (a provider's quota window reopens within a day), got " + format_duration(l.quota_wait));
  }
}

}  // namespace spoolgate::config
