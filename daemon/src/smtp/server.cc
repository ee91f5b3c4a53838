// SPDX-License-Identifier: MIT
#include "smtp/server.h"

#include <algorithm>
#include <charconv>

#include "core/clock.h"
#include "core/ids.h"
#include "core/text.h"

namespace spoolgate::smtp {

std::string_view to_string(EventType t) {
  switch (t) {
    case EventType::NeedInput:
      return "need_input";
    case EventType::Wait:
      return "wait";
    case EventType::MessageBegin:
      return "message_begin";
    case EventType::Content:
      return "content";
    case EventType::MessageEnd:
      return "message_end";
    case EventType::MessageAbort:
      return "message_abort";
    case EventType::StartTls:
      return "starttls";
    case EventType::Authenticate:
      return "authenticate";
    case EventType::Close:
      return "close";
    case EventType::Drop:
      return "drop";
  }
  return "unknown";
}

namespace {

std::string sanitize_helo(std::string_view helo) {
  std::string out;
  for (char c : helo.substr(0, 64)) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              std::string_view(".-_:[]").find(c) != std::string_view::npos;
    out += ok ? c : '_';
  }
  return out.empty() ? "unknown" : out;
}

}  // namespace

bool looks_like_http(std::string_view line) {
  for (std::string_view m : {"GET ", "POST ", "HEAD ", "PUT ", "DELETE ", "OPTIONS ", "CONNECT ", "PATCH "})
    if (line.starts_with(m)) return true;
  return istarts_with(line, "Host:") || istarts_with(line, "User-Agent:");
}

Server::Server(ServerSettings s) : s_(std::move(s)) {
  if (!s_.now) s_.now = unix_now;
  if (!s_.new_id) s_.new_id = new_queue_id;
}

void Server::greet() { reply("220 " + s_.hostname + " ESMTP spoolgate"); }

void Server::receive(std::string_view bytes) {
  if (mode_ == Mode::Closed) return;
  if (in_pos_ > 0 && in_pos_ >= in_.size() / 2) {
    in_.erase(0, in_pos_);
    in_pos_ = 0;
  }
  in_.append(bytes);
}

std::string Server::take_output() {
  std::string o;
  o.swap(out_);
  return o;
}

std::string Server::take_content() {
  std::string c;
  c.swap(content_);
  return c;
}

void Server::reply(std::string_view line) {
  out_.append(line);
  out_ += "\r\n";
}

void Server::error(std::string_view line) {
  reply(line);
  if (++bad_ >= s_.max_bad_commands) close_with("421 4.7.0 " + s_.hostname + " Error: too many errors");
}

void Server::overshoot() {
  // RFC 5321 4.5.3.1.10: the client sends the rest in another transaction;
  // a client that keeps sending them past the allowance is making errors.
  if (++overshoot_ > s_.max_recipient_overshoot && ++bad_ >= s_.max_bad_commands)
    close_with("421 4.7.0 " + s_.hostname + " Error: too many errors");
}

void Server::junk() {
  if (++junk_ > s_.max_junk_commands) close_with("421 4.7.0 " + s_.hostname + " Error: too many commands");
}

void Server::close_with(std::string_view line) {
  reply(line);
  mode_ = Mode::Closed;
  close_event_ = EventType::Close;
}

void Server::reset_transaction() {
  mail_ = false;
  Envelope fresh;
  fresh.helo = std::move(env_.helo);
  fresh.esmtp = env_.esmtp;
  env_ = std::move(fresh);
}

void Server::timeout() {
  if (mode_ == Mode::Closed) return;
  close_with("421 4.4.2 " + s_.hostname + " Error: timeout exceeded");
}

void Server::shutdown() {
  if (mode_ == Mode::Closed) return;
  close_with("421 4.3.2 " + s_.hostname + " Service shutting down, try again later");
}

void Server::message_committed() {
  if (mode_ != Mode::AwaitCommit) return;
  reply("250 2.0.0 Ok: queued as " + env_.id);
  mode_ = Mode::Command;
  mail_ = false;
  junk_ = 0;  // a client that delivers is not chattering
  overshoot_ = 0;
}

