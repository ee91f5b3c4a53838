// SPDX-License-Identifier: MIT
#include "oauth/refresher.h"

#include <algorithm>

namespace spoolgate::oauth {

bool Refresher::due(std::int64_t now) const {
  if (in_flight_ || now < retry_at_) return false;
  return forced_ || token_.empty() || now >= refresh_at_ || now >= expires_at_;
}

void Refresher::started(std::int64_t now) {
  in_flight_ = true;
  forced_ = false;
  last_attempt_ = now;
}

void Refresher::answered(std::int64_t now, const TokenAnswer& a) {
  in_flight_ = false;
  if (const auto* t = std::get_if<Token>(&a)) {
    // The lifetime counts from when the request went out: the token was
    // issued after that, so this errs on the early side.
    std::int64_t base = last_attempt_ ? last_attempt_ : now;
    std::int64_t life = t->expires_in > 0 ? t->expires_in * 1000 : kDefaultLifetimeMs;
    token_ = t->access;
    expires_at_ = base + life;
    refresh_at_ = base + life / 10 * 8;
    retry_at_ = 0;
    failures_ = 0;
    stuck_.reset();
    last_outcome_ = "ok";
    return;
  }
  const auto& p = std::get<Problem>(a);
  last_outcome_ = p.description.empty() ? p.error : p.error + ": " + p.description;
  if (p.kind == Problem::Kind::Reauth || p.kind == Problem::Kind::Misconfigured) {
    stuck_ = p.kind;
    retry_at_ = now + kOperatorRetryMs;
    return;
  }
  failed(now, last_outcome_);
}

void Refresher::failed(std::int64_t now, const std::string& why) {
  in_flight_ = false;
  last_outcome_ = why;
  ++failures_;
  std::int64_t wait = kFirstRetryMs;
  for (unsigned i = 1; i < failures_ && wait < kMaxRetryMs; ++i) wait *= 2;
  retry_at_ = now + std::min(wait, kMaxRetryMs);
}

bool Refresher::rejected(const std::string& token) {
  if (token.empty() || token != token_ || token == rejected_token_) return false;
  rejected_token_ = token;
  token_.clear();
  expires_at_ = 0;
  refresh_at_ = 0;
  forced_ = true;
  return true;
}

void Refresher::reset() {
  retry_at_ = 0;
  forced_ = true;
}

const std::string* Refresher::token(std::int64_t now) const {
  return !token_.empty() && now < expires_at_ ? &token_ : nullptr;
}

std::optional<std::int64_t> Refresher::next_wake(std::int64_t now) const {
  if (in_flight_) return std::nullopt;
  std::int64_t when = forced_ || token_.empty() ? now : std::min(refresh_at_, expires_at_);
  return std::max({when, retry_at_, now});
}

Refresher::State Refresher::state(std::int64_t now) const {
  if (in_flight_) return State::Refreshing;
  if (stuck_) return *stuck_ == Problem::Kind::Reauth ? State::Reauth : State::Misconfigured;
  if (failures_ > 0) return State::Failing;
  return token(now) ? State::Fresh : State::Empty;
}

const char* to_string(Refresher::State s) {
  switch (s) {
    case Refresher::State::Empty:
      return "no token";
    case Refresher::State::Fresh:
      return "fresh";
    case Refresher::State::Refreshing:
      return "refreshing";
    case Refresher::State::Failing:
      return "failing";
    case Refresher::State::Reauth:
      return "reauthorisation needed";
    case Refresher::State::Misconfigured:
      return "misconfigured";
  }
  return "?";
}

}  // namespace spoolgate::oauth
