// SPDX-License-Identifier: MIT
#include "upstream/outcome.h"

#include "scheduler/scheduler.h"

namespace spoolgate::upstream {

Verdict decide(spool::Record& rec, const std::vector<std::string>& failed, const scheduler::Scheduler& sched,
               std::int64_t now_ms) {
  Verdict v;
  if (rec.all_done()) {
    v.action = failed.empty() ? Verdict::Action::Remove : Verdict::Action::Fail;
    for (const auto& f : failed) v.reason += (v.reason.empty() ? "" : "; ") + f;
    return v;
  }
  if (sched.expired(rec.id, now_ms)) return expire(rec);
  v.due = sched.due_after(rec.attempts, now_ms);
  rec.next_attempt = v.due / 1000;
  return v;
}

Verdict expire(spool::Record& rec) {
  Verdict v;
  v.action = Verdict::Action::Fail;
  v.expired = true;
  v.reason = "delivery time expired (delivery.max_lifetime) with " + std::to_string(rec.pending().size()) +
             " recipient(s) pending; last error: " + (rec.last_error.empty() ? "none" : rec.last_error);
  for (std::size_t i : rec.pending()) rec.rcpt_state[i] = spool::Record::RcptState::Failed;
  return v;
}

Persisted persist(const std::shared_ptr<spool::Spool>& spool, const spool::Record& rec, const Verdict& v,
                  const FailOptions& fo) {
  Persisted out;
  switch (v.action) {
    case Verdict::Action::Remove:
      out.result = spool->remove(rec.id);
      break;
    case Verdict::Action::Fail: {
      FailOptions o = fo;
      o.expired = v.expired;
      auto r = fail_message(spool, rec, v.reason, o);
      if (r)
        out.report = std::move(*r);
      else
        out.result = tl::unexpected(r.error());
      break;
    }
    case Verdict::Action::Defer:
      out.result = spool->write_state(rec);
      break;
  }
  return out;
}

}  // namespace spoolgate::upstream
