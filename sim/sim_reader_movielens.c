/* sim_reader_movielens.c: see sim_reader_movielens.h (datasets.md "MovieLens"; method.md §2).
 *
 * Order of work: the item file and the user file go into small tables (raw id, line, features),
 * which are then sorted by raw id so that a rating's ids are found by binary search and a
 * duplicate id is caught with both line numbers. The ratings stream in (32 bytes each: user and
 * movie as positions in those sorted tables, rating, timestamp, line), get sorted once by
 * (user, timestamp, movie, line), and are then cut into slates user by user. Positions in a table
 * sorted by raw id keep the raw-id order, so sorting by position is sorting by raw id. */
#include "sim/sim_reader_movielens.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/hsrl_progress.h"
#include "sim/sim_text.h"

#define ML_N_GENRES_1M 18
#define ML_N_GENRES_100K 19
#define ML_N_YEAR_BUCKETS 9
#define ML_N_AGE_GROUPS 7
#define ML_N_OCC_1M 21
#define ML_MAX_OCC 1024
#define ML_MAX_RAW_ID 2147483647

static const char *const ml_genres_1m[ML_N_GENRES_1M] = {
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical",
    "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"};

/* Upper ends of the release-year buckets (datasets.md). */
static const int ml_year_hi[ML_N_YEAR_BUCKETS] = {1939, 1949, 1959, 1969, 1979,
                                                  1989, 1994, 1997, 2000};
static const int ml_ages_1m[ML_N_AGE_GROUPS] = {1, 18, 25, 35, 45, 50, 56};

