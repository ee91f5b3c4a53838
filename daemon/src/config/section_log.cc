// SPDX-License-Identifier: MIT
// log: how much is said, and in which form.
#include "config/sections.h"

namespace spoolgate::config {

Table log_fields(Config& c) {
  using S = std::string;
  return {
      choice("log.level", c.log.level, {{"debug", S("debug")}, {"info", S("info")}, {"warn", S("warn")},
                                        {"error", S("error")}}),
      choice("log.format", c.log.format, {{"text", S("text")}, {"json", S("json")}}),
  };
}

}  // namespace spoolgate::config
