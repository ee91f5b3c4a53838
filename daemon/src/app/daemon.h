// SPDX-License-Identifier: MIT
// app/daemon: the running daemon as one object. Owns the loop, the spool,
// the scheduler, delivery (upstream side), the listener side, the control
// socket, the metrics endpoint, the systemd notifier and the signals, and
// wires them: committed mail goes to delivery, what delivery removes lowers
// the spool usage (the listener never knows the scheduler).
//
// start() opens and recovers the spool, binds the listeners, the control
// socket and the metrics endpoint; any error there is fatal and comes back
// before anything is accepted (abandon() then closes what was started).
// run() turns the loop until stop() has finished and returns the exit code:
// 0 only when the loop closes with no handle left, 70 otherwise. stop()
// (SIGTERM/SIGINT): stop listening, 421 to idle clients, let messages in
// progress finish until shutdown_timeout, then close the rest. reload()
// (SIGHUP, `spoolgate reload`): the new configuration in full or, with the
// reason returned, none of it. The control protocol is app/control.h.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "app/alerting.h"
#include "app/metrics.h"
#include "app/notify.h"
#include "app/request_server.h"
#include "app/status.h"
#include "app/tokens.h"
#include "config/config.h"
#include "listener/inbound.h"
#include "loop/loop.h"
#include "scheduler/scheduler.h"
#include "spool/accounting.h"
#include "spool/spool.h"
#include "upstream/delivery.h"

namespace spoolgate::app {

class Daemon {
 public:
  explicit Daemon(config::Config cfg);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Fatal errors (logged by the caller) before anything is accepted; then
  // abandon() closes what was started.
  Result<void> start();
  void abandon();
  // After start(): the loop until stopped; the process exit code.
  int run();
  // The one reload path; the reason when refused (the running
  // configuration stays).
  std::optional<std::string> reload();
  void stop(const char* why);
  // The figures metrics and health are rendered from.
  Snapshot snapshot() const;
  // The status report (app/status.h): the oldest messages' records are
  // read on a worker; done runs on the loop.
  void status_report(std::function<void(status::Report)> done);

  // For the control protocol.
  loop::Loop& loop() { return loop_; }
  const std::shared_ptr<spool::Spool>& spool() const { return spool_; }
  upstream::Delivery& delivery() { return *delivery_; }
  Tokens& tokens() { return *tokens_; }
  // A message put in the spool other than through the listener (a failure
  // report; one `spoolgate sendmail` wrote itself, which is also counted as
  // received from a client): added to the spool's figures, scheduled.
  void queued(const spool::Record& r, bool from_client = false);

 private:
  Result<void> start_metrics(const config::Config& c);
  void sample_disk();
  void status();
  void serve_metrics(const std::string& head, const RequestServer::Respond& respond);

  loop::Loop loop_;         // first: destroyed last
  config::Config current_;  // replaced by each successful reload
  std::vector<int> inherited_;
  std::shared_ptr<spool::Spool> spool_;
  std::unique_ptr<spool::Accounting> accounting_;
  std::unique_ptr<scheduler::Scheduler> sched_;
  std::unique_ptr<Tokens> tokens_;  // before delivery_: its links use it until they are gone
  std::unique_ptr<Alerting> alerting_;  // after tokens_: it sends through its fetcher
  std::unique_ptr<upstream::Delivery> delivery_;
  std::unique_ptr<listener::Inbound> inbound_;
  std::unique_ptr<RequestServer> control_;
  // A metrics server a reload replaced is closed and kept until the loop
  // ends: its clients' last callbacks still reach it.
  std::unique_ptr<RequestServer> metrics_;
  std::vector<std::unique_ptr<RequestServer>> retired_;
  Notifier notifier_;
  loop::HandlePtr<loop::Timer> disk_timer_, watchdog_, deadline_;
  loop::HandlePtr<loop::Signal> sigterm_, sigint_, sighup_, sigusr1_;
  std::int64_t started_ = 0;
  status::History history_;  // sampled by the one-second disk timer
  bool sampling_ = false;
  bool spool_writable_ = true;
  bool stopping_ = false;
};

// Process set-up (signals, limits, no core dumps), then a Daemon until a
// shutdown signal; returns the process exit code.
int run_daemon(const config::Config& cfg);

}  // namespace spoolgate::app
