/* hsrl_check.c: see hsrl_check.h. */
#include "common/hsrl_check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/hsrl_log.h"

static hsrl_abort_hook abort_hook = NULL;

void hsrl_check_set_abort_hook(hsrl_abort_hook hook) { abort_hook = hook; }

void hsrl_check_fail(const char *file, int line, const char *cond, const char *fmt, ...) {
  fprintf(stderr, "%s check failed at %s:%d: %s", hsrl_log_prefix(), file, line, cond);
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    fputs(": ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
  }
  fputc('\n', stderr);
  fflush(stderr);
  if (abort_hook) abort_hook(1);
  abort();
}
