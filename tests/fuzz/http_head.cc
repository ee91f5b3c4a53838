// SPDX-License-Identifier: MIT
// The metrics endpoint's request handling: header lookup, the Host check
// (DNS rebinding) and the whole reply, for any request head; and the
// browser sign-in's reading of the same head (request_line, query_param).
// Oracles: every reply is one well-formed HTTP/1.1 response whose
// Content-Length is the body's length (no body for HEAD); a header value is
// part of the head and holds no line break; a Host accepted as ours holds
// only the characters of an address, a port or a host name; a request line
// read is a part of the head without space or line break in its method and
// none in its target; a query value found is no longer than the target and
// comes back the same through percent_encode.
#include <string>

#include "app/metrics.h"
#include "app/request_server.h"
#include "core/text.h"
#include "oracle.h"

using namespace spoolgate;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string head(reinterpret_cast<const char*>(data), size);
  if (auto host = app::header_value(head, "host")) {
    SG_REQUIRE(head.find(*host) != std::string::npos);
    SG_REQUIRE(host->find_first_of("\r\n") == std::string::npos);
    if (app::host_is_ours(*host, "relay.test"))
      SG_REQUIRE(host->find_first_not_of("0123456789abcdefABCDEFghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ.:-[]_") ==
                 std::string::npos);
  }
  if (auto line = app::request_line(head)) {
    SG_REQUIRE(head.starts_with(line->method + " " + line->target + " HTTP/"));
    SG_REQUIRE(line->method.find_first_of(" \r\n") == std::string::npos);
    SG_REQUIRE(line->target.find_first_of(" \r\n") == std::string::npos);
    for (const char* name : {"code", "state", "error"}) {
      auto v = query_param(line->target, name);
      if (!v) continue;
      SG_REQUIRE(v->size() <= line->target.size());
      SG_REQUIRE(query_param("/?" + std::string(name) + "=" + percent_encode(*v), name) == *v);
    }
  }
  app::Snapshot s;
  s.hostname = "relay.test";
  std::string r = app::http_reply(head, s);
  SG_REQUIRE(r.starts_with("HTTP/1.1 "));
  std::size_t end = r.find("\r\n\r\n");
  SG_REQUIRE(end != std::string::npos);
  std::size_t cl = r.find("\r\nContent-Length: ");
  SG_REQUIRE(cl != std::string::npos && cl < end);
  std::size_t n = std::stoul(r.substr(cl + 18, r.find("\r\n", cl + 2) - cl - 18));
  std::size_t body = r.size() - end - 4;
  SG_REQUIRE(body == n || (body == 0 && head.starts_with("HEAD ")));
  return 0;
}
