// The vector operation sets of the add-on's kernels written once for AVX-512 and AVX2 (see below).
#pragma once

#include "kernels.h"

#ifdef SUPRA_X86
#include <immintrin.h>

namespace supra {

// The vector operations of the kernels written once for both widths (elementwise.inc, small_gemm.inc), one
// struct per instruction set. Every one is a single IEEE operation per lane (or a lane move), so a kernel's
// per-lane arithmetic is the same at either width; only the reductions differ in form, and each says how it
// keeps the wasm kernel's order (or why the order does not matter). The ones both sets spell alike but for
// the intrinsics' prefix (_mm512, _mm256) come from SUPRA_LANE_OPS.
#define SUPRA_LANE_OPS(mm, si)                                                                                   \
  SUPRA_OP F Load(const float* p) { return mm##_loadu_ps(p); }                                                  \
  SUPRA_OP void Store(float* p, F v) { mm##_storeu_ps(p, v); }                                                  \
  SUPRA_OP F Set1(float x) { return mm##_set1_ps(x); }                                                          \
  SUPRA_OP F Zero() { return mm##_setzero_ps(); }                                                               \
  SUPRA_OP F Add(F a, F b) { return mm##_add_ps(a, b); }                                                        \
  SUPRA_OP F Sub(F a, F b) { return mm##_sub_ps(a, b); }                                                        \
  SUPRA_OP F Mul(F a, F b) { return mm##_mul_ps(a, b); }                                                        \
  SUPRA_OP F Div(F a, F b) { return mm##_div_ps(a, b); }                                                        \
  SUPRA_OP F Min(F a, F b) { return mm##_min_ps(a, b); }                                                        \
  SUPRA_OP F Max(F a, F b) { return mm##_max_ps(a, b); }                                                        \
  SUPRA_OP F Fma(F a, F b, F c) { return mm##_fmadd_ps(a, b, c); } /* a * b + c, rounded once */               \
  SUPRA_OP F Negate(F a) { return mm##_castsi##si##_ps(mm##_xor_si##si(mm##_castps_si##si(a), mm##_set1_epi32(INT32_MIN))); } \
  /* 2^n for t = n + 1.5 * 2^23 (exp's rounding trick): n's bits into the exponent field */                   \
  SUPRA_OP F Pow2OfMagic(F t) {                                                                                  \
    return mm##_castsi##si##_ps(mm##_add_epi32(mm##_slli_epi32(mm##_castps_si##si(t), 23), mm##_set1_epi32(127 << 23))); \
  }                                                                                                              \
  SUPRA_OP float First(F v) { return mm##_cvtss_f32(v); }

#define SUPRA_OP static inline __attribute__((target("avx512f"), always_inline))
struct Avx512Ops {
  using F = __m512;
  using Mask = __mmask16;
  static constexpr int kLanes = 16;
  // small_gemm.inc's register tile: a band of up to kSmallBand vectors of C's columns, kSmallRows[v] rows
  // of v vectors at a time (v accumulators a row plus v loads of B fit the 32 registers)
  static constexpr int kSmallBand = 4;
  static constexpr int kSmallRows[5] = {0, 12, 12, 8, 6};
  SUPRA_LANE_OPS(_mm512, 512)
  // the first n lanes (the rest 0 / not written)
  SUPRA_OP F LoadFirst(const float* p, int n) { return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), p); }
  SUPRA_OP void StoreFirst(float* p, F v, int n) { _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1), v); }
  SUPRA_OP F ZeroWhereBelow(F x, F lo, F y) { return _mm512_maskz_mov_ps(static_cast<__mmask16>(~_mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ)), y); }
  SUPRA_OP Mask NoLanes() { return 0; }
  SUPRA_OP Mask IsNan(F v) { return _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q); }
  SUPRA_OP Mask Either(Mask a, Mask b) { return static_cast<Mask>(a | b); }
  SUPRA_OP bool Any(Mask m) { return m != 0; }
  SUPRA_OP float ReduceMax(F v) { return _mm512_reduce_max_ps(v); } // no NaN here; a zero maximum is redone
  SUPRA_OP F KeepWherePositive(F y, F d) { return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(y, _mm512_setzero_ps(), _CMP_GT_OQ), d); }
  // float64 vectors of half the lanes: lanes 0..7 and 8..15 of an F widened (exact)
  using D = __m512d;
  SUPRA_OP D WidenLow(F v) { return _mm512_cvtps_pd(_mm512_castps512_ps256(v)); }
  SUPRA_OP D WidenHigh(F v) { return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))); }
  SUPRA_OP D SetD(double x) { return _mm512_set1_pd(x); }
  SUPRA_OP D AddD(D a, D b) { return _mm512_add_pd(a, b); }
  SUPRA_OP D SubD(D a, D b) { return _mm512_sub_pd(a, b); }
  SUPRA_OP D MulD(D a, D b) { return _mm512_mul_pd(a, b); }
  // The wasm kernels' float64 sums over groups of four lanes (vmath.ts addWide, addWideProduct): acc + (p0 + p2,
  // p1 + p3) for each group of four values p (lo: values 0..7, hi: 8..15), in order, the first `groups` of them.
  SUPRA_OP __m128d AddGroups(__m128d acc, D lo, D hi, int groups) {
    const __m512d pl = _mm512_add_pd(lo, _mm512_permutex_pd(lo, 0x4E)); // (p0 + p2, p1 + p3) first in each group
    const __m512d ph = _mm512_add_pd(hi, _mm512_permutex_pd(hi, 0x4E));
    acc = _mm_add_pd(acc, _mm512_castpd512_pd128(pl));
    if (groups > 1) acc = _mm_add_pd(acc, _mm_castps_pd(_mm512_extractf32x4_ps(_mm512_castpd_ps(pl), 2)));
    if (groups > 2) acc = _mm_add_pd(acc, _mm512_castpd512_pd128(ph));
    if (groups > 3) acc = _mm_add_pd(acc, _mm_castps_pd(_mm512_extractf32x4_ps(_mm512_castpd_ps(ph), 2)));
    return acc;
  }
  // acc + (e0 + e2, e1 + e3) for each group of four lanes, in order, in float64
  SUPRA_OP __m128d AddGroupsOfFour(__m128d acc, F e) { return AddGroups(acc, WidenLow(e), WidenHigh(e), 4); }
};
#undef SUPRA_OP

#define SUPRA_OP static inline __attribute__((target("avx2,fma"), always_inline))
struct Avx2Ops {
  using F = __m256;
  using Mask = __m256;
  static constexpr int kLanes = 8;
  static constexpr int kSmallBand = 2; // 16 registers: 6 rows x 2 vectors, as OpenBLAS's AVX2 kernels
  static constexpr int kSmallRows[5] = {0, 12, 6, 0, 0};
  SUPRA_LANE_OPS(_mm256, 256)
  SUPRA_OP __m256i FirstLanes(int n) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }
  SUPRA_OP F LoadFirst(const float* p, int n) { return n == kLanes ? Load(p) : _mm256_maskload_ps(p, FirstLanes(n)); }
  SUPRA_OP void StoreFirst(float* p, F v, int n) {
    if (n == kLanes) Store(p, v);
    else _mm256_maskstore_ps(p, FirstLanes(n), v);
  }
  SUPRA_OP F ZeroWhereBelow(F x, F lo, F y) { return _mm256_andnot_ps(_mm256_cmp_ps(x, lo, _CMP_LT_OQ), y); }
  SUPRA_OP Mask NoLanes() { return _mm256_setzero_ps(); }
  SUPRA_OP Mask IsNan(F v) { return _mm256_cmp_ps(v, v, _CMP_UNORD_Q); }
  SUPRA_OP Mask Either(Mask a, Mask b) { return _mm256_or_ps(a, b); }
  SUPRA_OP bool Any(Mask m) { return _mm256_movemask_ps(m) != 0; }
  SUPRA_OP float ReduceMax(F v) { // no NaN here; a zero maximum is redone
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
  }
  SUPRA_OP F KeepWherePositive(F y, F d) { return _mm256_and_ps(_mm256_cmp_ps(y, _mm256_setzero_ps(), _CMP_GT_OQ), d); }
  using D = __m256d; // lanes 0..3 and 4..7 of an F widened
  SUPRA_OP D WidenLow(F v) { return _mm256_cvtps_pd(_mm256_castps256_ps128(v)); }
  SUPRA_OP D WidenHigh(F v) { return _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)); }
  SUPRA_OP D SetD(double x) { return _mm256_set1_pd(x); }
  SUPRA_OP D AddD(D a, D b) { return _mm256_add_pd(a, b); }
  SUPRA_OP D SubD(D a, D b) { return _mm256_sub_pd(a, b); }
  SUPRA_OP D MulD(D a, D b) { return _mm256_mul_pd(a, b); }
  SUPRA_OP __m128d AddGroups(__m128d acc, D lo, D hi, int groups) {
    const __m256d pl = _mm256_add_pd(lo, _mm256_permute2f128_pd(lo, lo, 1)); // (p0 + p2, p1 + p3) first
    const __m256d ph = _mm256_add_pd(hi, _mm256_permute2f128_pd(hi, hi, 1));
    acc = _mm_add_pd(acc, _mm256_castpd256_pd128(pl));
    if (groups > 1) acc = _mm_add_pd(acc, _mm256_castpd256_pd128(ph));
    return acc;
  }
  SUPRA_OP __m128d AddGroupsOfFour(__m128d acc, F e) { return AddGroups(acc, WidenLow(e), WidenHigh(e), 2); }
};
#undef SUPRA_OP

#undef SUPRA_LANE_OPS

}  // namespace supra
#endif
