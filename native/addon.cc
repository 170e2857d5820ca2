// supra's native backend, the Node side: row-major sgemm on Float32Arrays through OpenBLAS's cblas_sgemm,
// and the bindings of the add-on's own kernels (kernels.h), shared with a helper thread (helper_thread.h).
//
// One call computes C = alpha * op(A) * op(B) + beta * C for `batch` products, reading and writing the
// callers' arrays in place. The arrays may live on an ordinary ArrayBuffer or on the arena's
// SharedArrayBuffer (a shared WebAssembly.Memory); napi_get_typedarray_info hands back the data
// pointer for both. Every argument is checked here, so a bad call throws a RangeError/TypeError
// naming the problem instead of letting BLAS read or write out of bounds.
//
// Beside it, the add-on's own AVX-512 kernels where OpenBLAS is the wrong tool: decoding products (a few
// rows against a weight), batched small products (the chunked attention's 64x64x64 blocks), and
// cross-entropy and swiglu, bit for bit the wasm kernels' results. A helper thread shares their work.
//
// JS side: sgemm(transA, transB, m, n, k, alpha, beta, a, lda, strideA, b, ldb, strideB, c, ldc, strideC, batch)
// (src/core/native/backend.ts fills in the defaults), gemmBf16(m, n, k, x, w, y) (products by a BF16 weight),
// gemmInt8(m, n, k, x, w, scales, y) (products by an int8 weight), gemmShared(m, k, x, parts) (decoding products
// that read one input),
// crossEntropy, swiglu, swigluBackward (BackendKernels in src/core/backend.ts), info(), setThreads(n),
// useSmallKernel(on[, kernel]), useElementwiseKernels(on[, kernel]), readBandwidth(bytes, threads, passes)
// (the scale benchmark's bound).

#include <napi.h>
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "helper_thread.h"
#include "kernels.h"

#ifdef __linux__
#include <sys/mman.h>
#endif

namespace {

using supra::ChunkedWork;
using supra::Helper;
using supra::HelperThread;
using supra::HaveAvx2Fma;
using supra::HaveAvx512;
using supra::kSmallMaxDim;
using supra::RunShared;
using supra::SharedWork;
using supra::TwoThreads;
#ifdef SUPRA_X86
using supra::CrossEntropyRows;
using supra::DotRowsAvx2;
using supra::DotRowsAvx512;
using supra::SwigluBackwardRange;
using supra::SwigluRange;
#endif

constexpr int kDecodeRows = 4; // products of at most this many rows run on DotRows* (src/core/native/backend.ts)

constexpr double kMaxBlasInt = 2147483647.0; // Debian's OpenBLAS uses 32-bit integers

// Raw N-API calls on the hot path: one call per argument, no wrapper objects.
bool ReadNumber(napi_env env, napi_value v, const char* name, double* out) {
  if (napi_get_value_double(env, v, out) != napi_ok) {
    Napi::TypeError::New(env, std::string("supra native: ") + name + " must be a number")
        .ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

// Reads the call's arguments into argv (room for `count`); false, with a TypeError pending, unless there are
// exactly that many.
bool ReadArgs(napi_env env, napi_callback_info cbinfo, const char* fn, size_t count, napi_value* argv) {
  size_t argc = count;
  napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr);
  if (argc == count) return true;
  Napi::TypeError::New(env, std::string("supra native ") + fn + ": expected " + std::to_string(count) +
                                " arguments, got " + std::to_string(argc))
      .ThrowAsJavaScriptException();
  return false;
}

// A non-negative integer that fits BLAS's int (dimensions, leading dimensions, batch).
bool ReadDim(napi_env env, napi_value v, const char* name, int64_t* out) {
  double d;
  if (!ReadNumber(env, v, name, &d)) return false;
  if (!(d >= 0 && d <= kMaxBlasInt && std::floor(d) == d)) {
    Napi::RangeError::New(env, std::string("supra native sgemm: ") + name +
                                   " must be an integer in [0, 2^31), got " + std::to_string(d))
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = static_cast<int64_t>(d);
  return true;
}

// A non-negative integer offset in floats (batch strides), up to 2^53.
bool ReadStride(napi_env env, napi_value v, const char* name, int64_t* out) {
  double d;
  if (!ReadNumber(env, v, name, &d)) return false;
  if (!(d >= 0 && d <= 9007199254740992.0 && std::floor(d) == d)) {
    Napi::RangeError::New(env, std::string("supra native sgemm: ") + name +
                                   " must be a non-negative integer, got " + std::to_string(d))
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = static_cast<int64_t>(d);
  return true;
}

bool ReadBool(napi_env env, napi_value v, const char* name, bool* out) {
  if (napi_get_value_bool(env, v, out) != napi_ok) {
    Napi::TypeError::New(env, std::string("supra native sgemm: ") + name + " must be a boolean")
        .ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

struct F32View {
  float* data;
  int64_t length; // in floats
};

bool ReadF32(napi_env env, napi_value v, const char* name, F32View* out) {
  // one call: it fails on anything that is not a typed array, and hands back the data pointer for
  // views of SharedArrayBuffers (the arena) and ArrayBuffers alike
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, nullptr, nullptr) != napi_ok ||
      type != napi_float32_array) {
    Napi::TypeError::New(env, std::string("supra native: ") + name + " must be a Float32Array")
        .ThrowAsJavaScriptException();
    return false;
  }
  out->data = static_cast<float*>(data);
  out->length = static_cast<int64_t>(length);
  return true;
}

// Whether a JS exception is pending (a getter of an array the call reads threw): the call must return without
// throwing another one, which napi would turn into a fatal error.
bool ExceptionPending(napi_env env) {
  bool pending = false;
  return napi_is_exception_pending(env, &pending) == napi_ok && pending;
}

// An int8 weight's scales: bfloat16 bits.
struct U16View {
  uint16_t* data;
  int64_t length; // in values
};

bool ReadScales(napi_env env, napi_value v, const std::string& name, U16View* out) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, nullptr, nullptr) != napi_ok || type != napi_uint16_array) {
    Napi::TypeError::New(env, std::string("supra native: ") + name + " must be a Uint16Array (bfloat16 scales)").ThrowAsJavaScriptException();
    return false;
  }
  out->data = static_cast<uint16_t*>(data);
  out->length = static_cast<int64_t>(length);
  return true;
}

// Checks one operand (stored rows x cols, leading dimension ld, `batch` entries `stride` apart) and
// returns the floats the whole call touches in *extent (0 when it touches none).
bool CheckOperand(napi_env env, const char* name, const F32View& view, int64_t rows, int64_t cols, int64_t ld,
                  int64_t stride, int64_t batch, int64_t* extent) {
  if (ld < cols) {
    Napi::RangeError::New(env, std::string("supra native sgemm: ld") + name + " = " + std::to_string(ld) +
                                   " is smaller than the " + std::to_string(cols) + " columns " + name +
                                   " is stored with")
        .ThrowAsJavaScriptException();
    return false;
  }
  *extent = 0;
  if (rows == 0 || cols == 0 || batch == 0) return true;
  // In doubles: exact up to 2^53, and anything past that is far beyond any array, so no overflow.
  const double need = static_cast<double>(batch - 1) * static_cast<double>(stride) +
                      static_cast<double>(rows - 1) * static_cast<double>(ld) + static_cast<double>(cols);
  if (need > static_cast<double>(view.length)) {
    Napi::RangeError::New(env, std::string("supra native sgemm: ") + name + " has " +
                                   std::to_string(view.length) + " floats but the call reads " +
                                   (need > 9007199254740992.0 ? std::string("past them")
                                                              : std::to_string(static_cast<int64_t>(need))) +
                                   " (" + std::to_string(batch) + " x " + std::to_string(rows) + "x" +
                                   std::to_string(cols) + ", ld " + std::to_string(ld) + ", stride " +
                                   std::to_string(stride) + ")")
        .ThrowAsJavaScriptException();
    return false;
  }
  *extent = static_cast<int64_t>(need);
  return true;
}

bool Overlaps(const float* p, int64_t np, const float* q, int64_t nq) {
  if (np == 0 || nq == 0) return false;
  return p < q + nq && q < p + np;
}

// Whether pBytes bytes at p share memory with qBytes bytes at q (arrays of different element types).
bool OverlapsBytes(const void* p, int64_t pBytes, const void* q, int64_t qBytes) {
  if (pBytes == 0 || qBytes == 0) return false;
  const char* a = static_cast<const char*>(p);
  const char* b = static_cast<const char*>(q);
  return a < b + qBytes && b < a + pBytes;
}

// Batched small products run on the add-on's kernel, on the widest vectors the CPU has (AVX-512, else AVX2);
// useSmallKernel(false) sends them to OpenBLAS (tests, A/B runs), useSmallKernel(true, "avx2") picks AVX2 on an
// AVX-512 CPU (the same bits: tests check both there).
bool VectorCpu() { return HaveAvx512() || HaveAvx2Fma(); }
supra::VectorIsa WidestIsa() { return HaveAvx512() ? supra::VectorIsa::kAvx512 : supra::VectorIsa::kAvx2; }
// info()'s name for such a set: its width while on, else "off" (the CPU has one) or "none"
const char* VectorKernelName(bool on, supra::VectorIsa isa) {
  return !on ? (VectorCpu() ? "off" : "none") : isa == supra::VectorIsa::kAvx512 ? "avx512" : "avx2";
}
bool smallKernelOn = VectorCpu();
supra::VectorIsa smallIsa = WidestIsa();

// One batched call's products, an item per entry.
// What a batch of small products does to each entry's C block (m·n values, ldc = n) around its product, on the
// thread that computes it (sgemmFused, GemmArgs.decayC / maskC in src/core/backend.ts).
struct SmallBatchFusion {
  // before (beta 1): C ← f·C, or f·from's block, f = float(powers[(entry mod heads)·powStride + exponent])
  const double* powers = nullptr;
  int64_t powStride = 0, heads = 1, exponent = 0;
  const float* from = nullptr;
  // after (beta 0): C ⊙= pattern's block (entry mod period)
  const float* pattern = nullptr;
  int64_t period = 1;
};

class SmallBatch : public SharedWork {
 public:
  // callerPack: the calling thread's pack buffer (the helper's own when this thread holds the helper).
  SmallBatch(HelperThread& helper, float* callerPack, bool transA, bool transB, int m, int n, int k, float alpha,
             float beta, const float* a, int lda, int64_t strideA, const float* b, int ldb, int64_t strideB, float* c,
             int ldc, int64_t strideC, int64_t batch, const SmallBatchFusion* fusion = nullptr)
      : SharedWork(batch), helper_(helper), callerPack_(callerPack), transA_(transA), transB_(transB), m_(m), n_(n), k_(k), alpha_(alpha),
        beta_(beta), a_(a), lda_(lda), strideA_(strideA), b_(b), ldb_(ldb), strideB_(strideB), c_(c), ldc_(ldc),
        strideC_(strideC), fusion_(fusion) {}

 protected:
  void Do(int64_t i, int worker) override {
#ifdef SUPRA_X86
    float* c = c_ + i * strideC_;
    const int64_t size = static_cast<int64_t>(m_) * n_;
    if (fusion_ && fusion_->powers) {
      // the multiplies of DecayBlocks / ScaleRowsByDecayUnits (elementwise.inc), one rounding each
      const float f = static_cast<float>(fusion_->powers[(i % fusion_->heads) * fusion_->powStride + fusion_->exponent]);
      const float* src = fusion_->from ? fusion_->from + i * size : c;
      for (int64_t j = 0; j < size; j++) c[j] = src[j] * f;
    }
    supra::SmallGemm(smallIsa, transA_, transB_, m_, n_, k_, alpha_, beta_, a_ + i * strideA_, lda_, b_ + i * strideB_, ldb_,
                    c, ldc_, worker == 0 ? callerPack_ : helper_.pack(worker));
    if (fusion_ && fusion_->pattern) {
      const float* p = fusion_->pattern + (i % fusion_->period) * size;
      for (int64_t j = 0; j < size; j++) c[j] *= p[j];
    }
#else
    (void)i;
    (void)worker;
#endif
  }

