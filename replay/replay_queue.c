/* replay_queue.c: a bounded FIFO of byte blocks in preallocated slots (see replay_queue.h). */
#include "replay/replay_queue.h"

#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"

struct replay_queue {
  int64_t n_slots, head, length;
  size_t slot_bytes;
  uint8_t *data;  /* (n_slots, slot_bytes) */
  size_t *sizes;  /* (n_slots) */
};

replay_queue *replay_queue_init(int64_t n_slots, size_t slot_bytes) {
  HSRL_CHECK(n_slots >= 1 && slot_bytes >= 1);
  replay_queue *q = hsrl_calloc(1, sizeof *q);
  q->n_slots = n_slots;
  q->slot_bytes = slot_bytes;
  q->data = hsrl_malloc((size_t)n_slots * slot_bytes);
  q->sizes = hsrl_calloc((size_t)n_slots, sizeof(size_t));
  return q;
}

void replay_queue_free(replay_queue *q) {
  if (!q) return;
  hsrl_free(q->data);
  hsrl_free(q->sizes);
  hsrl_free(q);
}

int64_t replay_queue_length(const replay_queue *q) { return q->length; }
int64_t replay_queue_capacity(const replay_queue *q) { return q->n_slots; }
size_t replay_queue_slot_bytes(const replay_queue *q) { return q->slot_bytes; }

int replay_queue_push(replay_queue *q, const void *data, size_t n) {
  HSRL_CHECKF(n >= 1 && n <= q->slot_bytes, "block of %zu bytes, slots hold %zu", n, q->slot_bytes);
  if (q->length == q->n_slots) return 0;
  int64_t slot = (q->head + q->length) % q->n_slots;
  memcpy(q->data + (size_t)slot * q->slot_bytes, data, n);
  q->sizes[slot] = n;
  q->length++;
  return 1;
}

const void *replay_queue_at(const replay_queue *q, int64_t i, size_t *n) {
  if (i < 0 || i >= q->length) return NULL;
  int64_t slot = (q->head + i) % q->n_slots;
  if (n) *n = q->sizes[slot];
  return q->data + (size_t)slot * q->slot_bytes;
}

void replay_queue_pop(replay_queue *q) {
  HSRL_CHECKF(q->length > 0, "pop from an empty queue");
  q->head = (q->head + 1) % q->n_slots;
  q->length--;
}

void replay_queue_clear(replay_queue *q) { q->head = q->length = 0; }
