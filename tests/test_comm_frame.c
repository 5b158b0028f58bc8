/* test_comm_frame.c: the message wire format (common/comm/comm_frame.h): XXH32 against the
 * reference implementation's answers, round trips, the byte layout, and rejection of every
 * corruption: each header byte flipped, each header field forged with a valid checksum, each
 * payload byte flipped, truncation at every length, padding. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/comm/comm_frame.h"
#include "common/hsrl_check.h"
#include "common/hsrl_rng.h"
#include "tests/test_harness.h"

#define N_PAYLOAD 300
#define N_FRAME (COMM_FRAME_HEADER_BYTES + N_PAYLOAD)

/* Known answers computed with libxxhash 0.8.1 (XXH32(data, len, seed)). */
static void test_xxh32_known_answers(void) {
  static const char spam[] = "Nobody inspects the spammish repetition";
  TEST_ASSERT(comm_frame_xxh32("", 0, 0) == 0x02cc5d05u);
  TEST_ASSERT(comm_frame_xxh32("a", 1, 0) == 0x550d7456u);
  TEST_ASSERT(comm_frame_xxh32("abc", 3, 0) == 0x32d153ffu);
  TEST_ASSERT(comm_frame_xxh32(spam, 39, 0) == 0xe2293b2fu);
  TEST_ASSERT(comm_frame_xxh32(spam, 39, 0x9e3779b1u) == 0xc9e89e68u);
  uint8_t bytes[259];
  for (int i = 0; i < 256; i++) bytes[i] = (uint8_t)i;
  memcpy(bytes + 256, "xyz", 3);
  TEST_ASSERT(comm_frame_xxh32(bytes, 259, 12345) == 0x414be162u);
  /* Alignment must not matter (the payload sits at offset 40 of a frame, or anywhere). */
  uint8_t shifted[260];
  memcpy(shifted + 1, bytes, 259);
  TEST_ASSERT(comm_frame_xxh32(shifted + 1, 259, 12345) == 0x414be162u);
}

static void fill_payload(uint8_t *p, int64_t n, uint64_t seed) {
  hsrl_rng r;
  hsrl_rng_init(&r, seed, 0);
  for (int64_t i = 0; i < n; i++) p[i] = (uint8_t)hsrl_rng_u32(&r);
}

static comm_header sample_header(int64_t bytes) {
  comm_header h = {.kind = COMM_KIND_SAMPLE_BATCH, .sender = 7, .policy_version = -123456789012LL,
                   .config_hash = 0xfedcba9876543210ull, .bytes = bytes};
  return h;
}

static void test_round_trip_and_layout(void) {
  const int64_t sizes[] = {0, 1, 15, 16, 17, 63, 64, 65, N_PAYLOAD};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    int64_t n = sizes[k];
    uint8_t payload[N_PAYLOAD], frame[N_FRAME];
    fill_payload(payload, n, 10 + (uint64_t)k);
    comm_header h = sample_header(n);
    TEST_ASSERT(comm_frame_write(frame, COMM_FRAME_HEADER_BYTES + n, &h, payload) == HSRL_OK);
    comm_header back;
    const void *p = NULL;
    hsrl_status st = comm_frame_read(frame, COMM_FRAME_HEADER_BYTES + n, &back, &p);
    TEST_ASSERTF(st == HSRL_OK, "size %" PRId64 ": %s", n, hsrl_err_message());
    TEST_ASSERT(back.kind == h.kind && back.sender == h.sender);
    TEST_ASSERT(back.policy_version == h.policy_version && back.config_hash == h.config_hash);
    TEST_ASSERT(back.bytes == n && back.version == COMM_FRAME_VERSION);
    TEST_ASSERT(p == frame + COMM_FRAME_HEADER_BYTES);
    TEST_ASSERT(n == 0 || memcmp(p, payload, (size_t)n) == 0);
    /* The documented layout, little-endian. */
    TEST_ASSERT(memcmp(frame, "HSRM", 4) == 0);
    TEST_ASSERT(frame[4] == COMM_FRAME_VERSION && frame[5] == 0);
    TEST_ASSERT(frame[6] == COMM_KIND_SAMPLE_BATCH && frame[7] == 0);
    TEST_ASSERT(frame[8] == 7 && frame[9] == 0 && frame[10] == 0 && frame[11] == 0);
    uint32_t sum = (uint32_t)frame[12] | (uint32_t)frame[13] << 8 | (uint32_t)frame[14] << 16 |
                   (uint32_t)frame[15] << 24;
    TEST_ASSERT(sum == back.checksum);
    TEST_ASSERT(frame[24] == 0x10 && frame[31] == 0xfe); /* config hash, low byte first */
    TEST_ASSERT(frame[32] == (uint8_t)n && frame[33] == (uint8_t)(n >> 8) && frame[39] == 0);
    /* Checksum = XXH32(payload, seed = XXH32(header with the checksum zeroed)). */
    uint8_t zeroed[COMM_FRAME_HEADER_BYTES];
    memcpy(zeroed, frame, sizeof zeroed);
    memset(zeroed + COMM_FRAME_CHECKSUM_OFFSET, 0, 4);
    uint32_t seed = comm_frame_xxh32(zeroed, sizeof zeroed, 0);
    TEST_ASSERT(comm_frame_xxh32(payload, (size_t)n, seed) == sum);
    /* Header and payload apart (the broadcast path) give the same bytes. */
    uint8_t hdr_only[COMM_FRAME_HEADER_BYTES];
    comm_frame_encode_header(hdr_only, &h, payload);
    TEST_ASSERT(memcmp(hdr_only, frame, sizeof hdr_only) == 0);
    TEST_ASSERT(comm_frame_decode_header(&back, hdr_only, payload, n) == HSRL_OK);
  }
}

