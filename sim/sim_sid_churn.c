/* sim_sid_churn.c: new and deleted items with frozen codebooks, `hsrl sid assign`; see
 * sim_sid_churn.h (method.md §5). */
#include "sim/sim_sid_churn.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/io/io_h5.h"
#include "sim/sim_data.h"
#include "sim/sim_urm.h"
#include "sim/sim_urm_train.h"

#define CHURN_MAX_IDS 100000000 /* a list longer than this is a typo ("1-2000000000"), not a catalog */

/* ---- the in-memory operation ---------------------------------------------------------------- */

static hsrl_status churn_validate(const sim_sid_file *f, const int32_t *add_ids, const float *add_vectors,
                                  int64_t n_add, const int32_t *del_ids, int64_t n_del, int64_t *n_new) {
  const int64_t dim = f->cb.dim;
  *n_new = f->n_items;
  for (int64_t t = 0; t < n_add; t++) {
    if (add_ids[t] < 1 || add_ids[t] == INT32_MAX)
      return hsrl_err(HSRL_E_INPUT, NULL, 0, "add", "item id %d: ids are 1..%d", (int)add_ids[t], INT32_MAX - 1);
    if (add_ids[t] > *n_new) *n_new = add_ids[t];
    for (int64_t j = 0; j < dim; j++)
      if (!isfinite(add_vectors[t * dim + j]))
        return hsrl_err(HSRL_E_INPUT, NULL, 0, "add", "item %d: its vector has a non-finite value at %lld",
                        (int)add_ids[t], (long long)j);
  }
  uint8_t *mark = hsrl_calloc((size_t)(*n_new + 1), 1); /* 1 added, 2 deleted */
  hsrl_status st = HSRL_OK;
  for (int64_t t = 0; t < n_add && st == HSRL_OK; t++) {
    int32_t i = add_ids[t];
    if (mark[i]) st = hsrl_err(HSRL_E_INPUT, NULL, 0, "add", "item %d is listed twice", (int)i);
    else if (i <= f->n_items && f->live[i])
      st = hsrl_err(HSRL_E_INPUT, NULL, 0, "add", "item %d is already live (delete it first to give it a new SID)",
                    (int)i);
    mark[i] = 1;
  }
  for (int64_t t = 0; t < n_del && st == HSRL_OK; t++) {
    int32_t i = del_ids[t];
    if (i < 1 || i > f->n_items || !f->live[i]) st = hsrl_err(HSRL_E_INPUT, NULL, 0, "delete", "item %d is not live", (int)i);
    else if (mark[i] == 1) st = hsrl_err(HSRL_E_INPUT, NULL, 0, "delete", "item %d is both added and deleted", (int)i);
    else if (mark[i] == 2) st = hsrl_err(HSRL_E_INPUT, NULL, 0, "delete", "item %d is listed twice", (int)i);
    mark[i] = 2;
  }
  hsrl_free(mark);
  return st;
}

hsrl_status sim_sid_churn_apply(sim_sid_file *f, sim_sid_index *idx, sim_sid_trie *trie, const int32_t *add_ids,
                                const float *add_vectors, int64_t n_add, const int32_t *del_ids, int64_t n_del,
                                float *sq_err) {
  const int L = f->cb.n_levels;
  HSRL_CHECKF(!trie || idx, "a trie is updated from its index: pass both");
  if (idx)
    HSRL_CHECKF(idx->n_levels == L && idx->n_items == f->n_items && idx->generation != 0,
                "the index does not mirror the SID file (L %d vs %d, N %lld vs %lld)", idx->n_levels, L,
                (long long)idx->n_items, (long long)f->n_items);
  int64_t n_new;
  hsrl_status st = churn_validate(f, add_ids, add_vectors, n_add, del_ids, n_del, &n_new);
  if (st != HSRL_OK) return st;
  uint16_t *tok = hsrl_malloc((size_t)(n_add > 0 ? n_add : 1) * (size_t)L * sizeof(uint16_t));
  if (n_add > 0) {
    float *scratch = hsrl_malloc((size_t)sim_sid_encode_scratch_floats(&f->cb, n_add) * sizeof(float));
    sim_sid_codebook_encode(&f->cb, add_vectors, n_add, tok, sq_err, scratch);
    hsrl_free(scratch);
  }
  if (idx) {
    st = sim_sid_index_update(idx, add_ids, tok, n_add, del_ids, n_del);
    HSRL_CHECKF(st == HSRL_OK, "the index does not mirror the SID file: %s", hsrl_err_message());
  }
  if (n_new > f->n_items) {
    f->tokens = hsrl_realloc(f->tokens, (size_t)(n_new + 1) * (size_t)L * sizeof(uint16_t));
    f->live = hsrl_realloc(f->live, (size_t)(n_new + 1));
    memset(f->tokens + (f->n_items + 1) * L, 0, (size_t)(n_new - f->n_items) * (size_t)L * sizeof(uint16_t));
    memset(f->live + f->n_items + 1, 0, (size_t)(n_new - f->n_items));
    f->n_items = n_new;
  }
  for (int64_t t = 0; t < n_del; t++) f->live[del_ids[t]] = 0;
  for (int64_t t = 0; t < n_add; t++) {
    memcpy(f->tokens + (int64_t)add_ids[t] * L, tok + t * L, (size_t)L * sizeof(uint16_t));
    f->live[add_ids[t]] = 1;
  }
  hsrl_free(tok);
  if (trie) sim_sid_trie_build(trie, idx);
  return HSRL_OK;
}

