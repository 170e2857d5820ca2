// The add-on's own compute kernels (see kernels.h): plain C++ on raw pointers, no N-API.
#include "kernels.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#ifdef SUPRA_X86
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace supra {

#ifdef SUPRA_X86
// SUPRA_NATIVE_ISA=avx2 caps the add-on's own kernels at AVX2 on an AVX-512 CPU (read once, at load): every
// AVX-512 path, BF16 products included, then takes its AVX2 one, as on most desktop CPUs; the tests run so
// once on AVX-512 machines (scripts/run-tests.mjs), so the AVX2 kernels are checked there too.
bool HaveAvx512() {
  static const bool have = [] {
    const char* cap = std::getenv("SUPRA_NATIVE_ISA");
    return __builtin_cpu_supports("avx512f") && !(cap && std::strcmp(cap, "avx2") == 0);
  }();
  return have;
}
bool HaveAvx2Fma() {
  static const bool have = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return have;
}

// The rows of kernels.h's CpuTuning table.
constexpr CpuTuning kAmdTuning{"amd", kPrefetchNta, int64_t{1} << 16, false}; // 256 KiB of state: 16 heads of 64 x 64
constexpr CpuTuning kOtherTuning{"other", kPrefetchL1 | kPrefetchL2, 0, true};

const CpuTuning& CpuTuningNow() {
  static const CpuTuning tuning = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    char vendor[13] = {};
    if (__get_cpuid(0, &a, &b, &c, &d)) {
      std::memcpy(vendor, &b, 4);
      std::memcpy(vendor + 4, &d, 4);
      std::memcpy(vendor + 8, &c, 4);
    }
    CpuTuning t = std::strcmp(vendor, "AuthenticAMD") == 0 ? kAmdTuning : kOtherTuning;
    const char* prefetch = std::getenv("SUPRA_BF16_PREFETCH");
    if (prefetch && std::strcmp(prefetch, "nta") == 0) t.bf16DecodePrefetch = kPrefetchNta;
    if (prefetch && std::strcmp(prefetch, "l1l2") == 0) t.bf16DecodePrefetch = kPrefetchL1 | kPrefetchL2;
    const char* alone = std::getenv("SUPRA_STEP_ALONE_FLOATS");
    if (alone && *alone) {
      char* end = nullptr;
      const long long n = std::strtoll(alone, &end, 10);
      if (*end == 0 && n >= 0) t.stepAloneFloats = n;
    }
    const char* pass = std::getenv("SUPRA_PASS_PREFETCH");
    if (pass && std::strcmp(pass, "l1l2") == 0) t.passPrefetch = true;
    if (pass && std::strcmp(pass, "none") == 0) t.passPrefetch = false;
    return t;
  }();
  return tuning;
}
#else
bool HaveAvx512() { return false; }
bool HaveAvx2Fma() { return false; }
#endif

