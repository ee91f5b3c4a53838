// SPDX-License-Identifier: MIT
// core/text: the URL query helpers of the browser sign-in.
#include "core/text.h"

#include <doctest/doctest.h>

using namespace spoolgate;

TEST_SUITE("core/text") {
  TEST_CASE("percent_encode keeps only the unreserved characters") {
    CHECK(percent_encode("AZaz09-._~") == "AZaz09-._~");
    CHECK(percent_encode("http://127.0.0.1:8080") == "http%3A%2F%2F127.0.0.1%3A8080");
    CHECK(percent_encode("a b+c&d=e") == "a%20b%2Bc%26d%3De");
    CHECK(percent_encode(std::string("\0\xff", 2)) == "%00%FF");
  }
  TEST_CASE("query_param finds and decodes one value of a request target") {
    std::string t = "/?state=s1&code=a%2Fb+c&scope=x&empty=&flag";
    CHECK(query_param(t, "state") == "s1");
    CHECK(query_param(t, "code") == "a/b c");
    CHECK(query_param(t, "empty") == "");
    CHECK(query_param(t, "flag") == "");
    CHECK_FALSE(query_param(t, "missing"));
    CHECK_FALSE(query_param(t, "cod"));  // names match whole
    CHECK_FALSE(query_param("/no-query", "code"));
    CHECK(query_param("/?code=1#code=2", "code") == "1");
    CHECK(query_param("/?code=1&code=2", "code") == "1");  // the first one
    CHECK_FALSE(query_param("/?code=%2", "code"));         // a cut escape
    CHECK_FALSE(query_param("/?code=%zz", "code"));
    CHECK(query_param("/?code=%00", "code") == std::string("\0", 1));
    for (std::string v : {"", "plain", "a b&c=d%e+f", "\r\n\x01\xfe"})
      CHECK(query_param("/?x=" + percent_encode(v), "x") == v);
  }
}
