// SPDX-License-Identifier: MIT
// The whole inbound state machine fed a byte stream in arbitrary chunks.
// Oracles: stored content is canonical (no bare CR/LF, no lone-dot line);
// every turn of next() makes progress or asks for input; replies stay
// bounded; a 250 for a message only follows its commit; STARTTLS's 220 is
// the last plaintext reply, and nothing pipelined behind it is answered; a
// login taken from the input is no longer than the input; refused AUTH
// commands come out bounded, with a clean mechanism name.
#include "oracle.h"
#include "smtp/server.h"

using namespace spoolgate;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  smtp::ServerSettings s;
  s.hostname = "relay.test";
  s.max_message_size = in.ConsumeIntegralInRange<std::uint64_t>(64, 1 << 20);
  s.max_recipients = in.ConsumeIntegralInRange<size_t>(1, 5);
  s.reject_bare_newlines = in.ConsumeBool();
  s.add_missing_headers = in.ConsumeBool();
  s.max_header_bytes = in.ConsumeIntegralInRange<size_t>(64, 4096);
  s.client_address = "127.0.0.1";
  s.offer_starttls = true;  // the handshake is taken as done at once
  s.auth = smtp::ServerSettings::Auth::Optional;
  s.auth_plaintext = true;
  s.now = [] { return std::int64_t{1700000000}; };
  int ids = 0;
  s.new_id = [&ids] { return "ID" + std::to_string(++ids); };
  smtp::Server server(s);
  server.greet();
  std::string content;
  bool in_message = false;
  for (const std::string& piece : fuzz::chunks(in)) {
    server.receive(piece);
    for (int turns = 0;; ++turns) {
      SG_REQUIRE(turns < 100000);  // no loop without progress
      smtp::EventType e = server.next();
      // Refused AUTH commands, for the log: bounded, each one's mechanism
      // a SASL name (RFC 4422 3.1) or "?", its reply a refusal.
      auto refusals = server.take_auth_refusals();
      SG_REQUIRE(refusals.size() <= smtp::Server::kMaxAuthRefusals);
      for (const auto& r : refusals) {
        SG_REQUIRE(r.mechanism == "?" || (!r.mechanism.empty() && r.mechanism.size() <= 20 &&
                                          r.mechanism.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") ==
                                              std::string::npos));
        SG_REQUIRE(r.reply.size() >= 3 && (r.reply[0] == '5' || r.reply[0] == '4'));
      }
      if (e == smtp::EventType::NeedInput) break;
      if (e == smtp::EventType::MessageBegin) {
        SG_REQUIRE(!in_message);
        in_message = true;
        content.clear();
      } else if (e == smtp::EventType::Content) {
        content += server.take_content();
      } else if (e == smtp::EventType::MessageEnd) {
        SG_REQUIRE(in_message);
        SG_REQUIRE(fuzz::canonical(content));
        std::string before = server.take_output();
        SG_REQUIRE(before.find("queued as") == std::string::npos);  // not before the commit
        server.message_committed();
        in_message = false;
      } else if (e == smtp::EventType::MessageAbort) {
        in_message = false;
      } else if (e == smtp::EventType::Wait) {
        break;
      } else if (e == smtp::EventType::Authenticate) {
        // The login read from the input is never longer than the input.
        SG_REQUIRE(server.credentials().user.size() + server.credentials().password.size() <= size);
        SG_REQUIRE(server.credentials().mechanism == "PLAIN" || server.credentials().mechanism == "LOGIN");
        server.auth_result(server.credentials().user == "dev" && server.credentials().password == "pw");
        continue;
      } else if (e == smtp::EventType::StartTls) {
        // RFC 3207 5: the 220 is the last thing said in plaintext; nothing
        // pipelined behind STARTTLS is answered.
        std::string out = server.take_output();
        SG_REQUIRE(out.ends_with("220 2.0.0 Ready to start TLS\r\n"));
        SG_REQUIRE(!server.tls() && !in_message);
        server.tls_started("TLSv1.3 fuzz");
        SG_REQUIRE(server.tls() && !server.has_output());
        continue;
      } else if (e == smtp::EventType::Close || e == smtp::EventType::Drop) {
        return 0;
      }
      // Replies to a pipelined batch never pile up beyond what it asked.
      SG_REQUIRE(server.take_output().size() <= 64 * 1024);
    }
  }
  return 0;
}
