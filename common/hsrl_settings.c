/* hsrl_settings.c: the table of hsrl's settings (generated from the lists in hsrl_settings.h),
 * loading with precedence defaults < file < --set, and the cross-field rules. */
#include "common/hsrl_settings.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define HSRL_SETTINGS_ROW(sec, k, type, def, allowed, help)                                         \
  {#sec, #k, HSRL_CONFIG_##type, offsetof(hsrl_settings, sec.k), sizeof(((hsrl_settings *)0)->sec.k), \
   def, allowed, help},
#define HSRL_SETTINGS_SECTION_ROWS(sec, LIST) LIST(HSRL_SETTINGS_ROW)

static const hsrl_config_field settings_fields[] = {HSRL_SETTINGS_SECTIONS(HSRL_SETTINGS_SECTION_ROWS)};

static const hsrl_config_schema settings_schema = {
    settings_fields, (int64_t)(sizeof settings_fields / sizeof settings_fields[0])};

const hsrl_config_schema *hsrl_settings_schema(void) { return &settings_schema; }

void hsrl_settings_defaults(hsrl_settings *s) {
  memset(s, 0, sizeof *s);
  hsrl_config_defaults(&settings_schema, s);
}

hsrl_status hsrl_settings_load(hsrl_settings *s, const char *path, int64_t n_sets,
                               const char *const *sets) {
  hsrl_status st = HSRL_OK;
  hsrl_settings_defaults(s);
  if (path) HSRL_TRY(hsrl_config_load_file(&settings_schema, s, path));
  for (int64_t i = 0; i < n_sets; i++) HSRL_TRY(hsrl_config_set(&settings_schema, s, sets[i]));
  st = hsrl_settings_validate(s, path);
done:
  return st;
}

hsrl_status hsrl_settings_load_string(hsrl_settings *s, const char *text, const char *name) {
  hsrl_status st = HSRL_OK;
  hsrl_settings_defaults(s);
  HSRL_TRY(hsrl_config_load_string(&settings_schema, s, text, name));
  st = hsrl_settings_validate(s, name);
done:
  return st;
}

int64_t hsrl_settings_parse_int_list(const char *text, int64_t *out, int64_t max_n) {
  int64_t n = 0;
  const char *p = text;
  for (;;) {
    while (*p == ' ' || *p == '\t') p++;
    char *end;
    errno = 0;
    long long x = strtoll(p, &end, 10);
    if (end == p || errno == ERANGE || x <= 0 || n >= max_n) return -1;
    out[n++] = (int64_t)x;
    p = end;
    while (*p == ' ' || *p == '\t') p++;
    if (*p == '\0') return n;
    if (*p++ != ',') return -1;
  }
}

hsrl_status hsrl_settings_validate(const hsrl_settings *s, const char *source) {
  int64_t widths[8];
  if (s->sim.f % s->sim.heads)
    return hsrl_err(HSRL_E_USAGE, source, 0, "sim.heads", "%" PRId64 " does not divide sim.f = %" PRId64,
                    s->sim.heads, s->sim.f);
  if (s->agent.d % s->agent.heads)
    return hsrl_err(HSRL_E_USAGE, source, 0, "agent.heads", "%" PRId64 " does not divide agent.d = %" PRId64,
                    s->agent.heads, s->agent.d);
  if (hsrl_settings_parse_int_list(s->agent.critic_hidden, widths, 8) < 0)
    return hsrl_err(HSRL_E_USAGE, source, 0, "agent.critic_hidden",
                    "expected 1 to 8 positive integers separated by commas, got '%s'", s->agent.critic_hidden);
  if (strcmp(s->data.format, "synth") && !s->data.input[0])
    return hsrl_err(HSRL_E_USAGE, source, 0, "data.input", "required when data.format = %s", s->data.format);
  if (!strcmp(s->data.format, "synth") && s->data.slate_size > s->synth.items)
    return hsrl_err(HSRL_E_USAGE, source, 0, "data.slate_size",
                    "%" PRId64 " is more than the catalog (synth.items = %" PRId64 ")", s->data.slate_size,
                    s->synth.items);
  if (s->train.batch > s->train.buffer)
    return hsrl_err(HSRL_E_USAGE, source, 0, "train.batch",
                    "%" PRId64 " is more than the replay capacity (train.buffer = %" PRId64 ")", s->train.batch,
                    s->train.buffer);
  if (s->train.learning_starts > s->train.buffer)
    return hsrl_err(HSRL_E_USAGE, source, 0, "train.learning_starts",
                    "%" PRId64 " is more than the replay capacity (train.buffer = %" PRId64 ")",
                    s->train.learning_starts, s->train.buffer);
  return HSRL_OK;
}

size_t hsrl_settings_write(const hsrl_settings *s, int flags, char *buf, size_t cap) {
  return hsrl_config_write(&settings_schema, s, flags, buf, cap);
}

uint64_t hsrl_settings_hash(const hsrl_settings *s) { return hsrl_config_hash(&settings_schema, s); }
