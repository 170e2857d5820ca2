// The wasm-exact elementwise kernels (elementwise.inc) on AVX-512 and on AVX2: the file's kernels once per
// instruction set, each over that set's vector operations (vector_ops.h), dispatched by VectorIsa (kernels.h).
#include "kernels.h"
#include "vector_ops.h"

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


}  // namespace

namespace avx512 {
using V = Avx512Ops;
#define SUPRA_ISA "avx512f"
#include "elementwise.inc"
#undef SUPRA_ISA
}  // namespace avx512

namespace avx2 {
using V = Avx2Ops;
#define SUPRA_ISA "avx2,fma"
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
