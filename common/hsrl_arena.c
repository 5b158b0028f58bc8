/* hsrl_arena.c: see hsrl_arena.h. */
#include "common/hsrl_arena.h"

#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"

void hsrl_arena_init(hsrl_arena *a, size_t capacity_bytes) {
  a->capacity = (capacity_bytes + 63) / 64 * 64;
  a->base = hsrl_alloc_aligned(a->capacity);
  a->used = 0;
  a->peak = 0;
}

void hsrl_arena_free(hsrl_arena *a) {
  if (!a) return;
  hsrl_free(a->base);
  memset(a, 0, sizeof *a);
}

void *hsrl_arena_alloc(hsrl_arena *a, size_t n_bytes) {
  size_t start = (a->used + 63) / 64 * 64;
  HSRL_CHECKF(start <= a->capacity && n_bytes <= a->capacity - start,
              "arena of %zu bytes cannot place %zu more bytes (%zu used)", a->capacity, n_bytes,
              a->used);
  a->used = start + n_bytes;
  if (a->used > a->peak) a->peak = a->used;
  memset(a->base + start, 0, n_bytes);
  return a->base + start;
}

float *hsrl_arena_floats(hsrl_arena *a, size_t n_floats) {
  return hsrl_arena_alloc(a, n_floats * sizeof(float));
}

size_t hsrl_arena_mark(const hsrl_arena *a) { return a->used; }

void hsrl_arena_restore(hsrl_arena *a, size_t mark) {
  HSRL_CHECK(mark <= a->used);
  a->used = mark;
}

void hsrl_arena_reset(hsrl_arena *a) { a->used = 0; }
