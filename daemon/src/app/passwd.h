// SPDX-License-Identifier: MIT
// app/passwd: `spoolgate passwd -c FILE [--listener N] NAME`, adding a device
// to a listener's users_file or changing its password. The secret comes
// from standard input (one line), or is asked for twice on a terminal with
// echo off; only its argon2id hash is written, atomically (temp file, fsync,
// rename), keeping the file's other lines, mode and owner (a new file is
// 0640, owned like the spool directory when run as root). The running daemon
// is then told to reload, which reads the file again.
#pragma once

#include <istream>
#include <ostream>
#include <string>

#include "config/config.h"

namespace spoolgate::app {

// listener: "" (the only listener with a users_file) or its index in `listen`.
int passwd(const config::Config& cfg, const std::string& listener, const std::string& name, std::istream& in,
           std::ostream& out);

}  // namespace spoolgate::app
