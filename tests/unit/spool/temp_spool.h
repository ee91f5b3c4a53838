// SPDX-License-Identifier: MIT
// A spool in a fresh TempDir (unit tests).
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>

#include "../support/temp_dir.h"
#include "spool/spool.h"

struct TempSpool : TempDir {
  std::shared_ptr<spoolgate::spool::Spool> spool;
  TempSpool() {
    auto s = spoolgate::spool::Spool::open(path.string());
    REQUIRE(s);
    spool = *s;
  }
};