// Decoding products: C[i, j] = alpha * A[i, :] . B[j, :] + beta * C[i, j] for a few rows of A (one per
// sequence) and B a weight stored n x k, with AVX-512 or AVX2+FMA (picked at load). One thread, one pass
// over B: each weight row is used by every row of A while it is in L1. OpenBLAS's sgemv would wake its
// threads for every product of a decoding step, which costs more than the product on a shared 2-core
// machine; the wasm kernels' 128-bit SIMD reads B at half the width.
#ifdef SUPRA_X86
// The weight's values as float32 vectors, by its stored type. A BF16 value is the top half of a float32:
// zero-extend to 32 bits, shift left 16, exact. Half the bytes of a float32 weight stream through, for
// the same arithmetic; so one kernel per instruction set serves both types.
__attribute__((target("avx2,fma"))) static inline __m256 Load8(const float* p) { return _mm256_loadu_ps(p); }
__attribute__((target("avx2,fma"))) static inline __m256 Load8(const uint16_t* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
}
__attribute__((target("avx512f"))) static inline __m512 Load16(const float* p) { return _mm512_loadu_ps(p); }
__attribute__((target("avx512f"))) static inline __m512 Load16(const uint16_t* p) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
}
static inline float Load1(float v) { return v; }
static inline float Load1(uint16_t v) {
  const uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// The AVX2 kernel's prefetches by weight type (kernels.h): none for float32, the L1 one for BF16.
template <typename T>
constexpr int kAvx2Prefetch = std::is_same<T, float>::value ? 0 : kPrefetchL1;

template <typename T>
__attribute__((target("avx2,fma"))) static void DotRowsAvx2Of(int m, int n, int k, float alpha, float beta, const float* A,
                                                             int lda, const T* B, int ldb, float* C, int ldc) {
  for (int j = 0; j < n; j++) {
    const T* b = B + static_cast<int64_t>(j) * ldb;
    for (int i = 0; i < m; i++) {
      const float* a = A + static_cast<int64_t>(i) * lda;
      __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
      int p = 0;
      for (; p + 32 <= k; p += 32) {
        if (kAvx2Prefetch<T> != 0 && i == 0) PrefetchAhead<kAvx2Prefetch<T>>(b + p);
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + p), Load8(b + p), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + p + 8), Load8(b + p + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + p + 16), Load8(b + p + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + p + 24), Load8(b + p + 24), s3);
      }
      for (; p + 8 <= k; p += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + p), Load8(b + p), s0);
      const __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
      __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
      h = _mm_add_ps(h, _mm_movehl_ps(h, h));
      h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
      float sum = _mm_cvtss_f32(h);
      for (; p < k; p++) sum += a[p] * Load1(b[p]);
      float* c = C + static_cast<int64_t>(i) * ldc + j;
      *c = beta == 0 ? alpha * sum : alpha * sum + beta * *c;
    }
  }
}

template <typename T, int Prefetch = kPrefetchL1 | kPrefetchL2>
__attribute__((target("avx512f"))) static void DotRowsAvx512Of(int m, int n, int k, float alpha, float beta, const float* A,
                                                              int lda, const T* B, int ldb, float* C, int ldc) {
  for (int j = 0; j < n; j++) {
    const T* b = B + static_cast<int64_t>(j) * ldb;
    for (int i = 0; i < m; i++) {
      const float* a = A + static_cast<int64_t>(i) * lda;
      __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
      int p = 0;
      for (; p + 32 <= k; p += 32) {
        if (i == 0) PrefetchAhead<Prefetch>(b + p);
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + p), Load16(b + p), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + p + 16), Load16(b + p + 16), s1);
      }
      for (; p + 16 <= k; p += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + p), Load16(b + p), s0);
      float sum = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
      for (; p < k; p++) sum += a[p] * Load1(b[p]);
      float* c = C + static_cast<int64_t>(i) * ldc + j;
      *c = beta == 0 ? alpha * sum : alpha * sum + beta * *c;
    }
  }
}

void DotRowsAvx2(int m, int n, int k, float alpha, float beta, const float* A, int lda, const float* B, int ldb, float* C, int ldc) {
  DotRowsAvx2Of(m, n, k, alpha, beta, A, lda, B, ldb, C, ldc);
}
void DotRowsAvx512(int m, int n, int k, float alpha, float beta, const float* A, int lda, const float* B, int ldb, float* C, int ldc) {
  DotRowsAvx512Of(m, n, k, alpha, beta, A, lda, B, ldb, C, ldc);
}
// BF16 weights: alpha 1 and beta 0 make the store C = sum, as the float32 kernel's own.
void DotRowsBf16Avx2(int m, int n, int k, const float* A, int lda, const uint16_t* W, int ldw, float* C, int ldc) {
  DotRowsAvx2Of(m, n, k, 1.0f, 0.0f, A, lda, W, ldw, C, ldc);
}
void DotRowsBf16Avx512(int m, int n, int k, const float* A, int lda, const uint16_t* W, int ldw, float* C, int ldc) {
  if (CpuTuningNow().bf16DecodePrefetch == kPrefetchNta) DotRowsAvx512Of<uint16_t, kPrefetchNta>(m, n, k, 1.0f, 0.0f, A, lda, W, ldw, C, ldc);
  else DotRowsAvx512Of<uint16_t, kPrefetchL1 | kPrefetchL2>(m, n, k, 1.0f, 0.0f, A, lda, W, ldw, C, ldc);
}

