// SPDX-License-Identifier: MIT
// app/request_server: the HTTP request line both HTTP users read, and the
// answer they write.
#include "app/request_server.h"

#include <doctest/doctest.h>

using namespace spoolgate::app;

TEST_SUITE("app/request_server") {
  TEST_CASE("request_line: method and target of a well-formed head, nothing for a malformed one") {
    auto l = request_line("GET /?code=a&state=b HTTP/1.1\r\nHost: 127.0.0.1:5000");
    REQUIRE(l);
    CHECK(l->method == "GET");
    CHECK(l->target == "/?code=a&state=b");
    CHECK(request_line("HEAD /metrics HTTP/1.0"));
    CHECK_FALSE(request_line("GET /\r\n"));  // no version
    CHECK_FALSE(request_line("GET / FTP/1.1"));
    CHECK_FALSE(request_line("GET / HTTP/1.1\nHost: x"));          // a bare LF
    CHECK_FALSE(request_line("GET / HTTP/1.1\r\nHost: x\ry: z"));  // a bare CR
    CHECK_FALSE(request_line(""));
  }
  TEST_CASE("http_response: a whole answer whose length is the body's; HEAD gets none") {
    CHECK(http_response("200 OK", "text/plain", "hi\n") ==
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nCache-Control: no-store\r\n"
          "Connection: close\r\n\r\nhi\n");
    std::string head = http_response("200 OK", "text/plain", "hi\n", false);
    CHECK(head.ends_with("Content-Length: 3\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"));
  }
}
