// SPDX-License-Identifier: MIT
// upstreams[].oauth: where an upstream's access tokens come from; its keys,
// its checks, and the providers' presets (Microsoft identity platform v2.0,
// Google OAuth 2.0).
#include "config/sections.h"

namespace spoolgate::config {
namespace {

bool safe_text(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  return true;
}

bool tenant_name(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-'))
      return false;
  return true;
}

void preset(std::string& field, const std::string& value) {
  if (field.empty()) field = value;
}

}  // namespace

Table oauth_fields(OAuth& o) {
  return {
      choice("oauth.provider", o.provider,
             {{"none", OAuthProvider::None},
              {"microsoft", OAuthProvider::Microsoft},
              {"google", OAuthProvider::Google},
              {"custom", OAuthProvider::Custom}}),
      text("oauth.tenant", o.tenant),
      choice("oauth.grant", o.grant,
             {{"none", OAuthGrant::None},
              {"client_credentials", OAuthGrant::ClientCredentials},
              {"refresh_token", OAuthGrant::RefreshToken},
              {"service_account", OAuthGrant::ServiceAccount}}),
      text("oauth.client_id", o.client_id),
      text("oauth.client_secret_file", o.client_secret_file),
      text("oauth.client_secret_env", o.client_secret_env),
      text("oauth.client_cert", o.client_cert),
      text("oauth.client_key", o.client_key),
      text("oauth.key_file", o.key_file),
      text("oauth.token_url", o.token_url),
      text("oauth.device_authorization_url", o.device_authorization_url),
      text("oauth.authorization_url", o.authorization_url),
      text("oauth.scope", o.scope),
      text("oauth.ca_file", o.ca_file),
  };
}

void oauth_check(Parser& p, const Value& at, const std::string& path, Upstream& u) {
  OAuth& o = u.oauth;
  std::string k = path + ".oauth";
  const std::pair<const char*, std::string*> texts[] = {{"tenant", &o.tenant},
                                                        {"client_id", &o.client_id},
                                                        {"client_secret_file", &o.client_secret_file},
                                                        {"client_secret_env", &o.client_secret_env},
                                                        {"client_cert", &o.client_cert},
                                                        {"client_key", &o.client_key},
                                                        {"key_file", &o.key_file},
                                                        {"token_url", &o.token_url},
                                                        {"device_authorization_url", &o.device_authorization_url},
                                                        {"authorization_url", &o.authorization_url},
                                                        {"scope", &o.scope},
                                                        {"ca_file", &o.ca_file}};
  if (!o.configured()) {
    bool any = o.grant != OAuthGrant::None;
    for (const auto& t : texts) any = any || !t.second->empty();
    if (any) p.err(at, k + ".provider", "expected microsoft, google or custom (the oauth block has no provider)");
    return;
  }
  for (const auto& [name, val] : texts)
    if (!safe_text(*val)) p.err(at, k + "." + name, "must not contain control characters");

  bool service = o.grant == OAuthGrant::ServiceAccount;
  if (o.grant == OAuthGrant::None)
    p.err(at, k + ".grant", "expected client_credentials, refresh_token or service_account");
  if (o.client_id.empty() && !service) p.err(at, k + ".client_id", "required: the application (client) ID");
  if (u.username.empty())
    p.err(at, path + ".username", "required with oauth: the mailbox the token is for (the SASL user)");
  if (!u.password_file.empty() || !u.password_env.empty())
    p.err(at, path, "oauth gets the tokens itself: remove password_file / password_env");
  if (u.auth != AuthMode::Auto && u.auth != AuthMode::XOAuth2 && u.auth != AuthMode::OAuthBearer)
    p.err(at, path + ".auth", "with oauth, expected auto, xoauth2 or oauthbearer");
  if (u.scheme == Scheme::Plain)
    p.err(at, path + ".url", "oauth needs TLS to the upstream (smtps:// or smtp+starttls://): a token is a password");

  int secrets = (o.client_secret_file.empty() ? 0 : 1) + (o.client_secret_env.empty() ? 0 : 1) +
                (o.client_cert.empty() && o.client_key.empty() ? 0 : 1);
  if (o.client_cert.empty() != o.client_key.empty()) p.err(at, k, "client_cert and client_key go together");
  if (secrets > 1) p.err(at, k, "set one of client_secret_file, client_secret_env or client_cert/client_key");
  if (o.grant == OAuthGrant::ClientCredentials && secrets == 0)
    p.err(at, k, "client_credentials needs client_secret_file, client_secret_env or client_cert/client_key");
  if (service) {
    // The key file holds the account's id and key: nothing else identifies it.
    if (o.key_file.empty()) p.err(at, k + ".key_file", "required with service_account: the JSON key Google issued");
    if (secrets || !o.client_id.empty())
      p.err(at, k, "service_account takes its identity from key_file: remove client_id and the client secrets");
    if (o.provider == OAuthProvider::Microsoft)
      p.err(at, k + ".grant", "service_account is Google's (Microsoft: client_credentials)");
  } else if (!o.key_file.empty()) {
    p.err(at, k + ".key_file", "only used with grant service_account");
  }

  switch (o.provider) {
    case OAuthProvider::Microsoft: {
      if (!tenant_name(o.tenant)) {
        p.err(at, k + ".tenant", "required: the tenant's domain (contoso.onmicrosoft.com) or ID");
        break;
      }
      std::string base = "https://login.microsoftonline.com/" + o.tenant + "/oauth2/v2.0/";
      preset(o.token_url, base + "token");
      preset(o.device_authorization_url, base + "devicecode");
      preset(o.authorization_url, base + "authorize");
      // SMTP AUTH's resource, or Graph's for a graph:// upstream.
      if (u.scheme == Scheme::Graph)
        preset(o.scope, o.grant == OAuthGrant::ClientCredentials
                            ? "https://graph.microsoft.com/.default"
                            : "https://graph.microsoft.com/Mail.Send offline_access");
      else
        preset(o.scope, o.grant == OAuthGrant::ClientCredentials
                            ? "https://outlook.office365.com/.default"
                            : "https://outlook.office.com/SMTP.Send offline_access");
      break;
    }
    case OAuthProvider::Google:
      if (o.grant == OAuthGrant::ClientCredentials)
        p.err(at, k + ".grant",
              "Google has no client_credentials grant for Gmail: use refresh_token or service_account");
      if (!o.client_cert.empty()) p.err(at, k + ".client_cert", "not used with provider google");
      preset(o.token_url, "https://oauth2.googleapis.com/token");
      preset(o.device_authorization_url, "https://oauth2.googleapis.com/device/code");
      preset(o.authorization_url, "https://accounts.google.com/o/oauth2/v2/auth");
      // Gmail's SMTP needs the full scope; its API sends with gmail.send.
      preset(o.scope,
             u.scheme == Scheme::GmailApi ? "https://www.googleapis.com/auth/gmail.send" : "https://mail.google.com/");
      break;
    case OAuthProvider::Custom:
      if (o.token_url.empty()) p.err(at, k + ".token_url", "required with provider custom");
      if (o.scope.empty()) p.err(at, k + ".scope", "required with provider custom");
      break;
    case OAuthProvider::None:
      break;
  }
  if (o.provider != OAuthProvider::Microsoft && !o.tenant.empty())
    p.err(at, k + ".tenant", "only used with provider microsoft");
  for (const auto& [name, val] : {std::pair<const char*, std::string*>{"token_url", &o.token_url},
                                  {"device_authorization_url", &o.device_authorization_url},
                                  {"authorization_url", &o.authorization_url}})
    if (!val->empty() && val->compare(0, 8, "https://") != 0)
      p.err(at, k + "." + name, "expected an https:// URL, got '" + *val + "'");
}

std::string_view to_string(OAuthProvider v) {
  switch (v) {
    case OAuthProvider::None:
      return "none";
    case OAuthProvider::Microsoft:
      return "microsoft";
    case OAuthProvider::Google:
      return "google";
    case OAuthProvider::Custom:
      return "custom";
  }
  return "?";
}

std::string_view to_string(OAuthGrant v) {
  switch (v) {
    case OAuthGrant::None:
      return "none";
    case OAuthGrant::ClientCredentials:
      return "client_credentials";
    case OAuthGrant::RefreshToken:
      return "refresh_token";
    case OAuthGrant::ServiceAccount:
      return "service_account";
  }
  return "?";
}

}  // namespace spoolgate::config