 private:
  HelperThread& helper_;
  float* const callerPack_;
  const bool transA_, transB_;
  const int m_, n_, k_;
  const float alpha_, beta_;
  const float* a_;
  const int lda_;
  const int64_t strideA_;
  const float* b_;
  const int ldb_;
  const int64_t strideB_;
  float* c_;
  const int ldc_;
  const int64_t strideC_;
  const SmallBatchFusion* fusion_;
};

// useBf16Products(true): large products round their operands to BF16 (GemmBf16Products, GemmRoundedOperands), training's
// --matmul-precision bf16. Off by default: float32 is the reference. On, with AMX's tiles where the CPU has
// them (several times vdpbf16ps's speed there), else with vdpbf16ps, else with rounded float32 copies
// (GemmRoundedOperands); useBf16Products(true, kernel) picks one.
bool bf16ProductsOn = false;
supra::Bf16Kernel bf16Kernel = supra::Bf16Kernel::kRounded;

// The BF16 kernels, slowest first, with their names (info().bf16Kernels, useBf16Products).
constexpr supra::Bf16Kernel kBf16Kernels[] = {supra::Bf16Kernel::kRounded, supra::Bf16Kernel::kAvx512Bf16, supra::Bf16Kernel::kAmx};
const char* Bf16KernelName(supra::Bf16Kernel kernel) {
  return kernel == supra::Bf16Kernel::kAmx ? "amx" : kernel == supra::Bf16Kernel::kAvx512Bf16 ? "avx512bf16" : "rounded";
}
// Whether this CPU (and build) has the kernel: rounded operands run everywhere.
bool HaveBf16Kernel(supra::Bf16Kernel kernel) {
  return kernel == supra::Bf16Kernel::kRounded || (kernel == supra::Bf16Kernel::kAmx ? supra::HaveAmxBf16() : supra::HaveAvx512Bf16());
}

// Batched products small enough for SmallGemm (decoding shapes keep their own path), on however many
// threads there are: the kernel, not the thread count, decides the bits, so SUPRA_THREADS=1 and 2 train the
// same model (OpenBLAS's sgemv for a one-column batch rounds differently). Entries must write apart: with
// strideC 0 (dW summed over the batch) they run one after another, in order.
bool UseSmallBatch(int64_t m, int64_t n, int64_t k, int64_t ldc, int64_t strideC, int64_t batch) {
  return smallKernelOn && batch >= 2 && m > kDecodeRows && m <= kSmallMaxDim && n >= 1 && n <= kSmallMaxDim &&
         k >= 1 && k <= kSmallMaxDim && strideC >= (m - 1) * ldc + n;
}

// Products worth BF16 packing: the decoding shapes and tiny ones stay float32 (their time is elsewhere).
// (GemmOne leaves alpha = 0, which reads neither operand, to OpenBLAS.)
bool Bf16ProductFits(int64_t m, int64_t n, int64_t k) {
  return bf16ProductsOn && m > kDecodeRows && n >= 16 && k >= 16 && m * n * k >= (int64_t{1} << 18);
}

// One float32 rounded to BF16 (nearest, ties to even) as vcvtne2ps2bf16 rounds when gemm_bf16.cc packs: a
// denormal becomes a zero of its sign, a NaN stays NaN (quieted), and a value past BF16's largest becomes
// an infinity.
inline uint32_t RoundedToBf16(uint32_t u) {
  if ((u & 0x7f800000u) == 0) return u & 0x80000000u;
  if ((u & 0x7fffffffu) > 0x7f800000u) return (u | 0x00400000u) & 0xffff0000u;
  return (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
}

// rows x cols of src (ld apart) rounded to BF16 into dst (cols apart).
void CopyRoundedToBf16(const float* src, int64_t ld, int64_t rows, int64_t cols, float* dst) {
  for (int64_t r = 0; r < rows; r++) {
    const uint32_t* s = reinterpret_cast<const uint32_t*>(src + r * ld);
    uint32_t* d = reinterpret_cast<uint32_t*>(dst + r * cols);
    for (int64_t c = 0; c < cols; c++) d[c] = RoundedToBf16(s[c]);
  }
}

// The kRounded BF16 kernel: slabs of at most kRoundedDepth values of k, and in each a block of op(A)'s rows
// against a block of op(B)'s columns, rounded into float32 copies of at most kRoundedBlockFloats each (a
// bounded scratch, never a copy of the LM head) and multiplied by sgemm, the slabs after the first adding
// to C. A product of two BF16 values is exact in float32, so the numbers are BF16 products' with float32
// sums; the bits are sgemm's (its kernel set and thread count) and the slabs'.
constexpr int kRoundedDepth = 2048;
constexpr int64_t kRoundedBlockFloats = int64_t{4} << 20;

void GemmRoundedOperands(bool transA, bool transB, int m, int n, int k, float alpha, float beta, const float* A, int lda,
                         const float* B, int ldb, float* C, int ldc) {
  thread_local std::vector<float> roundedA, roundedB;
  for (int64_t k0 = 0; k0 < k; k0 += kRoundedDepth) {
    const int depth = static_cast<int>(std::min<int64_t>(kRoundedDepth, k - k0));
    const int rowsPerBlock = static_cast<int>(std::min<int64_t>(kRoundedBlockFloats / depth, m));
    const int colsPerBlock = static_cast<int>(std::min<int64_t>(kRoundedBlockFloats / depth, n));
    roundedA.resize(static_cast<size_t>(rowsPerBlock) * depth);
    roundedB.resize(static_cast<size_t>(colsPerBlock) * depth);
    const float slabBeta = k0 == 0 ? beta : 1.0f;
    for (int j0 = 0; j0 < n; j0 += colsPerBlock) {
      const int cols = std::min(colsPerBlock, n - j0);
      // op(B)'s columns j0.. over the slab, as stored: rows of B when transposed (cols x depth), else depth x cols
      if (transB) CopyRoundedToBf16(B + static_cast<int64_t>(j0) * ldb + k0, ldb, cols, depth, roundedB.data());
      else CopyRoundedToBf16(B + static_cast<int64_t>(k0) * ldb + j0, ldb, depth, cols, roundedB.data());
      for (int i0 = 0; i0 < m; i0 += rowsPerBlock) {
        const int rows = std::min(rowsPerBlock, m - i0);
        if (transA) CopyRoundedToBf16(A + static_cast<int64_t>(k0) * lda + i0, lda, depth, rows, roundedA.data());
        else CopyRoundedToBf16(A + static_cast<int64_t>(i0) * lda + k0, lda, rows, depth, roundedA.data());
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, rows, cols, depth, alpha,
                    roundedA.data(), transA ? rows : depth, roundedB.data(), transB ? depth : cols, slabBeta,
                    C + static_cast<int64_t>(i0) * ldc + j0, ldc);
      }
    }
  }
}

// One product. Single-row and single-column products go to sgemv: decode steps are made of them, and
// OpenBLAS's gemm driver would pack a whole operand for one row of output.
void GemmOne(bool transA, bool transB, int m, int n, int k, float alpha, float beta, const float* A, int lda,
             const float* B, int ldb, float* C, int ldc) {
  if (alpha != 0.0f && Bf16ProductFits(m, n, k)) {
    if (bf16Kernel == supra::Bf16Kernel::kRounded) return GemmRoundedOperands(transA, transB, m, n, k, alpha, beta, A, lda, B, ldb, C, ldc);
#ifdef SUPRA_BF16_PRODUCTS
    return supra::GemmBf16Products(bf16Kernel, transA, transB, m, n, k, alpha, beta, A, lda, B, ldb, C, ldc);
#endif
  }
#ifdef SUPRA_X86
  if (k > 0 && m <= kDecodeRows && transB && !transA) {
    if (HaveAvx512()) return DotRowsAvx512(m, n, k, alpha, beta, A, lda, B, ldb, C, ldc);
    if (HaveAvx2Fma()) return DotRowsAvx2(m, n, k, alpha, beta, A, lda, B, ldb, C, ldc);
  }
#endif
  if (k > 0 && m == 1) {
    // C (1 x n) = alpha * x * op(B) + beta * C, with x the single row of op(A).
    const int incx = transA ? lda : 1;
    if (transB) cblas_sgemv(CblasRowMajor, CblasNoTrans, n, k, alpha, B, ldb, A, incx, beta, C, 1);
    else cblas_sgemv(CblasRowMajor, CblasTrans, k, n, alpha, B, ldb, A, incx, beta, C, 1);
    return;
  }
  if (k > 0 && n == 1) {
    // C (m x 1, ldc apart) = alpha * op(A) * x + beta * C, with x the single column of op(B).
    const int incx = transB ? 1 : ldb;
    if (transA) cblas_sgemv(CblasRowMajor, CblasTrans, k, m, alpha, A, lda, B, incx, beta, C, ldc);
    else cblas_sgemv(CblasRowMajor, CblasNoTrans, m, k, alpha, A, lda, B, incx, beta, C, ldc);
    return;
  }
  cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, m, n, k,
              alpha, A, lda, B, ldb, beta, C, ldc);
}

#ifdef SUPRA_X86
// A decoding product by a float32 weight (m <= kDecodeRows rows against B stored n x k) shared with the
// helper thread, bands of B an item each, as the BF16 ones are (GemmBf16): a one-thread read of B leaves
// the second core's bandwidth unused. Each C value is one dot product of DotRows*, so the split never
// changes the bits.
constexpr int64_t kF32DecodeItemBytes = 64 * 1024;

class F32DecodeWork : public SharedWork {
 public:
  F32DecodeWork(int m, int n, int k, float alpha, float beta, const float* A, int lda, const float* B, int ldb, float* C,
                int ldc, int rowsPerItem)
      : SharedWork((n + rowsPerItem - 1) / rowsPerItem, true), m_(m), n_(n), k_(k), alpha_(alpha), beta_(beta), A_(A), lda_(lda),
        B_(B), ldb_(ldb), C_(C), ldc_(ldc), rows_(rowsPerItem) {}

 protected:
  void Do(int64_t item, int) override {
    const int j0 = static_cast<int>(item) * rows_;
    const int nn = n_ - j0 < rows_ ? n_ - j0 : rows_;
    const float* b = B_ + static_cast<int64_t>(j0) * ldb_;
    if (HaveAvx512()) DotRowsAvx512(m_, nn, k_, alpha_, beta_, A_, lda_, b, ldb_, C_ + j0, ldc_);
    else DotRowsAvx2(m_, nn, k_, alpha_, beta_, A_, lda_, b, ldb_, C_ + j0, ldc_);
  }

 private:
  const int m_, n_, k_;
  const float alpha_, beta_;
  const float* A_;
  const int lda_;
  const float* B_;
  const int ldb_;
  float* C_;
  const int ldc_;
  const int rows_;
};

// One decoding product on DotRows* (GemmOne's first case) worth sharing: more than one item of B.
bool SharedDecodeProduct(bool transA, bool transB, int64_t m, int64_t n, int64_t k, int64_t ldb) {
  return k > 0 && m <= kDecodeRows && transB && !transA && (HaveAvx512() || HaveAvx2Fma()) &&
         4 * n * ldb > kF32DecodeItemBytes;
}
#endif

// sgemm's and sgemmFused's first 17 arguments, read and checked: false (with the error thrown) when bad.
struct GemmCall {
  bool transA, transB;
  int64_t m, n, k, lda, ldb, ldc, strideA, strideB, strideC, batch;
  double alpha, beta;
  F32View a, b, c;
  int64_t extentC;
};
bool ReadGemmCall(napi_env env, napi_value* argv, GemmCall& g) {
  bool& transA = g.transA;
  bool& transB = g.transB;
  int64_t &m = g.m, &n = g.n, &k = g.k, &lda = g.lda, &ldb = g.ldb, &ldc = g.ldc, &strideA = g.strideA, &strideB = g.strideB,
          &strideC = g.strideC, &batch = g.batch;
  double &alpha = g.alpha, &beta = g.beta;
  F32View &a = g.a, &b = g.b, &c = g.c;
  if (!ReadBool(env, argv[0], "transA", &transA) || !ReadBool(env, argv[1], "transB", &transB) ||
      !ReadDim(env, argv[2], "m", &m) || !ReadDim(env, argv[3], "n", &n) || !ReadDim(env, argv[4], "k", &k) ||
      !ReadNumber(env, argv[5], "alpha", &alpha) || !ReadNumber(env, argv[6], "beta", &beta) ||
      !ReadF32(env, argv[7], "a", &a) || !ReadDim(env, argv[8], "lda", &lda) ||
      !ReadStride(env, argv[9], "strideA", &strideA) || !ReadF32(env, argv[10], "b", &b) ||
      !ReadDim(env, argv[11], "ldb", &ldb) || !ReadStride(env, argv[12], "strideB", &strideB) ||
      !ReadF32(env, argv[13], "c", &c) || !ReadDim(env, argv[14], "ldc", &ldc) ||
      !ReadStride(env, argv[15], "strideC", &strideC) || !ReadDim(env, argv[16], "batch", &batch)) {
    return false;
  }
  // Stored shapes: A is m x k (k x m when transposed), B is k x n (n x k), C is m x n.
  int64_t extentA, extentB;
  int64_t& extentC = g.extentC;
  if (!CheckOperand(env, "A", a, transA ? k : m, transA ? m : k, lda, strideA, batch, &extentA) ||
      !CheckOperand(env, "B", b, transB ? n : k, transB ? k : n, ldb, strideB, batch, &extentB) ||
      !CheckOperand(env, "C", c, m, n, ldc, strideC, batch, &extentC)) {
    return false;
  }
  // BLAS forbids C aliasing an input; the result would silently be wrong.
  if (extentC > 0 && (Overlaps(c.data, extentC, a.data, extentA) || Overlaps(c.data, extentC, b.data, extentB))) {
    Napi::RangeError::New(env, "supra native sgemm: C overlaps A or B in memory")
        .ThrowAsJavaScriptException();
    return false;
  }
  // BLAS wants every leading dimension >= 1, even when that operand is empty (k = 0).
  if (lda < 1) lda = 1;
  if (ldb < 1) ldb = 1;
  if (ldc < 1) ldc = 1;
  return true;
}

// A batch of small products on SmallGemm (UseSmallBatch), shared with the helper thread when it is free.
void RunSmallBatch(const GemmCall& g, const SmallBatchFusion* fusion) {
  HelperThread& helper = Helper();
  std::unique_lock<std::mutex> lock(helper.busy(), std::try_to_lock);
  // Without the helper (one thread, or another thread holds it) every entry runs here, on this thread's
  // own pack buffer: the same kernel, so the same bits.
  thread_local float ownPack[kSmallMaxDim * kSmallMaxDim];
  SmallBatch work(helper, lock.owns_lock() ? helper.pack(0) : ownPack, g.transA, g.transB, static_cast<int>(g.m),
                  static_cast<int>(g.n), static_cast<int>(g.k), static_cast<float>(g.alpha), static_cast<float>(g.beta),
                  g.a.data, static_cast<int>(g.lda), g.strideA, g.b.data, static_cast<int>(g.ldb), g.strideB, g.c.data,
                  static_cast<int>(g.ldc), g.strideC, g.batch, fusion);
  if (lock.owns_lock() && TwoThreads()) helper.Run(work);
  else work.Drain(0);
}

napi_value Sgemm(napi_env env, napi_callback_info cbinfo) {
  napi_value argv[17];
  if (!ReadArgs(env, cbinfo, "sgemm", 17, argv)) return nullptr;
  GemmCall g;
  if (!ReadGemmCall(env, argv, g) || g.extentC == 0) return nullptr; // (nothing to write)
  const bool transA = g.transA, transB = g.transB;
  const int64_t m = g.m, n = g.n, k = g.k, lda = g.lda, ldb = g.ldb, ldc = g.ldc, strideA = g.strideA, strideB = g.strideB,
                strideC = g.strideC, batch = g.batch;
  const double alpha = g.alpha, beta = g.beta;
  const F32View &a = g.a, &b = g.b, &c = g.c;
  if (UseSmallBatch(m, n, k, ldc, strideC, batch)) {
    RunSmallBatch(g, nullptr);
    return nullptr;
  }
#ifdef SUPRA_X86
  if (batch == 1 && SharedDecodeProduct(transA, transB, m, n, k, ldb)) {
    const int rows = static_cast<int>(std::max<int64_t>(1, kF32DecodeItemBytes / (4 * ldb)));
    F32DecodeWork work(static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), static_cast<float>(alpha),
                       static_cast<float>(beta), a.data, static_cast<int>(lda), b.data, static_cast<int>(ldb), c.data,
                       static_cast<int>(ldc), rows);
    RunShared(work);
    return nullptr;
  }
#endif
  for (int64_t i = 0; i < batch; i++) {
    GemmOne(transA, transB, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k),
            static_cast<float>(alpha), static_cast<float>(beta), a.data + i * strideA, static_cast<int>(lda),
            b.data + i * strideB, static_cast<int>(ldb), c.data + i * strideC, static_cast<int>(ldc));
  }
  return nullptr;
}

