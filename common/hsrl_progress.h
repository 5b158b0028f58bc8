/* hsrl_progress.h: a progress display for long stages.
 *
 * On a terminal (stderr is a tty) it redraws one live line: label, bar, count, rate, ETA and a
 * caller-supplied note (e.g. the current loss). Elsewhere (a file, a pipe, a Slurm log) it prints
 * a plain line every `interval` seconds (HSRL_PROGRESS_SECONDS, default 10) and once at the end,
 * so logs stay readable. Updates are cheap enough to call every iteration (one clock read). */
#ifndef HSRL_PROGRESS_H
#define HSRL_PROGRESS_H

#include <stdint.h>

typedef struct hsrl_progress {
  char label[48];
  int64_t total; /* 0: unknown */
  int64_t done;
  double t_start;
  double t_last_draw;
  double interval;
  int live; /* 1 on a terminal */
  char note[96];
} hsrl_progress;

void hsrl_progress_init(hsrl_progress *p, const char *label, int64_t total);
/* For a stage that resumes at step `from` of `end`: the label "name (resumed at <from>)" when
 * from > 0, and a total of the end - from steps this process does (updates then count from 0). */
void hsrl_progress_init_resumed(hsrl_progress *p, const char *name, int64_t from, int64_t end);
/* Records `done` (absolute) and redraws if due; note may be NULL. */
void hsrl_progress_update(hsrl_progress *p, int64_t done, const char *note);
void hsrl_progress_finish(hsrl_progress *p, const char *note);

#endif