void Server::message_failed(std::string_view line) {
  if (mode_ != Mode::AwaitCommit) return;
  reply(line);
  mode_ = Mode::Command;
  mail_ = false;
}

EventType Server::next() {
  for (;;) {
    switch (mode_) {
      case Mode::Closed:
        return close_event_;
      case Mode::AwaitCommit:
        return EventType::Wait;
      case Mode::StartTls:
        return EventType::StartTls;
      case Mode::Authenticate:
        return EventType::Authenticate;
      case Mode::Data:
        return data_step();
      case Mode::AuthResponse:  // a line, like a command
      case Mode::Command:
        break;
    }
    std::string_view in(in_.data() + in_pos_, in_.size() - in_pos_);
    size_t lf = in.find('\n');
    if (discarding_) {
      // The rest of an overlong line is never run as a command.
      if (lf == std::string_view::npos) {
        in_pos_ = in_.size();
        return EventType::NeedInput;
      }
      in_pos_ += lf + 1;
      discarding_ = false;
      continue;
    }
    if (lf == std::string_view::npos) {
      if (in.size() < kMaxLine) return EventType::NeedInput;
      in_pos_ = in_.size();
      discarding_ = true;
      error("500 5.5.2 Error: line too long");
      continue;
    }
    std::string_view line = in.substr(0, lf);
    in_pos_ += lf + 1;
    if (lf + 1 > kMaxLine) {
      error("500 5.5.2 Error: line too long");
      continue;
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (mode_ == Mode::AuthResponse)
      auth_response(line);
    else
      command(line);
  }
}

void Server::command(std::string_view line) {
  if (looks_like_http(line)) {
    mode_ = Mode::Closed;
    close_event_ = EventType::Drop;
    return;
  }
  for (char c : line) {
    if (c == '\0' || c == '\r') {
      error("500 5.5.2 Error: bad character in command");
      return;
    }
  }
  size_t sp = line.find(' ');
  std::string_view verb = line.substr(0, sp);
  std::string_view args = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);

  if (iequals(verb, "EHLO")) return proceed_helo(args, true);
  if (iequals(verb, "HELO")) return proceed_helo(args, false);
  if (iequals(verb, "MAIL")) return check_mail(args);
  if (iequals(verb, "RCPT")) return check_rcpt(args);
  if (iequals(verb, "DATA")) return check_data(args);
  if (iequals(verb, "RSET")) {
    if (!trim(args).empty()) return error("501 5.5.4 Syntax: RSET");
    reset_transaction();
    reply("250 2.0.0 Ok");
    return junk();
  }
  if (iequals(verb, "NOOP")) {
    reply("250 2.0.0 Ok");
    return junk();
  }
  if (iequals(verb, "QUIT")) return close_with("221 2.0.0 Bye");
  if (iequals(verb, "VRFY")) {
    if (trim(args).empty()) return error("501 5.5.4 Syntax: VRFY address");
    reply("252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery");
    return junk();
  }
  if (iequals(verb, "HELP")) {
    reply(std::string("214 2.0.0 Commands: EHLO HELO ") + (s_.offer_starttls && !tls_ ? "STARTTLS " : "") +
          "MAIL RCPT DATA RSET NOOP QUIT VRFY HELP");
    return junk();
  }
  if (iequals(verb, "STARTTLS")) return starttls(args);
  if (iequals(verb, "AUTH") && s_.auth != ServerSettings::Auth::Off) return auth(args);
  for (std::string_view known : {"EXPN", "AUTH", "BDAT", "ETRN", "TURN", "ATRN"})
    if (iequals(verb, known)) return error("502 5.5.1 Error: command not implemented");
  error("500 5.5.2 Error: command not recognized");
}

