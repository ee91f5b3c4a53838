// SPDX-License-Identifier: MIT
// api/request: the HTTP request that sends one message through an API
// upstream, and the largest message each API takes.
//
// Microsoft Graph: POST {base}/v1.0/users/{mailbox}/sendMail with the MIME
// message base64-encoded as a text/plain body (Graph's MIME format; the
// request is at most 4 MB, so the message at most kGraphRequestMax bytes
// before encoding; a larger one goes as a draft with its attachments
// added, api/graph_draft.h), answered 202; the message is saved to Sent
// Items.
// Gmail API: POST {base}/upload/gmail/v1/users/{user}/messages/send
// ?uploadType=media with the message as message/rfc822 (at most 35 MB),
// answered 200 with the message's id.
//
// {base} is the upstream's api_base (https://graph.microsoft.com,
// https://gmail.googleapis.com unless overridden). Pure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "api/answer.h"
#include "http/wire.h"

namespace spoolgate::api {

// The largest MIME message one Graph request carries (4 MB after base64).
constexpr std::size_t kGraphRequestMax = 3'000'000;

std::string default_base(Kind k);
// An upstream's api_base, or the API's own when it has none.
std::string base_or_default(Kind k, std::string_view api_base);
// A request with "Authorization: Bearer token" and room for a JSON answer.
http::Request authorized(std::string_view token);
// {base}/v1.0/users/{mailbox}, the mailbox percent-encoded as a segment.
std::string graph_user_url(std::string_view base, std::string_view mailbox);

// The send request. mailbox: the user the API sends as (Graph: an address
// or object id; Gmail: "me" or an address). token: the access token.
// client_request_id: sent to Graph as client-request-id (it appears in
// Microsoft's logs beside their request-id).
http::Request send_request(Kind k, std::string_view base, std::string_view mailbox, std::string_view token,
                           std::string message, std::string_view client_request_id);

// What probe asks to check the token and the mailbox without sending:
// Graph GET {base}/v1.0/users/{mailbox}?$select=mail (needs User.Read.All
// or the delegated user itself); Gmail GET .../users/{user}/profile.
http::Request probe_request(Kind k, std::string_view base, std::string_view mailbox, std::string_view token);

}  // namespace spoolgate::api
