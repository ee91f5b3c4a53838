// SPDX-License-Identifier: MIT
// upstream/delivery: outbound sessions to the providers.
//
// Delivery decides nothing about timing (the scheduler does) and nothing
// about bytes on the wire (smtp::Client does). It starts sessions while the
// scheduler has due messages and an upstream is usable, up to
// max_connections; each session takes one message, connects, delivers, and
// takes the next (RSET between) up to messages_per_connection. A session with
// nothing left to send is held open for idle_hold: new mail goes to a held
// session before a new one is started (one TLS handshake and login per burst
// instead of per message); when the hold ends it QUITs.
//
// Upstreams are tried in order. Site trouble (connect/TLS failure, a refused
// greeting, STARTTLS missing, 421, authentication refused) marks that
// upstream down for a backoff; a message carried then goes to the next usable
// upstream at once, or is deferred when none is left. The first session that
// gets through resumes normal flow.
//
// Routes (Settings::routing, from config routes and devices[].upstream):
// each recipient goes through the group of upstreams its rule names,
// failover in that order. The scheduler keeps with each message the keys of
// the groups it waits for (a route string, routing/routes.h). A session
// carries only the recipients whose group holds its upstream; a message
// whose recipients have different groups is delivered group by group, one
// transaction each, in rounds: after one group's attempt the next group is
// due at once, and only when every group has had its attempt does the
// message back off (so a part that fails is retried alone, and a part
// delivered is never sent again: the recipient states are in the one state
// file, written by one attempt at a time). A due message whose upstreams
// are all down waits (in the scheduler) until the first of them is back,
// without holding up other mail; one whose recipients no rule takes is
// deferred with that reason (a reload may add the rule). A reload makes
// every waiting message's route "any": the session that loads it puts it
// on its right route. Without routes none of this costs anything per
// message.
//
// Outcomes are written to the spool (remove, move to failed/, or the state
// file) on a worker thread before the scheduler hears of them
// (upstream/outcome.h: decide, persist, then apply here).
//
// Expiry: a message that outlives delivery.max_lifetime while it waits
// (behind a site backoff, or between attempts) is failed here with a 4.4.7
// report, whether or not a session ever takes it again.
//
// Delivery's own disk jobs (operator deletes, expiry, quarantine of a
// corrupt entry) go through work(); shutdown waits for them as for the
// sessions, so no completion outlives Delivery.
//
// One class, three files by concern: delivery.cc (sessions, sites,
// outcomes), delivery_routes.cc (routes), delivery_limits.cc (the
// upstreams' limits).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/units.h"
#include "http/fetcher.h"
#include "loop/loop.h"
#include "pacing/pacer.h"
#include "routing/routes.h"
#include "scheduler/scheduler.h"
#include "smtp/client.h"
#include "smtp/trouble.h"
#include "spool/spool.h"
#include "upstream/link.h"
#include "upstream/outcome.h"
#include "upstream/policy.h"

namespace spoolgate::upstream {

struct Settings {
  std::vector<Upstream> upstreams;
  std::string helo = "localhost";
  std::size_t max_connections = 4;
  std::size_t messages_per_connection = 100;
  Millis idle_hold{2'000};
  Timeouts timeouts;
  bool bounce = true;  // DSN to the sender on permanent failure
  // Which upstreams each recipient may go through (indices into
  // upstreams); null or trivial: every upstream, in order.
  std::shared_ptr<const routing::Table> routing;
};

struct Stats {
  std::uint64_t delivered = 0, deferred = 0, failed = 0, bounced = 0, sessions = 0, tls_failures = 0, auth_failures = 0,
                duplicate_risk = 0;
  std::int64_t last_delivered = 0;  // unix seconds, 0: never
};

// Per upstream (keyed by its URL, so the figures survive a reload that keeps
// the upstream), for metrics and health.
struct SiteStats {
  std::uint64_t connections = 0, tls_failures = 0, auth_failures = 0;
  std::int64_t last_success = 0;    // unix seconds a session last got through (0: never)
  std::int64_t failing_since = 0;   // first failure since then (0: not failing)
  std::int64_t cert_not_after = 0;  // leaf certificate of the last handshake (0: none yet)
  std::string last_error;
  // Our side is wrong (credentials refused, SMTP AUTH off, send-as denied,
  // sending quota reached): the reason, until a delivery gets through.
  std::string misconfigured;
  bool down = false;  // in site backoff now (filled in by site_stats())
  // Filled in by site_stats(): sessions open, messages held for it, and per
  // limit it has ("messages_per_minute", ...) the figure and the use now.
  std::uint64_t sessions = 0, held = 0;
  std::vector<std::pair<std::string, std::uint64_t>> limits, used;
};

class Carrier;

class Delivery {
 public:
  Delivery(loop::Loop& loop, std::shared_ptr<spool::Spool> spool, scheduler::Scheduler& sched, Settings s);
  ~Delivery();
  Delivery(const Delivery&) = delete;
  Delivery& operator=(const Delivery&) = delete;

