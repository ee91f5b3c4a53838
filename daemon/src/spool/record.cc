// SPDX-License-Identifier: MIT
#include "spool/record.h"

#include <charconv>

#include "core/ids.h"

namespace spoolgate::spool {
namespace {

constexpr std::string_view kMagic = "SPOOLGATE-MESSAGE 1\n";
constexpr std::string_view kSizeKey = "content-size: ";
constexpr size_t kSizeDigits = 20;

bool clean(std::string_view v) {
  for (char c : v)
    if (c == '\n' || c == '\r' || c == '\0') return false;
  return true;
}

template <class T>
bool parse_num(std::string_view v, T& out) {
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  return !v.empty() && ec == std::errc() && p == v.data() + v.size();
}

std::string_view unbracket(std::string_view v, bool& ok) {
  ok = v.size() >= 2 && v.front() == '<' && v.back() == '>';
  return ok ? v.substr(1, v.size() - 2) : v;
}

}  // namespace

std::uint64_t content_size_offset() { return kMagic.size() + kSizeKey.size(); }

std::string encode_size(std::uint64_t size) {
  std::string s = std::to_string(size);
  return std::string(kSizeDigits - s.size(), '0') + s;
}

Result<std::string> encode_header(const Record& r) {
  if (!is_queue_id(r.id)) return fail(Errc::Invalid, "bad queue id");
  for (std::string_view v :
       {std::string_view(r.client), std::string_view(r.helo), std::string_view(r.sender), std::string_view(r.device)})
    if (!clean(v)) return fail(Errc::Invalid, "control character in envelope field");
  if (r.recipients.empty()) return fail(Errc::Invalid, "no recipients");
  std::string h;
  h.reserve(256 + 64 * r.recipients.size());
  h += kMagic;
  h += kSizeKey;
  h += encode_size(0);
  h += "\nid: " + r.id;
  h += "\narrived: " + std::to_string(r.arrived);
  h += "\nclient: " + r.client;
  h += "\nhelo: " + r.helo;
  // Only when known: a record without it reads as before (and an older
  // daemon reads every record written for an unknown device).
  if (!r.device.empty()) h += "\ndevice: " + r.device;
  h += r.smtputf8 ? "\nsmtputf8: 1" : "\nsmtputf8: 0";
  h += r.body_8bit ? "\nbody: 8bitmime" : "\nbody: 7bit";
  h += "\nsender: <" + r.sender + ">";
  for (const auto& rc : r.recipients) {
    if (!clean(rc) || rc.empty()) return fail(Errc::Invalid, "bad recipient");
    h += "\nrcpt: <" + rc + ">";
  }
  h += "\n\n";
  if (h.size() > kMaxHeaderBytes)
    return fail(Errc::Invalid, "envelope too large (" + std::to_string(r.recipients.size()) + " recipients, " +
                                   std::to_string(h.size()) + " bytes; at most " + std::to_string(kMaxHeaderBytes) + ")");
  return h;
}

Result<Record> decode_header(std::string_view head, std::uint64_t file_size) {
  auto corrupt = [](std::string what) { return fail(Errc::SpoolCorrupt, std::move(what)); };
  if (!head.starts_with(kMagic)) return corrupt("not a spoolgate message (bad magic or version)");
  size_t end = head.find("\n\n");
  if (end == std::string_view::npos) return corrupt("header not terminated");
  Record r;
  r.content_offset = end + 2;
  bool have_size = false, have_id = false, have_arrived = false, have_sender = false;
  size_t pos = kMagic.size();
  while (pos < end + 1) {
    size_t eol = head.find('\n', pos);
    std::string_view line = head.substr(pos, eol - pos);
    pos = eol + 1;
    size_t colon = line.find(": ");
    if (colon == std::string_view::npos) return corrupt("malformed header line");
    std::string_view key = line.substr(0, colon), val = line.substr(colon + 2);
    // What encode_header refuses to write is corruption when read (found by
    // tests/fuzz, record target: a NUL in a field was taken as data).
    if (!clean(val)) return corrupt("control character in header field '" + std::string(key) + "'");
    bool ok = true;
    if (key == "content-size") {
      ok = val.size() == kSizeDigits && parse_num(val, r.size);
      have_size = ok;
    } else if (key == "id") {
      ok = is_queue_id(val);
      r.id = val;
      have_id = ok;
    } else if (key == "arrived") {
      ok = parse_num(val, r.arrived);
      have_arrived = ok;
    } else if (key == "client") {
      r.client = val;
    } else if (key == "helo") {
      r.helo = val;
    } else if (key == "device") {
      ok = !val.empty();
      r.device = val;
    } else if (key == "smtputf8") {
      ok = val == "0" || val == "1";
      r.smtputf8 = val == "1";
    } else if (key == "body") {
      ok = val == "7bit" || val == "8bitmime";
      r.body_8bit = val == "8bitmime";
    } else if (key == "sender") {
      r.sender = unbracket(val, ok);
      have_sender = ok;
    } else if (key == "rcpt") {
      std::string_view a = unbracket(val, ok);
      ok = ok && !a.empty();
      r.recipients.emplace_back(a);
    } else {
      return corrupt("unknown header field '" + std::string(key) + "'");
    }
    if (!ok) return corrupt("bad value for '" + std::string(key) + "'");
  }
  if (!have_size || !have_id || !have_arrived || !have_sender || r.recipients.empty())
    return corrupt("missing header field");
  if (file_size != r.content_offset + r.size)
    return corrupt("size mismatch: file has " + std::to_string(file_size) + " bytes, header says " +
                   std::to_string(r.content_offset + r.size));
  r.normalize();
  return r;
}

void Record::normalize() {
  rcpt_state.resize(recipients.size(), RcptState::Pending);
  rcpt_reply.resize(recipients.size());
}

bool Record::all_done() const {
  for (size_t i = 0; i < recipients.size(); ++i)
    if (i >= rcpt_state.size() || rcpt_state[i] == RcptState::Pending) return false;
  return true;
}

std::vector<size_t> Record::pending() const {
  std::vector<size_t> out;
  for (size_t i = 0; i < recipients.size(); ++i)
    if (i >= rcpt_state.size() || rcpt_state[i] == RcptState::Pending) out.push_back(i);
  return out;
}

std::string_view to_string(Record::RcptState s) {
  switch (s) {
    case Record::RcptState::Pending:
      return "pending";
    case Record::RcptState::Delivered:
      return "delivered";
    case Record::RcptState::Failed:
      return "failed";
  }
  return "pending";
}

namespace {
std::string one_line(std::string_view v) {
  std::string out;
  for (char c : v.substr(0, 500)) out += (c == '\n' || c == '\r' || c == '\0') ? ' ' : c;
  return out;
}
}  // namespace

std::string encode_state(const Record& r) {
  std::string s = "SPOOLGATE-STATE 1\n";
  s += "attempts: " + std::to_string(r.attempts) + "\n";
  s += "next-attempt: " + std::to_string(r.next_attempt) + "\n";
  s += "last-error: " + one_line(r.last_error) + "\n";
  for (size_t i = 0; i < r.recipients.size(); ++i) {
    auto st = i < r.rcpt_state.size() ? r.rcpt_state[i] : Record::RcptState::Pending;
    std::string reply = i < r.rcpt_reply.size() ? one_line(r.rcpt_reply[i]) : "";
    s += "rcpt: " + std::to_string(i) + " " + std::string(to_string(st)) + " " + reply + "\n";
  }
  return s;
}

Result<void> decode_state(std::string_view text, Record& r) {
  auto corrupt = [](std::string what) { return fail(Errc::SpoolCorrupt, "state file: " + std::move(what)); };
  constexpr std::string_view kStateMagic = "SPOOLGATE-STATE 1\n";
  if (!text.starts_with(kStateMagic)) return corrupt("bad magic or version");
  r.normalize();
  size_t pos = kStateMagic.size();
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) return corrupt("truncated");
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    size_t colon = line.find(": ");
    if (colon == std::string_view::npos) return corrupt("malformed line");
    std::string_view key = line.substr(0, colon), val = line.substr(colon + 2);
    if (key == "attempts") {
      if (!parse_num(val, r.attempts)) return corrupt("bad attempts");
    } else if (key == "next-attempt") {
      if (!parse_num(val, r.next_attempt)) return corrupt("bad next-attempt");
    } else if (key == "last-error") {
      r.last_error = val;
    } else if (key == "rcpt") {
      size_t sp1 = val.find(' ');
      size_t idx = 0;
      if (sp1 == std::string_view::npos || !parse_num(val.substr(0, sp1), idx) || idx >= r.recipients.size())
        return corrupt("bad rcpt index");
      std::string_view rest = val.substr(sp1 + 1);
      size_t sp2 = rest.find(' ');
      std::string_view st = rest.substr(0, sp2);
      if (st == "pending")
        r.rcpt_state[idx] = Record::RcptState::Pending;
      else if (st == "delivered")
        r.rcpt_state[idx] = Record::RcptState::Delivered;
      else if (st == "failed")
        r.rcpt_state[idx] = Record::RcptState::Failed;
      else
        return corrupt("bad rcpt state");
      r.rcpt_reply[idx] = sp2 == std::string_view::npos ? "" : std::string(rest.substr(sp2 + 1));
    } else {
      return corrupt("unknown field");
    }
  }
  return {};
}

}  // namespace spoolgate::spool