/* ---- id lists ---------------------------------------------------------------------------------- */

static hsrl_status ids_push(int32_t **ids, int64_t *n, int64_t *cap, int64_t lo, int64_t hi, const char *field) {
  if (*n + (hi - lo + 1) > CHURN_MAX_IDS)
    return hsrl_err(HSRL_E_USAGE, NULL, 0, field, "more than %d ids", CHURN_MAX_IDS);
  if (*n + (hi - lo + 1) > *cap) {
    while (*n + (hi - lo + 1) > *cap) *cap = *cap ? 2 * *cap : 64;
    *ids = hsrl_realloc(*ids, (size_t)*cap * sizeof(int32_t));
  }
  for (int64_t i = lo; i <= hi; i++) (*ids)[(*n)++] = (int32_t)i;
  return HSRL_OK;
}

hsrl_status sim_sid_churn_parse_ids(const char *spec, const char *field, int32_t **ids, int64_t *n) {
  *ids = NULL;
  *n = 0;
  char *text = NULL;
  const char *where = "";
  hsrl_status st = HSRL_OK;
  if (spec[0] == '@') { /* the list in a file */
    FILE *fp = fopen(spec + 1, "rb");
    if (!fp) return hsrl_err(HSRL_E_USAGE, spec + 1, 0, field, "cannot open the id list: %s", strerror(errno));
    size_t cap = 4096, len = 0, got;
    text = hsrl_malloc(cap);
    while ((got = fread(text + len, 1, cap - len - 1, fp)) > 0) {
      len += got;
      if (len + 1 == cap) text = hsrl_realloc(text, cap *= 2);
    }
    fclose(fp);
    text[len] = '\0';
    where = spec + 1;
  } else {
    text = hsrl_strdup(spec);
  }
  int64_t cap = 0;
  long line = 1;
  const char *p = text;
  for (;;) {
    while (*p == ',' || isspace((unsigned char)*p)) line += *p++ == '\n';
    if (!*p) break;
    char *end;
    errno = 0;
    long long lo = strtoll(p, &end, 10), hi = lo;
    int ok = end != p && errno == 0;
    if (ok && *end == '-') {
      const char *q = end + 1;
      hi = strtoll(q, &end, 10);
      ok = end != q && errno == 0;
    }
    ok = ok && (*end == '\0' || *end == ',' || isspace((unsigned char)*end));
    if (!ok || lo < 1 || hi < lo || hi > INT32_MAX - 1) {
      const char *stop = p;
      while (*stop && *stop != ',' && !isspace((unsigned char)*stop)) stop++;
      st = hsrl_err(HSRL_E_USAGE, *where ? where : NULL, *where ? line : 0, field,
                    "'%.*s' is not an id (1..%d) or a range a-b with a <= b", (int)(stop - p), p, INT32_MAX - 1);
      break;
    }
    if ((st = ids_push(ids, n, &cap, lo, hi, field)) != HSRL_OK) break;
    p = end;
  }
  hsrl_free(text);
  if (st != HSRL_OK) {
    hsrl_free(*ids);
    *ids = NULL;
    *n = 0;
  }
  return st;
}