  // A committed (or recovered) message: schedule it and start work.
  void insert(const spool::Record& r);
  void kick();
  // A reload: sessions in progress keep the upstream they have; new sessions
  // use the new list. Site backoff starts afresh.
  void reconfigure(Settings s);
  // Queue flush: every deferred or held message and every upstream in
  // backoff is due now; a quota reply's hold ends (the windows the limits
  // count stay). Returns how many messages were waiting.
  std::size_t flush();
  // One message due now; false when unknown or being delivered.
  bool retry(const std::string& id);
  // Deletes a queued message from the spool; done(ok, why). A message being
  // delivered is not deleted.
  void remove(const std::string& id, const std::function<void(bool ok, std::string why)>& done);
  // Stop starting sessions; sessions finish the message they carry and QUIT.
  void shutdown(std::function<void()> done);
  void abort();
  bool idle() const { return sessions_.empty(); }
  const Stats& stats() const { return stats_; }

  // A message left the spool (delivered or failed): its size, for usage.
  std::function<void(std::uint64_t bytes)> on_removed;
  // A failure report was committed to the spool: schedule and count it.
  std::function<void(const spool::Record&)> on_report;
  // A message failed for good (some or all of its recipients; its failed
  // recipients are marked in rec): the operator's notification.
  std::function<void(const spool::Record&, const std::string& reason)> on_failed;

