// SPDX-License-Identifier: MIT
#include "api/request.h"

#include "core/base64.h"
#include "core/text.h"

namespace spoolgate::api {
namespace {

// A path segment: unreserved characters and '@' as they are, the rest
// percent-encoded (RFC 3986 3.3).
std::string segment(std::string_view s) { return percent_encode(s, "@"); }

std::string trimmed_base(std::string_view base) {
  std::string b(base);
  while (!b.empty() && b.back() == '/') b.pop_back();
  return b;
}

}  // namespace

std::string base_or_default(Kind k, std::string_view api_base) {
  return api_base.empty() ? default_base(k) : std::string(api_base);
}

http::Request authorized(std::string_view token) {
  http::Request r;
  r.headers.push_back("Authorization: Bearer " + std::string(token));
  r.max_body = std::size_t{64} * 1024;  // an answer is a small JSON object
  return r;
}

std::string graph_user_url(std::string_view base, std::string_view mailbox) {
  return trimmed_base(base) + "/v1.0/users/" + segment(mailbox);
}

std::string default_base(Kind k) {
  return k == Kind::Graph ? "https://graph.microsoft.com" : "https://gmail.googleapis.com";
}

http::Request send_request(Kind k, std::string_view base, std::string_view mailbox, std::string_view token,
                           std::string message, std::string_view client_request_id) {
  http::Request r = authorized(token);
  r.method = "POST";
  if (k == Kind::Graph) {
    r.url = graph_user_url(base, mailbox) + "/sendMail";
    r.headers.push_back("Content-Type: text/plain");
    if (!client_request_id.empty()) r.headers.push_back("client-request-id: " + std::string(client_request_id));
    r.body = base64_encode(message);
  } else {
    r.url = trimmed_base(base) + "/upload/gmail/v1/users/" + segment(mailbox) + "/messages/send?uploadType=media";
    r.headers.push_back("Content-Type: message/rfc822");
    r.body = std::move(message);
  }
  // Long enough for 35 MB over a slow uplink; the scheduler retries after.
  r.timeout = Millis(300'000);
  return r;
}

http::Request probe_request(Kind k, std::string_view base, std::string_view mailbox, std::string_view token) {
  http::Request r = authorized(token);
  r.method = "GET";
  r.url = k == Kind::Graph ? graph_user_url(base, mailbox) + "?$select=mail"
                           : trimmed_base(base) + "/gmail/v1/users/" + segment(mailbox) + "/profile";
  return r;
}

}  // namespace spoolgate::api
