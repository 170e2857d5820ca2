// The add-on's kernels for int8 weights (src/core/weights.ts, Int8GemmArgs in src/core/backend.ts): each
// row of W, n x k, in blocks of kInt8Block values along k (the last one shorter when k is not a multiple),
// block b of row j being scales[j * ceil(k / kInt8Block) + b] * q, the scale a bfloat16. Plain C++ on raw
// pointers, one thread per call; addon.cc checks the arguments and shares the rows between threads.
#include "kernels.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>

#ifdef SUPRA_X86
#include <immintrin.h>
#endif

namespace supra {

// Decoding products: C[i, j] = A[i, :] . W[j, :] for m <= 4 rows of A. Each block of W is widened to float32
// in registers once (int8 -> int32 -> float32, exact) and used by every row of A: its products summed in
// float32, the sum times the block's scale added into the row's accumulator (two accumulators per row,
// for even and odd blocks, so the adds do not wait on each other). A last, shorter block is summed in
// order and scaled alone. Memory-bound: 1.0625 bytes of W per value stream through, against 2 for BF16.
#ifdef SUPRA_X86
template <int M>
__attribute__((target("avx512f"))) static void DotRowsInt8Avx512Of(int n, int k, const float* A, int lda, const int8_t* W,
                                                                  const uint16_t* S, float* C, int ldc) {
  const int blocks = (k + kInt8Block - 1) / kInt8Block, whole = k / kInt8Block;
  for (int j = 0; j < n; j++) {
    const int8_t* q = W + static_cast<int64_t>(j) * k;
    const uint16_t* s = S + static_cast<int64_t>(j) * blocks;
    // The scales are a second stream, a sixteenth of the weight's bytes: into L2 as far ahead as the weight's
    // own L2 prefetch (4 kPrefetchBytes of weight; with float32 scales, decoding SUPRA models of the scale
    // benchmark, alternating token by token in one process on the 2-core Zen 4 VM, 2026-12-07: SmolLM-135M 2-4%
    // faster, TinyLlama-1.1B 3-4%; into L1 as well did no better).
    _mm_prefetch(reinterpret_cast<const char*>(s) + kPrefetchBytes / 4, _MM_HINT_T1);
    __m512 even[M], odd[M];
    for (int i = 0; i < M; i++) even[i] = odd[i] = _mm512_setzero_ps();
    int b = 0;
    for (; b + 2 <= whole; b += 2) {
      const int p = b * kInt8Block;
      PrefetchAhead<kPrefetchL1 | kPrefetchL2>(q + p);
      const __m128i* qp = reinterpret_cast<const __m128i*>(q + p);
      const __m512 w0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(qp)));
      const __m512 w1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(qp + 1)));
      const __m512 w2 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(qp + 2)));
      const __m512 w3 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(qp + 3)));
      const __m512 s0 = _mm512_set1_ps(Bf16Value(s[b])), s1 = _mm512_set1_ps(Bf16Value(s[b + 1]));
      for (int i = 0; i < M; i++) {
        const float* a = A + static_cast<int64_t>(i) * lda + p;
        const __m512 t0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + 16), w1, _mm512_mul_ps(_mm512_loadu_ps(a), w0));
        const __m512 t1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + 48), w3, _mm512_mul_ps(_mm512_loadu_ps(a + 32), w2));
        even[i] = _mm512_fmadd_ps(t0, s0, even[i]);
        odd[i] = _mm512_fmadd_ps(t1, s1, odd[i]);
      }
    }
    if (b < whole) {
      const int p = b * kInt8Block;
      const __m128i* qp = reinterpret_cast<const __m128i*>(q + p);
      const __m512 w0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(qp)));
      const __m512 w1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(qp + 1)));
      const __m512 s0 = _mm512_set1_ps(Bf16Value(s[b]));
      for (int i = 0; i < M; i++) {
        const float* a = A + static_cast<int64_t>(i) * lda + p;
        even[i] = _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_loadu_ps(a + 16), w1, _mm512_mul_ps(_mm512_loadu_ps(a), w0)), s0, even[i]);
      }
    }
    for (int i = 0; i < M; i++) {
      const float* a = A + static_cast<int64_t>(i) * lda;
      float sum = _mm512_reduce_add_ps(_mm512_add_ps(even[i], odd[i]));
      if (whole < blocks) {
        float t = 0;
        for (int p = whole * kInt8Block; p < k; p++) t += a[p] * static_cast<float>(q[p]);
        sum += t * Bf16Value(s[whole]);
      }
      C[static_cast<int64_t>(i) * ldc + j] = sum;
    }
  }
}

