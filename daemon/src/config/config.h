// SPDX-License-Identifier: MIT
// config/config: YAML file + environment -> one immutable Config.
//
// load() reads the file (if any), overlays SPOOLGATE_* environment variables,
// checks every key against the schema and returns either a Config or every
// error found, each naming where it came from (file:line or the variable), the
// key path and what was expected. Unknown keys are errors; unknown SPOOLGATE_*
// variables are listed (see ignored_env): a typo must not go unnoticed.
//
// Environment rule: the key path upper-cased, dots to underscores, prefixed
// with SPOOLGATE_ (spool.dir -> SPOOLGATE_SPOOL_DIR,
// delivery.retry.first -> SPOOLGATE_DELIVERY_RETRY_FIRST). Lists are
// comma-separated. The first upstream's keys are SPOOLGATE_UPSTREAM_<KEY>
// (SPOOLGATE_UPSTREAM_URL, ...), with SPOOLGATE_USERNAME,
// SPOOLGATE_PASSWORD_FILE and SPOOLGATE_PASSWORD_ENV as short forms.
// SPOOLGATE_CONFIG names the file when --config is not given. Unknown
// SPOOLGATE_* variables are listed in ignored_env, not rejected.
//
// Layout: value.h (the YAML value layer: the only code that includes
// yaml-cpp), schema.h (a key as a table row: parse, environment, dump),
// sections.h with one section_<name>.cc per section of the file (its table
// and its checks), url.h (listen addresses and upstream URLs); this file's
// .cc drives them. Nothing here throws.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <tl/expected.hpp>
#include <vector>

#include "core/cidr.h"
#include "core/units.h"

