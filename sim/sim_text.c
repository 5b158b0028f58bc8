/* sim_text.c: see sim_text.h.
 *
 * The buffer holds the bytes buf[start, end) not yet handed out; a line is returned in place
 * (its '\n' replaced by NUL), so a line costs no copy. When no '\n' is buffered, the partial line
 * is moved to the front and the rest of the buffer refilled; the buffer doubles only when one
 * line does not fit, and a line over max_line bytes is reported before the buffer would grow past
 * about twice the bound. One byte is always kept free so the last line (without '\n') can be
 * terminated too. */
#include "sim/sim_text.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/hsrl_alloc.h"

#define TEXT_CHUNK ((int64_t)1 << 18) /* bytes per read, and the initial buffer */

struct sim_text {
  FILE *f;
  char path[512];
  int64_t max_line;
  char *buf;
  int64_t cap, start, end, scan; /* scan: where the search for '\n' resumes */
  int eof;
  int64_t line_no, bytes_read, file_size;
  uint64_t checksum;
  char sep[8];
  int64_t sep_len;
  int n_fields;
  const char *const *names;
};

uint64_t sim_text_fnv1a(uint64_t h, const void *bytes, int64_t n) {
  const unsigned char *p = bytes;
  for (int64_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

void sim_text_checksum_hex(uint64_t checksum, char out[24]) {
  snprintf(out, 24, "%016llx", (unsigned long long)checksum);
}

void sim_text_basename(char *out, size_t cap, const char *path) {
  size_t n = strlen(path);
  while (n > 1 && path[n - 1] == '/') n--;
  size_t b = n;
  while (b > 0 && path[b - 1] != '/') b--;
  snprintf(out, cap, "%.*s", (int)(n - b), path + b);
}

/* Up to 40 bytes of s for a message, non-printable bytes as '?' (the files are Latin-1). */
static const char *text_quote(char out[48], const char *s, int64_t n) {
  int64_t m = n < 40 ? n : 40, j = 0;
  for (int64_t i = 0; i < m; i++) {
    unsigned char c = (unsigned char)s[i];
    out[j++] = (c >= 32 && c < 127) ? (char)c : '?';
  }
  if (n > m) out[j++] = '.', out[j++] = '.', out[j++] = '.';
  out[j] = '\0';
  return out;
}

static const char *text_sep_name(const sim_text *t) {
  if (!strcmp(t->sep, "\t")) return "TAB";
  if (!strcmp(t->sep, " ")) return "SPACE";
  return t->sep;
}

hsrl_status sim_text_open(sim_text **out, const char *path, int64_t max_line) {
  *out = NULL;
  if (strlen(path) >= sizeof((sim_text *)0)->path)
    return hsrl_err(HSRL_E_USAGE, NULL, 0, NULL, "path longer than %zu bytes: %.80s...",
                    sizeof((sim_text *)0)->path - 1, path);
  FILE *f = fopen(path, "rb");
  if (!f) return hsrl_err(HSRL_E_INPUT, path, 0, NULL, "cannot open: %s", strerror(errno));
  struct stat sb;
  if (fstat(fileno(f), &sb) != 0) {
    int e = errno;
    fclose(f);
    return hsrl_err(HSRL_E_IO, path, 0, NULL, "cannot stat: %s", strerror(e));
  }
  if (S_ISDIR(sb.st_mode)) {
    fclose(f);
    return hsrl_err(HSRL_E_INPUT, path, 0, NULL, "is a directory, not a file");
  }
  sim_text *t = hsrl_calloc(1, sizeof *t);
  t->f = f;
  memcpy(t->path, path, strlen(path) + 1);
  t->max_line = max_line;
  t->cap = TEXT_CHUNK;
  t->buf = hsrl_malloc((size_t)t->cap);
  t->file_size = S_ISREG(sb.st_mode) ? (int64_t)sb.st_size : 0;
  t->checksum = SIM_TEXT_FNV_OFFSET;
  *out = t;
  return HSRL_OK;
}

void sim_text_close(sim_text *t) {
  if (!t) return;
  if (t->f) fclose(t->f);
  hsrl_free(t->buf);
  hsrl_free(t);
}

void sim_text_set_fields(sim_text *t, const char *sep, const char *const *names, int n_fields) {
  snprintf(t->sep, sizeof t->sep, "%s", sep);
  t->sep_len = (int64_t)strlen(t->sep);
  t->names = names;
  t->n_fields = n_fields;
}

/* Index of the field that byte offset `at` of s falls in (separators counted before it). */
static int text_field_at(const sim_text *t, const char *s, int64_t at) {
  if (t->sep_len == 0) return 0;
  int k = 0;
  for (int64_t i = 0; i + t->sep_len <= at;) {
    if (!memcmp(s + i, t->sep, (size_t)t->sep_len)) {
      k++;
      i += t->sep_len;
    } else {
      i++;
    }
  }
  return k;
}

static const char *text_field_name(const sim_text *t, int k) {
  if (!t->names || t->n_fields == 0) return NULL;
  return t->names[k < t->n_fields ? k : t->n_fields - 1];
}

/* line: the start of the over-long line (its bytes up to max_line are in the buffer). */
static hsrl_status text_too_long(const sim_text *t, const char *line) {
  int k = text_field_at(t, line, t->max_line);
  return hsrl_err(HSRL_E_INPUT, t->path, (long)(t->line_no + 1), text_field_name(t, k),
                  "line is longer than %lld bytes, the limit for this file (a damaged file, or "
                  "not the expected format?)",
                  (long long)t->max_line);
}

/* Makes room and reads the next chunk; sets eof at the end of the file. */
static hsrl_status text_fill(sim_text *t) {
  if (t->start > 0) {
    int64_t n = t->end - t->start;
    memmove(t->buf, t->buf + t->start, (size_t)n);
    t->scan -= t->start;
    t->start = 0;
    t->end = n;
  }
  if (t->cap - 1 - t->end < TEXT_CHUNK / 4) {
    t->cap *= 2;
    t->buf = hsrl_realloc(t->buf, (size_t)t->cap);
  }
  size_t want = (size_t)(t->cap - 1 - t->end);
  size_t got = fread(t->buf + t->end, 1, want, t->f);
  if (got < want) {
    if (ferror(t->f))
      return hsrl_err(HSRL_E_IO, t->path, (long)(t->line_no + 1), NULL, "read failed: %s",
                      strerror(errno));
    t->eof = 1;
  }
  t->checksum = sim_text_fnv1a(t->checksum, t->buf + t->end, (int64_t)got);
  t->bytes_read += (int64_t)got;
  t->end += (int64_t)got;
  return HSRL_OK;
}

hsrl_status sim_text_next(sim_text *t, char **line, int64_t *len) {
  *line = NULL;
  *len = 0;
  char *s, *nl;
  int64_t n;
  for (;;) {
    nl = memchr(t->buf + t->scan, '\n', (size_t)(t->end - t->scan));
    if (nl) {
      s = t->buf + t->start;
      n = nl - s;
      t->start = t->scan = (nl - t->buf) + 1;
      break;
    }
    /* +1: a '\r' before the '\n' is not part of the line */
    if (t->end - t->start > t->max_line + 1) return text_too_long(t, t->buf + t->start);
    if (t->eof) {
      if (t->start == t->end) return HSRL_OK;
      s = t->buf + t->start;
      n = t->end - t->start;
      t->start = t->scan = t->end;
      break;
    }
    t->scan = t->end;
    hsrl_status st = text_fill(t);
    if (st != HSRL_OK) return st;
  }
  if (n > 0 && s[n - 1] == '\r') n--;
  if (n > t->max_line) return text_too_long(t, s);
  t->line_no++;
  const char *zero = memchr(s, '\0', (size_t)n);
  if (zero)
    return hsrl_err(HSRL_E_INPUT, t->path, (long)t->line_no, text_field_name(t, text_field_at(t, s, zero - s)),
                    "NUL byte at column %lld (a binary or damaged file?)", (long long)(zero - s + 1));
  s[n] = '\0';
  *line = s;
  *len = n;
  return HSRL_OK;
}

hsrl_status sim_text_split(sim_text *t, char *line, char **fields) {
  int k = 0;
  char *p = line;
  for (;;) {
    char *q = t->sep_len == 1 ? strchr(p, t->sep[0]) : strstr(p, t->sep);
    if (k < t->n_fields) fields[k] = p;
    k++;
    if (!q) break;
    if (k <= t->n_fields) *q = '\0'; /* beyond the expected count: only count */
    p = q + t->sep_len;
  }
  if (k < t->n_fields)
    return hsrl_err(HSRL_E_INPUT, t->path, (long)t->line_no, t->names[k],
                    "missing: expected %d fields separated by '%s', found %d", t->n_fields,
                    text_sep_name(t), k);
  if (k > t->n_fields)
    return hsrl_err(HSRL_E_INPUT, t->path, (long)t->line_no, t->names[t->n_fields - 1],
                    "extra text after this field: expected %d fields separated by '%s', found %d",
                    t->n_fields, text_sep_name(t), k);
  return HSRL_OK;
}

const char *sim_text_path(const sim_text *t) { return t->path; }
int64_t sim_text_line(const sim_text *t) { return t->line_no; }
int64_t sim_text_bytes_read(const sim_text *t) { return t->bytes_read; }
int64_t sim_text_file_size(const sim_text *t) { return t->file_size; }
uint64_t sim_text_checksum(const sim_text *t) { return t->checksum; }

/* 0 ok, 1 empty, 2 not an integer, 3 out of int64 range. */
static int text_span_i64(const char *s, int64_t n, int64_t *out) {
  if (n == 0) return 1;
  int64_t i = 0;
  int neg = 0;
  if (s[0] == '-' || s[0] == '+') neg = s[0] == '-', i = 1;
  if (i == n) return 2;
  uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
  for (; i < n; i++) {
    unsigned d = (unsigned)((unsigned char)s[i] - '0');
    if (d > 9) return 2;
    if (v > (limit - d) / 10) return 3;
    v = v * 10 + d;
  }
  *out = neg ? (int64_t)(0u - v) : (int64_t)v;
  return 0;
}

static hsrl_status text_int_error(const sim_text *t, const char *field, const char *what,
                                  int code, const char *s, int64_t n, int64_t v, int64_t lo,
                                  int64_t hi) {
  char q[48];
  long line = (long)t->line_no;
  if (code == 1) return hsrl_err(HSRL_E_INPUT, t->path, line, field, "%sempty, expected an integer", what);
  if (code == 2)
    return hsrl_err(HSRL_E_INPUT, t->path, line, field, "%snot an integer: '%s'", what, text_quote(q, s, n));
  if (code == 3)
    return hsrl_err(HSRL_E_INPUT, t->path, line, field, "%sinteger out of range: '%s'", what, text_quote(q, s, n));
  return hsrl_err(HSRL_E_INPUT, t->path, line, field, "%s%lld is outside %lld..%lld", what, (long long)v,
                  (long long)lo, (long long)hi);
}

hsrl_status sim_text_parse_i64(const sim_text *t, const char *field, const char *s, int64_t lo,
                               int64_t hi, int64_t *out) {
  int64_t n = (int64_t)strlen(s), v = 0;
  int code = text_span_i64(s, n, &v);
  if (code == 0 && (v < lo || v > hi)) code = 4;
  if (code) return text_int_error(t, field, "", code, s, n, v, lo, hi);
  *out = v;
  return HSRL_OK;
}

/* 0 ok, 1 empty, 2 not a number, 3 not finite. The number must end exactly at s + n. */
static int text_span_f64(const char *s, int64_t n, double *out) {
  if (n == 0) return 1;
  if (!(s[0] == '-' || s[0] == '+' || s[0] == '.' || (s[0] >= '0' && s[0] <= '9'))) return 2;
  char *end = NULL;
  double v = strtod(s, &end);
  if (end != s + n) return 2;
  if (!isfinite(v)) return 3;
  *out = v;
  return 0;
}

static hsrl_status text_num_error(const sim_text *t, const char *field, const char *what, int code,
                                  const char *s, int64_t n) {
  char q[48];
  long line = (long)t->line_no;
  if (code == 1) return hsrl_err(HSRL_E_INPUT, t->path, line, field, "%sempty, expected a number", what);
  if (code == 2)
    return hsrl_err(HSRL_E_INPUT, t->path, line, field, "%snot a number: '%s'", what, text_quote(q, s, n));
  return hsrl_err(HSRL_E_INPUT, t->path, line, field, "%snot finite or out of range: '%s'", what, text_quote(q, s, n));
}

hsrl_status sim_text_parse_f64(const sim_text *t, const char *field, const char *s, double *out) {
  int64_t n = (int64_t)strlen(s);
  int code = text_span_f64(s, n, out);
  return code ? text_num_error(t, field, "", code, s, n) : HSRL_OK;
}

int64_t sim_text_count_items(const char *s, char sep) {
  if (!*s) return 0;
  int64_t n = 1;
  for (const char *p = s; (p = strchr(p, sep)) != NULL; p++) n++;
  return n;
}

/* Reverses out[a, b). */
static void text_reverse(int32_t *out, int64_t a, int64_t b) {
  for (b--; a < b; a++, b--) {
    int32_t x = out[a];
    out[a] = out[b];
    out[b] = x;
  }
}

hsrl_status sim_text_parse_i32_list(const sim_text *t, const char *field, const char *s, char sep,
                                    int64_t lo, int64_t hi, int32_t *out, int64_t cap,
                                    int64_t *n_items) {
  int64_t k = 0;
  *n_items = 0;
  if (*s) {
    for (const char *p = s;; k++) {
      const char *q = strchr(p, sep);
      int64_t n = q ? q - p : (int64_t)strlen(p), v = 0;
      int code = text_span_i64(p, n, &v);
      if (code == 0 && (v < lo || v > hi)) code = 4;
      if (code) {
        char what[64];
        snprintf(what, sizeof what, "item %lld: ", (long long)(k + 1));
        return text_int_error(t, field, what, code, p, n, v, lo, hi);
      }
      if (cap > 0) out[k % cap] = (int32_t)v; /* a ring: the last cap items survive */
      if (!q) break;
      p = q + 1;
    }
    k++;
  }
  if (k > cap && cap > 0) { /* rotate the ring so the oldest kept item comes first */
    int64_t r = k % cap;
    text_reverse(out, 0, r);
    text_reverse(out, r, cap);
    text_reverse(out, 0, cap);
  }
  *n_items = k;
  return HSRL_OK;
}

/* One of out32 / out64 is NULL. */
static hsrl_status text_parse_real_list(const sim_text *t, const char *field, const char *s,
                                        char sep, float *out32, double *out64, int64_t n) {
  int64_t found = sim_text_count_items(s, sep);
  if (found != n)
    return hsrl_err(HSRL_E_INPUT, t->path, (long)t->line_no, field,
                    "expected %lld numbers separated by '%c', found %lld", (long long)n, sep,
                    (long long)found);
  const char *p = s;
  for (int64_t k = 0; k < n; k++) {
    const char *q = strchr(p, sep);
    int64_t len = q ? q - p : (int64_t)strlen(p);
    double v = 0;
    int code = text_span_f64(p, len, &v);
    if (code == 0 && out32 && (v > 3.4e38 || v < -3.4e38)) code = 3; /* beyond float32 */
    if (code) {
      char what[64];
      snprintf(what, sizeof what, "item %lld: ", (long long)(k + 1));
      return text_num_error(t, field, what, code, p, len);
    }
    if (out32) out32[k] = (float)v;
    else out64[k] = v;
    p = q ? q + 1 : p + len;
  }
  return HSRL_OK;
}

hsrl_status sim_text_parse_f32_list(const sim_text *t, const char *field, const char *s, char sep,
                                    float *out, int64_t n) {
  return text_parse_real_list(t, field, s, sep, out, NULL, n);
}

hsrl_status sim_text_parse_f64_list(const sim_text *t, const char *field, const char *s, char sep,
                                    double *out, int64_t n) {
  return text_parse_real_list(t, field, s, sep, NULL, out, n);
}
