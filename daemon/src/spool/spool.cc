// SPDX-License-Identifier: MIT
#include "spool/spool.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "core/files.h"
#include "core/ids.h"
#include "core/log.h"

namespace spoolgate::spool {

using files::ensure_dir;
using files::fsync_dir;
using files::read_small;
using files::write_all;

std::function<bool(CommitStep)> g_crash_after;

namespace {

constexpr size_t kFirstHeaderRead = 64 * std::size_t{1024};

// Reads and decodes the header of a message file, and its state file if any.
Result<Record> load_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail_errno("open " + path, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return fail_errno("stat " + path, e);
  }
  // Most headers fit the first read; a larger one (many recipients) is read
  // on, up to what encode_header can write.
  auto file_size = static_cast<std::uint64_t>(st.st_size);
  std::string head;
  std::size_t want = kFirstHeaderRead;
  for (;;) {
    std::size_t have = head.size();
    std::size_t goal = static_cast<std::size_t>(std::min<std::uint64_t>(want, file_size));
    if (goal <= have) break;
    head.resize(goal);
    ssize_t n;
    do {
      n = ::pread(fd, head.data() + have, goal - have, static_cast<off_t>(have));
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return fail_errno("read " + path, e);
    }
    head.resize(have + static_cast<std::size_t>(n));
    if (n == 0 || head.find("\n\n") != std::string::npos || want >= kMaxHeaderBytes + 2) break;
    want = std::min(want * 4, kMaxHeaderBytes + 2);
  }
  ::close(fd);
  auto r = decode_header(head, file_size);
  if (!r) return r;
  auto state = read_small(path + ".state");
  if (state) {
    auto d = decode_state(*state, *r);
    if (!d) return tl::unexpected(d.error());
  } else if (state.error().sys != ENOENT) {
    return tl::unexpected(state.error());
  }
  return r;
}

bool is_state_name(std::string_view n) { return n.ends_with(".state"); }

}  // namespace

