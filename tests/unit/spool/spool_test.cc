// SPDX-License-Identifier: MIT
#include "spool/spool.h"

#include <doctest/doctest.h>

#include "temp_spool.h"
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/ids.h"

namespace fs = std::filesystem;
using namespace spoolgate;
using namespace spoolgate::spool;

namespace {

Record sample() {
  Record r;
  r.id = new_queue_id();
  r.arrived = 1795003200;
  r.client = "192.0.2.1";
  r.helo = "dev";
  r.sender = "a@example.com";
  r.recipients = {"b@example.com", "\"c d\"@example.com"};
  return r;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t count(const fs::path& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

}  // namespace

TEST_SUITE("spool") {
  TEST_CASE("header round trip and corruption checks") {
    Record r = sample();
    auto h = encode_header(r);
    REQUIRE(h);
    std::string file = *h + "hello\r\n";
    file.replace(content_size_offset(), 20, encode_size(7));
    auto back = decode_header(file, file.size());
    REQUIRE(back);
    CHECK(back->recipients == r.recipients);
    CHECK(back->size == 7);
    CHECK(back->content_offset + 7 == file.size());
    CHECK_FALSE(decode_header(file, file.size() - 1));         // truncated
    CHECK_FALSE(decode_header("SPOOLGATE-MESSAGE 2\n", 100));  // unknown version
    std::string bad = file;
    bad.replace(bad.find("rcpt: <b"), 8, "rcpt: b@");
    CHECK_FALSE(decode_header(bad, bad.size()));
    // A NUL (or CR) in a field is corruption, as encode_header would never
    // write it (found by the record fuzz target).
    std::string nul = file;
    nul.replace(nul.find("client: ") + 9, 1, std::string(1, '\0'));
    CHECK_FALSE(decode_header(nul, nul.size()));
    Record evil = sample();
    evil.helo = "x\nrcpt: <victim@example.com>";
    CHECK_FALSE(encode_header(evil));
  }

  TEST_CASE("the device a message came from: written only when known, read back, injection refused") {
    Record r = sample();
    CHECK(encode_header(r)->find("device:") == std::string::npos);  // as before: older readers read it
    r.device = "printer-3f";
    auto h = encode_header(r);
    REQUIRE(h);
    std::string file = *h;
    auto back = decode_header(file, file.size());
    REQUIRE(back);
    CHECK(back->device == "printer-3f");
    Record evil = sample();
    evil.device = "x\nrcpt: <victim@example.com>";
    CHECK_FALSE(encode_header(evil));
    std::string empty = file;
    empty.replace(empty.find("device: printer-3f"), 18, "device: ");
    CHECK_FALSE(decode_header(empty, empty.size()));
  }

  TEST_CASE("commit makes the message listable; recovery keeps it") {
    TempSpool t;
    auto s = &t.spool;
    Record r = sample();
    auto w = Writer::create(*s, r);
    REQUIRE(w);
    REQUIRE((*w)->append("Subject: x\r\n\r\n"));
    REQUIRE((*w)->append("body\r\n"));
    REQUIRE((*w)->commit());
    REQUIRE((*s)->sync_queue_dir());
    w->reset();
    auto list = (*s)->list();
    REQUIRE(list);
    REQUIRE(list->size() == 1);
    CHECK(list->front().size == 20);
    std::string content = slurp(t.path / "queue" / r.id).substr(list->front().content_offset);
    CHECK(content == "Subject: x\r\n\r\nbody\r\n");
    auto rec = (*s)->recover();
    REQUIRE(rec);
    CHECK(rec->queued.size() == 1);
    CHECK(rec->queued_bytes == 20);
    struct stat st {};
    REQUIRE(::stat((t.path / "queue" / r.id).c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
  }

  TEST_CASE("whatever header the writer can write, the reader reads back") {
    TempSpool t;
    Record r = sample();
    r.recipients.clear();
    // Recipients until the header is just under the bound: far more than
    // the first 64 KiB read.
    std::string local(200, 'x');
    std::size_t i = 0;
    for (;;) {
      Record probe = r;
      probe.recipients.push_back(local + std::to_string(i) + "@example.com");
      auto h = encode_header(probe);
      if (!h) break;
      r = std::move(probe);
      ++i;
    }
    auto big = encode_header(r);
    REQUIRE(big);
    CHECK(big->size() > kMaxHeaderBytes - 300);
    CHECK(big->size() <= kMaxHeaderBytes);
    Record over = r;
    over.recipients.push_back(local + "@example.com");
    auto refused = encode_header(over);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().detail.find("envelope too large") != std::string::npos);
    auto w = Writer::create(t.spool, r);
    REQUIRE(w);
    REQUIRE((*w)->append("Subject: x\r\n\r\nbody\r\n"));
    REQUIRE((*w)->commit());
    w->reset();
    auto loaded = t.spool->load(r.id);
    REQUIRE(loaded);
    CHECK(loaded->recipients == r.recipients);
    auto rec = t.spool->recover();
    REQUIRE(rec);
    CHECK(rec->moved_corrupt == 0);
    CHECK(rec->queued.size() == 1);
  }

  TEST_CASE("a crash between any two commit steps leaves nothing partial") {
    for (CommitStep step : {CommitStep::Written, CommitStep::FileSynced, CommitStep::Renamed}) {
      CAPTURE(static_cast<int>(step));
      TempSpool t;
      auto s = &t.spool;
      Record r = sample();
      {
        auto w = Writer::create(*s, r);
        REQUIRE(w);
        REQUIRE((*w)->append("data\r\n"));
        g_crash_after = [step](CommitStep at) { return at == step; };
        CHECK_FALSE((*w)->commit());
        g_crash_after = nullptr;
      }
      // "Restart": a new Spool object recovers the directory.
      auto s2 = Spool::open(t.path.string());
      REQUIRE(s2);
      auto rec = (*s2)->recover();
      REQUIRE(rec);
      CHECK(count(t.path / "tmp") == 0);
      if (step == CommitStep::Renamed) {
        // Renamed but the directory fsync and the 250 never happened: either
        // outcome is allowed; here the rename survived, so it is delivered whole.
        REQUIRE(rec->queued.size() == 1);
        CHECK(rec->queued[0].size == 6);
      } else {
        CHECK(rec->queued.empty());
        CHECK(rec->discarded_tmp == 1);
      }
    }
  }

  TEST_CASE("a crash before commit (mid-DATA) leaves only tmp/, which recovery empties") {
    TempSpool t;
    auto s = &t.spool;
    Record r = sample();
    auto w = Writer::create(*s, r);
    REQUIRE(w);
    REQUIRE((*w)->append("partial"));
    // Simulate the process dying: copy the file before the writer cleans up.
    fs::copy_file(t.path / "tmp" / r.id, t.path / "tmp" / (r.id + "x"));
    w->reset();
    CHECK(count(t.path / "tmp") == 1);
    auto rec = (*s)->recover();
    REQUIRE(rec);
    CHECK(rec->queued.empty());
    CHECK(count(t.path / "tmp") == 0);
  }

  TEST_CASE("corrupt queue entries move to failed/ with a reason") {
    TempSpool t;
    auto s = &t.spool;
    std::string id = new_queue_id();
    std::ofstream(t.path / "queue" / id) << "garbage";
    std::ofstream(t.path / "queue" / "README") << "stray";
    auto rec = (*s)->recover();
    REQUIRE(rec);
    CHECK(rec->moved_corrupt == 2);
    CHECK(count(t.path / "queue") == 0);
    CHECK(fs::exists(t.path / "failed" / id));
    CHECK(slurp(t.path / "failed" / (id + ".reason")).find("bad magic") != std::string::npos);
  }

  TEST_CASE("an entry that cannot be read at recovery is kept queued, not quarantined") {
    TempSpool t;
    // A read error (here EISDIR: a directory with a queue id's name; EIO or
    // EACCES alike) says nothing about the content.
    std::string id = new_queue_id();
    fs::create_directory(t.path / "queue" / id);
    auto rec = t.spool->recover();
    REQUIRE(rec);
    CHECK(rec->moved_corrupt == 0);
    REQUIRE(rec->unreadable.size() == 1);
    CHECK(rec->unreadable[0].id == id);
    CHECK(rec->unreadable[0].arrived > 0);
    CHECK(fs::exists(t.path / "queue" / id));
    CHECK(fs::is_empty(t.path / "failed"));
  }

  TEST_CASE("a rolled-back writer leaves nothing") {
    TempSpool t;
    auto s = &t.spool;
    {
      auto w = Writer::create(*s, sample());
      REQUIRE(w);
      REQUIRE((*w)->append("x"));
    }
    CHECK(count(t.path / "tmp") == 0);
    CHECK(count(t.path / "queue") == 0);
  }

  TEST_CASE("only one daemon may hold the spool") {
    TempSpool t;
    auto a = Spool::open(t.path.string());
    auto b = Spool::open(t.path.string());
    REQUIRE(a);
    REQUIRE(b);
    CHECK((*a)->lock());
    auto second = (*b)->lock();
    REQUIRE_FALSE(second);
    CHECK(second.error().message().find("in use") != std::string::npos);
  }
}
