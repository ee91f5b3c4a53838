// SPDX-License-Identifier: MIT
#include "https/exchange.h"

#include <mutex>

#include "core/text.h"

namespace spoolgate::https {

using http::Request;
using http::Response;

Transfer::~Transfer() {
  if (easy) curl_easy_cleanup(easy);
  curl_slist_free_all(headers);
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

namespace {

// The URL as it may appear in a message: no query, no user info.
std::string shown(const std::string& url) {
  std::string s = url.substr(0, url.find_first_of("?#"));
  auto scheme = s.find("://");
  auto at = s.find('@', scheme == std::string::npos ? 0 : scheme + 3);
  auto slash = s.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  if (scheme != std::string::npos && at != std::string::npos && (slash == std::string::npos || at < slash))
    s.erase(scheme + 3, at + 1 - (scheme + 3));
  return s;
}

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::size_t len = size * n;
  if (t->response.body.size() + len > t->max_body) {
    t->too_large = true;
    return 0;  // CURLE_WRITE_ERROR
  }
  t->response.body.append(data, len);
  return len;
}

// Header lines of every response come here, interim ones (100 Continue)
// too: a status line starts the list afresh, so the final one's remain.
std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::size_t len = size * n;
  std::string_view line(data, len);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.starts_with("HTTP/")) {
    t->response.headers.clear();
    return len;
  }
  auto colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0 || len > http::kMaxHeaderLine ||
      t->response.headers.size() >= http::kMaxHeaders)
    return len;
  t->response.headers.push_back(lower(line.substr(0, colon)) + ": " + std::string(trim(line.substr(colon + 1))));
  return len;
}

}  // namespace

Result<std::unique_ptr<Transfer>> prepare(const Request& r) {
  global_init();
  auto t = std::make_unique<Transfer>();
  t->what = r.method + " " + shown(r.url);
  t->max_body = r.max_body;
  if (r.url.compare(0, 8, "https://") != 0) return fail(Errc::Invalid, t->what + ": only https:// URLs are used");
  t->easy = curl_easy_init();
  if (!t->easy) return fail(Errc::Io, t->what + ": curl_easy_init failed");
  CURL* e = t->easy;
  curl_easy_setopt(e, CURLOPT_URL, r.url.c_str());
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(e, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
  if (!r.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, r.ca_file.c_str());
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(r.timeout.count()));
  curl_easy_setopt(e, CURLOPT_USERAGENT, "spoolgate/" SPOOLGATE_VERSION);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());
  if (r.method == "GET") {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else {
    if (r.method != "POST") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r.method.c_str());
    std::string body = r.form.empty() ? r.body : form(r.form);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body.c_str());
  }
  if (!r.form.empty()) t->headers = curl_slist_append(t->headers, "Content-Type: application/x-www-form-urlencoded");
  for (const auto& h : r.headers) t->headers = curl_slist_append(t->headers, h.c_str());
  t->headers = curl_slist_append(t->headers, "Expect:");  // no 100-continue round trip
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
  return t;
}

Result<Response> finish(Transfer& t, CURLcode rc) {
  if (rc == CURLE_OK) {
    curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &t.response.status);
    const char* ct = nullptr;
    if (curl_easy_getinfo(t.easy, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct) t.response.content_type = ct;
    return std::move(t.response);
  }
  if (t.too_large)
    return fail(Errc::Protocol, t.what + ": answer larger than " + std::to_string(t.max_body) + " bytes");
  std::string why = t.error[0] ? t.error : curl_easy_strerror(rc);
  Errc code = Errc::Io;
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
      code = Errc::Timeout;
      break;
    case CURLE_PEER_FAILED_VERIFICATION:
      code = Errc::TlsVerify;
      break;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
      code = Errc::Closed;
      break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
      code = Errc::Protocol;
      break;
    default:
      break;
  }
  return fail(code, t.what + ": " + why);
}

std::string form(const std::vector<std::pair<std::string, std::string>>& fields) {
  global_init();
  std::string out;
  for (const auto& [k, v] : fields) {
    if (!out.empty()) out += '&';
    for (const std::string* s : {&k, &v}) {
      char* esc = curl_easy_escape(nullptr, s->data(), static_cast<int>(s->size()));
      out += esc ? esc : "";
      curl_free(esc);
      if (s == &k) out += '=';
    }
  }
  return out;
}

}  // namespace spoolgate::https
