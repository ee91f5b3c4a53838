// SPDX-License-Identifier: MIT
// A fresh directory under /tmp, removed with everything in it (unit tests).
#pragma once

#include <stdlib.h>

#include <filesystem>

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/spoolgate-test-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};
