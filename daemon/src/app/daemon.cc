// SPDX-License-Identifier: MIT
#include "app/daemon.h"

#include <malloc.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>

#include "app/control.h"
#include "app/listeners.h"
#include "app/routes.h"
#include "app/upstreams.h"
#include "core/cidr.h"
#include "core/clock.h"
#include "core/log.h"

namespace spoolgate::app {
namespace {

constexpr Millis kFreeDiskInterval{1000};

spool::Limits spool_limits(const config::Config& c) {
  return {c.spool.max_bytes, c.spool.max_messages, c.spool.min_free_disk};
}

// The open-relay rule of `listen` applied to inherited sockets: one bound to
// a non-loopback address needs an explicit allow_networks.
std::optional<std::string> refuse_inherited(const std::vector<int>& fds, const config::Config& c) {
  for (int fd : fds) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
      return "inherited descriptor " + std::to_string(fd) + " is not a socket";
    int listening = 0;
    socklen_t optlen = sizeof listening;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) != 0 || !listening)
      return "inherited descriptor " + std::to_string(fd) + " is not a listening stream socket (use Accept=no)";
    if (ss.ss_family == AF_UNIX || c.allow_networks_explicit) continue;
    auto ip = IpAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss));
    if (!ip || !ip->loopback())
      return "an inherited socket listens on a non-loopback address; set allow_networks explicitly to say which "
             "clients may relay through it (spoolgate never becomes an open relay by default)";
  }
  return std::nullopt;
}

// Why queued mail in `dir` would not survive the container being re-created,
// or nothing: a spool on the container's overlay filesystem, or on the same
// filesystem as / inside a container, is not on a volume.
std::optional<std::string> ephemeral_spool(const std::string& dir) {
  constexpr long kOverlayMagic = 0x794c7630;  // OVERLAYFS_SUPER_MAGIC
  struct statfs fs {};
  if (::statfs(dir.c_str(), &fs) == 0 && static_cast<long>(fs.f_type) == kOverlayMagic)
    return "the spool is on an overlay filesystem (a container's writable layer)";
  bool container = ::access("/.dockerenv", F_OK) == 0 || ::access("/run/.containerenv", F_OK) == 0;
  // NOLINTNEXTLINE(concurrency-mt-unsafe): env is written only at start, before any thread
  container = container || std::getenv("container") != nullptr;
  // NOLINTNEXTLINE(concurrency-mt-unsafe): env is written only at start, before any thread
  container = container || std::getenv("KUBERNETES_SERVICE_HOST") != nullptr;
  struct stat spool_st {
  }, root_st{};
  if (container && ::stat(dir.c_str(), &spool_st) == 0 && ::stat("/", &root_st) == 0 &&
      spool_st.st_dev == root_st.st_dev)
    return "the spool is on the container's root filesystem, not on a mounted volume";
  return std::nullopt;
}

log::Level level_of(const std::string& s) {
  if (s == "debug") return log::Level::Debug;
  if (s == "warn") return log::Level::Warn;
  if (s == "error") return log::Level::Error;
  return log::Level::Info;
}

void set_logging(const config::Config& c) {
  log::set_level(level_of(c.log.level));
  log::set_format(c.log.format == "json" ? log::Format::Json : log::Format::Text);
}

