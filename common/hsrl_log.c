/* hsrl_log.c: see hsrl_log.h. */
#include "common/hsrl_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char log_prefix[64] = "[hsrl]";
static int log_level = -1; /* -1: not yet read from the environment */

void hsrl_log_set_identity(int rank, const char *role) {
  if (rank < 0) snprintf(log_prefix, sizeof log_prefix, "[hsrl%s%s]", role ? " " : "", role ? role : "");
  else snprintf(log_prefix, sizeof log_prefix, "[hsrl %d/%s]", rank, role ? role : "?");
}

const char *hsrl_log_prefix(void) { return log_prefix; }

void hsrl_log_set_level(hsrl_log_level level) { log_level = (int)level; }

hsrl_log_level hsrl_log_get_level(void) {
  if (log_level < 0) {
    const char *env = getenv("HSRL_LOG");
    log_level = HSRL_LOG_INFO;
    if (env) {
      if (!strcmp(env, "error")) log_level = HSRL_LOG_ERROR;
      else if (!strcmp(env, "warn")) log_level = HSRL_LOG_WARN;
      else if (!strcmp(env, "debug")) log_level = HSRL_LOG_DEBUG;
    }
  }
  return (hsrl_log_level)log_level;
}

void hsrl_log(hsrl_log_level level, const char *fmt, ...) {
  static const char *names[] = {"error", "warn", "info", "debug"};
  if (level > hsrl_log_get_level()) return;
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s %s: ", log_prefix, names[level]);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}
