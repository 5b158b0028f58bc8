/* hsrl_config.c: the INI config engine (see hsrl_config.h for the syntax, errors and hash).
 *
 * inih does the tokenising; we feed it through our own line reader (ini_parse_stream) because the
 * installed inih's handler gets no line number, and because the reader lets us (1) count lines,
 * (2) strip leading whitespace, which disables inih's continuation lines (an indented
 * "key = value" would otherwise silently become the previous key's value), (3) reject over-long
 * lines instead of letting inih split them into two, and (4) check a [section] header on its own
 * line. Parsing stops at the first error; the earliest error wins (inih's syntax errors included).
 * Nothing here touches inih's global option variables. */
#include "common/hsrl_config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"

#define CONFIG_FILE_MAX (1 << 20) /* a config larger than 1 MiB is not a config */
#define CONFIG_NAME_MAX 160       /* "section.key" in messages */
#define CONFIG_SHOW_MAX 60        /* bad values are quoted up to this many bytes */

/* ---------------------------------------------------------------- small text helpers */

static int is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* Copies s without surrounding whitespace into buf (truncating to cap - 1). */
static void copy_trimmed(char *buf, size_t cap, const char *s, size_t n) {
  while (n > 0 && is_blank(*s)) s++, n--;
  while (n > 0 && is_blank(s[n - 1])) n--;
  if (n > cap - 1) n = cap - 1;
  memcpy(buf, s, n);
  buf[n] = '\0';
}

/* 1 if s holds an inline-comment marker: ';' or '#' right after whitespace. */
static int has_comment_marker(const char *s) {
  for (size_t i = 1; s[0] && s[i]; i++) /* s[0] first: an empty value has no s[1] */
    if ((s[i] == ';' || s[i] == '#') && is_blank(s[i - 1])) return 1;
  return 0;
}

int64_t hsrl_config_edit_distance(const char *a, const char *b) {
  enum { M = 64 }; /* names are short; longer ones are compared on their first 64 bytes */
  int64_t prev[M + 1], cur[M + 1];
  size_t na = strnlen(a, M), nb = strnlen(b, M);
  for (size_t j = 0; j <= nb; j++) prev[j] = (int64_t)j;
  for (size_t i = 1; i <= na; i++) {
    cur[0] = (int64_t)i;
    for (size_t j = 1; j <= nb; j++) {
      int64_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
      int64_t del = prev[j] + 1, ins = cur[j - 1] + 1;
      cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
    }
    memcpy(prev, cur, (nb + 1) * sizeof *prev);
  }
  return prev[nb];
}

/* ---------------------------------------------------------------- ranges */

typedef struct config_range {
  double lo, hi;
  int lo_open, hi_open;
} config_range;

/* "[0,1)" -> lo 0 closed, hi 1 open. Returns 0 when f has no range. The range text is part of the
 * table, so a malformed one is a bug. */
static int range_parse(const hsrl_config_field *f, config_range *r) {
  if ((f->type != HSRL_CONFIG_INT && f->type != HSRL_CONFIG_DOUBLE) || !f->allowed) return 0;
  const char *s = f->allowed;
  char *end;
  HSRL_CHECKF(*s == '[' || *s == '(', "%s.%s: range '%s'", f->section, f->key, f->allowed);
  r->lo_open = *s++ == '(';
  r->lo = strtod(s, &end);
  HSRL_CHECKF(end != s && *end == ',', "%s.%s: range '%s'", f->section, f->key, f->allowed);
  s = end + 1;
  r->hi = strtod(s, &end);
  HSRL_CHECKF(end != s && (*end == ']' || *end == ')') && end[1] == '\0', "%s.%s: range '%s'",
              f->section, f->key, f->allowed);
  r->hi_open = *end == ')';
  return 1;
}

static int range_contains(const config_range *r, double x) {
  if (r->lo_open ? !(x > r->lo) : !(x >= r->lo)) return 0;
  if (r->hi_open ? !(x < r->hi) : !(x <= r->hi)) return 0;
  return 1;
}

/* ---------------------------------------------------------------- parsing one value */

static hsrl_status value_error(const hsrl_config_field *f, const char *file, long line,
                               const char *what, const char *value) {
  char name[CONFIG_NAME_MAX];
  snprintf(name, sizeof name, "%s.%s", f->section, f->key);
  size_t n = strlen(value);
  return hsrl_err(HSRL_E_USAGE, file, line, name, "expected %s, got '%.*s%s'", what,
                  (int)(n > CONFIG_SHOW_MAX ? CONFIG_SHOW_MAX : n), value,
                  n > CONFIG_SHOW_MAX ? "..." : "");
}

