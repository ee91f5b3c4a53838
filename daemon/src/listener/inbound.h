// SPDX-License-Identifier: MIT
// listener/inbound: the SMTP listener side of the daemon.
//
// Owns the listening sockets and every inbound Session. At accept it applies
// the access rules (the listener's allow_networks, else the global ones;
// unix sockets are guarded by file permissions), the connection limits (global and per client: 421 4.7.0) and
// hands the connection to a Session. The spool's figures and watermarks
// are spool::Accounting's (the daemon owns it): sessions reserve there at
// MAIL, a committed message is added there, and a connection is turned
// away with 421 4.3.2 while it is far over.
//
// It never knows the scheduler: app wires on_committed to whatever wants to
// hear about new mail. on_committed runs after the spool has made the message
// durable and before (or while) the 250 is written.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "auth/users.h"
#include "core/cidr.h"
#include "core/units.h"
#include "loop/loop.h"
#include "net/listener.h"
#include "routing/routes.h"
#include "smtp/server.h"
#include "spool/accounting.h"
#include "spool/group_commit.h"
#include "spool/spool.h"
#include "tls/tls.h"

namespace spoolgate::listener {

class Session;

// TLS on a listener: none, offered with STARTTLS (RFC 3207), or from the
// first byte (implicit, port 465 style).
enum class TlsMode { None, StartTls, Implicit };

struct Endpoint {
  net::ListenSpec spec;
  TlsMode tls = TlsMode::None;
  // The certificate the listener presents (built from cert_file/key_file;
  // a reload builds a new one: new sessions present it, open ones keep the
  // one they started with).
  std::shared_ptr<tls::Context> tls_ctx;
  // Who may connect here; empty: Settings::allow_networks.
  std::vector<Cidr> allow_networks;
  // AUTH: the devices of the listener's users_file; over plaintext only from
  // loopback and these networks.
  smtp::ServerSettings::Auth auth = smtp::ServerSettings::Auth::Off;
  std::shared_ptr<auth::Verifier> verifier;
  std::vector<Cidr> auth_plaintext_networks;
};

struct Settings {
  std::vector<Endpoint> listen;
  // Local submission (`spoolgate sendmail`): a unix socket every local user
  // may write to. Not fatal when it cannot be bound (sendmail then says so).
  std::optional<net::ListenSpec> submission;
  std::vector<Cidr> allow_networks;
  smtp::ServerSettings smtp;  // client_address, accepting, new_id filled per session
  // Known devices: by login name, or by network for clients that do not
  // log in (the first whose networks hold the address).
  struct Device {
    smtp::DevicePolicy policy;
    std::vector<Cidr> networks;
    std::uint64_t rate_limit = 0;  // messages per minute; 0: none
  };
  std::vector<Device> devices;
  // Where mail may go (app builds it from the routes): a recipient no rule
  // takes is refused at RCPT. Null or trivial: every recipient.
  std::shared_ptr<const routing::Table> routing;
  // The largest message each rule's upstreams take (by rule index; 0: no
  // limit), and all upstreams' when the table is trivial.
  std::vector<std::uint64_t> rule_size_caps;
  // Whether the upstreams of a rule (SIZE_MAX: every upstream) may carry
  // mail from this envelope sender (their send_as, or a rewrite_from);
  // null: any sender.
  std::function<bool(std::size_t rule, std::string_view sender)> sender_ok;
  std::uint64_t size_cap = 0;
  // Envelope senders (lower case) whose last message is kept (expect:
  // heartbeats): Counters::senders_seen.
  std::vector<std::string> watched_senders;
  std::uint64_t max_connections = 500;
  std::uint64_t max_connections_per_client = 50;
  Millis idle_timeout{300'000};
  Millis data_timeout{1'800'000};
  Millis greeting_delay{0};
};

struct Counters {
  std::uint64_t received = 0;     // messages committed from clients (SMTP or sendmail)
  std::uint64_t connections = 0;  // accepted connections, refused ones included
  std::uint64_t refused = 0;      // connections turned away at connect
  // TLS handshakes with clients, by the version agreed ("TLSv1.3"; the old
  // ones show which devices still need a legacy listener), and failures.
  std::map<std::string, std::uint64_t> tls_sessions;
  std::uint64_t tls_failures = 0;
  std::map<std::string, std::uint64_t> received_by_device;  // messages committed, by device name
  // Who sent mail (a device's name, or the client's address when it is no
  // named device): messages and the last one's time (unix seconds). At
  // most kMaxSeen, the longest silent dropped first.
  struct Seen {
    std::int64_t last = 0;
    std::uint64_t messages = 0;
  };
  static constexpr std::size_t kMaxSeen = 1000;
  std::map<std::string, Seen> seen;
  // The watched senders' last message (unix seconds), by address.
  std::map<std::string, std::int64_t> senders_seen;
  std::uint64_t auth_ok = 0;      // logins
  std::uint64_t auth_failed = 0;  // refused logins
};

class Inbound {
 public:
  // accounting: the daemon's, outliving this.
  Inbound(loop::Loop& loop, const std::shared_ptr<spool::Spool>& spool, Settings settings,
          spool::Accounting& accounting);
  ~Inbound();
  Inbound(const Inbound&) = delete;
  Inbound& operator=(const Inbound&) = delete;