// sgemmFused(17 sgemm arguments, powers, powStride, heads, exponent, from, pattern, period) -> bool: a batch of
// small products (UseSmallBatch) with each entry's C block decayed before its product (powers a Float64Array, or
// null for none; from a Float32Array of the blocks to decay instead of C's own, or null) and masked after it
// (pattern a Float32Array of `period` blocks, or null), on the thread that computes the entry (GemmArgs.decayC,
// maskC). False, having done nothing, for a product that is not such a batch: the caller then makes the passes.
// Arguments that no batch could take (C not in whole blocks, beta against the fusion, short or overlapping
// arrays) throw, whatever the shape.
napi_value SgemmFused(napi_env env, napi_callback_info cbinfo) {
  const char* name = "sgemmFused";
  napi_value argv[24];
  if (!ReadArgs(env, cbinfo, name, 24, argv)) return nullptr;
  GemmCall g;
  if (!ReadGemmCall(env, argv, g)) return nullptr;
  const auto fail = [&](const std::string& what) {
    Napi::RangeError::New(env, std::string("supra native sgemmFused: ") + what).ThrowAsJavaScriptException();
    return nullptr;
  };
  const auto isNull = [&](napi_value v) {
    napi_valuetype t;
    return napi_typeof(env, v, &t) == napi_ok && t == napi_null;
  };
  int64_t powStride, heads, exponent, period;
  if (!ReadStride(env, argv[18], "powStride", &powStride) || !ReadStride(env, argv[19], "heads", &heads) ||
      !ReadStride(env, argv[20], "exponent", &exponent) || !ReadStride(env, argv[23], "period", &period)) {
    return nullptr;
  }
  const int64_t block = g.m * g.n;
  if (g.ldc != (g.n < 1 ? 1 : g.n) || g.strideC != block) return fail("C must be whole blocks of m·n values (ldc = n, strideC = m·n)");
  SmallBatchFusion fusion;
  if (!isNull(argv[17])) {
    napi_typedarray_type type;
    size_t length = 0;
    void* data = nullptr;
    if (napi_get_typedarray_info(env, argv[17], &type, &length, &data, nullptr, nullptr) != napi_ok || type != napi_float64_array) {
      return fail("powers must be a Float64Array or null");
    }
    if (g.beta != 1) return fail("a decay before the product needs beta 1");
    if (heads < 1) return fail("heads must be at least 1");
    // in doubles, as CheckOperand counts: powStride and exponent may be up to 2^53, and int64 would wrap
    const double need = static_cast<double>(std::min(heads, std::max<int64_t>(g.batch, 1)) - 1) * static_cast<double>(powStride) +
                 static_cast<double>(exponent) + 1;
    if (static_cast<double>(length) < need) {
      return fail("powers holds " + std::to_string(length) + " values, too few for heads " + std::to_string(heads) +
                  ", powStride " + std::to_string(powStride) + ", exponent " + std::to_string(exponent));
    }
    // the decays are read while the other thread writes C: they must not share bytes
    const char* cBegin = reinterpret_cast<const char*>(g.c.data);
    const char* pBegin = static_cast<const char*>(data);
    if (length > 0 && g.extentC > 0 && pBegin < cBegin + 4 * g.extentC && cBegin < pBegin + 8 * length) return fail("powers overlaps C in memory");
    fusion.powers = static_cast<const double*>(data);
    fusion.powStride = powStride, fusion.heads = heads, fusion.exponent = exponent;
    if (!isNull(argv[21])) {
      F32View from;
      if (!ReadF32(env, argv[21], "from", &from)) return nullptr;
      if (from.length < g.batch * block) return fail("from holds " + std::to_string(from.length) + " values, the batch needs " + std::to_string(g.batch * block));
      if (Overlaps(from.data, g.batch * block, g.c.data, g.extentC)) return fail("from overlaps C in memory");
      fusion.from = from.data;
    }
  } else if (!isNull(argv[21])) {
    return fail("from is the decay's source: it needs powers");
  }
  if (!isNull(argv[22])) {
    F32View pattern;
    if (!ReadF32(env, argv[22], "pattern", &pattern)) return nullptr;
    if (g.beta != 0) return fail("a mask after the product needs beta 0");
    if (period < 1 || g.batch % period != 0) return fail("the batch must be whole periods of the pattern");
    if (pattern.length < period * block) return fail("pattern holds " + std::to_string(pattern.length) + " values, " + std::to_string(period) + " blocks need " + std::to_string(period * block));
    if (Overlaps(pattern.data, period * block, g.c.data, g.extentC)) return fail("pattern overlaps C in memory");
    fusion.pattern = pattern.data;
    fusion.period = period;
  }
  napi_value result;
  const bool fused = g.extentC > 0 && UseSmallBatch(g.m, g.n, g.k, g.ldc, g.strideC, g.batch);
  if (fused) RunSmallBatch(g, &fusion);
  napi_get_boolean(env, fused, &result);
  return result;
}

// ---------------------------------------------------------------- products by a BF16 weight
//
// y[m, n] = x[m, k] . W^T with W stored n x k as BF16 (src/core/weights.ts), float32 accumulation.
// Decoding (m <= kDecodeRows) is memory-bound: DotRowsBf16* stream W once, band by band, the bands shared
// with the helper thread, which brings the second core's bandwidth (each y value is one dot product, so
// the split never changes the bits). Otherwise bands of W are widened to float32 into this thread's buffer,
// on both threads (WidenRowsWork), and each band is one OpenBLAS sgemm.

// Bytes of W per shared item: enough to amortize taking it, small enough to balance the two threads.
constexpr int64_t kBf16ItemBytes = 64 * 1024;
// Floats of W widened per sgemm (16 MiB): big bands keep sgemm's per-call packing of x rare.
constexpr int64_t kBf16BandFloats = 4 * 1024 * 1024;

#ifdef SUPRA_X86
// The decoding products of BF16 and int8 weights (gemmBf16, gemmInt8, gemmShared): each part is a weight of
// n rows of k (scales null for BF16, its blockwise scales for int8) and its output y[m, n]; the parts' bands
// of about kBf16ItemBytes of W are the items, numbered part after part, shared with the helper thread in two
// runs. Each y value is one DotRows* sum, so neither the split nor the grouping into parts changes a bit.
struct DecodePart {
  const void* w;
  const uint16_t* scales;
  float* y;
  int n;
  int rowsPerItem;
  int64_t firstItem;
  int64_t endItem() const { return firstItem + (n + rowsPerItem - 1) / rowsPerItem; }
};
constexpr int kMaxDecodeParts = 16;

DecodePart DecodePartAt(int64_t firstItem, const void* w, const uint16_t* scales, float* y, int n, int k) {
  const int64_t rowBytes = scales ? k + 2 * ((k + supra::kInt8Block - 1) / supra::kInt8Block) : 2 * int64_t{k};
  return {w, scales, y, n, static_cast<int>(std::max<int64_t>(1, kBf16ItemBytes / rowBytes)), firstItem};
}

class DecodeWork : public SharedWork {
 public:
  DecodeWork(int m, int k, const float* x, const DecodePart* parts, int count)
      : SharedWork(parts[count - 1].endItem(), true), m_(m), k_(k), blocks_((k + supra::kInt8Block - 1) / supra::kInt8Block), x_(x),
        parts_(parts), count_(count) {}

 protected:
  void Do(int64_t item, int) override {
    int p = 0;
    while (p + 1 < count_ && parts_[p + 1].firstItem <= item) p++;
    const DecodePart& part = parts_[p];
    const int j0 = static_cast<int>(item - part.firstItem) * part.rowsPerItem;
    const int nn = std::min(part.rowsPerItem, part.n - j0);
    if (part.scales) {
      const int8_t* w = static_cast<const int8_t*>(part.w) + static_cast<int64_t>(j0) * k_;
      const uint16_t* s = part.scales + static_cast<int64_t>(j0) * blocks_;
      if (HaveAvx512()) supra::DotRowsInt8Avx512(m_, nn, k_, x_, k_, w, s, part.y + j0, part.n);
      else supra::DotRowsInt8Avx2(m_, nn, k_, x_, k_, w, s, part.y + j0, part.n);
    } else {
      const uint16_t* w = static_cast<const uint16_t*>(part.w) + static_cast<int64_t>(j0) * k_;
      if (HaveAvx512()) supra::DotRowsBf16Avx512(m_, nn, k_, x_, k_, w, k_, part.y + j0, part.n);
      else supra::DotRowsBf16Avx2(m_, nn, k_, x_, k_, w, k_, part.y + j0, part.n);
    }
  }

 private:
  const int m_, k_, blocks_;
  const float* x_;
  const DecodePart* parts_;
  const int count_;
};
#endif

// Rows [0, rows) of a BF16 or int8 weight band as float32 rows of k values, on both threads (each value is
// widened exactly, or dequantized with one rounding, alone: the split never changes it). One thread alone
// made the widening a fifth of a 128-row product's time, the other core idle.
class WidenRowsWork : public ChunkedWork {
 public:
  // rows [lo, hi) of w (scales: an int8 weight's, else null) into out
  using WidenRows = void (*)(const void* w, const uint16_t* scales, int k, int64_t lo, int64_t hi, float* out);
  WidenRowsWork(WidenRows widen, const void* w, const uint16_t* scales, int k, int rows, float* out)
      : ChunkedWork(rows, std::max<int64_t>(1, kWidenItemFloats / k)), widen_(widen), w_(w), scales_(scales), k_(k), out_(out) {}

 protected:
  void DoRange(int64_t, int64_t lo, int64_t hi) override { widen_(w_, scales_, k_, lo, hi, out_); }

 private:
  static constexpr int64_t kWidenItemFloats = 64 * 1024; // 256 KiB of float32 an item
  const WidenRows widen_;
  const void* w_;
  const uint16_t* scales_;
  const int k_;
  float* out_;
};

void GemmBf16Banded(int m, int n, int k, const float* x, const uint16_t* w, float* y) {
  thread_local std::vector<float> band;
  const int rows = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(n, kBf16BandFloats / k)));
  if (band.size() < static_cast<size_t>(rows) * k) band.resize(static_cast<size_t>(rows) * k);
  const WidenRowsWork::WidenRows widen = [](const void* w, const uint16_t*, int k, int64_t lo, int64_t hi, float* out) {
    supra::WidenBf16(static_cast<const uint16_t*>(w) + lo * k, out + lo * k, (hi - lo) * k);
  };
  for (int j0 = 0; j0 < n; j0 += rows) {
    const int nb = n - j0 < rows ? n - j0 : rows;
    WidenRowsWork work(widen, w + static_cast<int64_t>(j0) * k, nullptr, k, nb, band.data());
    RunShared(work);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, nb, k, 1.0f, x, k, band.data(), k, 0.0f, y + j0, n);
  }
}

// One operand of a product by a weight: how many values it has and how many the call reads.
struct OperandSize {
  const char* name;
  int64_t have, need;
};

// False, with a RangeError naming the operand pending, when an operand is shorter than the call reads.
bool CheckOperandSizes(napi_env env, const char* fn, int64_t m, int64_t n, int64_t k, std::initializer_list<OperandSize> sizes) {
  for (const auto& s : sizes) {
    if (s.have < s.need) {
      Napi::RangeError::New(env, std::string("supra native ") + fn + ": " + s.name + " has " + std::to_string(s.have) +
                                     " values but the call reads " + std::to_string(s.need) + " (m " + std::to_string(m) +
                                     ", n " + std::to_string(n) + ", k " + std::to_string(k) + ")")
          .ThrowAsJavaScriptException();
      return false;
    }
  }
  return true;
}

// gemmBf16(m, n, k, x, w, y): x Float32Array [m, k], w Uint16Array [n, k], y Float32Array [m, n] (overwritten)
napi_value GemmBf16(napi_env env, napi_callback_info cbinfo) {
  napi_value argv[6];
  if (!ReadArgs(env, cbinfo, "gemmBf16", 6, argv)) return nullptr;
  int64_t m, n, k;
  F32View x, y;
  if (!ReadDim(env, argv[0], "m", &m) || !ReadDim(env, argv[1], "n", &n) || !ReadDim(env, argv[2], "k", &k) ||
      !ReadF32(env, argv[3], "x", &x) || !ReadF32(env, argv[5], "y", &y)) {
    return nullptr;
  }
  napi_typedarray_type type;
  size_t wLength = 0;
  void* wData = nullptr;
  if (napi_get_typedarray_info(env, argv[4], &type, &wLength, &wData, nullptr, nullptr) != napi_ok || type != napi_uint16_array) {
    Napi::TypeError::New(env, "supra native gemmBf16: w must be a Uint16Array (BF16 bits)").ThrowAsJavaScriptException();
    return nullptr;
  }
  const uint16_t* w = static_cast<const uint16_t*>(wData);
  if (!CheckOperandSizes(env, "gemmBf16", m, n, k,
                         {{"x", x.length, m * k}, {"w", static_cast<int64_t>(wLength), n * k}, {"y", y.length, m * n}})) {
    return nullptr;
  }
  if (m == 0 || n == 0) return nullptr;
  if (Overlaps(y.data, m * n, x.data, m * k) || OverlapsBytes(y.data, 4 * m * n, w, 2 * n * k)) {
    Napi::RangeError::New(env, "supra native gemmBf16: y overlaps x or w in memory").ThrowAsJavaScriptException();
    return nullptr;
  }
  if (k == 0) {
    std::fill(y.data, y.data + m * n, 0.0f);
    return nullptr;
  }
#ifdef SUPRA_X86
  if (m <= kDecodeRows && (HaveAvx512() || HaveAvx2Fma())) {
    const DecodePart part = DecodePartAt(0, w, nullptr, y.data, static_cast<int>(n), static_cast<int>(k));
    DecodeWork work(static_cast<int>(m), static_cast<int>(k), x.data, &part, 1);
    RunShared(work);
    return nullptr;
  }
#endif
  GemmBf16Banded(static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), x.data, w, y.data);
  return nullptr;
}

// ---------------------------------------------------------------- products by an int8 weight
//
// y[m, n] = x[m, k] . W^T with W an int8 weight stored n x k, blockwise scales (kernels_int8.cc): decoding
// (m <= kDecodeRows) on DotRowsInt8*, the rows of W shared with the helper thread as for BF16 (each y value
// is one row's sum, so the split never changes the bits; each thread takes a run of rows, as there); otherwise bands of W dequantized to float32 and
// one OpenBLAS sgemm per band.

void GemmInt8Banded(int m, int n, int k, const float* x, const int8_t* w, const uint16_t* scales, float* y) {
  thread_local std::vector<float> band;
  const int64_t blocks = (k + supra::kInt8Block - 1) / supra::kInt8Block;
  const int rows = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(n, kBf16BandFloats / k)));
  if (band.size() < static_cast<size_t>(rows) * k) band.resize(static_cast<size_t>(rows) * k);
  const WidenRowsWork::WidenRows widen = [](const void* w, const uint16_t* scales, int k, int64_t lo, int64_t hi, float* out) {
    const int64_t blocks = (k + supra::kInt8Block - 1) / supra::kInt8Block;
    supra::DequantizeInt8Rows(static_cast<const int8_t*>(w) + lo * k, scales + lo * blocks, static_cast<int>(hi - lo), k, out + lo * k);
  };
  for (int j0 = 0; j0 < n; j0 += rows) {
    const int nb = n - j0 < rows ? n - j0 : rows;
    WidenRowsWork work(widen, w + static_cast<int64_t>(j0) * k, scales + j0 * blocks, k, nb, band.data());
    RunShared(work);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, nb, k, 1.0f, x, k, band.data(), k, 0.0f, y + j0, n);
  }
}