static const char *const ml1m_movie_fields[] = {"MovieID", "Title", "Genres"};
static const char *const ml1m_user_fields[] = {"UserID", "Gender", "Age", "Occupation", "Zip-code"};
static const char *const ml1m_rating_fields[] = {"UserID", "MovieID", "Rating", "Timestamp"};
static const char *const ml100k_item_fields[] = {
    "movie id", "movie title", "release date", "video release date", "IMDb URL",
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western"};
static const char *const ml100k_user_fields[] = {"user id", "age", "gender", "occupation", "zip code"};
static const char *const ml100k_occ_fields[] = {"occupation"};
static const char *const ml100k_rating_fields[] = {"user id", "item id", "rating", "timestamp"};

/* Items or users: rows in file order until ml_table_sort() puts them in raw-id order. */
typedef struct ml_table {
  const char *what;     /* "movie", "user" */
  const char *id_field; /* the id's field name, for messages */
  char path[512];
  int64_t n, cap, dim;
  int64_t *raw;  /* (n) */
  int64_t *line; /* (n) */
  float *feat;   /* (n, dim) */
} ml_table;

typedef struct ml_rating {
  int64_t ts;
  int64_t line;
  int32_t user;  /* position in the users table (raw-id order) */
  int32_t movie; /* position in the movies table (raw-id order) */
  int32_t rating;
} ml_rating;

typedef struct ml_key {
  int64_t raw, row;
} ml_key;

static void ml_table_init(ml_table *t, const char *what, const char *id_field, const char *path,
                          int64_t dim) {
  memset(t, 0, sizeof *t);
  t->what = what;
  t->id_field = id_field;
  snprintf(t->path, sizeof t->path, "%s", path);
  t->dim = dim;
}

static void ml_table_free(ml_table *t) {
  hsrl_free(t->raw);
  hsrl_free(t->line);
  hsrl_free(t->feat);
  memset(t, 0, sizeof *t);
}

/* Appends a zeroed row and returns its features. */
static float *ml_table_add(ml_table *t, int64_t raw, int64_t line) {
  if (t->n == t->cap) {
    t->cap = t->cap ? 2 * t->cap : 1024;
    t->raw = hsrl_realloc(t->raw, (size_t)t->cap * sizeof *t->raw);
    t->line = hsrl_realloc(t->line, (size_t)t->cap * sizeof *t->line);
    t->feat = hsrl_realloc(t->feat, (size_t)(t->cap * t->dim) * sizeof *t->feat);
  }
  t->raw[t->n] = raw;
  t->line[t->n] = line;
  float *f = t->feat + t->n * t->dim;
  memset(f, 0, (size_t)t->dim * sizeof *f);
  t->n++;
  return f;
}

static int ml_key_cmp(const void *a, const void *b) {
  const ml_key *x = a, *y = b;
  if (x->raw != y->raw) return x->raw < y->raw ? -1 : 1;
  return (x->row > y->row) - (x->row < y->row);
}

/* Puts the rows in ascending raw-id order; a repeated id is an input error naming both lines. */
static hsrl_status ml_table_sort(ml_table *t) {
  hsrl_status st = HSRL_OK;
  ml_key *keys = hsrl_malloc((size_t)(t->n ? t->n : 1) * sizeof *keys);
  int64_t *raw = hsrl_malloc((size_t)(t->n ? t->n : 1) * sizeof *raw);
  int64_t *line = hsrl_malloc((size_t)(t->n ? t->n : 1) * sizeof *line);
  float *feat = hsrl_malloc((size_t)(t->n * t->dim + 1) * sizeof *feat);
  for (int64_t i = 0; i < t->n; i++) keys[i].raw = t->raw[i], keys[i].row = i;
  qsort(keys, (size_t)t->n, sizeof *keys, ml_key_cmp);
  for (int64_t i = 0; i < t->n; i++) {
    int64_t r = keys[i].row;
    if (i > 0 && keys[i].raw == keys[i - 1].raw) {
      st = hsrl_err(HSRL_E_INPUT, t->path, (long)t->line[r], t->id_field,
                    "%s id %lld appears again (first at line %lld)", t->what,
                    (long long)keys[i].raw, (long long)t->line[keys[i - 1].row]);
      break;
    }
    raw[i] = t->raw[r];
    line[i] = t->line[r];
    memcpy(feat + i * t->dim, t->feat + r * t->dim, (size_t)t->dim * sizeof *feat);
  }
  hsrl_free(keys);
  hsrl_free(t->raw);
  hsrl_free(t->line);
  hsrl_free(t->feat);
  t->raw = raw, t->line = line, t->feat = feat, t->cap = t->n;
  return st;
}

/* Position of raw in the sorted table, or -1. */
static int64_t ml_table_find(const ml_table *t, int64_t raw) {
  int64_t lo = 0, hi = t->n;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (t->raw[mid] < raw) lo = mid + 1;
    else hi = mid;
  }
  return lo < t->n && t->raw[lo] == raw ? lo : -1;
}

static int ml_year_bucket(int64_t year) {
  for (int b = 0; b < ML_N_YEAR_BUCKETS; b++)
    if (year <= ml_year_hi[b]) return b;
  return -1;
}

static hsrl_status ml_set_year(const sim_text *tx, const char *field, int64_t year, float *bucket) {
  int b = ml_year_bucket(year);
  if (b < 0)
    return hsrl_err(HSRL_E_INPUT, sim_text_path(tx), (long)sim_text_line(tx), field,
                    "year %lld is after 2000, the last release-year bucket (datasets.md)",
                    (long long)year);
  bucket[b] = 1.0f;
  return HSRL_OK;
}

/* Opens dir/name with the format's fields; records the source in prov. */
static hsrl_status ml_open(sim_text **tx, sim_provenance *prov, const char *dir, const char *name,
                           const char *sep, const char *const *fields, int n_fields) {
  char path[1024];
  int n = snprintf(path, sizeof path, "%s/%s", dir, name);
  if (n < 0 || (size_t)n >= sizeof path || (size_t)n >= sizeof prov->source_path[0])
    return hsrl_err(HSRL_E_USAGE, dir, 0, NULL, "input path too long");
  HSRL_CHECK(prov->n_sources < SIM_DATA_MAX_SOURCES);
  hsrl_status st = sim_text_open(tx, path, SIM_READER_MOVIELENS_MAX_LINE);
  if (st != HSRL_OK) return st;
  sim_text_set_fields(*tx, sep, fields, n_fields);
  memcpy(prov->source_path[prov->n_sources], path, (size_t)n + 1); /* n < its size: checked above */
  return HSRL_OK;
}

