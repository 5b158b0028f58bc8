/* hsrl_log.h: logging to stderr with a rank/role prefix, e.g. "[hsrl 3/actor] ...".
 * Levels: error < warn < info < debug; the threshold comes from HSRL_LOG (error|warn|info|debug)
 * or hsrl_log_set_level(). */
#ifndef HSRL_LOG_H
#define HSRL_LOG_H

typedef enum hsrl_log_level {
  HSRL_LOG_ERROR = 0,
  HSRL_LOG_WARN = 1,
  HSRL_LOG_INFO = 2,
  HSRL_LOG_DEBUG = 3,
} hsrl_log_level;

void hsrl_log_set_identity(int rank, const char *role); /* rank < 0: no rank shown */
void hsrl_log_set_level(hsrl_log_level level);
hsrl_log_level hsrl_log_get_level(void);
const char *hsrl_log_prefix(void); /* "[hsrl]" or "[hsrl 3/actor]" */
void hsrl_log(hsrl_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define HSRL_ERROR(...) hsrl_log(HSRL_LOG_ERROR, __VA_ARGS__)
#define HSRL_WARN(...) hsrl_log(HSRL_LOG_WARN, __VA_ARGS__)
#define HSRL_INFO(...) hsrl_log(HSRL_LOG_INFO, __VA_ARGS__)
#define HSRL_DEBUG(...) hsrl_log(HSRL_LOG_DEBUG, __VA_ARGS__)

#endif