Result<std::shared_ptr<Spool>> Spool::open(const std::string& dir) {
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  // Create parents for a developer run (./var/spool); the service manager
  // creates /var/lib/spoolgate itself.
  for (size_t p = d.find('/', 1); p != std::string::npos; p = d.find('/', p + 1)) {
    std::string parent = d.substr(0, p);
    if (::mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST) return fail_errno("mkdir " + parent, errno);
  }
  for (const std::string& sub : {d, d + "/tmp", d + "/queue", d + "/failed"}) {
    auto r = ensure_dir(sub);
    if (!r) return tl::unexpected(r.error());
  }
  std::shared_ptr<Spool> s(new Spool(d));
  s->queue_fd_ = ::open((d + "/queue").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (s->queue_fd_ < 0) return fail_errno("open " + d + "/queue", errno);
  return s;
}

Spool::~Spool() {
  if (queue_fd_ >= 0) ::close(queue_fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Result<void> Spool::lock() {
  std::string path = dir_ + "/lock";
  lock_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) return fail_errno("open " + path, errno);
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    if (e == EWOULDBLOCK) return fail(Errc::Refused, "spool " + dir_ + " is in use by another spoolgate daemon");
    return fail_errno("flock " + path, e);
  }
  return {};
}

Result<Recovery> Spool::recover() {
  Recovery rec;
  auto tmp = files::names_in(dir_ + "/tmp");
  if (!tmp) return tl::unexpected(tmp.error());
  for (const auto& n : *tmp) {
    // Never acknowledged: the 250 comes only after the rename out of tmp/.
    if (::unlink((dir_ + "/tmp/" + n).c_str()) != 0) return fail_errno("unlink tmp/" + n, errno);
    log::info("recover_discard").kv("msg", n).kv("reason", "interrupted reception");
    ++rec.discarded_tmp;
  }
  auto names = files::names_in(dir_ + "/queue");
  if (!names) return tl::unexpected(names.error());
  for (const auto& n : *names) {
    std::string path = dir_ + "/queue/" + n;
    if (is_state_name(n)) {
      // A state file whose message is gone (delivered, crash before the
      // state was removed): nothing to deliver.
      if (::access((dir_ + "/queue/" + n.substr(0, n.size() - 6)).c_str(), F_OK) != 0) {
        ::unlink(path.c_str());
        ++rec.discarded_tmp;
      }
      continue;
    }
    auto r = load_file(path);
    if (r && r->id == n) {
      rec.queued_bytes += r->size;
      rec.queued.push_back(std::move(*r));
      continue;
    }
    if (!r && r.error().code != Errc::SpoolCorrupt && is_queue_id(n)) {
      // A read error (EIO, EACCES, EMFILE) says nothing about the content:
      // an acknowledged message is never quarantined for it.
      struct stat st {};
      if (::stat(path.c_str(), &st) == 0) {
        log::error("recover_unreadable")
            .kv("msg", n)
            .kv("reason", r.error().message())
            .kv("action", "kept queued; read again when due");
        rec.unreadable.push_back({n, static_cast<std::int64_t>(st.st_mtime), static_cast<std::uint64_t>(st.st_size)});
        rec.queued_bytes += static_cast<std::uint64_t>(st.st_size);
        continue;
      }
      if (errno == ENOENT) continue;
    }
    std::string reason = r ? "id does not match file name" : r.error().message();
    std::string target = is_queue_id(n) ? n : "stray-" + new_queue_id();
    log::error("recover_corrupt").kv("msg", n).kv("reason", reason).kv("moved_to", "failed/" + target);
    if (::rename(path.c_str(), (dir_ + "/failed/" + target).c_str()) != 0) return fail_errno("rename " + path, errno);
    int fd = ::open((dir_ + "/failed/" + target + ".reason").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
      (void)write_all(fd, "corrupt at recovery: " + reason + "\n", "reason");
      ::fsync(fd);
      ::close(fd);
    }
    ++rec.moved_corrupt;
  }
  if (rec.discarded_tmp + rec.moved_corrupt > 0) {
    auto a = fsync_dir(dir_ + "/tmp");
    if (!a) return tl::unexpected(a.error());
    auto b = fsync_dir(dir_ + "/failed");
    if (!b) return tl::unexpected(b.error());
    auto c = sync_queue_dir();
    if (!c) return tl::unexpected(c.error());
  }
  return rec;
}

Result<std::vector<Record>> Spool::list(std::vector<std::string>* corrupt) const {
  auto names = files::names_in(dir_ + "/queue");
  if (!names) return tl::unexpected(names.error());
  std::vector<Record> out;
  for (const auto& n : *names) {
    if (is_state_name(n)) continue;
    auto r = load_file(dir_ + "/queue/" + n);
    if (r)
      out.push_back(std::move(*r));
    else if (r.error().code == Errc::Io && r.error().sys == ENOENT)
      continue;  // delivered meanwhile
    else if (corrupt)
      corrupt->push_back(n + ": " + r.error().message());
  }
  return out;
}

Result<void> Spool::sync_queue_dir() {
  if (::fsync(queue_fd_) != 0) return fail_errno("fsync " + dir_ + "/queue", errno);
  return {};
}

Result<std::uint64_t> Spool::free_bytes() const {
  struct statvfs vfs {};
  if (::statvfs(dir_.c_str(), &vfs) != 0) return fail_errno("statvfs " + dir_, errno);
  return static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
}

Result<void> Spool::move_to_failed(const std::string& id, std::string_view reason) {
  std::string reason_path = failed_path(id) + ".reason";
  int fd = ::open(reason_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return fail_errno("open " + reason_path, errno);
  auto w = write_all(fd, std::string(reason) + "\n", reason_path);
  if (w && ::fsync(fd) != 0) w = fail_errno("fsync " + reason_path, errno);
  ::close(fd);
  if (!w) return w;
  if (::rename(queue_path(id).c_str(), failed_path(id).c_str()) != 0) return fail_errno("rename " + id, errno);
  if (::rename((queue_path(id) + ".state").c_str(), (failed_path(id) + ".state").c_str()) != 0 && errno != ENOENT)
    return fail_errno("rename " + id + ".state", errno);
  auto a = fsync_dir(dir_ + "/failed");
  if (!a) return a;
  return sync_queue_dir();
}

Result<Record> Spool::load(const std::string& id) const { return load_file(queue_path(id)); }

Result<void> Spool::write_state(const Record& r) {
  auto w = files::replace_file(tmp_path(r.id) + ".state", queue_path(r.id) + ".state", encode_state(r));
  if (!w) return w;
  return sync_queue_dir();
}

Result<void> Spool::remove(const std::string& id) {
  if (::unlink(queue_path(id).c_str()) != 0 && errno != ENOENT) return fail_errno("unlink " + id, errno);
  if (::unlink((queue_path(id) + ".state").c_str()) != 0 && errno != ENOENT)
    return fail_errno("unlink " + id + ".state", errno);
  return sync_queue_dir();
}

Result<std::unique_ptr<Reader>> Reader::open(const Spool& spool, const Record& r) {
  std::unique_ptr<Reader> rd(new Reader());
  std::string path = spool.queue_path(r.id);
  rd->fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (rd->fd_ < 0) return fail_errno("open " + path, errno);
  rd->pos_ = r.content_offset;
  rd->end_ = r.content_offset + r.size;
  return rd;
}

Reader::~Reader() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::size_t> Reader::read(std::string& out, std::size_t max) {
  std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(max, end_ - pos_));
  if (want == 0) return std::size_t{0};
  size_t old = out.size();
  out.resize(old + want);
  ssize_t n;
  do {
    n = ::pread(fd_, out.data() + old, want, static_cast<off_t>(pos_));
  } while (n < 0 && errno == EINTR);
  if (n <= 0) {
    out.resize(old);
    return n == 0 ? fail(Errc::SpoolCorrupt, "message file shorter than recorded") : fail_errno("read", errno);
  }
  out.resize(old + static_cast<size_t>(n));
  pos_ += static_cast<std::uint64_t>(n);
  return static_cast<std::size_t>(n);
}

Result<std::unique_ptr<Writer>> Writer::create(std::shared_ptr<Spool> spool, const Record& r) {
  auto header = encode_header(r);
  if (!header) return tl::unexpected(header.error());
  std::unique_ptr<Writer> w(new Writer());
  w->spool_ = std::move(spool);
  w->id_ = r.id;
  std::string path = w->spool_->tmp_path(r.id);
  w->fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (w->fd_ < 0) return fail_errno("create " + path, errno);
  auto wr = write_all(w->fd_, *header, path);
  if (!wr) return tl::unexpected(wr.error());  // the destructor removes the file
  return w;
}

Writer::~Writer() {
  if (!committed_) rollback();
}

Result<void> Writer::append(std::string_view bytes) {
  if (fd_ < 0) return fail(Errc::Io, "writer is closed");
  auto r = write_all(fd_, bytes, spool_->tmp_path(id_));
  if (r) size_ += bytes.size();
  return r;
}

Result<void> Writer::commit() {
  std::string tmp = spool_->tmp_path(id_);
  auto crash = [&](CommitStep s) {
    if (g_crash_after && g_crash_after(s)) {
      ::close(fd_);
      fd_ = -1;
      committed_ = true;  // leave the files exactly as a dead process would
      return true;
    }
    return false;
  };
  std::string digits = encode_size(size_);
  if (::pwrite(fd_, digits.data(), digits.size(), static_cast<off_t>(content_size_offset())) !=
      static_cast<ssize_t>(digits.size())) {
    auto e = fail_errno("write " + tmp, errno);
    rollback();
    return e;
  }
  if (crash(CommitStep::Written)) return fail(Errc::Io, "injected crash");
  if (::fsync(fd_) != 0) {
    auto e = fail_errno("fsync " + tmp, errno);
    rollback();
    return e;
  }
  if (crash(CommitStep::FileSynced)) return fail(Errc::Io, "injected crash");
  ::close(fd_);
  fd_ = -1;
  if (::rename(tmp.c_str(), spool_->queue_path(id_).c_str()) != 0) {
    auto e = fail_errno("rename " + tmp, errno);
    rollback();
    return e;
  }
  committed_ = true;
  if (crash(CommitStep::Renamed)) return fail(Errc::Io, "injected crash");
  return {};
}

void Writer::rollback() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!committed_) ::unlink(spool_->tmp_path(id_).c_str());
  committed_ = true;
}

}  // namespace spoolgate::spool
