// SPDX-License-Identifier: MIT
// auth/users: the users file read strictly and written back as it was, and
// the password check (argon2id, a success remembered, unknown names refused).
#include "auth/users.h"

#include <doctest/doctest.h>

using namespace spoolgate;

TEST_SUITE("auth/users") {
  TEST_CASE("a file of devices, comments kept; every kind of bad line refused with its line number") {
    auto h = auth::hash_password("pw");
    REQUIRE(h);
    CHECK(h->starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    std::string text = "# printers\nprinter-3f:" + *h + "\n\nscanner@lan:" + *h + "\r\n";
    auto u = auth::Users::parse(text, "devices.users");
    REQUIRE(u);
    CHECK(u->size() == 2);
    REQUIRE(u->hash_of("printer-3f"));
    CHECK(*u->hash_of("printer-3f") == *h);
    CHECK_FALSE(u->hash_of("printer"));
    CHECK(u->render() == "# printers\nprinter-3f:" + *h + "\n\nscanner@lan:" + *h + "\n");
    auto again = auth::Users::parse(u->render(), "x");
    REQUIRE(again);
    CHECK(again->render() == u->render());

    for (const auto& [bad, why] : std::vector<std::pair<std::string, std::string>>{
             {"printer\n", "devices.users:1: expected name:hash"},
             {"# ok\nprinter:plaintext-password\n", "devices.users:2: expected an argon2id hash"},
             {"print er:" + *h + "\n", "devices.users:1: a device name"},
             {":" + *h + "\n", "devices.users:1: a device name"},
             {"a:" + *h + "\na:" + *h + "\n", "devices.users:2: 'a' is listed twice"},
             {"a:$argon2i$v=19$m=4096,t=3,p=1$c2FsdA$aGFzaA\n", "expected an argon2id hash"}}) {
      auto r = auth::Users::parse(bad, "devices.users");
      REQUIRE_FALSE(r);
      CHECK_MESSAGE(r.error().message().find(why) != std::string::npos, r.error().message());
    }
    CHECK(auth::Users::parse("", "x")->size() == 0);
    // Blank lines survive a round trip, a last one without its newline too
    // (found by the users fuzz target: "\r" came back as nothing).
    for (const char* t : {"\r", "\n", "\n\n", "# c", "# c\n\n", "\n#x\r\r\n\n"}) {
      auto once = auth::Users::parse(t, "x");
      REQUIRE(once);
      CHECK(auth::Users::parse(once->render(), "x")->render() == once->render());
    }
  }

  TEST_CASE("set adds or replaces, in place") {
    auto u = *auth::Users::parse("# c\na:" + *auth::hash_password("1") + "\n", "x");
    auto h2 = *auth::hash_password("2");
    u.set("a", h2);
    u.set("b", h2);
    CHECK(u.render() == "# c\na:" + h2 + "\nb:" + h2 + "\n");
  }

  TEST_CASE("the check: right and wrong passwords, unknown names, a remembered success tied to the hash") {
    auto users =
        std::make_shared<auth::Users>(*auth::Users::parse("printer:" + *auth::hash_password("s3cret") + "\n", "x"));
    auth::Verifier v(users);
    CHECK(v.check("printer", "s3cret"));
    CHECK(v.check("printer", "s3cret"));  // remembered
    CHECK_FALSE(v.check("printer", "s3cret "));
    CHECK_FALSE(v.check("printer", ""));
    CHECK_FALSE(v.check("nobody", "s3cret"));
    CHECK_FALSE(v.check("", ""));
    // A new file (a changed password) is a new Verifier: the old success is not carried over.
    auto changed =
        std::make_shared<auth::Users>(*auth::Users::parse("printer:" + *auth::hash_password("new") + "\n", "x"));
    auth::Verifier v2(changed);
    CHECK_FALSE(v2.check("printer", "s3cret"));
    CHECK(v2.check("printer", "new"));
  }
}
