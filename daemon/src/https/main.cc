// SPDX-License-Identifier: MIT
// spoolgate-https: the daemon's HTTPS helper. Reads request frames
// (http/wire.h) on stdin, runs them in parallel through one curl multi
// handle, writes one answer frame per request on stdout (a cancelled one
// gets none), and exits when stdin closes (the daemon is gone) or carries a
// malformed frame. It holds no secret beyond the requests in flight, no
// spool, and links no BoringSSL.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <map>

#include "http/wire.h"
#include "https/exchange.h"

using namespace spoolgate;

namespace {

// Writes all of s. stdin and stdout are usually one socket, made
// non-blocking for reading, so a full socket buffer waits here for room
// (the daemon reads answers as they come; a daemon that stopped reading
// for a minute is gone as far as we are concerned).
bool write_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, 60'000) <= 0) return false;
      continue;
    }
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

bool answer(std::uint64_t id, Result<http::Response> r) {
  http::Frame f;
  f.kind = http::Frame::Kind::Answer;
  f.id = id;
  f.answer = std::move(r);
  return write_all(1, http::encode(f));
}

// Runs until stdin closes (0) or carries a malformed frame (2).
int serve(CURLM* multi, std::map<CURL*, std::unique_ptr<https::Transfer>>& active) {
  std::map<std::uint64_t, CURL*> by_id;
  http::Decoder in;
  char buf[65536];
  for (;;) {
    curl_waitfd w{0, CURL_WAIT_POLLIN, 0};
    curl_multi_poll(multi, &w, 1, 1000, nullptr);
    if (w.revents != 0) {
      for (;;) {
        ssize_t n = ::read(0, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n <= 0) return 0;  // the daemon closed its end
        in.feed(std::string_view(buf, static_cast<std::size_t>(n)));
      }
      while (auto f = in.next()) {
        if (!*f) {
          (void)std::fprintf(stderr, "spoolgate-https: %s\n", f->error().message().c_str());
          return 2;
        }
        http::Frame& fr = **f;
        if (fr.kind == http::Frame::Kind::Cancel) {
          if (auto it = by_id.find(fr.id); it != by_id.end()) {
            curl_multi_remove_handle(multi, it->second);
            active.erase(it->second);
            by_id.erase(it);
          }
          continue;
        }
        if (fr.kind != http::Frame::Kind::Request) continue;
        auto t = https::prepare(fr.request);
        if (!t) {
          if (!answer(fr.id, tl::unexpected(t.error()))) return 0;
          continue;
        }
        (*t)->id = fr.id;
        CURL* e = (*t)->easy;
        curl_multi_add_handle(multi, e);
        by_id[fr.id] = e;
        active.emplace(e, std::move(*t));
      }
    }
    int running = 0;
    curl_multi_perform(multi, &running);
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
      if (m->msg != CURLMSG_DONE) continue;
      auto it = active.find(m->easy_handle);
      if (it == active.end()) continue;
      std::uint64_t id = it->second->id;
      auto result = https::finish(*it->second, m->data.result);
      curl_multi_remove_handle(multi, it->first);
      active.erase(it);
      by_id.erase(id);
      if (!answer(id, std::move(result))) return 0;
    }
  }
}

}  // namespace

int main() {
  (void)std::signal(SIGPIPE, SIG_IGN);  // a daemon gone mid-answer: write fails, we exit
  https::global_init();
  ::fcntl(0, F_SETFL, ::fcntl(0, F_GETFL) | O_NONBLOCK);
  CURLM* multi = curl_multi_init();
  std::map<CURL*, std::unique_ptr<https::Transfer>> active;
  int rc = serve(multi, active);
  // Everything freed before exit: a clean leak check under the sanitizers.
  for (auto& [easy, t] : active) curl_multi_remove_handle(multi, easy);
  active.clear();
  curl_multi_cleanup(multi);
  curl_global_cleanup();
  return rc;
}
