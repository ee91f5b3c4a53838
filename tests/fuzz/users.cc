// SPDX-License-Identifier: MIT
// auth/users: any text as a users file.
// Oracles: a file that parses holds only valid names and argon2id-shaped
// hashes, renders to a text that parses to the same rendering (nothing is
// lost or invented), and every name it lists has its hash; a refusal names
// the file and a line.
#include "auth/users.h"

#include <string>

#include "oracle.h"

using namespace spoolgate;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto u = auth::Users::parse(text, "f");
  if (!u) {
    SG_REQUIRE(u.error().message().starts_with("f:"));
    return 0;
  }
  std::string r = u->render();
  auto again = auth::Users::parse(r, "f");
  SG_REQUIRE(again && again->render() == r && again->size() == u->size());
  std::size_t names = 0;
  for (std::size_t pos = 0; pos < r.size();) {
    std::size_t end = r.find('\n', pos);
    std::string line = r.substr(pos, end - pos);
    pos = end + 1;
    std::size_t colon = line.find(':');
    std::string t = line;
    t.erase(0, t.find_first_not_of(" \t"));
    if (t.empty() || t[0] == '#') continue;
    SG_REQUIRE(colon != std::string::npos);
    std::string name = line.substr(0, colon);
    SG_REQUIRE(auth::valid_name(name));
    SG_REQUIRE(u->hash_of(name) && auth::is_password_hash(*u->hash_of(name)));
    ++names;
  }
  SG_REQUIRE(names == u->size());
  return 0;
}
