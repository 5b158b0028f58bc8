/* hsrl_watchdog.c: see hsrl_watchdog.h. The state a mark touches is a few atomics; the thread
 * sleeps on a condition variable (CLOCK_MONOTONIC, so stop wakes it at once) and on firing writes
 * its line with write(2) -- not stdio, whose lock the stuck thread might hold -- and _exit()s:
 * exit() would run atexit handlers and flush streams that the stuck thread may be using. */
#include "common/hsrl_watchdog.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/hsrl_log.h"
#include "common/hsrl_status.h"

struct hsrl_watchdog {
  char who[96];
  double limit_s;
  _Atomic int64_t last_ns;        /* the last mark (CLOCK_MONOTONIC ns); 0 = disarmed */
  _Atomic(const char *) stage;    /* what the role does since the last mark (or why disarmed) */
  _Atomic(const char *) call;     /* the transport call in progress, NULL: none */
  _Atomic int peer;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv; /* stop */
  int stopping;      /* under mu */
};

static _Thread_local hsrl_watchdog *bound;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void fire(hsrl_watchdog *wd, double stalled_s) {
  const char *stage = atomic_load_explicit(&wd->stage, memory_order_relaxed);
  const char *call = atomic_load_explicit(&wd->call, memory_order_relaxed);
  int peer = atomic_load_explicit(&wd->peer, memory_order_relaxed);
  char line[512], where[160];
  if (!call) snprintf(where, sizeof where, "in no transport call");
  else if (peer >= 0) snprintf(where, sizeof where, "in %s (peer rank %d)", call, peer);
  else snprintf(where, sizeof where, "in %s", call);
  int n = snprintf(line, sizeof line,
                   "%s error: %s: watchdog: no progress for %.3g s (limit %g s); last progress: %s; "
                   "since then %s; exiting\n",
                   hsrl_log_prefix(), wd->who, stalled_s, wd->limit_s, stage ? stage : "?", where);
  if (n < 0) n = 0;
  if ((size_t)n >= sizeof line) { /* keep the line whole: cut the middle short, end with \n */
    n = (int)sizeof line - 1;
    line[n - 1] = '\n';
  }
  for (int off = 0; off < n;) {
    ssize_t w = write(STDERR_FILENO, line + off, (size_t)(n - off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    off += (int)w;
  }
  _exit(hsrl_status_exit_code(HSRL_E_TIMEOUT));
}

static void *watch(void *arg) {
  hsrl_watchdog *wd = arg;
  double period = wd->limit_s / 8.0 < 0.25 ? wd->limit_s / 8.0 : 0.25;
  int64_t period_ns = (int64_t)(period * 1e9);
  if (period_ns < 1000000) period_ns = 1000000;
  pthread_mutex_lock(&wd->mu);
  while (!wd->stopping) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t until = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + period_ns;
    ts.tv_sec = (time_t)(until / 1000000000);
    ts.tv_nsec = (long)(until % 1000000000);
    int rc = pthread_cond_timedwait(&wd->cv, &wd->mu, &ts);
    HSRL_CHECKF(rc == 0 || rc == ETIMEDOUT, "pthread_cond_timedwait: %s", strerror(rc));
    if (wd->stopping) break;
    int64_t last = atomic_load_explicit(&wd->last_ns, memory_order_relaxed);
    if (last == 0) continue;
    double stalled = 1e-9 * (double)(now_ns() - last);
    if (stalled > wd->limit_s) fire(wd, stalled);
  }
  pthread_mutex_unlock(&wd->mu);
  return NULL;
}

hsrl_watchdog *hsrl_watchdog_start(const char *who, double limit_s) {
  HSRL_CHECKF(limit_s > 0.0, "watchdog limit %g s", limit_s);
  hsrl_watchdog *wd = hsrl_calloc(1, sizeof *wd);
  snprintf(wd->who, sizeof wd->who, "%s", who);
  wd->limit_s = limit_s;
  atomic_init(&wd->last_ns, 0);
  atomic_init(&wd->stage, "not started");
  atomic_init(&wd->call, NULL);
  atomic_init(&wd->peer, -1);
  pthread_condattr_t attr;
  HSRL_CHECK(pthread_condattr_init(&attr) == 0);
  HSRL_CHECK(pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0);
  HSRL_CHECK(pthread_cond_init(&wd->cv, &attr) == 0);
  pthread_condattr_destroy(&attr);
  HSRL_CHECK(pthread_mutex_init(&wd->mu, NULL) == 0);
  int rc = pthread_create(&wd->thread, NULL, watch, wd);
  HSRL_CHECKF(rc == 0, "starting the watchdog thread: %s", strerror(rc));
  return wd;
}

void hsrl_watchdog_stop(hsrl_watchdog *wd) {
  if (!wd) return;
  if (bound == wd) bound = NULL;
  pthread_mutex_lock(&wd->mu);
  wd->stopping = 1;
  pthread_cond_signal(&wd->cv);
  pthread_mutex_unlock(&wd->mu);
  pthread_join(wd->thread, NULL);
  pthread_cond_destroy(&wd->cv);
  pthread_mutex_destroy(&wd->mu);
  hsrl_free(wd);
}

void hsrl_watchdog_bind(hsrl_watchdog *wd) { bound = wd; }

void hsrl_watchdog_mark(const char *stage) {
  hsrl_watchdog *wd = bound;
  if (!wd) return;
  atomic_store_explicit(&wd->stage, stage, memory_order_relaxed);
  atomic_store_explicit(&wd->call, NULL, memory_order_relaxed);
  atomic_store_explicit(&wd->last_ns, now_ns(), memory_order_relaxed);
}

void hsrl_watchdog_disarm(const char *stage) {
  hsrl_watchdog *wd = bound;
  if (!wd) return;
  atomic_store_explicit(&wd->last_ns, 0, memory_order_relaxed);
  atomic_store_explicit(&wd->stage, stage, memory_order_relaxed);
}

void hsrl_watchdog_note(const char *call, int peer) {
  hsrl_watchdog *wd = bound;
  if (!wd) return;
  atomic_store_explicit(&wd->peer, peer, memory_order_relaxed);
  atomic_store_explicit(&wd->call, call, memory_order_relaxed);
}
