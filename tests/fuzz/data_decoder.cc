// SPDX-License-Identifier: MIT
// DATA framing, dot-unstuffing and bare CR/LF normalisation: however the
// stream is split, the result is the same, canonical, and survives
// unstuffing and stuffing again unchanged.
#include "oracle.h"
#include "smtp/data.h"

using namespace spoolgate;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string whole(reinterpret_cast<const char*>(data), size);
  smtp::DataDecoder one;
  std::string expect;
  size_t used = one.decode(whole, expect);

  FuzzedDataProvider in(data, size);
  smtp::DataDecoder split;
  std::string got;
  size_t offset = 0, used_split = 0;
  // Split the same bytes at points taken from the input itself.
  while (offset < whole.size() && !split.done()) {
    size_t n = 1 + in.ConsumeIntegralInRange<size_t>(0, 31);
    std::string_view piece = std::string_view(whole).substr(offset, n);
    used_split += split.decode(piece, got);
    offset += piece.size();
  }
  SG_REQUIRE(one.done() == split.done());
  SG_REQUIRE(got == expect);
  SG_REQUIRE(used == used_split);
  SG_REQUIRE(fuzz::canonical(expect));
  // Re-stuffing the unstuffed text is the identity on canonical content.
  if (expect.empty() || (expect.size() >= 2 && expect.compare(expect.size() - 2, 2, "\r\n") == 0))
    SG_REQUIRE(smtp::dot_stuff(smtp::dot_unstuff(expect)) == expect);
  return 0;
}