void Server::proceed_helo(std::string_view args, bool esmtp) {
  args = trim(args);
  if (args.empty()) return error(esmtp ? "501 5.5.4 Syntax: EHLO hostname" : "501 5.5.4 Syntax: HELO hostname");
  helo_ = true;
  reset_transaction();
  env_.helo = sanitize_helo(args);
  env_.esmtp = esmtp;
  if (!esmtp) return reply("250 " + s_.hostname);
  reply("250-" + s_.hostname);
  reply("250-SIZE " + std::to_string(s_.max_message_size));
  reply("250-8BITMIME");
  reply("250-PIPELINING");
  reply("250-ENHANCEDSTATUSCODES");
  if (s_.offer_starttls && !tls_) reply("250-STARTTLS");
  if (auth_offered() && user_.empty()) reply("250-AUTH PLAIN LOGIN");
  reply("250 SMTPUTF8");
}

void Server::starttls(std::string_view args) {
  if (tls_) return error("554 5.5.1 Error: TLS already active");
  if (!s_.offer_starttls) return error("502 5.5.1 Error: command not implemented");
  if (!trim(args).empty()) return error("501 5.5.4 Syntax: STARTTLS");
  if (mail_) return error("503 5.5.1 Error: MAIL transaction in progress");
  // RFC 3207 5 (the injection of CVE-2011-0411): whatever came after the
  // STARTTLS line in plaintext is dropped, never run after the handshake.
  discarded_ += in_.size() - in_pos_;
  in_pos_ = in_.size();
  reply("220 2.0.0 Ready to start TLS");
  mode_ = Mode::StartTls;
}

void Server::tls_started(std::string detail) {
  if (mode_ == Mode::Closed) return;
  tls_ = true;
  tls_detail_ = std::move(detail);
  // RFC 3207 4.2: the client must say EHLO again; nothing from before TLS
  // (not even input already buffered) carries over.
  helo_ = false;
  user_.clear();
  reset_transaction();
  env_.helo.clear();
  env_.esmtp = false;
  discarded_ += in_.size() - in_pos_;
  in_pos_ = in_.size();
  mode_ = Mode::Command;
}

void Server::check_mail(std::string_view args) {
  if (!helo_) return error("503 5.5.1 Error: send HELO/EHLO first");
  if (mail_) return error("503 5.5.1 Error: nested MAIL command");
  if (s_.auth == ServerSettings::Auth::Required && user_.empty())
    return error(auth_offered() ? "530 5.7.0 Authentication required"
                                : "530 5.7.0 Must issue a STARTTLS command first");
  if (!istarts_with(args, "FROM:")) return error("501 5.5.4 Syntax: MAIL FROM:<address>");
  ParsedPath p = parse_path(args.substr(5), PathKind::Sender);
  switch (p.error) {
    case PathError::Ok:
      break;
    case PathError::BadParam:
      return error("501 5.5.4 Syntax error in parameters");
    case PathError::TooLong:
      return error("501 5.1.7 Sender address too long");
    default:
      return error("501 5.1.7 Bad sender address syntax");
  }
  bool utf8 = false, eight = false;
  std::uint64_t size = 0;
  std::vector<std::string_view> seen;
  for (const Param& prm : p.params) {
    if (!env_.esmtp) return error("555 5.5.4 Parameters require EHLO");
    // RFC 5321 4.1.2 / RFC 1870 6: a parameter appears at most once.
    if (std::find(seen.begin(), seen.end(), prm.keyword) != seen.end())
      return error("501 5.5.4 Duplicate " + prm.keyword + " parameter");
    seen.push_back(prm.keyword);
    if (prm.keyword == "SIZE") {  // RFC 1870
      const std::string& v = prm.value.value_or("");
      auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), size);
      if (v.empty() || ec != std::errc() || ptr != v.data() + v.size()) return error("501 5.5.4 Bad SIZE parameter");
    } else if (prm.keyword == "BODY") {  // RFC 6152
      std::string v = lower(prm.value.value_or(""));
      if (v == "8bitmime")
        eight = true;
      else if (v != "7bit")
        return error("555 5.5.4 Unsupported BODY parameter");
    } else if (prm.keyword == "SMTPUTF8") {  // RFC 6531 3.4
      if (prm.value) return error("501 5.5.4 SMTPUTF8 takes no value");
      utf8 = true;
    } else {
      return error("555 5.5.4 Unsupported option: " + prm.keyword);
    }
  }
  if (p.mailbox.utf8 && !utf8) return error("553 5.6.7 Non-ASCII address requires SMTPUTF8");
  if (!sender_allowed(device_, p.mailbox.str()))
    return error("550 5.7.1 Sender address rejected: not allowed for " + device_.name);
  if (size > s_.max_message_size) return error("552 5.3.4 Message size exceeds fixed limit");
  if (!s_.within_rate())
    return reply("450 4.7.1 Error: too much mail from " + (device_.name.empty() ? s_.client_address : device_.name) +
                 ", try again later");
  if (!s_.accepting(size)) return reply("452 4.3.1 Insufficient system storage");
  mail_ = true;
  route_cap_ = UINT64_MAX;
  env_.sender = std::move(p.mailbox);
  if (!s_.rewrite_from.empty() && !env_.sender.null()) {
    ParsedPath r = parse_path("<" + s_.rewrite_from + ">", PathKind::Sender);
    if (r.error == PathError::Ok) env_.sender = std::move(r.mailbox);
  }
  env_.smtputf8 = utf8;
  env_.body_8bit = eight;
  env_.declared_size = size;
  env_.recipients.clear();
  // The record's fixed lines, HELO, client and sender (spool/record.h).
  envelope_bytes_ = 512 + env_.helo.size() + s_.client_address.size() + env_.sender.str().size();
  reply("250 2.1.0 Ok");
}

