// The add-on's own compute kernels (kernels.cc), for the work OpenBLAS is the wrong tool for: decoding
// products (a few rows against a weight), batched small products (the chunked attention's 64x64x64
// blocks), and cross-entropy and swiglu computed exactly as the wasm kernels compute them. Plain C++ on
// raw pointers, one thread per call; addon.cc checks the arguments and shares the work between threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#define SUPRA_X86 1
#include <immintrin.h>
// Compilers that know AVX-512 BF16's intrinsics (GCC 10, Clang 9); older ones build BF16 products by rounded
// operands only (addon.cc GemmRoundedOperands).
#if (defined(__clang__) && __clang_major__ >= 9) || (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 10)
#define SUPRA_BF16_PRODUCTS 1
#endif
// ... and AMX's tile intrinsics (GCC 11, Clang 12), on Linux, which grants AMX's tile state on request.
#if defined(__linux__) && ((defined(__clang__) && __clang_major__ >= 12) || (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 11))
#define SUPRA_AMX_PRODUCTS 1
#endif
#endif

namespace supra {

// SmallGemm takes m, n, k at most this; its pack buffer holds kSmallMaxDim^2 floats.
constexpr int kSmallMaxDim = 128;

// What the CPU has, asked once (false off x86).
bool HaveAvx512();
// The kernels written once over a vector type (vector_ops.h) run at either width: kAvx512 needs HaveAvx512(),
// kAvx2 HaveAvx2Fma().
enum class VectorIsa { kAvx2, kAvx512 };
#ifdef SUPRA_X86
// Decoding products stream each weight once. A software prefetch this far ahead of the bytes being read keeps
// the transfer going under the arithmetic: on the 2-core AVX-512 Zen 4 VM, 2 threads, a 1536 x 576 weight read
// from memory went from 36 to 41 GB/s at BF16 and from 25 to 28 GB/s at int8 (2026-12-04; 1, 4 and 8 KiB did
// no better). A second one into L2, four times as far, covers a memory further away: on a 2-core Xeon VM
// (Emerald Rapids, 2026-12-06), BF16 weights streamed at 20-24 GB/s with the first alone, 27-30 with both,
// against 29 for a plain read of 1 GiB. Which of them a kernel issues is its own: on a 2-core Zen 3 VM (AVX2
// only, 2026-12-06; decoding interleaved in one process, SUPRA models of the scale benchmark's shapes) the L2
// one slowed every AVX2 kernel, the L1 one sped int8 up by 2-8% and BF16 by 0-7% against none, and float32
// weights streamed fastest with none (SmolLM-135M: 43.4 tokens/s, 36.5 with the L1 one, 33.7 with both).
// The AVX-512 BF16 kernel's prefetch depends on the CPU's maker (CpuTuning below).
constexpr int kPrefetchBytes = 2048;
constexpr int kPrefetchL1 = 1, kPrefetchL2 = 2, kPrefetchNta = 4;
template <int Levels>
static inline void PrefetchAhead(const void* p) {
  if (Levels & kPrefetchL1) _mm_prefetch(static_cast<const char*>(p) + kPrefetchBytes, _MM_HINT_T0);
  if (Levels & kPrefetchL2) _mm_prefetch(static_cast<const char*>(p) + 4 * kPrefetchBytes, _MM_HINT_T1);
  if (Levels & kPrefetchNta) _mm_prefetch(static_cast<const char*>(p) + 2 * kPrefetchBytes, _MM_HINT_NTA);
}

// What runs fastest differs between CPU makers in a few places, so each maker has a row of this table, picked
// once by CPUID's vendor string (CpuTuningNow, kernels.cc):
// - bf16DecodePrefetch, the AVX-512 BF16 decoding kernel's software prefetch. On AMD a non-temporal one
//   (kPrefetchNta): the weight passes through without evicting what the step keeps coming back to (the
//   recurrent states, the activations), which the T0/T1 prefetches of 270 MB a token pushed out of the caches.
//   On the Zen 4 VM (2026-12-07, the variants alternating token by token in one process, SUPRA models of the
//   scale benchmark), SmolLM-135M decoded 6-23% faster than with the L1 and L2 ones, TinyLlama-1.1B 2-14%;
//   8 KiB ahead did as well, 2 KiB or both worse; the int8 kernel gained nothing from it (within 3%). On Intel
//   it is a trap: on the 2-core Xeon VM (AMX, 2026-12-07, SmolLM-135M SUPRA at BF16, a process each, twice)
//   35-36 tokens/s, against 88-99 with the L1 and L2 ones (kept there), 91-92 with the L2 one alone, 75-79
//   with the L1 one, 66-68 with none.
// - stepAloneFloats: a one-token recurrent step (linearAttentionStep) with at most this many floats of state
//   runs on the calling thread alone, a larger one shared with the helper thread (addon.cc says why). On the
//   Zen 4 VM SmolLM-135M's 147 KiB states decoded faster alone; on the Xeon VM shared (alternating token by
//   token in one process, 2026-12-07: 3.2-3.6% faster at int8, 2.1% at BF16; the embedded teacher's states,
//   in cache, within 1% either way), whose one core reads its memory at half the two cores' pace.
// - passPrefetch: the L1 and L2 prefetches (PrefetchAhead) in the AVX-512 loops of training's passes over
//   every parameter, AdamW and the gradient norm's sum of squares. On the Xeon VM the sum of squares read
//   11 GB/s without them and 22-23 with them (the memory reads ~27 on 2 threads), AdamW 1.30-1.35 G values/s
//   and 1.43-1.47, and SmolLM-135M's 1 x 512 BF16 step spent 139 ms in the two against 166 (2.9% faster,
//   alternating step by step in one process). On the Zen 4 VM they already ran at 47-52 and 86 GB/s without.
// SUPRA_BF16_PREFETCH=nta|l1l2, SUPRA_STEP_ALONE_FLOATS=N and SUPRA_PASS_PREFETCH=l1l2|none override a row's
// field, for measuring.
struct CpuTuning {
  const char* vendor;     // "amd" or "other"
  int bf16DecodePrefetch; // kPrefetchNta or kPrefetchL1 | kPrefetchL2
  int64_t stepAloneFloats;
  bool passPrefetch;
};
const CpuTuning& CpuTuningNow();
#endif
bool HaveAvx2Fma();

#ifdef SUPRA_X86
// C[i, j] = alpha * A[i, :] . B[j, :] + beta * C[i, j]: a few rows of A against B stored n x k.
void DotRowsAvx2(int m, int n, int k, float alpha, float beta, const float* A, int lda, const float* B, int ldb,
                 float* C, int ldc);
void DotRowsAvx512(int m, int n, int k, float alpha, float beta, const float* A, int lda, const float* B, int ldb,
                   float* C, int ldc);

// C[i, j] = A[i, :] . W[j, :] for a few rows of A and W stored n x k as BF16 (uint16: the high half of a
// float32), widened in registers: the same sums in the same order as DotRows* with alpha 1, beta 0 over the
// widened weight, so the same bits.
void DotRowsBf16Avx2(int m, int n, int k, const float* A, int lda, const uint16_t* W, int ldw, float* C, int ldc);
// The weight streams with CpuTuningNow().bf16DecodePrefetch.
void DotRowsBf16Avx512(int m, int n, int k, const float* A, int lda, const uint16_t* W, int ldw, float* C, int ldc);

// C = alpha * op(A) * op(B) + beta * C for one small product (1 <= m, n, k <= kSmallMaxDim), summed as
// OpenBLAS's kernels do, one FMA per term in order (kernels_vector.cc; the same bits at either width).
void SmallGemm(VectorIsa isa, bool transA, bool transB, int m, int n, int k, float alpha, float beta, const float* A, int lda,
               const float* B, int ldb, float* C, int ldc, float* pack);

// The wasm kernels of assembly/ops.ts on [lo, hi), bit for bit, at either width (kernels_vector.cc):
// crossEntropy (returns the rows' loss sum), swiglu, swigluBackward (act may be null), and linearAttentionStep
// on units [lo, hi) (a unit: one head of one sequence).
double CrossEntropyRows(VectorIsa isa, const float* logits, const int32_t* targets, int vocab, float* dlogits, double zLoss,
                        double inv, int64_t lo, int64_t hi);
void SwigluRange(VectorIsa isa, const float* gate, const float* up, float* out, int64_t lo, int64_t hi);
void SwigluBackwardRange(VectorIsa isa, const float* dout, const float* gate, const float* up, float* dgate, float* dup,
                         float* act, int64_t lo, int64_t hi);
void LinearAttentionStepRange(VectorIsa isa, const float* q, const float* k, const float* v, float* o, float* state, int heads,
                              int tokens, int dk, int dv, float scale, const double* powers, int powStride, int64_t lo, int64_t hi);
// fusedRecurrentStep (addon.cc) around the step: ReLU, repeat_kv and RoPE before it (kRep, vRep unused when
// rep = 1), and the GroupNorm of groups [lo, hi) after it, the range kernels' own rows.
void FusedStepBefore(VectorIsa isa, float* q, float* k, const float* v, float* kRep, float* vRep, const float* cos, const float* sin,
                     int64_t batch, int64_t heads, int64_t rep, int64_t dk, int64_t dv, int64_t start);
void GroupnormRange(VectorIsa isa, const float* x, float* out, float* rstd, int64_t size, float eps, int64_t lo, int64_t hi);
// decodeMlpBlock (addon.cc): the range kernels add (out = a + b, values [lo, hi)) and rmsnorm (rows [lo, hi) of dim).
void AddSpan(VectorIsa isa, const float* a, const float* b, float* out, int64_t lo, int64_t hi);
// fusedRecurrentLayerStep (addon.cc): the range kernel addBias (rows [lo, hi) of y[., cols] += bias).
void AddBiasSpan(VectorIsa isa, float* y, const float* bias, int64_t cols, int64_t lo, int64_t hi);
void RmsnormSpan(VectorIsa isa, const float* x, const float* w, float* out, float* rstd, int64_t dim, float eps, int64_t lo, int64_t hi);
// The range kernels of assembly/ops.ts the add-on runs itself, one row each (kernels_vector.cc): a training
// step's rmsnorm, groupnorm, layout, bias, relu, rope and decay kernels, bit for bit the wasm kernels' results at either
// width. A call gives the wasm kernel's arguments: its arrays in order (spans), then its numbers
// (scalars), and the units [0, total) to split into chunks as ops.ts's parallelFor does.
struct RangeKernel {
  const char* name;  // the wasm kernel's name
  const char* spans[5];  // the names of its arrays, in order (a null entry ends the list)
  uint32_t optional;  // bit i: span i may be null
  uint32_t float64;  // bit i: span i is a Float64Array (the others Float32Arrays)
  int scalars;
  // The values span `span` must hold for units [0, total) with these scalars; -1 when the scalars are invalid.
  double (*need)(int span, const double* scalars, double total);
  // The units [lo, hi), on AVX2 (run[0]) or AVX-512 (run[1]).
  void (*run[2])(void* const* spans, const double* scalars, int64_t lo, int64_t hi);
  int SpanCount() const {
    int n = 0;
    while (n < 5 && spans[n]) n++;
    return n;
  }
};
// The row of `name` (null when there is none).
const RangeKernel* FindRangeKernel(const std::string& name);
std::vector<const char*> RangeKernelNames();
#endif

// The CPU has AVX-512 BF16 (vdpbf16ps), asked once (false off x86).
bool HaveAvx512Bf16();
// The CPU has AMX-BF16 tiles (and AVX-512 BF16) and the OS lets this process use them, asked once.
bool HaveAmxBf16();
// The kernels of BF16 products: vdpbf16ps on a 6x32 register tile, AMX's tdpbf16ps on 32x32 tiles, or (any CPU)
// operands rounded to BF16 into float32 copies and multiplied by OpenBLAS's sgemm: BF16 products' numbers
// without their speed, so a run at --matmul-precision bf16 can be made and checked anywhere.
enum class Bf16Kernel { kAvx512Bf16, kAmx, kRounded };
#ifdef SUPRA_BF16_PRODUCTS
// C = alpha * op(A) * op(B) + beta * C with op(A) and op(B) rounded to BF16 (nearest even) and the products
// summed in float32 (gemm_bf16.cc), shared with the helper thread; the bits do not depend on the thread
// count (they do on the kernel). Needs HaveAvx512Bf16() (kAmx: HaveAmxBf16()) and k >= 1.
void GemmBf16Products(Bf16Kernel kernel, bool transA, bool transB, int m, int n, int k, float alpha, float beta, const float* A,
                      int lda, const float* B, int ldb, float* C, int ldc);
#endif

// The optimizer's kernels of assembly/ops.ts, bit for bit, for arrays outside the arena (which the wasm kernels
// would copy in and out): plain C++ (no reassociation, no contraction: the same roundings at any vector width).
// AdamW on [lo, hi) of the gradient g·gs, with every hyperparameter rounded to float32 as the wasm kernel's
// f32 arguments are; clear zeroes g as it is read. Vectorized where the CPU allows (the same bits).
void AdamwRange(float* p, float* g, float* m, float* v, float lr, float b1, float b2, float eps, float wd, float bc1,
                float bc2, float gs, bool clear, int64_t lo, int64_t hi);
// Σ x² of x[0, n) in float64 with sumSquares64's two 2-lane accumulators: one chunk of ops.sumSquares.
double SumSquaresChunk(const float* x, int64_t n);
// x[i] *= s on [lo, hi).
void ScaleRange(float* x, float s, int64_t lo, int64_t hi);
// Columns [lo, hi) of dtable[ids[i], :] += dout[i, :], rows in order.
void EmbeddingBackwardColumns(const int32_t* ids, const float* dout, float* dtable, int64_t n, int64_t dim, int64_t lo, int64_t hi);

// out[0, n) = the BF16 values in[0, n) as float32 (exact), vectorized where the CPU allows.
void WidenBf16(const uint16_t* in, float* out, int64_t n);

// ---- int8 weights (kernels_int8.cc): W stored n x k as int8, row j's block b of kInt8Block values scaled
// by scales[j * ceil(k / kInt8Block) + b], a bfloat16 (src/core/weights.ts).
constexpr int kInt8Block = 32;

// A bfloat16's value as float32: its bits are the top half of the float32's (exact).
inline float Bf16Value(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float f;
  __builtin_memcpy(&f, &wide, 4);
  return f;
}

#ifdef SUPRA_X86
// C[i, j] = A[i, :] . W[j, :] for m <= 4 rows of A: each block summed in float32 on the widened int8
// values, times its scale, the blocks summed in float32.
void DotRowsInt8Avx512(int m, int n, int k, const float* A, int lda, const int8_t* W, const uint16_t* scales, float* C, int ldc);
void DotRowsInt8Avx2(int m, int n, int k, const float* A, int lda, const int8_t* W, const uint16_t* scales, float* C, int ldc);
#endif

// out[rows, k] = the weight's rows as float32 (q * scale, rounded once), vectorized where the CPU allows.
void DequantizeInt8Rows(const int8_t* W, const uint16_t* scales, int rows, int k, float* out);

// Values [from, from + n) of an int8 weight with rows of k values quantized from src[0, n) (q and scales as
// above; from and from + n at block edges, checked by the caller). Returns the index in src of the first
// value that is NaN or infinite (the blocks before it written), or -1.
int64_t QuantizeInt8(const float* src, int64_t n, int64_t from, int64_t k, int8_t* q, uint16_t* scales);

// The read-bandwidth loop (addon.cc's readBandwidth): the sum, modulo 2^64, of the 64-bit words of
// [p, p + bytes), bytes a multiple of kReadSumAlign, with the widest loads the CPU has (AVX-512, AVX2, else
// scalar); the sum keeps the compiler from dropping the loads. ReadSumKernel names the one in use.
constexpr int64_t kReadSumAlign = 256;
uint64_t ReadSum(const void* p, int64_t bytes);
const char* ReadSumKernel();

} // namespace supra