// AVX2: eight values a vector, four a block; otherwise as the AVX-512 kernel.
template <int M>
__attribute__((target("avx2,fma"))) static void DotRowsInt8Avx2Of(int n, int k, const float* A, int lda, const int8_t* W,
                                                                 const uint16_t* S, float* C, int ldc) {
  const int blocks = (k + kInt8Block - 1) / kInt8Block, whole = k / kInt8Block;
  for (int j = 0; j < n; j++) {
    const int8_t* q = W + static_cast<int64_t>(j) * k;
    const uint16_t* s = S + static_cast<int64_t>(j) * blocks;
    __m256 acc[M];
    for (int i = 0; i < M; i++) acc[i] = _mm256_setzero_ps();
    for (int b = 0; b < whole; b++) {
      const int p = b * kInt8Block;
      if (b % 2 == 0) PrefetchAhead<kPrefetchL1>(q + p);
      __m256 w[4];
      for (int v = 0; v < 4; v++) {
        w[v] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + p + 8 * v))));
      }
      const __m256 sb = _mm256_set1_ps(Bf16Value(s[b]));
      for (int i = 0; i < M; i++) {
        const float* a = A + static_cast<int64_t>(i) * lda + p;
        const __m256 t0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + 8), w[1], _mm256_mul_ps(_mm256_loadu_ps(a), w[0]));
        const __m256 t1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + 24), w[3], _mm256_mul_ps(_mm256_loadu_ps(a + 16), w[2]));
        acc[i] = _mm256_fmadd_ps(_mm256_add_ps(t0, t1), sb, acc[i]);
      }
    }
    for (int i = 0; i < M; i++) {
      const float* a = A + static_cast<int64_t>(i) * lda;
      __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc[i]), _mm256_extractf128_ps(acc[i], 1));
      h = _mm_add_ps(h, _mm_movehl_ps(h, h));
      h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
      float sum = _mm_cvtss_f32(h);
      if (whole < blocks) {
        float t = 0;
        for (int p = whole * kInt8Block; p < k; p++) t += a[p] * static_cast<float>(q[p]);
        sum += t * Bf16Value(s[whole]);
      }
      C[static_cast<int64_t>(i) * ldc + j] = sum;
    }
  }
}

void DotRowsInt8Avx512(int m, int n, int k, const float* A, int lda, const int8_t* W, const uint16_t* scales, float* C, int ldc) {
  switch (m) {
    case 1: DotRowsInt8Avx512Of<1>(n, k, A, lda, W, scales, C, ldc); break;
    case 2: DotRowsInt8Avx512Of<2>(n, k, A, lda, W, scales, C, ldc); break;
    case 3: DotRowsInt8Avx512Of<3>(n, k, A, lda, W, scales, C, ldc); break;
    default: DotRowsInt8Avx512Of<4>(n, k, A, lda, W, scales, C, ldc); break;
  }
}

void DotRowsInt8Avx2(int m, int n, int k, const float* A, int lda, const int8_t* W, const uint16_t* scales, float* C, int ldc) {
  switch (m) {
    case 1: DotRowsInt8Avx2Of<1>(n, k, A, lda, W, scales, C, ldc); break;
    case 2: DotRowsInt8Avx2Of<2>(n, k, A, lda, W, scales, C, ldc); break;
    case 3: DotRowsInt8Avx2Of<3>(n, k, A, lda, W, scales, C, ldc); break;
    default: DotRowsInt8Avx2Of<4>(n, k, A, lda, W, scales, C, ldc); break;
  }
}

__attribute__((target("avx512f"))) static void DequantizeBlock16(const int8_t* q, float scale, float* out) {
  _mm512_storeu_ps(out, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)))),
                                      _mm512_set1_ps(scale)));
}
// A whole block on AVX2, eight values a vector: prefill's products dequantize every weight they use, and
// scalar, that pass took longer than the product itself on an AVX2-only CPU.
__attribute__((target("avx2"))) static void DequantizeBlock32Avx2(const int8_t* q, float scale, float* out) {
  const __m256 s = _mm256_set1_ps(scale);
  for (int j = 0; j < 4; j++) {
    const __m256i v = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + 8 * j)));
    _mm256_storeu_ps(out + 8 * j, _mm256_mul_ps(_mm256_cvtepi32_ps(v), s));
  }
}
#endif

// q * scale in float32, one rounding: the values src/core/weights.ts's toFloat gives.
void DequantizeInt8Rows(const int8_t* W, const uint16_t* scales, int rows, int k, float* out) {
  const int blocks = (k + kInt8Block - 1) / kInt8Block;
  for (int r = 0; r < rows; r++) {
    const int8_t* q = W + static_cast<int64_t>(r) * k;
    const uint16_t* s = scales + static_cast<int64_t>(r) * blocks;
    float* o = out + static_cast<int64_t>(r) * k;
    int p = 0;
#ifdef SUPRA_X86
    if (HaveAvx512()) {
      for (; p + kInt8Block <= k; p += kInt8Block) {
        DequantizeBlock16(q + p, Bf16Value(s[p / kInt8Block]), o + p);
        DequantizeBlock16(q + p + 16, Bf16Value(s[p / kInt8Block]), o + p + 16);
      }
    } else if (HaveAvx2Fma()) {
      for (; p + kInt8Block <= k; p += kInt8Block) DequantizeBlock32Avx2(q + p, Bf16Value(s[p / kInt8Block]), o + p);
    }
#endif
    for (; p < k; p++) o[p] = static_cast<float>(q[p]) * Bf16Value(s[p / kInt8Block]);
  }
}