// gemmInt8(m, n, k, x, w, scales, y): x Float32Array [m, k], w Int8Array [n, k], scales Uint16Array (bfloat16)
// [n, ceil(k / 32)], y Float32Array [m, n] (overwritten)
napi_value GemmInt8(napi_env env, napi_callback_info cbinfo) {
  napi_value argv[7];
  if (!ReadArgs(env, cbinfo, "gemmInt8", 7, argv)) return nullptr;
  int64_t m, n, k;
  F32View x, y;
  U16View scales;
  if (!ReadDim(env, argv[0], "m", &m) || !ReadDim(env, argv[1], "n", &n) || !ReadDim(env, argv[2], "k", &k) ||
      !ReadF32(env, argv[3], "x", &x) || !ReadScales(env, argv[5], "gemmInt8: scales", &scales) || !ReadF32(env, argv[6], "y", &y)) {
    return nullptr;
  }
  napi_typedarray_type type;
  size_t wLength = 0;
  void* wData = nullptr;
  if (napi_get_typedarray_info(env, argv[4], &type, &wLength, &wData, nullptr, nullptr) != napi_ok || type != napi_int8_array) {
    Napi::TypeError::New(env, "supra native gemmInt8: w must be an Int8Array").ThrowAsJavaScriptException();
    return nullptr;
  }
  const int8_t* w = static_cast<const int8_t*>(wData);
  const int64_t blocks = (k + supra::kInt8Block - 1) / supra::kInt8Block;
  if (!CheckOperandSizes(env, "gemmInt8", m, n, k,
                         {{"x", x.length, m * k}, {"w", static_cast<int64_t>(wLength), n * k}, {"scales", scales.length, n * blocks},
                          {"y", y.length, m * n}})) {
    return nullptr;
  }
  if (m == 0 || n == 0) return nullptr;
  if (Overlaps(y.data, m * n, x.data, m * k) || OverlapsBytes(y.data, 4 * m * n, scales.data, 2 * n * blocks) ||
      OverlapsBytes(y.data, 4 * m * n, w, n * k)) {
    Napi::RangeError::New(env, "supra native gemmInt8: y overlaps x, w or scales in memory").ThrowAsJavaScriptException();
    return nullptr;
  }
  if (k == 0) {
    std::fill(y.data, y.data + m * n, 0.0f);
    return nullptr;
  }
#ifdef SUPRA_X86
  if (m <= kDecodeRows && (HaveAvx512() || HaveAvx2Fma())) {
    const DecodePart part = DecodePartAt(0, w, scales.data, y.data, static_cast<int>(n), static_cast<int>(k));
    DecodeWork work(static_cast<int>(m), static_cast<int>(k), x.data, &part, 1);
    RunShared(work);
    return nullptr;
  }
#endif
  GemmInt8Banded(static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), x.data, w, scales.data, y.data);
  return nullptr;
}

#ifdef SUPRA_X86
// A decoding product's weight [n, k]: BF16 bits (w a Uint16Array, scales null) or int8 (w an Int8Array, scales its
// Uint16Array of bfloat16 [n, ceil(k / 32)]), as gemmShared and the decoding blocks take it.
struct DecodeWeight {
  const void* w = nullptr;
  const uint16_t* scales = nullptr;
  int64_t wBytes = 0, scaleCount = 0;
  // whether `floats` values at p share memory with the weight or its scales
  bool Overlaps(const float* p, int64_t floats) const {
    return OverlapsBytes(p, 4 * floats, w, wBytes) || OverlapsBytes(p, 4 * floats, scales, 2 * scaleCount);
  }
};

// False, with an error pending that names fn and `which`, unless w and scales are such a weight of n x k.
bool ReadDecodeWeight(napi_env env, const char* fn, const std::string& which, napi_value w, napi_value scales, int64_t n, int64_t k,
                      DecodeWeight* out) {
  napi_typedarray_type type;
  size_t wLength = 0;
  void* wData = nullptr;
  if (napi_get_typedarray_info(env, w, &type, &wLength, &wData, nullptr, nullptr) != napi_ok ||
      (type != napi_uint16_array && type != napi_int8_array)) {
    Napi::TypeError::New(env, std::string("supra native ") + fn + ": " + which + "w must be a Uint16Array (BF16 bits) or an Int8Array")
        .ThrowAsJavaScriptException();
    return false;
  }
  const auto fail = [&](const std::string& what) {
    Napi::RangeError::New(env, std::string("supra native ") + fn + ": " + which + what).ThrowAsJavaScriptException();
    return false;
  };
  const bool int8 = type == napi_int8_array;
  const int64_t blocks = (k + supra::kInt8Block - 1) / supra::kInt8Block;
  napi_valuetype scalesType;
  napi_typeof(env, scales, &scalesType);
  U16View scaleView{nullptr, 0};
  if (int8) {
    if (!ReadScales(env, scales, std::string(fn) + ": " + which + "scales", &scaleView)) return false;
  } else if (scalesType != napi_null) {
    return fail("a BF16 weight takes no scales (null)");
  }
  if (static_cast<int64_t>(wLength) < n * k) return fail("w has " + std::to_string(wLength) + " values but the call reads " + std::to_string(n * k));
  if (int8 && scaleView.length < n * blocks) {
    return fail("scales has " + std::to_string(scaleView.length) + " values but the call reads " + std::to_string(n * blocks));
  }
  out->w = wData;
  out->scales = int8 ? scaleView.data : nullptr;
  out->wBytes = (int8 ? 1 : 2) * n * k;
  out->scaleCount = int8 ? n * blocks : 0;
  return true;
}
#endif

// ---------------------------------------------------------------- decoding products that read one input
//
// gemmShared(m, k, x, parts): for each part [w, scales, n, y] of `parts`, y[m, n] = x[m, k] . W^T, W stored
// n x k as BF16 (w a Uint16Array, scales null) or int8 (w an Int8Array, scales its Uint16Array (bfloat16) of
// [n, ceil(k / 32)]), for a decoding product (m <= kDecodeRows). A layer's q/k/v (or gate/up) products then
// stream their weights in one DecodeWork, with no return to JS nor a wait for the other thread between
// them: the same bits as the parts one by one.
napi_value GemmShared(napi_env env, napi_callback_info cbinfo) {
  napi_value argv[4];
  if (!ReadArgs(env, cbinfo, "gemmShared", 4, argv)) return nullptr;
  int64_t m, k;
  F32View x;
  if (!ReadDim(env, argv[0], "m", &m) || !ReadDim(env, argv[1], "k", &k) || !ReadF32(env, argv[2], "x", &x)) return nullptr;
  const auto fail = [&](const std::string& what) -> napi_value {
    if (!ExceptionPending(env)) Napi::RangeError::New(env, std::string("supra native gemmShared: ") + what).ThrowAsJavaScriptException();
    return nullptr;
  };
#ifndef SUPRA_X86
  return fail("decoding products need an x86 CPU with AVX2 or AVX-512");
#else
  if (!(HaveAvx512() || HaveAvx2Fma())) return fail("decoding products need AVX2 or AVX-512");
  if (m < 1 || m > kDecodeRows || k < 1) return fail("m must be 1 to " + std::to_string(kDecodeRows) + " and k at least 1, got m " +
                                                     std::to_string(m) + ", k " + std::to_string(k));
  if (x.length < m * k) return fail("x has " + std::to_string(x.length) + " values but the call reads " + std::to_string(m * k));
  bool isArray = false;
  uint32_t count = 0;
  if (napi_is_array(env, argv[3], &isArray) != napi_ok || !isArray || napi_get_array_length(env, argv[3], &count) != napi_ok ||
      count == 0 || count > kMaxDecodeParts) {
    return fail("parts must be an array of 1 to " + std::to_string(kMaxDecodeParts) + " [w, scales, n, y] entries");
  }
  // Every element first: reading one may run a getter, which must not run once a part's memory is taken.
  napi_value fieldsOf[kMaxDecodeParts][4];
  for (uint32_t i = 0; i < count; i++) {
    napi_value entry;
    bool entryIsArray = false;
    uint32_t length = 0;
    if (napi_get_element(env, argv[3], i, &entry) != napi_ok || napi_is_array(env, entry, &entryIsArray) != napi_ok ||
        !entryIsArray || napi_get_array_length(env, entry, &length) != napi_ok || length != 4) {
      return fail("part " + std::to_string(i) + ": must be [w, scales, n, y]");
    }
    for (uint32_t f = 0; f < 4; f++) {
      if (napi_get_element(env, entry, f, &fieldsOf[i][f]) != napi_ok) return fail("part " + std::to_string(i) + ": must be [w, scales, n, y]");
    }
  }
  DecodePart parts[kMaxDecodeParts];
  DecodeWeight weights[kMaxDecodeParts];
  for (uint32_t i = 0; i < count; i++) {
    const std::string which = "part " + std::to_string(i) + ": ";
    napi_value* fields = fieldsOf[i];
    int64_t n;
    F32View y;
    if (!ReadDim(env, fields[2], "n", &n) || !ReadF32(env, fields[3], "y", &y)) return nullptr;
    DecodeWeight weight;
    if (!ReadDecodeWeight(env, "gemmShared", which, fields[0], fields[1], n, k, &weight)) return nullptr;
    if (n < 1) return fail(which + "n must be at least 1");
    if (y.length < m * n) return fail(which + "y has " + std::to_string(y.length) + " values but the call writes " + std::to_string(m * n));
    if (Overlaps(y.data, m * n, x.data, m * k) || weight.Overlaps(y.data, m * n)) return fail(which + "y overlaps x, w or scales in memory");
    for (uint32_t j = 0; j < i; j++) {
      if (Overlaps(y.data, m * n, parts[j].y, m * parts[j].n)) return fail(which + "y overlaps another part's y");
      if (weights[j].Overlaps(y.data, m * n)) return fail(which + "y overlaps part " + std::to_string(j) + "'s w or scales in memory");
      if (weight.Overlaps(parts[j].y, m * parts[j].n)) return fail("part " + std::to_string(j) + ": y overlaps part " + std::to_string(i) + "'s w or scales in memory");
    }
    weights[i] = weight;
    parts[i] = DecodePartAt(i == 0 ? 0 : parts[i - 1].endItem(), weight.w, weight.scales, y.data, static_cast<int>(n), static_cast<int>(k));
  }
  DecodeWork work(static_cast<int>(m), static_cast<int>(k), x.data, parts, static_cast<int>(count));
  RunShared(work);
  return nullptr;
#endif
}

// The elementwise kernels (crossEntropy, swiglu, swigluBackward, linearAttentionStep) run on the widest vectors
// the CPU has, AVX-512 or AVX2, with the same bits either way; useElementwiseKernels(false) turns them off (the
// wasm kernels run), useElementwiseKernels(true, "avx2") picks AVX2 on an AVX-512 CPU (tests check both there).
bool elementwiseOn = VectorCpu();
supra::VectorIsa elementwiseIsa = WidestIsa();

#ifdef SUPRA_X86
class CrossEntropyWork : public ChunkedWork {
 public:
  CrossEntropyWork(const float* logits, const int32_t* targets, int vocab, float* dlogits, double zLoss, double inv,
                   int64_t rows, int64_t grain)
      : ChunkedWork(rows, grain), logits_(logits), targets_(targets), vocab_(vocab), dlogits_(dlogits), zLoss_(zLoss),
        inv_(inv), totals_((rows + grain - 1) / grain) {}
  // Σ over chunks, in order, of each chunk's Σ over its rows: parallelFor's reduction.
  double Total() const {
    double sum = 0;
    for (double t : totals_) sum += t;
    return sum;
  }

 protected:
  void DoRange(int64_t chunk, int64_t lo, int64_t hi) override {
    totals_[chunk] = CrossEntropyRows(elementwiseIsa, logits_, targets_, vocab_, dlogits_, zLoss_, inv_, lo, hi);
  }

 private:
  const float* logits_;
  const int32_t* targets_;
  const int vocab_;
  float* dlogits_;
  const double zLoss_, inv_;
  std::vector<double> totals_;
};

class SwigluWork : public ChunkedWork {
 public:
  SwigluWork(const float* gate, const float* up, float* out, int64_t n, int64_t grain)
      : ChunkedWork(n, grain), gate_(gate), up_(up), out_(out) {}

 protected:
  void DoRange(int64_t, int64_t lo, int64_t hi) override { SwigluRange(elementwiseIsa, gate_, up_, out_, lo, hi); }

 private:
  const float *gate_, *up_;
  float* out_;
};

class SwigluBackwardWork : public ChunkedWork {
 public:
  SwigluBackwardWork(const float* dout, const float* gate, const float* up, float* dgate, float* dup, float* act,
                     int64_t n, int64_t grain)
      : ChunkedWork(n, grain), dout_(dout), gate_(gate), up_(up), dgate_(dgate), dup_(dup), act_(act) {}

 protected:
  void DoRange(int64_t, int64_t lo, int64_t hi) override { SwigluBackwardRange(elementwiseIsa, dout_, gate_, up_, dgate_, dup_, act_, lo, hi); }

 private:
  const float *dout_, *gate_, *up_;
  float *dgate_, *dup_, *act_;
};
#endif

// Reads the arguments every elementwise kernel shares: a Float32Array of at least `need` floats (or null
// when `optional`).
bool ReadSpan(napi_env env, napi_value v, const char* kernel, const char* name, int64_t need, bool optional, float** out) {
  napi_valuetype type;
  napi_typeof(env, v, &type);
  if (optional && type == napi_null) {
    *out = nullptr;
    return true;
  }
  F32View view;
  if (!ReadF32(env, v, name, &view)) return false;
  if (view.length < need) {
    Napi::RangeError::New(env, std::string("supra native ") + kernel + ": " + name + " has " + std::to_string(view.length) +
                                   " floats, the call needs " + std::to_string(need))
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = view.data;
  return true;
}

bool ReadCount(napi_env env, napi_value v, const char* kernel, const char* name, int64_t min, int64_t* out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || !(d >= static_cast<double>(min) && d <= 9007199254740992.0 && std::floor(d) == d)) {
    Napi::RangeError::New(env, std::string("supra native ") + kernel + ": " + name + " must be an integer >= " + std::to_string(min))
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = static_cast<int64_t>(d);
  return true;
}

bool ElementwiseAvailable(napi_env env, const char* kernel) {
  if (elementwiseOn) return true;
  Napi::Error::New(env, std::string("supra native ") + kernel + ": the add-on's elementwise kernels are " +
                            (VectorCpu() ? "turned off" : "not available on this CPU (no AVX-512 or AVX2)"))
      .ThrowAsJavaScriptException();
  return false;
}

// quantizeInt8(src, from, cols, q, scales) -> the index in src of its first NaN or infinite value, or -1:
// values [from, from + src.length) of an int8 weight (q Int8Array, rows of cols values; scales Uint16Array (bfloat16),
// ceil(cols / 32) a row) quantized from src, whole blocks only (src/core/weights.ts int8FromFloat's rule).
napi_value QuantizeInt8(napi_env env, napi_callback_info cbinfo) {
  const char* name = "quantizeInt8";
  napi_value argv[5];
  int64_t from, cols;
  F32View src;
  U16View scales;
  if (!ReadArgs(env, cbinfo, name, 5, argv) || !ReadF32(env, argv[0], "src", &src) || !ReadCount(env, argv[1], name, "from", 0, &from) ||
      !ReadCount(env, argv[2], name, "cols", 1, &cols) || !ReadScales(env, argv[4], "quantizeInt8: scales", &scales)) {
    return nullptr;
  }
  napi_typedarray_type type;
  size_t qLength = 0;
  void* qData = nullptr;
  if (napi_get_typedarray_info(env, argv[3], &type, &qLength, &qData, nullptr, nullptr) != napi_ok || type != napi_int8_array) {
    Napi::TypeError::New(env, "supra native quantizeInt8: q must be an Int8Array").ThrowAsJavaScriptException();
    return nullptr;
  }
  const int64_t n = src.length, total = static_cast<int64_t>(qLength), end = from + n;
  const int64_t blocks = (cols + supra::kInt8Block - 1) / supra::kInt8Block;
  const auto atEdge = [cols](int64_t i) { return (i % cols) % supra::kInt8Block == 0; };
  if (total % cols != 0 || end > total || scales.length < (total / cols) * blocks || !atEdge(from) || !(end == total || atEdge(end))) {
    Napi::RangeError::New(env, "supra native quantizeInt8: values [" + std::to_string(from) + ", " + std::to_string(end) +
                                   ") are not whole blocks of a weight of " + std::to_string(total) + " values in rows of " +
                                   std::to_string(cols) + " with " + std::to_string(scales.length) + " scales")
        .ThrowAsJavaScriptException();
    return nullptr;
  }
  // q and scales are written while src is read: no two of them may share memory
  const int64_t scaleBytes = 2 * scales.length;
  if (OverlapsBytes(src.data, 4 * n, qData, total) || OverlapsBytes(src.data, 4 * n, scales.data, scaleBytes) ||
      OverlapsBytes(qData, total, scales.data, scaleBytes)) {
    Napi::RangeError::New(env, "supra native quantizeInt8: src, q and scales must not share memory").ThrowAsJavaScriptException();
    return nullptr;
  }
  napi_value result;
  napi_create_double(env, static_cast<double>(supra::QuantizeInt8(src.data, n, from, cols, static_cast<int8_t*>(qData), scales.data)), &result);
  return result;
}

// adviseHugePages(view) -> the bytes advised: asks Linux to back the whole 2 MiB pages inside a typed array's
// memory with transparent huge pages when they are first touched (madvise MADV_HUGEPAGE; the view's edges
// keep 4 KiB pages, as the memory beside them is not the view's). One fault then maps 2 MiB instead of 4 KiB:
// on the 2-core VMs measured here a fault costs ~15 us, so a 2 GiB model took 8-9 s of system time to fault
// in (2026-12-07). 0 off Linux, for a view smaller than a huge page, or when the kernel refuses (THP off).
napi_value AdviseHugePages(napi_env env, napi_callback_info cbinfo) {
  napi_value argv[1];
  if (!ReadArgs(env, cbinfo, "adviseHugePages", 1, argv)) return nullptr;
  bool typed = false;
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_is_typedarray(env, argv[0], &typed) != napi_ok || !typed ||
      napi_get_typedarray_info(env, argv[0], &type, &length, &data, nullptr, nullptr) != napi_ok) {
    Napi::TypeError::New(env, "supra native adviseHugePages: view must be a typed array").ThrowAsJavaScriptException();
    return nullptr;
  }
  size_t advised = 0;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  size_t elementBytes = 1;
  switch (type) {
    case napi_int16_array: case napi_uint16_array: elementBytes = 2; break;
    case napi_int32_array: case napi_uint32_array: case napi_float32_array: elementBytes = 4; break;
    case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: elementBytes = 8; break;
    default: break;
  }
  constexpr uintptr_t kHugePage = uintptr_t{2} << 20;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + kHugePage - 1) & ~(kHugePage - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + length * elementBytes) & ~(kHugePage - 1);
  if (end > begin && madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE) == 0) advised = end - begin;
