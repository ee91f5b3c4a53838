// SPDX-License-Identifier: MIT
// Golden SMTP transcripts for the server machine (tests/unit/smtp/transcripts);
// tests/integration/test_transcripts.py replays them against the real binary.
//
// Format, one directive per line:
//   @ key=value      setting (max_message_size, max_recipients, max_bad_commands,
//                    reject_bare_newlines, rewrite_from, add_missing, accepting)
//   C: text          client line, CRLF appended; consecutive C lines are sent
//                    as one batch (pipelining)
//   R: text          raw client bytes, escapes \r \n \0 \\ \xHH, nothing appended
//   S: text          expected reply line; a trailing * matches any rest
//   M: text          expected line of the last committed message (canonical,
//                    CRLF implied); M lines accumulate until the next C/R
//   E: close|drop    the machine asks to close (after replies) or drop
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "smtp/server.h"

namespace fs = std::filesystem;
using namespace spoolgate::smtp;

namespace {

std::string unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    char c = s[++i];
    if (c == 'r')
      out += '\r';
    else if (c == 'n')
      out += '\n';
    else if (c == '0')
      out += '\0';
    else if (c == 't')
      out += '\t';
    else if (c == 'x' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else
      out += c;
  }
  return out;
}

struct Runner {
  ServerSettings settings;
  std::unique_ptr<Server> server;
  std::string output;
  std::string message;  // last committed message
  std::string current;  // message being received
  std::string end_event;
  bool accepting = true;

  void start() {
    settings.hostname = "relay.test";
    settings.client_address = "192.0.2.1";
    settings.now = [] { return std::int64_t{1795003200}; };
    settings.new_id = [] { return std::string("QID0000000000001"); };
    settings.accepting = [this](std::uint64_t) { return accepting; };
    server = std::make_unique<Server>(settings);
    server->greet();
    run();
  }
  void run() {
    for (int guard = 0; guard < 100000; ++guard) {
      EventType e = server->next();
      output += server->take_output();
      switch (e) {
        case EventType::NeedInput:
          return;
        case EventType::Wait:
          message = current;
          current.clear();
          server->message_committed();
          continue;
        case EventType::MessageBegin:
          current.clear();
          continue;
        case EventType::Content:
          current += server->take_content();
          continue;
        case EventType::MessageEnd:
          continue;
        case EventType::MessageAbort:
          current.clear();
          continue;
        case EventType::Close:
          end_event = "close";
          output += server->take_output();
          return;
        case EventType::Drop:
          end_event = "drop";
          return;
        case EventType::StartTls:  // no transcript offers these (smtp/starttls_test.cc, smtp/auth_test.cc do)
        case EventType::Authenticate:
          FAIL("STARTTLS or AUTH in a transcript");
          return;
      }
    }
    FAIL("machine did not settle");
  }
};

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t eol = s.find("\r\n", pos);
    if (eol == std::string::npos) {
      out.push_back(s.substr(pos) + "<no CRLF>");
      break;
    }
    out.push_back(s.substr(pos, eol - pos));
    pos = eol + 2;
  }
  return out;
}

void run_transcript(const fs::path& file) {
  std::ifstream in(file);
  std::string line;
  Runner r;
  std::string batch;
  std::vector<std::string> expect;
  std::string expect_msg;
  bool have_msg = false, started = false;
  int lineno = 0;
  auto check = [&] {
    if (!started) {
      r.start();
      started = true;
    }
    if (!batch.empty()) {
      r.server->receive(batch);
      batch.clear();
      r.run();
    }
    auto got = lines_of(r.output);
    r.output.clear();
    CAPTURE(file.filename().string());
    CAPTURE(lineno);
    REQUIRE(got.size() == expect.size());
    for (size_t i = 0; i < got.size(); ++i) {
      const std::string& e = expect[i];
      if (!e.empty() && e.back() == '*')
        CHECK(got[i].starts_with(e.substr(0, e.size() - 1)));
      else
        CHECK(got[i] == e);
    }
    expect.clear();
    if (have_msg) CHECK(r.message == expect_msg);
    have_msg = false;
    expect_msg.clear();
  };
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty() || line[0] == '#') continue;
    std::string_view body = line.size() > 3 ? std::string_view(line).substr(3) : "";
    if (line.starts_with("@ ")) {
      std::string kv(line.substr(2));
      std::string k = kv.substr(0, kv.find('=')), v = kv.substr(kv.find('=') + 1);
      if (k == "max_message_size")
        r.settings.max_message_size = std::stoull(v);
      else if (k == "max_recipients")
        r.settings.max_recipients = std::stoull(v);
      else if (k == "max_bad_commands")
        r.settings.max_bad_commands = std::stoi(v);
      else if (k == "reject_bare_newlines")
        r.settings.reject_bare_newlines = v == "true";
      else if (k == "rewrite_from")
        r.settings.rewrite_from = v;
      else if (k == "add_missing")
        r.settings.add_missing_headers = v == "true";
      else if (k == "max_header_bytes")
        r.settings.max_header_bytes = std::stoull(v);
      else if (k == "accepting")
        r.accepting = v == "true";
      else
        FAIL("unknown setting " << k);
    } else if (line.starts_with("C: ") || line.starts_with("R: ")) {
      if (!expect.empty() || have_msg) check();
      batch += line[0] == 'C' ? std::string(body) + "\r\n" : unescape(body);
    } else if (line.starts_with("S: ")) {
      expect.emplace_back(body);
    } else if (line.starts_with("M: ")) {
      have_msg = true;
      expect_msg += unescape(body) + "\r\n";
    } else if (line.starts_with("E: ")) {
      check();
      CHECK(r.end_event == body);
    } else {
      FAIL("bad transcript line " << lineno << ": " << line);
    }
  }
  if (!expect.empty() || have_msg || !batch.empty()) check();
}

}  // namespace

TEST_SUITE("smtp/server") {
  TEST_CASE("golden transcripts") {
    fs::path dir = fs::path(SPOOLGATE_SOURCE_DIR) / "tests/unit/smtp/transcripts";
    int n = 0;
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.path().extension() != ".txt") continue;
      SUBCASE(e.path().filename().string().c_str()) { run_transcript(e.path()); }
      ++n;
    }
    CHECK(n >= 10);
  }
}
