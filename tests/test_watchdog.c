/* test_watchdog.c: common/hsrl_watchdog (the distributed job's per-rank watchdog). Each case runs
 * in a forked child, whose stderr comes back through a pipe:
 *   - a role that stops marking (stuck in a "transport call": a busy loop that never returns) is
 *     ended by the watchdog with status 1 (a deadline error's) and exactly one line naming the
 *     rank, the last stage, the call and its peer, and how long it did not advance; not before
 *     the limit, not much after;
 *   - a role that keeps marking for 8 x the limit is never ended, and stop returns;
 *   - a disarmed watchdog does not fire through 5 x the limit, the next mark re-arms it, and it
 *     fires again once marks stop (stage and "no transport call" in the message);
 *   - marks and notes of a thread with no watchdog bound are no-ops.
 * The limits are tiny (0.3 s) so the file runs in a few seconds. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/hsrl_log.h"
#include "common/hsrl_timer.h"
#include "common/hsrl_watchdog.h"
#include "tests/test_harness.h"

#define LIMIT 0.3

typedef struct child_result {
  int exited, status; /* exited: WIFEXITED; status: its exit status (or the signal) */
  double seconds;     /* from fork to exit */
  char err[2048];     /* what the child wrote to stderr */
} child_result;

static void sleep_s(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  nanosleep(&ts, NULL);
}

/* Runs fn in a child with its stderr piped here; the child exits 0 when fn returns. A child still
 * alive after 20 s is killed (counts as a failure of the case). */
static void run_child(void (*fn)(void), child_result *r) {
  memset(r, 0, sizeof *r);
  int fd[2];
  if (pipe(fd) != 0) return;
  fflush(stdout), fflush(stderr);
  double t0 = hsrl_time_now();
  pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    dup2(fd[1], STDERR_FILENO);
    hsrl_log_set_identity(3, "actor");
    fn();
    _exit(0);
  }
  close(fd[1]);
  size_t n = 0;
  ssize_t got;
  while ((got = read(fd[0], r->err + n, sizeof r->err - 1 - n)) > 0) {
    n += (size_t)got;
    if (hsrl_time_now() - t0 > 20.0) break;
  }
  close(fd[0]);
  int status = 0;
  if (hsrl_time_now() - t0 > 20.0) kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  r->seconds = hsrl_time_now() - t0;
  r->exited = WIFEXITED(status);
  r->status = r->exited ? WEXITSTATUS(status) : WTERMSIG(status);
}

