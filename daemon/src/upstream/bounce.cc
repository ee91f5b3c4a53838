// SPDX-License-Identifier: MIT
#include "upstream/bounce.h"

#include "core/ids.h"
#include "core/log.h"
#include "smtp/dsn.h"

namespace spoolgate::upstream {
namespace {

constexpr std::size_t kMaxHeaders = 64 * std::size_t{1024};

std::string header_block(const spool::Spool& spool, const spool::Record& rec) {
  auto rd = spool::Reader::open(spool, rec);
  if (!rd) return "";
  std::string head;
  while (head.size() < kMaxHeaders) {
    auto n = (*rd)->read(head, kMaxHeaders - head.size());
    if (!n || *n == 0) break;
  }
  size_t end = head.find("\r\n\r\n");
  if (end != std::string::npos) return head.substr(0, end + 2);
  size_t last = head.rfind("\r\n");
  return last == std::string::npos ? "" : head.substr(0, last + 2);
}

}  // namespace

Result<std::optional<spool::Record>> fail_message(const std::shared_ptr<spool::Spool>& spool, const spool::Record& rec,
                                                  const std::string& reason, const FailOptions& opt) {
  bool report = opt.bounce && !rec.sender.empty();
  std::string headers = report ? header_block(*spool, rec) : "";
  auto moved = spool->move_to_failed(rec.id, reason);
  if (!moved) return tl::unexpected(moved.error());
  if (!report) return std::optional<spool::Record>();

  smtp::DsnInput in;
  in.hostname = opt.hostname;
  in.queue_id = rec.id;
  in.dsn_id = new_queue_id();
  in.original_sender = rec.sender;
  in.arrived = rec.arrived;
  in.now = opt.now;
  in.original_headers = headers;
  for (std::size_t i = 0; i < rec.recipients.size(); ++i) {
    if (rec.rcpt_state[i] != spool::Record::RcptState::Failed) continue;
    bool expired = opt.expired && (rec.rcpt_reply[i].empty() || rec.rcpt_reply[i][0] != '5');
    in.recipients.push_back(
        {rec.recipients[i],
         expired ? "delivery time expired; last reply: " + (rec.rcpt_reply[i].empty() ? "none" : rec.rcpt_reply[i])
                 : rec.rcpt_reply[i],
         expired});
  }
  spool::Record dsn;
  dsn.id = in.dsn_id;
  dsn.arrived = opt.now;
  dsn.client = "local";
  dsn.helo = opt.hostname;
  dsn.sender = "";  // <>: a report never causes another report
  dsn.recipients = {rec.sender};
  dsn.normalize();
  auto w = spool::Writer::create(spool, dsn);
  if (!w) return tl::unexpected(w.error());
  auto a = (*w)->append(smtp::build_dsn(in));
  if (!a) return tl::unexpected(a.error());
  auto c = (*w)->commit();
  if (!c) return tl::unexpected(c.error());
  auto s = spool->sync_queue_dir();
  if (!s) return tl::unexpected(s.error());
  dsn.size = (*w)->content_size();
  auto loaded = spool->load(dsn.id);  // content_offset and all, as recovery would see it
  if (!loaded) return tl::unexpected(loaded.error());
  return std::optional<spool::Record>(std::move(*loaded));
}

}  // namespace spoolgate::upstream
