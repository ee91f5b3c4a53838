// SPDX-License-Identifier: MIT
// upstream/api_session: messages to one HTTP API upstream (Microsoft Graph
// sendMail, Gmail messages.send), one request per message (a Graph message
// over kGraphRequestMax: a draft, its attachments and a send,
// api/graph_draft.h), behind the same outcome path as an SMTP session
// (upstream/policy.h, Delivery::record).
//
// For each message it takes: load the record (a disk job), screen it
// (Delivery::screen: routes, size, limits), read the content and make the
// copy sent (a disk job: the sender policy's From:, the recipient fields
// for exactly the carried envelope recipients, api/recipients.h), get an
// access token (Credentials, as an SMTP link does), send the request
// through Delivery's Fetcher (the HTTPS helper: keep-alive and HTTP/2 are
// its connection cache's), and end the attempt with the answer's meaning
// (api/answer.h). A 401 gets one fresh token and one more request. A
// transport failure (no answer) marks the site down and defers the
// message; it is never raced to another upstream, since the API may have
// it (a timeout is counted as a duplicate risk).
//
// It never parks: between messages there is no connection of its own to
// hold (the helper keeps its connections alive), so with nothing due it
// ends. Disk work follows STYLE.md rule 9 (one job at a time, held as
// disk_); the request in flight and the token wait are cancelled by the
// finalizer, and the session is released once no disk job is out.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/graph_draft.h"
#include "net/connector.h"
#include "spool/spool.h"
#include "upstream/carrier.h"
#include "upstream/delivery.h"

namespace spoolgate::upstream {

class ApiSession final : public Carrier {
 public:
  ApiSession(Delivery& d, std::size_t upstream, std::string first_job);
  ~ApiSession() override;
  ApiSession(const ApiSession&) = delete;
  ApiSession& operator=(const ApiSession&) = delete;

  void start() override;
  void abort() override;
  void resume(std::string job) override;  // never parked: takes it as the next message
  void end_hold() override {}
  std::size_t upstream() const override { return up_; }

 private:
  enum class Hand { Defer, Untouched };

  void next_job();
  void load_job();
  void on_loaded();
  void prepare();
  void get_token();
  void send();
  void on_answer(Result<http::Response> r);
  void conclude(const api::Meaning& m);
  void discard_draft();
  void on_failed(const smtp::Failure& f, bool maybe_sent);
  void record(const std::shared_ptr<spool::Record>& rec, const std::vector<std::string>& failed,
              std::vector<std::size_t> attempt_rcpts);
  void disk(const char* what, std::function<void()> work, std::function<void()> then);
  void hand_back(Hand how, const std::string& reason);
  void finalize(const std::string& reason, Hand how);
  void maybe_release();

  Delivery& d_;
  std::size_t up_;
  std::string id_;
  const Upstream u_;  // a copy: a reload does not change a live session
  api::Kind kind_;

  std::optional<std::string> job_id_;
  spool::Record rec_;
  bool loaded_ = false;
  std::vector<std::size_t> job_rcpts_;
  std::int64_t pacing_stamp_ = 0;
  std::string message_;                   // the copy sent (until the request takes it)
  std::optional<api::GraphDraft> draft_;  // a Graph message too large for sendMail
  std::string token_;
  bool token_retried_ = false;
  net::CancelConnect cancel_token_;
  std::optional<std::uint64_t> request_;

  std::uint64_t generation_;  // Delivery's, when this session started
  unsigned jobs_done_ = 0;
  bool throttled_ = false;
  bool closing_ = false;
  Hand closing_hand_ = Hand::Defer;
  std::string closing_reason_;
};

}  // namespace spoolgate::upstream
