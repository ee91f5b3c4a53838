// SPDX-License-Identifier: MIT
// https/exchange: one HTTPS exchange with libcurl, for the helper process
// (spoolgate-https) only: the daemon never links libcurl (http/wire.h says
// why). Every request is HTTPS with the peer verified (the system bundle or
// ca_file), TLS 1.2 at least, no redirect followed (a secret in a request
// body must not go where a Location header points), one deadline for the
// whole exchange, and an answer body of at most max_body. A proxy comes from
// the environment (https_proxy), as for every libcurl program. Error texts
// name the method and the URL without its query, never a header or a body.
#pragma once

#include <curl/curl.h>

#include <memory>
#include <string>

#include "core/result.h"
#include "http/wire.h"

namespace spoolgate::https {

// One request in flight: the easy handle and everything it points to.
struct Transfer {
  std::uint64_t id = 0;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  std::string what;  // "POST https://host/path", for messages
  std::size_t max_body = 0;
  bool too_large = false;
  http::Response response;
  char error[CURL_ERROR_SIZE] = {};

  Transfer() = default;
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;
  ~Transfer();
};

void global_init();
Result<std::unique_ptr<Transfer>> prepare(const http::Request& r);
Result<http::Response> finish(Transfer& t, CURLcode rc);
// "a=1&b=x%20y": an application/x-www-form-urlencoded body.
std::string form(const std::vector<std::pair<std::string, std::string>>& fields);

}  // namespace spoolgate::https
