// The kernels written once over a vector type -- the wasm-exact elementwise kernels (elementwise.inc) and the
// batched small products (small_gemm.inc) -- compiled once per instruction set, AVX-512 and AVX2, each over
// that set's vector operations (vector_ops.h), and dispatched by VectorIsa (kernels.h).
#include "kernels.h"
#include "vector_ops.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

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

// out (cols x rows, packed) = the transpose of in (rows x cols, leading dimension ld), 8 x 8 blocks in
// registers: op(B) of a product with transB, packed as rows.
static __attribute__((target("avx2"))) void TransposeInto(const float* in, int ld, int rows, int cols, float* out) {
  int r0 = 0;
  for (; r0 + 8 <= rows; r0 += 8) {
    int c0 = 0;
    for (; c0 + 8 <= cols; c0 += 8) {
      __m256 x[8], t[8];
      for (int i = 0; i < 8; i++) x[i] = _mm256_loadu_ps(in + static_cast<int64_t>(r0 + i) * ld + c0);
      for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(x[i], x[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(x[i], x[i + 1]);
      }
      for (int i = 0; i < 8; i += 4) {
        x[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        x[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        x[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        x[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
      }
      for (int i = 0; i < 4; i++) {
        t[i] = _mm256_permute2f128_ps(x[i], x[i + 4], 0x20);
        t[i + 4] = _mm256_permute2f128_ps(x[i], x[i + 4], 0x31);
      }
      for (int i = 0; i < 8; i++) _mm256_storeu_ps(out + static_cast<int64_t>(c0 + i) * rows + r0, t[i]);
    }
    for (; c0 < cols; c0++) {
      for (int i = 0; i < 8; i++) out[static_cast<int64_t>(c0) * rows + r0 + i] = in[static_cast<int64_t>(r0 + i) * ld + c0];
    }
  }
  for (; r0 < rows; r0++) {
    for (int c = 0; c < cols; c++) out[static_cast<int64_t>(c) * rows + r0] = in[static_cast<int64_t>(r0) * ld + c];
  }
}

}  // namespace

namespace avx512 {
using V = Avx512Ops;
#define SUPRA_ISA "avx512f"
#include "elementwise.inc"
#include "small_gemm.inc"
#undef SUPRA_ISA
}  // namespace avx512

namespace avx2 {
using V = Avx2Ops;
#define SUPRA_ISA "avx2,fma"
#include "elementwise.inc"
#include "small_gemm.inc"
#undef SUPRA_ISA
}  // namespace avx2

void SmallGemm(VectorIsa isa, bool transA, bool transB, int m, int n, int k, float alpha, float beta, const float* A, int lda,
               const float* B, int ldb, float* C, int ldc, float* pack) {
  if (isa == VectorIsa::kAvx512) avx512::SmallGemm(transA, transB, m, n, k, alpha, beta, A, lda, B, ldb, C, ldc, pack);
  else avx2::SmallGemm(transA, transB, m, n, k, alpha, beta, A, lda, B, ldb, C, ldc, pack);
}

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

void FusedStepBefore(VectorIsa isa, float* q, float* k, const float* v, float* kRep, float* vRep, const float* cos, const float* sin,
                     int64_t batch, int64_t heads, int64_t rep, int64_t dk, int64_t dv, int64_t start) {
  if (isa == VectorIsa::kAvx512) avx512::FusedStepBefore(q, k, v, kRep, vRep, cos, sin, batch, heads, rep, dk, dv, start);
  else avx2::FusedStepBefore(q, k, v, kRep, vRep, cos, sin, batch, heads, rep, dk, dv, start);
}

void GroupnormRange(VectorIsa isa, const float* x, float* out, float* rstd, int64_t size, float eps, int64_t lo, int64_t hi) {
  if (isa == VectorIsa::kAvx512) avx512::GroupnormGroups(x, out, rstd, size, eps, lo, hi);
  else avx2::GroupnormGroups(x, out, rstd, size, eps, lo, hi);
}

void AddSpan(VectorIsa isa, const float* a, const float* b, float* out, int64_t lo, int64_t hi) {
  if (isa == VectorIsa::kAvx512) avx512::AddRange(a, b, out, lo, hi);
  else avx2::AddRange(a, b, out, lo, hi);
}

void AddBiasSpan(VectorIsa isa, float* y, const float* bias, int64_t cols, int64_t lo, int64_t hi) {
  if (isa == VectorIsa::kAvx512) avx512::AddBiasRows(y, bias, cols, lo, hi);
  else avx2::AddBiasRows(y, bias, cols, lo, hi);
}

void RmsnormSpan(VectorIsa isa, const float* x, const float* w, float* out, float* rstd, int64_t dim, float eps, int64_t lo, int64_t hi) {
  if (isa == VectorIsa::kAvx512) avx512::RmsnormRows(x, w, out, rstd, dim, eps, lo, hi);
  else avx2::RmsnormRows(x, w, out, rstd, dim, eps, lo, hi);
}

// ---- the range kernels' table (kernels.h RangeKernel)

namespace {

bool IsCount(double v) { return v >= 0 && v <= 9007199254740992.0 && std::floor(v) == v; }
// scalars [0, n) are counts (non-negative integers)
bool Counts(const double* s, int n) {
  for (int i = 0; i < n; i++) if (!IsCount(s[i])) return false;
  return true;
}
int64_t I(double v) { return static_cast<int64_t>(v); }
// toHeadMajor's and toTokenMajor's tokens, heads, rep, dim: counts, rep >= 1 dividing heads
bool HeadLayout(const double* s) { return Counts(s, 4) && s[2] >= 1 && I(s[1]) % I(s[2]) == 0; }

// One row of the table: the two widths' runs of a kernel of elementwise.inc, through a captureless lambda each.
// F(i), D(i): span i as the float32 or float64 array it is.
#define SUPRA_RANGE_RUNS(call)                                                                                      \
  {[](void* const* p, const double* s, int64_t lo, int64_t hi) { using namespace avx2; call; },                      \
   [](void* const* p, const double* s, int64_t lo, int64_t hi) { using namespace avx512; call; }}
#define F(i) static_cast<float*>(p[i])
#define D(i) static_cast<const double*>(p[i])

const RangeKernel kRangeKernels[] = {
    {"add", {"a", "b", "out"}, 0, 0, 0, [](int, const double*, double total) { return total; },
     SUPRA_RANGE_RUNS(AddRange(F(0), F(1), F(2), lo, hi))},
    {"addBias", {"y", "bias"}, 0, 0, 1,
     [](int span, const double* s, double total) -> double { return !Counts(s, 1) ? -1 : span == 0 ? total * s[0] : s[0]; },
     SUPRA_RANGE_RUNS(AddBiasRows(F(0), F(1), I(s[0]), lo, hi))},
    {"mulBlocks", {"x", "pattern"}, 0, 0, 1,
     [](int span, const double* s, double total) -> double { return !Counts(s, 1) ? -1 : span == 0 ? total * s[0] : s[0]; },
     SUPRA_RANGE_RUNS(MulBlocks(F(0), F(1), I(s[0]), lo, hi))},
    // units: the columns of db (total <= cols)
    {"sumRows", {"db", "dy"}, 0, 0, 2,
     [](int span, const double* s, double total) -> double {
       return !Counts(s, 2) || total > s[1] ? -1 : span == 0 ? s[1] : s[0] * s[1];
     },
     SUPRA_RANGE_RUNS(SumRowsColumns(F(0), F(1), I(s[0]), I(s[1]), lo, hi))},
    {"relu", {"x", "y"}, 0, 0, 0, [](int, const double*, double total) { return total; }, SUPRA_RANGE_RUNS(ReluRange(F(0), F(1), lo, hi))},
    {"reluBackward", {"dy", "y", "dx"}, 0, 0, 0, [](int, const double*, double total) { return total; },
     SUPRA_RANGE_RUNS(ReluBackwardRange(F(0), F(1), F(2), lo, hi))},
    // scalars dim, eps (a float32 argument of the wasm kernel, so rounded to float32 here too)
    {"rmsnorm", {"x", "w", "out", "rstd"}, 1u << 1, 0, 2,
     [](int span, const double* s, double total) -> double {
       return !Counts(s, 1) ? -1 : span == 1 ? s[0] : span == 3 ? total : total * s[0];
     },
     SUPRA_RANGE_RUNS(RmsnormRows(F(0), F(1), F(2), F(3), I(s[0]), static_cast<float>(s[1]), lo, hi))},
    // scalars dim, accumulate (0 or 1)
    {"rmsnormBackwardDx", {"dout", "x", "w", "rstd", "dx"}, 1u << 2, 0, 2,
     [](int span, const double* s, double total) -> double {
       return !Counts(s, 2) ? -1 : span == 2 ? s[0] : span == 3 ? total : total * s[0];
     },
     SUPRA_RANGE_RUNS(RmsnormBackwardDxRows(F(0), F(1), F(2), F(3), F(4), I(s[0]), s[1] != 0, lo, hi))},
    // units: the columns of dw (total <= dim); scalars rows, dim
    {"rmsnormBackwardDw", {"dout", "x", "rstd", "dw"}, 0, 0, 2,
     [](int span, const double* s, double total) -> double {
       return !Counts(s, 2) || total > s[1] ? -1 : span == 2 ? s[0] : span == 3 ? s[1] : s[0] * s[1];
     },
     SUPRA_RANGE_RUNS(RmsnormBackwardDwColumns(F(0), F(1), F(2), F(3), I(s[0]), I(s[1]), lo, hi))},
    // units: groups; scalars size, eps (float32)
    {"groupnorm", {"x", "out", "rstd"}, 0, 0, 2,
     [](int span, const double* s, double total) -> double { return !Counts(s, 1) ? -1 : span == 2 ? total : total * s[0]; },
     SUPRA_RANGE_RUNS(GroupnormGroups(F(0), F(1), F(2), I(s[0]), static_cast<float>(s[1]), lo, hi))},
    {"groupnormBackward", {"dout", "y", "rstd", "dx"}, 0, 0, 1,
     [](int span, const double* s, double total) -> double { return !Counts(s, 1) ? -1 : span == 2 ? total : total * s[0]; },
     SUPRA_RANGE_RUNS(GroupnormBackwardGroups(F(0), F(1), F(2), F(3), I(s[0]), lo, hi))},
    // units: rows of x (batch·tokens); scalars tokens, heads, dim (even), start, sign (float32)
    {"rope", {"x", "cos", "sin"}, 0, 0, 5,
     [](int span, const double* s, double total) -> double {
       if (!Counts(s, 4) || std::fmod(s[2], 2) != 0 || (total > 0 && s[0] < 1)) return -1;
       return span == 0 ? total * s[1] * s[2] : (s[3] + s[0]) * (s[2] / 2);
     },
     SUPRA_RANGE_RUNS(RopeRows(F(0), F(1), F(2), I(s[0]), I(s[1]), I(s[2]), I(s[3]), static_cast<float>(s[4]), lo, hi))},
    // units: (b, h) pairs (total = B·heads); scalars tokens, heads, rep, dim
    {"toHeadMajor", {"src", "dst"}, 0, 0, 4,
     [](int span, const double* s, double total) -> double {
       if (!HeadLayout(s) || (total > 0 && (s[1] < 1 || std::fmod(total, s[1]) != 0))) return -1;
       return span == 0 ? total / s[2] * s[0] * s[3] : total * s[0] * s[3];
     },
     SUPRA_RANGE_RUNS(ToHeadMajorUnits(F(0), F(1), I(s[0]), I(s[1]), I(s[2]), I(s[3]), lo, hi))},
    // units: (b, g) pairs (total = B·heads/rep)
    {"toTokenMajor", {"src", "dst"}, 0, 0, 4,
     [](int span, const double* s, double total) -> double {
       if (!HeadLayout(s) || (total > 0 && (s[1] < 1 || std::fmod(total, s[1] / s[2]) != 0))) return -1;
       return span == 0 ? total * s[2] * s[0] * s[3] : total * s[0] * s[3];
     },
     SUPRA_RANGE_RUNS(ToTokenMajorUnits(F(0), F(1), I(s[0]), I(s[1]), I(s[2]), I(s[3]), lo, hi))},
    // units: heads of a batch (total = U); spans src, dst, powers; scalars srcStride, heads, rows, cols, powStride,
    // mult (float64), from (an exponent's start counting down, or -1: counting up)
    {"scaleRowsByDecay", {"src", "dst", "powers"}, 0, 1u << 2, 7,
     [](int span, const double* s, double total) -> double {
       if (!Counts(s, 5) || std::floor(s[6]) != s[6] || (s[6] >= 0 && s[6] < s[2] - 1) || (total > 0 && s[1] < 1)) return -1;
       if (total == 0 || s[2] == 0) return 0;
       return span == 0 ? (total - 1) * s[0] + s[2] * s[3] : span == 1 ? total * s[2] * s[3] : (s[1] - 1) * s[4] + (s[6] >= 0 ? s[6] : s[2] - 1) + 1;
     },
     SUPRA_RANGE_RUNS(ScaleRowsByDecayUnits(F(0), I(s[0]), F(1), I(s[1]), I(s[2]), I(s[3]), D(2), I(s[4]), s[5], I(s[6]), lo, hi))},
    // units: rows of [U, tokens, cols] (total = U·tokens); spans src, dst, powers; scalars heads, tokens, cols, chunk,
    // powStride, mult (float64), fromEnd (0 or 1)
    {"decayChunkRows", {"src", "dst", "powers"}, 0, 1u << 2, 7,
     [](int span, const double* s, double total) -> double {
       if (!Counts(s, 5) || (s[6] != 0 && s[6] != 1) || (total > 0 && (s[0] < 1 || s[1] < 1 || s[3] < 1 || std::fmod(total, s[1]) != 0))) return -1;
       if (total == 0) return 0;
       return span < 2 ? total * s[2] : (s[0] - 1) * s[4] + std::min(s[1], s[3]) + 1;
     },
     SUPRA_RANGE_RUNS(DecayChunkRows(F(0), F(1), I(s[0]), I(s[1]), I(s[2]), I(s[3]), D(2), I(s[4]), s[5], s[6] != 0, lo, hi))},
    // units: blocks (total = U); spans x, powers; scalars size, heads, powStride, n (the exponent)
    {"decayBlocks", {"x", "powers"}, 0, 1u << 1, 4,
     [](int span, const double* s, double total) -> double {
       if (!Counts(s, 4) || (total > 0 && s[1] < 1)) return -1;
       if (total == 0) return 0;
       return span == 0 ? total * s[0] : (s[1] - 1) * s[2] + s[3] + 1;
     },
     SUPRA_RANGE_RUNS(DecayBlocks(F(0), I(s[0]), I(s[1]), D(1), I(s[2]), I(s[3]), lo, hi))},
};
#undef SUPRA_RANGE_RUNS
#undef F
#undef D

}  // namespace

const RangeKernel* FindRangeKernel(const std::string& name) {
  for (const RangeKernel& k : kRangeKernels) if (name == k.name) return &k;
  return nullptr;
}

std::vector<const char*> RangeKernelNames() {
  std::vector<const char*> names;
  for (const RangeKernel& k : kRangeKernels) names.push_back(k.name);
  return names;
}

}  // namespace supra
#endif
