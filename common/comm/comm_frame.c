/* comm_frame.c: see comm_frame.h. */
#include "common/comm/comm_frame.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/hsrl_check.h"

static const char *const kind_names[COMM_KIND_COUNT] = {
    "unknown",        "HELLO",        "TRANSITIONS",     "SAMPLE_REQUEST",
    "SAMPLE_BATCH",   "PARAMS",       "CHECKPOINT_REQUEST", "CHECKPOINT_DONE",
    "STATS",          "STOP",         "PING",
};

const char *comm_kind_name(int kind) {
  return kind > 0 && kind < COMM_KIND_COUNT ? kind_names[kind] : kind_names[0];
}

/* ---- XXH32 (Yann Collet's xxHash, 32-bit variant) ---- */

#define XXH_P1 2654435761u
#define XXH_P2 2246822519u
#define XXH_P3 3266489917u
#define XXH_P4 668265263u
#define XXH_P5 374761393u

static uint32_t rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

static uint32_t read_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t xxh_round(uint32_t acc, uint32_t input) {
  acc += input * XXH_P2;
  return rotl32(acc, 13) * XXH_P1;
}

uint32_t comm_frame_xxh32(const void *data, size_t n, uint32_t seed) {
  const uint8_t *p = data, *end = p + n;
  uint32_t h;
  if (n >= 16) {
    const uint8_t *limit = end - 16;
    uint32_t v1 = seed + XXH_P1 + XXH_P2, v2 = seed + XXH_P2, v3 = seed, v4 = seed - XXH_P1;
    do {
      v1 = xxh_round(v1, read_le32(p));
      v2 = xxh_round(v2, read_le32(p + 4));
      v3 = xxh_round(v3, read_le32(p + 8));
      v4 = xxh_round(v4, read_le32(p + 12));
      p += 16;
    } while (p <= limit);
    h = rotl32(v1, 1) + rotl32(v2, 7) + rotl32(v3, 12) + rotl32(v4, 18);
  } else {
    h = seed + XXH_P5;
  }
  h += (uint32_t)n;
  for (; end - p >= 4; p += 4) h = rotl32(h + read_le32(p) * XXH_P3, 17) * XXH_P4;
  for (; p < end; p++) h = rotl32(h + (uint32_t)*p * XXH_P5, 11) * XXH_P1;
  h ^= h >> 15;
  h *= XXH_P2;
  h ^= h >> 13;
  h *= XXH_P3;
  h ^= h >> 16;
  return h;
}

/* ---- little-endian field access ---- */

