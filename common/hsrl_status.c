/* hsrl_status.c: see hsrl_status.h. */
#include "common/hsrl_status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define HSRL_ERR_MAX 2048
/* per thread: roles running as threads of one process must not overwrite each other's message */
static _Thread_local char err_message[HSRL_ERR_MAX];

hsrl_status hsrl_err(hsrl_status code, const char *file, long line, const char *field,
                     const char *fmt, ...) {
  size_t n = 0;
  if (file && line > 0) n = (size_t)snprintf(err_message, HSRL_ERR_MAX, "%s:%ld: ", file, line);
  else if (file) n = (size_t)snprintf(err_message, HSRL_ERR_MAX, "%s: ", file);
  if (n < HSRL_ERR_MAX && field)
    n += (size_t)snprintf(err_message + n, HSRL_ERR_MAX - n, "field '%s': ", field);
  if (n < HSRL_ERR_MAX) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_message + n, HSRL_ERR_MAX - n, fmt, ap);
    va_end(ap);
  }
  return code;
}

hsrl_status hsrl_err_context(hsrl_status code, const char *fmt, ...) {
  char ctx[512];
  char old[HSRL_ERR_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ctx, sizeof ctx, fmt, ap);
  va_end(ap);
  memcpy(old, err_message, sizeof old);
  size_t n = strlen(ctx);
  if (n > HSRL_ERR_MAX - 3) n = HSRL_ERR_MAX - 3;
  memcpy(err_message, ctx, n);
  memcpy(err_message + n, ": ", 2);
  size_t rest = HSRL_ERR_MAX - n - 3, n_old = strnlen(old, rest);
  memcpy(err_message + n + 2, old, n_old);
  err_message[n + 2 + n_old] = '\0';
  return code;
}

const char *hsrl_err_message(void) { return err_message; }
void hsrl_err_clear(void) { err_message[0] = '\0'; }

const char *hsrl_status_name(hsrl_status code) {
  switch (code) {
    case HSRL_OK: return "ok";
    case HSRL_E_USAGE: return "usage error";
    case HSRL_E_INPUT: return "input error";
    case HSRL_E_IO: return "I/O error";
    case HSRL_E_CORRUPT: return "corrupt data";
    case HSRL_E_NOMEM: return "out of memory";
    case HSRL_E_INTERNAL: return "internal error";
    case HSRL_E_TIMEOUT: return "timeout";
  }
  return "unknown status";
}

int hsrl_status_exit_code(hsrl_status code) {
  switch (code) {
    case HSRL_OK: return 0;
    case HSRL_E_USAGE:
    case HSRL_E_INPUT:
    case HSRL_E_CORRUPT: return 2;
    default: return 1;
  }
}
