// SPDX-License-Identifier: MIT
#include "upstream/carrier.h"

#include <cstdlib>

#include "core/log.h"

namespace spoolgate::upstream {

void Carrier::disk_begins(const char* what, const std::string& session) {
  if (disk_) {
    log::error("panic")
        .kv("session", session)
        .kv("reason", std::string("second disk job '") + what + "' while '" + *disk_ + "' is out");
    std::abort();
  }
  disk_ = what;
}

}  // namespace spoolgate::upstream
