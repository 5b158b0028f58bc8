/* replay_queue.h: the bounded input queue of a replay shard: compressed transition blocks waiting
 * to be decoded and inserted (architecture.md "The distributed job"; style.md: no unbounded
 * queues between roles).
 *
 * A FIFO of at most n_slots byte blocks of at most slot_bytes each, all storage allocated by
 * replay_queue_init. A push into a full queue is refused (returns 0): that is the push back, the
 * sender keeps its block and tries again later; nothing is dropped and nothing is allocated. */
#ifndef REPLAY_QUEUE_H
#define REPLAY_QUEUE_H

#include <stddef.h>
#include <stdint.h>

typedef struct replay_queue replay_queue;

replay_queue *replay_queue_init(int64_t n_slots, size_t slot_bytes); /* n_slots >= 1 */
void replay_queue_free(replay_queue *q); /* NULL ok */

int64_t replay_queue_length(const replay_queue *q);   /* blocks queued */
int64_t replay_queue_capacity(const replay_queue *q); /* n_slots */
size_t replay_queue_slot_bytes(const replay_queue *q);

/* Copies data[0..n) (1 <= n <= slot_bytes, checked) to the back: 1, or 0 when the queue is full. */
int replay_queue_push(replay_queue *q, const void *data, size_t n);
/* The i-th block from the front (0: the front), its size in *n; NULL when i >= length. */
const void *replay_queue_at(const replay_queue *q, int64_t i, size_t *n);
void replay_queue_pop(replay_queue *q); /* drops the front block; the queue must not be empty */
void replay_queue_clear(replay_queue *q);

#endif
