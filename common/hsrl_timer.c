/* hsrl_timer.c: see hsrl_timer.h. */
#include "common/hsrl_timer.h"

#include <time.h>

double hsrl_time_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double hsrl_time_cpu(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void hsrl_timer_start(hsrl_timer *t) { t->start = hsrl_time_now(); }

double hsrl_timer_stop(hsrl_timer *t) {
  double dt = hsrl_time_now() - t->start;
  t->total += dt;
  t->n_intervals++;
  return dt;
}
