/* nn_gemm_avx2.c: nn_gemm's register-tiled kernels in AVX2 with FMA, for x86-64 machines without
 * AVX-512 (nn_gemm_tiled.h has the arithmetic every kernel set shares, so these give the AVX-512
 * kernels' bits; nn_gemm.c the driver that cuts C into tiles).
 *
 * A tile is MR rows x NV 8-float vectors, MR * NV <= 12 accumulators in ymm registers (of 16: the
 * rest hold the panel's NV vectors of row p and the broadcast a(i, p)); its sum over p runs in one
 * register chain per element with explicit fused multiply-adds (_mm256_fmadd_ps: written, not
 * contracted by the compiler). When the tile's last vector is partial (rem < 8) it is read and
 * written with vmaskmovps; a full one with plain loads and stores (two instances of the loop, so
 * the common case has no masked load in it). */
#include "common/nn/nn_gemm_tiled.h"

#include <stddef.h>

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>

#define NN_GEMM_ACC 12 /* accumulator registers per tile (of 16) */
#define NN_GEMM_UNROLL _Pragma("GCC unroll 12")
#define NN_GEMM_TARGET __attribute__((target("avx2,fma")))

static inline __attribute__((always_inline)) NN_GEMM_TARGET __m256 load_last(const float *p,
                                                                            int masked,
                                                                            __m256i mask) {
  return masked ? _mm256_maskload_ps(p, mask) : _mm256_loadu_ps(p);
}

/* C rows [0, MR) x columns [0, 8 NV) of the tile at (a, b, c) (already offset); MASKED: the last
 * vector holds rem < 8 columns. MR, NV and MASKED are constants after inlining. */
static inline __attribute__((always_inline)) NN_GEMM_TARGET void
gemm_tile(const int MR, const int NV, const int MASKED, const gemm_tiled *g, const float *a,
          const float *b, const float *bias, const float *in, float *c, int64_t ldc, int rem) {
  const __m256i all = _mm256_set1_epi32(-1);
  const __m256i last =
      _mm256_cmpgt_epi32(_mm256_set1_epi32(rem), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  __m256 acc[NN_GEMM_ACC];
  NN_GEMM_UNROLL
  for (int r = 0; r < MR; r++) {
    NN_GEMM_UNROLL
    for (int v = 0; v < NV; v++)
      acc[r * NV + v] = !in ? _mm256_setzero_ps()
                        : v == NV - 1 ? load_last(in + r * g->ld_in + 8 * v, MASKED, last)
                                      : _mm256_loadu_ps(in + r * g->ld_in + 8 * v);
  }
  const int64_t k = g->k, ldb = g->ldb;
  /* a(r, p) = ap[p * sp + r * sr] */
  const int64_t sp = g->trans_a ? g->lda : 1, sr = g->trans_a ? 1 : g->lda;
  for (int64_t p = 0; p < k; p++) {
    __m256 bv[3];
    const float *bp = b + p * ldb;
    NN_GEMM_UNROLL
    for (int v = 0; v < NV; v++)
      bv[v] = v == NV - 1 ? load_last(bp + 8 * v, MASKED, last) : _mm256_loadu_ps(bp + 8 * v);
    const float *ap = a + p * sp;
    NN_GEMM_UNROLL
    for (int r = 0; r < MR; r++) {
      const __m256 ar = _mm256_broadcast_ss(ap + r * sr);
      NN_GEMM_UNROLL
      for (int v = 0; v < NV; v++) acc[r * NV + v] = _mm256_fmadd_ps(ar, bv[v], acc[r * NV + v]);
    }
  }
  const __m256 alpha = _mm256_set1_ps(g->alpha), beta = _mm256_set1_ps(g->beta);
  NN_GEMM_UNROLL
  for (int r = 0; r < MR; r++) {
    NN_GEMM_UNROLL
    for (int v = 0; v < NV; v++) {
      const int part = MASKED && v == NV - 1;
      const __m256i mk = part ? last : all;
      float *cp = c + r * ldc + 8 * v;
      __m256 x = acc[r * NV + v];
      if (g->raw) {
        if (part) _mm256_maskstore_ps(cp, mk, x);
        else _mm256_storeu_ps(cp, x);
        continue;
      }
      if (g->alpha != 1.0f) x = _mm256_mul_ps(alpha, x);
      /* beta == 0 must not read C (it may hold garbage or NaN), as BLAS does. */
      if (g->beta != 0.0f) {
        const __m256 cv = load_last(cp, part, mk);
        x = _mm256_add_ps(x, g->beta == 1.0f ? cv : _mm256_mul_ps(beta, cv));
      }
      if (bias) x = _mm256_add_ps(x, load_last(bias + 8 * v, part, mk));
      if (part) _mm256_maskstore_ps(cp, mk, x);
      else _mm256_storeu_ps(cp, x);
    }
  }
}

/* One instance per (MR, NV): rows per tile 12 / NV, NV 1..3. */
#define NN_GEMM_DEF(MR, NV)                                                                        \
  NN_GEMM_TARGET static void gemm_tile_##MR##_##NV(const gemm_tiled *g, const float *a,           \
                                                   const float *b, const float *bias,             \
                                                   const float *in, float *c, int64_t ldc,        \
                                                   int rem) {                                      \
    if (rem == 8) gemm_tile(MR, NV, 0, g, a, b, bias, in, c, ldc, rem);                            \
    else gemm_tile(MR, NV, 1, g, a, b, bias, in, c, ldc, rem);                                     \
  }
