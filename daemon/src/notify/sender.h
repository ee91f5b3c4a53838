// SPDX-License-Identifier: MIT
// notify/sender: takes each notification to its targets and keeps it in
// the spool until they took it, so that the notification path is no new
// way to lose things. Owns the outbox directory (<spool>/notify/, one file
// per notification and target: notify/outbox.h), the queue of each target,
// its backoff and its rate.
//
// post() writes the files (on a worker: written, fsync'd, the directory
// fsync'd) and only then sends; a 2xx answer removes the file. A target's
// notifications go one at a time, in the order they were made, at most
// kPerMinute a minute. 408, 425, 429, 5xx and no answer at all are
// retried with backoff (kFirstRetry doubling to kMaxRetry; a Retry-After
// (seconds or an HTTP date) is honoured); any other answer is the receiver refusing the
// payload for good (a wrong or deleted webhook): the notification is
// dropped with an error line, as is one older than kMaxAge. open() reads
// what a previous run left and sends it. No URL in any log line (a
// webhook's URL is its secret): the target's key and host.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/result.h"
#include "http/fetcher.h"
#include "loop/loop.h"
#include "notify/outbox.h"
#include "notify/payload.h"

namespace spoolgate::notify {

constexpr std::int64_t kFirstRetry = 1, kMaxRetry = 600, kMaxAge = 3 * std::int64_t{86'400};  // seconds
constexpr std::size_t kPerMinute = 30;

struct Target {
  std::string url;
  Format format = Format::Generic;
  std::string secret_file;  // generic: the HMAC key (read for each request)
  std::string ca_file;
  std::vector<std::string> events{"all"};
  bool wants(const std::string& event) const;
};
// A target's name in the outbox and the logs: 12 hex digits of its URL's SHA-256.
std::string target_key(const std::string& url);
// The URL's host, for log lines.
std::string target_host(const std::string& url);

struct SenderStats {
  std::uint64_t sent = 0, retried = 0, dropped = 0;
};

class Sender {
 public:
  Sender(loop::Loop& loop, http::Fetcher& fetcher, std::string dir, std::string host);
  ~Sender();
  Sender(const Sender&) = delete;
  Sender& operator=(const Sender&) = delete;

  // The targets (at start and on each reload). Pending notifications of a
  // target no longer listed are dropped, with a log line each.
  void configure(std::vector<Target> targets);
  // After the first configure(): reads the outbox (blocking; at start).
  Result<void> open();
  // One file per target that wants it; sent once written.
  void post(const Event& e);
  void close();

  std::size_t pending() const;
  const SenderStats& stats() const { return stats_; }

 private:
  struct Item {
    Entry entry;
    std::string file;  // "" when it could not be written: sent from memory
  };
  struct Queue {
    Target target;
    std::string key, host;
    std::deque<Item> items;           // by seq
    std::set<std::uint64_t> writing;  // seqs whose file is being written: none goes out before them
    std::uint64_t request = 0;
    bool busy = false;
    std::int64_t retry_at = 0;  // unix seconds
    std::int64_t backoff = 0;
    std::deque<std::int64_t> recent;  // send times within the last minute
  };

  void queued(const std::string& key, Item item);
  void pump(Queue& q);
  void send(Queue& q);
  void answered(const std::string& key, const Result<http::Response>& r);
  void done(Queue& q, bool remove);
  void retry(Queue& q, const std::string& why, std::int64_t after);
  void drop(Queue& q, const Item& item, const std::string& why);
  void unlink(const std::string& file);
  void arm();

  loop::Loop& loop_;
  http::Fetcher& fetcher_;
  std::string dir_, host_;
  std::map<std::string, Queue> queues_;  // by key
  std::uint64_t next_seq_ = 1;
  loop::HandlePtr<loop::Timer> timer_;
  SenderStats stats_;
  bool closed_ = false;
};

}  // namespace spoolgate::notify
