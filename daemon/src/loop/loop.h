// SPDX-License-Identifier: MIT
// loop/loop: ownership of the libuv loop, timers, signals, child processes
// and worker jobs.
//
// With net/, the only code that includes <uv.h>. Every object here that
// embeds a uv handle is heap-allocated, never copied or moved, and freed only
// in its close callback (STYLE.md "Lifetimes"). Owners hold them through
// HandlePtr, whose deleter calls close(): the memory goes when libuv is done.
//
// Callbacks run on the loop thread. A work job's `fn` runs on the threadpool
// and must not touch loop objects; its `done` runs on the loop afterwards.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/units.h"

struct uv_loop_s;

namespace spoolgate::loop {

class Loop {
 public:
  Loop();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  uv_loop_s* raw() { return loop_; }
  void run();
  void stop();
  // Runs the loop until every handle has closed, then uv_loop_close(); returns
  // its result (0 when nothing leaked).
  int close();
  std::uint64_t now_ms();
  // One read buffer shared by every stream on this loop (reads are consumed
  // synchronously), so idle connections hold none.
  char* read_buffer();
  static constexpr std::size_t kReadBuffer = 64 * std::size_t{1024};

  // fn on a worker thread, then done on the loop (also when the loop is being
  // torn down: done always runs exactly once).
  void queue_work(std::function<void()> fn, std::function<void()> done);
  std::size_t jobs_in_flight() const { return jobs_; }

 private:
  friend struct JobAccess;
  uv_loop_s* loop_;
  std::size_t jobs_ = 0;
  std::unique_ptr<char[]> read_buffer_;
};

class Handle {
 public:
  virtual ~Handle() = default;
  // Idempotent; the object is deleted in the close callback. It may be
  // called from inside the handle's own callback: that callback, and what it
  // captured, is destroyed with the object, after it has returned.
  virtual void close() = 0;
};

struct HandleCloser {
  void operator()(Handle* h) const { h->close(); }
};
template <class T>
using HandlePtr = std::unique_ptr<T, HandleCloser>;

class Timer final : public Handle {
 public:
  static HandlePtr<Timer> create(Loop& loop, std::function<void()> cb);
  void start(Millis timeout, Millis repeat = Millis(0));
  void stop();
  void close() override;
  void fire();  // called by the trampoline
  struct Impl;

 private:
  Timer() = default;
  Impl* impl_ = nullptr;
  std::function<void()> cb_;
};

class Signal final : public Handle {
 public:
  static HandlePtr<Signal> create(Loop& loop, int signum, std::function<void()> cb);
  void close() override;
  void fire();
  struct Impl;

 private:
  Signal() = default;
  Impl* impl_ = nullptr;
  std::function<void()> cb_;
};

// A child process (a helper such as spoolgate-https). spawn() starts
// `path` with `args` (argv[1..]), the parent's environment and stderr, and
// the given descriptors as the child's stdin and stdout (the caller closes
// its copies afterwards). exited runs once on the loop with the exit status
// (or the signal that ended it). close() does not kill the child: the
// owner ends it first (kill(), or closing its pipe) and closes the handle in
// or after exited, so that libuv reaps it.
class Process final : public Handle {
 public:
  using Exited = std::function<void(std::int64_t status, int signal)>;
  static Result<HandlePtr<Process>> spawn(Loop& loop, const std::string& path, const std::vector<std::string>& args,
                                          int stdin_fd, int stdout_fd, Exited exited);
  // `name` in the directory of the running executable (helpers are
  // installed beside spoolgate); empty when that cannot be found.
  static std::string sibling(const std::string& name);
  // Sends a signal; false when the child has already exited.
  bool kill(int signum);
  int pid() const { return pid_; }
  bool running() const { return running_; }
  void close() override;
  void fire(std::int64_t status, int signal);
  struct Impl;

 private:
  Process() = default;
  Impl* impl_ = nullptr;
  Exited exited_;
  int pid_ = 0;
  bool running_ = false;
};

}  // namespace spoolgate::loop
