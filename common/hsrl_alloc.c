/* hsrl_alloc.c: see hsrl_alloc.h. */
#include "common/hsrl_alloc.h"

#include <stdlib.h>
#include <string.h>

#include "common/hsrl_check.h"

/* atomic: roles running as threads of one process (the in-process transport) allocate at once */
static _Atomic int64_t alloc_calls = 0;

static void *checked(void *p, size_t n) {
  HSRL_CHECKF(p != NULL || n == 0, "out of memory allocating %zu bytes", n);
  alloc_calls++;
  return p;
}

void *hsrl_malloc(size_t n_bytes) { return checked(malloc(n_bytes ? n_bytes : 1), n_bytes); }

void *hsrl_calloc(size_t n_items, size_t item_bytes) {
  HSRL_CHECKF(item_bytes == 0 || n_items <= SIZE_MAX / item_bytes, "allocation size overflow");
  return checked(calloc(n_items ? n_items : 1, item_bytes ? item_bytes : 1), n_items * item_bytes);
}

void *hsrl_realloc(void *p, size_t n_bytes) { return checked(realloc(p, n_bytes ? n_bytes : 1), n_bytes); }

void *hsrl_alloc_aligned(size_t n_bytes) {
  size_t rounded = (n_bytes + 63) / 64 * 64;
  void *p = aligned_alloc(64, rounded ? rounded : 64);
  checked(p, n_bytes);
  memset(p, 0, rounded ? rounded : 64);
  return p;
}

char *hsrl_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = hsrl_malloc(n);
  memcpy(d, s, n);
  return d;
}

void hsrl_free(void *p) { free(p); }

int64_t hsrl_alloc_count(void) { return alloc_calls; }
