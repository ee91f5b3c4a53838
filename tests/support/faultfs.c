// SPDX-License-Identifier: MIT
// faultfs: an LD_PRELOAD shim that injects disk faults into the daemon's
// spool I/O, for tests (tests/integration/conftest.py builds it with cc).
//
// Only calls on files below SG_FAULT_DIR are touched (the fd's path, read
// from /proc/self/fd), so the dynamic loader, config, certificates and
// sockets are never affected. Knobs, from the environment:
//   SG_FAULT_PREAD_EIO=N          the first N pread calls on spool files fail with EIO
//   SG_FAULT_PREAD_EIO_EVERY=N    every Nth pread on spool files fails with EIO
//   SG_FAULT_WRITE_ENOSPC_EVERY=N every Nth write on spool files fails with ENOSPC
//   SG_FAULT_DELAY_US=D           every fsync, fdatasync and pread on spool files waits D us
//   SG_FAULT_STATE_ENOSPC=1       every write to a delivery state file (*.state) fails with ENOSPC
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static atomic_long pread_eio = -1;  // -1: not read from the environment yet
static atomic_long calls_pread = 0, calls_write = 0;

// 1: a spool file; 2: a spool delivery state file.
static int in_spool(int fd) {
  const char* dir = getenv("SG_FAULT_DIR");
  if (!dir || !*dir) return 0;
  char link[64], path[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n < 0) return 0;
  path[n] = '\0';
  if (strncmp(path, dir, strlen(dir)) != 0) return 0;
  return n > 6 && strcmp(path + n - 6, ".state") == 0 ? 2 : 1;
}

static int take(atomic_long* budget, const char* env) {
  long expected = -1;
  if (atomic_load(budget) == -1) {
    const char* v = getenv(env);
    atomic_compare_exchange_strong(budget, &expected, v ? atol(v) : 0);
  }
  long left = atomic_load(budget);
  while (left > 0)
    if (atomic_compare_exchange_weak(budget, &left, left - 1)) return 1;
  return 0;
}

static long env_long(const char* name) {
  const char* v = getenv(name);
  return v ? atol(v) : 0;
}

static int every(atomic_long* counter, const char* env) {
  long n = env_long(env);
  return n > 0 && (atomic_fetch_add(counter, 1) + 1) % n == 0;
}

static void delay(void) {
  long us = env_long("SG_FAULT_DELAY_US");
  if (us > 0) usleep((useconds_t)us);
}

typedef ssize_t (*pread_fn)(int, void*, size_t, off_t);
typedef ssize_t (*write_fn)(int, const void*, size_t);
typedef int (*sync_fn)(int);

static ssize_t faulty_pread(const char* name, int fd, void* buf, size_t n, off_t off) {
  pread_fn real = (pread_fn)dlsym(RTLD_NEXT, name);
  if (in_spool(fd)) {
    delay();
    if (take(&pread_eio, "SG_FAULT_PREAD_EIO") || every(&calls_pread, "SG_FAULT_PREAD_EIO_EVERY")) {
      errno = EIO;
      return -1;
    }
  }
  return real(fd, buf, n, off);
}

ssize_t write(int fd, const void* buf, size_t n) {
  write_fn real = (write_fn)dlsym(RTLD_NEXT, "write");
  int where = fd > 2 ? in_spool(fd) : 0;
  if (where && (every(&calls_write, "SG_FAULT_WRITE_ENOSPC_EVERY") || (where == 2 && env_long("SG_FAULT_STATE_ENOSPC")))) {
    errno = ENOSPC;
    return -1;
  }
  return real(fd, buf, n);
}

static int faulty_sync(const char* name, int fd) {
  sync_fn real = (sync_fn)dlsym(RTLD_NEXT, name);
  if (in_spool(fd)) delay();
  return real(fd);
}

int fsync(int fd) { return faulty_sync("fsync", fd); }
int fdatasync(int fd) { return faulty_sync("fdatasync", fd); }

ssize_t pread(int fd, void* buf, size_t n, off_t off) { return faulty_pread("pread", fd, buf, n, off); }
ssize_t pread64(int fd, void* buf, size_t n, off_t off) { return faulty_pread("pread64", fd, buf, n, off); }
