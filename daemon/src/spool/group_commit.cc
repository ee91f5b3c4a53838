// SPDX-License-Identifier: MIT
#include "spool/group_commit.h"

namespace spoolgate::spool {

void GroupCommit::sync(Done done) {
  waiting_.push_back(std::move(done));
  if (!in_flight_) start();
}

void GroupCommit::start() {
  in_flight_ = true;
  ++batches_;
  auto batch = std::make_shared<std::vector<Done>>(std::move(waiting_));
  waiting_.clear();
  auto result = std::make_shared<Result<void>>();
  off_thread_([spool = spool_, result] { *result = spool->sync_queue_dir(); },
              [this, batch, result] {
                in_flight_ = false;
                // Renames that finished while this fsync ran are not
                // covered by it: they go in the next batch.
                if (!waiting_.empty()) start();
                for (auto& d : *batch) d(*result);
              });
}

}  // namespace spoolgate::spool