static int enum_contains(const char *allowed, const char *word) {
  size_t n = strlen(word);
  for (const char *p = allowed; *p;) {
    const char *bar = strchr(p, '|');
    size_t len = bar ? (size_t)(bar - p) : strlen(p);
    if (len == n && !memcmp(p, word, n)) return 1;
    if (!bar) break;
    p = bar + 1;
  }
  return 0;
}

static int bool_word(const char *s, bool *out) {
  static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
  char low[8] = {0};
  size_t n = strlen(s);
  if (n >= sizeof low) return 0;
  for (size_t i = 0; i < n && i < sizeof low - 1; i++) low[i] = (char)tolower((unsigned char)s[i]);
  for (int i = 0; i < 4; i++) {
    if (!strcmp(low, yes[i])) return *out = true, 1;
    if (!strcmp(low, no[i])) return *out = false, 1;
  }
  return 0;
}

/* Parses `value` (already trimmed) as f's type into the member at dst. */
static hsrl_status value_parse(const hsrl_config_field *f, void *dst, const char *value,
                               const char *file, long line) {
  config_range r = {0};
  char what[96];
  int ranged = range_parse(f, &r);
  switch (f->type) {
    case HSRL_CONFIG_INT: {
      char *end;
      errno = 0;
      long long x = strtoll(value, &end, 10);
      if (ranged) snprintf(what, sizeof what, "an integer in %s", f->allowed);
      else snprintf(what, sizeof what, "an integer");
      if (end == value || *end != '\0' || errno == ERANGE) return value_error(f, file, line, what, value);
      if (ranged && !range_contains(&r, (double)x)) return value_error(f, file, line, what, value);
      *(int64_t *)dst = (int64_t)x;
      return HSRL_OK;
    }
    case HSRL_CONFIG_DOUBLE: {
      char *end;
      errno = 0;
      double x = strtod(value, &end);
      if (ranged) snprintf(what, sizeof what, "a number in %s", f->allowed);
      else snprintf(what, sizeof what, "a finite number");
      if (end == value || *end != '\0' || !isfinite(x) || (errno == ERANGE && fabs(x) > 1.0))
        return value_error(f, file, line, what, value);
      if (ranged && !range_contains(&r, x)) return value_error(f, file, line, what, value);
      *(double *)dst = x;
      return HSRL_OK;
    }
    case HSRL_CONFIG_BOOL:
      if (!bool_word(value, (bool *)dst)) return value_error(f, file, line, "true or false", value);
      return HSRL_OK;
    case HSRL_CONFIG_ENUM:
      if (!enum_contains(f->allowed, value)) {
        snprintf(what, sizeof what, "one of %s", f->allowed);
        return value_error(f, file, line, what, value);
      }
      break;
    case HSRL_CONFIG_STRING:
      if (strlen(value) >= f->size) {
        snprintf(what, sizeof what, "at most %zu bytes (this value has %zu)", f->size - 1, strlen(value));
        return value_error(f, file, line, what, value);
      }
      for (const char *p = value; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
          return value_error(f, file, line, "text without control characters", value);
      break;
  }
  /* ENUM and STRING (length checked above or by the table); zero the tail so that equal
   * configs are equal bytes */
  memset(dst, 0, f->size);
  memcpy(dst, value, strlen(value));
  return HSRL_OK;
}

hsrl_status hsrl_config_field_parse(const hsrl_config_field *f, void *obj, const char *value,
                                    const char *file, long line) {
  return value_parse(f, (char *)obj + f->offset, value, file, line);
}

/* ---------------------------------------------------------------- formatting */

/* The shortest %g text that reads back as exactly x, preferring one without an exponent
 * ("20", not "2e+01"; "1e-05" stays). */
static size_t double_format(double x, char *buf, size_t cap) {
  char tmp[40], best[40] = "";
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*g", prec, x);
    if (strtod(tmp, NULL) != x) continue;
    if (!best[0]) memcpy(best, tmp, sizeof best);
    if (!strchr(tmp, 'e')) {
      memcpy(best, tmp, sizeof best);
      break;
    }
  }
  HSRL_CHECK(best[0]); /* %.17g always reads back */
  return (size_t)snprintf(buf, cap, "%s", best);
}

