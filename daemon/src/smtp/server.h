// SPDX-License-Identifier: MIT
// smtp/server: the inbound SMTP state machine, without I/O (RFC 5321, 1870,
// 2920, 3207, 3463, 4954, 6152, 6531).
//
// The driver (listener/session) feeds received bytes with receive() and then
// calls next() until it answers NeedInput or Wait. Replies accumulate in an
// output buffer the driver sends with take_output(); in pipelined batches they
// come out in command order (RFC 2920 3.1). Message content leaves as Content
// events holding canonical bytes (smtp/data.h), bracketed by MessageBegin and
// MessageEnd/MessageAbort. After MessageEnd the machine waits, consuming no
// input, until the driver reports the commit: only message_committed() yields
// the 250 (invariant 1).
//
// Memory: the input buffer is the driver's to bound (it stops reading); one
// call to next() decodes at most kChunk input bytes; content is handed out in
// pieces of at most about kChunk bytes; the header block is bounded by
// max_header_bytes. An overlong command line is discarded as it arrives.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "smtp/address.h"
#include "smtp/data.h"
#include "smtp/headers.h"

namespace spoolgate::smtp {

struct ServerSettings {
  std::string hostname = "localhost";
  std::uint64_t max_message_size = 35ULL << 20;
  size_t max_recipients = 100;
  // The envelope (sender, HELO, client and recipients) must fit the spool's
  // record header: a RCPT that would overflow it gets 452 4.5.3.
  size_t max_envelope_bytes = 1000 * std::size_t{1024};
  int max_bad_commands = 20;
  // NOOP, RSET, VRFY and HELP since the last accepted message (Postfix's
  // smtpd_junk_command_limit): beyond this, 421 4.7.0 and close, so a
  // client cannot hold a slot with chatter.
  int max_junk_commands = 100;
  // Recipients refused with 452 for the limits, since the last accepted
  // message (Postfix's smtpd_recipient_overshoot_limit): beyond this each
  // counts as an error.
  int max_recipient_overshoot = 1000;
  // STARTTLS is offered (RFC 3207): the EHLO reply lists it until TLS is up.
  bool offer_starttls = false;
  // AUTH (RFC 4954), PLAIN and LOGIN: off, optional, or required before
  // MAIL. Offered only under TLS, or without it where auth_plaintext says
  // so (loopback, the listener's auth_plaintext_networks).
  enum class Auth { Off, Optional, Required } auth = Auth::Off;
  bool auth_plaintext = false;
  bool reject_bare_newlines = false;
  bool add_missing_headers = true;
  std::string rewrite_from;  // "" = keep
  size_t max_header_bytes = 256 * std::size_t{1024};
  std::string client_address;  // "127.0.0.1", "::1", "unix"
  // Asked at MAIL with the announced SIZE (0 when none): false while the
  // spool, counting what transactions in progress have reserved, is over
  // its watermarks (452 4.3.1).
  std::function<bool(std::uint64_t declared_size)> accepting = [](std::uint64_t) { return true; };
  // Asked at MAIL once the sender is accepted: false when the device has
  // sent its rate_limit for now (450 4.7.1, try later).
  std::function<bool()> within_rate = [] { return true; };
  // Asked at RCPT (sender and recipient without brackets, "" the null
  // sender): false when no route takes this recipient (550 5.7.1); null:
  // every recipient is routable.
  std::function<bool(std::string_view sender, std::string_view rcpt)> routable;
  // Asked at RCPT: the largest message the upstreams this recipient may go
  // through take (0: no limit of theirs). A SIZE above it gets 552 5.3.4
  // for this recipient; content above the smallest of the accepted
  // recipients' gets 552 5.3.4 at the end of DATA. Null: none.
  std::function<std::uint64_t(std::string_view sender, std::string_view rcpt)> size_cap;
  std::function<std::int64_t()> now;    // default: the system clock
  std::function<std::string()> new_id;  // default: core/ids
};

// What a known device may do (config `devices`); set by the driver when
// the client is recognised by its address or logs in.
struct DevicePolicy {
  std::string name;
  std::vector<std::string> senders;    // allowed envelope senders ("a@b", "@b"); empty: any
  std::string rewrite_from;            // "" = the settings'
  std::uint64_t max_message_size = 0;  // 0 = the settings'
};

// The device may use this envelope sender (case-insensitive; "@b" is any
// address at b; the null sender only when the list is empty).
bool sender_allowed(const DevicePolicy& d, std::string_view sender);

struct Envelope {
  std::string id;
  Mailbox sender;  // null() for <>
  std::vector<Mailbox> recipients;
  std::string helo;
  bool esmtp = false;
  bool smtputf8 = false;
  bool body_8bit = false;
  std::uint64_t declared_size = 0;
  std::int64_t arrived = 0;
};

enum class EventType {
  NeedInput,     // feed more bytes (or wait for them)
  Wait,          // waiting for message_committed()/message_failed()
  MessageBegin,  // envelope() describes the new message
  Content,       // take_content() holds the next canonical bytes
  MessageEnd,    // all content delivered: commit, then report
  MessageAbort,  // drop what was written; the refusal is in the output
  StartTls,      // send the output (the 220), then start TLS; tls_started() when it is up
  Authenticate,  // check credentials() (off the loop), then auth_result(); until then nothing more
  Close,         // send the output, then close
  Drop,          // close now without a reply (HTTP on the SMTP port)
};

std::string_view to_string(EventType t);

// A web page can make a browser POST to 127.0.0.1:2525 (a cross-protocol
// request); such lines never start an SMTP command, and the connection is
// dropped without a reply.
bool looks_like_http(std::string_view line);

class Server {
 public:
  static constexpr size_t kMaxLine = 512;  // RFC 5321 4.5.3.1.4, CRLF included
  static constexpr size_t kChunk = 64 * std::size_t{1024};

