// SPDX-License-Identifier: MIT
// The YAML configuration loader: any text gives a Config or errors, never a
// crash; a Config that loads dumps to YAML that loads again.
#include "config/config.h"
#include "oracle.h"

using namespace spoolgate;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string yaml(reinterpret_cast<const char*>(data), size);
  auto c = config::load_text(yaml, "fuzz.yaml", {});
  if (!c) {
    SG_REQUIRE(!c.error().empty());
    return 0;
  }
  std::string dumped = config::dump(*c);
  auto again = config::load_text(dumped, "dumped.yaml", {});
  SG_REQUIRE(again.has_value());
  return 0;
}
