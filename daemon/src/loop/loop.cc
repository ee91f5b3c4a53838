// SPDX-License-Identifier: MIT
#include "loop/loop.h"

#include <uv.h>

#include <cstdlib>

#include "core/log.h"

namespace spoolgate::loop {

struct Timer::Impl {
  uv_timer_t h;
  Timer* owner;
};
struct Signal::Impl {
  uv_signal_t h;
  Signal* owner;
};
struct Process::Impl {
  uv_process_t h;
  Process* owner;
};

namespace {

struct Job {
  uv_work_t req;
  Loop* loop;
  std::function<void()> fn;
  std::function<void()> done;
};

void on_work(uv_work_t* req) noexcept {
  auto* job = static_cast<Job*>(req->data);
  job->fn();
}

void on_work_done(uv_work_t* req, int) noexcept;

void on_timer(uv_timer_t* h) noexcept { static_cast<Timer::Impl*>(h->data)->owner->fire(); }
void on_signal(uv_signal_t* h, int) noexcept { static_cast<Signal::Impl*>(h->data)->owner->fire(); }
void on_exit(uv_process_t* h, std::int64_t status, int signal) noexcept {
  static_cast<Process::Impl*>(h->data)->owner->fire(status, signal);
}

void on_walk_close(uv_handle_t* h, void*) noexcept {
  if (!uv_is_closing(h)) {
    log::warn("loop_leak").kv("handle", uv_handle_type_name(h->type));
    uv_close(h, nullptr);
  }
}

// The shared close path of Timer, Signal and Process: detach, uv_close, and free the
// owner and its handle in the close callback. The callback is released only
// there, with the owner: close() may be called from inside that very
// callback (a timeout that ends its session), which must not destroy the
// closure while it runs. After uv_close libuv never calls it again.
template <class Impl>
void close_owned(Impl*& impl_ref) {
  if (!impl_ref) return;
  Impl* impl = impl_ref;
  impl_ref = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&impl->h), [](uv_handle_t* h) noexcept {
    auto* i = static_cast<Impl*>(h->data);
    delete i->owner;
    delete i;
  });
}

}  // namespace

struct JobAccess {
  static void finish(Job* job) {
    Loop* l = job->loop;
    --l->jobs_;
    auto done = std::move(job->done);
    delete job;
    if (done) done();
  }
};

namespace {
void on_work_done(uv_work_t* req, int) noexcept { JobAccess::finish(static_cast<Job*>(req->data)); }
}  // namespace

Loop::Loop() : loop_(new uv_loop_t) {
  if (uv_loop_init(loop_) != 0) {
    log::error("panic").kv("reason", "uv_loop_init failed");
    std::abort();
  }
  loop_->data = this;
}

char* Loop::read_buffer() {
  if (!read_buffer_) read_buffer_.reset(new char[kReadBuffer]);
  return read_buffer_.get();
}

Loop::~Loop() { delete loop_; }

void Loop::run() { uv_run(loop_, UV_RUN_DEFAULT); }
void Loop::stop() { uv_stop(loop_); }
std::uint64_t Loop::now_ms() { return uv_now(loop_); }

int Loop::close() {
  // Let pending closes and jobs finish; then anything still open is a leak,
  // closed here so that the loop can be closed, and reported.
  uv_run(loop_, UV_RUN_DEFAULT);
  int leaked = 0;
  uv_walk(
      loop_,
      [](uv_handle_t* h, void* arg) {
        if (!uv_is_closing(h)) ++*static_cast<int*>(arg);
      },
      &leaked);
  if (leaked) {
    uv_walk(loop_, on_walk_close, nullptr);
    uv_run(loop_, UV_RUN_DEFAULT);
  }
  int rc = uv_loop_close(loop_);
  return leaked ? -leaked : rc;
}

void Loop::queue_work(std::function<void()> fn, std::function<void()> done) {
  auto* job = new Job{{}, this, std::move(fn), std::move(done)};
  job->req.data = job;
  ++jobs_;
  int rc = uv_queue_work(loop_, &job->req, on_work, on_work_done);
  if (rc != 0) {
    // Cannot happen with a live loop; run inline rather than lose the job.
    log::error("work_queue_failed").kv("reason", uv_strerror(rc));
    job->fn();
    JobAccess::finish(job);
  }
}

HandlePtr<Timer> Timer::create(Loop& loop, std::function<void()> cb) {
  auto* t = new Timer();
  t->impl_ = new Impl{{}, t};
  t->cb_ = std::move(cb);
  uv_timer_init(loop.raw(), &t->impl_->h);
  t->impl_->h.data = t->impl_;
  return HandlePtr<Timer>(t);
}

void Timer::start(Millis timeout, Millis repeat) {
  if (!impl_) return;
  uv_timer_start(&impl_->h, on_timer, static_cast<std::uint64_t>(timeout.count()),
                 static_cast<std::uint64_t>(repeat.count()));
}

void Timer::stop() {
  if (impl_) uv_timer_stop(&impl_->h);
}

void Timer::fire() {
  if (impl_ && cb_) cb_();
}

void Timer::close() { close_owned(impl_); }

HandlePtr<Signal> Signal::create(Loop& loop, int signum, std::function<void()> cb) {
  auto* s = new Signal();
  s->impl_ = new Impl{{}, s};
  s->cb_ = std::move(cb);
  uv_signal_init(loop.raw(), &s->impl_->h);
  s->impl_->h.data = s->impl_;
  uv_signal_start(&s->impl_->h, on_signal, signum);
  return HandlePtr<Signal>(s);
}

void Signal::fire() {
  if (impl_ && cb_) cb_();
}

void Signal::close() { close_owned(impl_); }

Result<HandlePtr<Process>> Process::spawn(Loop& loop, const std::string& path, const std::vector<std::string>& args,
                                          int stdin_fd, int stdout_fd, Exited exited) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(path.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  uv_stdio_container_t stdio[3];
  stdio[0].flags = UV_INHERIT_FD;
  stdio[0].data.fd = stdin_fd;
  stdio[1].flags = UV_INHERIT_FD;
  stdio[1].data.fd = stdout_fd;
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = 2;
  uv_process_options_t opts{};
  opts.exit_cb = on_exit;
  opts.file = path.c_str();
  opts.args = argv.data();
  opts.stdio_count = 3;
  opts.stdio = stdio;
  auto* p = new Process();
  p->impl_ = new Impl{{}, p};
  p->exited_ = std::move(exited);
  p->impl_->h.data = p->impl_;
  int rc = uv_spawn(loop.raw(), &p->impl_->h, &opts);
  if (rc != 0) {
    // libuv wants the handle closed even when the spawn failed.
    HandlePtr<Process> gone(p);
    return fail(Errc::Io, "cannot start " + path + ": " + uv_strerror(rc));
  }
  p->pid_ = p->impl_->h.pid;
  p->running_ = true;
  return HandlePtr<Process>(p);
}

std::string Process::sibling(const std::string& name) {
  char buf[4096];
  std::size_t len = sizeof buf;
  if (uv_exepath(buf, &len) != 0) return {};
  std::string dir(buf, len);
  auto slash = dir.rfind('/');
  if (slash == std::string::npos) return {};
  return dir.substr(0, slash + 1) + name;
}

bool Process::kill(int signum) {
  if (!impl_ || !running_) return false;
  return uv_process_kill(&impl_->h, signum) == 0;
}

void Process::fire(std::int64_t status, int signal) {
  running_ = false;
  if (impl_ && exited_) exited_(status, signal);
}

void Process::close() { close_owned(impl_); }

}  // namespace spoolgate::loop
