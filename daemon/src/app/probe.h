// SPDX-License-Identifier: MIT
// app/probe: `spoolgate probe` connects to an upstream exactly as delivery
// would and reports what it found: the address, TLS version and cipher, the
// certificate chain with each certificate's SPKI pin, whether verification
// passed and why not, the EHLO capabilities after TLS and, with --auth,
// whether authentication succeeds. It sends no mail.
#pragma once

#include <iosfwd>

#include "config/config.h"

namespace spoolgate::app {

// Returns the exit code: 0 only when every step passed.
int probe(const config::Config& cfg, std::size_t upstream_index, bool auth, std::ostream& out);

}  // namespace spoolgate::app
