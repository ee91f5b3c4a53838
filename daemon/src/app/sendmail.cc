// SPDX-License-Identifier: MIT
#include "app/sendmail.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <iostream>

#include "app/request_server.h"
#include "app/submit.h"
#include "core/clock.h"
#include "core/ids.h"
#include "core/text.h"
#include "smtp/address.h"
#include "smtp/data.h"
#include "smtp/headers.h"
#include "spool/spool.h"

namespace spoolgate::app {
namespace {

constexpr int kUsage = 64;     // EX_USAGE
constexpr int kDataErr = 65;   // EX_DATAERR
constexpr int kTempFail = 75;  // EX_TEMPFAIL

std::string login_name() {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): the sendmail CLI has one thread
  if (struct passwd* pw = ::getpwuid(::getuid())) return pw->pw_name;
  return "nobody";
}

// Addresses from To:, Cc:, Bcc: values ("a@b, Name <c@d>").
void addresses_in(std::string_view value, std::vector<std::string>& out) {
  for (std::string_view part : split(value, ',')) {
    part = trim(part);
    size_t lt = part.rfind('<'), gt = part.rfind('>');
    if (lt != std::string_view::npos && gt != std::string_view::npos && gt > lt)
      part = part.substr(lt + 1, gt - lt - 1);
    if (!part.empty()) out.emplace_back(part);
  }
}

}  // namespace