__attribute__((target("avx512f"))) static void WidenStore16(const uint16_t* in, float* out) { _mm512_storeu_ps(out, Load16(in)); }
__attribute__((target("avx2,fma"))) static void WidenStore8(const uint16_t* in, float* out) { _mm256_storeu_ps(out, Load8(in)); }
#endif

void WidenBf16(const uint16_t* in, float* out, int64_t n) {
  int64_t i = 0;
#ifdef SUPRA_X86
  if (HaveAvx512()) {
    for (; i + 16 <= n; i += 16) WidenStore16(in + i, out + i);
  } else if (HaveAvx2Fma()) {
    for (; i + 8 <= n; i += 8) WidenStore8(in + i, out + i);
  }
#endif
  for (; i < n; i++) {
    const uint32_t bits = static_cast<uint32_t>(in[i]) << 16;
    std::memcpy(out + i, &bits, sizeof bits);
  }
}

// ---------------------------------------------------------------- the read-bandwidth loop
//
// Four independent accumulators of 64-bit integer adds (one cycle each, never the bottleneck), four
// full-width loads per 256 bytes with AVX-512, eight with AVX2.
#ifdef SUPRA_X86
__attribute__((target("avx512f"))) static uint64_t ReadSumAvx512(const char* p, int64_t bytes) {
  __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512(), s2 = _mm512_setzero_si512(), s3 = _mm512_setzero_si512();
  for (int64_t i = 0; i < bytes; i += 256) {
    s0 = _mm512_add_epi64(s0, _mm512_loadu_si512(p + i));
    s1 = _mm512_add_epi64(s1, _mm512_loadu_si512(p + i + 64));
    s2 = _mm512_add_epi64(s2, _mm512_loadu_si512(p + i + 128));
    s3 = _mm512_add_epi64(s3, _mm512_loadu_si512(p + i + 192));
  }
  return static_cast<uint64_t>(_mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(s0, s1), _mm512_add_epi64(s2, s3))));
}

__attribute__((target("avx2"))) static uint64_t ReadSumAvx2(const char* p, int64_t bytes) {
  __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256(), s2 = _mm256_setzero_si256(), s3 = _mm256_setzero_si256();
  for (int64_t i = 0; i < bytes; i += 256) {
    for (int64_t j = 0; j < 256; j += 128) {
      s0 = _mm256_add_epi64(s0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + j)));
      s1 = _mm256_add_epi64(s1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + j + 32)));
      s2 = _mm256_add_epi64(s2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + j + 64)));
      s3 = _mm256_add_epi64(s3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + j + 96)));
    }
  }
  const __m256i s = _mm256_add_epi64(_mm256_add_epi64(s0, s1), _mm256_add_epi64(s2, s3));
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), s);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}
#endif

uint64_t ReadSum(const void* data, int64_t bytes) {
  const char* p = static_cast<const char*>(data);
#ifdef SUPRA_X86
  if (HaveAvx512()) return ReadSumAvx512(p, bytes);
  if (HaveAvx2Fma()) return ReadSumAvx2(p, bytes);
#endif
  uint64_t s[4] = {0, 0, 0, 0};
  for (int64_t i = 0; i < bytes; i += 32) {
    for (int j = 0; j < 4; j++) {
      uint64_t w;
      std::memcpy(&w, p + i + 8 * j, sizeof w);
      s[j] += w;
    }
  }
  return s[0] + s[1] + s[2] + s[3];
}

