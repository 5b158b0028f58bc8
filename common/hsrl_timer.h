/* hsrl_timer.h: monotonic wall-clock time and simple interval timers. */
#ifndef HSRL_TIMER_H
#define HSRL_TIMER_H

double hsrl_time_now(void); /* seconds, CLOCK_MONOTONIC */
double hsrl_time_cpu(void); /* seconds of this process's CPU time */

typedef struct hsrl_timer {
  double start;
  double total; /* accumulated over start/stop pairs */
  long n_intervals;
} hsrl_timer;

void hsrl_timer_start(hsrl_timer *t);
double hsrl_timer_stop(hsrl_timer *t); /* returns the interval just ended */

#endif