#endif
  napi_value result;
  napi_create_double(env, static_cast<double>(advised), &result);
  return result;
}

// crossEntropy(logits, targets, vocab, dlogits | null, zLoss, inv, rows, grain) -> the loss summed over rows
napi_value CrossEntropy(napi_env env, napi_callback_info cbinfo) {
  const char* name = "crossEntropy";
  napi_value argv[8];
  if (!ReadArgs(env, cbinfo, name, 8, argv)) return nullptr;
  int64_t vocab, rows, grain;
  double zLoss, inv;
  if (!ElementwiseAvailable(env, name) || !ReadCount(env, argv[2], name, "vocab", 1, &vocab) ||
      !ReadCount(env, argv[6], name, "rows", 0, &rows) || !ReadCount(env, argv[7], name, "grain", 1, &grain) ||
      !ReadNumber(env, argv[4], "zLoss", &zLoss) || !ReadNumber(env, argv[5], "inv", &inv)) {
    return nullptr;
  }
  float *logits, *dlogits;
  if (!ReadSpan(env, argv[0], name, "logits", rows * vocab, false, &logits) ||
      !ReadSpan(env, argv[3], name, "dlogits", rows * vocab, true, &dlogits)) {
    return nullptr;
  }
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, argv[1], &type, &length, &data, nullptr, nullptr) != napi_ok || type != napi_int32_array ||
      static_cast<int64_t>(length) < rows) {
    Napi::TypeError::New(env, "supra native crossEntropy: targets must be an Int32Array of at least rows entries")
        .ThrowAsJavaScriptException();
    return nullptr;
  }
  const int32_t* targets = static_cast<const int32_t*>(data);
  for (int64_t r = 0; r < rows; r++) {
    if (targets[r] != -100 && !(targets[r] >= 0 && targets[r] < vocab)) {
      Napi::RangeError::New(env, "supra native crossEntropy: target " + std::to_string(targets[r]) + " outside vocab " +
                                     std::to_string(vocab))
          .ThrowAsJavaScriptException();
      return nullptr;
    }
  }
  double total = 0;
#ifdef SUPRA_X86
  CrossEntropyWork work(logits, targets, static_cast<int>(vocab), dlogits, zLoss, inv, rows, grain);
  RunShared(work);
  total = work.Total();
#endif
  napi_value result;
  napi_create_double(env, total, &result);
  return result;
}

// swiglu(gate, up, out, n, grain)
napi_value Swiglu(napi_env env, napi_callback_info cbinfo) {
  const char* name = "swiglu";
  napi_value argv[5];
  int64_t n, grain;
  float *gate, *up, *out;
  if (!ReadArgs(env, cbinfo, name, 5, argv) || !ElementwiseAvailable(env, name) || !ReadCount(env, argv[3], name, "n", 0, &n) ||
      !ReadCount(env, argv[4], name, "grain", 1, &grain) || !ReadSpan(env, argv[0], name, "gate", n, false, &gate) ||
      !ReadSpan(env, argv[1], name, "up", n, false, &up) || !ReadSpan(env, argv[2], name, "out", n, false, &out)) {
    return nullptr;
  }
#ifdef SUPRA_X86
  SwigluWork work(gate, up, out, n, grain);
  RunShared(work);
#endif
  return nullptr;
}

// swigluBackward(dout, gate, up, dgate, dup, act | null, n, grain)
napi_value SwigluBackward(napi_env env, napi_callback_info cbinfo) {
  const char* name = "swigluBackward";
  napi_value argv[8];
  int64_t n, grain;
  float *dout, *gate, *up, *dgate, *dup, *act;
  if (!ReadArgs(env, cbinfo, name, 8, argv) || !ElementwiseAvailable(env, name) || !ReadCount(env, argv[6], name, "n", 0, &n) ||
      !ReadCount(env, argv[7], name, "grain", 1, &grain) || !ReadSpan(env, argv[0], name, "dout", n, false, &dout) ||
      !ReadSpan(env, argv[1], name, "gate", n, false, &gate) || !ReadSpan(env, argv[2], name, "up", n, false, &up) ||
      !ReadSpan(env, argv[3], name, "dgate", n, false, &dgate) || !ReadSpan(env, argv[4], name, "dup", n, false, &dup) ||
      !ReadSpan(env, argv[5], name, "act", n, true, &act)) {
    return nullptr;
  }
#ifdef SUPRA_X86
  SwigluBackwardWork work(dout, gate, up, dgate, dup, act, n, grain);
  RunShared(work);
#endif
  return nullptr;
}

// ---------------------------------------------------------------- the optimizer's kernels
//
// adamw, sumSquares, scale and embeddingBackward of assembly/ops.ts on any CPU, for parameters, gradients and
// moments kept outside the arena (Backend.heapKernels): the wasm kernels would copy a weight-sized array in
// and out of the arena for every call. The same bits (kernels.cc); chunks as ops.ts cuts them.
class AdamwWork : public ChunkedWork {
 public:
  AdamwWork(float* p, float* g, float* m, float* v, const float (&h)[8], bool clear, int64_t n, int64_t grain)
      : ChunkedWork(n, grain), p_(p), g_(g), m_(m), v_(v), clear_(clear) {
    std::copy(h, h + 8, h_);
  }

 protected:
  void DoRange(int64_t, int64_t lo, int64_t hi) override {
    supra::AdamwRange(p_, g_, m_, v_, h_[0], h_[1], h_[2], h_[3], h_[4], h_[5], h_[6], h_[7], clear_, lo, hi);
  }

 private:
  float *p_, *g_, *m_, *v_;
  float h_[8];
  const bool clear_;
};

class SumSquaresWork : public ChunkedWork {
 public:
  SumSquaresWork(const float* x, int64_t n, int64_t grain) : ChunkedWork(n, grain), x_(x), totals_((n + grain - 1) / grain) {}
  // the chunks' sums added in order from 0, as parallelFor adds them
  double Total() const {
    double sum = 0;
    for (double t : totals_) sum += t;
    return sum;
  }

 protected:
  void DoRange(int64_t chunk, int64_t lo, int64_t hi) override { totals_[chunk] = supra::SumSquaresChunk(x_ + lo, hi - lo); }

 private:
  const float* x_;
  std::vector<double> totals_;
};

class ScaleWork : public ChunkedWork {
 public:
  ScaleWork(float* x, float s, int64_t n, int64_t grain) : ChunkedWork(n, grain), x_(x), s_(s) {}

 protected:
  void DoRange(int64_t, int64_t lo, int64_t hi) override { supra::ScaleRange(x_, s_, lo, hi); }

 private:
  float* x_;
  const float s_;
};

class EmbeddingBackwardWork : public ChunkedWork {
 public:
  EmbeddingBackwardWork(const int32_t* ids, const float* dout, float* dtable, int64_t n, int64_t dim, int64_t grain)
      : ChunkedWork(dim, grain), ids_(ids), dout_(dout), dtable_(dtable), n_(n), dim_(dim) {}

 protected:
  void DoRange(int64_t, int64_t lo, int64_t hi) override { supra::EmbeddingBackwardColumns(ids_, dout_, dtable_, n_, dim_, lo, hi); }

 private:
  const int32_t* ids_;
  const float* dout_;
  float* dtable_;
  const int64_t n_, dim_;
};

// adamwFused(p, g, m, v, lr, b1, b2, eps, wd, bc1, bc2, gradScale, clearGrad, n, grain): ops.adamw (a new name
// for the new arguments, so an add-on built before them is seen to lack it)
napi_value AdamwFused(napi_env env, napi_callback_info cbinfo) {
  const char* name = "adamwFused";
  napi_value argv[15];
  int64_t n, grain;
  float *p, *g, *m, *v;
  float h[8];
  bool clear;
  if (!ReadArgs(env, cbinfo, name, 15, argv) || !ReadCount(env, argv[13], name, "n", 0, &n) ||
      !ReadCount(env, argv[14], name, "grain", 1, &grain) || !ReadSpan(env, argv[0], name, "p", n, false, &p) ||
      !ReadSpan(env, argv[1], name, "g", n, false, &g) || !ReadSpan(env, argv[2], name, "m", n, false, &m) ||
      !ReadSpan(env, argv[3], name, "v", n, false, &v)) {
    return nullptr;
  }
  for (int i = 0; i < 8; i++) {
    double d;
    if (!ReadNumber(env, argv[4 + i], "adamw hyperparameter", &d)) return nullptr;
    h[i] = static_cast<float>(d); // the wasm kernel takes them as f32
  }
  if (napi_get_value_bool(env, argv[12], &clear) != napi_ok) {
    Napi::TypeError::New(env, "supra native adamwFused: clearGrad must be a boolean").ThrowAsJavaScriptException();
    return nullptr;
  }
  AdamwWork work(p, g, m, v, h, clear, n, grain);
  RunShared(work);
  return nullptr;
}

// sumSquares(x, n, grain) -> Σ x² in float64
napi_value SumSquares(napi_env env, napi_callback_info cbinfo) {
  const char* name = "sumSquares";
  napi_value argv[3];
  int64_t n, grain;
  float* x;
  if (!ReadArgs(env, cbinfo, name, 3, argv) || !ReadCount(env, argv[1], name, "n", 0, &n) ||
      !ReadCount(env, argv[2], name, "grain", 1, &grain) || !ReadSpan(env, argv[0], name, "x", n, false, &x)) {
    return nullptr;
  }
  double total = 0;
  if (n > 0) {
    SumSquaresWork work(x, n, grain);
    RunShared(work);
    total = work.Total();
  }
  napi_value result;
  napi_create_double(env, total, &result);
  return result;
}

// scale(x, s, n, grain)
napi_value Scale(napi_env env, napi_callback_info cbinfo) {
  const char* name = "scale";
  napi_value argv[4];
  int64_t n, grain;
  double s;
  float* x;
  if (!ReadArgs(env, cbinfo, name, 4, argv) || !ReadNumber(env, argv[1], "s", &s) || !ReadCount(env, argv[2], name, "n", 0, &n) ||
      !ReadCount(env, argv[3], name, "grain", 1, &grain) || !ReadSpan(env, argv[0], name, "x", n, false, &x)) {
    return nullptr;
  }
  ScaleWork work(x, static_cast<float>(s), n, grain);
  RunShared(work);
  return nullptr;
}

// embeddingBackward(ids, dout, dtable, n, dim, grain): ids checked by the caller (ops.ts), in [0, rows of dtable)
napi_value EmbeddingBackward(napi_env env, napi_callback_info cbinfo) {
  const char* name = "embeddingBackward";
  napi_value argv[6];
  int64_t n, dim, grain;
  float *dout, *dtable;
  if (!ReadArgs(env, cbinfo, name, 6, argv) || !ReadCount(env, argv[3], name, "n", 0, &n) ||
      !ReadCount(env, argv[4], name, "dim", 0, &dim) || !ReadCount(env, argv[5], name, "grain", 1, &grain) ||
      !ReadSpan(env, argv[1], name, "dout", n * dim, false, &dout) || !ReadSpan(env, argv[2], name, "dtable", 0, false, &dtable)) {
    return nullptr;
  }
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, argv[0], &type, &length, &data, nullptr, nullptr) != napi_ok || type != napi_int32_array ||
      static_cast<int64_t>(length) < n) {
    Napi::TypeError::New(env, "supra native embeddingBackward: ids must be an Int32Array of at least n entries").ThrowAsJavaScriptException();
    return nullptr;
  }
  const int32_t* ids = static_cast<const int32_t*>(data);
  F32View table;
  ReadF32(env, argv[2], "dtable", &table);
  const int64_t rows = dim > 0 ? table.length / dim : 0;
  for (int64_t i = 0; i < n; i++) {
    if (!(ids[i] >= 0 && ids[i] < rows)) {
      Napi::RangeError::New(env, "supra native embeddingBackward: token id " + std::to_string(ids[i]) + " outside the table's " +
                                     std::to_string(rows) + " rows")
          .ThrowAsJavaScriptException();
      return nullptr;
    }
  }
  if (n == 0 || dim == 0) return nullptr;
  EmbeddingBackwardWork work(ids, dout, dtable, n, dim, grain);
  RunShared(work);
  return nullptr;
}

