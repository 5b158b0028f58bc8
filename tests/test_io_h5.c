/* test_io_h5.c: the HDF5 helpers and the zstd HDF5 filter (common/io/io_h5.h, io_h5zstd.h).
 *
 * Round trips of every element type and shape, compressed and not; atomic create/commit/close;
 * attributes and stamps; row-range datasets; errors that name the file and dataset; the filter as
 * the outside world sees it: h5dump with HDF5_PLUGIN_PATH=<build>/plugins prints our compressed
 * data (and cannot without the plugin), h5py + hdf5plugin read our files, and we read files that
 * h5py and the zstd command-line tool wrote; and damaged files (truncated, flipped bytes,
 * not HDF5, missing) give a clear error, never a crash. The outside-world tests skip with a
 * message when h5dump or python3 with h5py/hdf5plugin is not installed. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_rng.h"
#include "common/io/io_h5.h"
#include "tests/test_harness.h"

/* libhdf5 leaks a little memory on some error paths when it meets damaged metadata (the flipped
 * byte tests); it is not ours to fix, so the leak checker of the sanitizer build ignores
 * allocations made inside libhdf5. Our own HDF5 handles are checked with io_h5_open_handles()
 * instead, after every test. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libhdf5\n"; }

static char path_buf[8][512];

/* A path in the test's temporary directory (8 rotating buffers). */
static const char *tmp_path(const char *name) {
  static int next = 0;
  char *p = path_buf[next++ % 8];
  snprintf(p, sizeof path_buf[0], "%s/%s", test_tmpdir(), name);
  return p;
}

static int file_exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

static unsigned char *slurp(const char *path, long *n) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return NULL;
  fseek(fp, 0, SEEK_END);
  *n = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  unsigned char *buf = hsrl_malloc((size_t)*n + 1);
  size_t got = fread(buf, 1, (size_t)*n, fp);
  fclose(fp);
  if ((long)got != *n) {
    hsrl_free(buf);
    return NULL;
  }
  return buf;
}

static int spit(const char *path, const unsigned char *buf, long n) {
  FILE *fp = fopen(path, "wb");
  if (!fp) return 0;
  size_t put = fwrite(buf, 1, (size_t)n, fp);
  return fclose(fp) == 0 && (long)put == n;
}

