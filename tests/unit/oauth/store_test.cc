// SPDX-License-Identifier: MIT
// oauth/store: records round-trip, each save is a new generation, files and
// directory are private, a half-written temp file never shadows the record,
// and what cannot be read is an error, not an empty store.
#include "oauth/store.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <fstream>

#include "../support/temp_dir.h"

using namespace spoolgate;

namespace {

unsigned mode_of(const std::filesystem::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

}  // namespace

TEST_SUITE("oauth/store") {
  TEST_CASE("save and load round-trip; every save is the next generation; 0600 in a 0700 directory") {
    TempDir d;
    auto st = oauth::Store::open(d.path.string());
    REQUIRE(st);
    auto none = st->load("m365");
    REQUIRE(none);
    CHECK_FALSE(none->has_value());
    oauth::Stored s;
    s.client = oauth::client_fingerprint("https://login.example/token", "app-1", "scope-a", "refresh_token");
    s.refresh = "R1";
    s.access = "A1";
    s.expires_at = 1'800'000'000'000;
    s.refreshed_at = 1'799'996'400'000;
    REQUIRE(st->save("m365", s));
    CHECK(s.generation == 1);
    s.refresh = "R2";
    REQUIRE(st->save("m365", s));
    CHECK(s.generation == 2);
    auto back = st->load("m365");
    REQUIRE(back);
    REQUIRE(back->has_value());
    CHECK((*back)->refresh == "R2");
    CHECK((*back)->access == "A1");
    CHECK((*back)->expires_at == s.expires_at);
    CHECK((*back)->refreshed_at == s.refreshed_at);
    CHECK((*back)->client == s.client);
    CHECK((*back)->generation == 2);
    CHECK(mode_of(d.path / "oauth") == 0700);
    CHECK(mode_of(d.path / "oauth" / "m365.json") == 0600);
    REQUIRE(st->remove("m365"));
    auto gone = st->load("m365");
    REQUIRE(gone);
    CHECK_FALSE(gone->has_value());
  }

  TEST_CASE("a temp file left by a crash mid-save does not change what is loaded") {
    TempDir d;
    auto st = oauth::Store::open(d.path.string());
    REQUIRE(st);
    oauth::Stored s;
    s.refresh = "old";
    REQUIRE(st->save("g", s));
    std::ofstream(d.path / "oauth" / "g.json.tmp.12345") << "{\"format\":1,\"refresh_tok";
    auto back = st->load("g");
    REQUIRE(back);
    REQUIRE(back->has_value());
    CHECK((*back)->refresh == "old");
  }

  TEST_CASE("a corrupt record, a newer format and a bad key are errors") {
    TempDir d;
    auto st = oauth::Store::open(d.path.string());
    REQUIRE(st);
    std::ofstream(d.path / "oauth" / "bad.json") << "{\"format\":1,";
    auto bad = st->load("bad");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().code == Errc::SpoolCorrupt);
    std::ofstream(d.path / "oauth" / "new.json") << "{\"format\":2}";
    auto newer = st->load("new");
    REQUIRE_FALSE(newer);
    CHECK(newer.error().detail.find("format 2") != std::string::npos);
    for (const char* k : {"", "../x", ".hidden", "a/b", "a b"}) {
      CHECK_FALSE(oauth::Store::valid_key(k));
      CHECK_FALSE(st->load(k));
    }
    CHECK(oauth::Store::valid_key("m365-app_1.prod"));
  }

  TEST_CASE("decode(encode(s)) is s; no field is optional") {
    oauth::Stored s;
    s.client = "c";
    s.refresh = "r";
    s.access = "a";
    s.expires_at = 5;
    s.refreshed_at = 4;
    s.generation = 9;
    auto back = oauth::decode(oauth::encode(s));
    REQUIRE(back);
    CHECK(back->generation == 9);
    CHECK(back->refresh == "r");
    CHECK_FALSE(oauth::decode("{\"format\":1,\"generation\":1}"));
    CHECK_FALSE(oauth::decode("[]"));
  }
}
