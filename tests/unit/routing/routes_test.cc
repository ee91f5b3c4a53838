// SPDX-License-Identifier: MIT
// routing/routes: rules, first match wins; shadowed rules found.
#include "routing/routes.h"

#include <doctest/doctest.h>

using namespace spoolgate;
using namespace spoolgate::routing;

namespace {

Cidr net(const char* s) { return *Cidr::parse(s); }

Table example() {
  // upstreams: 0 m365, 1 ses, 2 lab
  std::vector<Rule> rules = {
      {{"*@invoices.example.com"}, {}, {}, {}, {1}},
      {{}, {"partner.example", "*.partner.example"}, {}, {}, {1, 0}},
      {{}, {}, {net("10.1.0.0/16")}, {}, {2}},
      {{}, {}, {}, {"scanner"}, {2, 0}},
      {{"<>"}, {}, {}, {}, {0}},
      {{}, {}, {}, {}, {0}},
  };
  return Table(rules, {"m365", "ses", "lab"});
}

}  // namespace

TEST_SUITE("routing/routes") {
  TEST_CASE("glob: '*' is any run, the rest case-insensitive") {
    CHECK(glob_match("*@Example.com", "a.b@example.COM"));
    CHECK(glob_match("*", ""));
    CHECK(glob_match("a*b*c", "aXXbYYc"));
    CHECK(glob_match("*.partner.example", "eu.partner.example"));
    CHECK_FALSE(glob_match("*.partner.example", "partner.example"));
    CHECK_FALSE(glob_match("alerts@example.com", "alerts@example.com.evil"));
    CHECK_FALSE(glob_match("a*b", "ac"));
  }
  TEST_CASE("first match wins; keys ANDed, items ORed") {
    Table t = example();
    CHECK_FALSE(t.trivial());
    auto rule = [&](std::string_view sender, std::string_view client, std::string_view device, std::string_view rcpt) {
      return t.match(Mail{sender, client, device}, rcpt);
    };
    CHECK(rule("billing@invoices.example.com", "10.1.2.3", "", "x@partner.example") == 0u);
    CHECK(t.key(0) == "ses");
    CHECK(rule("ops@example.com", "10.1.2.3", "", "x@eu.partner.example") == 1u);
    CHECK(t.key(1) == "ses,m365");
    CHECK(t.group(1) == std::vector<std::size_t>{1, 0});
    CHECK(rule("ops@example.com", "10.1.2.3", "", "x@example.net") == 2u);
    CHECK(rule("ops@example.com", "unix", "", "x@example.net") == 5u);  // no address: no client rule
    CHECK(rule("ops@example.com", "192.0.2.1", "scanner", "x@example.net") == 3u);
    CHECK(rule("", "192.0.2.1", "", "x@example.net") == 4u);  // the null sender is "<>"
    CHECK(rule("ops@example.com", "192.0.2.1", "", "x@example.net") == 5u);
    REQUIRE(t.group_of("ses,m365"));
    CHECK(*t.group_of("ses,m365") == std::vector<std::size_t>{1, 0});
    CHECK(t.group_of("gone") == nullptr);
  }
  TEST_CASE("no default: a recipient no rule takes has no route") {
    Table t({{{}, {"partner.example"}, {}, {}, {0}}}, {"m365"});
    CHECK(t.match(Mail{"a@b.example", "127.0.0.1", ""}, "x@partner.example") == 0u);
    CHECK_FALSE(t.match(Mail{"a@b.example", "127.0.0.1", ""}, "x@other.example"));
    CHECK(Table().trivial());
  }
  TEST_CASE("route strings") {
    CHECK(route_keys("").empty());
    CHECK(route_keys("ses;ses,m365") == std::vector<std::string_view>{"ses", "ses,m365"});
    CHECK(join_route({"ses", "ses,m365"}) == "ses;ses,m365");
  }
  TEST_CASE("a rule an earlier one covers is found; one it does not cover is not") {
    std::vector<Rule> rules = {
        {{"*@example.com"}, {}, {}, {}, {0}},
        {{"alerts@example.com"}, {}, {}, {}, {1}},                     // covered by 0
        {{"alerts@example.com", "x@other.example"}, {}, {}, {}, {1}},  // not all covered
        {{}, {}, {net("10.0.0.0/8")}, {}, {0}},
        {{}, {"a.example"}, {net("10.1.0.0/16")}, {}, {1}},  // covered by 3
        {{}, {}, {net("192.168.0.0/16")}, {}, {1}},
        {{}, {}, {}, {}, {0}},
        {{}, {}, {}, {"scanner"}, {1}},  // after the default
    };
    CHECK_FALSE(shadowed_by(rules, 0));
    CHECK(shadowed_by(rules, 1) == 0u);
    CHECK_FALSE(shadowed_by(rules, 2));
    CHECK_FALSE(shadowed_by(rules, 3));
    CHECK(shadowed_by(rules, 4) == 3u);
    CHECK_FALSE(shadowed_by(rules, 5));
    CHECK_FALSE(shadowed_by(rules, 6));
    CHECK(shadowed_by(rules, 7) == 6u);
  }
}