// ---------------------------------------------------------------- the linear attention's recurrent step
//
// linearAttentionStep of assembly/ops.ts (BackendKernels): a decoding step of every SUPRA layer. Each unit (a
// head of a sequence) is an item; the helper is usually still spinning from the product before, which the
// wasm pool's workers are not (they sleep between a decoding step's kernels, and waking them costs more than
// the step). The units are two runs (split), so a head's state is updated by the same thread from token to
// token, instead of moving between the cores' caches when the threads take alternate units. A decoding step
// (one token) with up to CpuTuningNow().stepAloneFloats of state runs on this thread alone where that is
// faster: its heads are a few microseconds of latency-bound work, less than handing half of them over costs
// (Zen 4 VM: SmolLM-135M's 30 layers' states called in turn, 6.3-6.8 us a call with alternate units, 5.8
// split, 2.6 alone; its decoding step's work between the products 0.14-0.15 ms a token shorter alone, in both
// orders; within a decoding step, where the streamed weights leave the states in memory, 9 us a call either
// way). A larger state keeps both threads' misses in flight: TinyLlama-1.1B's 32 heads took 19-27 us a call
// alone, 24 split. On the Xeon VM, whose one core reads memory at half the two cores' pace, sharing is
// faster for SmolLM-135M too (kernels.h).
#ifdef SUPRA_X86

class LinearAttentionStepWork : public SharedWork {
 public:
  LinearAttentionStepWork(const float* q, const float* k, const float* v, float* o, float* state, int heads, int tokens,
                          int dk, int dv, float scale, const double* powers, int powStride, int64_t units)
      : SharedWork(units, true), q_(q), k_(k), v_(v), o_(o), state_(state), heads_(heads), tokens_(tokens), dk_(dk), dv_(dv),
        scale_(scale), powers_(powers), powStride_(powStride) {}

 protected:
  void Do(int64_t u, int) override {
    supra::LinearAttentionStepRange(elementwiseIsa, q_, k_, v_, o_, state_, heads_, tokens_, dk_, dv_, scale_, powers_, powStride_, u, u + 1);
  }

 private:
  const float *q_, *k_, *v_;
  float *o_, *state_;
  const int heads_, tokens_, dk_, dv_;
  const float scale_;
  const double* powers_;
  const int powStride_;
};

// Runs a step's units: one token with up to CpuTuningNow().stepAloneFloats of state on this thread alone, else
// shared with the helper.
void RunStepWork(LinearAttentionStepWork& work, int64_t tokens, int64_t stateFloats) {
  if (tokens == 1 && stateFloats <= supra::CpuTuningNow().stepAloneFloats) work.Drain(0);
  else RunShared(work);
}
#endif

// linearAttentionStep(q, k, v, o, state, heads, tokens, dk, dv, scale, powers, powStride, units): the arguments
// of ops.ts's linearAttentionStep, units = U.
napi_value LinearAttentionStep(napi_env env, napi_callback_info cbinfo) {
  const char* name = "linearAttentionStep";
  napi_value argv[13];
  int64_t heads, tokens, dk, dv, powStride, units;
  double scale;
  if (!ReadArgs(env, cbinfo, name, 13, argv) || !ElementwiseAvailable(env, name) ||
      !ReadCount(env, argv[5], name, "heads", 1, &heads) || !ReadCount(env, argv[6], name, "tokens", 0, &tokens) ||
      !ReadCount(env, argv[7], name, "dk", 0, &dk) || !ReadCount(env, argv[8], name, "dv", 0, &dv) ||
      !ReadNumber(env, argv[9], "scale", &scale) || !ReadCount(env, argv[11], name, "powStride", 0, &powStride) ||
      !ReadCount(env, argv[12], name, "units", 0, &units)) {
    return nullptr;
  }
  if (std::max({heads, tokens, dk, dv, powStride, units}) > kMaxBlasInt) {
    Napi::RangeError::New(env, "supra native linearAttentionStep: a dimension is 2^31 or more").ThrowAsJavaScriptException();
    return nullptr;
  }
  // the spans' sizes below in int64: counted in doubles first, so that no product wraps
  const double perUnit = std::max(static_cast<double>(tokens) * std::max(dk, dv), static_cast<double>(dk) * dv);
  if (static_cast<double>(units) * perUnit > 9007199254740992.0) {
    Napi::RangeError::New(env, "supra native linearAttentionStep: the arrays would hold 2^53 floats or more").ThrowAsJavaScriptException();
    return nullptr;
  }
  float *q, *k, *v, *o, *state;
  if (!ReadSpan(env, argv[0], name, "q", units * tokens * dk, false, &q) ||
      !ReadSpan(env, argv[1], name, "k", units * tokens * dk, false, &k) ||
      !ReadSpan(env, argv[2], name, "v", units * tokens * dv, false, &v) ||
      !ReadSpan(env, argv[3], name, "o", units * tokens * dv, false, &o) ||
      !ReadSpan(env, argv[4], name, "state", units * dk * dv, false, &state)) {
    return nullptr;
  }
  napi_typedarray_type type;
  size_t powersLength = 0;
  void* powersData = nullptr;
  const int64_t powersNeed = (std::min(heads, units) - 1) * powStride + 2;
  if (napi_get_typedarray_info(env, argv[10], &type, &powersLength, &powersData, nullptr, nullptr) != napi_ok ||
      type != napi_float64_array || static_cast<int64_t>(powersLength) < powersNeed) {
    Napi::TypeError::New(env, "supra native linearAttentionStep: powers must be a Float64Array of at least " +
                                  std::to_string(powersNeed) + " values")
        .ThrowAsJavaScriptException();
    return nullptr;
  }
  if (units == 0 || tokens == 0) return nullptr;
#ifdef SUPRA_X86
  LinearAttentionStepWork work(q, k, v, o, state, static_cast<int>(heads), static_cast<int>(tokens), static_cast<int>(dk),
                               static_cast<int>(dv), static_cast<float>(scale), static_cast<const double*>(powersData),
                               static_cast<int>(powStride), units);
  RunStepWork(work, tokens, units * dk * dv);
#endif
  return nullptr;
}

// fusedRecurrentStep(q, k, v, kRep, vRep, o, out, rstd, state, cos, sin, powers, batch, heads, kvHeads, dk, dv, start,
// scale, powStride, eps): a SUPRA layer's decoding step (one token per sequence) from its raw features to the
// input of o_proj, in one call (ops.ts fusedRecurrentStep): ReLU of q [batch, heads, dk] and k [batch, kvHeads,
// dk] in place, repeat_kv of k and v into kRep and vRep (null when heads == kvHeads), RoPE of q and the repeated
// k at position `start` (cos, sin: the tables, half = dk / 2 values a position), the recurrent step
// (linearAttentionStep's, o [batch, heads, dv], state [batch, heads, dk, dv]) and the GroupNorm of each head's o
// into out, rstd (eps rounded to float32, as the wasm kernel takes it). The same kernels in the same order as
// the separate calls, so the same bits; the calls it replaces cost more than their work in a decoding step.
#ifdef SUPRA_X86
// every span read or written, for the overlap check
struct NamedSpan {
  const char* name;
  const float* data;
  int64_t floats;
};
#endif

// fusedRecurrentStep's arguments, read and checked (ReadFusedStep), and its work (RunFusedStep).
struct FusedStep {
  float *q, *k, *v, *kRep, *vRep, *o, *out, *rstd, *state, *cos, *sin;
  const double* powers;
  int64_t batch, heads, kvHeads, dk, dv, start, powStride, rep, units, table, powersNeed;
  double scale, eps;
#ifdef SUPRA_X86
  // every span it reads or writes; the first kWritten are the ones it writes (and v), which no other may share
  static constexpr int kSpans = 12, kWritten = 9;
  void Spans(NamedSpan* spans) const {
    const NamedSpan all[kSpans] = {
        {"q", q, units * dk}, {"k", k, batch * kvHeads * dk}, {"v", v, batch * kvHeads * dv}, {"kRep", kRep, kRep ? units * dk : 0},
        {"vRep", vRep, vRep ? units * dv : 0}, {"o", o, units * dv}, {"out", out, units * dv}, {"rstd", rstd, units},
        {"state", state, units * dk * dv}, {"cos", cos, table}, {"sin", sin, table},
        {"powers", reinterpret_cast<const float*>(powers), 2 * powersNeed}}; // float64, two floats a value
    std::copy(all, all + kSpans, spans);
  }
#endif
};

// False, with an error pending, unless argv[0, 21) are fusedRecurrentStep's arguments, every span long enough
// and none that it writes sharing memory with another.
bool ReadFusedStep(napi_env env, const char* name, napi_value* argv, FusedStep* f) {
  if (!ElementwiseAvailable(env, name) ||
      !ReadCount(env, argv[12], name, "batch", 1, &f->batch) || !ReadCount(env, argv[13], name, "heads", 1, &f->heads) ||
      !ReadCount(env, argv[14], name, "kvHeads", 1, &f->kvHeads) || !ReadCount(env, argv[15], name, "dk", 2, &f->dk) ||
      !ReadCount(env, argv[16], name, "dv", 1, &f->dv) || !ReadCount(env, argv[17], name, "start", 0, &f->start) ||
      !ReadNumber(env, argv[18], "scale", &f->scale) || !ReadCount(env, argv[19], name, "powStride", 0, &f->powStride) ||
      !ReadNumber(env, argv[20], "eps", &f->eps)) {
    return false;
  }
  const auto fail = [&](const std::string& why) {
    Napi::RangeError::New(env, std::string("supra native ") + name + ": " + why).ThrowAsJavaScriptException();
    return false;
  };
  if (!std::isfinite(f->scale) || !(f->eps >= 0 && f->eps < INFINITY)) return fail("scale must be finite and eps finite and >= 0");
  const int64_t batch = f->batch, heads = f->heads, kvHeads = f->kvHeads, dk = f->dk, dv = f->dv, start = f->start;
  if (std::max({batch, heads, dk, dv, f->powStride}) > kMaxBlasInt) return fail("a dimension is 2^31 or more");
  if (start > kMaxBlasInt) return fail("start is 2^31 or more");
  if (heads % kvHeads != 0) return fail("heads (" + std::to_string(heads) + ") must be a multiple of kvHeads (" + std::to_string(kvHeads) + ")");
  if (dk % 2 != 0) return fail("dk must be even for RoPE, got " + std::to_string(dk));
  f->rep = heads / kvHeads;
  f->units = batch * heads;
  const int64_t rep = f->rep, units = f->units;
  // counted in doubles, so that no product wraps before it is compared
  if (static_cast<double>(units) * static_cast<double>(dk) * static_cast<double>(dv) > 1099511627776.0) return fail("the state is too large");
  f->table = (start + 1) * (dk / 2);
  if (!ReadSpan(env, argv[0], name, "q", units * dk, false, &f->q) || !ReadSpan(env, argv[1], name, "k", batch * kvHeads * dk, false, &f->k) ||
      !ReadSpan(env, argv[2], name, "v", batch * kvHeads * dv, false, &f->v) ||
      !ReadSpan(env, argv[3], name, "kRep", units * dk, rep == 1, &f->kRep) ||
      !ReadSpan(env, argv[4], name, "vRep", units * dv, rep == 1, &f->vRep) || !ReadSpan(env, argv[5], name, "o", units * dv, false, &f->o) ||
      !ReadSpan(env, argv[6], name, "out", units * dv, false, &f->out) || !ReadSpan(env, argv[7], name, "rstd", units, false, &f->rstd) ||
      !ReadSpan(env, argv[8], name, "state", units * dk * dv, false, &f->state) ||
      !ReadSpan(env, argv[9], name, "cos", f->table, false, &f->cos) || !ReadSpan(env, argv[10], name, "sin", f->table, false, &f->sin)) {
    return false;
  }
  if (rep == 1 && (f->kRep != nullptr || f->vRep != nullptr)) return fail("kRep and vRep must be null when heads == kvHeads");
  napi_typedarray_type type;
  size_t powersLength = 0;
  void* powersData = nullptr;
  f->powersNeed = (heads - 1) * f->powStride + 2;
  if (napi_get_typedarray_info(env, argv[11], &type, &powersLength, &powersData, nullptr, nullptr) != napi_ok ||
      type != napi_float64_array || static_cast<int64_t>(powersLength) < f->powersNeed) {
    return fail("powers must be a Float64Array of at least " + std::to_string(f->powersNeed) + " values");
  }
  f->powers = static_cast<const double*>(powersData);
#ifdef SUPRA_X86
  // Everything it writes is read again by a later kernel of the call, so no two spans may share memory (the
  // tables and powers are only read).
  NamedSpan spans[FusedStep::kSpans];
  f->Spans(spans);
  for (int i = 0; i < FusedStep::kWritten; i++) {
    for (int j = i + 1; j < FusedStep::kSpans; j++) {
      if (spans[i].floats > 0 && spans[j].floats > 0 && Overlaps(spans[i].data, spans[i].floats, spans[j].data, spans[j].floats)) {
        return fail(std::string(spans[i].name) + " overlaps " + spans[j].name + " in memory");
      }
    }
  }
#endif
  return true;
}

#ifdef SUPRA_X86
void RunFusedStep(const FusedStep& f) {
  supra::FusedStepBefore(elementwiseIsa, f.q, f.k, f.v, f.kRep, f.vRep, f.cos, f.sin, f.batch, f.heads, f.rep, f.dk, f.dv, f.start);
  LinearAttentionStepWork work(f.q, f.rep > 1 ? f.kRep : f.k, f.rep > 1 ? f.vRep : f.v, f.o, f.state, static_cast<int>(f.heads), 1,
                               static_cast<int>(f.dk), static_cast<int>(f.dv), static_cast<float>(f.scale), f.powers,
                               static_cast<int>(f.powStride), f.units);
  RunStepWork(work, 1, f.units * f.dk * f.dv);
  supra::GroupnormRange(elementwiseIsa, f.o, f.out, f.rstd, f.dv, static_cast<float>(f.eps), 0, f.units);
}
#endif

napi_value FusedRecurrentStep(napi_env env, napi_callback_info cbinfo) {
  const char* name = "fusedRecurrentStep";
  napi_value argv[21];
  FusedStep f;
  if (!ReadArgs(env, cbinfo, name, 21, argv) || !ReadFusedStep(env, name, argv, &f)) return nullptr;
#ifdef SUPRA_X86
  RunFusedStep(f);
#endif
  return nullptr;
}