static void test_write_refuses_small_buffer(void) {
  uint8_t payload[N_PAYLOAD] = {0}, frame[N_FRAME];
  comm_header h = sample_header(N_PAYLOAD);
  TEST_ASSERT(comm_frame_write(frame, N_FRAME - 1, &h, payload) == HSRL_E_INPUT);
  TEST_ASSERTF(strstr(hsrl_err_message(), "does not fit") != NULL, "%s", hsrl_err_message());
  TEST_ASSERT(comm_frame_write(frame, 10, &h, payload) == HSRL_E_INPUT);
  TEST_ASSERT(comm_frame_write(frame, N_FRAME, &h, payload) == HSRL_OK);
}

static void make_frame(uint8_t frame[N_FRAME], uint64_t seed) {
  uint8_t payload[N_PAYLOAD];
  fill_payload(payload, N_PAYLOAD, seed);
  comm_header h = sample_header(N_PAYLOAD);
  HSRL_CHECK(comm_frame_write(frame, N_FRAME, &h, payload) == HSRL_OK);
}

/* Which error a corrupted header byte must produce, by field. */
static const char *expected_error(int offset, int resealed) {
  if (offset < 4) return "bad magic";
  if (offset < 6) return "version";
  if (offset < 8) return "kind";
  if (offset >= 32) return "length mismatch";
  return resealed ? NULL : "checksum mismatch"; /* sender, checksum, policy, config */
}

static void test_every_flipped_header_byte_rejected(void) {
  uint8_t frame[N_FRAME];
  make_frame(frame, 1);
  for (int off = 0; off < COMM_FRAME_HEADER_BYTES; off++) {
    for (int bit = 0; bit < 8; bit++) {
      uint8_t bad[N_FRAME];
      memcpy(bad, frame, sizeof bad);
      bad[off] ^= (uint8_t)(1u << bit);
      comm_header h;
      const void *p;
      hsrl_err_clear();
      hsrl_status st = comm_frame_read(bad, N_FRAME, &h, &p);
      TEST_ASSERTF(st == HSRL_E_CORRUPT, "byte %d bit %d accepted", off, bit);
      const char *want = expected_error(off, 0);
      /* A flipped kind bit may give another valid kind: then the checksum catches it. */
      int ok = strstr(hsrl_err_message(), want) != NULL ||
               (off >= 6 && off < 8 && strstr(hsrl_err_message(), "checksum mismatch") != NULL);
      TEST_ASSERTF(ok, "byte %d bit %d: wanted '%s', got: %s", off, bit, want, hsrl_err_message());
    }
  }
}

/* A well-formed frame (valid checksum) with a wrong field: magic, version, kind and length are
 * rejected by the frame reader; sender, policy version and config hash are left to the
 * transport (comm.c), which knows the real sender and its own config. */
static void test_forged_fields(void) {
  uint8_t frame[N_FRAME];
  make_frame(frame, 2);
  const int offsets[] = {0, 3, 4, 5, 6, 7, 8, 16, 23, 24, 31, 32, 33, 39};
  for (size_t k = 0; k < sizeof offsets / sizeof offsets[0]; k++) {
    int off = offsets[k];
    uint8_t bad[N_FRAME];
    memcpy(bad, frame, sizeof bad);
    bad[off] ^= 0x80;
    comm_frame_seal(bad, bad + COMM_FRAME_HEADER_BYTES, N_PAYLOAD);
    comm_header h;
    const void *p;
    hsrl_err_clear();
    hsrl_status st = comm_frame_read(bad, N_FRAME, &h, &p);
    const char *want = expected_error(off, 1);
    if (!want) {
      TEST_ASSERTF(st == HSRL_OK, "byte %d: %s", off, hsrl_err_message());
      continue;
    }
    TEST_ASSERTF(st == HSRL_E_CORRUPT, "forged byte %d accepted", off);
    TEST_ASSERTF(strstr(hsrl_err_message(), want) != NULL, "byte %d: wanted '%s', got: %s", off, want,
                 hsrl_err_message());
  }
  /* The messages say what was found. */
  uint8_t bad[N_FRAME];
  memcpy(bad, frame, sizeof bad);
  memcpy(bad, "HDF\x89", 4);
  comm_header h;
  const void *p;
  TEST_ASSERT(comm_frame_read(bad, N_FRAME, &h, &p) == HSRL_E_CORRUPT);
  TEST_ASSERTF(strstr(hsrl_err_message(), "bad magic \"HDF\\x89\", expected \"HSRM\"") != NULL, "%s",
               hsrl_err_message());
  memcpy(bad, frame, sizeof bad);
  bad[4] = 2;
  comm_frame_seal(bad, bad + COMM_FRAME_HEADER_BYTES, N_PAYLOAD);
  TEST_ASSERT(comm_frame_read(bad, N_FRAME, &h, &p) == HSRL_E_CORRUPT);
  TEST_ASSERTF(strstr(hsrl_err_message(), "version 2, this build reads version 1") != NULL, "%s",
               hsrl_err_message());
  memcpy(bad, frame, sizeof bad);
  bad[6] = 0;
  comm_frame_seal(bad, bad + COMM_FRAME_HEADER_BYTES, N_PAYLOAD);
  TEST_ASSERT(comm_frame_read(bad, N_FRAME, &h, &p) == HSRL_E_CORRUPT);
  TEST_ASSERTF(strstr(hsrl_err_message(), "unknown message kind 0") != NULL, "%s", hsrl_err_message());
}