static void put_le(uint8_t *p, uint64_t v, int n_bytes) {
  for (int i = 0; i < n_bytes; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n_bytes) {
  uint64_t v = 0;
  for (int i = 0; i < n_bytes; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

static uint32_t frame_checksum(const uint8_t header[COMM_FRAME_HEADER_BYTES], const void *payload,
                               int64_t payload_bytes) {
  uint8_t h[COMM_FRAME_HEADER_BYTES];
  memcpy(h, header, sizeof h);
  memset(h + COMM_FRAME_CHECKSUM_OFFSET, 0, 4);
  uint32_t seed = comm_frame_xxh32(h, sizeof h, 0);
  return comm_frame_xxh32(payload, (size_t)payload_bytes, seed);
}

void comm_frame_seal(uint8_t header[COMM_FRAME_HEADER_BYTES], const void *payload,
                     int64_t payload_bytes) {
  put_le(header + COMM_FRAME_CHECKSUM_OFFSET, frame_checksum(header, payload, payload_bytes), 4);
}

void comm_frame_encode_header(uint8_t out[COMM_FRAME_HEADER_BYTES], const comm_header *hdr,
                              const void *payload) {
  HSRL_CHECKF(hdr->kind > 0 && hdr->kind < COMM_KIND_COUNT, "kind %d", hdr->kind);
  HSRL_CHECKF(hdr->bytes >= 0 && (payload != NULL || hdr->bytes == 0), "payload of %" PRId64 " bytes",
              hdr->bytes);
  memcpy(out, COMM_FRAME_MAGIC, 4);
  put_le(out + 4, COMM_FRAME_VERSION, 2);
  put_le(out + 6, (uint64_t)hdr->kind, 2);
  put_le(out + 8, (uint32_t)hdr->sender, 4);
  put_le(out + 16, (uint64_t)hdr->policy_version, 8);
  put_le(out + 24, hdr->config_hash, 8);
  put_le(out + 32, (uint64_t)hdr->bytes, 8);
  comm_frame_seal(out, payload, hdr->bytes);
}

hsrl_status comm_frame_decode_header(comm_header *hdr, const uint8_t header[COMM_FRAME_HEADER_BYTES],
                                     const void *payload, int64_t payload_bytes) {
  if (memcmp(header, COMM_FRAME_MAGIC, 4) != 0) {
    char shown[4 * 4 + 1];
    size_t n_shown = 0;
    for (int i = 0; i < 4; i++) {
      unsigned c = header[i];
      int printable = c >= 32 && c < 127 && c != '\\' && c != '"';
      n_shown += (size_t)snprintf(shown + n_shown, sizeof shown - n_shown,
                                  printable ? "%c" : "\\x%02x", c);
    }
    return hsrl_err(HSRL_E_CORRUPT, NULL, 0, NULL, "bad magic \"%s\", expected \"%s\" (not an hsrl message)",
                    shown, COMM_FRAME_MAGIC);
  }
  comm_header h;
  h.version = (int)get_le(header + 4, 2);
  h.kind = (int)get_le(header + 6, 2);
  h.sender = (int32_t)(uint32_t)get_le(header + 8, 4);
  h.checksum = (uint32_t)get_le(header + COMM_FRAME_CHECKSUM_OFFSET, 4);
  h.policy_version = (int64_t)get_le(header + 16, 8);
  h.config_hash = get_le(header + 24, 8);
  uint64_t n_declared = get_le(header + 32, 8);
  if (h.version != COMM_FRAME_VERSION)
    return hsrl_err(HSRL_E_CORRUPT, NULL, 0, NULL,
                    "message format version %d, this build reads version %d", h.version,
                    COMM_FRAME_VERSION);
  if (h.kind <= 0 || h.kind >= COMM_KIND_COUNT)
    return hsrl_err(HSRL_E_CORRUPT, NULL, 0, NULL, "unknown message kind %d (known kinds are 1..%d)",
                    h.kind, COMM_KIND_COUNT - 1);
  if (payload_bytes < 0 || n_declared != (uint64_t)payload_bytes)
    return hsrl_err(HSRL_E_CORRUPT, NULL, 0, NULL,
                    "length mismatch: the header of a %s message says %" PRIu64
                    " payload bytes, %" PRId64 " arrived (truncated or padded)",
                    comm_kind_name(h.kind), n_declared, payload_bytes);
  h.bytes = payload_bytes;
  uint32_t actual = frame_checksum(header, payload, payload_bytes);
  if (actual != h.checksum)
    return hsrl_err(HSRL_E_CORRUPT, NULL, 0, NULL,
                    "checksum mismatch in a %s message of %" PRId64
                    " bytes: header says %08x, contents hash to %08x",
                    comm_kind_name(h.kind), payload_bytes, (unsigned)h.checksum, (unsigned)actual);
  *hdr = h;
  return HSRL_OK;
}

hsrl_status comm_frame_write(void *buf, int64_t cap, const comm_header *hdr, const void *payload) {
  if (hdr->bytes < 0 || cap < COMM_FRAME_HEADER_BYTES || hdr->bytes > cap - COMM_FRAME_HEADER_BYTES)
    return hsrl_err(HSRL_E_INPUT, NULL, 0, NULL,
                    "a %s frame with %" PRId64 " payload bytes does not fit a %" PRId64 "-byte buffer",
                    comm_kind_name(hdr->kind), hdr->bytes, cap);
  uint8_t *b = buf;
  if (hdr->bytes > 0) memcpy(b + COMM_FRAME_HEADER_BYTES, payload, (size_t)hdr->bytes);
  comm_frame_encode_header(b, hdr, b + COMM_FRAME_HEADER_BYTES);
  return HSRL_OK;
}

hsrl_status comm_frame_read(const void *buf, int64_t len, comm_header *hdr, const void **payload) {
  if (len < COMM_FRAME_HEADER_BYTES)
    return hsrl_err(HSRL_E_CORRUPT, NULL, 0, NULL,
                    "truncated message: %" PRId64 " bytes, a header alone needs %d", len,
                    COMM_FRAME_HEADER_BYTES);
  const uint8_t *b = buf;
  hsrl_status st = comm_frame_decode_header(hdr, b, b + COMM_FRAME_HEADER_BYTES,
                                            len - COMM_FRAME_HEADER_BYTES);
  if (st == HSRL_OK) *payload = b + COMM_FRAME_HEADER_BYTES;
  return st;
}
