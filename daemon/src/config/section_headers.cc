// SPDX-License-Identifier: MIT
// headers: what is added to or rewritten in a message's header.
#include "config/sections.h"

namespace spoolgate::config {

Table headers_fields(Config& c) {
  return {
      boolean("headers.add_missing", c.headers.add_missing),
      text("headers.rewrite_from", c.headers.rewrite_from),
  };
}

void headers_check(Check& k, Config& c) {
  if (c.headers.rewrite_from.empty()) return;
  std::string_view r = c.headers.rewrite_from;
  size_t at = r.find('@');
  if (at == 0 || at == std::string_view::npos || at + 1 == r.size() ||
      r.find_first_of(" <>\"\r\n\t,;") != std::string_view::npos)
    k.err("headers.rewrite_from",
          "expected a plain mailbox like alerts@example.com, got '" + c.headers.rewrite_from + "'");
}



}  // namespace spoolgate::config