/* Closes a file read to its end, recording its size and checksum (the next source slot). */
static void ml_close(sim_text *tx, sim_provenance *prov) {
  int k = prov->n_sources++;
  prov->source_bytes[k] = sim_text_bytes_read(tx);
  sim_text_checksum_hex(sim_text_checksum(tx), prov->source_checksum[k]);
  prov->n_lines_read += sim_text_line(tx);
  sim_text_close(tx);
}

static hsrl_status ml_empty_file(const sim_text *tx, const char *field) {
  return hsrl_err(HSRL_E_INPUT, sim_text_path(tx), 1, field, "empty file: no data lines");
}

static hsrl_status ml_empty_line(const sim_text *tx, const char *field) {
  return hsrl_err(HSRL_E_INPUT, sim_text_path(tx), (long)sim_text_line(tx), field,
                  "empty line (expected a data line)");
}

/* ---- ML-1M ---------------------------------------------------------------------------- */

/* movies.dat: MovieID::Title (Year)::Genre|Genre|... */
static hsrl_status ml1m_read_movies(ml_table *movies, sim_provenance *prov, const char *dir) {
  sim_text *tx = NULL;
  hsrl_status st = ml_open(&tx, prov, dir, "movies.dat", "::", ml1m_movie_fields, 3);
  if (st != HSRL_OK) return st;
  ml_table_init(movies, "movie", "MovieID", sim_text_path(tx), ML_N_GENRES_1M + ML_N_YEAR_BUCKETS);
  char *line, *f[3];
  int64_t len, id;
  for (;;) {
    HSRL_TRY(sim_text_next(tx, &line, &len));
    if (!line) break;
    if (len == 0) HSRL_TRY(ml_empty_line(tx, "MovieID"));
    HSRL_TRY(sim_text_split(tx, line, f));
    HSRL_TRY(sim_text_parse_i64(tx, "MovieID", f[0], 1, ML_MAX_RAW_ID, &id));
    float *feat = ml_table_add(movies, id, sim_text_line(tx));
    /* The year is the "(YYYY)" ending the title; other parentheses may come before it. */
    const char *title = f[1];
    int64_t n = (int64_t)strlen(title);
    while (n > 0 && title[n - 1] == ' ') n--;
    int ok = n >= 6 && title[n - 1] == ')' && title[n - 6] == '(';
    for (int64_t i = n - 5; ok && i < n - 1; i++) ok = title[i] >= '0' && title[i] <= '9';
    if (!ok)
      HSRL_TRY(hsrl_err(HSRL_E_INPUT, sim_text_path(tx), (long)sim_text_line(tx), "Title",
                        "does not end with the release year as \"(YYYY)\""));
    int64_t year = strtol(title + n - 5, NULL, 10);
    HSRL_TRY(ml_set_year(tx, "Title", year, feat + ML_N_GENRES_1M));
    for (char *g = f[2];;) {
      char *bar = strchr(g, '|');
      if (bar) *bar = '\0';
      int k = 0;
      while (k < ML_N_GENRES_1M && strcmp(g, ml_genres_1m[k])) k++;
      if (k == ML_N_GENRES_1M)
        HSRL_TRY(hsrl_err(HSRL_E_INPUT, sim_text_path(tx), (long)sim_text_line(tx), "Genres",
                          "unknown genre '%.40s' (the 18 of datasets.md: Action, Adventure, ..., "
                          "Western)", g));
      feat[k] = 1.0f;
      if (!bar) break;
      g = bar + 1;
    }
  }
  if (movies->n == 0) HSRL_TRY(ml_empty_file(tx, "MovieID"));
  ml_close(tx, prov);
  tx = NULL;
  st = ml_table_sort(movies);
done:
  sim_text_close(tx);
  return st;
}

