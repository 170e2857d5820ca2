// supra's native backend: row-major sgemm on Float32Arrays through OpenBLAS's cblas_sgemm.
//
// One call computes C = alpha * op(A) * op(B) + beta * C for `batch` products, reading and writing the
// callers' arrays in place. The arrays may live on an ordinary ArrayBuffer or on the arena's
// SharedArrayBuffer (a shared WebAssembly.Memory); napi_get_typedarray_info hands back the data
// pointer for both. Every argument is checked here, so a bad call throws a RangeError/TypeError
// naming the problem instead of letting BLAS read or write out of bounds.
//
// JS side: sgemm(transA, transB, m, n, k, alpha, beta, a, lda, strideA, b, ldb, strideB, c, ldc, strideC, batch)
// (src/core/native/backend.ts fills in the defaults), info(), setThreads(n).

#include <napi.h>
#include <cblas.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SUPRA_X86 1
#endif

namespace {

constexpr int kDecodeRows = 4; // products of at most this many rows run on DotRows* (src/core/native/backend.ts)

constexpr double kMaxBlasInt = 2147483647.0; // Debian's OpenBLAS uses 32-bit integers

// Raw N-API calls on the hot path: one call per argument, no wrapper objects.
bool ReadNumber(napi_env env, napi_value v, const char* name, double* out) {
  if (napi_get_value_double(env, v, out) != napi_ok) {
    Napi::TypeError::New(env, std::string("supra native sgemm: ") + name + " must be a number")
        .ThrowAsJavaScriptException();
    return false;
  }
  return true;
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
    Napi::TypeError::New(env, std::string("supra native sgemm: ") + name + " must be a Float32Array")
        .ThrowAsJavaScriptException();
    return false;
  }
  out->data = static_cast<float*>(data);
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

// Decoding products: C[i, j] = alpha * A[i, :] . B[j, :] + beta * C[i, j] for a few rows of A (one per
// sequence) and B a weight stored n x k, with AVX-512 or AVX2+FMA (picked at load). One thread, one pass
// over B: each weight row is used by every row of A while it is in L1. OpenBLAS's sgemv would wake its
// threads for every product of a decoding step, which costs more than the product on a shared 2-core
// machine; the wasm kernels' 128-bit SIMD reads B at half the width.
#ifdef SUPRA_X86
__attribute__((target("avx2,fma"))) void DotRowsAvx2(int m, int n, int k, float alpha, float beta, const float* A,
                                                     int lda, const float* B, int ldb, float* C, int ldc) {
  for (int j = 0; j < n; j++) {
    const float* b = B + static_cast<int64_t>(j) * ldb;
    for (int i = 0; i < m; i++) {
      const float* a = A + static_cast<int64_t>(i) * lda;
      __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
      int p = 0;
      for (; p + 32 <= k; p += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + p), _mm256_loadu_ps(b + p), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + p + 8), _mm256_loadu_ps(b + p + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + p + 16), _mm256_loadu_ps(b + p + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + p + 24), _mm256_loadu_ps(b + p + 24), s3);
      }
      for (; p + 8 <= k; p += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + p), _mm256_loadu_ps(b + p), s0);
      const __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
      __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
      h = _mm_add_ps(h, _mm_movehl_ps(h, h));
      h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
      float sum = _mm_cvtss_f32(h);
      for (; p < k; p++) sum += a[p] * b[p];
      float* c = C + static_cast<int64_t>(i) * ldc + j;
      *c = beta == 0 ? alpha * sum : alpha * sum + beta * *c;
    }
  }
}

__attribute__((target("avx512f"))) void DotRowsAvx512(int m, int n, int k, float alpha, float beta, const float* A,
                                                     int lda, const float* B, int ldb, float* C, int ldc) {
  for (int j = 0; j < n; j++) {
    const float* b = B + static_cast<int64_t>(j) * ldb;
    for (int i = 0; i < m; i++) {
      const float* a = A + static_cast<int64_t>(i) * lda;
      __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
      int p = 0;
      for (; p + 32 <= k; p += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + p), _mm512_loadu_ps(b + p), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + p + 16), _mm512_loadu_ps(b + p + 16), s1);
      }
      for (; p + 16 <= k; p += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + p), _mm512_loadu_ps(b + p), s0);
      float sum = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
      for (; p < k; p++) sum += a[p] * b[p];
      float* c = C + static_cast<int64_t>(i) * ldc + j;
      *c = beta == 0 ? alpha * sum : alpha * sum + beta * *c;
    }
  }
}
const bool kHaveAvx512 = __builtin_cpu_supports("avx512f");
const bool kHaveAvx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif

// Batched small products: the chunked linear attention's per-head products (64 x 64 x 64 in training,
// B*H of them per call). OpenBLAS keeps a product this small on one thread (it is under its threading
// threshold) and packs both operands for every entry, so one core idles through about a tenth of a
// training step. Here each entry is one AVX-512 pass -- op(B) packed once as k rows of n floats, op(A)
// broadcast from where it is stored, up to 6 rows x 64 columns of C held in registers -- and the entries
// are shared between the calling thread and one helper thread (SmallBatchRunner). Each C value is summed
// over k in order with one FMA per term, as OpenBLAS's kernels do.
constexpr int kSmallMaxDim = 128; // m, n, k at most this (the pack buffer holds k x n floats)

#ifdef SUPRA_X86
template <int MR, int NV>
__attribute__((target("avx512f"), always_inline)) inline void SmallTile(int k, const float* A, int64_t rowStep,
                                                                        int64_t colStep, const float* P, int np,
                                                                        float* C, int ldc, float alpha, float beta,
                                                                        __mmask16 lastMask) {
  __m512 acc[MR][NV];
  _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {
    _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();
  }
  for (int p = 0; p < k; p++) {
    __m512 b[NV];
    _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) b[v] = _mm512_loadu_ps(P + static_cast<int64_t>(p) * np + 16 * v);
    _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {
      const __m512 a = _mm512_set1_ps(A[r * rowStep + p * colStep]);
      _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(a, b[v], acc[r][v]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  for (int r = 0; r < MR; r++) {
    float* c = C + static_cast<int64_t>(r) * ldc;
    for (int v = 0; v < NV; v++) {
      const __mmask16 mask = v == NV - 1 ? lastMask : static_cast<__mmask16>(0xFFFF);
      __m512 x = alpha == 1.0f ? acc[r][v] : _mm512_mul_ps(va, acc[r][v]);
      if (beta != 0) {
        const __m512 old = _mm512_maskz_loadu_ps(mask, c + 16 * v);
        x = _mm512_add_ps(x, beta == 1.0f ? old : _mm512_mul_ps(vb, old));
      }
      _mm512_mask_storeu_ps(c + 16 * v, mask, x);
    }
  }
}

// Rows of C for one band of up to 64 columns (NV vectors of 16), MR rows at a time: MR x NV accumulators
// plus NV loads of B fit the 32 registers.
template <int NV>
__attribute__((target("avx512f"))) void SmallRows(int m, int k, const float* A, int64_t rowStep, int64_t colStep,
                                                  const float* P, int np, float* C, int ldc, float alpha, float beta,
                                                  __mmask16 lastMask) {
  constexpr int MR = NV == 4 ? 6 : NV == 3 ? 8 : 12;
  int i = 0;
  for (; i + MR <= m; i += MR) {
    SmallTile<MR, NV>(k, A + i * rowStep, rowStep, colStep, P, np, C + static_cast<int64_t>(i) * ldc, ldc, alpha,
                      beta, lastMask);
  }
  for (; i < m; i++) {
    SmallTile<1, NV>(k, A + i * rowStep, rowStep, colStep, P, np, C + static_cast<int64_t>(i) * ldc, ldc, alpha,
                     beta, lastMask);
  }
}

// out (cols x rows, packed) = the transpose of in (rows x cols, leading dimension ld), 8 x 8 blocks in
// registers: op(B) of a product with transB, packed as rows.
__attribute__((target("avx2"))) void TransposeInto(const float* in, int ld, int rows, int cols, float* out) {
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

// One small product (m, n, k <= kSmallMaxDim, all >= 1); pack holds kSmallMaxDim^2 floats.
__attribute__((target("avx512f"))) void SmallGemmAvx512(bool transA, bool transB, int m, int n, int k, float alpha,
                                                        float beta, const float* A, int lda, const float* B, int ldb,
                                                        float* C, int ldc, float* pack) {
  if (transB) {
    TransposeInto(B, ldb, n, k, pack);
  } else {
    for (int p = 0; p < k; p++) std::memcpy(pack + static_cast<int64_t>(p) * n, B + static_cast<int64_t>(p) * ldb, sizeof(float) * n);
  }
  // op(A)[i, p] is at A[i * rowStep + p * colStep]
  const int64_t rowStep = transA ? 1 : lda, colStep = transA ? lda : 1;
  for (int j0 = 0; j0 < n; j0 += 64) {
    const int width = n - j0 < 64 ? n - j0 : 64;
    const int nv = (width + 15) / 16;
    const __mmask16 lastMask = static_cast<__mmask16>((1u << (width - 16 * (nv - 1))) - 1);
    const float* P = pack + j0;
    float* Cj = C + j0;
    switch (nv) {
      case 4: SmallRows<4>(m, k, A, rowStep, colStep, P, n, Cj, ldc, alpha, beta, lastMask); break;
      case 3: SmallRows<3>(m, k, A, rowStep, colStep, P, n, Cj, ldc, alpha, beta, lastMask); break;
      case 2: SmallRows<2>(m, k, A, rowStep, colStep, P, n, Cj, ldc, alpha, beta, lastMask); break;
      default: SmallRows<1>(m, k, A, rowStep, colStep, P, n, Cj, ldc, alpha, beta, lastMask); break;
    }
  }
}
const bool kHaveSmallKernel = kHaveAvx512;
#else
const bool kHaveSmallKernel = false;
#endif

// One batched call's products, taken one entry at a time by whichever thread is free (a thread the OS
// has put aside leaves its share to the other).
struct SmallBatch {
  bool transA, transB;
  int m, n, k;
  float alpha, beta;
  const float* a;
  int lda;
  int64_t strideA;
  const float* b;
  int ldb;
  int64_t strideB;
  float* c;
  int ldc;
  int64_t strideC;
  int64_t batch;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> left{0};

  void Work(float* pack) {
#ifdef SUPRA_X86
    for (int64_t i = next.fetch_add(1, std::memory_order_relaxed); i < batch; i = next.fetch_add(1, std::memory_order_relaxed)) {
      SmallGemmAvx512(transA, transB, m, n, k, alpha, beta, a + i * strideA, lda, b + i * strideB, ldb,
                      c + i * strideC, ldc, pack);
      left.fetch_sub(1, std::memory_order_release);
    }
#else
    (void)pack;
#endif
  }
};

// The helper thread for SmallBatch: after a batch it spins briefly, since the attention's products come
// back to back, then sleeps. The caller waits for the helper to acknowledge every batch it posts, so a
// batch is never reused while the helper still reads it.
class SmallBatchRunner {
 public:
  SmallBatchRunner() : thread_([this] { Loop(); }) {}
  ~SmallBatchRunner() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_.store(true, std::memory_order_relaxed);
    }
    cv_.notify_one();
    thread_.join();
  }

  // Runs every entry of `job` on this thread and the helper; returns when all are written.
  void Run(SmallBatch& job) {
    job.next.store(0, std::memory_order_relaxed);
    job.left.store(job.batch, std::memory_order_relaxed);
    job_ = &job;
    const uint64_t g = posted_.load(std::memory_order_relaxed) + 1;
    {
      std::lock_guard<std::mutex> lock(mu_); // the helper checks posted_ under the lock before it sleeps
      posted_.store(g, std::memory_order_release);
    }
    cv_.notify_one();
    job.Work(callerPack_);
    for (uint32_t spin = 0; job.left.load(std::memory_order_acquire) != 0 || acked_.load(std::memory_order_acquire) != g; spin++) {
      if ((spin & 1023) == 1023) std::this_thread::yield();
      else Pause();
    }
  }

  // One caller at a time: the add-on may be called from several threads.
  std::mutex& busy() { return busy_; }

 private:
  static void Pause() {
#ifdef SUPRA_X86
    _mm_pause();
#endif
  }

  void Loop() {
    uint64_t seen = 0;
    for (;;) {
      // spin ~50 us for the next batch, then sleep
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
      uint32_t spin = 0;
      while (posted_.load(std::memory_order_acquire) == seen && !stop_.load(std::memory_order_relaxed)) {
        if ((++spin & 255) == 0 && std::chrono::steady_clock::now() > until) {
          std::unique_lock<std::mutex> lock(mu_);
          cv_.wait(lock, [&] { return stop_.load(std::memory_order_relaxed) || posted_.load(std::memory_order_relaxed) != seen; });
          break;
        }
        Pause();
      }
      if (stop_.load(std::memory_order_relaxed)) return;
      seen = posted_.load(std::memory_order_acquire);
      job_->Work(helperPack_);
      acked_.store(seen, std::memory_order_release);
    }
  }

  float callerPack_[kSmallMaxDim * kSmallMaxDim];
  float helperPack_[kSmallMaxDim * kSmallMaxDim];
  SmallBatch* job_ = nullptr;
  std::atomic<uint64_t> posted_{0};
  std::atomic<uint64_t> acked_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::mutex busy_;
  std::thread thread_;
};

bool smallKernelOn = kHaveSmallKernel; // useSmallKernel(false) turns it off (tests, A/B runs)

SmallBatchRunner& Runner() {
  static SmallBatchRunner runner; // its thread starts with the first batched small product
  return runner;
}

// Batched products small enough for SmallGemmAvx512, when there are two threads to share them (decoding
// shapes keep their own path; SUPRA_THREADS=1 keeps everything on one thread, through OpenBLAS). Entries
// must write apart: with strideC 0 (dW summed over the batch) they run one after another, in order.
bool UseSmallBatch(int64_t m, int64_t n, int64_t k, int64_t ldc, int64_t strideC, int64_t batch) {
  return smallKernelOn && batch >= 2 && m > kDecodeRows && m <= kSmallMaxDim && n >= 1 && n <= kSmallMaxDim &&
         k >= 1 && k <= kSmallMaxDim && strideC >= (m - 1) * ldc + n && openblas_get_num_threads() >= 2;
}

// One product. Single-row and single-column products go to sgemv: decode steps are made of them, and
// OpenBLAS's gemm driver would pack a whole operand for one row of output.
void GemmOne(bool transA, bool transB, int m, int n, int k, float alpha, float beta, const float* A, int lda,
             const float* B, int ldb, float* C, int ldc) {
#ifdef SUPRA_X86
  if (k > 0 && m <= kDecodeRows && transB && !transA) {
    if (kHaveAvx512) return DotRowsAvx512(m, n, k, alpha, beta, A, lda, B, ldb, C, ldc);
    if (kHaveAvx2) return DotRowsAvx2(m, n, k, alpha, beta, A, lda, B, ldb, C, ldc);
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

napi_value Sgemm(napi_env env, napi_callback_info cbinfo) {
  constexpr size_t kArgs = 17;
  size_t argc = kArgs;
  napi_value argv[kArgs];
  napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr);
  if (argc != kArgs) {
    Napi::TypeError::New(env, "supra native sgemm: expected 17 arguments, got " + std::to_string(argc))
        .ThrowAsJavaScriptException();
    return nullptr;
  }
  bool transA, transB;
  int64_t m, n, k, lda, ldb, ldc, strideA, strideB, strideC, batch;
  double alpha, beta;
  F32View a, b, c;
  if (!ReadBool(env, argv[0], "transA", &transA) || !ReadBool(env, argv[1], "transB", &transB) ||
      !ReadDim(env, argv[2], "m", &m) || !ReadDim(env, argv[3], "n", &n) || !ReadDim(env, argv[4], "k", &k) ||
      !ReadNumber(env, argv[5], "alpha", &alpha) || !ReadNumber(env, argv[6], "beta", &beta) ||
      !ReadF32(env, argv[7], "a", &a) || !ReadDim(env, argv[8], "lda", &lda) ||
      !ReadStride(env, argv[9], "strideA", &strideA) || !ReadF32(env, argv[10], "b", &b) ||
      !ReadDim(env, argv[11], "ldb", &ldb) || !ReadStride(env, argv[12], "strideB", &strideB) ||
      !ReadF32(env, argv[13], "c", &c) || !ReadDim(env, argv[14], "ldc", &ldc) ||
      !ReadStride(env, argv[15], "strideC", &strideC) || !ReadDim(env, argv[16], "batch", &batch)) {
    return nullptr;
  }
  // Stored shapes: A is m x k (k x m when transposed), B is k x n (n x k), C is m x n.
  int64_t extentA, extentB, extentC;
  if (!CheckOperand(env, "A", a, transA ? k : m, transA ? m : k, lda, strideA, batch, &extentA) ||
      !CheckOperand(env, "B", b, transB ? n : k, transB ? k : n, ldb, strideB, batch, &extentB) ||
      !CheckOperand(env, "C", c, m, n, ldc, strideC, batch, &extentC)) {
    return nullptr;
  }
  if (extentC == 0) return nullptr; // nothing to write
  // BLAS forbids C aliasing an input; the result would silently be wrong.
  if (Overlaps(c.data, extentC, a.data, extentA) || Overlaps(c.data, extentC, b.data, extentB)) {
    Napi::RangeError::New(env, "supra native sgemm: C overlaps A or B in memory")
        .ThrowAsJavaScriptException();
    return nullptr;
  }
  // BLAS wants every leading dimension >= 1, even when that operand is empty (k = 0).
  if (lda < 1) lda = 1;
  if (ldb < 1) ldb = 1;
  if (ldc < 1) ldc = 1;
  if (UseSmallBatch(m, n, k, ldc, strideC, batch)) {
    SmallBatchRunner& runner = Runner();
    std::unique_lock<std::mutex> lock(runner.busy(), std::try_to_lock);
    if (lock.owns_lock()) {
      SmallBatch job;
      job.transA = transA;
      job.transB = transB;
      job.m = static_cast<int>(m);
      job.n = static_cast<int>(n);
      job.k = static_cast<int>(k);
      job.alpha = static_cast<float>(alpha);
      job.beta = static_cast<float>(beta);
      job.a = a.data;
      job.lda = static_cast<int>(lda);
      job.strideA = strideA;
      job.b = b.data;
      job.ldb = static_cast<int>(ldb);
      job.strideB = strideB;
      job.c = c.data;
      job.ldc = static_cast<int>(ldc);
      job.strideC = strideC;
      job.batch = batch;
      runner.Run(job);
      return nullptr;
    }
  }
  for (int64_t i = 0; i < batch; i++) {
    GemmOne(transA, transB, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k),
            static_cast<float>(alpha), static_cast<float>(beta), a.data + i * strideA, static_cast<int>(lda),
            b.data + i * strideB, static_cast<int>(ldb), c.data + i * strideC, static_cast<int>(ldc));
  }
  return nullptr;
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
  out.Set("decodeKernel", Napi::String::New(env, kHaveAvx512 ? "avx512" : kHaveAvx2 ? "avx2" : "none"));
#else
  out.Set("decodeKernel", Napi::String::New(env, "none"));
#endif
  out.Set("smallKernel", Napi::String::New(env, smallKernelOn ? "avx512" : kHaveSmallKernel ? "off" : "none"));
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

// useSmallKernel(on): batched small products on SmallGemmAvx512 (when the CPU has it) or on OpenBLAS.
Napi::Value UseSmallKernel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsBoolean()) {
    Napi::TypeError::New(env, "supra native useSmallKernel: expected one boolean").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  smallKernelOn = kHaveSmallKernel && info[0].As<Napi::Boolean>().Value();
  return Napi::Boolean::New(env, smallKernelOn);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  napi_value sgemm;
  napi_create_function(env, "sgemm", NAPI_AUTO_LENGTH, Sgemm, nullptr, &sgemm);
  exports.Set("sgemm", Napi::Value(env, sgemm));
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("useSmallKernel", Napi::Function::New(env, UseSmallKernel, "useSmallKernel"));
  return exports;
}

} // namespace

NODE_API_MODULE(supra_native, Init)
