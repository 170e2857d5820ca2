// The wasm-exact elementwise kernels (elementwise.inc) on AVX-512 and on AVX2: the file's kernels once per
// instruction set, each over that set's vector operations below, dispatched by VectorIsa (kernels.h).
#include "kernels.h"

#include <cmath>
#include <cstdint>
#include <cstring>

#ifdef SUPRA_X86
#include <immintrin.h>

namespace supra {
namespace {

// log64 of vmath.ts.
static double Log64(double x) {
  if (!(x > 0)) return x == 0 ? -INFINITY : NAN;
  if (x == INFINITY) return x;
  uint64_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  int e = static_cast<int>((bits >> 52) & 0x7ff);
  if (e == 0) {
    x *= 18014398509481984.0;
    std::memcpy(&bits, &x, sizeof bits);
    e = static_cast<int>((bits >> 52) & 0x7ff) - 54;
  }
  e -= 1023;
  const uint64_t mantissa = (bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;
  double m;
  std::memcpy(&m, &mantissa, sizeof m);
  if (m > 1.4142135623730951) {
    m *= 0.5;
    e += 1;
  }
  const double s = (m - 1) / (m + 1);
  const double s2 = s * s;
  double term = s2, sum = 1;
  for (int i = 3; i <= 23; i += 2) {
    sum += term / static_cast<double>(i);
    term *= s2;
  }
  return 2 * s * sum + static_cast<double>(e) * 0.6931471805599453;
}

// wasm's f32.max: NaN when either is NaN; of two zeros +0 unless both are -0.
static float WasmMax(float a, float b) {
  if (a != a || b != b) return NAN;
  if (a == b) {
    uint32_t x, y;
    std::memcpy(&x, &a, 4);
    std::memcpy(&y, &b, 4);
    x &= y;
    std::memcpy(&a, &x, 4);
    return a;
  }
  return a > b ? a : b;
}

// The vector operations the kernels use. Every one is a single IEEE operation per lane (or a lane move), so
// the kernels' per-lane arithmetic is the same at either width; only the reductions differ in form, and
// each says how it keeps the wasm kernel's order (or why the order does not matter). The ones both sets
// spell alike but for the intrinsics' prefix (_mm512, _mm256) come from SUPRA_LANE_OPS.
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
  // acc + (e0 + e2, e1 + e3) for each group of four lanes, in order, in float64
  SUPRA_OP __m128d AddGroupsOfFour(__m128d acc, F e) {
    const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(e)); // lanes 0..7
    const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1)));
    const __m512d pl = _mm512_add_pd(lo, _mm512_permutex_pd(lo, 0x4E)); // (e0 + e2, e1 + e3) first in each group
    const __m512d ph = _mm512_add_pd(hi, _mm512_permutex_pd(hi, 0x4E));
    acc = _mm_add_pd(acc, _mm512_castpd512_pd128(pl));
    acc = _mm_add_pd(acc, _mm_castps_pd(_mm512_extractf32x4_ps(_mm512_castpd_ps(pl), 2)));
    acc = _mm_add_pd(acc, _mm512_castpd512_pd128(ph));
    return _mm_add_pd(acc, _mm_castps_pd(_mm512_extractf32x4_ps(_mm512_castpd_ps(ph), 2)));
  }
};
#undef SUPRA_OP

#define SUPRA_OP static inline __attribute__((target("avx2"), always_inline))
struct Avx2Ops {
  using F = __m256;
  using Mask = __m256;
  static constexpr int kLanes = 8;
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
  SUPRA_OP __m128d AddGroupsOfFour(__m128d acc, F e) {
    const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(e)); // lanes 0..3
    const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1));
    const __m256d pl = _mm256_add_pd(lo, _mm256_permute2f128_pd(lo, lo, 1)); // (e0 + e2, e1 + e3) first
    const __m256d ph = _mm256_add_pd(hi, _mm256_permute2f128_pd(hi, hi, 1));
    acc = _mm_add_pd(acc, _mm256_castpd256_pd128(pl));
    return _mm_add_pd(acc, _mm256_castpd256_pd128(ph));
  }
};
#undef SUPRA_OP

#undef SUPRA_LANE_OPS

}  // namespace

namespace avx512 {
using V = Avx512Ops;
#define SUPRA_ISA "avx512f"
#include "elementwise.inc"
#undef SUPRA_ISA
}  // namespace avx512

namespace avx2 {
using V = Avx2Ops;
#define SUPRA_ISA "avx2"
#include "elementwise.inc"
#undef SUPRA_ISA
}  // namespace avx2

double CrossEntropyRows(VectorIsa isa, const float* logits, const int32_t* targets, int vocab, float* dlogits, double zLoss,
                        double inv, int64_t lo, int64_t hi) {
  return isa == VectorIsa::kAvx512 ? avx512::CrossEntropyRows(logits, targets, vocab, dlogits, zLoss, inv, lo, hi)
                                   : avx2::CrossEntropyRows(logits, targets, vocab, dlogits, zLoss, inv, lo, hi);
}

void SwigluRange(VectorIsa isa, const float* gate, const float* up, float* out, int64_t lo, int64_t hi) {
  if (isa == VectorIsa::kAvx512) avx512::SwigluRange(gate, up, out, lo, hi);
  else avx2::SwigluRange(gate, up, out, lo, hi);
}

void SwigluBackwardRange(VectorIsa isa, const float* dout, const float* gate, const float* up, float* dgate, float* dup,
                         float* act, int64_t lo, int64_t hi) {
  if (isa == VectorIsa::kAvx512) avx512::SwigluBackwardRange(dout, gate, up, dgate, dup, act, lo, hi);
  else avx2::SwigluBackwardRange(dout, gate, up, dgate, dup, act, lo, hi);
}

void LinearAttentionStepRange(VectorIsa isa, const float* q, const float* k, const float* v, float* o, float* state, int heads,
                              int tokens, int dk, int dv, float scale, const double* powers, int powStride, int64_t lo, int64_t hi) {
  if (isa == VectorIsa::kAvx512) avx512::LinearAttentionStepRange(q, k, v, o, state, heads, tokens, dk, dv, scale, powers, powStride, lo, hi);
  else avx2::LinearAttentionStepRange(q, k, v, o, state, heads, tokens, dk, dv, scale, powers, powStride, lo, hi);
}

}  // namespace supra
#endif
