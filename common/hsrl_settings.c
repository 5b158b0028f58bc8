/* hsrl_settings.c: the table of hsrl's settings (generated from the lists in hsrl_settings.h),
 * loading with precedence defaults < file < --set, relative paths of a file resolved against its
 * directory, and the cross-field rules. */
#define _XOPEN_SOURCE 700 /* realpath() is XSI in glibc's headers */
#include "common/hsrl_settings.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The engine knows no PATH: it is a STRING there; settings_is_path marks it here. */
#define HSRL_SETTINGS_ENGINE_INT HSRL_CONFIG_INT
#define HSRL_SETTINGS_ENGINE_DOUBLE HSRL_CONFIG_DOUBLE
#define HSRL_SETTINGS_ENGINE_BOOL HSRL_CONFIG_BOOL
#define HSRL_SETTINGS_ENGINE_STRING HSRL_CONFIG_STRING
#define HSRL_SETTINGS_ENGINE_PATH HSRL_CONFIG_STRING
#define HSRL_SETTINGS_ENGINE_ENUM HSRL_CONFIG_ENUM
#define HSRL_SETTINGS_IS_PATH_INT 0
#define HSRL_SETTINGS_IS_PATH_DOUBLE 0
#define HSRL_SETTINGS_IS_PATH_BOOL 0
#define HSRL_SETTINGS_IS_PATH_STRING 0
#define HSRL_SETTINGS_IS_PATH_PATH 1
#define HSRL_SETTINGS_IS_PATH_ENUM 0

#define HSRL_SETTINGS_ROW(sec, k, type, def, allowed, help)                                  \
  {#sec, #k, HSRL_SETTINGS_ENGINE_##type, offsetof(hsrl_settings, sec.k),                   \
   sizeof(((hsrl_settings *)0)->sec.k), def, allowed, help},
#define HSRL_SETTINGS_SECTION_ROWS(sec, LIST) LIST(HSRL_SETTINGS_ROW)
#define HSRL_SETTINGS_PATH_FLAG(sec, k, type, def, allowed, help) HSRL_SETTINGS_IS_PATH_##type,
#define HSRL_SETTINGS_SECTION_PATH_FLAGS(sec, LIST) LIST(HSRL_SETTINGS_PATH_FLAG)

static const hsrl_config_field settings_fields[] = {HSRL_SETTINGS_SECTIONS(HSRL_SETTINGS_SECTION_ROWS)};
static const unsigned char settings_is_path[] = {
    HSRL_SETTINGS_SECTIONS(HSRL_SETTINGS_SECTION_PATH_FLAGS)};

static const hsrl_config_schema settings_schema = {
    settings_fields, (int64_t)(sizeof settings_fields / sizeof settings_fields[0])};

const hsrl_config_schema *hsrl_settings_schema(void) { return &settings_schema; }

void hsrl_settings_defaults(hsrl_settings *s) {
  memset(s, 0, sizeof *s);
  hsrl_config_defaults(&settings_schema, s);
}

_Static_assert(sizeof settings_is_path == sizeof settings_fields / sizeof settings_fields[0],
               "one PATH flag per field");

int hsrl_settings_field_is_path(const hsrl_config_field *f) {
  for (int64_t i = 0; i < settings_schema.n_fields; i++)
    if (&settings_fields[i] == f) return settings_is_path[i];
  return 0;
}

/* Marks a PATH value the file did not set: a config file cannot hold a control character. */
static const char settings_unset[] = "\x01";

/* dir (an absolute directory without a trailing '/', or "/") + value (relative) -> out, with the
 * value's leading "./" and "../" components folded into dir. dir is canonical (realpath), so its
 * ".." is its textual parent. Returns 0 when out would not fit in cap bytes. */
static int settings_path_join(char *out, size_t cap, const char *dir, const char *value) {
  size_t n = strlen(dir);
  if (n + 1 > cap) return 0;
  memcpy(out, dir, n + 1);
  const char *v = value;
  for (;;) {
    if (v[0] == '.' && (v[1] == '/' || v[1] == '\0')) {
      v += v[1] ? 2 : 1;
    } else if (v[0] == '.' && v[1] == '.' && (v[2] == '/' || v[2] == '\0')) {
      v += v[2] ? 3 : 2;
      char *slash = strrchr(out, '/');
      if (slash && slash != out) *slash = '\0';
      else out[1] = '\0'; /* the parent of "/" is "/" */
      n = strlen(out);
    } else if (v[0] == '/') {
      v++; /* "a//b" */
    } else {
      break;
    }
  }
  if (!v[0]) return 1;
  int need_slash = n > 0 && out[n - 1] != '/';
  size_t nv = strlen(v);
  if (n + (size_t)need_slash + nv + 1 > cap) return 0;
  if (need_slash) out[n++] = '/';
  memcpy(out + n, v, nv + 1);
  return 1;
}

