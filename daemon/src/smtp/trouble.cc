// SPDX-License-Identifier: MIT
#include "smtp/trouble.h"

#include <string>

#include "core/text.h"
#include "smtp/dsn.h"

namespace spoolgate::smtp {

std::string_view to_string(Trouble t) {
  switch (t) {
    case Trouble::Positive:
      return "positive";
    case Trouble::Temporary:
      return "temporary";
    case Trouble::Permanent:
      return "permanent";
    case Trouble::Throttled:
      return "throttled";
    case Trouble::Misconfigured:
      return "misconfigured";
    case Trouble::Quota:
      return "quota";
  }
  return "?";
}

Trouble classify(const Reply& r) {
  if (r.positive()) return Trouble::Positive;
  std::string text = r.summary();
  std::string low = lower(text);
  std::string st = status_of(text);  // "5.7.57", or "" without an enhanced code
  std::string_view detail = st.size() > 2 ? std::string_view(st).substr(2) : std::string_view();
  auto has = [&](std::string_view needle) { return low.find(needle) != std::string::npos; };
  if (r.code == 530 || r.code == 535) return Trouble::Misconfigured;  // rows 1, 2
  if (detail == "7.57" || detail == "7.30" || detail == "7.139" || detail == "7.12")
    return Trouble::Misconfigured;                                                           // rows 3-5
  if (detail == "7.60" || has("sendasdenied")) return Trouble::Misconfigured;                // row 6
  if (has("quotaexceeded")) return Trouble::Quota;                                           // row 7
  if (st == "5.4.5" || has("sending limit") || has("sending quota")) return Trouble::Quota;  // row 8
  if (has("daily message quota") || has("daily smtp relay limit")) return Trouble::Quota;    // row 8
  if (r.temporary() &&
      (r.code == 432 || st == "4.7.0" || st == "4.3.2" || has("maximum sending rate") || has("relay limit exceeded")))
    return Trouble::Throttled;                                     // row 9
  return r.temporary() ? Trouble::Temporary : Trouble::Permanent;  // rows 10, 11
}

}  // namespace spoolgate::smtp