const char* ReadSumKernel() { return HaveAvx512() ? "avx512" : HaveAvx2Fma() ? "avx2" : "scalar"; }




// ---------------------------------------------------------------- the optimizer's kernels (any CPU)

// as assembly/ops.ts adamw: decay = 1 − lr·wd and step = lr / bc1 in float32, then per value, each
// operation rounded once (IEEE division and square root, no contraction), so any vector width gives the
// scalar loop's bits.
static void AdamwScalar(float* p, float* g, float* m, float* v, float lr, float b1, float b2, float eps, float wd,
                        float bc1, float bc2, float gs, bool clear, int64_t lo, int64_t hi) {
  const float decay = 1 - lr * wd, step = lr / bc1, b1c = 1 - b1, b2c = 1 - b2;
  for (int64_t i = lo; i < hi; i++) {
    const float gi = g[i] * gs;
    if (clear) g[i] = 0;
    const float mi = b1 * m[i] + b1c * gi;
    const float vi = b2 * v[i] + b2c * (gi * gi);
    m[i] = mi;
    v[i] = vi;
    const float denom = std::sqrt(vi / bc2) + eps;
    p[i] = p[i] * decay - (step * mi) / denom;
  }
}

#ifdef SUPRA_X86
// The scalar loop 16 values at a time: its two divisions and square root per value are most of AdamW's
// time when they run one at a time, more than the memory traffic.
// Prefetch: CpuTuning's passPrefetch, each of the four streams' lines 2 KiB ahead into L1 and 8 KiB into L2.
template <bool Prefetch>
static __attribute__((target("avx512f"))) int64_t AdamwAvx512(float* p, float* g, float* m, float* v, float lr, float b1,
                                                              float b2, float eps, float wd, float bc1, float bc2, float gs,
                                                              bool clear, int64_t lo, int64_t hi) {
  const __m512 vdecay = _mm512_set1_ps(1 - lr * wd), vstep = _mm512_set1_ps(lr / bc1);
  const __m512 vb1 = _mm512_set1_ps(b1), vb1c = _mm512_set1_ps(1 - b1), vb2 = _mm512_set1_ps(b2), vb2c = _mm512_set1_ps(1 - b2);
  const __m512 vbc2 = _mm512_set1_ps(bc2), veps = _mm512_set1_ps(eps), vgs = _mm512_set1_ps(gs), zero = _mm512_setzero_ps();
  int64_t i = lo;
  for (; i + 16 <= hi; i += 16) {
    if (Prefetch) {
      PrefetchAhead<kPrefetchL1 | kPrefetchL2>(g + i);
      PrefetchAhead<kPrefetchL1 | kPrefetchL2>(m + i);
      PrefetchAhead<kPrefetchL1 | kPrefetchL2>(v + i);
      PrefetchAhead<kPrefetchL1 | kPrefetchL2>(p + i);
    }
    const __m512 gi = _mm512_mul_ps(_mm512_loadu_ps(g + i), vgs);
    if (clear) _mm512_storeu_ps(g + i, zero);
    const __m512 mi = _mm512_add_ps(_mm512_mul_ps(vb1, _mm512_loadu_ps(m + i)), _mm512_mul_ps(vb1c, gi));
    const __m512 vi = _mm512_add_ps(_mm512_mul_ps(vb2, _mm512_loadu_ps(v + i)), _mm512_mul_ps(vb2c, _mm512_mul_ps(gi, gi)));
    _mm512_storeu_ps(m + i, mi);
    _mm512_storeu_ps(v + i, vi);
    const __m512 denom = _mm512_add_ps(_mm512_sqrt_ps(_mm512_div_ps(vi, vbc2)), veps);
    const __m512 pi = _mm512_mul_ps(_mm512_loadu_ps(p + i), vdecay);
    _mm512_storeu_ps(p + i, _mm512_sub_ps(pi, _mm512_div_ps(_mm512_mul_ps(vstep, mi), denom)));
  }
  return i;
}

