// SPDX-License-Identifier: MIT
// app/tokens: the daemon's OAuth2 token source. Owns the HTTPS helper
// client (fetch/; the API upstreams send through it too) and the token
// manager (oauth/), made only when an upstream has an `oauth:` block, and serves the upstream links as their
// Credentials: a link of an OAuth upstream asks here for its access token,
// and says here when the server refused it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "app/metrics.h"
#include "config/config.h"
#include "core/result.h"
#include "fetch/client.h"
#include "loop/loop.h"
#include "oauth/manager.h"
#include "upstream/link.h"

namespace spoolgate::app {

// The token store key of an upstream: its user and host, as a file name.
std::string oauth_key(const config::Upstream& u);
// The manager's view of an upstream's oauth block (the client's secret
// read from its file or variable at each token request).
oauth::ClientConfig oauth_client(const config::Upstream& u);

class Tokens final : public upstream::Credentials {
 public:
  // spool_dir: where the store lives (<spool>/oauth).
  Tokens(loop::Loop& loop, std::string spool_dir);
  ~Tokens() override;
  Tokens(const Tokens&) = delete;
  Tokens& operator=(const Tokens&) = delete;

  // The OAuth upstreams of `cfg` (at start and on every reload): new ones
  // start fetching, unchanged ones keep their tokens, removed ones stop.
  Result<void> configure(const config::Config& cfg);
  bool active() const { return manager_ != nullptr; }
  // The HTTPS helper's client, for the API upstreams too (it starts the
  // helper on its first request only).
  http::Fetcher& fetcher() { return *fetch_; }

  net::CancelConnect get(loop::Loop& loop, const upstream::Upstream& u, const std::string& log_id, Done done) override;
  bool refused(const upstream::Upstream& u, const std::string& secret) override;

  // `oauth login` stored a new sign-in for `key` (or every key when empty).
  void reload(const std::string& key);
  std::vector<oauth::ClientStatus> status() const;
  // Per OAuth upstream of `cfg`, by its name: for metrics and health.
  std::vector<Snapshot::OAuth> snapshot(const config::Config& cfg) const;
  void close();

 private:
  loop::Loop& loop_;
  std::string spool_dir_;
  std::unique_ptr<fetch::Client> fetch_;
  std::unique_ptr<oauth::Manager> manager_;
};

}  // namespace spoolgate::app
