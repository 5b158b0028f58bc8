/* hsrl_check.h: always-on invariant checks.
 *
 * A failed check is a bug, not a bad input: it prints rank, role, file:line and the condition,
 * then aborts the whole job. Under MPI the comm layer installs an abort hook (MPI_Abort) so that
 * no other rank is left hanging; without it we call abort(). Checks are never compiled out and
 * their conditions must not have side effects. Bad inputs use hsrl_status.h instead. */
#ifndef HSRL_CHECK_H
#define HSRL_CHECK_H

#include <stddef.h>
#include <stdnoreturn.h>

#define HSRL_CHECK(cond) \
  do { if (!(cond)) hsrl_check_fail(__FILE__, __LINE__, #cond, NULL); } while (0)

/* Like HSRL_CHECK, with a printf-style explanation. */
#define HSRL_CHECKF(cond, ...) \
  do { if (!(cond)) hsrl_check_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); } while (0)

noreturn void hsrl_check_fail(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The function that ends the job after a failed check (default: abort()). The MPI transport
 * installs one that calls MPI_Abort. The hook must not return. */
typedef void (*hsrl_abort_hook)(int exit_code);
void hsrl_check_set_abort_hook(hsrl_abort_hook hook);

#endif
