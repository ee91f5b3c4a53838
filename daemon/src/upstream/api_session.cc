// SPDX-License-Identifier: MIT
#include "upstream/api_session.h"

#include <cstdlib>
#include <utility>

#include "api/attachments.h"
#include "api/recipients.h"
#include "api/request.h"
#include "core/clock.h"
#include "core/ids.h"
#include "core/log.h"
#include "smtp/headers.h"
#include "upstream/policy.h"

namespace spoolgate::upstream {
namespace {

constexpr std::size_t kReadChunk = 1024 * std::size_t{1024};

}  // namespace

ApiSession::ApiSession(Delivery& d, std::size_t upstream, std::string first_job)
    : d_(d),
      up_(upstream),
      id_(new_session_id('a')),
      u_(d.settings().upstreams.at(upstream)),
      kind_(u_.api.value_or(api::Kind::Graph)),
      job_id_(std::move(first_job)),
      generation_(d.generation()) {}

ApiSession::~ApiSession() = default;

void ApiSession::start() {
  ++d_.stats().sessions;
  ++d_.site_stats_of(u_.name).connections;
  log::debug("upstream_api_start").kv("session", id_).kv("upstream", u_.name);
  load_job();
}

void ApiSession::resume(std::string job) {
  job_id_ = std::move(job);
  load_job();
}

void ApiSession::next_job() {
  if (closing_) return;
  // After a reload the upstreams' indexes may name others: this session
  // (a copy of the old upstream) takes nothing more.
  if (d_.draining() || throttled_ || jobs_done_ >= d_.settings().messages_per_connection ||
      generation_ != d_.generation())
    return finalize("done", Hand::Defer);
  job_id_ = d_.take_job(up_);
  if (!job_id_) return finalize("done", Hand::Defer);
  load_job();
}

void ApiSession::disk(const char* what, std::function<void()> work, std::function<void()> then) {
  disk_begins(what, id_);
  d_.loop().queue_work(std::move(work), [this, then = std::move(then)] {
    disk_.reset();
    if (closing_) return maybe_release();
    then();  // may end in release(): nothing after it
  });
}

void ApiSession::load_job() {
  loaded_ = false;
  token_retried_ = false;
  draft_.reset();
  auto loaded = std::make_shared<Result<spool::Record>>();
  std::string id = *job_id_;
  disk(
      "load", [spool = d_.spool(), id, loaded] { *loaded = spool->load(id); },
      [this, id, loaded] {
        if (!*loaded) {
          job_id_.reset();
          d_.unreadable(id, loaded->error(), id_);
          return next_job();
        }
        rec_ = std::move(**loaded);
        loaded_ = true;
        on_loaded();
      });
}

void ApiSession::on_loaded() {
  // (The config caps an API upstream's max_message_size at what its API
  // takes, so the listener refuses larger mail at RCPT or DATA already.)
  Delivery::Screen sc = d_.screen(rec_, up_, &pacing_stamp_);
  job_rcpts_ = sc.rcpts;
  switch (sc.what) {
    case Delivery::Screen::Do::Carry:
      return prepare();
    case Delivery::Screen::Do::Skip:
      job_id_.reset();
      loaded_ = false;
      return next_job();
    case Delivery::Screen::Do::Finish: {
      auto rec = std::make_shared<spool::Record>(rec_);
      assess(*rec, {}, {});
      return record(rec, {}, {});
    }
    case Delivery::Screen::Do::Fail:
      return record(sc.failed, sc.why, job_rcpts_);
  }
}

void ApiSession::prepare() {
  // The copy sent: the sender policy's From: (as for SMTP), then the
  // recipient fields for exactly the carried recipients.
  std::vector<std::string> carried;
  for (std::size_t i : job_rcpts_) carried.push_back(rec_.recipients[i]);
  std::string from = u_.from_for(rec_.sender);
  if (!from.empty())
    log::debug("rewrite_from").kv("session", id_).kv("msg", rec_.id).kv("from", rec_.sender).kv("to", from);
  struct Copy {
    Result<std::string> message = std::string();
    std::optional<Result<api::Split>> split;  // Graph, above kGraphRequestMax
  };
  auto out = std::make_shared<Copy>();
  bool graph = kind_ == api::Kind::Graph;
  disk(
      "read content",
      [spool = d_.spool(), rec = rec_, carried = std::move(carried), from, out, graph] {
        auto rd = spool::Reader::open(*spool, rec);
        if (!rd) {
          out->message = tl::unexpected(rd.error());
          return;
        }
        std::string content;
        content.reserve(static_cast<std::size_t>((*rd)->remaining()));
        while ((*rd)->remaining() > 0) {
          auto n = (*rd)->read(content, kReadChunk);
          if (!n) {
            out->message = tl::unexpected(n.error());
            return;
          }
        }
        if (!from.empty()) {
          smtp::HeaderFixer fixer(rewrite_from_settings(from));
          std::string fixed;
          fixer.feed(content, fixed);
          fixer.finish(fixed);
          content = std::move(fixed);
        }
        std::string copy = api::for_recipients(content, carried);
        if (graph && copy.size() > api::kGraphRequestMax)
          out->split = api::split_attachments(copy, api::kGraphRequestMax);
        else
          out->message = std::move(copy);
      },
      [this, out] {
        if (!out->message)
          return on_failed(
              {smtp::Failure::Temporary, "spool read failed: " + out->message.error().message(), true, false}, false);
        if (out->split && !*out->split) {
          // Not something Graph can take at all: a permanent failure, said
          // before anything goes out.
          api::Meaning m;
          m.row = 6;
          m.trouble = smtp::Trouble::Permanent;
          m.reply = {552, {"5.3.4 " + out->split->error().message()}};
          return conclude(m);
        }
        if (out->split) {
          log::info("api_large_message")
              .kv("session", id_)
              .kv("msg", rec_.id)
              .kv("draft_bytes", static_cast<std::uint64_t>((*out->split)->draft.size()))
              .kv("attachments", static_cast<std::uint64_t>((*out->split)->carved.size()));
          draft_.emplace(std::move(**out->split), api::base_or_default(kind_, u_.api_base), u_.mailbox,
                         id_ + "-" + rec_.id);
        } else {
          message_ = std::move(*out->message);
        }
        get_token();
      });
}

void ApiSession::get_token() {
  // done may run before get() returns (a token at hand, or none at all),
  // and may end this session: then nothing of it is touched afterwards.
  auto answered = std::make_shared<bool>(false);
  auto cancel = d_.credentials().get(d_.loop(), u_, id_, [this, answered](Result<std::string> secret) {
    *answered = true;
    cancel_token_ = nullptr;
    if (closing_) return;
    if (!secret) {
      smtp::Failure f{smtp::Failure::Auth, "no access token: " + secret.error().message(), true, true};
      f.code = secret.error().code;
      return on_failed(f, false);
    }
    token_ = std::move(*secret);
    send();
  });
  if (!*answered) cancel_token_ = std::move(cancel);
}

void ApiSession::send() {
  if (!d_.fetcher()) return on_failed({smtp::Failure::Temporary, "no HTTPS client for API upstreams", true}, false);
  http::Request r = draft_ ? draft_->request(token_)
                           : api::send_request(kind_, api::base_or_default(kind_, u_.api_base), u_.mailbox, token_,
                                               message_, id_ + "-" + rec_.id);
  r.ca_file = u_.ca_file;
  log::debug("upstream_send")
      .kv("session", id_)
      .kv("msg", rec_.id)
      .kv("step", draft_ ? draft_->step() : std::string("send"))
      .kv("nrcpt", static_cast<std::uint64_t>(job_rcpts_.size()));
  request_ = d_.fetcher()->send(std::move(r), [this](Result<http::Response> a) {
    request_.reset();
    on_answer(std::move(a));
  });
}

void ApiSession::on_answer(Result<http::Response> r) {
  if (closing_) return;
  if (!r) {
    smtp::Failure f{smtp::Failure::Temporary, r.error().message(), true, true};
    f.code = r.error().code;
    // Only the send itself can have sent anything.
    bool maybe_sent = !draft_ || draft_->sending();
    discard_draft();
    return on_failed(f, maybe_sent);
  }
  api::Meaning m = api::meaning(kind_, *r, unix_now());
  bool step_done = draft_ && m.row == 1 && !draft_->sending();
  (step_done ? log::debug("api_answer") : log::info("api_answer"))
      .kv("session", id_)
      .kv("msg", rec_.id)
      .kv("upstream", u_.name)
      .kv("step", draft_ ? draft_->step() : std::string("send"))
      .kv("status", static_cast<std::uint64_t>(r->status))
      .kv("request_id", m.request_id.empty() ? std::string("none") : m.request_id)
      .kv("reply", m.reply.summary());
  if (step_done) {
    if (draft_->answered(*r) == api::GraphDraft::Next::Malformed) {
      smtp::Failure f{smtp::Failure::Temporary, draft_->reason(), true, false};
      f.code = Errc::Protocol;
      discard_draft();
      return on_failed(f, false);
    }
    return send();
  }
  if (m.row == 2 && !token_retried_ && d_.credentials().refused(u_, token_)) {
    // A token the API no longer takes (revoked, or expired early): one
    // fresh token and one more request.
    token_retried_ = true;
    log::warn("api_token_refused").kv("session", id_).kv("upstream", u_.name).kv("action", "one retry, new token");
    return get_token();
  }
  if (m.row != 1) discard_draft();
  conclude(m);
}

void ApiSession::conclude(const api::Meaning& m) {
  message_.clear();
  draft_.reset();
  d_.admitted_done(up_, pacing_stamp_, job_rcpts_.size());
  pacing_stamp_ = 0;
  auto rec = std::make_shared<spool::Record>(rec_);
  Assessment a = assess(*rec, job_rcpts_, std::vector<smtp::Reply>(job_rcpts_.size(), m.reply),
                        std::vector<smtp::Trouble>(job_rcpts_.size(), m.trouble));
  if (a.site == Assessment::Site::Throttled) a.site_wait = m.retry_after;
  ++jobs_done_;
  d_.site_assessed(up_, a);
  if (a.end_session()) throttled_ = true;
  record(rec, a.failed, job_rcpts_);
}

void ApiSession::discard_draft() {
  if (!draft_ || !d_.fetcher()) return;
  auto req = draft_->discard(token_);
  draft_.reset();
  if (!req) return;
  req->ca_file = u_.ca_file;
  // Best effort, and it outlives this session: the answer only goes to the log.
  d_.fetcher()->send(std::move(*req), [session = id_, upstream = u_.name](Result<http::Response> r) {
    log::debug("api_draft_discarded")
        .kv("session", session)
        .kv("upstream", upstream)
        .kv("status", r ? std::to_string(r->status) : r.error().message());
  });
}

void ApiSession::on_failed(const smtp::Failure& f, bool maybe_sent) {
  if (closing_) return;
  if (maybe_sent && f.code == Errc::Timeout) {
    // The request went out and no answer came: the API may have sent it.
    ++d_.stats().duplicate_risk;
    log::warn("duplicate_risk").kv("session", id_).kv("msg", rec_.id).kv("upstream", u_.name);
  }
  if (f.code == Errc::TlsVerify) {
    ++d_.stats().tls_failures;
    ++d_.site_stats_of(u_.name).tls_failures;
  }
  log::warn("upstream_failed")
      .kv("session", id_)
      .kv("upstream", u_.name)
      .kv("error", to_string(f.code))
      .kv("reason", f.reason);
  if (f.site) d_.site_failure(up_, f);
  finalize(f.reason, Hand::Defer);
}

void ApiSession::record(const std::shared_ptr<spool::Record>& rec, const std::vector<std::string>& failed,
                        std::vector<std::size_t> attempt_rcpts) {
  disk_begins("outcome", id_);
  d_.record(rec, failed, std::move(attempt_rcpts), up_, id_, u_.name, [this, id = rec->id] {
    disk_.reset();
    if (job_id_ && *job_id_ == id) job_id_.reset();
    loaded_ = false;
    if (closing_) return maybe_release();
    next_job();  // may end in release(): nothing after it
  });
}

void ApiSession::hand_back(Hand how, const std::string& reason) {
  if (!job_id_ || disk_) return;
  std::string id = *job_id_;
  if (how == Hand::Untouched || !loaded_) {
    // At the shutdown deadline, or before it was read: due again now,
    // unattempted (it was not sent).
    job_id_.reset();
    d_.hand_back(id, false);
    return;
  }
  // Count the attempt and keep its reason, so `queue list` says why it waits.
  auto rec = std::make_shared<spool::Record>(rec_);
  ++rec->attempts;
  rec->last_error = reason;
  record(rec, {}, {});
}

void ApiSession::abort() {
  if (closing_) {
    closing_hand_ = Hand::Untouched;
    return;
  }
  finalize("shutdown deadline", Hand::Untouched);
}

void ApiSession::finalize(const std::string& reason, Hand how) {
  if (closing_) return;
  closing_ = true;
  closing_hand_ = how;
  closing_reason_ = reason;
  if (request_) {
    d_.fetcher()->cancel(*request_);
    request_.reset();
  }
  if (draft_ && !draft_->sending()) discard_draft();
  if (cancel_token_) {
    auto c = std::move(cancel_token_);
    cancel_token_ = nullptr;
    c();
  }
  log::debug("upstream_close").kv("session", id_).kv("upstream", u_.name).kv("reason", reason);
  maybe_release();
}

void ApiSession::maybe_release() {
  if (!closing_ || disk_) return;
  if (job_id_) {
    hand_back(closing_hand_, closing_reason_);
    if (disk_) return;  // the deferral's record comes back here
  }
  d_.release(this);  // deletes this: the last statement
}

}  // namespace spoolgate::upstream