static size_t member_format(const hsrl_config_field *f, const void *src, char *buf, size_t cap) {
  switch (f->type) {
    case HSRL_CONFIG_INT: return (size_t)snprintf(buf, cap, "%" PRId64, *(const int64_t *)src);
    case HSRL_CONFIG_DOUBLE: return double_format(*(const double *)src, buf, cap);
    case HSRL_CONFIG_BOOL: return (size_t)snprintf(buf, cap, "%s", *(const bool *)src ? "true" : "false");
    case HSRL_CONFIG_ENUM:
    case HSRL_CONFIG_STRING:
      return (size_t)snprintf(buf, cap, "%.*s", (int)strnlen(src, f->size), (const char *)src);
  }
  return 0;
}

size_t hsrl_config_field_format(const hsrl_config_field *f, const void *obj, char *buf, size_t cap) {
  return member_format(f, (const char *)obj + f->offset, buf, cap);
}

/* The default in canonical form (defaults of numbers may be written "1e-3"). */
static void default_format(const hsrl_config_field *f, char *buf, size_t cap) {
  union { int64_t i; double d; bool b; } v;
  if (f->type == HSRL_CONFIG_STRING || f->type == HSRL_CONFIG_ENUM) {
    snprintf(buf, cap, "%s", f->def);
    return;
  }
  hsrl_status st = value_parse(f, &v, f->def, "hsrl_config table", 0);
  HSRL_CHECKF(st == HSRL_OK, "%s", hsrl_err_message());
  member_format(f, &v, buf, cap);
}

/* ---------------------------------------------------------------- schema checks and defaults */

static void schema_check(const hsrl_config_schema *schema) {
  for (int64_t i = 0; i < schema->n_fields; i++) {
    const hsrl_config_field *f = &schema->fields[i];
    HSRL_CHECKF(f->section && f->key && f->def && f->help, "field %" PRId64 " incomplete", i);
    switch (f->type) {
      case HSRL_CONFIG_INT: HSRL_CHECK(f->size == sizeof(int64_t)); break;
      case HSRL_CONFIG_DOUBLE: HSRL_CHECK(f->size == sizeof(double)); break;
      case HSRL_CONFIG_BOOL: HSRL_CHECK(f->size == sizeof(bool)); break;
      case HSRL_CONFIG_STRING: HSRL_CHECK(f->size >= 2); break;
      case HSRL_CONFIG_ENUM:
        HSRL_CHECKF(f->allowed && f->allowed[0], "%s.%s: no allowed values", f->section, f->key);
        for (const char *p = f->allowed; p;) { /* every word must fit the member */
          const char *bar = strchr(p, '|');
          size_t len = bar ? (size_t)(bar - p) : strlen(p);
          HSRL_CHECKF(len > 0 && len < f->size, "%s.%s: enum word of %zu bytes", f->section, f->key, len);
          p = bar ? bar + 1 : NULL;
        }
        break;
    }
    for (int64_t j = 0; j < i; j++) {
      const hsrl_config_field *g = &schema->fields[j];
      HSRL_CHECKF(strcmp(f->section, g->section) || strcmp(f->key, g->key), "%s.%s twice", f->section, f->key);
      /* one block per section, so that the written text has each [section] once */
      HSRL_CHECKF(strcmp(f->section, g->section) || !strcmp(schema->fields[i - 1].section, f->section),
                  "section [%s] is not contiguous in the table at %s", f->section, f->key);
    }
  }
}

void hsrl_config_defaults(const hsrl_config_schema *schema, void *obj) {
  schema_check(schema);
  for (int64_t i = 0; i < schema->n_fields; i++) {
    const hsrl_config_field *f = &schema->fields[i];
    memset((char *)obj + f->offset, 0, f->size);
    hsrl_status st = hsrl_config_field_parse(f, obj, f->def, "hsrl_config table (default)", 0);
    HSRL_CHECKF(st == HSRL_OK, "%s", hsrl_err_message());
  }
}

/* ---------------------------------------------------------------- lookup and suggestions */

const hsrl_config_field *hsrl_config_field_find(const hsrl_config_schema *schema,
                                                const char *section, const char *key) {
  for (int64_t i = 0; i < schema->n_fields; i++)
    if (!strcmp(schema->fields[i].section, section) && !strcmp(schema->fields[i].key, key))
      return &schema->fields[i];
  return NULL;
}