// fusedRecurrentLayerStep(<fusedRecurrentStep's 21 arguments>, x, hidden, qW, qScales, qBias, kW, kScales, kBias, vW,
// vScales, vBias, oW, oScales, oBias, y): a SUPRA layer's decoding step with its feature maps folded into q_proj and
// k_proj (layers/supra_attention.ts), from the normed input x [batch, hidden] to o_proj's output y [batch, hidden], in
// one call: q, k, v = x·W^T (+ bias) into the step's q, k, v (one shared decoding product, as gemmShared), the fused
// step, y = out·W_o^T (+ bias). Weights BF16 or int8 as gemmShared takes them; a bias a Float32Array or null. The
// separate calls' kernels in their order, so the same bits.
napi_value FusedRecurrentLayerStep(napi_env env, napi_callback_info cbinfo) {
  const char* name = "fusedRecurrentLayerStep";
  napi_value argv[36];
  FusedStep f;
  int64_t hidden;
  F32View x, y;
  if (!ReadArgs(env, cbinfo, name, 36, argv) || !ReadFusedStep(env, name, argv, &f) || !ReadCount(env, argv[22], name, "hidden", 1, &hidden) ||
      !ReadF32(env, argv[21], "x", &x) || !ReadF32(env, argv[35], "y", &y)) {
    return nullptr;
  }
  const auto fail = [&](const std::string& why) {
    Napi::RangeError::New(env, std::string("supra native fusedRecurrentLayerStep: ") + why).ThrowAsJavaScriptException();
    return nullptr;
  };
#ifndef SUPRA_X86
  return fail("decoding products need an x86 CPU with AVX2 or AVX-512");
#else
  if (!(HaveAvx512() || HaveAvx2Fma())) return fail("decoding products need AVX2 or AVX-512");
  const int64_t rows = f.batch, qn = f.heads * f.dk, kn = f.kvHeads * f.dk, vn = f.kvHeads * f.dv, on = f.heads * f.dv;
  if (rows > kDecodeRows) return fail("batch must be 1 to " + std::to_string(kDecodeRows) + ", got " + std::to_string(rows));
  if (std::max({hidden, qn, on}) > kMaxBlasInt) return fail("hidden, heads·dk or heads·dv is 2^31 or more");
  if (x.length < rows * hidden) return fail("x has " + std::to_string(x.length) + " values but the call reads " + std::to_string(rows * hidden));
  if (y.length < rows * hidden) return fail("y has " + std::to_string(y.length) + " values but the call writes " + std::to_string(rows * hidden));
  struct Projection {
    const char* name;
    const char* biasName;
    int64_t n, k;
    DecodeWeight weight;
    float* bias;
  } proj[4] = {{"q_proj: ", "q_proj bias", qn, hidden, {}, nullptr}, {"k_proj: ", "k_proj bias", kn, hidden, {}, nullptr},
               {"v_proj: ", "v_proj bias", vn, hidden, {}, nullptr}, {"o_proj: ", "o_proj bias", hidden, on, {}, nullptr}};
  for (int p = 0; p < 4; p++) {
    if (!ReadDecodeWeight(env, name, proj[p].name, argv[23 + 3 * p], argv[24 + 3 * p], proj[p].n, proj[p].k, &proj[p].weight) ||
        !ReadSpan(env, argv[25 + 3 * p], name, proj[p].biasName, proj[p].n, true, &proj[p].bias)) {
      return nullptr;
    }
  }
  // What the step writes apart from x and y (ReadFusedStep kept it apart from the rest), y apart from every array of
  // the call, and nothing written over a weight or a bias.
  NamedSpan spans[FusedStep::kSpans + 2];
  f.Spans(spans);
  constexpr int kX = FusedStep::kSpans, kY = FusedStep::kSpans + 1;
  spans[kX] = {"x", x.data, rows * hidden};
  spans[kY] = {"y", y.data, rows * hidden};
  const int written[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, kY};
  for (int i : written) {
    for (int j = 0; j <= kY; j++) {
      const bool checked = i == kY ? j != kY : j == kX || j == kY;
      if (checked && spans[i].floats > 0 && spans[j].floats > 0 && Overlaps(spans[i].data, spans[i].floats, spans[j].data, spans[j].floats)) {
        return fail(std::string(spans[i].name) + " overlaps " + spans[j].name + " in memory");
      }
    }
    for (const Projection& p : proj) {
      if (spans[i].floats > 0 && (p.weight.Overlaps(spans[i].data, spans[i].floats) || (p.bias && Overlaps(spans[i].data, spans[i].floats, p.bias, p.n)))) {
        return fail(std::string(spans[i].name) + " overlaps the " + std::string(p.name, std::strlen(p.name) - 2) + " weight, scales or bias in memory");
      }
    }
  }
  float* outputs[3] = {f.q, f.k, f.v};
  DecodePart parts[3];
  for (int p = 0; p < 3; p++) {
    parts[p] = DecodePartAt(p == 0 ? 0 : parts[p - 1].endItem(), proj[p].weight.w, proj[p].weight.scales, outputs[p],
                            static_cast<int>(proj[p].n), static_cast<int>(hidden));
  }
  {
    DecodeWork work(static_cast<int>(rows), static_cast<int>(hidden), x.data, parts, 3);
    RunShared(work);
  }
  for (int p = 0; p < 3; p++) {
    if (proj[p].bias) supra::AddBiasSpan(elementwiseIsa, outputs[p], proj[p].bias, proj[p].n, 0, rows);
  }
  RunFusedStep(f);
  {
    const DecodePart part = DecodePartAt(0, proj[3].weight.w, proj[3].weight.scales, y.data, static_cast<int>(hidden), static_cast<int>(on));
    DecodeWork work(static_cast<int>(rows), static_cast<int>(on), f.out, &part, 1);
    RunShared(work);
  }
  if (proj[3].bias) supra::AddBiasSpan(elementwiseIsa, y.data, proj[3].bias, hidden, 0, rows);
  return nullptr;
#endif
}

// decodeMlpBlock(hIn, branch, hOut, normW, n2, rstd, g, u, a, gateW, gateScales, upW, upScales, downW, downScales, rows,
// hidden, ffn, eps, nextW, nextOut, nextRstd, nextEps): the second half of a decoder layer's decoding step
// (layers/block.ts) in one call, rows <= 4: hOut = hIn + branch (the mid residual), n2 = rmsnorm(hOut)·normW (rstd per
// row), g and u = n2·W^T of the gate and up weights, a = swiglu(g, u), branch = a·W_down^T, hOut += branch; then, unless
// nextW is null, the norm that reads hOut next (the next layer's input norm, or the model's last):
// nextOut = rmsnorm(hOut)·nextW, nextRstd. The weights are BF16 or int8 as gemmShared takes them (scales null for
// BF16). The range kernels and the decoding products of the separate calls, in their order, so the same bits; hOut
// may be hIn.
napi_value DecodeMlpBlock(napi_env env, napi_callback_info cbinfo) {
  const char* name = "decodeMlpBlock";
  napi_value argv[23];
  int64_t rows, hidden, ffn;
  double eps, nextEps;
  if (!ReadArgs(env, cbinfo, name, 23, argv) || !ElementwiseAvailable(env, name) || !ReadCount(env, argv[15], name, "rows", 1, &rows) ||
      !ReadCount(env, argv[16], name, "hidden", 1, &hidden) || !ReadCount(env, argv[17], name, "ffn", 1, &ffn) ||
      !ReadNumber(env, argv[18], "eps", &eps) || !ReadNumber(env, argv[22], "nextEps", &nextEps)) {
    return nullptr;
  }
  if (!(eps >= 0 && eps < INFINITY) || !(nextEps >= 0 && nextEps < INFINITY)) {
    Napi::RangeError::New(env, "supra native decodeMlpBlock: eps and nextEps must be finite and >= 0").ThrowAsJavaScriptException();
    return nullptr;
  }
  const auto fail = [&](const std::string& why) {
    Napi::RangeError::New(env, std::string("supra native decodeMlpBlock: ") + why).ThrowAsJavaScriptException();
    return nullptr;
  };
#ifndef SUPRA_X86
  return fail("decoding products need an x86 CPU with AVX2 or AVX-512");
#else
  if (!(HaveAvx512() || HaveAvx2Fma())) return fail("decoding products need AVX2 or AVX-512");
  if (rows > kDecodeRows) return fail("rows must be 1 to " + std::to_string(kDecodeRows) + ", got " + std::to_string(rows));
  if (std::max(hidden, ffn) > kMaxBlasInt) return fail("a dimension is 2^31 or more");
  const int64_t nh = rows * hidden, nf = rows * ffn;
  float *hIn, *branch, *hOut, *normW, *n2, *rstd, *g, *u, *a;
  if (!ReadSpan(env, argv[0], name, "hIn", nh, false, &hIn) || !ReadSpan(env, argv[1], name, "branch", nh, false, &branch) ||
      !ReadSpan(env, argv[2], name, "hOut", nh, false, &hOut) || !ReadSpan(env, argv[3], name, "normW", hidden, false, &normW) ||
      !ReadSpan(env, argv[4], name, "n2", nh, false, &n2) || !ReadSpan(env, argv[5], name, "rstd", rows, false, &rstd) ||
      !ReadSpan(env, argv[6], name, "g", nf, false, &g) || !ReadSpan(env, argv[7], name, "u", nf, false, &u) ||
      !ReadSpan(env, argv[8], name, "a", nf, false, &a)) {
    return nullptr;
  }
  float *nextW, *nextOut, *nextRstd;
  if (!ReadSpan(env, argv[19], name, "nextW", hidden, true, &nextW) || !ReadSpan(env, argv[20], name, "nextOut", nh, nextW == nullptr, &nextOut) ||
      !ReadSpan(env, argv[21], name, "nextRstd", rows, nextW == nullptr, &nextRstd)) {
    return nullptr;
  }
  if (nextW == nullptr && (nextOut != nullptr || nextRstd != nullptr)) return fail("nextOut and nextRstd must be null without nextW");
  DecodeWeight gate, up, down;
  if (!ReadDecodeWeight(env, name, "gate: ", argv[9], argv[10], ffn, hidden, &gate) ||
      !ReadDecodeWeight(env, name, "up: ", argv[11], argv[12], ffn, hidden, &up) ||
      !ReadDecodeWeight(env, name, "down: ", argv[13], argv[14], hidden, ffn, &down)) {
    return nullptr;
  }
  // Every span it writes apart from every other span and weight (hOut may be hIn itself: the adds are elementwise).
  const NamedSpan spans[] = {{"hOut", hOut, nh}, {"branch", branch, nh}, {"n2", n2, nh},       {"rstd", rstd, rows},
                             {"g", g, nf},       {"u", u, nf},           {"a", a, nf},         {"nextOut", nextOut, nextW ? nh : 0},
                             {"nextRstd", nextRstd, nextW ? rows : 0},   {"hIn", hIn, nh},     {"normW", normW, hidden},
                             {"nextW", nextW, nextW ? hidden : 0}};
  constexpr int kWritten = 9, kHIn = 9;
  for (int i = 0; i < kWritten; i++) {
    for (int j = i + 1; j < static_cast<int>(sizeof spans / sizeof spans[0]); j++) {
      if (i == 0 && j == kHIn && hIn == hOut) continue;
      if (spans[i].floats > 0 && spans[j].floats > 0 && Overlaps(spans[i].data, spans[i].floats, spans[j].data, spans[j].floats)) {
        return fail(std::string(spans[i].name) + " overlaps " + spans[j].name + " in memory");
      }
    }
    const std::pair<const char*, const DecodeWeight*> weights[] = {{"gate", &gate}, {"up", &up}, {"down", &down}};
    for (const auto& [weightName, w] : weights) {
      if (spans[i].floats > 0 && w->Overlaps(spans[i].data, spans[i].floats)) {
        return fail(std::string(spans[i].name) + " overlaps the " + weightName + " weight or its scales in memory");
      }
    }
  }
  supra::AddSpan(elementwiseIsa, hIn, branch, hOut, 0, nh);
  supra::RmsnormSpan(elementwiseIsa, hOut, normW, n2, rstd, hidden, static_cast<float>(eps), 0, rows);
  DecodePart parts[2] = {DecodePartAt(0, gate.w, gate.scales, g, static_cast<int>(ffn), static_cast<int>(hidden)), {}};
  parts[1] = DecodePartAt(parts[0].endItem(), up.w, up.scales, u, static_cast<int>(ffn), static_cast<int>(hidden));
  {
    DecodeWork work(static_cast<int>(rows), static_cast<int>(hidden), n2, parts, 2);
    RunShared(work);
  }
  supra::SwigluRange(elementwiseIsa, g, u, a, 0, nf);
  {
    const DecodePart part = DecodePartAt(0, down.w, down.scales, branch, static_cast<int>(hidden), static_cast<int>(ffn));
    DecodeWork work(static_cast<int>(rows), static_cast<int>(ffn), a, &part, 1);
    RunShared(work);
  }
  supra::AddSpan(elementwiseIsa, hOut, branch, hOut, 0, nh);
  if (nextW) supra::RmsnormSpan(elementwiseIsa, hOut, nextW, nextOut, nextRstd, hidden, static_cast<float>(nextEps), 0, rows);
  return nullptr;
#endif
}

// ---------------------------------------------------------------- the range kernels
//
// rangeKernel(name, spans, scalars, total, grain): a kernel of supra::RangeKernel's table (kernels_vector.cc) with
// the wasm kernel's arguments -- its arrays (null where optional) and its numbers -- over units [0, total)
// in chunks of `grain` (chunkGrain's, as ops.ts's parallelFor cuts them), shared with the helper thread. Each
// array is checked against what the kernel reads before anything runs. rangeKernelNames() lists the table.
#ifdef SUPRA_X86
class RangeWork : public ChunkedWork {
 public:
  RangeWork(const supra::RangeKernel& kernel, void* const* spans, const double* scalars, int64_t total, int64_t grain)
      : ChunkedWork(total, grain), run_(kernel.run[elementwiseIsa == supra::VectorIsa::kAvx512 ? 1 : 0]), spans_(spans), scalars_(scalars) {}

 protected:
  void DoRange(int64_t, int64_t lo, int64_t hi) override { run_(spans_, scalars_, lo, hi); }

 private:
  void (*run_)(void* const*, const double*, int64_t, int64_t);
  void* const* spans_;
  const double* scalars_;
};
#endif

