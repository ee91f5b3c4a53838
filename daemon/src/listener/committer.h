// SPDX-License-Identifier: MIT
// listener/committer: group commit of the queue directory.
//
// A message becomes durable when its file is fsync'd, renamed into queue/
// and queue/ itself is fsync'd (spool/spool.h). The first two steps run per
// message on worker threads, in parallel; the directory fsync is shared:
// sync() asks for a directory fsync that starts after the caller's rename.
// While one fsync is running, later callers wait and are all covered by the
// next one. done runs on the loop, exactly once, with the fsync's result.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "core/result.h"
#include "loop/loop.h"
#include "spool/spool.h"

namespace spoolgate::listener {

class Committer {
 public:
  using Done = std::function<void(Result<void>)>;
  Committer(loop::Loop& loop, std::shared_ptr<spool::Spool> spool) : loop_(loop), spool_(std::move(spool)) {}
  void sync(Done done);
  std::uint64_t batches() const { return batches_; }

 private:
  void start();
  loop::Loop& loop_;
  std::shared_ptr<spool::Spool> spool_;
  std::vector<Done> waiting_;
  bool in_flight_ = false;
  std::uint64_t batches_ = 0;
};

}  // namespace spoolgate::listener
