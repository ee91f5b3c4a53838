// SPDX-License-Identifier: MIT
#include "upstream/session.h"

#include <cstdlib>
#include <utility>

#include "core/ids.h"
#include "core/log.h"
#include "upstream/policy.h"

namespace spoolgate::upstream {
namespace {

constexpr std::size_t kReadChunk = 256 * std::size_t{1024};

}  // namespace

Session::Session(Delivery& d, std::size_t upstream, std::string first_job)
    : d_(d),
      up_(upstream),
      id_(new_session_id('u')),
      link_(d.loop(), d.settings().upstreams.at(upstream), d.settings().helo, d.settings().timeouts, d.credentials(),
            id_, true, link_hooks()),
      u_(link_.upstream()),
      job_id_(std::move(first_job)),
      generation_(d.generation()) {}

Session::~Session() = default;

Link::Hooks Session::link_hooks() {
  Link::Hooks h;
  h.tls = [this](const tls::Session& tls, const Result<void>& r) { on_tls(tls, r); };
  h.ready = [this] { on_ready(); };
  h.failed = [this](const smtp::Failure& f) {
    if (!disk_) on_failed(f);  // (the stage timer is stopped while the disk works; never a second job)
  };
  h.read = [this](std::string_view b, bool eof) { on_read(b, eof); };
  h.closed = [this] { maybe_release(); };
  return h;
}

void Session::start() {
  ++d_.stats().sessions;
  ++d_.site_stats_of(u_.name).connections;
  log::debug("upstream_connect").kv("session", id_).kv("upstream", u_.name);
  hold_ = loop::Timer::create(d_.loop(), [this] { end_hold(); });
  link_.start();
}

void Session::on_tls(const tls::Session& tls, const Result<void>& r) {
  if (!r) {
    ++d_.stats().tls_failures;
    ++d_.site_stats_of(u_.name).tls_failures;
    return;  // the link reports the failure
  }
  d_.site_stats_of(u_.name).cert_not_after = tls.leaf_not_after();
}

void Session::on_ready() {
  d_.site_success(up_);
  log::info("upstream_ready")
      .kv("session", id_)
      .kv("upstream", u_.name)
      .kv("tls", link_.tls() ? link_.tls()->version() : std::string("none"))
      .kv("auth", machine().authenticated() ? "yes" : "no");
  next_job();
}

void Session::on_read(std::string_view bytes, bool eof) {
  if (closing_) return;
  if (held_) {
    // Nothing was asked: a close or a reply now (typically "421 idle
    // timeout") is the server ending an idle session, not trouble.
    log::debug("upstream_hold_ended")
        .kv("session", id_)
        .kv("upstream", u_.name)
        .kv("by", eof ? "server close" : "server reply");
    return finalize("closed by the server while idle", true);
  }
  link_.feed(bytes, eof);
  pump();
}

void Session::flush() { link_.flush(); }

void Session::arm(smtp::Stage stage) {
  if (!disk_) link_.arm(stage);
}

void Session::pump() {
  while (!closing_ && !disk_) {
    switch (machine().next()) {
      case smtp::ClientEvent::NeedInput:
        flush();
        if (streaming_) {
          // Content goes on: the next chunk if it is read, else the drain
          // or the read in progress calls back (the block timer runs).
          if (chunk_ready_) send_chunk();
          return;
        }
        arm(machine().stage());
        return;
      case smtp::ClientEvent::StartTls:
      case smtp::ClientEvent::Ready:
      case smtp::ClientEvent::TokenRefused:
        // The link's steps, done before it called on_ready: cannot happen.
        on_failed(smtp::Failure{smtp::Failure::Temporary, "client machine out of step after ready", true, true});
        return;
      case smtp::ClientEvent::SendContent:
        flush();
        content_started_ = true;
        streaming_ = true;
        send_chunk();
        return;
      case smtp::ClientEvent::Delivered:
        flush();
        on_delivered();
        return;
      case smtp::ClientEvent::Failed:
        on_failed(machine().failure());
        return;
      case smtp::ClientEvent::Closed:
        finalize("done", true);
        return;
    }
  }
}

void Session::next_job() {
  if (!job_id_) {
    if (d_.draining() || throttled_ || jobs_done_ >= d_.settings().messages_per_connection) return quit();
    job_id_ = d_.take_job(up_);
    if (!job_id_) {
      Millis hold = d_.settings().idle_hold;
      if (hold.count() <= 0 || generation_ != d_.generation()) return quit();
      held_ = true;
      hold_->start(hold);
      d_.park(this);  // may resume() at once: the last statement
      return;
    }
  }
  load_job();
}

void Session::quit() {
  machine().quit();
  flush();
  arm(smtp::Stage::Quit);
}

void Session::resume(std::string job) {
  held_ = false;
  hold_->stop();  // the stage timers take over once the message is loaded
  job_id_ = std::move(job);
  load_job();
}

void Session::end_hold() {
  if (!held_ || closing_) return;
  leave_hold();
  quit();
}

void Session::leave_hold() {
  if (!held_) return;
  held_ = false;
  d_.unpark(this);
}

void Session::disk(const char* what, std::function<void()> work, std::function<void()> then) {
  disk_via(
      what,
      [this, work = std::move(work)](std::function<void()> back) mutable {
        d_.loop().queue_work(std::move(work), std::move(back));
      },
      std::move(then));
}

void Session::disk_via(const char* what, const std::function<void(std::function<void()>)>& start,
                       std::function<void()> then) {
  disk_begins(what, id_);  // (pump, timers and failures wait for a job out)
  link_.stop_timer();      // the disk is not the server: no stage timer runs now
  start([this, then = std::move(then)] {
    disk_.reset();
    then();
    if (closing_) finish_closing();
  });
}

void Session::load_job() {
  loaded_ = false;
  content_started_ = false;
  streaming_ = false;
  chunk_ready_ = false;
  auto result = std::make_shared<Result<void>>();
  auto rec = std::make_shared<spool::Record>();
  auto reader = std::make_shared<std::unique_ptr<spool::Reader>>();
  auto chunk = std::make_shared<std::string>();
  auto spool = d_.spool();
  std::string id = *job_id_;
  disk(
      "load",
      [=] {
        auto r = spool->load(id);
        if (!r) {
          *result = tl::unexpected(r.error());
          return;
        }
        *rec = std::move(*r);
        auto rd = spool::Reader::open(*spool, *rec);
        if (!rd) {
          *result = tl::unexpected(rd.error());
          return;
        }
        auto n = (*rd)->read(*chunk, kReadChunk);
        if (!n) *result = tl::unexpected(n.error());
        *reader = std::move(*rd);
      },
      [=, this] {
        if (!*result) return on_load_error(id, result->error());
        rec_ = std::move(*rec);
        reader_ = std::move(*reader);
        chunk_ = std::move(*chunk);
        loaded_ = true;
        if (closing_) return;  // the finalizer hands it back
        on_loaded(rec_);
      });
}

void Session::on_load_error(const std::string& id, const Error& e) {
  job_id_.reset();
  d_.unreadable(id, e, id_);
  if (!closing_) next_job();
}

void Session::on_loaded(const spool::Record& rec) {
  smtp::Job job;
  job.sender = rec.sender;
  job.size = rec.size;
  job.smtputf8 = rec.smtputf8;
  job.body_8bit = rec.body_8bit;
  Delivery::Screen sc = d_.screen(rec, up_, &pacing_stamp_);
  job_rcpts_ = sc.rcpts;
  switch (sc.what) {
    case Delivery::Screen::Do::Carry:
      break;
    case Delivery::Screen::Do::Skip:
      // Rerouted or held: this session takes nothing more through it.
      job_id_.reset();
      loaded_ = false;
      reader_.reset();
      return next_job();
    case Delivery::Screen::Do::Finish:
      return on_delivered();
    case Delivery::Screen::Do::Fail:
      reader_.reset();
      return record(sc.failed, std::move(sc.why), job_rcpts_);
  }
  for (std::size_t i : job_rcpts_) job.recipients.push_back(rec.recipients[i]);
  // The account may not send as this sender: envelope and From: become
  // its address (the original From: kept as Reply-To:), on the way out
  // only; the spool keeps what the device sent.
  fixer_.reset();
  if (std::string from = u_.from_for(rec.sender); !from.empty()) {
    job.sender = from;
    job.size += 2 * from.size() + 1024;  // SIZE: the new From: and Reply-To: (an estimate, RFC 1870)
    fixer_ = std::make_unique<smtp::HeaderFixer>(rewrite_from_settings(from));
    log::debug("rewrite_from").kv("session", id_).kv("msg", rec.id).kv("from", rec.sender).kv("to", from);
  }
  log::debug("upstream_send")
      .kv("session", id_)
      .kv("msg", rec.id)
      .kv("nrcpt", static_cast<std::uint64_t>(job.recipients.size()));
  machine().begin(job);
  pump();
}

void Session::send_chunk() {
  chunk_ready_ = false;
  if (fixer_) {
    std::string out;
    fixer_->feed(chunk_, out);
    if (!reader_ || reader_->remaining() == 0) fixer_->finish(out);
    chunk_ = std::move(out);
  }
  if (!chunk_.empty()) {
    last_[0] = chunk_.size() >= 2 ? chunk_[chunk_.size() - 2] : last_[1];
    last_[1] = chunk_.back();
    link_.conn().write(std::move(chunk_));
    chunk_.clear();
  }
  if (reader_ && reader_->remaining() > 0) {
    arm(smtp::Stage::DataBlock);
    link_.conn().on_drain([this] { read_more(); });
    return;
  }
  // Canonical content ends with CRLF (or is empty); the end of data follows.
  bool crlf = last_[0] == '\r' && last_[1] == '\n';
  link_.conn().write(crlf ? ".\r\n" : "\r\n.\r\n");
  dot_sent_ = true;
  streaming_ = false;
  reader_.reset();
  machine().content_sent();
  arm(smtp::Stage::DataEnd);
}

void Session::read_more() {
  if (closing_) return;
  auto result = std::make_shared<Result<std::size_t>>();
  spool::Reader* rd = reader_.get();
  std::string* chunk = &chunk_;
  disk(
      "read content", [=] { *result = rd->read(*chunk, kReadChunk); },
      [=, this] {
        if (closing_) return;
        if (!*result) {
          on_failed(
              smtp::Failure{smtp::Failure::Temporary, "spool read failed: " + result->error().message(), true, false});
          return;
        }
        // Back through the pump: a reply or a close that came while the
        // disk worked is acted on before another byte is written.
        chunk_ready_ = true;
        pump();
      });
}

void Session::on_delivered() {
  dot_sent_ = false;
  d_.admitted_done(up_, pacing_stamp_, job_rcpts_.size());
  pacing_stamp_ = 0;
  Assessment a = assess(rec_, job_rcpts_, machine().outcome().recipients);
  ++jobs_done_;
  d_.site_assessed(up_, a);
  if (a.end_session()) throttled_ = true;  // QUIT after this message
  record(std::make_shared<spool::Record>(rec_), std::move(a.failed), job_rcpts_);
}

void Session::record(const std::shared_ptr<spool::Record>& rec, std::vector<std::string> failed,
                     std::vector<std::size_t> attempt_rcpts) {
  disk_via(
      "outcome",
      [=, this, failed = std::move(failed), rcpts = std::move(attempt_rcpts)](std::function<void()> back) {
        d_.record(rec, failed, rcpts, up_, id_, u_.name, std::move(back));
      },
      [this, id = rec->id] {
        if (job_id_ && *job_id_ == id) job_id_.reset();
        loaded_ = false;
        if (closing_) return;
        next_job();
      });
}

void Session::on_failed(const smtp::Failure& f) {
  if (closing_) return;
  Judgement j = judge(f, dot_sent_, content_started_, job_id_ && d_.other_upstream_usable(up_, *job_id_));
  if (j.duplicate_risk) {
    // The final dot went out and no reply came: the server may have the message.
    ++d_.stats().duplicate_risk;
    log::warn("duplicate_risk").kv("session", id_).kv("msg", rec_.id).kv("upstream", u_.name);
  }
  log::warn("upstream_failed")
      .kv("session", id_)
      .kv("upstream", u_.name)
      .kv("error", to_string(f.code))
      .kv("reason", f.reason);
  if (j.site) d_.site_failure(up_, f);
  finalize(f.reason, false, j.failover ? Hand::Failover : Hand::Defer);
}

void Session::hand_back(Hand how, const std::string& reason) {
  if (!job_id_ || disk_) return;
  std::string id = *job_id_;
  if (how != Hand::Defer) {
    // Untouched (shutdown) or to the next upstream: due again now.
    job_id_.reset();
    d_.hand_back(id, how == Hand::Failover);
    return;
  }
  // Count the attempt and keep its reason, so `queue list` says why the
  // message waits; a deferral that outlived the lifetime fails it. A
  // message not loaded yet is read from the spool first (its own job).
  if (loaded_) return write_deferral(std::make_shared<spool::Record>(rec_), reason);
  auto loaded = std::make_shared<Result<spool::Record>>();
  disk(
      "load for deferral", [spool = d_.spool(), id, loaded] { *loaded = spool->load(id); },
      [=, this] {
        if (!*loaded) {
          job_id_.reset();
          return d_.unreadable(id, loaded->error(), id_);
        }
        write_deferral(std::make_shared<spool::Record>(std::move(**loaded)), reason);
      });
}

void Session::write_deferral(const std::shared_ptr<spool::Record>& rec, const std::string& reason) {
  ++rec->attempts;
  rec->last_error = reason;
  record(rec, {}, {});
}

void Session::abort() {
  if (closing_) {
    // Already ending with a deferral that waits for the disk: at the
    // shutdown deadline the message goes back untouched instead.
    closing_hand_ = Hand::Untouched;
    return;
  }
  finalize("shutdown deadline", false, Hand::Untouched);
}

void Session::finalize(const std::string& reason, bool graceful, Hand how) {
  if (closing_) return;
  closing_ = true;
  closing_hand_ = how;
  closing_reason_ = reason;
  leave_hold();
  hold_.reset();
  log::debug("upstream_close")
      .kv("session", id_)
      .kv("upstream", u_.name)
      .kv("reason", reason)
      .kv("graceful", graceful ? "yes" : "no");
  link_.close();  // abandons a connect; closed() once the connection is gone
  finish_closing();
}

void Session::finish_closing() {
  if (!disk_ && job_id_) hand_back(closing_hand_, closing_reason_);
  maybe_release();
}

void Session::maybe_release() {
  if (closing_ && !disk_ && link_.closed()) {
    d_.release(this);  // deletes this: the last statement
  }
}

}  // namespace spoolgate::upstream
