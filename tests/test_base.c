/* test_base.c: status messages, exit codes, checked allocation counting, the arena. */
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_arena.h"
#include "common/hsrl_status.h"
#include "tests/test_harness.h"

static void test_error_message_names_file_line_field(void) {
  hsrl_status st = hsrl_err(HSRL_E_INPUT, "ratings.dat", 17, "Rating", "not a number: '%s'", "x");
  TEST_ASSERT(st == HSRL_E_INPUT);
  TEST_ASSERT(!strcmp(hsrl_err_message(), "ratings.dat:17: field 'Rating': not a number: 'x'"));
  hsrl_err_context(st, "preparing %s", "ml1m");
  TEST_ASSERT(!strcmp(hsrl_err_message(), "preparing ml1m: ratings.dat:17: field 'Rating': not a number: 'x'"));
  TEST_ASSERT(hsrl_status_exit_code(HSRL_E_INPUT) == 2);
  TEST_ASSERT(hsrl_status_exit_code(HSRL_E_USAGE) == 2);
  TEST_ASSERT(hsrl_status_exit_code(HSRL_E_IO) == 1);
  TEST_ASSERT(hsrl_status_exit_code(HSRL_OK) == 0);
}

static void test_alloc_counts_calls(void) {
  int64_t before = hsrl_alloc_count();
  void *a = hsrl_malloc(10), *b = hsrl_calloc(3, 4), *c = hsrl_alloc_aligned(100);
  TEST_ASSERT(hsrl_alloc_count() == before + 3);
  TEST_ASSERT(((uintptr_t)c & 63) == 0);
  hsrl_free(a), hsrl_free(b), hsrl_free(c), hsrl_free(NULL);
  TEST_ASSERT(hsrl_alloc_count() == before + 3);
}

static void test_arena_alignment_reset_and_no_allocation(void) {
  hsrl_arena a;
  hsrl_arena_init(&a, 1000);
  int64_t before = hsrl_alloc_count();
  float *x = hsrl_arena_floats(&a, 3);
  unsigned char *y = hsrl_arena_alloc(&a, 1);
  TEST_ASSERT(((uintptr_t)x & 63) == 0 && ((uintptr_t)y & 63) == 0);
  TEST_ASSERT(y > (unsigned char *)x);
  size_t mark = hsrl_arena_mark(&a);
  hsrl_arena_alloc(&a, 500);
  hsrl_arena_restore(&a, mark);
  TEST_ASSERT(hsrl_arena_mark(&a) == mark);
  hsrl_arena_reset(&a);
  TEST_ASSERT(hsrl_arena_floats(&a, 1) == x);
  TEST_ASSERT(hsrl_alloc_count() == before);
  TEST_ASSERT(a.peak >= 564);
  hsrl_arena_free(&a);
  hsrl_arena_free(NULL);
}

int main(void) {
  TEST_RUN(test_error_message_names_file_line_field);
  TEST_RUN(test_alloc_counts_calls);
  TEST_RUN(test_arena_alignment_reset_and_no_allocation);
  return test_summary();
}