static int count_lines(const char *s) {
  int n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

/* ---- the children ---- */

static volatile long sink;

static void child_stuck(void) {
  hsrl_watchdog *wd = hsrl_watchdog_start("rank 3 (actor)", LIMIT);
  hsrl_watchdog_bind(wd);
  for (int i = 0; i < 5; i++) {
    hsrl_watchdog_mark("actor: step");
    sleep_s(0.02);
  }
  hsrl_watchdog_note("comm_bcast_free", 0);
  double t0 = hsrl_time_now();
  while (hsrl_time_now() - t0 < 10.0) sink++; /* spins, never marks, never returns */
  _exit(99);
}

static void child_marking(void) {
  hsrl_watchdog *wd = hsrl_watchdog_start("rank 3 (actor)", LIMIT);
  hsrl_watchdog_bind(wd);
  double t0 = hsrl_time_now();
  while (hsrl_time_now() - t0 < 8 * LIMIT) {
    hsrl_watchdog_mark("actor: step");
    hsrl_watchdog_note("comm_send", 1);
    sleep_s(LIMIT / 6);
    hsrl_watchdog_note(NULL, -1);
  }
  hsrl_watchdog_stop(wd);
  hsrl_watchdog_mark("after stop: unbound, a no-op");
  sleep_s(2 * LIMIT);
}

static void child_disarmed(void) {
  hsrl_watchdog *wd = hsrl_watchdog_start("rank 1 (replay)", LIMIT);
  hsrl_watchdog_bind(wd);
  sleep_s(2 * LIMIT); /* not armed before the first mark */
  hsrl_watchdog_mark("replay: loop");
  hsrl_watchdog_disarm("replay: writing a snapshot (not watched)");
  sleep_s(5 * LIMIT);
  hsrl_watchdog_mark("replay: snapshot written");
  sleep_s(10.0); /* stuck outside any transport call */
  _exit(99);
}

static void child_unbound(void) {
  hsrl_watchdog_mark("nobody watches");
  hsrl_watchdog_disarm("nobody watches");
  hsrl_watchdog_note("comm_recv", 2);
  hsrl_watchdog *wd = hsrl_watchdog_start("rank 0 (learner)", LIMIT);
  hsrl_watchdog_mark("still unbound"); /* started but not bound: no-op */
  sleep_s(3 * LIMIT);
  hsrl_watchdog_stop(wd);
}

/* ---- the cases ---- */

static void test_fires_when_stuck(void) {
  child_result r;
  run_child(child_stuck, &r);
  printf("  child said: %s", r.err);
  TEST_ASSERTF(r.exited && r.status == 1, "exited %d status %d (want exit status 1)", r.exited, r.status);
  TEST_ASSERTF(count_lines(r.err) == 1, "%d lines on stderr", count_lines(r.err));
  TEST_ASSERTF(strncmp(r.err, "[hsrl 3/actor] error: rank 3 (actor): watchdog: no progress for ", 64) == 0,
               "message: %s", r.err);
  TEST_ASSERTF(strstr(r.err, "(limit 0.3 s); last progress: actor: step; since then in comm_bcast_free "
                             "(peer rank 0); exiting\n") != NULL,
               "message: %s", r.err);
  double stalled = atof(r.err + 64);
  TEST_ASSERTF(stalled >= LIMIT && stalled < LIMIT + 1.0, "reported %.2f s without progress", stalled);
  /* the last of 5 marks 20 ms apart at >= 0.08 s, then the limit; checks every LIMIT / 8 */
  TEST_ASSERTF(r.seconds > 0.08 + LIMIT && r.seconds < 0.1 + LIMIT + 2.0, "ended after %.2f s", r.seconds);
}

static void test_quiet_while_marking(void) {
  child_result r;
  run_child(child_marking, &r);
  TEST_ASSERTF(r.exited && r.status == 0, "exited %d status %d: %s", r.exited, r.status, r.err);
  TEST_ASSERTF(r.err[0] == '\0', "stderr: %s", r.err);
  TEST_ASSERTF(r.seconds > 10 * LIMIT - 0.05, "the child ran only %.2f s", r.seconds);
}

static void test_disarm_and_rearm(void) {
  child_result r;
  run_child(child_disarmed, &r);
  printf("  child said: %s", r.err);
  TEST_ASSERTF(r.exited && r.status == 1, "exited %d status %d: %s", r.exited, r.status, r.err);
  TEST_ASSERTF(strstr(r.err, "[hsrl 3/actor] error: rank 1 (replay): watchdog: no progress for ") == r.err,
               "message: %s", r.err);
  TEST_ASSERTF(strstr(r.err, "; last progress: replay: snapshot written; since then in no transport call; "
                             "exiting\n") != NULL,
               "message: %s", r.err);
  /* 2 + 5 limits unarmed or disarmed, then one more */
  TEST_ASSERTF(r.seconds > 8 * LIMIT && r.seconds < 8 * LIMIT + 2.0, "ended after %.2f s", r.seconds);
}

static void test_unbound_is_a_no_op(void) {
  child_result r;
  run_child(child_unbound, &r);
  TEST_ASSERTF(r.exited && r.status == 0 && r.err[0] == '\0', "exited %d status %d: %s", r.exited, r.status,
               r.err);
}

int main(void) {
  TEST_RUN(test_fires_when_stuck);
  TEST_RUN(test_quiet_while_marking);
  TEST_RUN(test_disarm_and_rearm);
  TEST_RUN(test_unbound_is_a_no_op);
  return test_summary();
}
