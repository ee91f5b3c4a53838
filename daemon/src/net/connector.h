// SPDX-License-Identifier: MIT
// net/connector: outbound TCP connections. Resolves a name, tries every
// address in turn within one deadline, and hands over a Connection (with
// TCP_NODELAY) or the error; cancellable at any point without a callback.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/result.h"
#include "core/units.h"
#include "loop/loop.h"
#include "net/connection.h"

namespace spoolgate::net {

// Stops a connect still in progress: done will not run, and what is in
// flight (the name lookup, the TCP handshake) is abandoned at once, so a
// server that drops SYNs holds neither the caller nor the loop. Does nothing
// once done has run.
using CancelConnect = std::function<void()>;

// Connects to host:port (a name is resolved; every address is tried in turn)
// within `timeout`. done runs exactly once on the loop with the connection or
// the error, unless cancelled first; if the loop is torn down first it runs
// with Errc::Closed. It never runs before connect() returns.
[[nodiscard]] CancelConnect connect(loop::Loop& loop, const std::string& host, std::uint16_t port, Millis timeout,
                                    std::function<void(Result<std::unique_ptr<Connection>>)> done);

}  // namespace spoolgate::net