/* users.dat: UserID::Gender::Age::Occupation::Zip-code */
static hsrl_status ml1m_read_users(ml_table *users, sim_provenance *prov, const char *dir) {
  sim_text *tx = NULL;
  hsrl_status st = ml_open(&tx, prov, dir, "users.dat", "::", ml1m_user_fields, 5);
  if (st != HSRL_OK) return st;
  ml_table_init(users, "user", "UserID", sim_text_path(tx), 2 + ML_N_AGE_GROUPS + ML_N_OCC_1M);
  char *line, *f[5];
  int64_t len, id, age, occ;
  for (;;) {
    HSRL_TRY(sim_text_next(tx, &line, &len));
    if (!line) break;
    if (len == 0) HSRL_TRY(ml_empty_line(tx, "UserID"));
    HSRL_TRY(sim_text_split(tx, line, f));
    HSRL_TRY(sim_text_parse_i64(tx, "UserID", f[0], 1, ML_MAX_RAW_ID, &id));
    float *feat = ml_table_add(users, id, sim_text_line(tx));
    if (strcmp(f[1], "F") && strcmp(f[1], "M"))
      HSRL_TRY(hsrl_err(HSRL_E_INPUT, sim_text_path(tx), (long)sim_text_line(tx), "Gender",
                        "expected F or M, found '%.40s'", f[1]));
    feat[f[1][0] == 'F' ? 0 : 1] = 1.0f;
    HSRL_TRY(sim_text_parse_i64(tx, "Age", f[2], 1, 56, &age));
    int a = 0;
    while (a < ML_N_AGE_GROUPS && ml_ages_1m[a] != age) a++;
    if (a == ML_N_AGE_GROUPS)
      HSRL_TRY(hsrl_err(HSRL_E_INPUT, sim_text_path(tx), (long)sim_text_line(tx), "Age",
                        "%lld is not an ML-1M age group (1, 18, 25, 35, 45, 50, 56)", (long long)age));
    feat[2 + a] = 1.0f;
    HSRL_TRY(sim_text_parse_i64(tx, "Occupation", f[3], 0, ML_N_OCC_1M - 1, &occ));
    feat[2 + ML_N_AGE_GROUPS + occ] = 1.0f;
  }
  if (users->n == 0) HSRL_TRY(ml_empty_file(tx, "UserID"));
  ml_close(tx, prov);
  tx = NULL;
  st = ml_table_sort(users);
done:
  sim_text_close(tx);
  return st;
}

/* ---- ML-100K -------------------------------------------------------------------------- */

