// SPDX-License-Identifier: MIT
#include "core/result.h"

#include <cerrno>
#include <cstring>
#include <system_error>

namespace spoolgate {

std::string_view to_string(Errc e) {
  switch (e) {
    case Errc::Io:
      return "io";
    case Errc::SpoolNoSpace:
      return "spool_no_space";
    case Errc::SpoolCorrupt:
      return "spool_corrupt";
    case Errc::NotFound:
      return "not_found";
    case Errc::Invalid:
      return "invalid";
    case Errc::Protocol:
      return "protocol";
    case Errc::Timeout:
      return "timeout";
    case Errc::Closed:
      return "closed";
    case Errc::Refused:
      return "refused";
    case Errc::TlsVerify:
      return "tls_verify";
  }
  return "unknown";
}

std::string Error::message() const {
  if (sys == 0) return detail;
  return detail + ": " + std::system_category().message(sys);
}

tl::unexpected<Error> fail_errno(std::string detail, int sys) {
  Errc code = (sys == ENOSPC || sys == EDQUOT) ? Errc::SpoolNoSpace : Errc::Io;
  return fail(code, std::move(detail), sys);
}

}  // namespace spoolgate