/* The canonical absolute directory holding the file `path` (or the working directory for
 * path == NULL) into dir (PATH_MAX bytes). */
static hsrl_status settings_base_dir(char *dir, const char *path) {
  char file_dir[PATH_MAX];
  const char *slash = path ? strrchr(path, '/') : NULL;
  size_t n = slash ? (slash == path ? 1 : (size_t)(slash - path)) : 1; /* "/x.ini": "/" */
  if (n >= sizeof file_dir) return hsrl_err(HSRL_E_USAGE, path, 0, NULL, "path too long");
  memcpy(file_dir, slash ? path : ".", n);
  file_dir[n] = '\0';
  if (!realpath(file_dir, dir))
    return hsrl_err(HSRL_E_USAGE, path, 0, NULL, "cannot resolve %s: %s",
                    path ? "the config file's directory" : "the working directory", strerror(errno));
  return HSRL_OK;
}

/* Makes field f of s absolute against the canonical directory dir when it is relative and not
 * empty. `source` names the file (or the --set argument) in messages. */
static hsrl_status settings_resolve_field(hsrl_settings *s, const hsrl_config_field *f,
                                          const char *dir, const char *source) {
  char *value = (char *)s + f->offset;
  char joined[PATH_MAX + HSRL_SETTINGS_STR_MAX + 2];
  if (value[0] == '\0' || value[0] == '/') return HSRL_OK;
  if (!settings_path_join(joined, sizeof joined, dir, value) || strlen(joined) >= f->size) {
    char field[96];
    snprintf(field, sizeof field, "%s.%s", f->section, f->key);
    return hsrl_err(HSRL_E_USAGE, source, 0, field,
                    "'%s' relative to %s is longer than %zu bytes", value, dir, f->size - 1);
  }
  memcpy(value, joined, strlen(joined) + 1);
  return HSRL_OK;
}

/* After loading the file at `path` over values in which every PATH held settings_unset: the
 * PATH values the file did not set get their defaults back, the ones it set are resolved against
 * its directory (resolve = 0 after a failed load: only the markers are removed). */
static hsrl_status settings_resolve_file_paths(hsrl_settings *s, const hsrl_settings *defaults,
                                               const char *path, int resolve) {
  hsrl_status st = HSRL_OK;
  char dir[PATH_MAX];
  int have_dir = 0;
  for (int64_t i = 0; i < settings_schema.n_fields; i++) {
    if (!settings_is_path[i]) continue;
    const hsrl_config_field *f = &settings_fields[i];
    char *value = (char *)s + f->offset;
    if (!strcmp(value, settings_unset)) {
      memcpy(value, (const char *)defaults + f->offset, f->size);
      continue;
    }
    if (!resolve || st != HSRL_OK || value[0] == '\0' || value[0] == '/') continue;
    if (!have_dir) {
      if ((st = settings_base_dir(dir, path)) != HSRL_OK) continue;
      have_dir = 1;
    }
    st = settings_resolve_field(s, f, dir, path);
  }
  return st;
}

/* The field an override "section.key=value" names (NULL when it names none: the engine has
 * reported that already). */
static const hsrl_config_field *settings_set_field(const char *assignment) {
  char name[128];
  const char *eq = strchr(assignment, '=');
  if (!eq) return NULL;
  size_t a = 0, b = (size_t)(eq - assignment);
  while (a < b && (assignment[a] == ' ' || assignment[a] == '\t')) a++;
  while (b > a && (assignment[b - 1] == ' ' || assignment[b - 1] == '\t')) b--;
  if (b - a >= sizeof name) return NULL;
  memcpy(name, assignment + a, b - a);
  name[b - a] = '\0';
  char *dot = strchr(name, '.');
  if (!dot) return NULL;
  *dot = '\0';
  return hsrl_config_field_find(&settings_schema, name, dot + 1);
}