/* u.item: id|title|release date|video release date|IMDb URL|19 genre flags */
static hsrl_status ml100k_read_items(ml_table *movies, sim_provenance *prov, const char *dir) {
  sim_text *tx = NULL;
  hsrl_status st = ml_open(&tx, prov, dir, "u.item", "|", ml100k_item_fields, 5 + ML_N_GENRES_100K);
  if (st != HSRL_OK) return st;
  ml_table_init(movies, "movie", "movie id", sim_text_path(tx), ML_N_GENRES_100K + ML_N_YEAR_BUCKETS);
  char *line, *f[5 + ML_N_GENRES_100K];
  int64_t len, id, flag;
  for (;;) {
    HSRL_TRY(sim_text_next(tx, &line, &len));
    if (!line) break;
    if (len == 0) HSRL_TRY(ml_empty_line(tx, "movie id"));
    HSRL_TRY(sim_text_split(tx, line, f));
    HSRL_TRY(sim_text_parse_i64(tx, "movie id", f[0], 1, ML_MAX_RAW_ID, &id));
    float *feat = ml_table_add(movies, id, sim_text_line(tx));
    for (int g = 0; g < ML_N_GENRES_100K; g++) {
      HSRL_TRY(sim_text_parse_i64(tx, ml100k_item_fields[5 + g], f[5 + g], 0, 1, &flag));
      feat[g] = (float)flag;
    }
    /* release date dd-Mon-yyyy, or empty: then no year bucket is set */
    const char *date = f[2];
    int64_t n = (int64_t)strlen(date);
    if (n > 0) {
      const char *dash = strrchr(date, '-');
      int ok = dash && (date + n) - (dash + 1) == 4;
      for (const char *p = dash ? dash + 1 : date; ok && *p; p++) ok = *p >= '0' && *p <= '9';
      if (!ok)
        HSRL_TRY(hsrl_err(HSRL_E_INPUT, sim_text_path(tx), (long)sim_text_line(tx), "release date",
                          "expected dd-Mon-yyyy or nothing, found '%.40s'", date));
      HSRL_TRY(ml_set_year(tx, "release date", strtol(dash + 1, NULL, 10), feat + ML_N_GENRES_100K));
    }
  }
  if (movies->n == 0) HSRL_TRY(ml_empty_file(tx, "movie id"));
  ml_close(tx, prov);
  tx = NULL;
  st = ml_table_sort(movies);
done:
  sim_text_close(tx);
  return st;
}

/* u.occupation: one word per line; their order is the one-hot order. */
static hsrl_status ml100k_read_occupations(char (*occ)[64], int *n_occ, sim_provenance *prov,
                                           const char *dir) {
  sim_text *tx = NULL;
  hsrl_status st = ml_open(&tx, prov, dir, "u.occupation", "|", ml100k_occ_fields, 1);
  if (st != HSRL_OK) return st;
  char *line, *f[1];
  int64_t len;
  *n_occ = 0;
  for (;;) {
    HSRL_TRY(sim_text_next(tx, &line, &len));
    if (!line) break;
    if (len == 0) HSRL_TRY(ml_empty_line(tx, "occupation"));
    HSRL_TRY(sim_text_split(tx, line, f));
    if (len >= 64 || *n_occ == ML_MAX_OCC)
      HSRL_TRY(hsrl_err(HSRL_E_INPUT, sim_text_path(tx), (long)sim_text_line(tx), "occupation",
                        len >= 64 ? "longer than 63 bytes" : "more than %d occupations", ML_MAX_OCC));
    for (int k = 0; k < *n_occ; k++)
      if (!strcmp(occ[k], f[0]))
        HSRL_TRY(hsrl_err(HSRL_E_INPUT, sim_text_path(tx), (long)sim_text_line(tx), "occupation",
                          "'%s' appears twice", f[0]));
    snprintf(occ[(*n_occ)++], 64, "%s", f[0]);
  }
  if (*n_occ == 0) HSRL_TRY(ml_empty_file(tx, "occupation"));
  ml_close(tx, prov);
  tx = NULL;
done:
  sim_text_close(tx);
  return st;
}

/* ML-100K ages into ML-1M's 7 groups: <18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+. */
static int ml100k_age_group(int64_t age) {
  static const int lo[ML_N_AGE_GROUPS] = {0, 18, 25, 35, 45, 50, 56};
  int g = 0;
  while (g + 1 < ML_N_AGE_GROUPS && age >= lo[g + 1]) g++;
  return g;
}