int sendmail(const config::Config& cfg, const SendmailOptions& opt, std::istream& in) {
  if (has_control(opt.full_name)) {
    // A line break in -F would let the caller add header fields.
    std::cerr << "spoolgate sendmail: -F must be one line of text\n";
    return kUsage;
  }
  // Read the message: lines up to EOF (or a lone "." without -i). As on the
  // SMTP side (invariant 7), CRLF, a bare LF and a bare CR each end a line,
  // so the spool holds CRLF lines only; a NUL is refused.
  std::vector<std::string> lines;
  std::string line;
  std::uint64_t total = 0;
  bool cr = false, ended = false;
  auto end_line = [&]() -> bool {
    if (!opt.ignore_dots && line == ".") return false;
    total += line.size() + 2;
    lines.push_back(std::move(line));
    line.clear();
    return true;
  };
  char buf[65536];
  while (!ended && in) {
    in.read(buf, sizeof buf);
    std::streamsize n = in.gcount();
    for (std::streamsize k = 0; k < n && !ended; ++k) {
      char c = buf[k];
      if (c == '\0') {
        std::cerr << "spoolgate sendmail: the message contains a NUL byte\n";
        return kDataErr;
      }
      if (cr) {
        cr = false;
        if (c == '\n') continue;  // the LF of a CRLF
      }
      if (c == '\r' || c == '\n') {
        cr = c == '\r';
        ended = !end_line();
        continue;
      }
      line += c;
    }
    if (total + line.size() > cfg.limits.max_message_size) {
      std::cerr << "spoolgate sendmail: message exceeds limits.max_message_size\n";
      return kUsage;
    }
  }
  if (!ended && !line.empty()) end_line();  // a last line without a line end
  // Header block, for -t and for a missing From:.
  std::vector<std::string> rcpts = opt.recipients;
  bool has_from = false;
  std::vector<std::string> kept;
  size_t i = 0;
  for (; i < lines.size() && !lines[i].empty(); ++i) {
    std::string field = lines[i];
    while (i + 1 < lines.size() && !lines[i + 1].empty() && (lines[i + 1][0] == ' ' || lines[i + 1][0] == '\t'))
      field += "\n" + lines[++i];
    std::string_view name = std::string_view(field).substr(0, field.find(':'));
    bool bcc = iequals(name, "Bcc");
    if (opt.recipients_from_headers && (iequals(name, "To") || iequals(name, "Cc") || bcc))
      addresses_in(field.substr(field.find(':') + 1), rcpts);
    if (iequals(name, "From")) has_from = true;
    if (!bcc) kept.push_back(field);  // Bcc: never travels
  }
  std::string sender = opt.sender.empty() ? login_name() + "@" + cfg.hostname : opt.sender;
  auto parsed_sender = smtp::parse_path("<" + sender + ">", smtp::PathKind::Sender);
  if (parsed_sender.error != smtp::PathError::Ok) {
    std::cerr << "spoolgate sendmail: bad sender address '" << sender << "'\n";
    return kUsage;
  }
  spool::Record r;
  for (const auto& a : rcpts) {
    auto p = smtp::parse_path("<" + a + ">", smtp::PathKind::Recipient);
    if (p.error != smtp::PathError::Ok) {
      std::cerr << "spoolgate sendmail: bad recipient address '" << a << "'\n";
      return kUsage;
    }
    r.recipients.push_back(p.mailbox.str());
  }
  if (r.recipients.empty()) {
    std::cerr << "spoolgate sendmail: no recipients (give them as arguments, or use -t)\n";
    return kUsage;
  }
  // The same bound as RCPT over SMTP (a -t message can name any number).
  if (r.recipients.size() > cfg.limits.max_recipients) {
    std::cerr << "spoolgate sendmail: too many recipients (" << r.recipients.size()
              << "; limits.max_recipients is " << cfg.limits.max_recipients << ")\n";
    return kUsage;
  }
  // Canonical text, then the same header fix-ups SMTP mail gets.
  std::string text;
  if (!has_from) {
    // RFC 5322 3.2.4: a quoted-string, with its quotes and backslashes escaped.
    std::string name;
    for (char c : opt.full_name) {
      if (c == '"' || c == '\\') name += '\\';
      name += c;
    }
    text +=
        "From: " + (name.empty() ? std::string() : "\"" + name + "\" ") + "<" + parsed_sender.mailbox.str() + ">\r\n";
  }
  for (const auto& f : kept) {
    std::string crlf = f;
    for (size_t p = crlf.find('\n'); p != std::string::npos; p = crlf.find('\n', p + 2)) crlf.replace(p, 1, "\r\n");
    text += crlf + "\r\n";
  }
  for (; i < lines.size(); ++i) text += lines[i] + "\r\n";
  r.id = new_queue_id();
  r.arrived = unix_now();
  r.client = "local";
  r.helo = login_name();
  r.sender = parsed_sender.mailbox.str();
  for (unsigned char c : text)
    if (c >= 0x80) r.body_8bit = true;
  smtp::HeaderFixSettings hs;
  hs.received = "Received: by " + cfg.hostname + " (spoolgate sendmail, uid " + std::to_string(::getuid()) +
                ")\r\n\tid " + r.id + ";\r\n\t" + rfc5322_date(r.arrived) + "\r\n";
  hs.add_missing = true;
  hs.rewrite_from = cfg.headers.rewrite_from;
  hs.message_id = r.id + "." + std::to_string(r.arrived) + "@" + cfg.hostname;
  hs.now = r.arrived;
  smtp::HeaderFixer fixer(hs);
  std::string content;
  fixer.feed(smtp::dot_stuff(text), content);
  fixer.finish(content);
  if (fixer.too_big()) {
    std::cerr << "spoolgate sendmail: the header block is too large\n";
    return kUsage;
  }
  if (!cfg.headers.rewrite_from.empty()) r.sender = cfg.headers.rewrite_from;
  r.normalize();
  // What the spool could not record is refused here, not queued unreadable.
  if (auto h = spool::encode_header(r); !h) {
    std::cerr << "spoolgate sendmail: " << h.error().message() << "\n";
    return kUsage;
  }

  // The running daemon takes it over its submission socket: it owns every
  // spool file, whoever runs sendmail (root from cron, any user).
  std::string why = "submission_socket is not set";
  if (!cfg.submission_socket.empty()) {
    Submitted s = submit(cfg.submission_socket, r, content);
    if (s.outcome == Submitted::Outcome::Queued) return 0;
    if (s.outcome == Submitted::Outcome::Refused) {
      std::cerr << "spoolgate sendmail: the daemon did not take the message: " << s.detail
                << " (nothing was queued)\n";
      return s.code >= 500 ? kDataErr : kTempFail;
    }
    why = s.detail;
  }
  // No daemon answers. Only the spool's owner may write it directly (the
  // daemon must be able to read what it finds there); anyone else would
  // leave a file the daemon quarantines, or queue into a spool nobody
  // reads (a default ./var/spool under the current directory).
  struct stat st {};
  if (::stat(cfg.spool.dir.c_str(), &st) != 0 || st.st_uid != ::geteuid()) {
    std::cerr << "spoolgate sendmail: no daemon takes mail (" << why << "), and this user (uid " << ::geteuid()
              << ") does not own the spool " << cfg.spool.dir << ": the message was not queued\n";
    return kTempFail;
  }
  auto sp = spool::Spool::open(cfg.spool.dir);
  if (!sp) {
    std::cerr << "spoolgate sendmail: cannot open spool: " << sp.error().message() << "\n";
    return kTempFail;
  }
  auto w = spool::Writer::create(*sp, r);
  Result<void> ok = w ? (*w)->append(content) : tl::unexpected(w.error());
  if (ok) ok = (*w)->commit();
  if (ok) ok = (*sp)->sync_queue_dir();
  if (!ok) {
    std::cerr << "spoolgate sendmail: cannot queue the message: " << ok.error().message() << "\n";
    return kTempFail;
  }
  // Durable now. Tell a running daemon; without one it waits for the next start.
  auto reply = control_request((*sp)->dir() + "/control.sock", "inject " + r.id);
  if (reply && !reply->starts_with("ok")) std::cerr << "spoolgate sendmail: daemon: " << *reply;
  return 0;
}

}  // namespace spoolgate::app