  // Binds every listen address; on error nothing is left listening.
  Result<void> start();
  std::vector<std::string> addresses() const;
  // Each TLS listener's bound address and its certificate's notAfter (unix
  // seconds), for the metrics.
  std::vector<std::pair<std::string, std::int64_t>> certificates() const;
  // A reload: new sessions get the new settings (sessions in progress keep
  // theirs); listeners are opened and closed to match `listen`. On error the
  // old settings and listeners stay.
  Result<void> reconfigure(Settings s);
  // Stops listening, says 421 to idle clients, lets messages in progress
  // finish; all_closed runs once the last session is gone.
  void shutdown(std::function<void()> all_closed);
  // Closes every remaining session now (the shutdown deadline).
  void abort_sessions();

  // A client's message is durable: counted, added to the accounting, and
  // passed on.
  std::function<void(const spool::Record&)> on_committed;

  const Counters& counters() const { return counters_; }
  // A client's message that reached the spool another way (sendmail
  // writing it itself): counted as received.
  void count_received() { ++counters_.received; }
  bool listening() const { return !listeners_.empty() && !shutting_down_; }
  std::size_t sessions() const { return sessions_.size(); }

  // For sessions.
  loop::Loop& loop() { return loop_; }
  // The session's protocol is over (it is closing): it no longer counts
  // against the connection limits. Idempotent; release() does it too.
  void count_out(Session* s);
  // The spool's figures: sessions reserve there at MAIL (false: 452 4.3.1).
  spool::Accounting& accounting() { return accounting_; }
  const std::shared_ptr<spool::Spool>& spool() const { return spool_; }
  spool::GroupCommit& committer() { return committer_; }
  const Settings& settings() const { return settings_; }
  void committed(const spool::Record& r);
  void tls_established(const std::string& version) { ++counters_.tls_sessions[version]; }
  void tls_failed() { ++counters_.tls_failures; }
  // Failed logins per client address: how many in the last 15 minutes
  // (after this one); a success clears them.
  std::uint64_t auth_failed(const std::string& client);
  void auth_succeeded(const std::string& client) {
    ++counters_.auth_ok;
    auth_failures_.erase(client);
  }
  bool auth_locked(const std::string& client) const;
  // A device's rate_limit (a token bucket that refills rate_limit per
  // minute, as much as a minute's worth at once): true, and counted, when
  // it may start one more message now.
  bool within_rate(const std::string& device);
  void release(Session* s);

 private:
  void accept(std::unique_ptr<net::Connection> c, const std::string& key);
  loop::Loop& loop_;
  std::shared_ptr<spool::Spool> spool_;
  Settings settings_;
  spool::Accounting& accounting_;
  Counters counters_;
  spool::GroupCommit committer_;
  Result<loop::HandlePtr<net::Listener>> listen_on(const net::ListenSpec& spec, const std::string& key);
  std::vector<std::pair<std::string, loop::HandlePtr<net::Listener>>> listeners_;  // (spec key, listener)
  loop::HandlePtr<net::Listener> submission_;
  std::string submission_path_;  // what submission_ is bound to
  void start_submission();
  std::unordered_map<Session*, std::unique_ptr<Session>> sessions_;
  // Sessions still counted against max_connections and the per-client
  // limit: from accept until their protocol ends (QUIT answered, a refusal
  // sent, a close), not until their handle has closed, so a client that
  // reconnects at once after QUIT (smtp-source -c 50 against a limit of 50)
  // is not refused for connections that are only lingering.
  std::unordered_set<Session*> counted_;
  std::map<std::string, std::uint64_t> per_client_;
  struct Failures {
    std::uint64_t count = 0;
    std::int64_t last = 0;  // unix ms
  };
  std::map<std::string, Failures> auth_failures_;
  struct Bucket {
    double tokens = 0;
    std::int64_t at = 0;  // unix ms of the last refill
  };
  std::map<std::string, Bucket> buckets_;  // by device name (bounded by the configured devices)
  bool shutting_down_ = false;
  std::function<void()> all_closed_;
};

}  // namespace spoolgate::listener