void Server::check_rcpt(std::string_view args) {
  if (!mail_) return error("503 5.5.1 Error: need MAIL command");
  if (!istarts_with(args, "TO:")) return error("501 5.5.4 Syntax: RCPT TO:<address>");
  ParsedPath p = parse_path(args.substr(3), PathKind::Recipient);
  switch (p.error) {
    case PathError::Ok:
      break;
    case PathError::BadParam:
      return error("501 5.5.4 Syntax error in parameters");
    case PathError::TooLong:
      return error("501 5.1.3 Recipient address too long");
    default:
      return error("501 5.1.3 Bad recipient address syntax");
  }
  if (!p.params.empty()) {
    // MAIL's parameters (RFC 1870, 6152, 6531) have no meaning on RCPT: a
    // syntax error; anything else is an extension we do not implement.
    const std::string& k = p.params.front().keyword;
    if (k == "SIZE" || k == "BODY" || k == "SMTPUTF8") return error("501 5.5.4 " + k + " is not a RCPT TO parameter");
    return error("555 5.5.4 Unsupported option: " + k);
  }
  if (p.mailbox.utf8 && !env_.smtputf8) return error("553 5.6.7 Non-ASCII address requires SMTPUTF8");
  if (env_.recipients.size() >= s_.max_recipients) {
    reply("452 4.5.3 Error: too many recipients");
    return overshoot();
  }
  // RFC 5321 4.5.3.1.10: 452 for a recipient beyond what we can hold; the
  // client sends the rest in another transaction.
  std::size_t bytes = p.mailbox.str().size() + 10;  // "rcpt: <" ... ">\n"
  if (envelope_bytes_ + bytes > s_.max_envelope_bytes) {
    reply("452 4.5.3 Error: too many recipients (the envelope is full)");
    return overshoot();
  }
  if (s_.routable && !s_.routable(env_.sender.str(), p.mailbox.str()))
    return reply("550 5.7.1 <" + p.mailbox.str() +
                 ">: Recipient address rejected: no route to an upstream takes this sender and recipient");
  std::uint64_t cap = s_.size_cap ? s_.size_cap(env_.sender.str(), p.mailbox.str()) : 0;
  if (cap && env_.declared_size > cap)
    return reply("552 5.3.4 <" + p.mailbox.str() +
                 ">: Message size exceeds what the upstream for this recipient takes (" + std::to_string(cap) +
                 " bytes)");
  envelope_bytes_ += bytes;
  if (cap) route_cap_ = std::min(route_cap_, cap);
  env_.recipients.push_back(std::move(p.mailbox));
  reply("250 2.1.5 Ok");
}