/* u.user: user id|age|gender|occupation|zip code */
static hsrl_status ml100k_read_users(ml_table *users, sim_provenance *prov, const char *dir,
                                     char (*occ)[64], int n_occ) {
  sim_text *tx = NULL;
  hsrl_status st = ml_open(&tx, prov, dir, "u.user", "|", ml100k_user_fields, 5);
  if (st != HSRL_OK) return st;
  ml_table_init(users, "user", "user id", sim_text_path(tx), 2 + ML_N_AGE_GROUPS + n_occ);
  char *line, *f[5];
  int64_t len, id, age;
  for (;;) {
    HSRL_TRY(sim_text_next(tx, &line, &len));
    if (!line) break;
    if (len == 0) HSRL_TRY(ml_empty_line(tx, "user id"));
    HSRL_TRY(sim_text_split(tx, line, f));
    HSRL_TRY(sim_text_parse_i64(tx, "user id", f[0], 1, ML_MAX_RAW_ID, &id));
    float *feat = ml_table_add(users, id, sim_text_line(tx));
    HSRL_TRY(sim_text_parse_i64(tx, "age", f[1], 0, 150, &age));
    if (strcmp(f[2], "F") && strcmp(f[2], "M"))
      HSRL_TRY(hsrl_err(HSRL_E_INPUT, sim_text_path(tx), (long)sim_text_line(tx), "gender",
                        "expected F or M, found '%.40s'", f[2]));
    feat[f[2][0] == 'F' ? 0 : 1] = 1.0f;
    feat[2 + ml100k_age_group(age)] = 1.0f;
    int k = 0;
    while (k < n_occ && strcmp(occ[k], f[3])) k++;
    if (k == n_occ)
      HSRL_TRY(hsrl_err(HSRL_E_INPUT, sim_text_path(tx), (long)sim_text_line(tx), "occupation",
                        "'%.40s' is not in u.occupation", f[3]));
    feat[2 + ML_N_AGE_GROUPS + k] = 1.0f;
  }
  if (users->n == 0) HSRL_TRY(ml_empty_file(tx, "user id"));
  ml_close(tx, prov);
  tx = NULL;
  st = ml_table_sort(users);
done:
  sim_text_close(tx);
  return st;
}

/* ---- ratings (both layouts) ------------------------------------------------------------ */

static hsrl_status ml_read_ratings(ml_rating **out, int64_t *n_out, sim_provenance *prov,
                                   const char *dir, sim_reader_movielens_layout layout,
                                   const ml_table *movies, const ml_table *users) {
  const int is_1m = layout == SIM_READER_MOVIELENS_1M;
  const char *const *names = is_1m ? ml1m_rating_fields : ml100k_rating_fields;
  sim_text *tx = NULL;
  hsrl_status st = ml_open(&tx, prov, dir, is_1m ? "ratings.dat" : "u.data", is_1m ? "::" : "\t",
                           names, 4);
  if (st != HSRL_OK) return st;
  hsrl_progress prog;
  hsrl_progress_init(&prog, "reading ratings (bytes)", sim_text_file_size(tx));
  ml_rating *r = NULL;
  int64_t n = 0, cap = 0, len, user_raw, movie_raw, rating, ts;
  char *line, *f[4];
  for (;;) {
    HSRL_TRY(sim_text_next(tx, &line, &len));
    if (!line) break;
    if (len == 0) HSRL_TRY(ml_empty_line(tx, names[0]));
    HSRL_TRY(sim_text_split(tx, line, f));
    HSRL_TRY(sim_text_parse_i64(tx, names[0], f[0], 1, ML_MAX_RAW_ID, &user_raw));
    HSRL_TRY(sim_text_parse_i64(tx, names[1], f[1], 1, ML_MAX_RAW_ID, &movie_raw));
    HSRL_TRY(sim_text_parse_i64(tx, names[2], f[2], 1, 5, &rating));
    HSRL_TRY(sim_text_parse_i64(tx, names[3], f[3], INT64_MIN, INT64_MAX, &ts));
    int64_t u = ml_table_find(users, user_raw), m = ml_table_find(movies, movie_raw);
    if (u < 0)
      HSRL_TRY(hsrl_err(HSRL_E_INPUT, sim_text_path(tx), (long)sim_text_line(tx), names[0],
                        "user %lld is not in %s", (long long)user_raw, users->path));
    if (m < 0)
      HSRL_TRY(hsrl_err(HSRL_E_INPUT, sim_text_path(tx), (long)sim_text_line(tx), names[1],
                        "movie %lld is not in %s", (long long)movie_raw, movies->path));
    if (n == cap) {
      cap = cap ? 2 * cap : 65536;
      r = hsrl_realloc(r, (size_t)cap * sizeof *r);
    }
    r[n].ts = ts;
    r[n].line = sim_text_line(tx);
    r[n].user = (int32_t)u;
    r[n].movie = (int32_t)m;
    r[n].rating = (int32_t)rating;
    n++;
    if ((n & 65535) == 0) hsrl_progress_update(&prog, sim_text_bytes_read(tx), NULL);
  }
  if (n == 0) HSRL_TRY(ml_empty_file(tx, names[0]));
  prog.done = sim_text_bytes_read(tx);
  char note[64];
  snprintf(note, sizeof note, "%lld ratings", (long long)n);
  hsrl_progress_finish(&prog, note);
  ml_close(tx, prov);
  tx = NULL;
  *out = r;
  *n_out = n;
  r = NULL;
done:
  hsrl_free(r);
  sim_text_close(tx);
  return st;
}

