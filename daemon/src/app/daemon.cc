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

#include "app/metrics.h"
#include "app/notify.h"
#include "app/queue_cli.h"
#include "app/request_server.h"
#include "app/upstreams.h"
#include "core/cidr.h"
#include "core/clock.h"
#include "core/ids.h"
#include "core/log.h"
#include "listener/inbound.h"
#include "loop/loop.h"
#include "scheduler/scheduler.h"
#include "spool/spool.h"
#include "upstream/delivery.h"

namespace spoolgate::app {
namespace {

constexpr Millis kFreeDiskInterval{1000};

net::ListenSpec spec_of(const config::ListenAddress& l) { return {l.unix_socket, l.host, l.port, l.path}; }

// Socket activation: the sockets systemd passed (`inherited`) replace the
// `listen` list, at start and on every reload.
listener::Settings inbound_settings(const config::Config& c, const std::vector<int>& inherited) {
  listener::Settings s;
  // unix:/path listeners: the configured mode, the spool directory's group
  // (the local users who may submit are in it).
  struct stat spool_st {};
  int spool_gid = ::stat(c.spool.dir.c_str(), &spool_st) == 0 ? static_cast<int>(spool_st.st_gid) : -1;
  for (const auto& l : c.listen) {
    net::ListenSpec spec = spec_of(l);
    spec.mode = c.unix_socket_mode;
    spec.gid = spool_gid;
    s.listen.push_back(spec);
  }
  if (!c.submission_socket.empty()) {
    // Local submission (`spoolgate sendmail`): SMTP over a unix socket that
    // every local user may write to; the daemon owns every spool file.
    net::ListenSpec spec;
    spec.unix_socket = true;
    spec.path = c.submission_socket;
    spec.mode = 0666;
    s.submission = spec;
  }
  if (!inherited.empty()) {
    s.listen.clear();
    for (int fd : inherited) {
      net::ListenSpec spec;
      spec.fd = fd;
      s.listen.push_back(spec);
    }
  }
  s.allow_networks = c.allow_networks;
  s.smtp.hostname = c.hostname;
  s.smtp.max_message_size = c.limits.max_message_size;
  s.smtp.max_recipients = c.limits.max_recipients;
  s.smtp.max_envelope_bytes = spool::kMaxHeaderBytes;
  s.smtp.max_bad_commands = static_cast<int>(std::min<std::uint64_t>(c.limits.max_bad_commands, 1000000));
  s.smtp.reject_bare_newlines = c.bare_newlines == config::BareNewlines::Reject;
  s.smtp.add_missing_headers = c.headers.add_missing;
  s.smtp.rewrite_from = c.headers.rewrite_from;
  s.max_connections = c.limits.max_connections;
  s.max_connections_per_client = c.limits.max_connections_per_client;
  s.idle_timeout = c.limits.idle_timeout;
  s.data_timeout = c.limits.data_timeout;
  s.greeting_delay = c.limits.greeting_delay;
  s.spool_max_bytes = c.spool.max_bytes;
  s.spool_max_messages = c.spool.max_messages;
  s.spool_min_free_disk = c.spool.min_free_disk;
  return s;
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

}  // namespace

int run_daemon(const config::Config& cfg) {
  config::Config current = cfg;  // replaced by each successful reload
  log::set_level(level_of(cfg.log.level));
  log::set_format(cfg.log.format == "json" ? log::Format::Json : log::Format::Text);
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

  auto delivery_settings = delivery_settings_from(cfg);
  if (!delivery_settings) {
    log::error("fatal").kv("reason", delivery_settings.error().message());
    return 1;
  }

  const std::vector<int> inherited = listen_fds();
  if (!inherited.empty()) {
    log::info("socket_activation")
        .kv("sockets", static_cast<std::uint64_t>(inherited.size()))
        .kv("note", "the sockets passed by the service manager replace the listen list");
    if (auto why = refuse_inherited(inherited, cfg)) {
      log::error("fatal").kv("reason", *why);
      return 1;
    }
  }

  auto spool = spool::Spool::open(cfg.spool.dir);
  if (!spool) {
    log::error("fatal").kv("reason", "cannot open spool: " + spool.error().message());
    return 1;
  }
  if (auto l = (*spool)->lock(); !l) {
    log::error("fatal").kv("reason", l.error().message());
    return 1;
  }
  auto rec = (*spool)->recover();
  if (!rec) {
    log::error("fatal").kv("reason", "spool recovery failed: " + rec.error().message());
    return 1;
  }
  if (auto why = ephemeral_spool((*spool)->dir()))
    log::warn("spool_not_persistent")
        .kv("spool", (*spool)->dir())
        .kv("reason", *why)
        .kv("action", "mount a volume there (docker run -v spoolgate-spool:" + (*spool)->dir() +
                          "); queued mail is lost when the container is re-created");
  log::info("recovered")
      .kv("spool", (*spool)->dir())
      .kv("queued", static_cast<std::uint64_t>(rec->queued.size()))
      .kv("unreadable", static_cast<std::uint64_t>(rec->unreadable.size()))
      .kv("bytes", rec->queued_bytes)
      .kv("discarded_tmp", rec->discarded_tmp)
      .kv("moved_corrupt", rec->moved_corrupt);
  for (const auto& name : cfg.ignored_env)
    log::warn("config_ignored").kv("variable", name).kv("reason", "not a configuration variable");
  if (cfg.upstreams.empty())
    log::warn("store_only").kv("reason", "no upstream configured: mail is accepted and queued, nothing is delivered");

  loop::Loop loop;
  listener::Usage usage;
  usage.bytes = rec->queued_bytes;
  usage.messages = rec->queued.size() + rec->unreadable.size();
  if (auto f = (*spool)->free_bytes()) usage.free_disk = *f;
  scheduler::Scheduler sched(scheduler_policy(cfg));
  auto delivery = std::make_unique<upstream::Delivery>(loop, *spool, sched, std::move(*delivery_settings));
  auto inbound = std::make_unique<listener::Inbound>(loop, *spool, inbound_settings(cfg, inherited), usage);
  if (auto s = inbound->start(); !s) {
    log::error("fatal").kv("reason", s.error().message());
    inbound.reset();
    delivery.reset();
    loop.close();
    return 1;
  }
  // The listener never knows the scheduler: committed mail goes to delivery
  // here, and what delivery removes lowers the spool usage there.
  inbound->on_committed = [&](const spool::Record& r) { delivery->insert(r); };
  delivery->on_removed = [&](std::uint64_t bytes) { inbound->removed(bytes); };
  delivery->on_report = [&](const spool::Record& r) {
    inbound->add_usage(r);
    delivery->insert(r);
  };
  for (const auto& r : rec->queued) delivery->insert(r);
  for (const auto& u : rec->unreadable) {
    spool::Record r;
    r.id = u.id;
    r.arrived = u.arrived;  // attempts 0: due now, its load decides the rest
    delivery->insert(r);
  }

  // Free disk and writability are sampled off the loop (statvfs can block
  // on a sick disk).
  bool sampling = false;
  bool spool_writable = true;
  auto disk_timer = loop::Timer::create(loop, [&] {
    if (sampling) return;
    sampling = true;
    struct Sample {
      Result<std::uint64_t> free;
      bool writable = false;
    };
    auto sample = std::make_shared<Sample>();
    loop.queue_work(
        [sp = *spool, sample] {
          sample->free = sp->free_bytes();
          sample->writable = ::access((sp->dir() + "/queue").c_str(), W_OK | X_OK) == 0;
        },
        [&, sample] {
          sampling = false;
          spool_writable = sample->free && sample->writable;
          if (sample->free && inbound) inbound->set_free_disk(*sample->free);
        });
  });
  disk_timer->start(kFreeDiskInterval, kFreeDiskInterval);

  std::int64_t started = unix_now();
  auto snapshot = [&] {
    Snapshot sn;
    sn.now = unix_now();
    sn.started = started;
    sn.hostname = current.hostname;
    sn.inbound = inbound->counters();
    sn.inbound_sessions = inbound->sessions();
    sn.over_watermark = !inbound->accepting();
    sn.far_over = inbound->far_over();
    sn.usage = inbound->usage();
    sn.listening = inbound->listening();
    sn.spool_writable = spool_writable;
    sn.in_delivery = sched.in_flight();
    sn.oldest_arrival = sched.oldest_arrival_ms() / 1000;
    sn.delivery = delivery->stats();
    sn.upstreams = delivery->site_stats();
    sn.unreachable_after = current.metrics.unreachable_after.count() / 1000;
    return sn;
  };

  // The control socket: the queue CLI talks to the running daemon here.
  std::function<std::optional<std::string>()> reload;  // set below, once everything it touches exists
  RequestServer::Options control_options;
  control_options.spec.unix_socket = true;
  control_options.spec.path = (*spool)->dir() + "/control.sock";
  control_options.spec.mode = 0600;  // the spool's owner only (see request_server.h)
  RequestServer control(loop, control_options, [&](const std::string& request, const RequestServer::Respond& respond) {
    std::string line = request;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t space = line.find(' ');
    std::string verb = line.substr(0, space);
    std::string arg = space == std::string::npos ? "" : line.substr(space + 1);
    if (verb == "health") {
      Health h = check_health(snapshot(), arg != "live");
      return respond((h.ok ? "ok\n" : "error: ") + h.reason + "\n");
    }
    if (verb == "active") {  // read only, like health: not logged
      std::string out = "ok\n";
      for (const auto& id : delivery->scheduler().flying_ids()) out += id + "\n";
      return respond(out);
    }
    log::info("control").kv("verb", verb).kv("arg", arg);
    // Every verb that names a message takes a queue id and nothing else
    // (no "../", no path): the same check as `show`.
    if ((verb == "retry" || verb == "delete" || verb == "inject") && !is_queue_id(arg))
      return respond("error: '" + arg + "' is not a queue id\n");
    if (verb == "reload") {
      if (!reload) return respond("error: the daemon is still starting\n");
      auto why = reload();
      return respond(why ? "error: reload refused: " + *why + "\n" : "ok\nreloaded\n");
    }
    if (verb == "flush") {
      std::size_t n = delivery->flush();
      return respond("ok\nflushed: " + std::to_string(n) + " message(s) due now\n");
    }
    if (verb == "retry") {
      if (delivery->retry(arg)) return respond("ok\n" + arg + " is due now\n");
      return respond("error: " + arg + " is not queued, or is being delivered\n");
    }
    if (verb == "delete") {
      return delivery->remove(arg, [respond, arg](bool ok, const std::string& why) {
        respond(ok ? "ok\n" + arg + " deleted\n" : "error: " + why + "\n");
      });
    }
    if (verb == "inject") {
      // A message `spoolgate sendmail` committed to the spool. Once: a
      // repeated inject must not count its size twice.
      if (delivery->scheduler().contains(arg)) return respond("ok\nalready queued\n");
      auto loaded = std::make_shared<Result<spool::Record>>();
      auto sp = *spool;
      return loop.queue_work([sp, arg, loaded] { *loaded = sp->load(arg); },
                             [&, respond, loaded, arg] {
                               if (!*loaded) return respond("error: " + loaded->error().message() + "\n");
                               if (delivery->scheduler().contains(arg)) return respond("ok\nalready queued\n");
                               log::info("queued").kv("msg", arg).kv("client", "sendmail");
                               inbound->committed(**loaded);
                               respond("ok\n");
                             });
    }
    if (verb == "show") {
      auto out = std::make_shared<std::string>();
      auto sp = *spool;
      return loop.queue_work([sp, arg, out] { *out = show_message(*sp, arg); }, [respond, out] { respond(*out); });
    }
    respond("error: unknown request '" + verb + "'\n");
  });
  // The metrics endpoint, when configured. A server that a reload replaced
  // is closed and kept until the loop ends: its clients' last callbacks
  // still reach it.
  std::unique_ptr<RequestServer> metrics;
  std::vector<std::unique_ptr<RequestServer>> retired;
  auto start_metrics = [&](const config::Config& c) -> Result<void> {
    if (metrics) {
      metrics->close();
      retired.push_back(std::move(metrics));
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
        loop, o,
        [&](const std::string& head, const RequestServer::Respond& respond) { respond(http_reply(head, snapshot())); });
    if (auto r = m->start(); !r)
      return tl::unexpected(
          Error{r.error().code, 0, "metrics.listen " + c.metrics.listen + ": " + r.error().message()});
    log::info("metrics_listening").kv("address", m->address());
    metrics = std::move(m);
    return {};
  };
  auto c = control.start();
  if (!c) c = tl::unexpected(Error{c.error().code, 0, "control socket: " + c.error().message()});
  if (c) c = start_metrics(cfg);
  if (!c) {
    log::error("fatal").kv("reason", c.error().message());
    control.close();
    inbound.reset();
    delivery.reset();
    loop.close();
    return 1;
  }

  Notifier notifier;
  auto status = [&] {
    std::string s = "STATUS=queue " + std::to_string(sched.size()) + " message(s), " +
                    std::to_string(sched.in_flight()) + " in delivery; ";
    if (current.upstreams.empty())
      s += "store-only (no upstream)";
    else
      s += std::to_string(delivery->stats().delivered) + " delivered; upstreams " + delivery->site_summary();
    notifier.send(s);
  };
  loop::HandlePtr<loop::Timer> watchdog;
  if (notifier.enabled()) {
    // From the loop: a loop that stops turning stops the pings.
    Millis every = notifier.watchdog_interval().value_or(Millis(10'000));
    watchdog = loop::Timer::create(loop, [&] {
      if (notifier.watchdog_interval()) notifier.send("WATCHDOG=1");
      status();
    });
    watchdog->start(every, every);
  }
  loop::HandlePtr<loop::Signal> sigusr1 = loop::Signal::create(loop, SIGUSR1, [&] {
    log::info("flush").kv("by", "SIGUSR1").kv("messages", static_cast<std::uint64_t>(delivery->flush()));
  });

  loop::HandlePtr<loop::Timer> deadline;
  loop::HandlePtr<loop::Signal> sigterm, sigint, sighup;
  bool stopping = false;
  auto stop = [&](const char* why) {
    if (stopping) return;
    stopping = true;
    log::info("shutdown").kv("reason", why).kv("sessions", static_cast<std::uint64_t>(inbound->sessions()));
    notifier.send("STOPPING=1");
    control.close();
    if (metrics) metrics->close();
    watchdog.reset();
    sigusr1.reset();
    disk_timer.reset();
    sigterm.reset();
    sigint.reset();
    sighup.reset();
    deadline = loop::Timer::create(loop, [&] {
      log::warn("shutdown_deadline").kv("sessions", static_cast<std::uint64_t>(inbound->sessions()));
      inbound->abort_sessions();
      delivery->abort();
    });
    deadline->start(current.shutdown_timeout);
    auto pending = std::make_shared<int>(2);
    auto one_done = [&, pending] {
      if (--*pending == 0) deadline.reset();
    };
    inbound->shutdown(one_done);
    delivery->shutdown(one_done);
  };
  sigterm = loop::Signal::create(loop, SIGTERM, [&] { stop("SIGTERM"); });
  sigint = loop::Signal::create(loop, SIGINT, [&] { stop("SIGINT"); });
  // One reload path for SIGHUP and `spoolgate reload` (the unit's
  // ExecReload, which reports a refused reload as a failure). Returns the
  // reason when the reload was refused (the running configuration stays).
  reload = [&]() -> std::optional<std::string> {
    notifier.send("RELOADING=1");
    auto done = [&] {
      notifier.send("READY=1");
      status();
    };
    auto refuse = [&](const std::string& why) -> std::optional<std::string> {
      log::error("reload_refused").kv("reason", why).kv("action", "keeping the running configuration");
      done();
      return why;
    };
    auto next = config::load(current.source, config::process_env());
    if (!next) {
      for (const auto& e : next.error()) log::error("reload_error").kv("reason", e);
      std::string why = std::to_string(next.error().size()) + " configuration error(s)";
      if (!next.error().empty()) why += ": " + next.error().front();
      return refuse(why);
    }
    if (next->spool.dir != current.spool.dir)
      log::warn("reload_partial").kv("reason", "spool.dir changes need a restart; the running spool stays");
    next->spool.dir = current.spool.dir;
    auto ds = delivery_settings_from(*next);
    if (!ds) return refuse(ds.error().message());
    if (auto why = refuse_inherited(inherited, *next)) return refuse(*why);
    if (auto r = inbound->reconfigure(inbound_settings(*next, inherited)); !r) return refuse(r.error().message());
    if (next->metrics.listen != current.metrics.listen) {
      if (auto r = start_metrics(*next); !r) log::error("metrics_failed").kv("reason", r.error().message());
    }
    delivery->reconfigure(std::move(*ds));
    sched.set_policy(scheduler_policy(*next));
    log::set_level(level_of(next->log.level));
    log::set_format(next->log.format == "json" ? log::Format::Json : log::Format::Text);
    bool had_upstreams = !current.upstreams.empty();
    current = std::move(*next);
    log::info("reloaded")
        .kv("source", current.source.empty() ? std::string("(environment)") : current.source)
        .kv("upstreams", static_cast<std::uint64_t>(current.upstreams.size()));
    if (current.upstreams.empty())
      log::warn("store_only")
          .kv("reason", std::string(had_upstreams ? "the reload removed every upstream: "
                                                  : "no upstream configured: ") +
                            "mail is accepted and queued, nothing is delivered");
    done();
    return std::nullopt;
  };
  sighup = loop::Signal::create(loop, SIGHUP, [&] { reload(); });

  std::string addrs;
  for (const auto& a : inbound->addresses()) addrs += (addrs.empty() ? "" : ",") + a;
  notifier.send("READY=1");
  status();
  log::info("ready")
      .kv("listen", addrs)
      .kv("hostname", cfg.hostname)
      .kv("upstreams", static_cast<std::uint64_t>(cfg.upstreams.size()))
      .kv("queued", static_cast<std::uint64_t>(sched.size()))
      .kv("in_delivery", static_cast<std::uint64_t>(sched.in_flight()));

  loop.run();
  inbound.reset();
  delivery.reset();
  int rc = loop.close();
  if (rc != 0) {
    log::error("loop_close").kv("result", rc);
    return 70;
  }
  log::info("stopped");
  return 0;
}

}  // namespace spoolgate::app
