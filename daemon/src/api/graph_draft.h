// SPDX-License-Identifier: MIT
// api/graph_draft: Microsoft Graph's path for a message larger than one
// sendMail request takes (api/request.h: kGraphRequestMax), one request
// after another:
//   1. POST {user}/messages: the draft, the message without its largest
//      attachments (api/attachments.h) as MIME (base64, text/plain)
//      -> 201 {"id": ...}
//   2. each attachment taken out, in order:
//      under kGraphSmallFile bytes: POST {user}/messages/{id}/attachments,
//        a fileAttachment with its bytes in base64 -> 201;
//      larger: POST {user}/messages/{id}/attachments/createUploadSession
//        -> 201 {"uploadUrl": ...}, then PUT to that URL, in ranges of
//        at most kGraphChunk bytes (Content-Range; no Authorization: the
//        URL carries its own) -> 200, the last one 201;
//   3. POST {user}/messages/{id}/send -> 202; saved to Sent Items.
// Drafts need the Mail.ReadWrite permission besides Mail.Send (probe
// says whether the token has it). Only step 3 can send anything: a lost
// answer before it is no duplicate risk. A draft left behind by a failed
// attempt is deleted (discard()), best effort; the next attempt makes a
// new one.
//
// Pure: the caller sends each request and feeds back its answer.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "api/attachments.h"
#include "http/wire.h"

namespace spoolgate::api {

constexpr std::size_t kGraphSmallFile = 3'000'000;
constexpr std::size_t kGraphChunk = std::size_t{12} * 320 * 1024;  // a multiple of 320 KiB under 4 MB

class GraphDraft {
 public:
  GraphDraft(Split split, std::string base, std::string mailbox, std::string client_request_id);

  // The current step's request.
  http::Request request(std::string_view token) const;

  enum class Next { More, Sent, Malformed };
  // The current step's 2xx answer: More (request() is the next step),
  // Sent (the send was accepted), or Malformed: the answer lacks what the
  // next step needs (reason() says what).
  Next answered(const http::Response& r);
  const std::string& reason() const { return reason_; }

  // The current step is the send: an answer lost now may mean it went.
  bool sending() const { return step_ == Step::Send; }
  // For logs: "draft", "attachment 2/3", "upload 2/3 at 3932160", "send".
  std::string step() const;
  // Deletes the draft made and not sent; nullopt when there is none.
  std::optional<http::Request> discard(std::string_view token) const;

 private:
  enum class Step { Draft, Attach, Session, Upload, Send, Done };
  void next_attachment();

  Split split_;
  std::string base_, mailbox_, crid_;
  Step step_ = Step::Draft;
  std::string id_;  // the draft's
  std::size_t att_ = 0;
  std::string upload_url_;
  std::size_t offset_ = 0;
  std::string reason_;
};

}  // namespace spoolgate::api
