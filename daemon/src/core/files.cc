// SPDX-License-Identifier: MIT
#include "core/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace spoolgate::files {

Result<void> write_all(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("write " + what, errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Result<std::string> read_small(const std::string& path, std::size_t max) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail_errno("open " + path, errno);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return fail_errno("read " + path, e);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max) break;
  }
  ::close(fd);
  return out;
}

Result<void> ensure_dir(const std::string& path, unsigned mode) {
  if (::mkdir(path.c_str(), mode) == 0 || errno == EEXIST) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return {};
    return fail(Errc::Io, path + " exists and is not a directory");
  }
  return fail_errno("mkdir " + path, errno);
}

Result<void> fsync_dir(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fail_errno("open " + path, errno);
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  if (rc != 0) return fail_errno("fsync " + path, e);
  return {};
}

Result<void> replace_file(const std::string& tmp, const std::string& dst, std::string_view bytes, unsigned mode) {
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return fail_errno("create " + tmp, errno);
  auto w = write_all(fd, bytes, tmp);
  if (w && ::fsync(fd) != 0) w = fail_errno("fsync " + tmp, errno);
  ::close(fd);
  if (w && ::rename(tmp.c_str(), dst.c_str()) != 0) w = fail_errno("rename " + tmp, errno);
  if (!w) ::unlink(tmp.c_str());
  return w;
}

Result<std::vector<std::string>> names_in(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return fail_errno("opendir " + dir, errno);
  std::vector<std::string> out;
  // NOLINTNEXTLINE(concurrency-mt-unsafe): this DIR stream is used by one thread only
  while (struct dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n == "." || n == "..") continue;
    out.emplace_back(n);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace spoolgate::files
