// SPDX-License-Identifier: MIT
#include "listener/session.h"

#include "core/ids.h"
#include "core/log.h"
#include "listener/inbound.h"

namespace spoolgate::listener {
namespace {

constexpr Millis kLinger{10'000};  // how long a closing client may take to read our last reply

// What a transaction without SIZE reserves at MAIL; its reservation grows
// with what it writes.
constexpr std::uint64_t kDefaultReservation = std::uint64_t{1024} * 1024;

smtp::ServerSettings session_settings(Inbound& in, const net::Connection& c, Session* self, const Endpoint& e) {
  smtp::ServerSettings s = in.settings().smtp;
  s.client_address = c.peer();
  s.offer_starttls = e.tls == TlsMode::StartTls && e.tls_ctx;
  s.auth = e.verifier ? e.auth : smtp::ServerSettings::Auth::Off;
  bool local = c.is_unix() || c.peer_ip().loopback();
  for (const auto& n : e.auth_plaintext_networks) local = local || n.contains(c.peer_ip());
  s.auth_plaintext = local;
  s.within_rate = [&in, self] { return in.within_rate(self->device()); };
  if (const auto& table = in.settings().routing; table && !table->trivial())
    s.routable = [table, self, client = c.peer(), ok = in.settings().sender_ok](std::string_view sender,
                                                                                std::string_view rcpt) {
      auto rule = table->match(routing::Mail{sender, client, self->device()}, rcpt);
      return rule && (!ok || ok(*rule, sender));
    };
  else if (const auto& ok = in.settings().sender_ok)
    s.routable = [ok](std::string_view sender, std::string_view) { return ok(SIZE_MAX, sender); };
  if (const auto& table = in.settings().routing; table && !table->trivial()) {
    s.size_cap = [table, self, caps = in.settings().rule_size_caps, client = c.peer()](std::string_view sender,
                                                                                       std::string_view rcpt) {
      auto rule = table->match(routing::Mail{sender, client, self->device()}, rcpt);
      return rule && *rule < caps.size() ? caps[*rule] : std::uint64_t{0};
    };
  } else if (std::uint64_t cap = in.settings().size_cap) {
    s.size_cap = [cap](std::string_view, std::string_view) { return cap; };
  }
  s.accepting = [&in, self](std::uint64_t declared) {
    return in.accounting().reserve(self, declared ? declared : kDefaultReservation);
  };
  return s;
}

}  // namespace

Session::Session(Inbound& in, std::unique_ptr<net::Connection> conn, const Endpoint& endpoint)
    : in_(in),
      conn_(std::move(conn)),
      id_(new_session_id('c')),
      machine_(session_settings(in, *conn_, this, endpoint)),
      implicit_tls_(endpoint.tls == TlsMode::Implicit && endpoint.tls_ctx),
      tls_ctx_(endpoint.tls_ctx),
      verifier_(endpoint.verifier) {
  conn_->on_read([this](std::string_view b, bool eof) { on_read(b, eof); });
  conn_->on_closed([this] { on_conn_closed(); });
}

Session::~Session() = default;

log::Line& Session::tag(log::Line& line) const {
  line.kv("session", id_).kv("client", conn_->peer());
  if (!device_.empty()) line.kv("device", device_);
  return line;
}

void Session::become(const std::string& name, bool by_login) {
  device_ = name;
  for (const auto& d : in_.settings().devices)
    if (d.policy.name == name) return machine_.set_device(d.policy);
  if (by_login) machine_.set_device(smtp::DevicePolicy{name, {}, {}, 0});
}

void Session::start() {
  if (!conn_->is_unix())
    for (const auto& d : in_.settings().devices) {
      bool match = false;
      for (const auto& n : d.networks) match = match || n.contains(conn_->peer_ip());
      if (match) {
        become(d.policy.name, false);
        break;
      }
    }
  { tag(log::info("connect")); }
  begin();
}

void Session::begin() {
  idle_timer_ = loop::Timer::create(in_.loop(), [this] {
    tag(log::info("timeout"));
    machine_.timeout();
    pump();
  });
  arm_idle();
  if (implicit_tls_) {
    start_tls();  // the greeting follows the handshake
    return;
  }
  conn_->start_reading();
  schedule_greeting();
}

void Session::schedule_greeting() {
  Millis delay = in_.settings().greeting_delay;
  if (delay.count() > 0) {
    greet_timer_ = loop::Timer::create(in_.loop(), [this] { greet(); });
    greet_timer_->start(delay);
  } else if (conn_->readable_bytes() == 0) {
    greet();
  }
  // Otherwise the client spoke before we could greet: the read that follows
  // handles the early talker.
}

void Session::start_tls() {
  auto t = tls::Session::server(tls_ctx_);
  if (!t) {
    tag(log::error("tls_failed")).kv("reason", t.error().message());
    close("TLS unavailable");
    return;
  }
  conn_->start_tls(std::move(*t), [this](const Result<void>& r) { on_tls(r); });
}

void Session::on_tls(const Result<void>& r) {
  if (closing_) return;
  if (!r) {
    // What the device tried is in the reason (no shared version or cipher,
    // plaintext on a TLS port, a closed connection).
    const tls::Session* t = conn_->tls();
    tag(log::warn("tls_failed"))
        .kv("offered", t && !t->offered_version().empty() ? t->offered_version() : "none")
        .kv("reason", r.error().message());
    in_.tls_failed();
    close("TLS handshake failed");
    return;
  }
  const tls::Session* t = conn_->tls();
  in_.tls_established(t->version());
  tag(log::info("tls"))
      .kv("version", t->version())
      .kv("cipher", t->cipher())
      .kv("mode", implicit_tls_ ? "implicit" : "starttls");
  if (std::size_t n = machine_.discarded_after_starttls())
    tag(log::warn("starttls_pipelined"))
        .kv("bytes", static_cast<std::uint64_t>(n))
        .kv("action", "discarded, not run (RFC 3207)");
  machine_.tls_started(t->version() + " " + t->cipher());
  arm_idle();
  if (!greeted_) {
    schedule_greeting();
    return;
  }
  pump();
}

void Session::start_auth() {
  if (in_.auth_locked(conn_->peer())) {
    tag(log::warn("auth_locked")).kv("reason", "too many failed logins");
    machine_.auth_locked();
    pump();
    return;
  }
  auth_working_ = true;
  const smtp::Server::Credentials& c = machine_.credentials();
  auto ok = std::make_shared<bool>(false);
  in_.loop().queue_work([v = verifier_, user = c.user, password = c.password, ok] { *ok = v->check(user, password); },
                        [this, ok, user = c.user, mech = c.mechanism] { auth_done(*ok, user, mech); });
}

void Session::auth_done(bool ok, const std::string& user, const std::string& mechanism) {
  auth_working_ = false;
  if (closing_) {
    maybe_release();
    return;
  }
  if (ok) {
    in_.auth_succeeded(conn_->peer());
    become(user, true);
    tag(log::info("auth")).kv("user", user).kv("mechanism", mechanism);
    machine_.auth_result(true);
    pump();
    return;
  }
  std::uint64_t n = in_.auth_failed(conn_->peer());
  tag(log::warn("auth_failed"))
      .kv("user", auth::valid_name(user) ? user : std::string("(not a device name)"))
      .kv("mechanism", mechanism)
      .kv("recent_failures", n);
  // The answer waits a second per recent failure (at most 5): guessing is slow.
  auth_delay_ = loop::Timer::create(in_.loop(), [this] {
    auth_delay_.reset();
    machine_.auth_result(false);
    pump();
  });
  auth_delay_->start(Millis(1000 * static_cast<std::int64_t>(std::min<std::uint64_t>(n, 5))));
}

void Session::greet() {
  if (closing_) return;
  greeted_ = true;
  machine_.greet();
  flush();
}

void Session::refuse(const std::string& reply, const std::string& why) {
  greeted_ = true;
  tag(log::warn("refused")).kv("reason", why);
  conn_->write(reply + "\r\n");
  close_reason_ = why;
  linger();
}

void Session::linger() {
  closing_ = true;
  in_.count_out(this);
  greet_timer_.reset();
  data_timer_.reset();
  conn_->close_after_writes();
  idle_timer_ = loop::Timer::create(in_.loop(), [this] { conn_->close(); });
  idle_timer_->start(kLinger);
}

void Session::arm_idle() {
  if (idle_timer_) idle_timer_->start(in_.settings().idle_timeout);
}

void Session::on_read(std::string_view bytes, bool eof) {
  if (closing_) return;
  if (eof) {
    close(in_message_ ? "client disconnected during DATA" : "client disconnected");
    return;
  }
  if (!greeted_) {
    if (smtp::looks_like_http(bytes)) {
      tag(log::warn("http_request"));
      close("HTTP request on the SMTP port");
      return;
    }
    // RFC 5321 4.3.1 and 3.1: the client waits for the greeting. One that does
    // not is a spam bot or a confused protocol; tell it and hang up.
    tag(log::warn("early_talker"));
    conn_->write("554 5.5.0 Error: SMTP protocol synchronization\r\n");
    close_reason_ = "early talker";
    linger();
    return;
  }
  // RFC 5321 4.5.3.2: inside DATA each block of data restarts the timer
  // (a slow but steady sender is fine, and the whole message has its own
  // deadline); outside DATA a command must be complete within idle_timeout
  // of our last reply, so bytes trickled one at a time do not keep it open.
  if (in_message_) arm_idle();
  machine_.receive(bytes);
  pump();
}

void Session::pump() {
  while (!closing_ && !disk_busy_) {
    smtp::EventType ev = machine_.next();
    for (const auto& r : machine_.take_auth_refusals())
      tag(log::warn("auth_refused")).kv("mechanism", r.mechanism).kv("reply", r.reply);
    switch (ev) {
      case smtp::EventType::NeedInput:
        flush();
        if (!in_message_ && machine_.input_size() == 0) arm_idle();  // waiting for a whole new command
        if (machine_.input_size() < kMaxInput) conn_->start_reading();
        return;
      case smtp::EventType::Wait:
        flush();
        return;
      case smtp::EventType::MessageBegin:
        begin_message();
        break;
      case smtp::EventType::Content:
        if (pending_.empty())
          pending_ = machine_.take_content();
        else
          pending_ += machine_.take_content();
        if (pending_.size() >= smtp::Server::kChunk) write_chunk(false);
        break;
      case smtp::EventType::MessageEnd:
        flush();
        commit();
        break;
      case smtp::EventType::MessageAbort:
        tag(log::info("rejected")).kv("msg", record_.id);
        discard_message();
        break;
      case smtp::EventType::Close: {
        flush();
        close_reason_ = "closed by protocol";
        linger();
        return;
      }
      case smtp::EventType::StartTls:
        flush();     // the 220, in plaintext, before the switch
        arm_idle();  // the handshake, too, must be done within idle_timeout
        start_tls();
        return;
      case smtp::EventType::Authenticate:
        flush();
        if (!auth_working_ && !auth_delay_) start_auth();
        return;
      case smtp::EventType::Drop:
        tag(log::warn("http_request"));
        close("HTTP request on the SMTP port");
        return;
    }
  }
  flush();
  if (machine_.input_size() >= kMaxInput) conn_->stop_reading();
}

void Session::flush() {
  if (machine_.has_output()) conn_->write(machine_.take_output());
}

void Session::begin_message() {
  const smtp::Envelope& e = machine_.envelope();
  record_ = spool::Record{};
  record_.id = e.id;
  record_.arrived = e.arrived;
  record_.client = conn_->peer();
  record_.helo = e.helo;
  record_.device = device_;
  record_.smtputf8 = e.smtputf8;
  record_.body_8bit = e.body_8bit;
  record_.sender = e.sender.str();
  for (const auto& r : e.recipients) record_.recipients.push_back(r.str());
  disk_result_ = {};
  pending_.clear();
  written_ = 0;
  in_message_ = true;
  // The whole DATA phase has a deadline too: one byte per (idle_timeout -
  // 1 s) would otherwise hold the session for as long as it likes.
  data_timer_ = loop::Timer::create(in_.loop(), [this] {
    tag(log::info("timeout")).kv("stage", "data (limits.data_timeout)");
    data_timer_.reset();
    machine_.timeout();
    pump();
  });
  data_timer_->start(in_.settings().data_timeout);
}

void Session::write_chunk(bool final) {
  if (!disk_result_) {
    pending_.clear();  // already failed: the refusal comes at the end
    return;
  }
  disk_busy_ = true;
  auto chunk = std::make_shared<std::string>(std::move(pending_));
  pending_.clear();
  written_ += chunk->size();
  in_.accounting().grow(this, written_);
  auto spool = in_.spool();
  // The worker owns writer_, record_ and disk_result_ until `done` runs.
  in_.loop().queue_work(
      [this, chunk, spool, final] {
        if (!writer_) {
          auto w = spool::Writer::create(spool, record_);
          if (!w) {
            disk_result_ = tl::unexpected(w.error());
            return;
          }
          writer_ = std::move(*w);
        }
        if (!chunk->empty()) disk_result_ = writer_->append(*chunk);
        if (final && disk_result_) disk_result_ = writer_->commit();
      },
      [this, final] {
        if (final) {
          if (!disk_result_ || !writer_) {
            on_commit_done(disk_result_ ? fail(Errc::Io, "no writer") : disk_result_);
            return;
          }
          record_.size = writer_->content_size();
          in_.committer().sync([this](Result<void> r) { on_commit_done(std::move(r)); });
          return;
        }
        disk_done();
      });
}

void Session::commit() {
  if (idle_timer_) idle_timer_->stop();
  data_timer_.reset();
  if (!disk_result_) {
    on_commit_done(disk_result_);
    return;
  }
  write_chunk(true);
}

void Session::on_commit_done(Result<void> r) {
  disk_busy_ = false;
  in_message_ = false;
  in_.accounting().unreserve(this);                                // committed: counted in the usage from here on
  bool file_in_queue = writer_ && !r && disk_result_.has_value();  // the directory fsync failed
  if (writer_ && writer_->finished()) {
    writer_.reset();  // inert: no thread hand-off for it
  } else if (writer_) {
    // An unfinished writer unlinks its file, which is disk work.
    spool::Writer* w = writer_.release();
    in_.loop().queue_work([w] { delete w; }, nullptr);
  }
  if (r) {
    in_.committed(record_);
    {
      log::Line line(log::Level::Info, "queued");  // named: the user goes in only when there is one
      tag(line)
          .kv("msg", record_.id)
          .kv("size", record_.size)
          .kv("from", record_.sender)
          .kv("nrcpt", static_cast<std::uint64_t>(record_.recipients.size()));
      if (!machine_.user().empty()) line.kv("user", machine_.user());
    }
    machine_.message_committed();
    if (draining_) machine_.shutdown();
  } else {
    const Error& e = r.error();
    tag(log::error("spool_error")).kv("msg", record_.id).kv("reason", e.message());
    if (file_in_queue) {
      // Durability unknown: keep the file (it will be delivered; a duplicate
      // is better than a loss) and let the client try again.
      in_.committed(record_);
    }
    machine_.message_failed(e.code == Errc::SpoolNoSpace
                                ? "452 4.3.1 Insufficient system storage"
                                : "451 4.3.0 Error: local error in processing, try again later");
  }
  if (closing_) {
    maybe_release();
    return;
  }
  arm_idle();
  pump();
}

void Session::discard_message() {
  in_message_ = false;
  data_timer_.reset();
  in_.accounting().unreserve(this);
  pending_.clear();
  if (!writer_) return;
  disk_busy_ = true;
  spool::Writer* w = writer_.release();
  in_.loop().queue_work([w] { delete w; }, [this] { disk_done(); });
}

void Session::disk_done() {
  disk_busy_ = false;
  if (closing_) {
    if (in_message_) discard_message();
    maybe_release();
    return;
  }
  pump();
}

void Session::shutdown() {
  draining_ = true;
  if (closing_ || in_message_ || disk_busy_ || machine_.in_transaction()) return;
  machine_.shutdown();
  pump();
}

void Session::close(const std::string& reason) {
  if (closing_ && conn_->closing()) return;
  closing_ = true;
  in_.count_out(this);
  if (close_reason_.empty()) close_reason_ = reason;
  idle_timer_.reset();
  greet_timer_.reset();
  data_timer_.reset();
  auth_delay_.reset();
  if (in_message_ && !disk_busy_) discard_message();
  conn_->close();
}

void Session::on_conn_closed() {
  conn_closed_ = true;
  closing_ = true;
  in_.count_out(this);
  idle_timer_.reset();
  greet_timer_.reset();
  data_timer_.reset();
  auth_delay_.reset();
  if (in_message_ && !disk_busy_) discard_message();
  { tag(log::info("disconnect")).kv("reason", close_reason_); }
  maybe_release();
}

void Session::maybe_release() {
  if (conn_closed_ && !disk_busy_ && !auth_working_) in_.release(this);  // deletes this: last statement
}

}  // namespace spoolgate::listener
