// SPDX-License-Identifier: MIT
// spool/group_commit: group commit of the queue directory.
//
// A message becomes durable when its file is fsync'd, renamed into queue/
// and queue/ itself is fsync'd (spool/spool.h). The first two steps run per
// message on worker threads, in parallel; the directory fsync is shared:
// sync() asks for a directory fsync that starts after the caller's rename.
// While one fsync is running, later callers wait and are all covered by the
// next one. done runs on the owner's thread (the loop), exactly once, with
// the fsync's result.
//
// The spool never touches the loop: the owner gives the way to run the
// fsync off its thread (`OffThread`: work on a worker, then done back on
// the owner's thread), as the daemon does with libuv's thread pool.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "core/result.h"
#include "spool/spool.h"

namespace spoolgate::spool {

class GroupCommit {
 public:
  using Done = std::function<void(Result<void>)>;
  using OffThread = std::function<void(std::function<void()> work, std::function<void()> done)>;
  GroupCommit(OffThread off_thread, std::shared_ptr<Spool> spool)
      : off_thread_(std::move(off_thread)), spool_(std::move(spool)) {}
  void sync(Done done);
  std::uint64_t batches() const { return batches_; }

 private:
  void start();
  OffThread off_thread_;
  std::shared_ptr<Spool> spool_;
  std::vector<Done> waiting_;
  bool in_flight_ = false;
  std::uint64_t batches_ = 0;
};

}  // namespace spoolgate::spool
