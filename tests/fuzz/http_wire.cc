// SPDX-License-Identifier: MIT
// The frames between the daemon and spoolgate-https (http/wire.h): any bytes,
// fed in two pieces split where the input's first byte says.
// Oracle: a frame decoded encodes to bytes that decode to the same frame
// (encode is a fixed point after one round); the decoder never holds more
// than it was fed; once it reports an error it reports only errors.
#include <string>

#include "http/wire.h"
#include "oracle.h"

using namespace spoolgate;

namespace {

bool same(const http::Frame& a, const http::Frame& b) {
  if (a.kind != b.kind || a.id != b.id) return false;
  if (a.kind == http::Frame::Kind::Request) {
    const auto &x = a.request, &y = b.request;
    return x.url == y.url && x.method == y.method && x.headers == y.headers && x.body == y.body &&
           x.form == y.form && x.ca_file == y.ca_file && x.timeout == y.timeout && x.max_body == y.max_body;
  }
  if (a.kind == http::Frame::Kind::Answer) {
    if (bool(a.answer) != bool(b.answer)) return false;
    if (!a.answer) return a.answer.error().code == b.answer.error().code;
    return a.answer->status == b.answer->status && a.answer->content_type == b.answer->content_type &&
           a.answer->body == b.answer->body && a.answer->headers == b.answer->headers;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string in(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::size_t split = data[0] % (in.size() + 1);
  http::Decoder d;
  d.feed(std::string_view(in).substr(0, split));
  bool broken = false;
  auto check = [&] {
    while (auto f = d.next()) {
      SG_REQUIRE(d.buffered() <= in.size());
      if (!*f) {
        broken = true;
        auto again = d.next();
        SG_REQUIRE(again && !*again);
        return;
      }
      SG_REQUIRE(!broken);
      std::string once = http::encode(**f);
      http::Decoder d2;
      d2.feed(once);
      auto g = d2.next();
      SG_REQUIRE(g && *g);
      SG_REQUIRE(http::encode(**g) == once);
      http::Decoder d3;
      d3.feed(http::encode(**g));
      auto h = d3.next();
      SG_REQUIRE(h && *h && same(**g, **h));
    }
  };
  check();
  if (broken) return 0;
  d.feed(std::string_view(in).substr(split));
  check();
  return 0;
}
