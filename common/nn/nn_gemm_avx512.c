/* nn_gemm_avx512.c: nn_gemm's register-tiled kernels in AVX-512 (nn_gemm_tiled.h has the
 * arithmetic every kernel set shares; nn_gemm.c the driver that cuts C into tiles).
 *
 * A tile is MR rows x NV 16-float vectors, MR * NV <= 24 accumulators in zmm registers (of 32);
 * its sum over p runs in one register chain per element, a(i, p) broadcast times the 16 columns of
 * row p of the (k, n) panel, with explicit fused multiply-adds (_mm512_fmadd_ps: written, not
 * contracted by the compiler, so the bits do not depend on optimisation flags). The last vector of
 * a tile row is read and written under a lane mask when n is not a multiple of 16. */
#include "common/nn/nn_gemm_tiled.h"

#include <stddef.h>

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>

#define NN_GEMM_ACC 24 /* accumulator registers per tile (of 32) */
#define NN_GEMM_UNROLL _Pragma("GCC unroll 24")

/* C rows [0, MR) x columns [0, 16 NV) of the tile at (a, b, c) (already offset), the last vector
 * under the mask of its rem columns. MR and NV are constants after inlining. */
static inline __attribute__((always_inline, target("avx512f"))) void
gemm_tile(const int MR, const int NV, const gemm_tiled *g, const float *a, const float *b,
          const float *bias, const float *in, float *c, int64_t ldc, int rem) {
  const __mmask16 last = (__mmask16)(rem == 16 ? 0xffff : (1u << rem) - 1u);
  __m512 acc[NN_GEMM_ACC];
  NN_GEMM_UNROLL
  for (int r = 0; r < MR; r++) {
    NN_GEMM_UNROLL
    for (int v = 0; v < NV; v++)
      acc[r * NV + v] = in ? _mm512_maskz_loadu_ps(v == NV - 1 ? last : (__mmask16)0xffff,
                                                   in + r * g->ld_in + 16 * v)
                           : _mm512_setzero_ps();
  }
  const int64_t k = g->k, ldb = g->ldb;
  /* a(r, p) = ap[p * sp + r * sr] */
  const int64_t sp = g->trans_a ? g->lda : 1, sr = g->trans_a ? 1 : g->lda;
  for (int64_t p = 0; p < k; p++) {
    __m512 bv[4];
    const float *bp = b + p * ldb;
    NN_GEMM_UNROLL
    for (int v = 0; v < NV; v++)
      bv[v] = v == NV - 1 ? _mm512_maskz_loadu_ps(last, bp + 16 * v) : _mm512_loadu_ps(bp + 16 * v);
    const float *ap = a + p * sp;
    NN_GEMM_UNROLL
    for (int r = 0; r < MR; r++) {
      const __m512 ar = _mm512_set1_ps(ap[r * sr]);
      NN_GEMM_UNROLL
      for (int v = 0; v < NV; v++) acc[r * NV + v] = _mm512_fmadd_ps(ar, bv[v], acc[r * NV + v]);
    }
  }
  const __m512 alpha = _mm512_set1_ps(g->alpha), beta = _mm512_set1_ps(g->beta);
  NN_GEMM_UNROLL
  for (int r = 0; r < MR; r++) {
    NN_GEMM_UNROLL
    for (int v = 0; v < NV; v++) {
      const __mmask16 mk = v == NV - 1 ? last : (__mmask16)0xffff;
      float *cp = c + r * ldc + 16 * v;
      __m512 x = acc[r * NV + v];
      if (g->raw) {
        _mm512_mask_storeu_ps(cp, mk, x);
        continue;
      }
      if (g->alpha != 1.0f) x = _mm512_mul_ps(alpha, x);
      /* beta == 0 must not read C (it may hold garbage or NaN), as BLAS does. */
      if (g->beta != 0.0f) {
        const __m512 cv = _mm512_maskz_loadu_ps(mk, cp);
        x = _mm512_add_ps(x, g->beta == 1.0f ? cv : _mm512_mul_ps(beta, cv));
      }
      if (bias) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mk, bias + 16 * v));
      _mm512_mask_storeu_ps(cp, mk, x);
    }
  }
}

/* One instance per (MR, NV): rows per tile 24 / NV (at most 12), NV 1..4. */
#define NN_GEMM_DEF(MR, NV)                                                                        \
  __attribute__((target("avx512f"))) static void gemm_tile_##MR##_##NV(                           \
      const gemm_tiled *g, const float *a, const float *b, const float *bias, const float *in,    \
      float *c, int64_t ldc, int rem) {                                                            \
    gemm_tile(MR, NV, g, a, b, bias, in, c, ldc, rem);                                             \
  }
#define NN_GEMM_DEF_NV(NV)                                                                         \
  NN_GEMM_DEF(1, NV) NN_GEMM_DEF(2, NV) NN_GEMM_DEF(3, NV) NN_GEMM_DEF(4, NV) NN_GEMM_DEF(5, NV)   \
  NN_GEMM_DEF(6, NV)
NN_GEMM_DEF_NV(1)
NN_GEMM_DEF_NV(2)
NN_GEMM_DEF_NV(3)
NN_GEMM_DEF_NV(4)
NN_GEMM_DEF(7, 1)
NN_GEMM_DEF(8, 1)
NN_GEMM_DEF(9, 1)
NN_GEMM_DEF(10, 1)
NN_GEMM_DEF(11, 1)
NN_GEMM_DEF(12, 1)
NN_GEMM_DEF(7, 2)
NN_GEMM_DEF(8, 2)
NN_GEMM_DEF(9, 2)
NN_GEMM_DEF(10, 2)
NN_GEMM_DEF(11, 2)
NN_GEMM_DEF(12, 2)
NN_GEMM_DEF(7, 3)
NN_GEMM_DEF(8, 3)

static const gemm_tile_fn avx512_tiles[4 * 12] = {
    gemm_tile_1_1, gemm_tile_2_1, gemm_tile_3_1, gemm_tile_4_1, gemm_tile_5_1,  gemm_tile_6_1,
    gemm_tile_7_1, gemm_tile_8_1, gemm_tile_9_1, gemm_tile_10_1, gemm_tile_11_1, gemm_tile_12_1,
    gemm_tile_1_2, gemm_tile_2_2, gemm_tile_3_2, gemm_tile_4_2, gemm_tile_5_2,  gemm_tile_6_2,
    gemm_tile_7_2, gemm_tile_8_2, gemm_tile_9_2, gemm_tile_10_2, gemm_tile_11_2, gemm_tile_12_2,
    gemm_tile_1_3, gemm_tile_2_3, gemm_tile_3_3, gemm_tile_4_3, gemm_tile_5_3,  gemm_tile_6_3,
    gemm_tile_7_3, gemm_tile_8_3, NULL,          NULL,           NULL,           NULL,
    gemm_tile_1_4, gemm_tile_2_4, gemm_tile_3_4, gemm_tile_4_4, gemm_tile_5_4,  gemm_tile_6_4,
    NULL,          NULL,          NULL,          NULL,           NULL,           NULL,
};
static const int avx512_mr[4] = {12, 12, 8, 6}; /* rows per tile for NV = 1..4 */
static const gemm_kernels avx512 = {16, 4, 12, avx512_mr, avx512_tiles};

const gemm_kernels *nn_gemm_kernels_avx512(void) { return &avx512; }
#else
const gemm_kernels *nn_gemm_kernels_avx512(void) { return NULL; }
#endif
