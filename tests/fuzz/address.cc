// SPDX-License-Identifier: MIT
// MAIL FROM / RCPT TO paths with ESMTP parameters. Oracles: an accepted
// path re-serialises to a path that parses to the same mailbox; parameter
// keywords are upper-case and non-empty.
#include "oracle.h"
#include "smtp/address.h"

using namespace spoolgate;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view s(reinterpret_cast<const char*>(data), size);
  for (auto kind : {smtp::PathKind::Sender, smtp::PathKind::Recipient}) {
    smtp::ParsedPath p = smtp::parse_path(s, kind);
    if (p.error != smtp::PathError::Ok) continue;
    for (const auto& param : p.params) {
      SG_REQUIRE(!param.keyword.empty());
      for (char c : param.keyword) SG_REQUIRE(!(c >= 'a' && c <= 'z'));
    }
    std::string again = "<" + p.mailbox.str() + ">";
    smtp::ParsedPath q = smtp::parse_path(again, kind);
    SG_REQUIRE(q.error == smtp::PathError::Ok);
    SG_REQUIRE(q.mailbox.str() == p.mailbox.str());
  }
  return 0;
}