static int ml_rating_cmp(const void *a, const void *b) {
  const ml_rating *x = a, *y = b;
  if (x->user != y->user) return x->user < y->user ? -1 : 1;
  if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
  if (x->movie != y->movie) return x->movie < y->movie ? -1 : 1;
  return (x->line > y->line) - (x->line < y->line);
}

/* Sorted ratings -> the dataset (items, users, records, split), datasets.md steps 1-4. */
static void ml_build(sim_dataset *d, sim_provenance *prov, const ml_rating *r, int64_t n_ratings,
                     const ml_table *movies, const ml_table *users) {
  const int64_t K = SIM_READER_MOVIELENS_SLATE, H = SIM_READER_MOVIELENS_HISTORY;
  int32_t *item_id = hsrl_calloc((size_t)movies->n, sizeof *item_id); /* position -> 1..N, 0 unused */
  int64_t *first = hsrl_calloc((size_t)users->n + 1, sizeof *first);  /* ratings of user u: [first[u], first[u+1]) */
  for (int64_t i = 0; i < n_ratings; i++) item_id[r[i].movie] = 1, first[r[i].user + 1]++;
  int64_t n_items = 0, n_users = 0, n_records = 0, n_train = 0, max_count = 0;
  for (int64_t m = 0; m < movies->n; m++)
    if (item_id[m]) item_id[m] = (int32_t)++n_items;
  for (int64_t u = 0; u < users->n; u++) {
    int64_t c = first[u + 1], s = c / K;
    n_users += s > 0;
    n_records += s;
    n_train += 4 * s / 5; /* floor(0.8 s) exactly */
    prov->n_dropped += c - s * K;
    if (c > max_count) max_count = c;
    first[u + 1] += first[u];
  }
  sim_dataset_alloc(d, n_items, movies->dim, n_users, users->dim, n_records, K, H);
  for (int64_t m = 0; m < movies->n; m++) {
    int32_t id = item_id[m];
    if (!id) continue;
    memcpy(d->item_features + id * d->item_dim, movies->feat + m * movies->dim,
           (size_t)movies->dim * sizeof(float));
    d->item_raw_id[id] = movies->raw[m];
  }
  int32_t *pos = hsrl_malloc((size_t)(max_count ? max_count : 1) * sizeof *pos); /* a user's positives */
  int64_t rec = 0, uid = 0;
  d->n_train = n_train;
  d->n_test = n_records - n_train;
  int64_t i_train = 0, i_test = 0;
  for (int64_t u = 0; u < users->n; u++) {
    const ml_rating *ur = r + first[u];
    const int64_t n_slates = (first[u + 1] - first[u]) / K, n_tr = 4 * n_slates / 5;
    if (n_slates == 0) continue;
    uid++;
    memcpy(d->user_features + uid * d->user_dim, users->feat + u * users->dim,
           (size_t)users->dim * sizeof(float));
    d->user_raw_id[uid] = users->raw[u];
    int64_t n_pos = 0;
    for (int64_t j = 0; j < n_slates; j++, rec++) {
      d->rec_user[rec] = (int32_t)uid;
      d->rec_time[rec] = ur[j * K].ts;
      int64_t h = n_pos < H ? n_pos : H;
      int32_t *hist = d->rec_history + rec * H;
      memcpy(hist + (H - h), pos + (n_pos - h), (size_t)h * sizeof *hist); /* left-padded with 0 */
      for (int64_t k = 0; k < K; k++) {
        const ml_rating *x = ur + j * K + k;
        int32_t id = item_id[x->movie];
        d->rec_slate[rec * K + k] = id;
        d->rec_clicks[rec * K + k] = x->rating > 3;
        if (x->rating > 3) pos[n_pos++] = id;
      }
      if (j < n_tr) d->train_idx[i_train++] = rec;
      else d->test_idx[i_test++] = rec;
    }
  }
  HSRL_CHECK(rec == n_records && uid == n_users && i_train == d->n_train && i_test == d->n_test);
  hsrl_free(pos);
  hsrl_free(item_id);
  hsrl_free(first);
}

