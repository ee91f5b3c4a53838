// SPDX-License-Identifier: MIT
// core/files: the few file operations every durable record shares (the
// spool's messages and states, the OAuth token store): complete writes,
// small reads, directory fsync, and replace_file(), the one way a record is
// replaced so that a crash at any instant leaves the old one or the new
// one, never a mix.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace spoolgate::files {

// Writes all of data (retrying short writes and EINTR); `what` names the
// file in the error.
Result<void> write_all(int fd, std::string_view data, const std::string& what);
// The whole file, up to `max` bytes (the rest is not read).
Result<std::string> read_small(const std::string& path, std::size_t max = std::size_t{1} << 20);
// mkdir with `mode` if missing; an existing non-directory is an error.
Result<void> ensure_dir(const std::string& path, unsigned mode = 0700);
Result<void> fsync_dir(const std::string& path);
// The names in a directory (not "." and ".."), sorted.
Result<std::vector<std::string>> names_in(const std::string& dir);
// tmp (created with `mode`, truncated), written, fsync'd, renamed over
// dst. The caller fsyncs dst's directory (alone, or shared: a group
// commit). On failure tmp is gone and dst untouched.
Result<void> replace_file(const std::string& tmp, const std::string& dst, std::string_view bytes, unsigned mode = 0600);

}  // namespace spoolgate::files
