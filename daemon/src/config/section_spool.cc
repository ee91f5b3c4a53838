// SPDX-License-Identifier: MIT
// The spool: where acknowledged mail is kept, and how much of it.
#include "config/sections.h"

namespace spoolgate::config {

Table spool_fields(Config& c) {
  return {
      text("spool.dir", c.spool.dir),
      size("spool.max_bytes", c.spool.max_bytes),
      count("spool.max_messages", c.spool.max_messages),
      size("spool.min_free_disk", c.spool.min_free_disk),
  };
}

void spool_check(Check& k, Config& c) {
  if (c.spool.dir.empty()) k.err("spool.dir", "expected a directory");
}

}  // namespace spoolgate::config
