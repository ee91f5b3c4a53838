// SPDX-License-Identifier: MIT
// core/result: the error type every layer returns instead of throwing.
//
// Result<T> is tl::expected<T, Error>. An Error names what failed (Errc), the
// errno when a system call failed (0 otherwise) and a short human detail.
// Code running on the event loop never throws; it returns these.
#pragma once

#include <string>
#include <string_view>
#include <tl/expected.hpp>

namespace spoolgate {

enum class Errc {
  Io,            // a system call failed (see sys)
  SpoolNoSpace,  // ENOSPC / EDQUOT while writing the spool
  SpoolCorrupt,  // a spool record could not be parsed
  NotFound,      // a named object does not exist
  Invalid,       // input did not meet its grammar
  Protocol,      // a peer broke the protocol
  Timeout,       // a wait ran out
  Closed,        // the peer or we closed the connection
  Refused,       // policy said no
  TlsVerify,     // the peer's certificate failed verification (chain, name, pin, dates)
};

std::string_view to_string(Errc e);

struct Error {
  Errc code = Errc::Io;
  int sys = 0;
  std::string detail;

  // "detail: strerror(sys)" or just detail.
  std::string message() const;
};

template <class T>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> fail(Errc code, std::string detail, int sys = 0) {
  return tl::unexpected<Error>(Error{code, sys, std::move(detail)});
}

// An Error from errno: maps ENOSPC/EDQUOT to SpoolNoSpace, everything else to Io.
tl::unexpected<Error> fail_errno(std::string detail, int sys);

}  // namespace spoolgate