  explicit Server(ServerSettings s);

  // The 220 greeting; call once when the session may speak.
  void greet();
  void receive(std::string_view bytes);
  size_t input_size() const { return in_.size() - in_pos_; }
  EventType next();

  std::string take_output();
  bool has_output() const { return !out_.empty(); }
  std::string take_content();
  const Envelope& envelope() const { return env_; }

  void message_committed();                     // 250 2.0.0 queued as <id>
  void message_failed(std::string_view reply);  // e.g. "451 4.3.0 ..."
  // TLS is up (after StartTls, or before the greeting on an implicit-TLS
  // listener). RFC 3207 4.2: everything learned before is forgotten, the
  // client starts again with EHLO. `detail` ("TLSv1.3 TLS_AES_128_GCM_SHA256")
  // goes into the Received field.
  void tls_started(std::string detail);
  bool tls() const { return tls_; }
  // The login to check after Authenticate (cleared by auth_result()).
  struct Credentials {
    std::string mechanism;  // "PLAIN" or "LOGIN"
    std::string user;
    std::string password;
  };
  const Credentials& credentials() const { return creds_; }
  // 235, or 535 (counted as an error).
  void auth_result(bool ok);
  // This client has failed to log in too often lately: 421, then Close.
  void auth_locked();
  // AUTH commands answered with a refusal before any password was checked
  // (538 where TLS must come first, 504 an unknown mechanism, 503 out of
  // order, 501 a broken exchange, 535 acting for another name): the
  // mechanism the client named (upper case, or "?" when it is no SASL
  // name) and our reply, for the driver's log. A failed password check is
  // the driver's own to log. At most kMaxAuthRefusals wait between takes.
  struct AuthRefusal {
    std::string mechanism;
    std::string reply;
  };
  static constexpr std::size_t kMaxAuthRefusals = 8;
  std::vector<AuthRefusal> take_auth_refusals() { return std::exchange(auth_refusals_, {}); }
  // The device this session speaks for, from now on (its next transaction).
  void set_device(const DevicePolicy& d);
  // The name the client logged in as; empty before a login.
  const std::string& user() const { return user_; }
  // Bytes that came after a STARTTLS line in the same read (a client
  // pipelining past STARTTLS, or an injection): never executed.
  std::size_t discarded_after_starttls() const { return discarded_; }
  void timeout();   // 421 4.4.2, then Close
  void shutdown();  // 421 4.3.2, then Close
  bool in_transaction() const { return mail_; }
  bool closed() const { return mode_ == Mode::Closed; }

 private:
  enum class Mode { Command, AuthResponse, Data, AwaitCommit, StartTls, Authenticate, Closed };

  void reply(std::string_view line);  // adds CRLF
  void error(std::string_view line);  // a 5xx that counts towards max_bad_commands
  void junk();                        // counts towards max_junk_commands
  void overshoot();                   // a recipient over the limits
  void close_with(std::string_view line);
  void reset_transaction();
  void command(std::string_view line);
  EventType data_step();
  std::string received_field() const;

  void proceed_helo(std::string_view args, bool esmtp);
  void check_mail(std::string_view args);
  void check_rcpt(std::string_view args);
  void check_data(std::string_view args);
  void starttls(std::string_view args);
  // smtp/server_auth.cc
  bool auth_offered() const;
  void auth(std::string_view args);
  void auth_response(std::string_view line);
  void auth_decoded(const std::string& bytes);
  void auth_refuse(std::string_view line);  // error(line), remembered for take_auth_refusals()

  ServerSettings s_;
  Mode mode_ = Mode::Command;
  EventType close_event_ = EventType::Close;
  std::string in_;
  size_t in_pos_ = 0;
  std::string out_;
  bool discarding_ = false;  // inside an overlong command line
  int bad_ = 0;
  int junk_ = 0;
  int overshoot_ = 0;

  bool helo_ = false;
  bool mail_ = false;
  bool tls_ = false;
  std::string tls_detail_;
  Credentials creds_;
  int auth_step_ = 0;  // LOGIN: 1 waiting for the user name, 2 for the password; PLAIN: 1
  std::string user_;
  std::vector<AuthRefusal> auth_refusals_;
  DevicePolicy device_;
  std::size_t discarded_ = 0;
  Envelope env_;
  std::size_t envelope_bytes_ = 0;  // what env_ takes in the spool header (approximately, from above)

  DataDecoder decoder_;
  std::optional<HeaderFixer> fixer_;
  std::string decoded_;
  std::string content_;
  std::uint64_t size_ = 0;
  bool too_big_ = false;
  std::uint64_t route_cap_ = UINT64_MAX;  // the smallest size_cap of the accepted recipients
  bool end_pending_ = false;
  bool content_begin_pending_ = false;
};

}  // namespace spoolgate::smtp