  // For sessions.
  loop::Loop& loop() { return loop_; }
  const std::shared_ptr<spool::Spool>& spool() const { return spool_; }
  // Read-only: only Delivery changes the schedule (sessions end attempts
  // through record() and hand_back()).
  const scheduler::Scheduler& scheduler() const { return sched_; }
  const Settings& settings() const { return s_; }
  Stats& stats() { return stats_; }
  // The next due message for a session that is up on `upstream` and that
  // upstream may carry (site backoff does not stop a connection that works;
  // it stops new ones).
  std::optional<std::string> take_job(std::size_t upstream);
  // A transaction of `rcpts` recipients is about to start on `upstream`:
  // counted against its limits, or (nullopt means counted) the window
  // that is full, for hold().
  // *stamp: when it was counted, for admitted_done().
  std::optional<pacing::Wait> admit(std::size_t upstream, std::uint64_t rcpts, std::int64_t* stamp);
  // What a session does with a message it loaded, the same for every kind
  // of upstream. Carry: these recipients (counted against the limits at
  // *stamp). Skip: nothing here (none routed to this upstream: back on its
  // route; a window of the limits full: held), take the next. Finish:
  // nothing is pending (a crash after the last outcome): record that.
  // Fail: the message is larger than the upstream's max_message_size: this
  // upstream's part fails at once, as the provider's 552 would, with the
  // reason: record `failed`.
  struct Screen {
    enum class Do { Carry, Skip, Finish, Fail } what = Do::Carry;
    std::vector<std::size_t> rcpts;
    std::shared_ptr<spool::Record> failed;
    std::vector<std::string> why;
  };
  Screen screen(const spool::Record& rec, std::size_t upstream, std::int64_t* stamp);
  // The transaction admitted at `stamp` got its last reply: the provider
  // counted it now (Pacer::restamp).
  void admitted_done(std::size_t upstream, std::int64_t stamp, std::uint64_t rcpts);
  // A message that waits for a window of its upstreams' limits to open:
  // due then, not an attempt, not an error (queue list: held).
  void hold(const std::string& id, const pacing::Wait& w, std::size_t upstream);
  struct Held {
    std::int64_t until_ms = 0;
    std::string reason;
    std::size_t upstream = 0;  // whose window
  };
  // Messages queued per route key (what /metrics shows); without routes none.
  const std::map<std::string, std::uint64_t, std::less<>>& routed_counts() const { return routed_; }
  // The messages held now, and each waiting message's route (for queue
  // list and show).
  const std::map<std::string, Held>& held() const { return held_; }
  // The recipients of `rec` a session on `upstream` carries now: pending,
  // routed to a group that holds the upstream and that the message waits
  // for (every pending one without routes).
  std::vector<std::size_t> carried(const spool::Record& rec, std::size_t upstream) const;
  // A message a session took but may carry none of: back on its right route,
  // unattempted.
  void reroute(const spool::Record& rec);
  // Where message `id` goes after a site failure of `upstream`: another
  // usable upstream of its route (hand it back due now) or none (defer it).
  bool other_upstream_usable(std::size_t upstream, const std::string& id) const;
  // wait: how long the server asked for (Retry-After); none: the backoff.
  void site_failure(std::size_t upstream, const smtp::Failure& f, std::optional<Millis> wait = std::nullopt);
  // Connected and authenticated. While the upstream is misconfigured this
  // does not end its backoff: only a delivery does (site_delivered).
  void site_success(std::size_t upstream);
  // A reply about our account (smtp/trouble.h: Misconfigured or Quota):
  // site backoff, a loud log line once, the health state raised.
  void site_misconfigured(std::size_t upstream, smtp::Trouble t, const std::string& reason);
  void site_delivered(std::size_t upstream);
  void release(Carrier* s);
  // The one end of an attempt, for every kind of upstream session. rec: the
  // message with the attempt's recipient states (policy.h: assess) and
  // attempts counted, or a deferral (no recipient decided, the reason in
  // last_error); failed: the recipients failed for good now. Decides
  // (lifetime, backoff), persists on a worker, applies on the loop (the
  // spool is written before the scheduler hears of it), then calls done on
  // the loop. Shutdown waits for it.
  // up: the upstream's index (the groups holding it had their attempt this
  // round), or kNone for an attempt of no upstream.
  static constexpr std::size_t kNone = SIZE_MAX;
  void record(const std::shared_ptr<spool::Record>& rec, const std::vector<std::string>& failed,
              std::vector<std::size_t> attempt_rcpts, std::size_t up, std::string session, std::string upstream,
              std::function<void()> done);
  // A message a session gives back unattempted: due now; to the next usable
  // upstream at once (failover) or untouched (the shutdown deadline).
  void hand_back(const std::string& id, bool failover);
  // What an attempt meant for its upstream (policy.h): delivered clears a
  // misconfiguration, our account's trouble raises it, throttling backs off.
  void site_assessed(std::size_t upstream, const Assessment& a);
  // A session could not load a message it took: gone (deleted meanwhile:
  // forgotten), corrupt (moved to failed/ at once, logged), or unreadable
  // for now (EACCES, EMFILE, EIO: deferred with backoff). The message is no
  // longer the session's either way.
  void unreadable(const std::string& id, const Error& e, const std::string& session);
  // A session with nothing to send waits for a message (resume) or its hold
  // to end; unpark when it ends for another reason.
  void park(Carrier* s);
  void unpark(Carrier* s);
  bool draining() const { return draining_; }
  // Counts reloads: a session started under older settings is not held.
  std::uint64_t generation() const { return generation_; }
  // "ok" / "down" per upstream in order, e.g. "ok,down": for status lines.
  std::string site_summary() const;
  // The configured upstreams in order, with their figures.
  std::vector<std::pair<std::string, SiteStats>> site_stats() const;
  SiteStats& site_stats_of(const std::string& upstream_name) { return site_stats_[upstream_name]; }
  // Where the sessions' links get their secrets (password files read
  // afresh; OAuth tokens from `tokens`, set by app when an upstream uses OAuth).
  Credentials& credentials() { return secrets_; }
  void set_tokens(Credentials* tokens) { secrets_.set_tokens(tokens); }
  // Where API upstreams send their HTTPS requests (app's helper client);
  // null: an API upstream's sessions fail at once.
  void set_fetcher(http::Fetcher* f) { fetcher_ = f; }
  http::Fetcher* fetcher() { return fetcher_; }

