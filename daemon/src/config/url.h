// SPDX-License-Identifier: MIT
// config/url: the address forms of the file. Listen addresses (host:port,
// [v6]:port, unix:/path; the host an IP literal: a listener never resolves
// a name) and upstream URLs (smtps://, smtp+starttls://, and smtp:// only
// with insecure_plaintext to a loopback host; a user part, percent-decoded,
// is the username; a password in the URL is refused).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "config/schema.h"

namespace spoolgate::config {

// host:port, [v6]:port, or (when allow_unix) unix:/path; nullopt when it is
// none of them.
std::optional<ListenAddress> parse_listen_address(std::string_view s, bool allow_unix);

// Fills u's scheme, host, port (and username from the URL's user part,
// unless set) from u.url; errors name `path`.url at `where`.
void parse_upstream_url(Parser& p, const Value& where, const std::string& path, Upstream& u);

}  // namespace spoolgate::config
