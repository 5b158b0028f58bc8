/* hsrl_progress.c: see hsrl_progress.h. */
#include "common/hsrl_progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/hsrl_log.h"
#include "common/hsrl_timer.h"

void hsrl_progress_init(hsrl_progress *p, const char *label, int64_t total) {
  memset(p, 0, sizeof *p);
  snprintf(p->label, sizeof p->label, "%s", label);
  p->total = total;
  p->t_start = hsrl_time_now();
  p->t_last_draw = p->t_start;
  p->live = isatty(STDERR_FILENO);
  const char *env = getenv("HSRL_PROGRESS_SECONDS");
  p->interval = p->live ? 0.2 : 10.0;
  if (env && atof(env) > 0) p->interval = atof(env);
}

void hsrl_progress_init_resumed(hsrl_progress *p, const char *name, int64_t from, int64_t end) {
  char label[sizeof p->label];
  if (from > 0) snprintf(label, sizeof label, "%s (resumed at %lld)", name, (long long)from);
  else snprintf(label, sizeof label, "%s", name);
  hsrl_progress_init(p, label, end > from ? end - from : 0);
}

static void format_seconds(char *buf, size_t n, double s) {
  if (s < 0 || s > 1e7) snprintf(buf, n, "?");
  else if (s < 60) snprintf(buf, n, "%.0fs", s);
  else if (s < 3600) snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
  else snprintf(buf, n, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

static void draw(hsrl_progress *p, double now, int final) {
  double elapsed = now - p->t_start;
  double rate = elapsed > 0 ? (double)p->done / elapsed : 0.0;
  char eta[16] = "", took[16];
  format_seconds(took, sizeof took, elapsed);
  if (p->total > 0 && rate > 0 && !final)
    format_seconds(eta, sizeof eta, (double)(p->total - p->done) / rate);
  if (p->live) {
    char bar[31];
    int filled = p->total > 0 ? (int)(30.0 * (double)p->done / (double)p->total) : 0;
    if (filled > 30) filled = 30;
    for (int i = 0; i < 30; i++) bar[i] = i < filled ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\r%s %-24s [%s] %lld/%lld %.3g/s %s%s %s\033[K", hsrl_log_prefix(), p->label,
            bar, (long long)p->done, (long long)p->total, rate, final ? "in " : "eta ",
            final ? took : eta, p->note);
    if (final) fputc('\n', stderr);
  } else {
    double pct = p->total > 0 ? 100.0 * (double)p->done / (double)p->total : 0.0;
    fprintf(stderr, "%s %s: %lld/%lld (%.1f%%) %.3g/s %s %s %s\n", hsrl_log_prefix(), p->label,
            (long long)p->done, (long long)p->total, pct, rate, final ? "took" : "eta",
            final ? took : eta, p->note);
  }
  fflush(stderr);
  p->t_last_draw = now;
}

void hsrl_progress_update(hsrl_progress *p, int64_t done, const char *note) {
  p->done = done;
  double now = hsrl_time_now();
  if (now - p->t_last_draw < p->interval) return;
  if (note) snprintf(p->note, sizeof p->note, "%s", note);
  if (hsrl_log_get_level() >= HSRL_LOG_INFO) draw(p, now, 0);
}

void hsrl_progress_finish(hsrl_progress *p, const char *note) {
  if (note) snprintf(p->note, sizeof p->note, "%s", note);
  if (hsrl_log_get_level() >= HSRL_LOG_INFO) draw(p, hsrl_time_now(), 1);
}
