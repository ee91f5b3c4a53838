// SPDX-License-Identifier: MIT
// OAuth2 endpoint answers (oauth/token.h): token and device answers from
// any status and body.
// Oracle: a token comes only from a 200 and can go into an AUTH line as it
// is; every text kept is printable and short; a token written back as JSON
// parses to the same token; a device code likewise; a token store record
// (the same bytes) that decodes re-encodes to the same values; a service
// account key file (the same bytes) is read only when it is one, and what
// is read is what the JSON holds; a refusal quotes nothing of the file.
#include <nlohmann/json.hpp>

#include "oauth/assertion.h"
#include "oauth/store.h"
#include "oauth/token.h"
#include "oracle.h"

using namespace spoolgate;
using namespace spoolgate::oauth;

namespace {

bool printable(const std::string& s, std::size_t max) {
  if (s.size() > max) return false;
  for (char c : s)
    if (c < 0x20 || c > 0x7e) return false;
  return true;
}

void check(const Problem& p) {
  SG_REQUIRE(printable(p.error, 400));
  SG_REQUIRE(printable(p.description, 300));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  static const long statuses[] = {200, 200, 200, 400, 401, 429, 500, 503};
  long status = statuses[in.ConsumeIntegralInRange<std::size_t>(0, 7)];
  std::string body = in.ConsumeRemainingBytesAsString();

  TokenAnswer a = parse_token_answer(status, body);
  if (const auto* t = std::get_if<Token>(&a)) {
    SG_REQUIRE(status == 200);
    SG_REQUIRE(valid_token(t->access));
    SG_REQUIRE(t->refresh.empty() || valid_token(t->refresh));
    SG_REQUIRE(t->expires_in >= 0 && t->expires_in <= 10LL * 365 * 86400);
    SG_REQUIRE(printable(t->scope, 300));
    nlohmann::json j = {{"access_token", t->access}, {"token_type", "Bearer"}, {"expires_in", t->expires_in}};
    if (!t->refresh.empty()) j["refresh_token"] = t->refresh;
    if (!t->scope.empty()) j["scope"] = t->scope;
    TokenAnswer b = parse_token_answer(200, j.dump());
    const auto* u = std::get_if<Token>(&b);
    SG_REQUIRE(u && u->access == t->access && u->refresh == t->refresh && u->expires_in == t->expires_in &&
               u->scope == t->scope);
  } else {
    check(std::get<Problem>(a));
  }

  DeviceAnswer d = parse_device_answer(status, body);
  if (const auto* c = std::get_if<DeviceCode>(&d)) {
    SG_REQUIRE(status == 200);
    SG_REQUIRE(valid_token(c->device_code));
    SG_REQUIRE(!c->user_code.empty() && printable(c->user_code, 300));
    SG_REQUIRE(!c->verification_uri.empty() && printable(c->verification_uri, 300));
    SG_REQUIRE(c->expires_in > 0 && c->interval > 0 && c->interval <= 300);
    nlohmann::json j = {{"device_code", c->device_code},
                        {"user_code", c->user_code},
                        {"verification_uri", c->verification_uri},
                        {"expires_in", c->expires_in},
                        {"interval", c->interval}};
    DeviceAnswer e = parse_device_answer(200, j.dump());
    const auto* f = std::get_if<DeviceCode>(&e);
    SG_REQUIRE(f && f->device_code == c->device_code && f->user_code == c->user_code &&
               f->verification_uri == c->verification_uri && f->expires_in == c->expires_in &&
               f->interval == c->interval);
  } else {
    check(std::get<Problem>(d));
  }

  // The token store's records (oauth/store.h): what decodes, encodes to a
  // record that decodes to the same values.
  if (auto r = decode(body)) {
    auto again = decode(encode(*r));
    SG_REQUIRE(again);
    SG_REQUIRE(again->client == r->client && again->refresh == r->refresh && again->access == r->access &&
               again->expires_at == r->expires_at && again->refreshed_at == r->refreshed_at &&
               again->generation == r->generation);
  }

  auto key = parse_service_account_key(body);
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (key) {
    SG_REQUIRE(j.is_object() && j["type"] == "service_account");
    SG_REQUIRE(j["client_email"] == key->client_email && j["private_key"] == key->private_key &&
               j["private_key_id"] == key->private_key_id);
    SG_REQUIRE(!key->client_email.empty() && key->private_key.starts_with("-----BEGIN "));
  } else {
    std::string why = key.error().message();
    SG_REQUIRE(!why.empty() && why.size() < 200 && printable(why, 200));
  }
  return 0;
}
