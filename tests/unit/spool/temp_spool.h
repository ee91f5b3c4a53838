// SPDX-License-Identifier: MIT
// A spool in a fresh directory under /tmp, removed with it (unit tests).
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>

#include "spool/spool.h"

struct TempDir {
  std::filesystem::path path;
  std::shared_ptr<spoolgate::spool::Spool> spool;
  TempDir() {
    char tmpl[] = "/tmp/spoolgate-test-XXXXXX";
    path = ::mkdtemp(tmpl);
    auto s = spoolgate::spool::Spool::open(path.string());
    REQUIRE(s);
    spool = *s;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};