/* ---- the command ----------------------------------------------------------------------------- */

static void assign_usage(FILE *f) {
  fprintf(f,
          "usage: hsrl sid assign --sid F.sid.h5 (--vectors NEW.h5 | --data F [--sim F])\n"
          "                       [--add IDS] [--delete IDS] --out F2.sid.h5 [--quiet]\n"
          "\n"
          "Catalog churn with frozen codebooks (method.md section 5): the added items get Semantic IDs\n"
          "from the file's codebooks (greedy residual encoding), the deleted items leave the live\n"
          "catalog. The codebooks, the vocabulary (the policy's output size) and the config hash are\n"
          "copied unchanged; F2 may be F (the file is replaced atomically).\n"
          "\n"
          "options:\n"
          "  --sid FILE      the Semantic-ID file to start from ('hsrl sid build')\n"
          "  --out FILE      the file to write (required)\n"
          "  --add IDS       items to add: ids and ranges (\"7,12,3601-3800\"), @FILE (the same in a\n"
          "                  file, also white-space separated), or \"new\": every id of the vector\n"
          "                  source above the file's last id. An added id must not be live.\n"
          "  --delete IDS    items to delete (ids or @FILE); each must be live\n"
          "  --vectors FILE  the added items' vectors: an HDF5 file with /items/vectors float32\n"
          "                  (rows, dim), row = item id (e.g. a .sid.h5 built with stored vectors)\n"
          "  --data FILE     or take them from a prepared-data file: its raw item features when the\n"
          "                  SID file was built from features,\n"
          "  --sim FILE      or the learned item vectors of this simulator ('hsrl sim train') when it\n"
          "                  was built from the simulator's vectors\n"
          "  --quiet         no summary on stdout\n"
          "  -h, --help      this text\n"
          "\n"
          "Exit status: 0 ok, 2 bad usage or input (the message names file and field), 1 internal.\n");
}

/* Reads the vector source: *vec (rows, dim), hsrl_malloc'd. */
static hsrl_status assign_read_vectors(float **vec, int64_t *rows, int64_t *dim, const char *vectors_path,
                                       const char *data_path, const char *sim_path, const sim_sid_file *f) {
  hsrl_status st = HSRL_OK;
  sim_dataset d;
  memset(&d, 0, sizeof d);
  sim_urm *m = NULL;
  *vec = NULL;
  *rows = *dim = 0;
  if (vectors_path) {
    io_h5 *h = NULL;
    void *data = NULL;
    int nd = 0;
    int64_t dims[IO_H5_MAX_DIMS];
    if ((st = io_h5_open(&h, vectors_path)) != HSRL_OK) return st;
    if (!io_h5_exists(h, "items/vectors")) {
      io_h5_close(h);
      return hsrl_err(HSRL_E_INPUT, vectors_path, 0, "items/vectors", "no such dataset (expected float32 (rows, dim))");
    }
    st = io_h5_read_alloc(h, "items/vectors", IO_H5_F32, &data, &nd, dims);
    io_h5_close(h);
    if (st != HSRL_OK) return st;
    if (nd != 2) {
      hsrl_free(data);
      return hsrl_err(HSRL_E_INPUT, vectors_path, 0, "items/vectors", "has %d dimensions, expected 2", nd);
    }
    *vec = data, *rows = dims[0], *dim = dims[1];
    return HSRL_OK;
  }
  /* from the prepared data: raw features, or the simulator's learned vectors */
  int use_sim = !strcmp(f->vectors, "sim");
  if (use_sim && !sim_path) {
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "sim",
                    "the SID file was built from a simulator's learned item vectors: give --sim FILE "
                    "(or --vectors FILE)");
  }
  if (!use_sim && sim_path)
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "sim", "the SID file was built from raw features ('%s'); drop --sim",
                    f->vectors);
  HSRL_TRY(sim_dataset_read(&d, data_path));
  if (use_sim) {
    HSRL_TRY(sim_urm_load(&m, sim_path, &d));
    *dim = sim_urm_get_config(m)->f;
    *rows = d.n_items + 1;
    *vec = hsrl_malloc((size_t)(*rows * *dim) * sizeof(float));
    sim_urm_item_vectors(m, *vec);
  } else {
    *dim = d.item_dim;
    *rows = d.n_items + 1;
    *vec = hsrl_malloc((size_t)(*rows * *dim) * sizeof(float));
    memcpy(*vec, d.item_features, (size_t)(*rows * *dim) * sizeof(float));
  }