napi_value RangeKernelCall(napi_env env, napi_callback_info cbinfo) {
  napi_value argv[5];
  if (!ReadArgs(env, cbinfo, "rangeKernel", 5, argv)) return nullptr;
  char nameBuffer[64];
  size_t nameLength = 0;
  if (napi_get_value_string_utf8(env, argv[0], nameBuffer, sizeof nameBuffer, &nameLength) != napi_ok) {
    Napi::TypeError::New(env, "supra native rangeKernel: name must be a string").ThrowAsJavaScriptException();
    return nullptr;
  }
  const std::string name(nameBuffer, nameLength);
  const supra::RangeKernel* kernel = supra::FindRangeKernel(name);
  if (!kernel) {
    Napi::RangeError::New(env, "supra native rangeKernel: no kernel named \"" + name + "\"").ThrowAsJavaScriptException();
    return nullptr;
  }
  const auto what = [&name] { return "supra native " + name + ": "; }; // built only for an error
  int64_t total, grain;
  if (!ElementwiseAvailable(env, kernel->name) || !ReadCount(env, argv[3], kernel->name, "total", 0, &total) ||
      !ReadCount(env, argv[4], kernel->name, "grain", 1, &grain)) {
    return nullptr;
  }
  const int spanCount = kernel->SpanCount();
  uint32_t spansGiven = 0, scalarsGiven = 0;
  bool isArray = false;
  if (napi_is_array(env, argv[1], &isArray) != napi_ok || !isArray || napi_get_array_length(env, argv[1], &spansGiven) != napi_ok ||
      static_cast<int>(spansGiven) != spanCount || napi_is_array(env, argv[2], &isArray) != napi_ok || !isArray ||
      napi_get_array_length(env, argv[2], &scalarsGiven) != napi_ok || static_cast<int>(scalarsGiven) != kernel->scalars) {
    Napi::TypeError::New(env, what() + "takes an array of " + std::to_string(spanCount) + " arrays and an array of " +
                                  std::to_string(kernel->scalars) + " numbers")
        .ThrowAsJavaScriptException();
    return nullptr;
  }
  // Every element first: reading one may run a getter, which must not run once a span's memory is taken.
  napi_value scalarValues[8], spanValues[5];
  for (int i = 0; i < kernel->scalars; i++) {
    if (napi_get_element(env, argv[2], i, &scalarValues[i]) != napi_ok) return nullptr; // a getter threw: its exception is pending
  }
  for (int i = 0; i < spanCount; i++) {
    if (napi_get_element(env, argv[1], i, &spanValues[i]) != napi_ok) return nullptr;
  }
  double scalars[8] = {0};
  for (int i = 0; i < kernel->scalars; i++) {
    if (napi_get_value_double(env, scalarValues[i], &scalars[i]) != napi_ok) {
      Napi::TypeError::New(env, what() + "scalar " + std::to_string(i) + " must be a number").ThrowAsJavaScriptException();
      return nullptr;
    }
  }
  void* spans[5] = {nullptr};
  for (int i = 0; i < spanCount; i++) {
    const char* spanName = kernel->spans[i];
    napi_value v = spanValues[i];
    napi_valuetype type;
    if (napi_typeof(env, v, &type) != napi_ok) return nullptr;
    if (type == napi_null && (kernel->optional >> i & 1)) continue;
    const bool float64 = kernel->float64 >> i & 1;
    napi_typedarray_type arrayType;
    size_t length = 0;
    void* data = nullptr;
    bool typed = false;
    if (napi_is_typedarray(env, v, &typed) != napi_ok || !typed ||
        napi_get_typedarray_info(env, v, &arrayType, &length, &data, nullptr, nullptr) != napi_ok ||
        arrayType != (float64 ? napi_float64_array : napi_float32_array)) {
      Napi::TypeError::New(env, what() + spanName + (float64 ? " must be a Float64Array" : " must be a Float32Array") +
                                    ((kernel->optional >> i & 1) ? " or null" : ""))
          .ThrowAsJavaScriptException();
      return nullptr;
    }
    const double need = kernel->need(i, scalars, static_cast<double>(total));
    if (need < 0) {
      Napi::RangeError::New(env, what() + "invalid sizes for " + std::to_string(total) + " units").ThrowAsJavaScriptException();
      return nullptr;
    }
    if (static_cast<double>(length) < need) {
      Napi::RangeError::New(env, what() + spanName + " has " + std::to_string(length) + " values, the call needs " +
                                     std::to_string(static_cast<int64_t>(need)))
          .ThrowAsJavaScriptException();
      return nullptr;
    }
    spans[i] = data;
  }
  if (total == 0) return nullptr;
#ifdef SUPRA_X86
  RangeWork work(*kernel, spans, scalars, total, grain);
  RunShared(work);
#endif
  return nullptr;
}

napi_value RangeKernelNames(napi_env env, napi_callback_info) {
  const std::vector<const char*> names = supra::RangeKernelNames();
  napi_value array;
  napi_create_array_with_length(env, names.size(), &array);
  for (size_t i = 0; i < names.size(); i++) {
    napi_value s;
    napi_create_string_utf8(env, names[i], NAPI_AUTO_LENGTH, &s);
    napi_set_element(env, array, static_cast<uint32_t>(i), s);
  }
  return array;
}

// ---------------------------------------------------------------- read bandwidth
//
// The machine's memory read bandwidth, the bound of a memory-bound decode (the scale benchmark's): a buffer
// of `bytes` outside the JS heap, committed before timing, read by ReadSum on the calling thread alone or
// with the helper thread (the two threads decoding products run on), in items of kReadItemBytes that
// whichever thread is free takes. Each pass's GB/s is bytes / its wall time.

constexpr int64_t kReadItemBytes = 4 << 20;

class ReadWork : public SharedWork {
 public:
  ReadWork(const char* data, int64_t bytes)
      : SharedWork((bytes + kReadItemBytes - 1) / kReadItemBytes, true), data_(data), bytes_(bytes), sums_(items()) {}
  // Wraps modulo 2^64 like ReadSum's own adds, so the order of the items does not matter.
  uint64_t Sum() const {
    uint64_t s = 0;
    for (uint64_t x : sums_) s += x;
    return s;
  }

 protected:
  void Do(int64_t item, int) override {
    const int64_t lo = item * kReadItemBytes;
    sums_[item] = supra::ReadSum(data_ + lo, std::min(kReadItemBytes, bytes_ - lo));
  }

 private:
  const char* data_;
  const int64_t bytes_;
  std::vector<uint64_t> sums_;
};

// readBandwidth(bytes, threads, passes) -> { bytes, threads, kernel, passes: GB/s of each pass }; bytes is
// rounded up to a multiple of 256, threads is 1 (this thread) or 2 (this thread and the helper).
napi_value ReadBandwidth(napi_env env, napi_callback_info cbinfo) {
  const char* name = "readBandwidth";
  napi_value argv[3];
  int64_t bytes, threads, passes;
  if (!ReadArgs(env, cbinfo, name, 3, argv) || !ReadCount(env, argv[0], name, "bytes", 1, &bytes) ||
      !ReadCount(env, argv[1], name, "threads", 1, &threads) || !ReadCount(env, argv[2], name, "passes", 1, &passes)) {
    return nullptr;
  }
  if (threads > 2) {
    Napi::RangeError::New(env, "supra native readBandwidth: threads must be 1 or 2 (this thread and the helper), got " +
                                   std::to_string(threads))
        .ThrowAsJavaScriptException();
    return nullptr;
  }
  bytes = (bytes + supra::kReadSumAlign - 1) / supra::kReadSumAlign * supra::kReadSumAlign;
  char* data = static_cast<char*>(std::aligned_alloc(4096, static_cast<size_t>((bytes + 4095) / 4096 * 4096)));
  if (!data) {
    Napi::Error::New(env, "supra native readBandwidth: cannot allocate " + std::to_string(bytes) + " bytes")
        .ThrowAsJavaScriptException();
    return nullptr;
  }
  std::memset(data, 1, static_cast<size_t>(bytes)); // commits every page before timing
  // every 64-bit word is 0x0101010101010101: a pass that skipped a load would sum to something else
  const uint64_t expected = static_cast<uint64_t>(bytes / 8) * 0x0101010101010101ULL;
  napi_value results;
  napi_create_array_with_length(env, static_cast<size_t>(passes), &results);
  HelperThread& helper = Helper();
  std::lock_guard<std::mutex> lock(helper.busy());
  for (int64_t pass = 0; pass < passes; pass++) {
    ReadWork work(data, bytes);
    const auto t0 = std::chrono::steady_clock::now();
    if (threads == 2) helper.Run(work);
    else work.Drain(0);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (work.Sum() != expected) {
      std::free(data);
      Napi::Error::New(env, "supra native readBandwidth: the read loop's sum is wrong (a load was skipped)")
          .ThrowAsJavaScriptException();
      return nullptr;
    }
    napi_value gbs;
    napi_create_double(env, static_cast<double>(bytes) / seconds / 1e9, &gbs);
    napi_set_element(env, results, static_cast<uint32_t>(pass), gbs);
  }
  std::free(data);
  Napi::Object out = Napi::Object::New(env);
  out.Set("bytes", Napi::Number::New(env, static_cast<double>(bytes)));
  out.Set("threads", Napi::Number::New(env, static_cast<double>(threads)));
  out.Set("kernel", Napi::String::New(env, supra::ReadSumKernel()));
  out.Set("passes", Napi::Value(env, results));
  return out;
}

// Which kernels OpenBLAS picked (OPENBLAS_CORETYPE or CPU detection) and how many threads it uses.
Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("corename", Napi::String::New(env, openblas_get_corename()));
  out.Set("config", Napi::String::New(env, openblas_get_config()));
  out.Set("threads", Napi::Number::New(env, openblas_get_num_threads()));
  out.Set("procs", Napi::Number::New(env, openblas_get_num_procs()));
  // 0: single-threaded build, 1: pthreads, 2: OpenMP
  out.Set("parallel", Napi::Number::New(env, openblas_get_parallel()));
#ifdef SUPRA_X86
  out.Set("decodeKernel", Napi::String::New(env, HaveAvx512() ? "avx512" : HaveAvx2Fma() ? "avx2" : "none"));
  const supra::CpuTuning& tuning = supra::CpuTuningNow();
  Napi::Object tuned = Napi::Object::New(env);
  tuned.Set("vendor", Napi::String::New(env, tuning.vendor));
  tuned.Set("bf16DecodePrefetch", Napi::String::New(env, tuning.bf16DecodePrefetch == supra::kPrefetchNta ? "nta" : "l1l2"));
  tuned.Set("stepAloneFloats", Napi::Number::New(env, static_cast<double>(tuning.stepAloneFloats)));
  tuned.Set("passPrefetch", Napi::String::New(env, tuning.passPrefetch ? "l1l2" : "none"));
  out.Set("cpuTuning", tuned);
#else
  out.Set("decodeKernel", Napi::String::New(env, "none"));
#endif
  out.Set("smallKernel", Napi::String::New(env, VectorKernelName(smallKernelOn, smallIsa)));
  out.Set("elementwiseKernels", Napi::String::New(env, VectorKernelName(elementwiseOn, elementwiseIsa)));
  out.Set("bf16Products", Napi::String::New(env, bf16ProductsOn ? Bf16KernelName(bf16Kernel) : "off"));
  // slowest first: the last is the default
  Napi::Array kernels = Napi::Array::New(env);
  for (const supra::Bf16Kernel kernel : kBf16Kernels) {
    if (HaveBf16Kernel(kernel)) kernels.Set(kernels.Length(), Bf16KernelName(kernel));
  }
  out.Set("bf16Kernels", kernels);
  return out;
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "supra native setThreads: expected one number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const double want = info[0].As<Napi::Number>().DoubleValue();
  if (!(want >= 1 && want <= 1024 && std::floor(want) == want)) {
    Napi::RangeError::New(env, "supra native setThreads: thread count must be an integer in [1, 1024], got " +
                                   std::to_string(want))
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  openblas_set_num_threads(static_cast<int>(want));
  return Napi::Number::New(env, openblas_get_num_threads());
}

// useSmallKernel(on[, kernel]) (batched small products on the add-on's kernel, else on OpenBLAS) and
// useElementwiseKernels(on[, kernel]) (the elementwise kernels callable): kernels written for both vector
// widths, on the widest the CPU has unless kernel ("avx512" or "avx2") names one; a width the CPU lacks leaves
// them off. Returns whether they are on.
Napi::Value UseVectorKernels(const Napi::CallbackInfo& info, const char* fn, bool* on, supra::VectorIsa* isa) {
  Napi::Env env = info.Env();
  const bool named = info.Length() == 2 && info[1].IsString();
  if (info.Length() < 1 || info.Length() > 2 || !info[0].IsBoolean() || (info.Length() == 2 && !named)) {
    Napi::TypeError::New(env, std::string("supra native ") + fn + ": expected a boolean and an optional kernel name").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const std::string name = named ? info[1].As<Napi::String>().Utf8Value() : std::string(HaveAvx512() ? "avx512" : "avx2");
  if (name != "avx512" && name != "avx2") {
    Napi::TypeError::New(env, std::string("supra native ") + fn + ": kernel must be \"avx512\" or \"avx2\", got \"" + name + "\"")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const bool wide = name == "avx512";
  *on = info[0].As<Napi::Boolean>().Value() && (wide ? HaveAvx512() : HaveAvx2Fma());
  if (*on) *isa = wide ? supra::VectorIsa::kAvx512 : supra::VectorIsa::kAvx2;
  return Napi::Boolean::New(env, *on);
}
Napi::Value UseSmallKernel(const Napi::CallbackInfo& info) { return UseVectorKernels(info, "useSmallKernel", &smallKernelOn, &smallIsa); }
Napi::Value UseElementwiseKernels(const Napi::CallbackInfo& info) {
  return UseVectorKernels(info, "useElementwiseKernels", &elementwiseOn, &elementwiseIsa);
}

// useBf16Products(on[, kernel]): large products at BF16 precision, on the fastest kernel the CPU has unless
// kernel ("amx", "avx512bf16" or "rounded") says which; returns whether they are on (false for a kernel the
// CPU lacks).
Napi::Value UseBf16Products(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const bool named = info.Length() == 2 && info[1].IsString();
  if (info.Length() < 1 || info.Length() > 2 || !info[0].IsBoolean() || (info.Length() == 2 && !named)) {
    Napi::TypeError::New(env, "supra native useBf16Products: expected a boolean and an optional kernel name").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  // the one named, else the fastest the CPU has (the last available)
  const std::string name = named ? info[1].As<Napi::String>().Utf8Value() : std::string();
  supra::Bf16Kernel kernel = supra::Bf16Kernel::kRounded;
  bool known = !named;
  for (const supra::Bf16Kernel k : kBf16Kernels) {
    if (named ? name == Bf16KernelName(k) : HaveBf16Kernel(k)) {
      kernel = k;
      known = true;
    }
  }
  if (!known) {
    Napi::TypeError::New(env, "supra native useBf16Products: kernel must be \"amx\", \"avx512bf16\" or \"rounded\", got \"" + name + "\"")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  bf16ProductsOn = HaveBf16Kernel(kernel) && info[0].As<Napi::Boolean>().Value();
  if (bf16ProductsOn) bf16Kernel = kernel;
  return Napi::Boolean::New(env, bf16ProductsOn);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  napi_value sgemm;
  napi_create_function(env, "sgemm", NAPI_AUTO_LENGTH, Sgemm, nullptr, &sgemm);
  exports.Set("sgemm", Napi::Value(env, sgemm));
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("useSmallKernel", Napi::Function::New(env, UseSmallKernel, "useSmallKernel"));
  exports.Set("useElementwiseKernels", Napi::Function::New(env, UseElementwiseKernels, "useElementwiseKernels"));
  exports.Set("useBf16Products", Napi::Function::New(env, UseBf16Products, "useBf16Products"));
  for (auto [name, fn] : {std::pair<const char*, napi_callback>{"crossEntropy", CrossEntropy}, {"swiglu", Swiglu},
                          {"swigluBackward", SwigluBackward}, {"gemmBf16", GemmBf16}, {"gemmInt8", GemmInt8}, {"gemmShared", GemmShared}, {"decodeMlpBlock", DecodeMlpBlock}, {"fusedRecurrentLayerStep", FusedRecurrentLayerStep}, {"quantizeInt8", QuantizeInt8},
                          {"readBandwidth", ReadBandwidth}, {"sgemmFused", SgemmFused}, {"linearAttentionStep", LinearAttentionStep}, {"fusedRecurrentStep", FusedRecurrentStep}, {"adamwFused", AdamwFused},
                          {"sumSquares", SumSquares}, {"scale", Scale}, {"embeddingBackward", EmbeddingBackward},
                          {"adviseHugePages", AdviseHugePages}, {"rangeKernel", RangeKernelCall},
                          {"rangeKernelNames", RangeKernelNames}}) {
    napi_value f;
    napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, nullptr, &f);
    exports.Set(name, Napi::Value(env, f));
  }
  return exports;
}

} // namespace

NODE_API_MODULE(supra_native, Init)
