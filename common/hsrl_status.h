/* hsrl_status.h: status codes for bad input and environment failures.
 *
 * Library code never prints and exits on bad input: it records a message naming the file, line
 * and field with hsrl_err() and returns the negative status upward. The command in hsrl.c prints
 * hsrl_err_message() and exits with hsrl_status_exit_code(): 0 success, 2 usage or input error,
 * 1 internal failure. One message is kept per process (like errno); a new error replaces it,
 * hsrl_err_context() prefixes context to it on the way up. */
#ifndef HSRL_STATUS_H
#define HSRL_STATUS_H

typedef enum hsrl_status {
  HSRL_OK = 0,
  HSRL_E_USAGE = -1,    /* bad command line or config: exit 2 */
  HSRL_E_INPUT = -2,    /* malformed input data or file: exit 2 */
  HSRL_E_IO = -3,       /* the OS or a library failed to read/write: exit 1 */
  HSRL_E_CORRUPT = -4,  /* a file or message fails its magic/version/checksum: exit 2 */
  HSRL_E_NOMEM = -5,    /* out of memory where that is recoverable: exit 1 */
  HSRL_E_INTERNAL = -6, /* anything else: exit 1 */
  HSRL_E_TIMEOUT = -7,  /* a peer did not answer before its deadline: exit 1 */
} hsrl_status;

/* Records "FILE:LINE: field FIELD: message" (file/line/field may be NULL/0/NULL) and returns
 * code, so that `return hsrl_err(HSRL_E_INPUT, path, lineno, "rating", "not a number: %s", s);`
 * reads naturally. */
hsrl_status hsrl_err(hsrl_status code, const char *file, long line, const char *field,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Prepends "context: " to the current message and returns code. */
hsrl_status hsrl_err_context(hsrl_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

const char *hsrl_err_message(void);
void hsrl_err_clear(void);
const char *hsrl_status_name(hsrl_status code);
int hsrl_status_exit_code(hsrl_status code);

/* Propagate a failing status: `HSRL_TRY(f(...));` assigns the local `st` and jumps to `done:`. */
#define HSRL_TRY(expr) \
  do { if ((st = (expr)) != HSRL_OK) goto done; } while (0)

#endif