static int section_known(const hsrl_config_schema *schema, const char *section) {
  for (int64_t i = 0; i < schema->n_fields; i++)
    if (!strcmp(schema->fields[i].section, section)) return 1;
  return 0;
}

static const char *section_closest(const hsrl_config_schema *schema, const char *section) {
  const char *best = NULL;
  int64_t best_d = INT64_MAX;
  for (int64_t i = 0; i < schema->n_fields; i++) {
    int64_t d = hsrl_config_edit_distance(section, schema->fields[i].section);
    if (d < best_d) best_d = d, best = schema->fields[i].section;
  }
  return best;
}

/* The closest field to section.key: edit distance between the keys plus 1 when the section
 * differs, so that a key written in the wrong section is found in its own; ties prefer the
 * same section, then table order. */
static const hsrl_config_field *field_closest(const hsrl_config_schema *schema, const char *section,
                                              const char *key) {
  const hsrl_config_field *best = NULL;
  int64_t best_d = INT64_MAX;
  int best_other = 1;
  for (int64_t i = 0; i < schema->n_fields; i++) {
    const hsrl_config_field *f = &schema->fields[i];
    int other = strcmp(section, f->section) != 0;
    int64_t d = hsrl_config_edit_distance(key, f->key) + other;
    if (d < best_d || (d == best_d && other < best_other)) best = f, best_d = d, best_other = other;
  }
  return best;
}

static hsrl_status section_error(const hsrl_config_schema *schema, const char *file, long line,
                                 const char *section) {
  const char *near = section_closest(schema, section);
  return hsrl_err(HSRL_E_USAGE, file, line, NULL, "unknown section [%s]; did you mean [%s]?",
                  section, near ? near : "?");
}

/* Sets section.key = value with complete error reporting (unknown section/key, bad value). */
static hsrl_status field_assign(const hsrl_config_schema *schema, void *obj, const char *section,
                                const char *key, const char *value, const char *file, long line) {
  const hsrl_config_field *f = hsrl_config_field_find(schema, section, key);
  if (f) return hsrl_config_field_parse(f, obj, value, file, line);
  const hsrl_config_field *near = field_closest(schema, section, key);
  char name[CONFIG_NAME_MAX];
  if (!section[0]) {
    return hsrl_err(HSRL_E_USAGE, file, line, key, "key '%s' is outside any [section]; did you mean '%s.%s'?",
                    key, near->section, near->key);
  }
  if (!section_known(schema, section)) return section_error(schema, file, line, section);
  snprintf(name, sizeof name, "%s.%s", section, key);
  return hsrl_err(HSRL_E_USAGE, file, line, name, "unknown key '%s' in [%s]; did you mean '%s.%s'?", key,
                  section, near->section, near->key);
}

/* ---------------------------------------------------------------- loading INI text */

typedef struct config_parse {
  const hsrl_config_schema *schema;
  void *obj;
  const char *name; /* file name for messages */
  const char *text;
  size_t len, pos;
  long lineno;      /* the line the reader last handed to inih */
  hsrl_status st;   /* first error of ours */
  long err_line;
} config_parse;

static void parse_fail(config_parse *p, hsrl_status st) {
  p->st = st;
  p->err_line = p->lineno;
}

/* inih's fgets-like reader: one line per call, so p->lineno is the handler's line. */
static char *config_reader(char *str, int num, void *stream) {
  config_parse *p = stream;
  if (p->st != HSRL_OK || p->pos >= p->len) return NULL; /* stop at our first error */
  const char *line = p->text + p->pos;
  const char *nl = memchr(line, '\n', p->len - p->pos);
  size_t n = nl ? (size_t)(nl - line) + 1 : p->len - p->pos;
  p->pos += n;
  p->lineno++;
  while (n > 0 && (*line == ' ' || *line == '\t')) line++, n--; /* no continuation lines */
  size_t content = n;
  while (content > 0 && (line[content - 1] == '\n' || line[content - 1] == '\r')) content--;
  if (num < 3 || n + 1 > (size_t)num || content > HSRL_CONFIG_LINE_MAX) {
    parse_fail(p, hsrl_err(HSRL_E_USAGE, p->name, p->lineno, NULL,
                           "line is longer than %d characters", HSRL_CONFIG_LINE_MAX));
    return NULL;
  }
  memcpy(str, line, n);
  str[n] = '\0';
  if (str[0] == '[') { /* check the section on its own line, like inih reads it (untrimmed) */
    const char *close = strchr(str, ']');
    if (close) {
      char section[CONFIG_NAME_MAX];
      size_t len = (size_t)(close - str - 1);
      if (len > sizeof section - 1) len = sizeof section - 1;
      memcpy(section, str + 1, len);
      section[len] = '\0';
      if (!section_known(p->schema, section)) {
        parse_fail(p, section_error(p->schema, p->name, p->lineno, section));
        return NULL;
      }
    }
  }
  return str;
}

