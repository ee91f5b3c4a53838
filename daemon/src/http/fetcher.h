// SPDX-License-Identifier: MIT
// http/fetcher: what the daemon's users of HTTPS (the token manager, later
// the API upstreams and alert webhooks) see of it: send a request, get one
// answer on the loop, or cancel. The real one is fetch::Client (the
// spoolgate-https helper); tests give a fake.
#pragma once

#include <cstdint>
#include <functional>

#include "core/result.h"
#include "http/wire.h"

namespace spoolgate::http {

class Fetcher {
 public:
  using Done = std::function<void(Result<Response>)>;
  virtual ~Fetcher() = default;
  // done runs exactly once on the loop, never before send() returns, with
  // the answer (any HTTP status) or why there is none, unless cancel(id) or
  // the fetcher's close() comes first.
  virtual std::uint64_t send(Request r, Done done) = 0;
  // done will not run; the request is abandoned. Unknown ids are ignored.
  virtual void cancel(std::uint64_t id) = 0;
};

}  // namespace spoolgate::http
