// SPDX-License-Identifier: MIT
// spool/spool: the durable on-disk queue.
//
// Layout under the spool directory:
//   tmp/<id>            messages being received (never acknowledged)
//   queue/<id>          committed messages (spool/record.h)
//   failed/<id>         permanent failures and corrupt entries, each with
//   failed/<id>.reason  a one-line reason
//   lock                flock'd by the running daemon
//
// Commit (invariant 1), in this order:
//   1. content and header written to tmp/<id>, content-size patched in;
//   2. fsync(tmp/<id>)                        crash before: tmp/ is discarded;
//   3. rename(tmp/<id>, queue/<id>)           crash before: tmp/ is discarded;
//   4. fsync(queue/)                          crash before: the rename may be
//                                             lost, but no 250 was sent yet;
//   5. only then the caller may answer 250.
// Step 4 is separate (sync_queue_dir) so that messages finishing together
// share one directory fsync (group commit).
//
// Every call here blocks on the disk: callers on the event loop run them on a
// worker thread. Nothing here knows about sockets or the loop. Errors come
// back as Result; ENOSPC/EDQUOT as Errc::SpoolNoSpace.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "spool/record.h"

namespace spoolgate::spool {

struct Recovery {
  std::vector<Record> queued;  // committed, ready for delivery
  // Committed entries that could not be read now (EIO, EACCES, EMFILE):
  // not corrupt, so never quarantined; scheduled by id and arrival (the
  // file's mtime), and loaded again when due like any other.
  struct Unreadable {
    std::string id;
    std::int64_t arrived = 0;  // unix seconds
    std::uint64_t bytes = 0;   // the file's size (usage until it is read)
  };
  std::vector<Unreadable> unreadable;
  unsigned discarded_tmp = 0;  // interrupted receptions removed
  unsigned moved_corrupt = 0;  // moved to failed/
  std::uint64_t queued_bytes = 0;
};

class Spool {
 public:
  // Creates the directories if needed. Does not take the lock.
  static Result<std::shared_ptr<Spool>> open(const std::string& dir);
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Takes the daemon's exclusive lock (flock on <dir>/lock); fails if another
  // daemon holds it.
  Result<void> lock();
  // Start-up scan: empties tmp/, checks every queue/ entry, moves corrupt ones
  // to failed/ (logged), returns the committed ones sorted by id. An entry
  // that cannot be read now is not corrupt: it is returned as unreadable.
  Result<Recovery> recover();
  // Read-only listing for the CLI (no lock, no changes); corrupt entries are
  // skipped and reported through `corrupt`.
  Result<std::vector<Record>> list(std::vector<std::string>* corrupt = nullptr) const;

  Result<void> sync_queue_dir();
  Result<std::uint64_t> free_bytes() const;

  // Moves queue/<id> (and its state) to failed/<id> with a reason file.
  Result<void> move_to_failed(const std::string& id, std::string_view reason);
  // Atomically replaces queue/<id>.state with r's delivery state.
  Result<void> write_state(const Record& r);
  // Removes a delivered message: the message file first (that uncommits it),
  // then its state, then fsync(queue/).
  Result<void> remove(const std::string& id);
  // Loads one queued message (header and state).
  Result<Record> load(const std::string& id) const;

  const std::string& dir() const { return dir_; }
  std::string tmp_path(std::string_view id) const { return dir_ + "/tmp/" + std::string(id); }
  std::string queue_path(std::string_view id) const { return dir_ + "/queue/" + std::string(id); }
  std::string failed_path(std::string_view id) const { return dir_ + "/failed/" + std::string(id); }

 private:
  explicit Spool(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
  int queue_fd_ = -1;
  int lock_fd_ = -1;
};

// Reads the content of a queued message in pieces, for delivery.
class Reader {
 public:
  static Result<std::unique_ptr<Reader>> open(const Spool& spool, const Record& r);
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
  // Appends up to max bytes to out; returns how many (0 at the end).
  Result<std::size_t> read(std::string& out, std::size_t max);
  std::uint64_t remaining() const { return end_ - pos_; }

 private:
  Reader() = default;
  int fd_ = -1;
  std::uint64_t pos_ = 0;
  std::uint64_t end_ = 0;
};

// The steps of a commit, for crash-injection tests.
enum class CommitStep { Written, FileSynced, Renamed };
// Test hook: when set and it returns true for a step, the commit stops right
// after that step as if the process had died (fd closed, no clean-up).
extern std::function<bool(CommitStep)> g_crash_after;

// One message being received. Not thread-safe; may move between threads
// between calls (the listener runs each call on a worker).
class Writer {
 public:
  // Creates tmp/<id> (O_EXCL) and writes the header.
  static Result<std::unique_ptr<Writer>> create(std::shared_ptr<Spool> spool, const Record& r);
  ~Writer();  // rolls back unless committed
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  Result<void> append(std::string_view bytes);
  // Steps 1-3 above. On error the tmp file is removed.
  Result<void> commit();
  void rollback();
  // Committed or rolled back: destroying it touches no disk, so the loop
  // may do it (an unfinished one unlinks its file: a worker's job).
  bool finished() const { return committed_; }
  std::uint64_t content_size() const { return size_; }
  const std::string& id() const { return id_; }

 private:
  Writer() = default;
  std::shared_ptr<Spool> spool_;
  std::string id_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  bool committed_ = false;
};

}  // namespace spoolgate::spool
