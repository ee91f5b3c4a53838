// SPDX-License-Identifier: MIT
// api/graph_draft: the requests of Graph's large-message path, in order,
// as Microsoft documents them.
#include "api/graph_draft.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "core/base64.h"

using namespace spoolgate;

namespace {

api::Split two_files() {
  api::Split s;
  s.draft = "Subject: big\r\n\r\ntext\r\n";
  api::Carved small;
  small.attachment = {"a.txt", "text/plain", "", false, std::string(1000, 'a')};
  api::Carved large;
  large.attachment = {"scan.pdf", "application/pdf", "", false, std::string(api::kGraphChunk * 2 + 5, 'p')};
  s.carved.push_back(small);
  s.carved.push_back(large);
  return s;
}

http::Response answer(long status, std::string body = "") {
  http::Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

bool has(const http::Request& r, const std::string& h) {
  return std::find(r.headers.begin(), r.headers.end(), h) != r.headers.end();
}

}  // namespace

TEST_SUITE("api/graph_draft") {
  TEST_CASE("draft, a small file, an upload session in ranges, send") {
    api::GraphDraft g(two_files(), "https://graph.example/", "relay@contoso.com", "a1-K1");
    CHECK_FALSE(g.discard("t"));  // no draft yet

    auto r = g.request("t");
    CHECK(g.step() == "draft");
    CHECK(r.method == "POST");
    CHECK(r.url == "https://graph.example/v1.0/users/relay@contoso.com/messages");
    CHECK(r.body == base64_encode("Subject: big\r\n\r\ntext\r\n"));
    CHECK(has(r, "Content-Type: text/plain"));
    CHECK(has(r, "Authorization: Bearer t"));
    CHECK(has(r, "client-request-id: a1-K1"));
    CHECK(g.answered(answer(201, R"({"id":"AAMk=/x"})")) == api::GraphDraft::Next::More);

    r = g.request("t");
    CHECK(g.step() == "attachment 1/2");
    CHECK(r.url == "https://graph.example/v1.0/users/relay@contoso.com/messages/AAMk%3D%2Fx/attachments");
    auto j = nlohmann::json::parse(r.body);
    CHECK(j["@odata.type"] == "#microsoft.graph.fileAttachment");
    CHECK(j["name"] == "a.txt");
    CHECK(j["contentBytes"] == base64_encode(std::string(1000, 'a')));
    CHECK(g.answered(answer(201, "{}")) == api::GraphDraft::Next::More);

    r = g.request("t");
    CHECK(r.url ==
          "https://graph.example/v1.0/users/relay@contoso.com/messages/AAMk%3D%2Fx/attachments/createUploadSession");
    j = nlohmann::json::parse(r.body);
    CHECK(j["AttachmentItem"]["attachmentType"] == "file");
    CHECK(j["AttachmentItem"]["name"] == "scan.pdf");
    CHECK(j["AttachmentItem"]["size"] == api::kGraphChunk * 2 + 5);
    CHECK(g.answered(answer(201, R"({"uploadUrl":"https://outlook.example/up?authtoken=x"})")) ==
          api::GraphDraft::Next::More);

    std::size_t total = api::kGraphChunk * 2 + 5;
    for (std::size_t from = 0; from < total; from += api::kGraphChunk) {
      r = g.request("t");
      std::size_t n = std::min(api::kGraphChunk, total - from);
      CHECK(r.method == "PUT");
      CHECK(r.url == "https://outlook.example/up?authtoken=x");
      CHECK(r.body.size() == n);
      CHECK(has(r, "Content-Range: bytes " + std::to_string(from) + "-" + std::to_string(from + n - 1) + "/" +
                       std::to_string(total)));
      CHECK_FALSE(has(r, "Authorization: Bearer t"));  // the URL is pre-authenticated
      CHECK(g.answered(answer(from + n == total ? 201 : 200)) == api::GraphDraft::Next::More);
    }

    CHECK(g.sending());
    r = g.request("t");
    CHECK(r.url == "https://graph.example/v1.0/users/relay@contoso.com/messages/AAMk%3D%2Fx/send");
    CHECK(r.body.empty());
    auto del = g.discard("t");
    REQUIRE(del);
    CHECK(del->method == "DELETE");
    CHECK(del->url == "https://graph.example/v1.0/users/relay@contoso.com/messages/AAMk%3D%2Fx");
    CHECK(g.answered(answer(202)) == api::GraphDraft::Next::Sent);
    CHECK_FALSE(g.discard("t"));  // sent: nothing to delete
  }

  TEST_CASE("answers without what the next step needs") {
    api::GraphDraft g(two_files(), "https://graph.example", "m", "");
    CHECK(g.answered(answer(201, "not json")) == api::GraphDraft::Next::Malformed);
    CHECK(g.reason().find("without its id") != std::string::npos);
    api::GraphDraft h(two_files(), "https://graph.example", "m", "");
    REQUIRE(h.answered(answer(201, R"({"id":"d"})")) == api::GraphDraft::Next::More);
    REQUIRE(h.answered(answer(201)) == api::GraphDraft::Next::More);
    CHECK(h.answered(answer(201, R"({"uploadUrl":"http://plain.example/up"})")) == api::GraphDraft::Next::Malformed);
    CHECK(h.reason().find("https uploadUrl") != std::string::npos);
  }
}
