/* hsrl_arena.h: a bump allocator over one block ("size then place").
 *
 * One allocation at init; hsrl_arena_alloc() hands out aligned, zero-filled pieces; reset (or
 * restore to a mark) makes them all available again. Used for per-step scratch and for the
 * activations of a fixed batch size. Running past the capacity is a bug (a check failure that
 * names the capacity and the request), because sizes are computed before the arena is made. */
#ifndef HSRL_ARENA_H
#define HSRL_ARENA_H

#include <stddef.h>

typedef struct hsrl_arena {
  unsigned char *base;
  size_t capacity;
  size_t used;
  size_t peak;
} hsrl_arena;

void hsrl_arena_init(hsrl_arena *a, size_t capacity_bytes);
void hsrl_arena_free(hsrl_arena *a); /* NULL or never-initialised zeroed struct: no-op */
void *hsrl_arena_alloc(hsrl_arena *a, size_t n_bytes); /* 64-byte aligned, zero-filled */
float *hsrl_arena_floats(hsrl_arena *a, size_t n_floats);
size_t hsrl_arena_mark(const hsrl_arena *a);
void hsrl_arena_restore(hsrl_arena *a, size_t mark);
void hsrl_arena_reset(hsrl_arena *a);

#endif
