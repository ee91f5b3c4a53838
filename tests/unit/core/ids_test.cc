// SPDX-License-Identifier: MIT
#include "core/ids.h"

#include <doctest/doctest.h>

#include "core/text.h"

using namespace spoolgate;

TEST_SUITE("core/ids") {
  TEST_CASE("queue ids are unique, increasing and file-name safe") {
    std::string prev;
    for (int i = 0; i < 1000; ++i) {
      std::string id = new_queue_id();
      CHECK(is_queue_id(id));
      CHECK(id > prev);
      prev = id;
    }
    CHECK_FALSE(is_queue_id("../../etc/passwd"));
    CHECK_FALSE(is_queue_id("K0VJA8SA6KZWNM1"));
  }
  TEST_CASE("json_quote escapes controls and invalid UTF-8") {
    CHECK(json_quote("a\"b\\c\n") == "\"a\\\"b\\\\c\\n\"");
    CHECK(json_quote(std::string("\x01", 1)) == "\"\\u0001\"");
    CHECK(json_quote("\xc3\xa9") == "\"\xc3\xa9\"");
    CHECK(json_quote("\xff") == "\"\\u00ff\"");
  }
}
