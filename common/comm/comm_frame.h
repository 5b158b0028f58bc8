/* comm_frame.h: the wire format of one message between roles (architecture.md, "The distributed
 * job"; issue 6). Both transports (MPI and in-process) carry exactly these bytes, so a corrupt,
 * truncated or foreign frame is rejected by the same code whichever transport delivered it.
 *
 * A frame is a 40-byte header followed by `bytes` payload bytes. Header, little-endian:
 *   offset size field
 *    0      4   magic "HSRM"
 *    4      2   format version (COMM_FRAME_VERSION)
 *    6      2   kind (comm_kind)
 *    8      4   sender rank (int32)
 *   12      4   checksum (uint32, see below)
 *   16      8   policy version of the sender (int64; what the payload was made with)
 *   24      8   config hash of the sender (uint64; hsrl_settings_hash)
 *   32      8   payload byte count (uint64)
 * Checksum = XXH32(payload, seed = XXH32(the 40 header bytes with the checksum field zeroed, 0)):
 * it covers header and payload, and header and payload need not be contiguous (the parameter
 * broadcast sends them as two messages). XXH32 is implemented here (zstd does not export its
 * copy); test_comm_frame.c pins it to the reference implementation's known answers.
 *
 * Payloads are opaque bytes here; the roles define them per kind. Rejections return
 * HSRL_E_CORRUPT with a message saying what is wrong (truncated, bad magic, version, kind,
 * length mismatch, checksum); the transport prefixes the receiving and sending ranks. */
#ifndef COMM_FRAME_H
#define COMM_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "common/hsrl_status.h"

#define COMM_FRAME_MAGIC "HSRM"
#define COMM_FRAME_VERSION 1
#define COMM_FRAME_HEADER_BYTES 40
#define COMM_FRAME_CHECKSUM_OFFSET 12

/* Message kinds of the distributed job. 0 is never valid (a zeroed buffer is not a message).
 * Appending a kind keeps the format version; renumbering one needs a new version. */
typedef enum comm_kind {
  COMM_KIND_HELLO = 1,          /* start-up handshake */
  COMM_KIND_TRANSITIONS = 2,    /* actor -> replay: a compressed block of transitions */
  COMM_KIND_SAMPLE_REQUEST = 3, /* learner -> replay */
  COMM_KIND_SAMPLE_BATCH = 4,   /* replay -> learner */
  COMM_KIND_PARAMS = 5,         /* learner -> actors: flat parameter vector (comm_bcast_*) */
  COMM_KIND_CHECKPOINT_REQUEST = 6,
  COMM_KIND_CHECKPOINT_DONE = 7,
  COMM_KIND_STATS = 8,          /* any role -> learner: counters for metrics.tsv */
  COMM_KIND_STOP = 9,           /* learner -> everyone: finish and exit */
  COMM_KIND_PING = 10,          /* no meaning to the roles: liveness checks and tests */
  COMM_KIND_COUNT = 11          /* one past the last valid kind */
} comm_kind;

/* A decoded header. Writers fill kind, sender, policy_version, config_hash and bytes; version and
 * checksum are set by the encoder and filled in by the decoder. */
typedef struct comm_header {
  int kind;               /* comm_kind */
  int sender;             /* rank */
  int64_t policy_version;
  uint64_t config_hash;
  int64_t bytes;          /* payload bytes */
  int version;            /* decoded only */
  uint32_t checksum;      /* decoded only */
} comm_header;

/* "PARAMS", "SAMPLE_BATCH", ...; "unknown" for a value outside 1..COMM_KIND_COUNT-1. */
const char *comm_kind_name(int kind);

/* XXH32 of n bytes (the xxHash reference algorithm, any alignment). */
uint32_t comm_frame_xxh32(const void *data, size_t n, uint32_t seed);

/* Writes the header bytes for hdr and payload (hdr->bytes long), checksum included. */
void comm_frame_encode_header(uint8_t out[COMM_FRAME_HEADER_BYTES], const comm_header *hdr,
                              const void *payload);

/* Recomputes the checksum field of an encoded header in place from its other bytes and the
 * payload (used by the encoder, and by tests to forge well-formed frames with a wrong field). */
void comm_frame_seal(uint8_t header[COMM_FRAME_HEADER_BYTES], const void *payload,
                     int64_t payload_bytes);

/* Validates the header bytes and a payload stored apart from them (magic, version, kind, payload
 * length against payload_bytes, checksum) and decodes into *hdr. */
hsrl_status comm_frame_decode_header(comm_header *hdr, const uint8_t header[COMM_FRAME_HEADER_BYTES],
                                     const void *payload, int64_t payload_bytes);

/* Writes header + payload contiguously into buf (cap bytes; needs COMM_FRAME_HEADER_BYTES +
 * hdr->bytes). HSRL_E_INPUT when it does not fit. */
hsrl_status comm_frame_write(void *buf, int64_t cap, const comm_header *hdr, const void *payload);

/* Validates a contiguous frame of len bytes, decodes its header and points *payload into buf. */
hsrl_status comm_frame_read(const void *buf, int64_t len, comm_header *hdr, const void **payload);

#endif