/* Runs a shell command, captures up to cap-1 bytes of its stdout, returns its exit status. */
static int run(const char *cmd, char *out, size_t cap) {
  FILE *p = popen(cmd, "r");
  if (!p) return -1;
  size_t n = 0, got;
  char sink[4096];
  while ((got = fread(n + 1 < cap ? out + n : sink, 1, n + 1 < cap ? cap - 1 - n : sizeof sink, p)) > 0)
    if (n + 1 < cap) n += got;
  if (cap) out[n < cap ? n : cap - 1] = '\0';
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The message of the last error must name the file and contain `word`. */
static int message_has(const char *path, const char *word) {
  const char *m = hsrl_err_message();
  if (strstr(m, path) && strstr(m, word)) return 1;
  fprintf(stderr, "message \"%s\" lacks \"%s\" or \"%s\"\n", m, path, word);
  return 0;
}

/* io_h5_open_handles sees an open file (so the checks after each test below mean something). */
static void test_handles_are_counted(void) {
  io_h5 *f = NULL;
  TEST_ASSERT(io_h5_open_handles() == 0);
  TEST_ASSERT(io_h5_create(&f, tmp_path("handles.h5")) == HSRL_OK);
  TEST_ASSERT(io_h5_open_handles() == 1);
  io_h5_close(f);
  TEST_ASSERT(io_h5_open_handles() == 0);
}

/* ---- round trips ---- */

static void test_round_trip_all_types(void) {
  const char *path = tmp_path("types.h5");
  enum { R = 37, C = 5 };
  float f32[R * C];
  double f64[R * C];
  int32_t i32[R * C];
  int64_t i64[R * C];
  uint8_t u8[R * C];
  uint16_t u16[R * C];
  for (int i = 0; i < R * C; i++) {
    f32[i] = (float)i * 0.37f - 20.0f, f64[i] = (double)i * 1e-3 - 1e300 * (i == 3);
    i32[i] = i * 1000003 - 70000000, i64[i] = (int64_t)i * 123456789012345LL - 5;
    u8[i] = (uint8_t)(i * 7), u16[i] = (uint16_t)(i * 4099);
  }
  const int64_t dims[2] = {R, C}, dims3[3] = {R, 1, C}, n_smooth = 4000;
  static int64_t smooth[4000];
  for (int i = 0; i < 4000; i++) smooth[i] = i / 3;
  io_h5 *f = NULL;
  TEST_ASSERT(io_h5_create(&f, path) == HSRL_OK);
  for (int compress = 0; compress <= 1; compress++) {
    char name[64];
    int level = compress ? IO_H5_ZSTD : 0;
#define W(T, arr, nd, d)                                                                       \
    snprintf(name, sizeof name, "c%d/%s", compress, #T);                                       \
    TEST_ASSERTF(io_h5_write_##T(f, name, arr, nd, d, level) == HSRL_OK, "%s", hsrl_err_message());
    W(f32, f32, 2, dims)
    W(f64, f64, 2, dims)
    W(i32, i32, 3, dims3)
    W(i64, i64, 2, dims)
    W(u8, u8, 1, dims) /* first 37 only */
    W(u16, u16, 2, dims)
#undef W
    const int64_t empty[2] = {0, 4};
    snprintf(name, sizeof name, "c%d/empty", compress);
    TEST_ASSERT(io_h5_write_f32(f, name, NULL, 2, empty, level) == HSRL_OK);
    snprintf(name, sizeof name, "c%d/scalar", compress);
    TEST_ASSERT(io_h5_write_i64(f, name, i64 + 7, 0, NULL, level) == HSRL_OK);
    snprintf(name, sizeof name, "c%d/smooth", compress);
    TEST_ASSERT(io_h5_write_i64(f, name, smooth, 1, &n_smooth, level) == HSRL_OK);
  }
  TEST_ASSERT(io_h5_commit(f) == HSRL_OK);

  TEST_ASSERT(io_h5_open(&f, path) == HSRL_OK);
  for (int compress = 0; compress <= 1; compress++) {
    char name[64];
    float rf32[R * C];
    double rf64[R * C];
    int32_t ri32[R * C];
    int64_t ri64[R * C];
    uint8_t ru8[R * C];
    uint16_t ru16[R * C];
#define RD(T, arr, n)                                                                     \
    snprintf(name, sizeof name, "c%d/%s", compress, #T);                                  \
    TEST_ASSERTF(io_h5_read_##T(f, name, r##arr, n) == HSRL_OK, "%s", hsrl_err_message()); \
    TEST_ASSERTF(memcmp(r##arr, arr, (size_t)(n) * sizeof arr[0]) == 0, "%s differs", name);
    RD(f32, f32, R * C)
    RD(f64, f64, R * C)
    RD(i32, i32, R * C)
    RD(i64, i64, R * C)
    RD(u8, u8, R)
    RD(u16, u16, R * C)
#undef RD
    int nd = -1;
    int64_t d[IO_H5_MAX_DIMS];
    snprintf(name, sizeof name, "c%d/i32", compress);
    TEST_ASSERT(io_h5_shape(f, name, &nd, d) == HSRL_OK && nd == 3 && d[0] == R && d[1] == 1 && d[2] == C);
    snprintf(name, sizeof name, "c%d/empty", compress);
    TEST_ASSERT(io_h5_shape(f, name, &nd, d) == HSRL_OK && nd == 2 && d[0] == 0 && d[1] == 4);
    TEST_ASSERT(io_h5_read_f32(f, name, rf32, 0) == HSRL_OK);
    snprintf(name, sizeof name, "c%d/scalar", compress);
    TEST_ASSERT(io_h5_shape(f, name, &nd, d) == HSRL_OK && nd == 0);
    TEST_ASSERT(io_h5_read_i64(f, name, ri64, 1) == HSRL_OK && ri64[0] == i64[7]);
    /* read_alloc reports the shape */
    void *p = NULL;
    snprintf(name, sizeof name, "c%d/u16", compress);
    TEST_ASSERT(io_h5_read_alloc(f, name, IO_H5_U16, &p, &nd, d) == HSRL_OK);
    TEST_ASSERT(nd == 2 && d[0] == R && d[1] == C && memcmp(p, u16, sizeof u16) == 0);
    hsrl_free(p);
    float *pf = NULL;
    int64_t n = 0;
    snprintf(name, sizeof name, "c%d/f32", compress);
    TEST_ASSERT(io_h5_read_f32_alloc(f, name, &pf, &n) == HSRL_OK && n == R * C);
    TEST_ASSERT(memcmp(pf, f32, sizeof f32) == 0);
    hsrl_free(pf);
  }
  /* the compressed copy is really compressed (shuffle + zstd on smooth data) and exists */
  int64_t raw = 0, packed = 0;
  TEST_ASSERT(io_h5_storage_size(f, "c0/smooth", &raw) == HSRL_OK && raw == (int64_t)sizeof smooth);
  TEST_ASSERT(io_h5_storage_size(f, "c1/smooth", &packed) == HSRL_OK);
  TEST_ASSERTF(packed > 0 && packed < raw / 2, "compressed %lld of %lld bytes", (long long)packed, (long long)raw);
  TEST_ASSERT(io_h5_exists(f, "c1") && io_h5_exists(f, "/c1/f32") && io_h5_exists(f, "/"));
  TEST_ASSERT(!io_h5_exists(f, "c2") && !io_h5_exists(f, "c1/nope") && !io_h5_exists(f, "c1/f32/deeper"));
  io_h5_close(f);
}

/* Larger compressed datasets span several chunks; chunk boundaries must not matter. */
static void test_multi_chunk_compressed(void) {
  const char *path = tmp_path("chunks.h5");
  const int64_t n = 300007; /* 1.2 MB of float: about five chunks, the last one partial */
  float *x = hsrl_malloc((size_t)n * sizeof *x), *y = hsrl_malloc((size_t)n * sizeof *y);
  test_fill_uniform(x, n, -1.0f, 1.0f, 5);
  for (int64_t i = 0; i < n; i += 3) x[i] = 0.0f; /* partly compressible */
  io_h5 *f = NULL;
  TEST_ASSERT(io_h5_create(&f, path) == HSRL_OK);
  TEST_ASSERT(io_h5_write_f32(f, "x", x, 1, &n, 1) == HSRL_OK);
  TEST_ASSERT(io_h5_commit(f) == HSRL_OK);
  TEST_ASSERT(io_h5_open(&f, path) == HSRL_OK);
  TEST_ASSERT(io_h5_read_f32(f, "x", y, n) == HSRL_OK);
  TEST_ASSERT(memcmp(x, y, (size_t)n * sizeof *x) == 0);
  int64_t stored = 0;
  TEST_ASSERT(io_h5_storage_size(f, "x", &stored) == HSRL_OK && stored < n * 4);
  io_h5_close(f);
  hsrl_free(x);
  hsrl_free(y);
}

/* ---- atomic create ---- */

static void test_commit_is_atomic_and_close_discards(void) {
  const char *path = tmp_path("atomic.h5");
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
  int64_t one = 1, v = 0;
  int32_t a = 11, b = 22;
  io_h5 *f = NULL;
  /* first version */
  TEST_ASSERT(io_h5_create(&f, path) == HSRL_OK);
  TEST_ASSERT(io_h5_write_i32(f, "v", &a, 1, &one, 0) == HSRL_OK);
  TEST_ASSERT(file_exists(tmp) && !file_exists(path)); /* not visible under its name yet */
  TEST_ASSERT(strcmp(io_h5_path(f), path) == 0);
  TEST_ASSERT(io_h5_commit(f) == HSRL_OK);
  TEST_ASSERT(!file_exists(tmp) && file_exists(path));
  /* a second writer that does not commit leaves the first version in place */
  TEST_ASSERT(io_h5_create(&f, path) == HSRL_OK);
  TEST_ASSERT(io_h5_write_i32(f, "v", &b, 1, &one, 0) == HSRL_OK);
  io_h5_close(f);
  TEST_ASSERT(!file_exists(tmp));
  TEST_ASSERT(io_h5_open(&f, path) == HSRL_OK);
  int32_t r = 0;
  TEST_ASSERT(io_h5_read_i32(f, "v", &r, 1) == HSRL_OK && r == 11);
  /* a read-only file cannot be written or committed */
  TEST_ASSERT(io_h5_write_i32(f, "w", &b, 1, &one, 0) == HSRL_E_INTERNAL);
  TEST_ASSERT(strstr(hsrl_err_message(), "read-only") != NULL);
  TEST_ASSERT(io_h5_attr_set_i64(f, "/", "x", 1) == HSRL_E_INTERNAL);
  TEST_ASSERT(io_h5_commit(f) == HSRL_E_INTERNAL); /* and f is freed */
  /* a committing writer replaces it */
  TEST_ASSERT(io_h5_create(&f, path) == HSRL_OK);
  TEST_ASSERT(io_h5_write_i32(f, "v", &b, 1, &one, 0) == HSRL_OK);
  TEST_ASSERT(io_h5_attr_set_i64(f, "/", "n", 5) == HSRL_OK);
  TEST_ASSERT(io_h5_commit(f) == HSRL_OK);
  TEST_ASSERT(io_h5_open(&f, path) == HSRL_OK);
  TEST_ASSERT(io_h5_read_i32(f, "v", &r, 1) == HSRL_OK && r == 22);
  TEST_ASSERT(io_h5_attr_get_i64(f, "/", "n", &v) == HSRL_OK && v == 5);
  io_h5_close(f);
  io_h5_close(NULL);
  /* a directory that does not exist: an I/O error naming the file */
  const char *bad = tmp_path("no-such-dir/x.h5");
  TEST_ASSERT(io_h5_create(&f, bad) == HSRL_E_IO && f == NULL);
  TEST_ASSERT(message_has(bad, "cannot create"));
}

/* The same content gives the same bytes (no timestamps in the file). */
static void test_files_are_reproducible(void) {
  const char *p1 = tmp_path("same1.h5"), *p2 = tmp_path("same2.h5");
  float x[1000];
  test_fill_uniform(x, 1000, 0.0f, 1.0f, 3);
  const int64_t d = 1000;
  for (int k = 0; k < 2; k++) {
    io_h5 *f = NULL;
    if (k) sleep(2); /* any stored modification time would now differ */
    TEST_ASSERT(io_h5_create(&f, k ? p2 : p1) == HSRL_OK);
    TEST_ASSERT(io_h5_write_f32(f, "g/x", x, 1, &d, 3) == HSRL_OK);       /* g made on the way */
    TEST_ASSERT(io_h5_write_f32(f, "a/b/c/y", x, 1, &d, 0) == HSRL_OK);   /* several levels */
    TEST_ASSERT(io_h5_attr_set_str(f, "g", "note", "same") == HSRL_OK);
    TEST_ASSERT(io_h5_attr_set_i64(f, "h/i", "n", 7) == HSRL_OK);       /* group made for an attribute */
    TEST_ASSERT(io_h5_commit(f) == HSRL_OK);
  }
  long n1 = 0, n2 = 0;
  unsigned char *a = slurp(p1, &n1), *b = slurp(p2, &n2);
  TEST_ASSERT(a && b);
  int same = n1 == n2 && memcmp(a, b, (size_t)n1) == 0;
  hsrl_free(a);
  hsrl_free(b);
  TEST_ASSERT(same);
}

/* ---- attributes and stamps ---- */

static void test_attributes(void) {
  const char *path = tmp_path("attrs.h5");
  io_h5 *f = NULL;
  const int64_t d = 3;
  const float x[3] = {1, 2, 3};
  size_t n_long = 100000;
  char *long_text = hsrl_malloc(n_long + 1), *back = hsrl_malloc(n_long + 1);
  for (size_t i = 0; i < n_long; i++) long_text[i] = (char)('a' + i % 26);
  long_text[n_long] = '\0';
  TEST_ASSERT(io_h5_create(&f, path) == HSRL_OK);
  TEST_ASSERT(io_h5_write_f32(f, "net/w", x, 1, &d, 0) == HSRL_OK);
  TEST_ASSERT(io_h5_attr_set_str(f, "/", "config", long_text) == HSRL_OK); /* > 64 KiB */
  TEST_ASSERT(io_h5_attr_set_str(f, "/", "empty", "") == HSRL_OK);
  TEST_ASSERT(io_h5_attr_set_str(f, "net/w", "unit", "logits") == HSRL_OK);
  TEST_ASSERT(io_h5_attr_set_i64(f, "net", "step", 41) == HSRL_OK);
  TEST_ASSERT(io_h5_attr_set_i64(f, "net", "step", -42) == HSRL_OK); /* replaces */
  TEST_ASSERT(io_h5_attr_set_u64(f, "net", "hash", 0xfedcba9876543210ull) == HSRL_OK);
  TEST_ASSERT(io_h5_attr_set_f64(f, "new/group", "lr", 3e-4) == HSRL_OK); /* creates the group */
  TEST_ASSERT(io_h5_attr_set_str(f, "net", "step_name", "x") == HSRL_OK);
  TEST_ASSERT(io_h5_commit(f) == HSRL_OK);

  TEST_ASSERT(io_h5_open(&f, path) == HSRL_OK);
  TEST_ASSERT(io_h5_attr_get_str(f, "/", "config", back, n_long + 1) == HSRL_OK);
  TEST_ASSERT(strcmp(back, long_text) == 0);
  char s[32];
  TEST_ASSERT(io_h5_attr_get_str(f, "/", "empty", s, sizeof s) == HSRL_OK && s[0] == '\0');
  TEST_ASSERT(io_h5_attr_get_str(f, "net/w", "unit", s, sizeof s) == HSRL_OK && strcmp(s, "logits") == 0);
  int64_t step = 0;
  uint64_t hash = 0;
  double lr = 0, step_f = 0;
  TEST_ASSERT(io_h5_attr_get_i64(f, "net", "step", &step) == HSRL_OK && step == -42);
  TEST_ASSERT(io_h5_attr_get_u64(f, "net", "hash", &hash) == HSRL_OK && hash == 0xfedcba9876543210ull);
  TEST_ASSERT(io_h5_attr_get_f64(f, "new/group", "lr", &lr) == HSRL_OK && lr == 3e-4);
  TEST_ASSERT(io_h5_attr_get_f64(f, "net", "step", &step_f) == HSRL_OK && step_f == -42.0); /* int as f64 */
  TEST_ASSERT(io_h5_attr_exists(f, "net", "step") && !io_h5_attr_exists(f, "net", "nope"));
  TEST_ASSERT(!io_h5_attr_exists(f, "nowhere", "step"));
  /* errors */
  TEST_ASSERT(io_h5_attr_get_i64(f, "net", "nope", &step) == HSRL_E_INPUT && message_has(path, "'nope'"));
  TEST_ASSERT(io_h5_attr_get_i64(f, "nowhere", "step", &step) == HSRL_E_INPUT && message_has(path, "not found"));
  TEST_ASSERT(io_h5_attr_get_i64(f, "/", "config", &step) == HSRL_E_INPUT && message_has(path, "string"));
  TEST_ASSERT(io_h5_attr_get_i64(f, "new/group", "lr", &step) == HSRL_E_INPUT && message_has(path, "float64"));
  TEST_ASSERT(io_h5_attr_get_str(f, "net", "step", s, sizeof s) == HSRL_E_INPUT);
  TEST_ASSERT(io_h5_attr_get_str(f, "net/w", "unit", s, 6) == HSRL_E_INPUT && message_has(path, "6 characters"));
  io_h5_close(f);
  hsrl_free(long_text);
  hsrl_free(back);
}

static void test_stamps(void) {
  const char *path = tmp_path("stamp.h5"), *plain = tmp_path("plain.h5");
  io_h5 *f = NULL;
  TEST_ASSERT(io_h5_create(&f, path) == HSRL_OK);
  TEST_ASSERT(io_h5_stamp(f, "checkpoint", 3, 0x1234567890abcdefull) == HSRL_OK);
  TEST_ASSERT(io_h5_commit(f) == HSRL_OK);
  TEST_ASSERT(io_h5_create(&f, plain) == HSRL_OK);
  TEST_ASSERT(io_h5_commit(f) == HSRL_OK);

  TEST_ASSERT(io_h5_open(&f, path) == HSRL_OK);
  int64_t v = 0;
  uint64_t h = 0;
  char s[64];
  TEST_ASSERT(io_h5_check_stamp(f, "checkpoint", 1, 3, &v, &h) == HSRL_OK && v == 3 && h == 0x1234567890abcdefull);
  TEST_ASSERT(io_h5_check_stamp(f, "checkpoint", 3, 3, NULL, NULL) == HSRL_OK);
  TEST_ASSERT(io_h5_check_stamp(f, "replay-shard", 1, 3, &v, &h) == HSRL_E_INPUT);
  TEST_ASSERT(message_has(path, "is a 'checkpoint' file, expected a 'replay-shard' file"));
  TEST_ASSERT(io_h5_check_stamp(f, "checkpoint", 4, 9, &v, &h) == HSRL_E_INPUT);
  TEST_ASSERT(message_has(path, "format version 3"));
  TEST_ASSERT(io_h5_check_stamp(f, "checkpoint", 1, 2, &v, &h) == HSRL_E_INPUT);
  TEST_ASSERT(io_h5_attr_get_str(f, "/", "hsrl_version", s, sizeof s) == HSRL_OK && strcmp(s, HSRL_VERSION) == 0);
  io_h5_close(f);
  TEST_ASSERT(io_h5_open(&f, plain) == HSRL_OK);
  TEST_ASSERT(io_h5_check_stamp(f, "checkpoint", 1, 3, &v, &h) == HSRL_E_INPUT);
  TEST_ASSERT(message_has(plain, "not an hsrl file"));
  io_h5_close(f);
}

/* ---- errors on reading ---- */

static void test_read_errors_name_file_and_dataset(void) {
  const char *path = tmp_path("errors.h5");
  io_h5 *f = NULL;
  const int64_t d2[2] = {10, 12}, d1 = 4, big[1] = {3};
  float x[120] = {0};
  int64_t wide[3] = {5, 1LL << 40, -7}, narrow_ok[3] = {5, 60000, 0};
  uint8_t u8[4] = {0, 1, 254, 255};
  double f64[4] = {1.5, -2.25, 1e300, 0};
  TEST_ASSERT(io_h5_create(&f, path) == HSRL_OK);
  TEST_ASSERT(io_h5_write_f32(f, "actor/w", x, 2, d2, 0) == HSRL_OK);
  TEST_ASSERT(io_h5_write_i64(f, "ids/wide", wide, 1, big, 1) == HSRL_OK);
  TEST_ASSERT(io_h5_write_i64(f, "ids/narrow", narrow_ok, 1, big, 0) == HSRL_OK);
  TEST_ASSERT(io_h5_write_u8(f, "ids/u8", u8, 1, &d1, 0) == HSRL_OK);
  TEST_ASSERT(io_h5_write_f64(f, "f64", f64, 1, &d1, 0) == HSRL_OK);
  /* rewriting: same shape and type replaces the data; another shape or type is refused */
  x[0] = 9.0f;
  TEST_ASSERT(io_h5_write_f32(f, "actor/w", x, 2, d2, 0) == HSRL_OK);
  TEST_ASSERT(io_h5_write_f32(f, "actor/w", x, 1, &d1, 0) == HSRL_E_INPUT && message_has(path, "actor/w"));
  TEST_ASSERT(io_h5_write_i64(f, "ids/narrow", narrow_ok, 1, big, 0) == HSRL_OK);
  TEST_ASSERT(io_h5_write_i32(f, "ids/narrow", (int32_t *)narrow_ok, 1, big, 0) == HSRL_E_INPUT);
  TEST_ASSERT(io_h5_write_f32(f, "actor", x, 1, &d1, 0) == HSRL_E_INPUT); /* a group */
  /* misuse */
  int64_t neg = -1, nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  TEST_ASSERT(io_h5_write_f32(f, "bad", x, 1, &neg, 0) == HSRL_E_INTERNAL);
  TEST_ASSERT(io_h5_write_f32(f, "bad", x, 9, nine, 0) == HSRL_E_INTERNAL);
  TEST_ASSERT(io_h5_write_f32(f, "bad", x, 1, &d1, 23) == HSRL_E_USAGE);
  TEST_ASSERT(!io_h5_exists(f, "bad"));
  TEST_ASSERT(io_h5_commit(f) == HSRL_OK);

  TEST_ASSERT(io_h5_open(&f, path) == HSRL_OK);
  float r[120];
  TEST_ASSERT(io_h5_read_f32(f, "actor/w", r, 120) == HSRL_OK && r[0] == 9.0f);
  hsrl_err_clear();
  TEST_ASSERT(io_h5_read_f32(f, "actor/w", r, 100) == HSRL_E_INPUT);
  TEST_ASSERT(message_has(path, "dataset 'actor/w': has 120 elements (shape [10, 12]), expected 100"));
  TEST_ASSERT(io_h5_read_f32(f, "actor/b", r, 10) == HSRL_E_INPUT && message_has(path, "'actor/b': not found"));
  TEST_ASSERT(io_h5_read_f32(f, "nowhere/at/all", r, 10) == HSRL_E_INPUT);
  TEST_ASSERT(io_h5_read_f32(f, "actor", r, 10) == HSRL_E_INPUT && message_has(path, "not a dataset"));
  int32_t i32[4];
  TEST_ASSERT(io_h5_read_i32(f, "actor/w", i32, 120) == HSRL_E_INPUT && message_has(path, "float32"));
  TEST_ASSERT(io_h5_read_f32(f, "ids/u8", r, 4) == HSRL_E_INPUT && message_has(path, "uint8"));
  /* conversions within a class: allowed when every value fits */
  TEST_ASSERT(io_h5_read_i32(f, "ids/u8", i32, 4) == HSRL_OK && i32[2] == 254 && i32[3] == 255);
  TEST_ASSERT(io_h5_read_i32(f, "ids/narrow", i32, 3) == HSRL_OK && i32[1] == 60000);
  uint16_t u16[3];
  TEST_ASSERT(io_h5_read_u16(f, "ids/narrow", u16, 3) == HSRL_OK && u16[1] == 60000);
  TEST_ASSERT(io_h5_read_i32(f, "ids/wide", i32, 3) == HSRL_E_INPUT); /* 2^40 */
  TEST_ASSERT(message_has(path, "out of range for int32"));
  TEST_ASSERT(io_h5_read_u8(f, "ids/wide", u8, 3) == HSRL_E_INPUT); /* -7 and 2^40 */
  TEST_ASSERT(io_h5_read_f32(f, "f64", r, 4) == HSRL_E_INPUT); /* 1e300 */
  double back[4];
  TEST_ASSERT(io_h5_read_f64(f, "f64", back, 4) == HSRL_OK && back[2] == 1e300);
  int nd = 0;
  int64_t dims[IO_H5_MAX_DIMS];
  TEST_ASSERT(io_h5_shape(f, "missing", &nd, dims) == HSRL_E_INPUT);
  void *p = (void *)1;
  TEST_ASSERT(io_h5_read_alloc(f, "actor/w", IO_H5_I64, &p, &nd, dims) == HSRL_E_INPUT && p == NULL);
  io_h5_close(f);
}

/* ---- listing ---- */

typedef struct seen {
  char names[8][32];
  int is_group[8];
  int n;
} seen;

static int collect(void *ctx, const char *name, int is_group) {
  seen *s = ctx;
  if (s->n < 8) {
    snprintf(s->names[s->n], sizeof s->names[0], "%s", name);
    s->is_group[s->n++] = is_group;
  }
  return s->n == 3 && strcmp(name, "stop") == 0;
}

static void test_list(void) {
  const char *path = tmp_path("list.h5");
  io_h5 *f = NULL;
  const int64_t d = 1;
  float x = 1;
  TEST_ASSERT(io_h5_create(&f, path) == HSRL_OK);
  TEST_ASSERT(io_h5_write_f32(f, "m/zeta", &x, 1, &d, 0) == HSRL_OK);
  TEST_ASSERT(io_h5_write_f32(f, "m/alpha/w", &x, 1, &d, 0) == HSRL_OK);
  TEST_ASSERT(io_h5_write_f32(f, "m/beta", &x, 1, &d, 0) == HSRL_OK);
  TEST_ASSERT(io_h5_write_f32(f, "n/a", &x, 1, &d, 0) == HSRL_OK);
  TEST_ASSERT(io_h5_write_f32(f, "n/b", &x, 1, &d, 0) == HSRL_OK);
  TEST_ASSERT(io_h5_write_f32(f, "n/stop", &x, 1, &d, 0) == HSRL_OK);
  TEST_ASSERT(io_h5_write_f32(f, "n/z", &x, 1, &d, 0) == HSRL_OK);
  seen s = {0};
  TEST_ASSERT(io_h5_list(f, "m", collect, &s) == HSRL_OK);
  TEST_ASSERT(s.n == 3);
  TEST_ASSERT(strcmp(s.names[0], "alpha") == 0 && s.is_group[0]);
  TEST_ASSERT(strcmp(s.names[1], "beta") == 0 && !s.is_group[1]);
  TEST_ASSERT(strcmp(s.names[2], "zeta") == 0 && !s.is_group[2]);
  memset(&s, 0, sizeof s);
  TEST_ASSERT(io_h5_list(f, "/", collect, &s) == HSRL_OK && s.n == 2 && s.is_group[0] && s.is_group[1]);
  memset(&s, 0, sizeof s);
  TEST_ASSERT(io_h5_list(f, "n", collect, &s) == HSRL_OK && s.n == 3); /* stopped at "stop" */
  TEST_ASSERT(io_h5_list(f, "m/beta", collect, &s) == HSRL_E_INPUT);
  TEST_ASSERT(io_h5_list(f, "q", collect, &s) == HSRL_E_INPUT);
  io_h5_close(f);
}

/* ---- row ranges ---- */

static void test_rows(void) {
  const char *path = tmp_path("rows.h5");
  enum { N_ROWS = 200003, W = 3 };
  const int64_t dims[2] = {N_ROWS, W};
  uint16_t *x = hsrl_malloc(sizeof(uint16_t) * N_ROWS * W), *y = hsrl_malloc(sizeof(uint16_t) * N_ROWS * W);
  for (int64_t i = 0; i < (int64_t)N_ROWS * W; i++) x[i] = (uint16_t)((i / W) % 1000 + 7 * (i % W));
  io_h5 *f = NULL;
  for (int compress = 0; compress <= 1; compress++) {
    const char *name = compress ? "z/t" : "t";
    TEST_ASSERT(io_h5_create(&f, path) == HSRL_OK);
    TEST_ASSERT(io_h5_create_rows(f, name, IO_H5_U16, 2, dims, compress ? IO_H5_ZSTD : 0) == HSRL_OK);
    TEST_ASSERT(io_h5_create_rows(f, name, IO_H5_U16, 2, dims, 0) == HSRL_E_INPUT); /* exists */
    /* uneven blocks, out of order, leaving rows [1000, 1500) unwritten */
    int64_t row = 1500;
    for (int64_t blk = 1; row < N_ROWS; blk = blk * 3 % 9973 + 1) {
      int64_t n = blk < N_ROWS - row ? blk : N_ROWS - row;
      hsrl_status st = io_h5_write_rows(f, name, IO_H5_U16, x + row * W, row, n);
      TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
      row += n;
    }
    TEST_ASSERT(io_h5_write_rows(f, name, IO_H5_U16, x, 0, 1000) == HSRL_OK);
    TEST_ASSERT(io_h5_write_rows(f, name, IO_H5_U16, x, 0, 0) == HSRL_OK);
    TEST_ASSERT(io_h5_write_rows(f, name, IO_H5_U16, x, N_ROWS - 1, 2) == HSRL_E_INPUT);
    TEST_ASSERT(message_has(path, "outside its 200003 rows"));
    TEST_ASSERT(io_h5_write_rows(f, name, IO_H5_U16, x, -1, 1) == HSRL_E_INPUT);
    TEST_ASSERT(io_h5_write_rows(f, name, IO_H5_I32, x, 0, 1) == HSRL_E_INPUT && message_has(path, "uint16"));
    TEST_ASSERT(io_h5_write_rows(f, "nope", IO_H5_U16, x, 0, 1) == HSRL_E_INPUT);
    TEST_ASSERT(io_h5_commit(f) == HSRL_OK);

    TEST_ASSERT(io_h5_open(&f, path) == HSRL_OK);
    TEST_ASSERT(io_h5_read_rows(f, name, IO_H5_U16, y, 0, N_ROWS) == HSRL_OK);
    int zeros = 1;
    for (int64_t i = 1000 * W; i < 1500 * W; i++) zeros &= y[i] == 0;
    TEST_ASSERT(zeros);
    TEST_ASSERT(memcmp(x, y, sizeof(uint16_t) * 1000 * W) == 0);
    TEST_ASSERT(memcmp(x + 1500 * W, y + 1500 * W, sizeof(uint16_t) * (N_ROWS - 1500) * W) == 0);
    /* a range inside, converted to int32 */
    int32_t part[10 * W];
    TEST_ASSERT(io_h5_read_rows(f, name, IO_H5_I32, part, 123456, 10) == HSRL_OK);
    int same = 1;
    for (int i = 0; i < 10 * W; i++) same &= part[i] == (int32_t)x[123456 * W + i];
    TEST_ASSERT(same);
    TEST_ASSERT(io_h5_read_rows(f, name, IO_H5_U16, y, N_ROWS, 0) == HSRL_OK);
    TEST_ASSERT(io_h5_read_rows(f, name, IO_H5_U16, y, N_ROWS, 1) == HSRL_E_INPUT);
    TEST_ASSERT(io_h5_read_rows(f, name, IO_H5_F32, y, 0, 1) == HSRL_E_INPUT);
    int64_t stored = 0;
    TEST_ASSERT(io_h5_storage_size(f, name, &stored) == HSRL_OK);
    if (compress) TEST_ASSERTF(stored < (int64_t)N_ROWS * W * 2 / 4, "stored %lld bytes", (long long)stored);
    io_h5_close(f);
  }
  hsrl_free(x);
  hsrl_free(y);
}

/* ---- the world outside: h5dump and h5py read our files, we read theirs ---- */

/* Values of the "world" file, known to every reader below. */
static float world_value(int64_t i) { return (float)(i % 1000) * 0.5f - 100.0f; }
static int32_t world_id(int64_t i) { return (int32_t)((i * 7919) % 10007) - 5000; }

static hsrl_status write_world_file(const char *path) {
  enum { N = 20000 };
  static float v[N];
  static int32_t ids[N];
  for (int64_t i = 0; i < N; i++) v[i] = world_value(i), ids[i] = world_id(i);
  const int64_t dv = N, dids[2] = {N / 4, 4};
  io_h5 *f = NULL;
  hsrl_status st;
  HSRL_TRY(io_h5_create(&f, path));
  HSRL_TRY(io_h5_write_f32(f, "grp/vals", v, 1, &dv, IO_H5_ZSTD));
  HSRL_TRY(io_h5_write_i32(f, "grp/ids", ids, 2, dids, 7));
  HSRL_TRY(io_h5_attr_set_str(f, "/", "hsrl_kind", "test"));
  st = io_h5_commit(f);
  f = NULL;
done:
  io_h5_close(f);
  return st;
}

static int have_h5dump(void) {
  char out[256];
  return run("command -v h5dump >/dev/null 2>&1", out, sizeof out) == 0;
}

/* Parses the numbers between "DATA {" and the next "}" of h5dump -y output. */
static int64_t parse_h5dump(const char *out, double *vals, int64_t cap) {
  const char *p = strstr(out, "DATA {");
  if (!p) return -1;
  p += 6;
  int64_t n = 0;
  while (*p && *p != '}') {
    char *end;
    double v = strtod(p, &end);
    if (end == p) {
      p++;
      continue;
    }
    if (n < cap) vals[n] = v;
    n++;
    p = end;
  }
  return n;
}

static void test_h5dump_reads_with_plugin(void) {
  if (!have_h5dump()) TEST_SKIP("h5dump not installed (Debian package hdf5-tools)");
  const char *path = tmp_path("world.h5");
  TEST_ASSERTF(write_world_file(path) == HSRL_OK, "%s", hsrl_err_message());
  enum { CAP = 1 << 20 };
  char *out = hsrl_malloc(CAP), cmd[2048];
  double *vals = hsrl_malloc(sizeof(double) * 20000);
  struct stat sb;
  TEST_ASSERTF(stat(HSRL_PLUGIN_DIR "/libhsrl_h5zstd.so", &sb) == 0, "plugin not built: %s",
               HSRL_PLUGIN_DIR "/libhsrl_h5zstd.so");

  snprintf(cmd, sizeof cmd, "HDF5_PLUGIN_PATH='%s' h5dump -y -w 0 -d /grp/vals '%s' 2>&1", HSRL_PLUGIN_DIR, path);
  int rc = run(cmd, out, CAP);
  TEST_ASSERTF(rc == 0, "h5dump exit %d: %.500s", rc, out);
  int64_t n = parse_h5dump(out, vals, 20000);
  TEST_ASSERTF(n == 20000, "h5dump printed %lld values: %.300s", (long long)n, out);
  for (int64_t i = 0; i < n; i++)
    TEST_ASSERTF(vals[i] == (double)world_value(i), "value %lld: h5dump %g, written %g", (long long)i, vals[i],
                 (double)world_value(i));

  snprintf(cmd, sizeof cmd, "HDF5_PLUGIN_PATH='%s' h5dump -y -w 0 -d /grp/ids '%s' 2>&1", HSRL_PLUGIN_DIR, path);
  rc = run(cmd, out, CAP);
  TEST_ASSERTF(rc == 0, "h5dump exit %d: %.500s", rc, out);
  n = parse_h5dump(out, vals, 20000);
  TEST_ASSERT(n == 20000);
  for (int64_t i = 0; i < n; i++) TEST_ASSERT(vals[i] == (double)world_id(i));

  /* the properties show shuffle, then filter 32015 with the level as its parameter */
  snprintf(cmd, sizeof cmd, "h5dump -p -H -d /grp/ids '%s' 2>&1", path);
  TEST_ASSERT(run(cmd, out, CAP) == 0);
  char *shuffle = strstr(out, "PREPROCESSING SHUFFLE"), *zstd = strstr(out, "FILTER_ID 32015");
  TEST_ASSERTF(shuffle && zstd && shuffle < zstd, "%.1500s", out);
  TEST_ASSERTF(strstr(zstd, "PARAMS { 7 }") != NULL, "%.1500s", out);

  /* control: without the plugin h5dump cannot print the data */
  char empty_dir[600];
  snprintf(empty_dir, sizeof empty_dir, "%s/no-plugins", test_tmpdir());
  mkdir(empty_dir, 0700);
  snprintf(cmd, sizeof cmd, "HDF5_PLUGIN_PATH='%s' h5dump -y -w 0 -d /grp/vals '%s' 2>&1", empty_dir, path);
  rc = run(cmd, out, CAP);
  TEST_ASSERTF(rc != 0 && parse_h5dump(out, vals, 20000) < 100, "h5dump read zstd data without the plugin: %.300s",
               out);
  hsrl_free(out);
  hsrl_free(vals);
}

static int have_h5py(void) {
  static int known = -1;
  char out[512];
  if (known < 0) known = run("/usr/bin/python3 -c 'import h5py, hdf5plugin' >/dev/null 2>&1", out, sizeof out) == 0;
  return known;
}

static int run_python(const char *script_name, const char *script, const char *arg, char *out, size_t cap) {
  const char *spath = tmp_path(script_name);
  FILE *fp = fopen(spath, "w");
  if (!fp) return -1;
  fputs(script, fp);
  fclose(fp);
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "HDF5_PLUGIN_PATH='%s' /usr/bin/python3 '%s' '%s' 2>&1", HSRL_PLUGIN_DIR, spath, arg);
  return run(cmd, out, cap);
}

/* h5py + hdf5plugin (through our plugin) read what we wrote: same values, shuffle first. */
static void test_h5py_reads_our_files(void) {
  if (!have_h5py()) TEST_SKIP("python3 with h5py and hdf5plugin not installed (python3-h5py, python3-hdf5plugin)");
  const char *path = tmp_path("world_py.h5");
  TEST_ASSERTF(write_world_file(path) == HSRL_OK, "%s", hsrl_err_message());
  static const char script[] =
      "import sys, h5py, hdf5plugin, numpy as np\n"
      "i = np.arange(20000, dtype=np.int64)\n"
      "vals = ((i % 1000).astype(np.float32) * np.float32(0.5) - np.float32(100)).astype(np.float32)\n"
      "ids = ((i * 7919) % 10007 - 5000).astype(np.int32).reshape(5000, 4)\n"
      "with h5py.File(sys.argv[1], 'r') as f:\n"
      "    v, d = f['grp/vals'], f['grp/ids']\n"
      "    assert v.dtype == np.float32 and np.array_equal(v[...], vals), 'vals differ'\n"
      "    assert d.dtype == np.int32 and np.array_equal(d[...], ids), 'ids differ'\n"
      "    pl = d.id.get_create_plist()\n"
      "    assert pl.get_nfilters() == 2, pl.get_nfilters()\n"
      "    assert pl.get_filter(0)[0] == 2 and pl.get_filter(1)[0] == 32015, 'filter order'\n"
      "    assert tuple(pl.get_filter(1)[2]) == (7,), pl.get_filter(1)\n"
      "    assert f.attrs['hsrl_kind'] == b'test', f.attrs['hsrl_kind']\n"
      "print('h5py ok')\n";
  char out[4096];
  int rc = run_python("read_ours.py", script, path, out, sizeof out);
  TEST_ASSERTF(rc == 0 && strstr(out, "h5py ok"), "python exit %d: %s", rc, out);
}

/* We read what h5py + hdf5plugin wrote (shuffle + zstd through the filter id), and chunks made
 * by the zstd command-line tool from shuffled bytes and stored with write_direct_chunk: the
 * format check that does not go through our own compressor. The tool's frames from a pipe do not
 * record their size, which takes the filter's streaming path. Also a variable-length string
 * attribute, as h5py writes str attributes. */
static void test_we_read_h5py_files(void) {
  if (!have_h5py()) TEST_SKIP("python3 with h5py and hdf5plugin not installed (python3-h5py, python3-hdf5plugin)");
  char out[4096];
  if (run("command -v zstd >/dev/null 2>&1", out, sizeof out) != 0) TEST_SKIP("zstd command-line tool missing");
  const char *path = tmp_path("from_py.h5");
  static const char script[] =
      "import sys, subprocess, h5py, hdf5plugin, numpy as np\n"
      "x = (np.arange(60000, dtype=np.float32) * np.float32(0.25)).reshape(20000, 3)\n"
      "c = (np.arange(3000, dtype='<i4') * 3 - 1000)\n"
      "shuffled = c.view(np.uint8).reshape(-1, 4).T.tobytes()\n"
      "piped = subprocess.run(['zstd', '-q', '-c', '-19'], input=shuffled, stdout=subprocess.PIPE, check=True).stdout\n"
      "with open(sys.argv[1] + '.raw', 'wb') as g: g.write(shuffled)\n"
      "sized = subprocess.run(['zstd', '-q', '-c', '-3', sys.argv[1] + '.raw'], stdout=subprocess.PIPE, check=True).stdout\n"
      "with h5py.File(sys.argv[1], 'w') as f:\n"
      "    f.create_dataset('x', data=x, chunks=(1000, 3), shuffle=True, **hdf5plugin.Zstd(clevel=9))\n"
      "    for name, chunk in (('cli_piped', piped), ('cli_sized', sized)):\n"
      "        d = f.create_dataset(name, shape=(3000,), dtype='<i4', chunks=(3000,), shuffle=True,\n"
      "                             compression=32015, compression_opts=(3,))\n"
      "        d.id.write_direct_chunk((0,), chunk, 0)\n"
      "    f.attrs['note'] = 'written by h5py'\n"
      "print('written')\n";
  int rc = run_python("write_theirs.py", script, path, out, sizeof out);
  TEST_ASSERTF(rc == 0 && strstr(out, "written"), "python exit %d: %s", rc, out);

  io_h5 *f = NULL;
  TEST_ASSERTF(io_h5_open(&f, path) == HSRL_OK, "%s", hsrl_err_message());
  float *x = hsrl_malloc(sizeof(float) * 60000);
  TEST_ASSERTF(io_h5_read_f32(f, "x", x, 60000) == HSRL_OK, "%s", hsrl_err_message());
  int same = 1;
  for (int i = 0; i < 60000; i++) same &= x[i] == (float)i * 0.25f;
  TEST_ASSERT(same);
  int32_t c[3000];
  const char *names[2] = {"cli_piped", "cli_sized"};
  for (int k = 0; k < 2; k++) {
    memset(c, 0, sizeof c);
    TEST_ASSERTF(io_h5_read_i32(f, names[k], c, 3000) == HSRL_OK, "%s", hsrl_err_message());
    same = 1;
    for (int i = 0; i < 3000; i++) same &= c[i] == i * 3 - 1000;
    TEST_ASSERTF(same, "%s differs", names[k]);
  }
  char s[64];
  TEST_ASSERT(io_h5_attr_get_str(f, "/", "note", s, sizeof s) == HSRL_OK && strcmp(s, "written by h5py") == 0);
  io_h5_close(f);
  hsrl_free(x);
}

/* ---- damaged files ---- */

/* Opens the file and reads everything the corruption fixture holds. Returns 0 if all of it came
 * back identical, 1 if something failed with a status and a message naming the file, and 2 for
 * the outcome that must never happen: success with different data, or failure without message. */
enum { DMG_N = 6000 };
static float dmg_x[DMG_N];
static int32_t dmg_ids[DMG_N];

static void dmg_fill(void) {
  test_fill_uniform(dmg_x, DMG_N, -1.0f, 1.0f, 17);
  for (int i = 0; i < DMG_N; i++) dmg_ids[i] = (int32_t)((i * 31) % 977);
}

static hsrl_status dmg_write(const char *path) {
  const int64_t dx[2] = {DMG_N / 2, 2}, di = DMG_N;
  io_h5 *f = NULL;
  hsrl_status st;
  HSRL_TRY(io_h5_create(&f, path));
  HSRL_TRY(io_h5_write_f32(f, "a/x", dmg_x, 2, dx, 1));
  HSRL_TRY(io_h5_write_i32(f, "b/ids", dmg_ids, 1, &di, 3));
  HSRL_TRY(io_h5_stamp(f, "test", 1, 99));
  st = io_h5_commit(f);
  f = NULL;
done:
  io_h5_close(f);
  return st;
}

static int dmg_check(const char *path) {
  static float x[DMG_N];
  static int32_t ids[DMG_N];
  io_h5 *f = NULL;
  hsrl_err_clear();
  hsrl_status st = io_h5_open(&f, path);
  if (st == HSRL_OK) st = io_h5_check_stamp(f, "test", 1, 1, NULL, NULL);
  if (st == HSRL_OK) st = io_h5_read_f32(f, "a/x", x, DMG_N);
  if (st == HSRL_OK) st = io_h5_read_i32(f, "b/ids", ids, DMG_N);
  io_h5_close(f);
  if (io_h5_open_handles() != 0) return 2;
  if (st == HSRL_OK)
    return memcmp(x, dmg_x, sizeof x) == 0 && memcmp(ids, dmg_ids, sizeof ids) == 0 ? 0 : 2;
  const char *m = hsrl_err_message();
  if (!strstr(m, path) || hsrl_status_exit_code(st) == 0) return 2;
  return 1;
}

static void test_truncated_files(void) {
  const char *good = tmp_path("dmg_good.h5"), *bad = tmp_path("dmg_trunc.h5");
  dmg_fill();
  TEST_ASSERTF(dmg_write(good) == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERT(dmg_check(good) == 0);
  long n = 0;
  unsigned char *buf = slurp(good, &n);
  TEST_ASSERT(buf && n > 4096);
  long cuts[] = {0, 1, 7, 8, 9, 47, 48, 100, 511, 512, 1024, 2048, n / 3, n / 2, n - 1000, n - 8, n - 1};
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
    TEST_ASSERT(spit(bad, buf, cuts[i]));
    int r = dmg_check(bad);
    TEST_ASSERTF(r == 1, "file cut to %ld of %ld bytes: outcome %d, message \"%s\"", cuts[i], n, r,
                 hsrl_err_message());
    /* the first bytes are not even HDF5; beyond the superblock it is damaged HDF5 */
    io_h5 *f = NULL;
    hsrl_status st = io_h5_open(&f, bad);
    if (cuts[i] < 8) TEST_ASSERTF(st == HSRL_E_INPUT && strstr(hsrl_err_message(), "not an HDF5 file"), "%s",
                                  hsrl_err_message());
    else if (st != HSRL_OK) TEST_ASSERTF(st == HSRL_E_CORRUPT, "%s", hsrl_err_message());
    io_h5_close(f);
  }
  hsrl_free(buf);
}

/* XORs the byte at offset `at` of the file with mask, in place. */
static int xor_byte(const char *path, long at, unsigned char mask) {
  int fd = open(path, O_RDWR);
  unsigned char b;
  int ok = fd >= 0 && pread(fd, &b, 1, at) == 1;
  b ^= mask;
  ok = ok && pwrite(fd, &b, 1, at) == 1;
  if (fd >= 0) close(fd);
  return ok;
}

/* Finds the zstd frames (magic 28 B5 2F FD) in the file: the compressed chunks. */
static int find_frames(const unsigned char *buf, long n, long *at, int cap) {
  int k = 0;
  for (long i = 0; i + 4 <= n && k < cap; i++)
    if (buf[i] == 0x28 && buf[i + 1] == 0xB5 && buf[i + 2] == 0x2F && buf[i + 3] == 0xFD) at[k++] = i;
  return k;
}

static void test_flipped_bytes(void) {
  const char *good = tmp_path("dmg_good2.h5"), *bad = tmp_path("dmg_flip.h5");
  dmg_fill();
  TEST_ASSERT(dmg_write(good) == HSRL_OK);
  long n = 0;
  unsigned char *buf = slurp(good, &n);
  TEST_ASSERT(buf != NULL);
  long frames[16];
  int n_frames = find_frames(buf, n, frames, 16);
  TEST_ASSERTF(n_frames >= 2, "found %d zstd frames", n_frames);
  TEST_ASSERT(spit(bad, buf, n)); /* then damaged and repaired one byte at a time */

  /* inside every compressed chunk: always an error (zstd's frame checksum), which says where */
  int n_chunk_trials = 0;
  for (int k = 0; k < n_frames; k++) {
    long end = k + 1 < n_frames ? frames[k + 1] : n;
    for (long off = frames[k]; off < end && off < frames[k] + 400; off += 7) {
      TEST_ASSERT(xor_byte(bad, off, 0xFF));
      int r = dmg_check(bad);
      TEST_ASSERT(xor_byte(bad, off, 0xFF)); /* undo */
      TEST_ASSERTF(r == 1, "byte %ld in chunk %d flipped: outcome %d, \"%s\"", off, k, r, hsrl_err_message());
      TEST_ASSERTF(strstr(hsrl_err_message(), "a/x") || strstr(hsrl_err_message(), "b/ids"),
                   "message does not name the dataset: %s", hsrl_err_message());
      n_chunk_trials++;
    }
  }
  TEST_ASSERT(n_chunk_trials > 50);

  /* anywhere in the file (metadata included): an error or the right data, never a crash and
   * never wrong data. The metadata of the 1.10 format carries checksums. */
  int n_errors = 0, n_trials = 0;
  for (long off = 0; off < n; off += (off < 4096 ? 5 : 61)) {
    for (int m = (off / 5) % 2; m < 2; m += 2) { /* alternately a whole byte or its low bit */
      unsigned char mask = m ? 0x01 : 0xFF;
      TEST_ASSERT(xor_byte(bad, off, mask));
      int r = dmg_check(bad);
      TEST_ASSERT(xor_byte(bad, off, mask));
      TEST_ASSERTF(r != 2, "byte %ld xor %02x: %s", off, mask,
                   hsrl_err_message()[0] ? hsrl_err_message() : "read succeeded with different data");
      n_errors += r == 1, n_trials++;
    }
  }
  TEST_ASSERTF(n_errors > n_trials / 4, "only %d of %d damaged files were noticed", n_errors, n_trials);
  hsrl_free(buf);
}

static void test_not_hdf5_missing_empty_directory(void) {
  const char *text = tmp_path("text.h5"), *empty = tmp_path("empty.h5"), *missing = tmp_path("missing.h5");
  const unsigned char words[] = "this is not an HDF5 file, just some text that happens to be long enough\n";
  TEST_ASSERT(spit(text, words, (long)sizeof words - 1));
  TEST_ASSERT(spit(empty, words, 0));
  io_h5 *f = (io_h5 *)1;
  TEST_ASSERT(io_h5_open(&f, text) == HSRL_E_INPUT && f == NULL);
  TEST_ASSERT(message_has(text, "not an HDF5 file"));
  TEST_ASSERT(io_h5_open(&f, empty) == HSRL_E_INPUT && message_has(empty, "not an HDF5 file"));
  TEST_ASSERT(io_h5_open(&f, missing) == HSRL_E_INPUT && message_has(missing, "No such file"));
  TEST_ASSERT(io_h5_open(&f, test_tmpdir()) == HSRL_E_INPUT && message_has(test_tmpdir(), "directory"));
  TEST_ASSERT(hsrl_status_exit_code(HSRL_E_INPUT) == 2 && hsrl_status_exit_code(HSRL_E_CORRUPT) == 2);
  /* an HDF5 signature followed by garbage */
  unsigned char fake[4096];
  static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  hsrl_rng r;
  hsrl_rng_init(&r, 5, 0);
  for (size_t i = 0; i < sizeof fake; i++) fake[i] = (unsigned char)hsrl_rng_u32(&r);
  memcpy(fake, sig, 8);
  TEST_ASSERT(spit(text, fake, (long)sizeof fake));
  TEST_ASSERT(io_h5_open(&f, text) == HSRL_E_CORRUPT && message_has(text, "cannot open"));
}

/* TEST_RUN, and every test must leave no HDF5 object open behind it. */
#define RUN(fn)                                                                                     \
  do {                                                                                              \
    test_begin(#fn);                                                                                \
    fn();                                                                                           \
    int64_t left_ = io_h5_open_handles();                                                          \
    if (!test_failed_now() && left_ != 0) test_fail(__FILE__, __LINE__, "%lld HDF5 objects left open", (long long)left_); \
    test_end();                                                                                     \
  } while (0)

int main(void) {
  RUN(test_handles_are_counted);
  RUN(test_round_trip_all_types);
  RUN(test_multi_chunk_compressed);
  RUN(test_commit_is_atomic_and_close_discards);
  RUN(test_files_are_reproducible);
  RUN(test_attributes);
  RUN(test_stamps);
  RUN(test_read_errors_name_file_and_dataset);
  RUN(test_list);
  RUN(test_rows);
  RUN(test_h5dump_reads_with_plugin);
  RUN(test_h5py_reads_our_files);
  RUN(test_we_read_h5py_files);
  RUN(test_truncated_files);
  RUN(test_flipped_bytes);
  RUN(test_not_hdf5_missing_empty_directory);
  return test_summary();
}