 private:
  // The loop half of an outcome (after persist() on a worker): scheduler,
  // usage, stats and logs. attempt_rcpts: the recipients this attempt
  // carried (their delivered ones are logged).
  void apply(const spool::Record& rec, const Verdict& v, const Persisted& p,
             const std::vector<std::size_t>& attempt_rcpts, const std::string& session, const std::string& upstream);
  // A message due again at `due`: count, schedule and log the deferral.
  void deferred(const std::string& msg, std::int64_t due, const std::string& reason, unsigned attempts,
                const std::string& session, const std::string& upstream);
  // Whether upstream u may start a transaction now: Ready, or why not.
  enum class Gate { Ready, Full, Down, Paced };
  Gate gate(std::size_t u, std::int64_t now) const;
  std::size_t open_sessions(std::size_t u) const;
  // A due message of this route can be acted on now: an upstream of it is
  // Ready (or a held session), or none is Full (it is held or waits for a
  // site). Otherwise it waits in the scheduler for a session to end.
  bool startable(const std::vector<const std::vector<std::size_t>*>* r, std::int64_t now) const;
  // The route's upstreams are all Down or Paced: due again when the first
  // opens (held when that is a window of the limits).
  // Upstream's window is full: logged once per window; w.reason gets the
  // upstream's name in front.
  void paced(std::size_t upstream, pacing::Wait& w);
  void wait_for_route(const std::string& id, const std::vector<const std::vector<std::size_t>*>* r, std::int64_t now);
  // The pacing counters: read when an upstream is first seen, written
  // (a worker job) at most every second while they change, and at the end.
  void load_pacing(std::size_t i);
  void save_pacing();
  // A route string's groups (pointers into Settings::routing), nullptr for
  // every upstream (no routes, "", or a key the table does not know).
  using Group = std::vector<std::size_t>;
  using Route = std::vector<const Group*>;
  bool routed() const { return s_.routing && !s_.routing->trivial(); }
  const Route* route_of(const std::string& route) const;
  // The route string of the record's pending recipients ("" without
  // routes, kNoRoute when no rule takes any of them).
  std::string route_for(const spool::Record& rec) const;
  static constexpr const char* kNoRoute = "!";
  // A message no rule routes: deferred with that reason (Delivery's own job).
  void defer_unroutable(const std::string& id);
  static bool in_route(const Route* r, std::size_t upstream);
  // The first upstream of the route (every one: nullptr) out of backoff.
  std::optional<std::size_t> usable_upstream(const Route* r = nullptr) const;
  // When the first upstream of the route leaves its backoff.
  std::int64_t route_up_at(const Route* r) const;
  void arm_timer();
  void quit_parked();
  // Delivery's own disk job; done runs on the loop, and shutdown waits.
  void work(std::function<void()> fn, std::function<void()> done);
  void expire_waiting();
  void maybe_drained();

  loop::Loop& loop_;
  std::shared_ptr<spool::Spool> spool_;
  scheduler::Scheduler& sched_;
  Settings s_;
  Stats stats_;
  struct Site {
    std::string name;  // the upstream's URL: a reload keeps the state of an upstream it keeps
    std::int64_t down_until = 0;
    unsigned failures = 0;
    bool auth_logged = false;
    bool misconfigured = false;
    pacing::Pacer pacer;
    bool pacing_dirty = false;
    std::int64_t paced_logged = 0;  // the window end last logged (upstream_paced, once per window)
    void clear_trouble() {
      down_until = 0;
      failures = 0;
      auth_logged = false;
      misconfigured = false;
    }
  };
  std::vector<Site> sites_for(const std::vector<Upstream>& ups) const;
  // A new session for upstream `up`, carrying `first_job` first: SMTP or
  // its API's.
  Carrier* make_carrier(std::size_t up, std::string first_job);
  std::vector<Site> sites_;
  mutable std::map<std::string, std::optional<Route>, std::less<>> route_cache_;  // by route string
  std::map<std::string, SiteStats> site_stats_;
  CredentialSources secrets_;
  http::Fetcher* fetcher_ = nullptr;
  std::set<Carrier*> sessions_;
  std::vector<Carrier*> parked_;  // held sessions, the most recently parked last
  std::size_t jobs_ = 0;          // work() jobs out
  loop::HandlePtr<loop::Timer> timer_;
  loop::HandlePtr<loop::Timer> pacing_timer_;  // the counters' write, a second after a change
  bool pacing_saving_ = false;
  bool limited_ = false;  // some upstream has its own max_connections
  std::map<std::string, Held> held_;
  std::map<std::string, std::uint64_t, std::less<>> routed_;
  bool draining_ = false;
  std::uint64_t generation_ = 0;
  std::function<void()> drained_;
};

}  // namespace spoolgate::upstream