static void test_every_flipped_payload_byte_rejected(void) {
  uint8_t frame[N_FRAME];
  make_frame(frame, 3);
  for (int off = COMM_FRAME_HEADER_BYTES; off < N_FRAME; off++) {
    uint8_t bad[N_FRAME];
    memcpy(bad, frame, sizeof bad);
    bad[off] ^= (uint8_t)(1u << (off % 8));
    comm_header h;
    const void *p;
    hsrl_err_clear();
    TEST_ASSERTF(comm_frame_read(bad, N_FRAME, &h, &p) == HSRL_E_CORRUPT, "payload byte %d accepted", off);
    TEST_ASSERTF(strstr(hsrl_err_message(), "checksum mismatch in a SAMPLE_BATCH message of 300 bytes") != NULL,
                 "payload byte %d: %s", off, hsrl_err_message());
  }
  /* Two swapped payload bytes (a sum of bytes would miss this). */
  uint8_t bad[N_FRAME];
  memcpy(bad, frame, sizeof bad);
  uint8_t t = bad[50];
  bad[50] = bad[51];
  bad[51] = t;
  comm_header h;
  const void *p;
  if (bad[50] != bad[51]) TEST_ASSERT(comm_frame_read(bad, N_FRAME, &h, &p) == HSRL_E_CORRUPT);
}

static void test_truncation_at_every_length_and_padding(void) {
  uint8_t frame[N_FRAME + 8];
  make_frame(frame, 4);
  for (int64_t len = 0; len < N_FRAME; len++) {
    comm_header h;
    const void *p;
    hsrl_err_clear();
    hsrl_status st = comm_frame_read(frame, len, &h, &p);
    TEST_ASSERTF(st == HSRL_E_CORRUPT, "a frame cut to %" PRId64 " bytes was accepted", len);
    const char *want = len < COMM_FRAME_HEADER_BYTES ? "truncated message" : "length mismatch";
    TEST_ASSERTF(strstr(hsrl_err_message(), want) != NULL, "length %" PRId64 ": wanted '%s', got: %s", len,
                 want, hsrl_err_message());
  }
  memset(frame + N_FRAME, 0, 8);
  comm_header h;
  const void *p;
  TEST_ASSERT(comm_frame_read(frame, N_FRAME + 8, &h, &p) == HSRL_E_CORRUPT);
  TEST_ASSERTF(strstr(hsrl_err_message(), "says 300 payload bytes, 308 arrived") != NULL, "%s",
               hsrl_err_message());
  TEST_ASSERT(comm_frame_read(frame, N_FRAME, &h, &p) == HSRL_OK);
}

static void test_kind_names(void) {
  TEST_ASSERT(strcmp(comm_kind_name(COMM_KIND_PARAMS), "PARAMS") == 0);
  TEST_ASSERT(strcmp(comm_kind_name(COMM_KIND_CHECKPOINT_DONE), "CHECKPOINT_DONE") == 0);
  TEST_ASSERT(strcmp(comm_kind_name(COMM_KIND_PING), "PING") == 0);
  TEST_ASSERT(strcmp(comm_kind_name(0), "unknown") == 0);
  TEST_ASSERT(strcmp(comm_kind_name(COMM_KIND_COUNT), "unknown") == 0);
  for (int k = 1; k < COMM_KIND_COUNT; k++) /* every kind named, names distinct */
    for (int j = 1; j < k; j++) TEST_ASSERT(strcmp(comm_kind_name(k), comm_kind_name(j)) != 0);
}

int main(void) {
  TEST_RUN(test_xxh32_known_answers);
  TEST_RUN(test_round_trip_and_layout);
  TEST_RUN(test_write_refuses_small_buffer);
  TEST_RUN(test_every_flipped_header_byte_rejected);
  TEST_RUN(test_forged_fields);
  TEST_RUN(test_every_flipped_payload_byte_rejected);
  TEST_RUN(test_truncation_at_every_length_and_padding);
  TEST_RUN(test_kind_names);
  return test_summary();
}
