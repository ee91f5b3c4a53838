// SPDX-License-Identifier: MIT
// AUTH challenge decoding: base64 (334 challenges, the XOAUTH2 error JSON).
// Oracle: whatever decodes re-encodes to text that decodes to the same bytes.
#include "core/base64.h"
#include "oracle.h"

using namespace spoolgate;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view s(reinterpret_cast<const char*>(data), size);
  auto d = base64_decode(s);
  if (d) SG_REQUIRE(base64_decode(base64_encode(*d)) == d);
  SG_REQUIRE(base64_decode(base64_encode(s)) == std::string(s));
  return 0;
}