static __attribute__((target("avx"))) int64_t AdamwAvx(float* p, float* g, float* m, float* v, float lr, float b1, float b2,
                                                      float eps, float wd, float bc1, float bc2, float gs, bool clear,
                                                      int64_t lo, int64_t hi) {
  const __m256 vdecay = _mm256_set1_ps(1 - lr * wd), vstep = _mm256_set1_ps(lr / bc1);
  const __m256 vb1 = _mm256_set1_ps(b1), vb1c = _mm256_set1_ps(1 - b1), vb2 = _mm256_set1_ps(b2), vb2c = _mm256_set1_ps(1 - b2);
  const __m256 vbc2 = _mm256_set1_ps(bc2), veps = _mm256_set1_ps(eps), vgs = _mm256_set1_ps(gs), zero = _mm256_setzero_ps();
  int64_t i = lo;
  for (; i + 8 <= hi; i += 8) {
    const __m256 gi = _mm256_mul_ps(_mm256_loadu_ps(g + i), vgs);
    if (clear) _mm256_storeu_ps(g + i, zero);
    const __m256 mi = _mm256_add_ps(_mm256_mul_ps(vb1, _mm256_loadu_ps(m + i)), _mm256_mul_ps(vb1c, gi));
    const __m256 vi = _mm256_add_ps(_mm256_mul_ps(vb2, _mm256_loadu_ps(v + i)), _mm256_mul_ps(vb2c, _mm256_mul_ps(gi, gi)));
    _mm256_storeu_ps(m + i, mi);
    _mm256_storeu_ps(v + i, vi);
    const __m256 denom = _mm256_add_ps(_mm256_sqrt_ps(_mm256_div_ps(vi, vbc2)), veps);
    const __m256 pi = _mm256_mul_ps(_mm256_loadu_ps(p + i), vdecay);
    _mm256_storeu_ps(p + i, _mm256_sub_ps(pi, _mm256_div_ps(_mm256_mul_ps(vstep, mi), denom)));
  }
  return i;
}

static bool HaveAvx() {
  static const bool have = __builtin_cpu_supports("avx");
  return have;
}
#endif

void AdamwRange(float* p, float* g, float* m, float* v, float lr, float b1, float b2, float eps, float wd, float bc1,
                float bc2, float gs, bool clear, int64_t lo, int64_t hi) {
  int64_t i = lo;
#ifdef SUPRA_X86
  if (HaveAvx512()) {
    i = CpuTuningNow().passPrefetch ? AdamwAvx512<true>(p, g, m, v, lr, b1, b2, eps, wd, bc1, bc2, gs, clear, lo, hi)
                                    : AdamwAvx512<false>(p, g, m, v, lr, b1, b2, eps, wd, bc1, bc2, gs, clear, lo, hi);
  }
  else if (HaveAvx()) i = AdamwAvx(p, g, m, v, lr, b1, b2, eps, wd, bc1, bc2, gs, clear, lo, hi);
#endif
  AdamwScalar(p, g, m, v, lr, b1, b2, eps, wd, bc1, bc2, gs, clear, i, hi);
}