void Server::check_data(std::string_view args) {
  if (!mail_) return error("503 5.5.1 Error: need MAIL command");
  if (env_.recipients.empty()) return error("554 5.5.1 Error: no valid recipients");
  if (!trim(args).empty()) return error("501 5.5.4 Syntax: DATA");
  env_.id = s_.new_id();
  env_.arrived = s_.now();
  HeaderFixSettings h;
  h.received = received_field();
  h.add_missing = s_.add_missing_headers;
  h.rewrite_from = s_.rewrite_from;
  h.message_id = env_.id + "." + std::to_string(env_.arrived) + "@" + s_.hostname;
  h.now = env_.arrived;
  h.max_header_bytes = s_.max_header_bytes;
  fixer_.emplace(std::move(h));
  decoder_.reset();
  decoded_.clear();
  content_.clear();
  size_ = 0;
  too_big_ = false;
  end_pending_ = false;
  mode_ = Mode::Data;
  reply("354 End data with <CR><LF>.<CR><LF>");
  // MessageBegin is reported by the next data_step().
  content_begin_pending_ = true;
}

std::string Server::received_field() const {
  // RFC 3848: an S for a session under TLS (ESMTPS, UTF8SMTPS), and the
  // version and cipher in a comment, as Postfix does.
  std::string proto = env_.esmtp ? (env_.smtputf8 ? "UTF8SMTP" : "ESMTP") : "SMTP";
  if (tls_ && env_.esmtp) proto += "S";
  std::string from = s_.client_address == "unix" ? "(unix socket)" : "([" + s_.client_address + "])";
  std::string using_tls = tls_ && !tls_detail_.empty() ? "\r\n\t(using " + tls_detail_ + ")" : "";
  if (!user_.empty()) using_tls += "\r\n\t(authenticated as " + user_ + ")";
  return "Received: from " + env_.helo + " " + from + using_tls + "\r\n\tby " + s_.hostname + " (spoolgate) with " +
         proto + " id " + env_.id + ";\r\n\t" + rfc5322_date(env_.arrived) + "\r\n";
}

EventType Server::data_step() {
  for (;;) {
    if (content_begin_pending_) {
      content_begin_pending_ = false;
      return EventType::MessageBegin;
    }
    if (end_pending_) {
      end_pending_ = false;
      mode_ = Mode::AwaitCommit;
      return EventType::MessageEnd;
    }
    std::string_view in(in_.data() + in_pos_, std::min(kChunk, in_.size() - in_pos_));
    size_t used = decoder_.decode(in, decoded_);
    in_pos_ += used;
    size_ += decoded_.size();
    if (size_ > std::min<std::uint64_t>(s_.max_message_size, route_cap_) && !too_big_) {
      too_big_ = true;  // keep reading to the end, keep nothing
      content_.clear();
    }
    if (!too_big_) fixer_->feed(decoded_, content_);
    decoded_.clear();

    if (decoder_.done()) {
      if (!too_big_) fixer_->finish(content_);
      std::string refusal;
      if (too_big_ && size_ > s_.max_message_size)
        refusal = "552 5.3.4 Error: message size exceeds fixed limit";
      else if (too_big_)
        refusal = "552 5.3.4 Error: message size exceeds what the upstream of a recipient takes (" +
                  std::to_string(route_cap_) + " bytes)";
      else if (fixer_->too_big())
        refusal = "552 5.3.4 Error: message header size exceeds limit";
      else if (s_.reject_bare_newlines && decoder_.saw_bare_newline())
        refusal = "550 5.6.0 Error: message contains bare CR or LF line endings";
      fixer_.reset();
      if (!refusal.empty()) {
        content_.clear();
        error(refusal);
        if (mode_ != Mode::Closed) mode_ = Mode::Command;
        mail_ = false;
        return EventType::MessageAbort;
      }
      if (!content_.empty()) {
        end_pending_ = true;
        return EventType::Content;
      }
      mode_ = Mode::AwaitCommit;
      return EventType::MessageEnd;
    }
    if (content_.size() >= kChunk) return EventType::Content;
    if (used == 0) return EventType::NeedInput;
  }
}

}  // namespace spoolgate::smtp
