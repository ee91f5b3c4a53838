// SPDX-License-Identifier: MIT
#include "api/graph_draft.h"

#include <nlohmann/json.hpp>

#include "api/request.h"
#include "core/base64.h"
#include "core/text.h"

namespace spoolgate::api {
namespace {

constexpr Millis kStepTimeout{120'000};

std::string dump(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

// A string member of a JSON object answer, or "" when there is none (or it
// is not printable text of a sane length).
std::string member(const std::string& body, const char* key) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return {};
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return {};
  std::string v = it->get<std::string>();
  if (v.size() > 4096 || has_control(v)) return {};
  return v;
}

nlohmann::json item(const Attachment& a) {
  nlohmann::json j = {{"name", a.name}, {"contentType", a.content_type}, {"isInline", a.is_inline}};
  if (!a.content_id.empty()) j["contentId"] = a.content_id;
  return j;
}

}  // namespace

GraphDraft::GraphDraft(Split split, std::string base, std::string mailbox, std::string client_request_id)
    : split_(std::move(split)),
      base_(std::move(base)),
      mailbox_(std::move(mailbox)),
      crid_(std::move(client_request_id)) {}

http::Request GraphDraft::request(std::string_view token) const {
  http::Request r = authorized(token);
  r.method = "POST";
  r.timeout = kStepTimeout;
  std::string user = graph_user_url(base_, mailbox_);
  std::string msg = user + "/messages/" + percent_encode(id_);
  auto json_body = [&r](const nlohmann::json& j) {
    r.headers.push_back("Content-Type: application/json");
    r.body = dump(j);
  };
  const Attachment* a = att_ < split_.carved.size() ? &split_.carved[att_].attachment : nullptr;
  switch (step_) {
    case Step::Draft:
      r.url = user + "/messages";
      r.headers.push_back("Content-Type: text/plain");
      r.body = base64_encode(split_.draft);
      break;
    case Step::Attach: {
      r.url = msg + "/attachments";
      nlohmann::json j = item(*a);
      j["@odata.type"] = "#microsoft.graph.fileAttachment";
      j["contentBytes"] = base64_encode(a->bytes);
      json_body(j);
      break;
    }
    case Step::Session: {
      r.url = msg + "/attachments/createUploadSession";
      nlohmann::json j = item(*a);
      j["attachmentType"] = "file";
      j["size"] = a->bytes.size();
      json_body({{"AttachmentItem", j}});
      break;
    }
    case Step::Upload: {
      // The upload URL is pre-authenticated: no Authorization header.
      r.headers.clear();
      r.method = "PUT";
      r.url = upload_url_;
      std::size_t n = std::min(kGraphChunk, a->bytes.size() - offset_);
      r.headers.push_back("Content-Type: application/octet-stream");
      r.headers.push_back("Content-Range: bytes " + std::to_string(offset_) + "-" + std::to_string(offset_ + n - 1) +
                          "/" + std::to_string(a->bytes.size()));
      r.body = a->bytes.substr(offset_, n);
      break;
    }
    case Step::Send:
    case Step::Done:
      r.url = msg + "/send";
      break;
  }
  if (step_ != Step::Upload && !crid_.empty()) r.headers.push_back("client-request-id: " + crid_);
  return r;
}

void GraphDraft::next_attachment() {
  if (att_ >= split_.carved.size()) {
    step_ = Step::Send;
    return;
  }
  step_ = split_.carved[att_].attachment.bytes.size() < kGraphSmallFile ? Step::Attach : Step::Session;
}

GraphDraft::Next GraphDraft::answered(const http::Response& r) {
  switch (step_) {
    case Step::Draft:
      id_ = member(r.body, "id");
      if (id_.empty()) {
        reason_ = "Microsoft Graph answered the draft without its id";
        return Next::Malformed;
      }
      att_ = 0;
      next_attachment();
      return Next::More;
    case Step::Attach:
      // The file goes to Graph now; its bytes are not needed again.
      split_.carved[att_].attachment.bytes = std::string();
      ++att_;
      next_attachment();
      return Next::More;
    case Step::Session:
      upload_url_ = member(r.body, "uploadUrl");
      if (!upload_url_.starts_with("https://")) {
        reason_ = "Microsoft Graph answered the upload session without an https uploadUrl";
        return Next::Malformed;
      }
      offset_ = 0;
      step_ = Step::Upload;
      return Next::More;
    case Step::Upload: {
      std::string& bytes = split_.carved[att_].attachment.bytes;
      offset_ += std::min(kGraphChunk, bytes.size() - offset_);
      if (offset_ < bytes.size()) return Next::More;
      bytes = std::string();
      upload_url_.clear();
      ++att_;
      next_attachment();
      return Next::More;
    }
    case Step::Send:
    case Step::Done:
      step_ = Step::Done;
      return Next::Sent;
  }
  return Next::Malformed;
}

std::string GraphDraft::step() const {
  std::string of = std::to_string(att_ + 1) + "/" + std::to_string(split_.carved.size());
  switch (step_) {
    case Step::Draft:
      return "draft";
    case Step::Attach:
      return "attachment " + of;
    case Step::Session:
      return "upload session " + of;
    case Step::Upload:
      return "upload " + of + " at " + std::to_string(offset_);
    case Step::Send:
      return "send";
    case Step::Done:
      return "sent";
  }
  return "";
}

std::optional<http::Request> GraphDraft::discard(std::string_view token) const {
  if (id_.empty() || step_ == Step::Done) return std::nullopt;
  http::Request r = authorized(token);
  r.method = "DELETE";
  r.url = graph_user_url(base_, mailbox_) + "/messages/" + percent_encode(id_);
  r.timeout = kStepTimeout;
  return r;
}

}  // namespace spoolgate::api