#ifdef SUPRA_X86
// The loop of SumSquaresChunk below on 8 values at a time, the same operations in the same order: the squares
// of 8 values in float64, then lanes (0, 1) + (2, 3) and (4, 5) + (6, 7) added to (a0, a1, b0, b1) as one
// vector. Scalar, its float64 conversions and multiplies bound it at ~2.7 G values/s on 2 cores, a third
// of the memory bandwidth (0.18 s of a 3.3 s Qwen2.5-0.5B step).
// Prefetch: CpuTuning's passPrefetch, once a line.
template <bool Prefetch>
__attribute__((target("avx512f"))) static int64_t SumSquaresAvx512(const float* x, int64_t n, double acc[4]) {
  __m256d s = _mm256_loadu_pd(acc);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    if (Prefetch && (i & 15) == 0) PrefetchAhead<kPrefetchL1 | kPrefetchL2>(x + i);
    const __m512d d = _mm512_cvtps_pd(_mm256_loadu_ps(x + i));
    const __m512d sq = _mm512_mul_pd(d, d);
    const __m512d even = _mm512_shuffle_f64x2(sq, sq, 0x88); // lanes (0, 1), (4, 5) of 128 bits: values 0 1 4 5
    const __m512d odd = _mm512_shuffle_f64x2(sq, sq, 0xdd);  // values 2 3 6 7
    s = _mm256_add_pd(s, _mm512_castpd512_pd256(_mm512_add_pd(even, odd)));
  }
  _mm256_storeu_pd(acc, s);
  return i;
}

// The same on AVX2: the squares of values 0-3 and 4-7 in two float64 vectors, their 128-bit halves paired.
__attribute__((target("avx2"))) static int64_t SumSquaresAvx2(const float* x, int64_t n, double acc[4]) {
  __m256d s = _mm256_loadu_pd(acc);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256d lo = _mm256_cvtps_pd(_mm_loadu_ps(x + i)), hi = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4));
    const __m256d sl = _mm256_mul_pd(lo, lo), sh = _mm256_mul_pd(hi, hi);
    const __m256d even = _mm256_permute2f128_pd(sl, sh, 0x20); // values 0 1 4 5
    const __m256d odd = _mm256_permute2f128_pd(sl, sh, 0x31);  // values 2 3 6 7
    s = _mm256_add_pd(s, _mm256_add_pd(even, odd));
  }
  _mm256_storeu_pd(acc, s);
  return i;
}
#endif

double SumSquaresChunk(const float* x, int64_t n) {
  // sumSquares64's f64x2 accumulators: lane 0 takes values 0 and 2 of each 4, lane 1 values 1 and 3
  double a0 = 0, a1 = 0, b0 = 0, b1 = 0;
  int64_t i = 0;
  auto sq = [](float f) { const double d = f; return d * d; };
#ifdef SUPRA_X86
  if (HaveAvx512() || HaveAvx2Fma()) {
    double acc[4] = {0, 0, 0, 0}; // a0, a1, b0, b1
    i = !HaveAvx512() ? SumSquaresAvx2(x, n, acc) : CpuTuningNow().passPrefetch ? SumSquaresAvx512<true>(x, n, acc) : SumSquaresAvx512<false>(x, n, acc);
    a0 = acc[0], a1 = acc[1], b0 = acc[2], b1 = acc[3];
  }
#endif
  for (; i + 8 <= n; i += 8) {
    a0 = a0 + (sq(x[i]) + sq(x[i + 2]));
    a1 = a1 + (sq(x[i + 1]) + sq(x[i + 3]));
    b0 = b0 + (sq(x[i + 4]) + sq(x[i + 6]));
    b1 = b1 + (sq(x[i + 5]) + sq(x[i + 7]));
  }
  for (; i + 4 <= n; i += 4) {
    a0 = a0 + (sq(x[i]) + sq(x[i + 2]));
    a1 = a1 + (sq(x[i + 1]) + sq(x[i + 3]));
  }
  double s = (a0 + b0) + (a1 + b1);
  for (; i < n; i++) s += sq(x[i]);
  return s;
}

void ScaleRange(float* x, float s, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; i++) x[i] = x[i] * s;
}

void EmbeddingBackwardColumns(const int32_t* ids, const float* dout, float* dtable, int64_t n, int64_t dim, int64_t lo, int64_t hi) {
  for (int64_t i = 0; i < n; i++) {
    const float* src = dout + i * dim;
    float* dst = dtable + static_cast<int64_t>(ids[i]) * dim;
    for (int64_t c = lo; c < hi; c++) dst[c] = dst[c] + src[c];
  }
}

} // namespace supra
