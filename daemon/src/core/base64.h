// SPDX-License-Identifier: MIT
// core/base64: RFC 4648 base64, for SMTP AUTH (RFC 4954).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace spoolgate {

std::string base64_encode(std::string_view in);
// Strict: padding required, no white space; nullopt on any bad input.
std::optional<std::string> base64_decode(std::string_view in);

}  // namespace spoolgate