NN_GEMM_DEF(1, 1)
NN_GEMM_DEF(2, 1)
NN_GEMM_DEF(3, 1)
NN_GEMM_DEF(4, 1)
NN_GEMM_DEF(5, 1)
NN_GEMM_DEF(6, 1)
NN_GEMM_DEF(7, 1)
NN_GEMM_DEF(8, 1)
NN_GEMM_DEF(9, 1)
NN_GEMM_DEF(10, 1)
NN_GEMM_DEF(11, 1)
NN_GEMM_DEF(12, 1)
NN_GEMM_DEF(1, 2)
NN_GEMM_DEF(2, 2)
NN_GEMM_DEF(3, 2)
NN_GEMM_DEF(4, 2)
NN_GEMM_DEF(5, 2)
NN_GEMM_DEF(6, 2)
NN_GEMM_DEF(1, 3)
NN_GEMM_DEF(2, 3)
NN_GEMM_DEF(3, 3)
NN_GEMM_DEF(4, 3)

static const gemm_tile_fn avx2_tiles[3 * 12] = {
    gemm_tile_1_1, gemm_tile_2_1, gemm_tile_3_1, gemm_tile_4_1, gemm_tile_5_1,  gemm_tile_6_1,
    gemm_tile_7_1, gemm_tile_8_1, gemm_tile_9_1, gemm_tile_10_1, gemm_tile_11_1, gemm_tile_12_1,
    gemm_tile_1_2, gemm_tile_2_2, gemm_tile_3_2, gemm_tile_4_2, gemm_tile_5_2,  gemm_tile_6_2,
    NULL,          NULL,          NULL,          NULL,           NULL,           NULL,
    gemm_tile_1_3, gemm_tile_2_3, gemm_tile_3_3, gemm_tile_4_3, NULL,           NULL,
    NULL,          NULL,          NULL,          NULL,           NULL,           NULL,
};
static const int avx2_mr[3] = {12, 6, 4}; /* rows per tile for NV = 1..3 */
static const gemm_kernels avx2 = {8, 3, 12, avx2_mr, avx2_tiles};

const gemm_kernels *nn_gemm_kernels_avx2(void) { return &avx2; }
#else
const gemm_kernels *nn_gemm_kernels_avx2(void) { return NULL; }
#endif