namespace spoolgate::config {

enum class ListenTls { None, StartTls, Implicit };
enum class ListenAuth { Off, Optional, Required };

struct ListenAddress {
  bool unix_socket = false;
  std::string host;  // IP literal without brackets
  std::uint16_t port = 0;
  std::string path;  // unix socket
  std::string text;  // as written (the address)
  // A `listen` entry written as a map: the listener's own settings.
  bool map_form = false;
  ListenTls tls = ListenTls::None;
  std::string cert_file;  // PEM, the full chain, leaf first
  std::string key_file;
  int tls_min_version = 12;          // TLS 1.x: 10 and 11 only with a LAN allow_networks of its own
  std::vector<Cidr> allow_networks;  // empty: the global allow_networks
  bool allow_networks_set = false;
  ListenAuth auth = ListenAuth::Off;
  std::string users_file;                     // the devices that may log in (spoolgate passwd)
  std::vector<Cidr> auth_plaintext_networks;  // AUTH without TLS from here, besides loopback
};
std::string_view to_string(ListenAuth a);
std::string_view to_string(ListenTls t);

// Graph, GmailApi: HTTP API upstreams (graph://MAILBOX, gmail-api://USER).
enum class Scheme { Smtps, StartTls, Plain, Graph, GmailApi };
inline bool is_api(Scheme s) { return s == Scheme::Graph || s == Scheme::GmailApi; }
// The largest message each API takes at all: Graph 150 MB (its attachment
// limit; a message over 3 MB goes as a draft with upload sessions), the
// mailbox's own limit (Exchange Online: 35 MB unless the admin changed it)
// being the default; Gmail's media upload takes 35 MB.
constexpr std::uint64_t kGraphMaxMessage = 150'000'000, kGraphDefaultMessage = 35 * std::uint64_t{1024} * 1024,
                        kGmailApiMaxMessage = 35'000'000;
enum class AuthMode { Auto, Plain, Login, XOAuth2, OAuthBearer };

enum class OAuthProvider { None, Microsoft, Google, Custom };
// ServiceAccount: a Google Workspace service account with domain-wide
// delegation (RFC 7523 JWT-bearer grant; the token is for the upstream's
// username).
enum class OAuthGrant { None, ClientCredentials, RefreshToken, ServiceAccount };

// An upstream's `oauth:` block (config/section_oauth.cc): where spoolgate
// gets its own access tokens. After load() the provider's presets are
// filled in (token_url, device_authorization_url, authorization_url,
// scope), so the dump shows what will be used.
struct OAuth {
  OAuthProvider provider = OAuthProvider::None;  // None: no oauth block
  std::string tenant;                            // microsoft
  OAuthGrant grant = OAuthGrant::None;
  std::string client_id;
  std::string client_secret_file;
  std::string client_secret_env;
  std::string client_cert;  // certificate-based client assertion (microsoft client_credentials)
  std::string client_key;
  std::string key_file;  // service_account: the JSON key Google issued
  std::string token_url;
  std::string device_authorization_url;
  std::string authorization_url;
  std::string scope;
  std::string ca_file;  // trust for the endpoints; empty: the system's
  bool configured() const { return provider != OAuthProvider::None; }
};

// An `expect` entry: a device heartbeat. Mail from `sender` (an address)
// or from the device named `device` is expected at least once every
// `every`; longer silence is a missed heartbeat (metrics, health, status).
struct Expect {
  std::string sender;
  std::string device;
  Millis every{0};
  // What it is called in metrics, health and the status page.
  const std::string& name() const { return device.empty() ? sender : device; }
};

// A `notify` entry: where operator notifications go (notify/payload.h
// says what each format sends).
enum class NotifyFormat { Generic, Ntfy, Teams, Slack, GoogleChat };
struct NotifyTarget {
  std::string url;  // https://
  NotifyFormat format = NotifyFormat::Generic;
  std::string secret_file;  // generic: the HMAC-SHA256 key of X-Spoolgate-Signature
  std::vector<std::string> events{"all"};
  std::string ca_file;  // trust for the receiver; empty: the system's
};

struct Device {
  std::string name;
  std::vector<Cidr> networks;          // clients from here are this device when they do not log in
  std::vector<std::string> senders;    // allowed envelope senders: "a@b.example" or "@b.example"; empty: any
  std::string rewrite_from;            // "" = the headers section's
  std::uint64_t max_message_size = 0;  // 0 = limits.max_message_size
  std::uint64_t rate_limit = 0;        // messages per minute; 0 = no limit
  // The upstreams its mail goes through, by name, failover in order; empty:
  // every upstream, in order.
  std::vector<std::string> upstream;
};

// A `routes` rule: which upstreams carry the mail it matches (routing/routes.h
// says how rules match). The keys are ANDed, the items of one key ORed; a
// rule without keys is the default.
struct Route {
  std::vector<std::string> sender;            // "alerts@a.example", "*@a.example", "<>" (bounces), "*"
  std::vector<std::string> recipient_domain;  // "partner.example", "*.partner.example"
  std::vector<Cidr> client;
  std::vector<std::string> device;
  std::vector<std::string> upstream;  // names, failover in order
};

// The provider an upstream account belongs to: its published limits are
// the defaults of limits (config/profiles.cc, the README's table).
enum class Provider { Generic, Microsoft365, Gmail, GoogleWorkspace, Ses };

// What spoolgate keeps under, per upstream account, before the provider
// has to refuse (pacing/pacer.h). 0: no limit. kUnset until load() fills
// in the provider's figure.
constexpr std::uint64_t kUnset = UINT64_MAX;
struct UpstreamLimits {
  std::uint64_t max_connections = kUnset;
  std::uint64_t messages_per_second = kUnset;
  std::uint64_t messages_per_minute = kUnset;
  std::uint64_t messages_per_day = kUnset;    // rolling 24 hours
  std::uint64_t recipients_per_day = kUnset;  // rolling 24 hours
  std::uint64_t max_message_size = kUnset;    // bytes
  Millis quota_wait{-1};                      // after a reply saying the quota is used up: no start for this long
};

struct Upstream {
  std::string name;  // optional; what devices[].upstream and routes[].upstream refer to
  std::string url;
  Scheme scheme = Scheme::Smtps;
  std::string host;
  std::uint16_t port = 465;
  std::string username;
  std::string password_file;
  std::string password_env;
  AuthMode auth = AuthMode::Auto;
  std::string ca_file;
  std::vector<std::string> pins;
  std::string client_cert;
  std::string client_key;
  bool insecure_plaintext = false;
  OAuth oauth;
  Provider provider = Provider::Generic;
  UpstreamLimits limits;
  // Sender policy at this account: the From: (and envelope sender) it may
  // send as, "a@b" or "@b"; empty: any. Mail from another sender gets
  // rewrite_from ("account": the username we log in with; the original
  // kept as Reply-To:), or, without rewrite_from, is refused at RCPT.
  std::vector<std::string> send_as;
  std::string rewrite_from;
  // API upstreams: the mailbox the URL names (Graph: the user to send as;
  // Gmail: "me" or the user's address), and the API's base URL when not the
  // provider's own (https://graph.microsoft.us, a test server).
  std::string mailbox;
  std::string api_base;
};

// A provider's defaults (every field set).
UpstreamLimits profile_limits(Provider p);

enum class BareNewlines { Normalize, Reject };

// The upper bound of limits.max_recipients (the spool header also bounds
// the envelope's bytes: 452 4.5.3 when it is full).
constexpr std::uint64_t kMaxRecipientsLimit = 10000;

struct Config {
  std::string source;  // the file read, "" when none
  // SPOOLGATE_* variables that name no key (typos, or injected by an
  // orchestrator); logged at start and listed by check-config.
  std::vector<std::string> ignored_env;
  std::string hostname;
  std::vector<ListenAddress> listen;
  std::vector<Cidr> allow_networks;
  unsigned unix_socket_mode = 0660;  // unix:/path listeners (group: the spool directory's)
  // Where `spoolgate sendmail` hands mail to the running daemon, over SMTP
  // (mode 0666: every local user may submit, as with Postfix's postdrop).
  // "" = none.
  std::string submission_socket = "/run/spoolgate/submit.sock";
  bool allow_networks_explicit = false;  // set in the file or environment, not the loopback default
  BareNewlines bare_newlines = BareNewlines::Normalize;
  Millis shutdown_timeout{30'000};
  struct {
    std::string dir = "./var/spool";
    std::uint64_t max_bytes = 1ULL << 30;
    std::uint64_t max_messages = 100000;
    std::uint64_t min_free_disk = 256ULL << 20;
  } spool;
  struct {
    std::uint64_t max_message_size = 35ULL << 20;
    std::uint64_t max_recipients = 100;  // at most kMaxRecipientsLimit
    std::uint64_t max_connections = 500;
    std::uint64_t max_connections_per_client = 50;
    Millis idle_timeout{300'000};
    Millis data_timeout{1'800'000};
    Millis greeting_delay{0};
    std::uint64_t max_bad_commands = 20;
  } limits;
  struct {
    bool add_missing = true;
    std::string rewrite_from;
  } headers;
  std::vector<Upstream> upstreams;
  // Devices by name: a login on a listener, or the client networks given
  // here, and what each may do (the listener's defaults otherwise).
  std::vector<Device> devices;
  // First match wins; empty: every upstream in order (devices[].upstream
  // apart). A recipient no rule takes is refused at RCPT.
  std::vector<Route> routes;
  std::vector<Expect> expect;
  std::vector<NotifyTarget> notify;
  // When a condition becomes an event (notify/alerts.h).
  struct {
    Millis upstream_down{600'000};     // an upstream unusable this long
    Millis queue_age{3'600'000};       // the oldest queued message this old
    Millis expiry{14 * 86'400'000LL};  // a certificate or token expiring within this
    std::uint64_t crash_loop = 3;      // unclean stops within an hour, seen at start
    Millis repeat{4 * 3'600'000LL};    // a reminder while a condition lasts (0: none)
  } notify_thresholds;
  struct {
    std::uint64_t max_connections = 4;
    std::uint64_t messages_per_connection = 100;
    Millis idle_hold{2'000};  // an upstream session with nothing to send waits this long for more, then QUITs
    struct {
      Millis first{60'000};
      Millis max{3'600'000};
      double factor = 2;
      double jitter = 0.2;
    } retry;
    Millis max_lifetime{5 * 86'400'000LL};
    bool bounce = true;
    struct {
      Millis connect{30'000}, greeting{300'000}, mail{300'000}, rcpt{300'000}, data{120'000}, block{180'000},
          done{600'000};
    } timeouts;
  } delivery;
  struct {
    std::string listen;     // "" = no metrics endpoint
    ListenAddress address;  // parsed from listen
    // Who may connect (others are closed at once); a non-loopback listen
    // needs it set explicitly.
    std::vector<Cidr> allow_networks = {*Cidr::parse("127.0.0.0/8"), *Cidr::parse("::1/128")};
    bool allow_networks_explicit = false;
    // /readyz and `spoolgate health` fail once every upstream has been
    // failing for this long.
    Millis unreachable_after{600'000};
  } metrics;
  struct {
    std::string level = "info";
    std::string format = "text";
  } log;
};

using Env = std::map<std::string, std::string>;
using Errors = std::vector<std::string>;

// path "" means: no file, defaults and environment only.
tl::expected<Config, Errors> load(const std::string& path, const Env& env);
// Parses YAML text directly (tests); `name` stands in for the file name.
tl::expected<Config, Errors> load_text(const std::string& yaml, const std::string& name, const Env& env);
// The process environment as an Env.
Env process_env();
// The effective configuration as YAML, secrets masked.
std::string dump(const Config& c);

std::string_view to_string(Scheme s);
std::string_view to_string(AuthMode a);
std::string_view to_string(OAuthProvider p);
std::string_view to_string(OAuthGrant g);
std::string_view to_string(Provider p);

}  // namespace spoolgate::config
