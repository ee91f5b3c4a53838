// SPDX-License-Identifier: MIT
#include "listener/committer.h"

namespace spoolgate::listener {

void Committer::sync(Done done) {
  waiting_.push_back(std::move(done));
  if (!in_flight_) start();
}

void Committer::start() {
  in_flight_ = true;
  ++batches_;
  auto batch = std::make_shared<std::vector<Done>>(std::move(waiting_));
  waiting_.clear();
  auto result = std::make_shared<Result<void>>();
  loop_.queue_work([spool = spool_, result] { *result = spool->sync_queue_dir(); },
                   [this, batch, result] {
                     in_flight_ = false;
                     // Renames that finished while this fsync ran are not
                     // covered by it: they go in the next batch.
                     if (!waiting_.empty()) start();
                     for (auto& d : *batch) d(*result);
                   });
}

}  // namespace spoolgate::listener