static int config_handler(void *user, const char *section, const char *name, const char *value) {
  config_parse *p = user;
  if (p->st != HSRL_OK) return 0;
  /* inih strips "value ; comment"; we also strip "value # comment" */
  char v[HSRL_CONFIG_LINE_MAX + 8];
  size_t n = strlen(value);
  for (size_t i = 1; i < n; i++)
    if (value[i] == '#' && is_blank(value[i - 1])) {
      n = i;
      break;
    }
  copy_trimmed(v, sizeof v, value, n);
  hsrl_status st = field_assign(p->schema, p->obj, section, name, v, p->name, p->lineno);
  if (st != HSRL_OK) parse_fail(p, st);
  return st == HSRL_OK;
}

/* inih's syntax error at `line`: quote the line. */
static hsrl_status syntax_error(const config_parse *p, long line) {
  const char *s = p->text, *end = p->text + p->len;
  for (long l = 1; l < line && s < end; l++) {
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    s = nl ? nl + 1 : end;
  }
  const char *nl = memchr(s, '\n', (size_t)(end - s));
  char quoted[CONFIG_SHOW_MAX + 1];
  copy_trimmed(quoted, sizeof quoted, s, nl ? (size_t)(nl - s) : (size_t)(end - s));
  return hsrl_err(HSRL_E_USAGE, p->name, line, NULL,
                  "expected '[section]', 'key = value' or a comment, got '%s'", quoted);
}

hsrl_status hsrl_config_load_string(const hsrl_config_schema *schema, void *obj, const char *text,
                                    const char *name) {
  config_parse p = {schema, obj, name ? name : "(config text)", text, strlen(text), 0, 0, HSRL_OK, 0};
  int ret = ini_parse_stream(config_reader, &p, config_handler, &p);
  if (ret < 0) return hsrl_err(HSRL_E_INTERNAL, p.name, 0, NULL, "inih failed (%d)", ret);
  if (ret > 0 && (p.st == HSRL_OK || ret < p.err_line)) return syntax_error(&p, ret);
  return p.st;
}

hsrl_status hsrl_config_load_file(const hsrl_config_schema *schema, void *obj, const char *path) {
  hsrl_status st = HSRL_OK;
  char *text = NULL;
  size_t len = 0, cap = 4096;
  FILE *f = fopen(path, "rb");
  if (!f) return hsrl_err(HSRL_E_USAGE, path, 0, NULL, "cannot open the config file: %s", strerror(errno));
  text = hsrl_malloc(cap);
  for (;;) {
    size_t got = fread(text + len, 1, cap - 1 - len, f);
    len += got;
    if (got == 0) break;
    if (len == cap - 1) {
      if (cap > CONFIG_FILE_MAX) {
        st = hsrl_err(HSRL_E_USAGE, path, 0, NULL, "larger than %d bytes: not a config file", CONFIG_FILE_MAX);
        goto done;
      }
      cap *= 2;
      text = hsrl_realloc(text, cap);
    }
  }
  if (ferror(f)) {
    st = hsrl_err(HSRL_E_USAGE, path, 0, NULL, "cannot read the config file: %s", strerror(errno));
    goto done;
  }
  text[len] = '\0';
  if (memchr(text, '\0', len)) {
    st = hsrl_err(HSRL_E_USAGE, path, 0, NULL, "contains a NUL byte: not a text file");
    goto done;
  }
  st = hsrl_config_load_string(schema, obj, text, path);
done:
  fclose(f);
  hsrl_free(text);
  return st;
}