// Once per process, before the loop and its thread pool exist.
void process_setup() {
  (void)std::signal(SIGPIPE, SIG_IGN);
  // The process holds passwords and tokens in memory: no core dump of it,
  // and no ptrace by an unprivileged user of the same uid (the unit also
  // sets LimitCORE=0).
  (void)::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  // Disk work (writes, fsyncs, renames, removals) runs on libuv's threadpool;
  // fsyncs of messages finishing together run in parallel, and a removal
  // after the provider's 250 should not wait behind them (that wait is the
  // duplicate window of invariant 3). Set before the pool starts.
  // NOLINTNEXTLINE(concurrency-mt-unsafe): env is written only at start, before any thread
  ::setenv("UV_THREADPOOL_SIZE", "16", 0);
  // glibc gives each thread that allocates its own arena: the worker threads
  // that touch content chunks would each keep megabytes resident after the
  // first big message (measured by bench/run: 4.4 MB, against 0.4 MB with
  // two arenas). Two arenas: the loop's and one the workers share.
  // NOLINTNEXTLINE(concurrency-mt-unsafe): at start, before any thread
  (void)::mallopt(M_ARENA_MAX, 2);
  // Every connection is a descriptor: allow as many as the hard limit does
  // (1,000 idle device connections must not hit the usual soft 1024).
  if (struct rlimit rl{}; ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

}  // namespace

Daemon::Daemon(config::Config cfg) : current_(std::move(cfg)) {}

Daemon::~Daemon() = default;

Result<void> Daemon::start() {
  const config::Config& cfg = current_;
  auto delivery_settings = delivery_settings_from(cfg);
  if (!delivery_settings) return tl::unexpected(delivery_settings.error());
  inherited_ = listen_fds();
  if (!inherited_.empty()) {
    log::info("socket_activation")
        .kv("sockets", static_cast<std::uint64_t>(inherited_.size()))
        .kv("note", "the sockets passed by the service manager replace the listen list");
    if (auto why = refuse_inherited(inherited_, cfg)) return fail(Errc::Invalid, *why);
  }
  auto spool = spool::Spool::open(cfg.spool.dir);
  if (!spool) return fail(spool.error().code, "cannot open spool: " + spool.error().message());
  spool_ = *spool;
  if (auto l = spool_->lock(); !l) return tl::unexpected(l.error());
  auto rec = spool_->recover();
  if (!rec) return fail(rec.error().code, "spool recovery failed: " + rec.error().message());
  if (auto why = ephemeral_spool(spool_->dir()))
    log::warn("spool_not_persistent")
        .kv("spool", spool_->dir())
        .kv("reason", *why)
        .kv("action", "mount a volume there (docker run -v spoolgate-spool:" + spool_->dir() +
                          "); queued mail is lost when the container is re-created");
  log::info("recovered")
      .kv("spool", spool_->dir())
      .kv("queued", static_cast<std::uint64_t>(rec->queued.size()))
      .kv("unreadable", static_cast<std::uint64_t>(rec->unreadable.size()))
      .kv("bytes", rec->queued_bytes)
      .kv("discarded_tmp", rec->discarded_tmp)
      .kv("moved_corrupt", rec->moved_corrupt);
  for (const auto& name : cfg.ignored_env)
    log::warn("config_ignored").kv("variable", name).kv("reason", "not a configuration variable");
  for (const auto& why : route_warnings(cfg)) log::warn("route_unused").kv("reason", why);
  if (cfg.upstreams.empty())
    log::warn("store_only").kv("reason", "no upstream configured: mail is accepted and queued, nothing is delivered");

  spool::Usage usage;
  usage.bytes = rec->queued_bytes;
  usage.messages = rec->queued.size() + rec->unreadable.size();
  if (auto f = spool_->free_bytes()) usage.free_disk = *f;
  accounting_ = std::make_unique<spool::Accounting>(spool_limits(cfg), usage);
  sched_ = std::make_unique<scheduler::Scheduler>(scheduler_policy(cfg));
  tokens_ = std::make_unique<Tokens>(loop_, spool_->dir());
  if (auto t = tokens_->configure(cfg); !t) return t;
  delivery_ = std::make_unique<upstream::Delivery>(loop_, spool_, *sched_, std::move(*delivery_settings));
  delivery_->set_tokens(tokens_.get());
  delivery_->set_fetcher(&tokens_->fetcher());
  auto inbound_settings = inbound_settings_from(cfg, inherited_);
  if (!inbound_settings) return tl::unexpected(inbound_settings.error());
  inbound_ = std::make_unique<listener::Inbound>(loop_, spool_, std::move(*inbound_settings), *accounting_);
  if (auto s = inbound_->start(); !s) return s;
  // The listener never knows the scheduler: committed mail goes to delivery
  // here, and what delivery removes lowers the spool's figures.
  inbound_->on_committed = [this](const spool::Record& r) { delivery_->insert(r); };
  delivery_->on_removed = [this](std::uint64_t bytes) { accounting_->removed(bytes); };
  delivery_->on_report = [this](const spool::Record& r) { queued(r); };
  for (const auto& r : rec->queued) delivery_->insert(r);
  for (const auto& u : rec->unreadable) {
    spool::Record r;
    r.id = u.id;
    r.arrived = u.arrived;  // attempts 0: due now, its load decides the rest
    delivery_->insert(r);
  }

  disk_timer_ = loop::Timer::create(loop_, [this] { sample_disk(); });
  disk_timer_->start(kFreeDiskInterval, kFreeDiskInterval);
  started_ = unix_now();

  // The control socket: the queue CLI talks to the running daemon here.
  RequestServer::Options control_options;
  control_options.spec.unix_socket = true;
  control_options.spec.path = spool_->dir() + "/control.sock";
  control_options.spec.mode = 0600;  // the spool's owner only (see request_server.h)
  control_ = std::make_unique<RequestServer>(loop_, control_options,
                                             [this](const std::string& request, const RequestServer::Respond& respond) {
                                               serve_control(*this, request, respond);
                                             });
  auto c = control_->start();
  if (!c) c = fail(c.error().code, "control socket: " + c.error().message());
  if (c) c = start_metrics(cfg);
  if (!c) return c;
  alerting_ = std::make_unique<Alerting>(loop_, tokens_->fetcher(), spool_->dir(), cfg.hostname);
  if (auto a = alerting_->start(cfg); !a) return fail(a.error().code, "notifications: " + a.error().message());
  delivery_->on_failed = [this](const spool::Record& r, const std::string& reason) {
    alerting_->message_failed(r, reason);
  };

  if (notifier_.enabled()) {
    // From the loop: a loop that stops turning stops the pings.
    Millis every = notifier_.watchdog_interval().value_or(Millis(10'000));
    watchdog_ = loop::Timer::create(loop_, [this] {
      if (notifier_.watchdog_interval()) notifier_.send("WATCHDOG=1");
      status();
    });
    watchdog_->start(every, every);
  }
  sigusr1_ = loop::Signal::create(loop_, SIGUSR1, [this] {
    log::info("flush").kv("by", "SIGUSR1").kv("messages", static_cast<std::uint64_t>(delivery_->flush()));
  });
  sigterm_ = loop::Signal::create(loop_, SIGTERM, [this] { stop("SIGTERM"); });
  sigint_ = loop::Signal::create(loop_, SIGINT, [this] { stop("SIGINT"); });
  sighup_ = loop::Signal::create(loop_, SIGHUP, [this] { reload(); });

  std::string addrs;
  for (const auto& a : inbound_->addresses()) addrs += (addrs.empty() ? "" : ",") + a;
  notifier_.send("READY=1");
  status();
  log::info("ready")
      .kv("listen", addrs)
      .kv("hostname", cfg.hostname)
      .kv("upstreams", static_cast<std::uint64_t>(cfg.upstreams.size()))
      .kv("queued", static_cast<std::uint64_t>(sched_->size()))
      .kv("in_delivery", static_cast<std::uint64_t>(sched_->in_flight()));
  return {};
}

void Daemon::abandon() {
  if (control_) control_->close();
  if (metrics_) metrics_->close();
  disk_timer_.reset();
  inbound_.reset();
  delivery_.reset();
  if (alerting_) {
    alerting_->close();
    alerting_->stopped_cleanly();  // a refused start is no crash
    alerting_.reset();
  }
  tokens_.reset();
  loop_.close();
}

int Daemon::run() {
  loop_.run();
  if (alerting_) alerting_->stopped_cleanly();
  inbound_.reset();
  delivery_.reset();
  alerting_.reset();
  tokens_.reset();
  int rc = loop_.close();
  if (rc != 0) {
    log::error("loop_close").kv("result", rc);
    return 70;
  }
  log::info("stopped");
  return 0;
}

// Free disk and writability are sampled off the loop (statvfs can block on
// a sick disk).
void Daemon::status_report(std::function<void(status::Report)> done) {
  Snapshot sn = snapshot();
  history_.sample(sn.now, totals_of(sn.delivery));
  auto oldest = std::make_shared<std::vector<status::Queued>>();
  loop_.queue_work(
      [spool = spool_, ids = sched_->oldest(10), oldest] {
        for (const auto& id : ids) {
          auto rec = spool->load(id);
          if (rec) oldest->push_back({id, rec->arrived, rec->attempts, rec->last_error});
        }
      },
      [this, sn = std::move(sn), oldest, done = std::move(done)] {
        done(make_report(sn, history_, std::move(*oldest)));
      });
}

void Daemon::serve_metrics(const std::string& head, const RequestServer::Respond& respond) {
  if (!wants_status(head)) return respond(http_reply(head, snapshot()));
  status_report([this, head, respond](const status::Report& r) { respond(http_reply(head, snapshot(), &r)); });
}

void Daemon::sample_disk() {
  if (delivery_) history_.sample(unix_now(), totals_of(delivery_->stats()));
  if (alerting_) alerting_->evaluate(snapshot());
  if (sampling_) return;
  sampling_ = true;
  struct Sample {
    Result<std::uint64_t> free;
    bool writable = false;
  };
  auto sample = std::make_shared<Sample>();
  loop_.queue_work(
      [sp = spool_, sample] {
        sample->free = sp->free_bytes();
        sample->writable = ::access((sp->dir() + "/queue").c_str(), W_OK | X_OK) == 0;
      },
      [this, sample] {
        sampling_ = false;
        spool_writable_ = sample->free && sample->writable;
        if (sample->free && accounting_) accounting_->set_free_disk(*sample->free);
      });
}

void Daemon::queued(const spool::Record& r, bool from_client) {
  accounting_->added(r);
  if (from_client) inbound_->count_received();
  delivery_->insert(r);
}

Snapshot Daemon::snapshot() const {
  Snapshot sn;
  sn.now = unix_now();
  sn.started = started_;
  sn.hostname = current_.hostname;
  sn.inbound = inbound_->counters();
  sn.listener_certificates = inbound_->certificates();
  sn.inbound_sessions = inbound_->sessions();
  sn.over_watermark = !accounting_->accepting();
  sn.far_over = accounting_->far_over();
  sn.usage = accounting_->usage();
  sn.listening = inbound_->listening();
  sn.spool_writable = spool_writable_;
  sn.in_delivery = sched_->in_flight();
  sn.oldest_arrival = sched_->oldest_arrival_ms() / 1000;
  sn.delivery = delivery_->stats();
  sn.upstreams = delivery_->site_stats();
  sn.routed = delivery_->routed_counts();
  sn.unreachable_after = current_.metrics.unreachable_after.count() / 1000;
  if (alerting_) {
    sn.alerts = alerting_->active();
    sn.notify_pending = alerting_->pending();
    sn.notify_sent = alerting_->stats().sent;
    sn.notify_dropped = alerting_->stats().dropped;
  }
  if (tokens_) sn.oauth = tokens_->snapshot(current_);
  for (const auto& e : current_.expect) {
    Snapshot::Heartbeat h{e.name(), e.every.count() / 1000, 0, false};
    if (!e.device.empty()) {
      auto it = sn.inbound.seen.find(e.device);
      if (it != sn.inbound.seen.end()) h.last = it->second.last;
    } else if (auto it = sn.inbound.senders_seen.find(e.sender); it != sn.inbound.senders_seen.end()) {
      h.last = it->second;
    }
    h.missed = sn.now - std::max(h.last, started_) > h.every;
    sn.heartbeats.push_back(std::move(h));
  }
  return sn;
}

Result<void> Daemon::start_metrics(const config::Config& c) {
  if (metrics_) {
    metrics_->close();
    retired_.push_back(std::move(metrics_));
  }
  if (c.metrics.listen.empty()) return {};
  RequestServer::Options o;
  o.spec = spec_of(c.metrics.address);
  o.terminator = "\r\n\r\n";
  o.max_request = 8192;
  o.max_clients = 16;
  o.timeout = Millis(5000);
  o.allow = c.metrics.allow_networks;
  auto m = std::make_unique<RequestServer>(
      loop_, o,
      [this](const std::string& head, const RequestServer::Respond& respond) { serve_metrics(head, respond); });
  if (auto r = m->start(); !r)
    return fail(r.error().code, "metrics.listen " + c.metrics.listen + ": " + r.error().message());
  log::info("metrics_listening").kv("address", m->address());
  metrics_ = std::move(m);
  return {};
}

void Daemon::status() {
  std::string s = "STATUS=queue " + std::to_string(sched_->size()) + " message(s), " +
                  std::to_string(sched_->in_flight()) + " in delivery; ";
  if (current_.upstreams.empty())
    s += "store-only (no upstream)";
  else
    s += std::to_string(delivery_->stats().delivered) + " delivered; upstreams " + delivery_->site_summary();
  notifier_.send(s);
}

void Daemon::stop(const char* why) {
  if (stopping_) return;
  stopping_ = true;
  log::info("shutdown").kv("reason", why).kv("sessions", static_cast<std::uint64_t>(inbound_->sessions()));
  notifier_.send("STOPPING=1");
  control_->close();
  if (metrics_) metrics_->close();
  watchdog_.reset();
  sigusr1_.reset();
  disk_timer_.reset();
  sigterm_.reset();
  sigint_.reset();
  sighup_.reset();
  deadline_ = loop::Timer::create(loop_, [this] {
    log::warn("shutdown_deadline").kv("sessions", static_cast<std::uint64_t>(inbound_->sessions()));
    inbound_->abort_sessions();
    delivery_->abort();
  });
  deadline_->start(current_.shutdown_timeout);
  auto pending = std::make_shared<int>(2);
  auto one_done = [this, pending] {
    if (--*pending != 0) return;
    deadline_.reset();
    if (alerting_) alerting_->close();  // what is pending stays in the spool for the next start
    tokens_->close();                   // the last session is done with its token: the helper and timers go
  };
  inbound_->shutdown(one_done);
  delivery_->shutdown(one_done);
}

std::optional<std::string> Daemon::reload() {
  notifier_.send("RELOADING=1");
  auto done = [this] {
    notifier_.send("READY=1");
    status();
  };
  auto refuse = [&](const std::string& why) -> std::optional<std::string> {
    log::error("reload_refused").kv("reason", why).kv("action", "keeping the running configuration");
    done();
    return why;
  };
  auto next = config::load(current_.source, config::process_env());
  if (!next) {
    for (const auto& e : next.error()) log::error("reload_error").kv("reason", e);
    std::string why = std::to_string(next.error().size()) + " configuration error(s)";
    if (!next.error().empty()) why += ": " + next.error().front();
    return refuse(why);
  }
  if (next->spool.dir != current_.spool.dir)
    log::warn("reload_partial").kv("reason", "spool.dir changes need a restart; the running spool stays");
  next->spool.dir = current_.spool.dir;
  auto ds = delivery_settings_from(*next);
  if (!ds) return refuse(ds.error().message());
  if (auto why = refuse_inherited(inherited_, *next)) return refuse(*why);
  auto is = inbound_settings_from(*next, inherited_);
  if (!is) return refuse(is.error().message());
  if (auto r = inbound_->reconfigure(std::move(*is)); !r) return refuse(r.error().message());
  accounting_->set_limits(spool_limits(*next));
  if (next->metrics.listen != current_.metrics.listen) {
    if (auto r = start_metrics(*next); !r) log::error("metrics_failed").kv("reason", r.error().message());
  }
  if (auto t = tokens_->configure(*next); !t) log::error("oauth_failed").kv("reason", t.error().message());
  alerting_->configure(*next);
  delivery_->reconfigure(std::move(*ds));
  sched_->set_policy(scheduler_policy(*next));
  set_logging(*next);
  bool had_upstreams = !current_.upstreams.empty();
  current_ = std::move(*next);
  log::info("reloaded")
      .kv("source", current_.source.empty() ? std::string("(environment)") : current_.source)
      .kv("upstreams", static_cast<std::uint64_t>(current_.upstreams.size()));
  if (current_.upstreams.empty())
    log::warn("store_only")
        .kv("reason", std::string(had_upstreams ? "the reload removed every upstream: " : "no upstream configured: ") +
                          "mail is accepted and queued, nothing is delivered");
  done();
  return std::nullopt;
}

int run_daemon(const config::Config& cfg) {
  set_logging(cfg);
  process_setup();
  Daemon d(cfg);
  if (auto r = d.start(); !r) {
    log::error("fatal").kv("reason", r.error().message());
    d.abandon();
    return 1;
  }
  return d.run();
}

}  // namespace spoolgate::app