// Quantizing (src/core/weights.ts int8FromFloat, bit for bit): per block, scale = the least bfloat16 >= max|x| / 127
// (Int8Scale) and q = round-half-even(x / scale), the quotient rounded to float32 first (as torch's round(x / scale)
// on float32 tensors). scale >= max|x| / 127 keeps every |x / scale| <= 127: no clamp.
#ifdef SUPRA_X86
// one whole block of 32 values; cvtps rounds half to even (the default MXCSR mode)
__attribute__((target("avx2"))) static void QuantizeBlock32Avx2(const float* x, float scale, int8_t* q) {
  const __m256 s = _mm256_set1_ps(scale);
  __m256i v[4];
  for (int j = 0; j < 4; j++) v[j] = _mm256_cvtps_epi32(_mm256_div_ps(_mm256_loadu_ps(x + 8 * j), s));
  // packs interleave the 128-bit lanes: the bytes come out in 4-byte groups 0,4,1,5,2,6,3,7 of the order wanted
  const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}
// max|x| over one whole block of 32 values (exact in any order), or -1 when one is NaN or an infinity
__attribute__((target("avx2"))) static float AbsMaxBlock32Avx2(const float* x) {
  const __m256 sign = _mm256_set1_ps(-0.0f), finite = _mm256_set1_ps(FLT_MAX);
  __m256 m = _mm256_setzero_ps();
  int ok = 0xff;
  for (int j = 0; j < 4; j++) {
    const __m256 a = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * j));
    ok &= _mm256_movemask_ps(_mm256_cmp_ps(a, finite, _CMP_LE_OQ));  // false for NaN and ±infinity
    m = _mm256_max_ps(m, a);
  }
  if (ok != 0xff) return -1;
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
  return _mm_cvtss_f32(h);
}
#endif

// The least bfloat16 >= amax / 127 (0 for 0), as bits. The quotient in double is within 2^-53 of the real one,
// too close to cross a bfloat16 (8 significant bits over a divisor of 127), so rounding it up to a float32 and
// that up to a bfloat16 gives the least one above the real quotient.
static uint16_t Int8Scale(float amax) {
  const double quotient = static_cast<double>(amax) / 127.0;
  float up = static_cast<float>(quotient);
  if (static_cast<double>(up) < quotient) up = std::nextafter(up, FLT_MAX);
  uint32_t bits;
  std::memcpy(&bits, &up, 4);
  return static_cast<uint16_t>((bits >> 16) + ((bits & 0xffff) != 0));
}

int64_t QuantizeInt8(const float* src, int64_t n, int64_t from, int64_t k, int8_t* q, uint16_t* scales) {
  const int64_t blocks = (k + kInt8Block - 1) / kInt8Block;
#ifdef SUPRA_X86
  const bool avx2 = HaveAvx2Fma();
#endif
  for (int64_t start = from, end = from + n; start < end;) {
    const int64_t row = start / k, col = start - row * k;
    const int len = static_cast<int>(std::min<int64_t>(kInt8Block, k - col));
    const float* x = src + (start - from);
    float amax = -1;
#ifdef SUPRA_X86
    if (avx2 && len == kInt8Block) amax = AbsMaxBlock32Avx2(x);
#endif
    if (amax < 0) {  // a tail, no AVX2, or a value to name
      amax = 0;
      for (int i = 0; i < len; i++) {
        const float a = std::fabs(x[i]);
        if (!(a <= FLT_MAX)) return start - from + i;  // NaN or an infinity
        amax = a > amax ? a : amax;
      }
    }
    const uint16_t scaleBits = Int8Scale(amax);
    const float scale = Bf16Value(scaleBits);
    scales[row * blocks + col / kInt8Block] = scaleBits;
    int8_t* out = q + start;
    if (scale == 0) {
      std::fill(out, out + len, static_cast<int8_t>(0));
#ifdef SUPRA_X86
    } else if (avx2 && len == kInt8Block) {
      QuantizeBlock32Avx2(x, scale, out);
#endif
    } else {
      for (int i = 0; i < len; i++) out[i] = static_cast<int8_t>(std::nearbyint(x[i] / scale));
    }
    start += len;
  }
  return -1;
}

} // namespace supra