/* The overrides in order, then every PATH value still relative (the overrides', a relative
 * default's) made absolute against the working directory. */
static hsrl_status settings_apply_sets(hsrl_settings *s, int64_t n_sets, const char *const *sets) {
  hsrl_status st = HSRL_OK;
  char cwd[PATH_MAX];
  int have_cwd = 0;
  for (int64_t i = 0; i < n_sets; i++) {
    HSRL_TRY(hsrl_config_set(&settings_schema, s, sets[i]));
    const hsrl_config_field *f = settings_set_field(sets[i]);
    if (!f || !hsrl_settings_field_is_path(f)) continue;
    if (!have_cwd) {
      HSRL_TRY(settings_base_dir(cwd, NULL));
      have_cwd = 1;
    }
    char source[HSRL_SETTINGS_STR_MAX + 64];
    snprintf(source, sizeof source, "--set %s", sets[i]);
    HSRL_TRY(settings_resolve_field(s, f, cwd, source)); /* here, to name the argument */
  }
  for (int64_t i = 0; i < settings_schema.n_fields; i++) {
    const char *value = (const char *)s + settings_fields[i].offset;
    if (!settings_is_path[i] || value[0] == '\0' || value[0] == '/') continue;
    if (!have_cwd) {
      HSRL_TRY(settings_base_dir(cwd, NULL));
      have_cwd = 1;
    }
    HSRL_TRY(settings_resolve_field(s, &settings_fields[i], cwd, NULL));
  }
done:
  return st;
}

hsrl_status hsrl_settings_load(hsrl_settings *s, const char *path, int64_t n_sets,
                               const char *const *sets) {
  hsrl_status st = HSRL_OK;
  hsrl_settings_defaults(s);
  if (path) {
    hsrl_settings defaults = *s;
    for (int64_t i = 0; i < settings_schema.n_fields; i++)
      if (settings_is_path[i]) {
        char *value = (char *)s + settings_fields[i].offset;
        memset(value, 0, settings_fields[i].size);
        memcpy(value, settings_unset, sizeof settings_unset);
      }
    st = hsrl_config_load_file(&settings_schema, s, path);
    /* on error too: no field may keep the marker */
    hsrl_status rs = settings_resolve_file_paths(s, &defaults, path, st == HSRL_OK);
    if (st == HSRL_OK) st = rs;
    if (st != HSRL_OK) goto done;
  }
  HSRL_TRY(settings_apply_sets(s, n_sets, sets));
  st = hsrl_settings_validate(s, path);
done:
  return st;
}

hsrl_status hsrl_settings_apply_sets(hsrl_settings *s, int64_t n_sets, const char *const *sets) {
  hsrl_status st = settings_apply_sets(s, n_sets, sets);
  return st == HSRL_OK ? hsrl_settings_validate(s, NULL) : st;
}

hsrl_status hsrl_settings_load_string(hsrl_settings *s, const char *text, const char *name) {
  hsrl_status st = HSRL_OK;
  hsrl_settings_defaults(s);
  HSRL_TRY(hsrl_config_load_string(&settings_schema, s, text, name));
  st = hsrl_settings_validate(s, name);
done:
  return st;
}

uint64_t hsrl_settings_train_seed(const hsrl_settings *s) {
  return (uint64_t)(s->train.seed >= 0 ? s->train.seed : s->run.seed);
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
  for (int64_t i = 0; i < settings_schema.n_fields; i++) {
    const hsrl_config_field *f = &settings_fields[i];
    if (f->type != HSRL_CONFIG_STRING) continue;
    size_t n = strlen(f->key) + 3 + strlen((const char *)s + f->offset); /* "key = value" */
    if (n > HSRL_CONFIG_LINE_MAX) {
      char field[96];
      snprintf(field, sizeof field, "%s.%s", f->section, f->key);
      return hsrl_err(HSRL_E_USAGE, source, 0, field,
                      "the line '%s = <%zu bytes>' would be longer than the %d characters a config "
                      "line may hold, so the effective config (stored in checkpoints) could not be "
                      "read back; use a shorter value",
                      f->key, strlen((const char *)s + f->offset), HSRL_CONFIG_LINE_MAX);
    }
  }
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
