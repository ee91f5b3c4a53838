// SPDX-License-Identifier: MIT
#include "app/passwd.h"

#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>

#include "app/request_server.h"
#include "auth/users.h"
#include "core/files.h"
#include "core/text.h"

namespace spoolgate::app {
namespace {

constexpr std::size_t kMaxSecret = 1024;

// One line from a terminal without echo.
std::optional<std::string> ask(const char* prompt, std::istream& in, std::ostream& out) {
  out << prompt << std::flush;
  termios old{};
  bool tty = ::tcgetattr(STDIN_FILENO, &old) == 0;
  if (tty) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    (void)::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  std::string line;
  bool got = static_cast<bool>(std::getline(in, line));
  if (tty) (void)::tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
  out << "\n";
  if (!got) return std::nullopt;
  return line;
}

}  // namespace

int passwd(const config::Config& cfg, const std::string& which, const std::string& name, std::istream& in,
           std::ostream& out) {
  std::optional<std::size_t> index;
  if (!which.empty()) {
    if (which.find_first_not_of("0123456789") != std::string::npos || which.size() > 4 ||
        std::stoul(which) >= cfg.listen.size()) {
      out << "spoolgate passwd: no listener " << which << " (there are " << cfg.listen.size() << ", counted from 0)\n";
      return 1;
    }
    index = std::stoul(which);
    if (cfg.listen[*index].users_file.empty()) {
      out << "spoolgate passwd: listen[" << *index << "] (" << cfg.listen[*index].text << ") has no users_file\n";
      return 1;
    }
  } else {
    for (std::size_t i = 0; i < cfg.listen.size(); ++i) {
      if (cfg.listen[i].users_file.empty()) continue;
      if (index && cfg.listen[*index].users_file != cfg.listen[i].users_file) {
        out << "spoolgate passwd: several listeners have a users_file: name one with --listener N\n";
        return 1;
      }
      if (!index) index = i;
    }
    if (!index) {
      out << "spoolgate passwd: no listener has a users_file (set auth and users_file on a listen entry)\n";
      return 1;
    }
  }
  const std::string& path = cfg.listen[*index].users_file;
  if (!auth::valid_name(name)) {
    out << "spoolgate passwd: a device name is 1 to 64 of A-Z a-z 0-9 . _ @ + -\n";
    return 1;
  }

  std::string secret;
  if (::isatty(STDIN_FILENO)) {
    std::string prompt = "Password for ";
    prompt.append(name).append(": ");
    auto a = ask(prompt.c_str(), in, out);
    auto b = a ? ask("Again: ", in, out) : std::nullopt;
    if (!a || !b || *a != *b) {
      out << "spoolgate passwd: the two did not match; nothing changed\n";
      return 1;
    }
    secret = *a;
  } else if (!std::getline(in, secret)) {
    out << "spoolgate passwd: no password on standard input; nothing changed\n";
    return 1;
  }
  if (!secret.empty() && secret.back() == '\r') secret.pop_back();
  if (secret.empty() || secret.size() > kMaxSecret || has_control(secret)) {
    out << "spoolgate passwd: a password is 1 to " << kMaxSecret << " bytes without control characters\n";
    return 1;
  }

  auth::Users users;
  struct stat st {};
  bool exists = ::stat(path.c_str(), &st) == 0;
  if (exists) {
    auto u = auth::Users::load(path);
    if (!u) {
      out << "spoolgate passwd: " << u.error().message() << "; nothing changed\n";
      return 1;
    }
    users = std::move(*u);
  } else if (errno != ENOENT) {
    out << "spoolgate passwd: cannot read " << path << ": " << fail_errno("stat", errno).value().message() << "\n";
    return 1;
  }
  bool added = users.hash_of(name) == nullptr;
  auto hash = auth::hash_password(secret);
  secret.assign(secret.size(), '\0');
  if (!hash) {
    out << "spoolgate passwd: " << hash.error().message() << "\n";
    return 1;
  }
  users.set(name, *hash);
  unsigned mode = exists ? (st.st_mode & 07777) : 0640;
  std::size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? std::string(".") : path.substr(0, std::max<std::size_t>(slash, 1));
  if (auto w = files::replace_file(path + ".tmp", path, users.render(), mode); !w) {
    out << "spoolgate passwd: cannot write " << path << ": " << w.error().message() << "\n";
    return 1;
  }
  // The daemon reads the file as its own user: keep the owner it had, or
  // for a new file, the spool directory's (the daemon's).
  struct stat owner {};
  if (exists)
    owner = st;
  else if (::geteuid() != 0 || ::stat(cfg.spool.dir.c_str(), &owner) != 0)
    owner.st_uid = static_cast<uid_t>(-1), owner.st_gid = static_cast<gid_t>(-1);
  if (owner.st_uid != static_cast<uid_t>(-1) && ::chown(path.c_str(), owner.st_uid, owner.st_gid) != 0)
    out << "spoolgate passwd: could not give " << path << " back to its owner; check who may read it\n";
  (void)files::fsync_dir(dir);
  out << "device " << name << (added ? " added to " : " updated in ") << path << "\n";
  auto reply = control_request(cfg.spool.dir + "/control.sock", "reload", Millis(60'000));
  if (!reply || reply->empty())
    out << "no daemon answered: it reads the file when it starts\n";
  else if (reply->starts_with("ok\n"))
    out << "the running daemon reloaded: the new password works now\n";
  else
    out << "the running daemon refused the reload: " << reply->substr(reply->starts_with("error: ") ? 7 : 0);
  return 0;
}

}  // namespace spoolgate::app