hsrl_status sim_reader_movielens_read(sim_dataset *d, sim_provenance *prov, const char *dir,
                                      sim_reader_movielens_layout layout) {
  memset(d, 0, sizeof *d);
  memset(prov, 0, sizeof *prov);
  const int is_1m = layout == SIM_READER_MOVIELENS_1M;
  ml_table movies, users;
  memset(&movies, 0, sizeof movies);
  memset(&users, 0, sizeof users);
  ml_rating *r = NULL;
  int64_t n_ratings = 0;
  char (*occ)[64] = NULL;
  hsrl_status st = HSRL_OK;
  if (is_1m) {
    HSRL_TRY(ml1m_read_movies(&movies, prov, dir));
    HSRL_TRY(ml1m_read_users(&users, prov, dir));
  } else {
    int n_occ = 0;
    occ = hsrl_malloc(ML_MAX_OCC * sizeof *occ);
    HSRL_TRY(ml100k_read_items(&movies, prov, dir));
    HSRL_TRY(ml100k_read_occupations(occ, &n_occ, prov, dir));
    HSRL_TRY(ml100k_read_users(&users, prov, dir, occ, n_occ));
  }
  HSRL_TRY(ml_read_ratings(&r, &n_ratings, prov, dir, layout, &movies, &users));
  qsort(r, (size_t)n_ratings, sizeof *r, ml_rating_cmp);
  ml_build(d, prov, r, n_ratings, &movies, &users);
  if (d->n_records == 0) {
    st = hsrl_err(HSRL_E_INPUT, prov->source_path[prov->n_sources - 1], 0, NULL,
                  "no user has %d ratings, so there is not one slate", SIM_READER_MOVIELENS_SLATE);
    goto done;
  }
  sim_text_basename(d->name, sizeof d->name, dir);
  snprintf(d->source_format, sizeof d->source_format, "%s", is_1m ? "ml1m" : "ml100k");
  snprintf(prov->protocol, sizeof prov->protocol, "datasets.md v1: K=%d H=%d, sort (time, movie), 0.8/user",
           SIM_READER_MOVIELENS_SLATE, SIM_READER_MOVIELENS_HISTORY);
done:
  if (st != HSRL_OK) sim_dataset_free(d);
  ml_table_free(&movies);
  ml_table_free(&users);
  hsrl_free(r);
  hsrl_free(occ);
  return st;
}