hsrl_status hsrl_config_set(const hsrl_config_schema *schema, void *obj, const char *assignment) {
  char src[CONFIG_NAME_MAX + 16], section[CONFIG_NAME_MAX], key[CONFIG_NAME_MAX];
  size_t n = strlen(assignment);
  snprintf(src, sizeof src, "--set %.*s%s", (int)(n > CONFIG_NAME_MAX ? CONFIG_NAME_MAX : n), assignment,
           n > CONFIG_NAME_MAX ? "..." : "");
  const char *eq = strchr(assignment, '=');
  const char *dot = eq ? memchr(assignment, '.', (size_t)(eq - assignment)) : NULL;
  if (!eq || !dot)
    return hsrl_err(HSRL_E_USAGE, src, 0, NULL, "expected section.key=value (e.g. --set sim.lr=0.001)");
  copy_trimmed(section, sizeof section, assignment, (size_t)(dot - assignment));
  copy_trimmed(key, sizeof key, dot + 1, (size_t)(eq - dot - 1));
  const char *value = eq + 1;
  size_t vn = strlen(value);
  char *v = hsrl_malloc(vn + 1);
  copy_trimmed(v, vn + 1, value, vn);
  hsrl_status st;
  if (has_comment_marker(v)) /* a file could not hold it: 'config show' would not read back */
    st = hsrl_err(HSRL_E_USAGE, src, 0, NULL,
                  "a value cannot contain ';' or '#' after a space (comment marker)");
  else
    st = field_assign(schema, obj, section, key, v, src, 0);
  hsrl_free(v);
  return st;
}

/* ---------------------------------------------------------------- writing and hashing */

/* A sink that appends to a buffer (size then place) and hashes what it is given. */
typedef struct config_out {
  char *buf;
  size_t cap, len;
  uint64_t hash;
} config_out;

static void out_puts(config_out *o, const char *s) {
  for (const char *p = s; *p; p++) {
    o->hash = (o->hash ^ (uint8_t)*p) * 1099511628211ull; /* FNV-1a 64 */
    if (o->len + 1 < o->cap) o->buf[o->len] = *p;
    o->len++;
  }
  if (o->cap) o->buf[o->len < o->cap ? o->len : o->cap - 1] = '\0';
}

static void out_printf(config_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(config_out *o, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  HSRL_CHECKF(n >= 0 && (size_t)n < sizeof line, "config line too long (%d)", n);
  out_puts(o, line);
}

static void config_emit(const hsrl_config_schema *schema, const void *obj, int flags, config_out *o) {
  char value[1024], def[1024];
  for (int64_t i = 0; i < schema->n_fields; i++) {
    const hsrl_config_field *f = &schema->fields[i];
    if (i == 0 || strcmp(f->section, schema->fields[i - 1].section))
      out_printf(o, "%s[%s]\n", i ? "\n" : "", f->section);
    size_t n = hsrl_config_field_format(f, obj, value, sizeof value);
    HSRL_CHECK(n < sizeof value);
    if (flags & HSRL_CONFIG_WRITE_HELP) {
      if (f->type == HSRL_CONFIG_ENUM) out_printf(o, "# %s (%s)\n", f->help, f->allowed);
      else if (f->allowed) out_printf(o, "# %s; range %s\n", f->help, f->allowed);
      else out_printf(o, "# %s\n", f->help);
      default_format(f, def, sizeof def);
      if (strcmp(def, value)) out_printf(o, "# default: %s\n", def);
    }
    out_printf(o, "%s =%s%s\n", f->key, value[0] ? " " : "", value);
  }
}

size_t hsrl_config_write(const hsrl_config_schema *schema, const void *obj, int flags, char *buf,
                         size_t cap) {
  config_out o = {buf, buf ? cap : 0, 0, 14695981039346656037ull};
  if (o.cap) buf[0] = '\0';
  config_emit(schema, obj, flags, &o);
  return o.len;
}

hsrl_status hsrl_config_fprint(const hsrl_config_schema *schema, const void *obj, int flags, FILE *out) {
  size_t n = hsrl_config_write(schema, obj, flags, NULL, 0);
  char *text = hsrl_malloc(n + 1);
  hsrl_config_write(schema, obj, flags, text, n + 1);
  size_t put = fwrite(text, 1, n, out);
  hsrl_free(text);
  if (put != n || ferror(out))
    return hsrl_err(HSRL_E_IO, NULL, 0, NULL, "cannot write the config: %s", strerror(errno));
  return HSRL_OK;
}

uint64_t hsrl_config_hash(const hsrl_config_schema *schema, const void *obj) {
  config_out o = {NULL, 0, 0, 14695981039346656037ull};
  config_emit(schema, obj, 0, &o);
  return o.hash;
}

void hsrl_config_hash_hex(uint64_t hash, char out[17]) { snprintf(out, 17, "%016" PRIx64, hash); }
