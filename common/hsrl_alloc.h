/* hsrl_alloc.h: checked allocation that counts calls.
 *
 * Every heap allocation in the project goes through these functions. Running out of memory is
 * treated as fatal (a check failure naming the size). hsrl_alloc_count() returns the number of
 * allocating calls so far, so a test can assert that a steady-state loop allocates nothing:
 *   int64_t before = hsrl_alloc_count(); loop(); HSRL_CHECK(hsrl_alloc_count() == before);
 * Memory is 64-byte aligned (cache lines, SIMD) when it comes from hsrl_alloc_aligned(). */
#ifndef HSRL_ALLOC_H
#define HSRL_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *hsrl_malloc(size_t n_bytes);
void *hsrl_calloc(size_t n_items, size_t item_bytes);
void *hsrl_realloc(void *p, size_t n_bytes);
void *hsrl_alloc_aligned(size_t n_bytes); /* zero-filled, 64-byte aligned; free with hsrl_free */
char *hsrl_strdup(const char *s);
void hsrl_free(void *p); /* hsrl_free(NULL) is a no-op */

int64_t hsrl_alloc_count(void);      /* allocating calls since start */

#endif
