// SPDX-License-Identifier: MIT
// smtp/address: RFC 5321 paths and mailboxes, ESMTP parameters.
//
// Parses the argument of MAIL FROM: / RCPT TO: into a Mailbox and a list of
// parameters. The envelope we store and later send is re-serialised from the
// parsed values (Mailbox::str()), never copied from the peer's bytes, so what
// leaves is always well-formed. Source routes are accepted and ignored
// (RFC 5321 4.1.1.3, appendix C). UTF-8 is accepted in local parts and domains
// (RFC 6531) and flagged, so the caller can insist on SMTPUTF8.
// Trouble is reported as a PathError; nothing throws.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spoolgate::smtp {

struct Mailbox {
  std::string local;   // unquoted form: quotes and backslash escapes removed
  std::string domain;  // empty only for <> and <Postmaster>
  bool utf8 = false;   // local or domain holds non-ASCII

  bool null() const { return local.empty() && domain.empty(); }
  // Canonical wire form without angle brackets: the local part quoted only when
  // it is not a dot-string. "" for the null path.
  std::string str() const;
};

struct Param {
  std::string keyword;  // upper-case
  std::optional<std::string> value;
};

enum class PathError { Ok, Syntax, TooLong, BadUtf8, BadParam };

struct ParsedPath {
  PathError error = PathError::Ok;
  Mailbox mailbox;
  std::vector<Param> params;
};

enum class PathKind { Sender, Recipient };

// `s` is what follows "FROM:" or "TO:" (leading spaces tolerated, angle
// brackets optional for a bare mailbox as legacy devices send it).
ParsedPath parse_path(std::string_view s, PathKind kind);

// RFC 5321 4.1.2 Dot-string check, used to decide whether to quote.
bool is_dot_string(std::string_view local);

// The sender is one of `list` (case-insensitive): an address, or "@b" for
// any address at b. The null sender ("") matches nothing.
bool sender_listed(const std::vector<std::string>& list, std::string_view sender);

}  // namespace spoolgate::smtp