done:
  sim_urm_free(m);
  sim_dataset_free(&d);
  return st;
}

static int assign_option(int argc, char **argv, int *i, const char *name, const char **value) {
  if (strcmp(argv[*i], name)) return 0;
  if (*i + 1 >= argc) return -1;
  *value = argv[++*i];
  return 1;
}

int sim_sid_assign_command(int argc, char **argv) {
  const char *sid_path = NULL, *out_path = NULL, *add_spec = NULL, *del_spec = NULL;
  const char *vectors_path = NULL, *data_path = NULL, *sim_path = NULL;
  int quiet = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      assign_usage(stdout);
      return 0;
    }
    if (!strcmp(argv[i], "--quiet")) {
      quiet = 1;
      continue;
    }
    int m = 0;
    if (!m) m = assign_option(argc, argv, &i, "--sid", &sid_path);
    if (!m) m = assign_option(argc, argv, &i, "--out", &out_path);
    if (!m) m = assign_option(argc, argv, &i, "--add", &add_spec);
    if (!m) m = assign_option(argc, argv, &i, "--delete", &del_spec);
    if (!m) m = assign_option(argc, argv, &i, "--vectors", &vectors_path);
    if (!m) m = assign_option(argc, argv, &i, "--data", &data_path);
    if (!m) m = assign_option(argc, argv, &i, "--sim", &sim_path);
    if (m < 0) {
      fprintf(stderr, "hsrl sid assign: %s needs a value; see 'hsrl sid assign --help'\n", argv[i]);
      return 2;
    }
    if (!m) {
      fprintf(stderr, "hsrl sid assign: unknown argument '%s'; see 'hsrl sid assign --help'\n", argv[i]);
      return 2;
    }
  }
  const char *missing = !sid_path ? "--sid" : !out_path ? "--out" : NULL;
  if (missing) {
    fprintf(stderr, "hsrl sid assign: %s is required; see 'hsrl sid assign --help'\n", missing);
    return 2;
  }
  if (!add_spec && !del_spec) {
    fprintf(stderr, "hsrl sid assign: nothing to do: give --add IDS and/or --delete IDS\n");
    return 2;
  }
  if (add_spec && !vectors_path == !data_path) {
    fprintf(stderr, "hsrl sid assign: --add needs the new items' vectors: give exactly one of --vectors FILE "
                    "and --data FILE\n");
    return 2;
  }
  if (sim_path && !data_path) {
    fprintf(stderr, "hsrl sid assign: --sim goes with --data (the simulator's item vectors need the data)\n");
    return 2;
  }

  hsrl_status st = HSRL_OK;
  sim_sid_file f;
  memset(&f, 0, sizeof f);
  sim_sid_index idx;
  memset(&idx, 0, sizeof idx);
  float *old_vec = NULL, *src = NULL, *add_vec = NULL, *out_vec = NULL, *sq_err = NULL;
  int32_t *add = NULL, *del = NULL;
  int64_t n_add = 0, n_del = 0, old_rows = 0, old_dim = 0, src_rows = 0, src_dim = 0;
  HSRL_TRY(sim_sid_file_read(&f, sid_path));
  HSRL_TRY(sim_sid_file_read_vectors(&old_vec, &old_rows, &old_dim, sid_path));
  if (old_vec && (old_rows != f.n_items + 1 || old_dim != f.cb.dim)) {
    st = hsrl_err(HSRL_E_INPUT, sid_path, 0, "items/vectors", "shape (%lld, %lld); expected (%lld, %lld)",
                  (long long)old_rows, (long long)old_dim, (long long)(f.n_items + 1), (long long)f.cb.dim);
    goto done;
  }
  const int64_t n_before = f.n_items;
  const int L = f.cb.n_levels;
  HSRL_TRY(sim_sid_index_init(&idx, L, f.cb.vocab, f.n_items, f.tokens, f.live, 0));
  const int64_t live_before = idx.n_live;
  if (del_spec) HSRL_TRY(sim_sid_churn_parse_ids(del_spec, "delete", &del, &n_del));
  if (add_spec) {
    HSRL_TRY(assign_read_vectors(&src, &src_rows, &src_dim, vectors_path, data_path, sim_path, &f));
    const char *src_name = vectors_path ? vectors_path : sim_path ? sim_path : data_path;
    if (src_dim != f.cb.dim) {
      st = hsrl_err(HSRL_E_INPUT, src_name, 0, vectors_path ? "items/vectors" : "vectors",
                    "vectors of width %lld; the codebooks are %lld wide", (long long)src_dim, (long long)f.cb.dim);
      goto done;
    }
    if (!strcmp(add_spec, "new")) {
      if (src_rows - 1 > n_before) {
        n_add = src_rows - 1 - n_before;
        add = hsrl_malloc((size_t)n_add * sizeof(int32_t));
        for (int64_t t = 0; t < n_add; t++) add[t] = (int32_t)(n_before + 1 + t);
      }
    } else {
      HSRL_TRY(sim_sid_churn_parse_ids(add_spec, "add", &add, &n_add));
    }
    add_vec = hsrl_malloc((size_t)((n_add > 0 ? n_add : 1) * src_dim) * sizeof(float));
    for (int64_t t = 0; t < n_add; t++) {
      if (add[t] >= src_rows) {
        st = hsrl_err(HSRL_E_INPUT, src_name, 0, "add", "item %d: the vector source has rows for ids 0..%lld only",
                      (int)add[t], (long long)(src_rows - 1));
        goto done;
      }
      memcpy(add_vec + t * src_dim, src + (int64_t)add[t] * src_dim, (size_t)src_dim * sizeof(float));
    }
  }
  sq_err = hsrl_malloc((size_t)(n_add > 0 ? n_add : 1) * sizeof(float));
  HSRL_TRY(sim_sid_churn_apply(&f, &idx, NULL, add, add_vec, n_add, del, n_del, sq_err));
  if (old_vec) { /* keep the stored vectors: old rows, then the added items' rows */
    out_vec = hsrl_calloc((size_t)((f.n_items + 1) * f.cb.dim), sizeof(float));
    memcpy(out_vec, old_vec, (size_t)(old_rows * old_dim) * sizeof(float));
    for (int64_t t = 0; t < n_add; t++)
      memcpy(out_vec + (int64_t)add[t] * f.cb.dim, add_vec + t * f.cb.dim, (size_t)f.cb.dim * sizeof(float));
  }
  char note[1024];
  snprintf(note, sizeof note, "hsrl sid assign: from %s, %lld items added, %lld deleted; codebooks unchanged",
           sid_path, (long long)n_add, (long long)n_del);
  HSRL_TRY(sim_sid_file_write_ex(&f, out_vec, note, out_path));
  if (!quiet) {
    double mean_err = 0.0;
    for (int64_t t = 0; t < n_add; t++) mean_err += (double)sq_err[t];
    printf("sid assign: %s -> %s\n", sid_path, out_path);
    printf("  added %lld (%lld new ids), deleted %lld; live items %lld -> %lld, ids 1..%lld\n", (long long)n_add,
           (long long)(f.n_items - n_before), (long long)n_del, (long long)live_before, (long long)idx.n_live,
           (long long)f.n_items);
    if (n_add > 0) printf("  added items' mean squared residual |r_L|^2: %.6g\n", mean_err / (double)n_add);
    printf("  codebooks unchanged: %d levels, vocab", L);
    for (int l = 0; l < L; l++) printf("%s%lld", l ? "," : " ", (long long)f.cb.vocab[l]);
    printf(" (the policy's output size), config hash %016llx\n  ", (unsigned long long)f.config_hash);
    sim_sid_index_report(&idx, stdout, 3);
  }
done:
  if (st != HSRL_OK) fprintf(stderr, "hsrl sid assign: %s\n", hsrl_err_message());
  hsrl_free(old_vec);
  hsrl_free(src);
  hsrl_free(add_vec);
  hsrl_free(out_vec);
  hsrl_free(sq_err);
  hsrl_free(add);
  hsrl_free(del);
  sim_sid_index_free(&idx);
  sim_sid_file_free(&f);
  return hsrl_status_exit_code(st);
}
