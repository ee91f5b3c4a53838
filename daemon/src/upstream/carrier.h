// SPDX-License-Identifier: MIT
// upstream/carrier: what Delivery sees of a session that carries messages
// to one upstream, whatever it speaks: SMTP (upstream/session.h) or an
// HTTP API (upstream/api_session.h). Delivery creates it (make_carrier),
// start()s it, and deletes it in release(), which the carrier calls as its
// last act once nothing of it is out (no disk job, no connection, no
// request).
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace spoolgate::upstream {

class Carrier {
 public:
  virtual ~Carrier() = default;
  virtual void start() = 0;
  // The shutdown deadline: end now; a carried message goes back untouched.
  virtual void abort() = 0;
  // Parked (Delivery::park): carry this message, or end the hold. Only a
  // carrier that parks is asked.
  virtual void resume(std::string job) = 0;
  virtual void end_hold() = 0;
  // Which of Delivery's upstreams (by index) it talks to.
  virtual std::size_t upstream() const = 0;

 protected:
  // The one disk job a carrier may have out (STYLE.md rule 9): what it
  // does, while it is out.
  std::optional<const char*> disk_;
  // Marks job `what` as out. A second job while one is out cannot happen
  // by construction (every caller runs on the loop with no job out): if it
  // does, the process stops here rather than let two jobs write one state
  // file.
  void disk_begins(const char* what, const std::string& session);
};

}  // namespace spoolgate::upstream
