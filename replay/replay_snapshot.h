/* replay_snapshot.h: a replay shard as an HDF5 file, runs/<name>/replay/shard-<r>-step-<k>.h5
 * (architecture.md "Files a user sees": transitions (chunked, compressed), counters; "Fault
 * tolerance": a checkpoint is a consistent cut, each file written to a temporary name, flushed
 * and renamed).
 *
 * The file (io_h5: atomic, stamped kind "replay-shard", REPLAY_SNAPSHOT_VERSION, the shard's
 * config hash) holds the whole state, so that reading it back gives a shard that behaves exactly
 * as the written one (the same samples, the same limiter decisions, the same queue):
 *   /shard        attributes: capacity, history_len, slate_size, n_levels, with_logp, max_vocab,
 *                 token_bytes (1 or 2), store_next_history, max_batch, block_rows, queue_blocks,
 *                 seed, stream (u64), samples_per_insert, min_size_to_sample, error_buffer
 *   /counters     attributes: size, inserted, sampled, sample_calls, sample_waits, insert_waits,
 *                 queue_full, blocks_received, blocks_rejected
 *   /limiter      attributes: inserts, samples, deletes, min_diff, max_diff
 *   /rng          int64 (11): the sampling stream (key 2, counter 4, buffer 4, words left)
 *                 (every dataset is zstd-compressed, so every byte read is checksummed)
 *   /transitions  the ring's slots 0..size-1 in slot order (transition t is in slot
 *                 t % capacity; the oldest held is in slot (inserted - size) % capacity), one
 *                 chunked dataset per field, byte-shuffle + zstd (filter 32015):
 *                   user (n) int32, history (n, H) int32, slate (n, K) int32,
 *                   tokens (n, K, L) uint8 or uint16 (when L > 0), clicks (n, K) uint8 0/1,
 *                   done (n) uint8, reward (n) float32, behaviour_logp (n, K, L) float32 (when
 *                   carried), policy_version (n) int32, next_user (n) int32, next_history
 *                   (n, H) int32 only with store_next_history (else the attribute
 *                   /transitions next_history says how to derive it);
 *                 absent when the shard is empty
 *   /queue        attribute n_blocks, head_rows_done (rows of the front block already in the
 *                 ring); datasets block-00000, ... (uint8, the framed blocks as received)
 * h5dump and h5py read it with HDF5_PLUGIN_PATH=<build>/plugins (our zstd plugin; Debian's
 * python3-hdf5plugin has no zstd filter of its own, a pip hdf5plugin has one on import).
 *
 * Reading rejects (with a message naming the file and the object) a file of another kind or
 * version, a damaged file (HSRL_E_CORRUPT: truncated, bad checksum, undecodable chunk) and
 * contents that disagree with their own attributes (wrong dataset sizes, clicks or done other
 * than 0/1, tokens outside the vocabulary, inconsistent counters). */
#ifndef REPLAY_SNAPSHOT_H
#define REPLAY_SNAPSHOT_H

#include "common/hsrl_status.h"
#include "replay/replay_shard.h"

#define REPLAY_SNAPSHOT_KIND "replay-shard"
#define REPLAY_SNAPSHOT_VERSION 1

/* Writes s to path atomically (nothing under path on failure; an old file stays until the new
 * one is complete). */
hsrl_status replay_snapshot_write(replay_shard *s, const char *path);

/* A new shard with the file's config and state (*out NULL on error). */
hsrl_status replay_snapshot_read(replay_shard **out, const char *path);

/* Restores the file's state into s, whose config must equal the file's (HSRL_E_INPUT naming the
 * first field that differs; the config hashes must match when both are nonzero). On error s is
 * left in an unspecified state: free it. */
hsrl_status replay_snapshot_restore(replay_shard *s, const char *path);

#endif
