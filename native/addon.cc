// supra's native backend: row-major sgemm on Float32Arrays through OpenBLAS's cblas_sgemm.
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
// (src/core/native/backend.ts fills in the defaults), crossEntropy, swiglu, swigluBackward (BackendKernels
// in src/core/backend.ts), info(), setThreads(n), useSmallKernel(on), useElementwiseKernels(on).

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
#include <utility>
#include <vector>

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
// are shared between the calling thread and one helper thread (HelperThread). Each C value is summed
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

// Work shared by the calling thread and one helper thread, item by item: whichever thread is free takes
// the next item, so a thread the OS has put aside leaves its share to the other.
class SharedWork {
 public:
  explicit SharedWork(int64_t items) : items_(items), left_(items) {}
  virtual ~SharedWork() = default;
  // Takes items until none are left; worker 0 is the calling thread, 1 the helper.
  void Drain(int worker) {
    for (int64_t i = next_.fetch_add(1, std::memory_order_relaxed); i < items_;
         i = next_.fetch_add(1, std::memory_order_relaxed)) {
      Do(i, worker);
      left_.fetch_sub(1, std::memory_order_release);
    }
  }
  bool Finished() const { return left_.load(std::memory_order_acquire) == 0; }
  int64_t items() const { return items_; }

 protected:
  virtual void Do(int64_t item, int worker) = 0;

 private:
  const int64_t items_;
  std::atomic<int64_t> next_{0};
  std::atomic<int64_t> left_;
};

// The helper thread: after a job it spins briefly, since the attention's products and the kernels come
// back to back, then sleeps. The caller waits for the helper to acknowledge every job it posts, so a job
// is never freed while the helper still reads it.
class HelperThread {
 public:
  HelperThread() : thread_([this] { Loop(); }) {}
  ~HelperThread() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_.store(true, std::memory_order_relaxed);
    }
    cv_.notify_one();
    thread_.join();
  }

  // Runs every item of `work` on this thread and the helper; returns when all are done. The caller
  // holds busy().
  void Run(SharedWork& work) {
    work_ = &work;
    const uint64_t g = posted_.load(std::memory_order_relaxed) + 1;
    {
      std::lock_guard<std::mutex> lock(mu_); // the helper checks posted_ under the lock before it sleeps
      posted_.store(g, std::memory_order_release);
    }
    cv_.notify_one();
    work.Drain(0);
    for (uint32_t spin = 0; !work.Finished() || acked_.load(std::memory_order_acquire) != g; spin++) {
      if ((spin & 1023) == 1023) std::this_thread::yield();
      else Pause();
    }
  }

  // One job at a time: the add-on may be called from several threads.
  std::mutex& busy() { return busy_; }
  // Scratch for SmallGemmAvx512, one per worker; only while holding busy().
  float* pack(int worker) { return worker == 0 ? callerPack_ : helperPack_; }

 private:
  static void Pause() {
#ifdef SUPRA_X86
    _mm_pause();
#endif
  }

  void Loop() {
    uint64_t seen = 0;
    for (;;) {
      // spin ~50 us for the next job, then sleep
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
      work_->Drain(1);
      acked_.store(seen, std::memory_order_release);
    }
  }

  float callerPack_[kSmallMaxDim * kSmallMaxDim];
  float helperPack_[kSmallMaxDim * kSmallMaxDim];
  SharedWork* work_ = nullptr;
  std::atomic<uint64_t> posted_{0};
  std::atomic<uint64_t> acked_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::mutex busy_;
  std::thread thread_;
};

HelperThread& Helper() {
  static HelperThread helper; // its thread starts with the first job
  return helper;
}

// Two threads when OpenBLAS may use two (SUPRA_THREADS=1 keeps the add-on on one).
bool TwoThreads() { return openblas_get_num_threads() >= 2; }

// Runs `work` on this thread and, when two threads are wanted, there is more than one item and the helper
// is free, the helper. (One item: a decoding step's swiglu, where waking the helper costs more than the
// work; the wasm runtime's chunks keep a single chunk under 64 Ki float touches the same way.)
void RunShared(SharedWork& work) {
  if (work.items() > 1 && TwoThreads()) {
    HelperThread& helper = Helper();
    std::unique_lock<std::mutex> lock(helper.busy(), std::try_to_lock);
    if (lock.owns_lock()) {
      helper.Run(work);
      return;
    }
  }
  work.Drain(0);
}

// One batched call's products, an item per entry.
class SmallBatch : public SharedWork {
 public:
  SmallBatch(HelperThread& helper, bool transA, bool transB, int m, int n, int k, float alpha, float beta,
             const float* a, int lda, int64_t strideA, const float* b, int ldb, int64_t strideB, float* c, int ldc,
             int64_t strideC, int64_t batch)
      : SharedWork(batch), helper_(helper), transA_(transA), transB_(transB), m_(m), n_(n), k_(k), alpha_(alpha),
        beta_(beta), a_(a), lda_(lda), strideA_(strideA), b_(b), ldb_(ldb), strideB_(strideB), c_(c), ldc_(ldc),
        strideC_(strideC) {}

 protected:
  void Do(int64_t i, int worker) override {
#ifdef SUPRA_X86
    SmallGemmAvx512(transA_, transB_, m_, n_, k_, alpha_, beta_, a_ + i * strideA_, lda_, b_ + i * strideB_, ldb_,
                    c_ + i * strideC_, ldc_, helper_.pack(worker));
#else
    (void)i;
    (void)worker;
#endif
  }

 private:
  HelperThread& helper_;
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
};

// ---------------------------------------------------------------- wasm-exact elementwise kernels
//
// The exp-heavy kernels of a training step -- cross-entropy over the vocabulary, swiglu and its gradient --
// on 16 lanes instead of the wasm module's 4 (assembly/ops.ts, assembly/vmath.ts), operation for operation:
// the same exp polynomial with the same roundings (binding.gyp turns off FMA contraction), the same float64
// sums in the same order, the same scalar tails per chunk of [lo, hi). The results are bit for bit the
// wasm kernels' (test/native.test.ts checks it), so a run computes the same numbers on either backend.
#ifdef SUPRA_X86
// exp4 of vmath.ts. pmin(x, hi) = hi < x ? hi : x is minps(hi, x); pmax(v, lo) = v < lo ? lo : v is maxps(lo, v).
__attribute__((target("avx512f"))) inline __m512 Exp16(__m512 x) {
  const __m512 lo = _mm512_set1_ps(-87.33654f);
  const __m512 xc = _mm512_max_ps(lo, _mm512_min_ps(_mm512_set1_ps(88.0f), x));
  const __m512 magic = _mm512_set1_ps(12582912.0f);
  const __m512 t = _mm512_add_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)), magic);
  const __m512 n = _mm512_sub_ps(t, magic);
  __m512 r = _mm512_sub_ps(xc, _mm512_mul_ps(n, _mm512_set1_ps(0.693359375f)));
  r = _mm512_sub_ps(r, _mm512_mul_ps(n, _mm512_set1_ps(-2.12194440e-4f)));
  __m512 p = _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(1.9875691500e-4f), r), _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(5.0000001201e-1f));
  const __m512 r2 = _mm512_mul_ps(r, r);
  const __m512 er = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(p, r2), r), _mm512_set1_ps(1.0f));
  const __m512i scale = _mm512_add_epi32(_mm512_slli_epi32(_mm512_castps_si512(t), 23), _mm512_set1_epi32(127 << 23));
  const __m512 y = _mm512_mul_ps(er, _mm512_castsi512_ps(scale));
  const __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ); // false for NaN
  return _mm512_maskz_mov_ps(static_cast<__mmask16>(~under), y);
}

// exp1 of vmath.ts: one value through the vector path.
__attribute__((target("avx512f"))) inline float Exp1(float x) { return _mm512_cvtss_f32(Exp16(_mm512_set1_ps(x))); }

// log64 of vmath.ts.
double Log64(double x) {
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
float WasmMax(float a, float b) {
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

// rowMax of ops.ts (a maximum is a maximum in any order; NaN and the sign of a zero maximum as wasm has them).
__attribute__((target("avx512f"))) float RowMax(const float* x, int n) {
  __m512 vm = _mm512_set1_ps(-INFINITY);
  __mmask16 nan = 0;
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    vm = _mm512_max_ps(vm, v);
  }
  if (nan) return NAN;
  float m = _mm512_reduce_max_ps(vm);
  for (; i < n; i++) m = WasmMax(m, x[i]);
  if (m == 0) {
    m = -0.0f;
    for (int j = 0; j < n; j++) m = WasmMax(m, x[j]);
  }
  return m;
}

// sumExp of ops.ts: Σ e^(x − mx) in float64, the exponentials stored in out (when given). The wasm kernel
// adds (e[4g] + e[4g+2], e[4g+1] + e[4g+3]) into two float64 lanes for each group g of four, in order, then
// the two lanes, then the tail one by one.
__attribute__((target("avx512f"))) double SumExp(const float* x, int n, float mx, float* out) {
  const __m512 vm = _mm512_set1_ps(mx);
  __m128d acc = _mm_setzero_pd();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 e = Exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm));
    if (out) _mm512_storeu_ps(out + i, e);
    const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(e)); // lanes 0..7
    const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1)));
    // within each group of four: (e0 + e2, e1 + e3) in the group's first two lanes
    const __m512d pl = _mm512_add_pd(lo, _mm512_permutex_pd(lo, 0x4E));
    const __m512d ph = _mm512_add_pd(hi, _mm512_permutex_pd(hi, 0x4E));
    acc = _mm_add_pd(acc, _mm512_castpd512_pd128(pl));
    acc = _mm_add_pd(acc, _mm_castps_pd(_mm512_extractf32x4_ps(_mm512_castpd_ps(pl), 2)));
    acc = _mm_add_pd(acc, _mm512_castpd512_pd128(ph));
    acc = _mm_add_pd(acc, _mm_castps_pd(_mm512_extractf32x4_ps(_mm512_castpd_ps(ph), 2)));
  }
  for (; i + 4 <= n; i += 4) {
    float e[4];
    for (int j = 0; j < 4; j++) e[j] = Exp1(x[i + j] - mx);
    if (out) std::memcpy(out + i, e, sizeof e);
    acc = _mm_add_pd(acc, _mm_set_pd(static_cast<double>(e[1]) + static_cast<double>(e[3]),
                                     static_cast<double>(e[0]) + static_cast<double>(e[2])));
  }
  double s = _mm_cvtsd_f64(acc) + _mm_cvtsd_f64(_mm_unpackhi_pd(acc, acc));
  for (; i < n; i++) {
    const float e = Exp1(x[i] - mx);
    if (out) out[i] = e;
    s += static_cast<double>(e);
  }
  return s;
}

__attribute__((target("avx512f"))) void ScaleRow(float* x, float s, int n) {
  const __m512 vs = _mm512_set1_ps(s);
  int i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), vs));
  for (; i < n; i++) x[i] = x[i] * s;
}

// crossEntropy of ops.ts for rows [lo, hi).
double CrossEntropyRows(const float* logits, const int32_t* targets, int vocab, float* dlogits, double zLoss,
                        double inv, int64_t lo, int64_t hi) {
  double total = 0;
  for (int64_t r = lo; r < hi; r++) {
    const float* xr = logits + r * vocab;
    const int t = targets[r];
    float* dr = dlogits ? dlogits + r * vocab : nullptr;
    if (t == -100) {
      if (dr) std::memset(dr, 0, sizeof(float) * vocab);
      continue;
    }
    const float mx = RowMax(xr, vocab);
    const double sum = SumExp(xr, vocab, mx, dr);
    const double lse = static_cast<double>(mx) + Log64(sum);
    total += lse - static_cast<double>(xr[t]) + zLoss * lse * lse;
    if (dr) {
      ScaleRow(dr, static_cast<float>(((1 + 2 * zLoss * lse) * inv) / sum), vocab);
      dr[t] = dr[t] - static_cast<float>(inv);
    }
  }
  return total;
}

// sigmoid4 of ops.ts: 1 / (1 + e^(−g)).
__attribute__((target("avx512f"))) inline __m512 Sigmoid16(__m512 g) {
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 negated = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(g), _mm512_set1_epi32(INT32_MIN)));
  return _mm512_div_ps(one, _mm512_add_ps(one, Exp16(negated)));
}

// swiglu of ops.ts on [lo, hi): the body in steps of 4 from lo (here 16 at a time, then 4), the tail scalar.
__attribute__((target("avx512f"))) void SwigluRange(const float* gate, const float* up, float* out, int64_t lo, int64_t hi) {
  const int64_t body = lo + (hi - lo) / 4 * 4;
  int64_t i = lo;
  for (; i + 16 <= body; i += 16) {
    const __m512 g = _mm512_loadu_ps(gate + i);
    _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_mul_ps(g, Sigmoid16(g)), _mm512_loadu_ps(up + i)));
  }
  if (i < body) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (body - i)) - 1);
    const __m512 g = _mm512_maskz_loadu_ps(mask, gate + i);
    _mm512_mask_storeu_ps(out + i, mask, _mm512_mul_ps(_mm512_mul_ps(g, Sigmoid16(g)), _mm512_maskz_loadu_ps(mask, up + i)));
  }
  for (i = body; i < hi; i++) out[i] = (gate[i] / (1 + Exp1(-gate[i]))) * up[i];
}

// swigluBackward of ops.ts on [lo, hi) (act may be null).
__attribute__((target("avx512f"))) void SwigluBackwardRange(const float* dout, const float* gate, const float* up, float* dgate,
                                                            float* dup, float* act, int64_t lo, int64_t hi) {
  const __m512 one = _mm512_set1_ps(1.0f);
  const int64_t body = lo + (hi - lo) / 4 * 4;
  for (int64_t i = lo; i < body; i += 16) {
    const __mmask16 mask = body - i >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (body - i)) - 1);
    const __m512 g = _mm512_maskz_loadu_ps(mask, gate + i);
    const __m512 d = _mm512_maskz_loadu_ps(mask, dout + i);
    const __m512 s = Sigmoid16(g);
    const __m512 u = _mm512_maskz_loadu_ps(mask, up + i);
    if (act) _mm512_mask_storeu_ps(act + i, mask, _mm512_mul_ps(_mm512_mul_ps(g, s), u));
    _mm512_mask_storeu_ps(dup + i, mask, _mm512_mul_ps(_mm512_mul_ps(d, g), s));
    const __m512 ds = _mm512_add_ps(one, _mm512_mul_ps(g, _mm512_sub_ps(one, s)));
    _mm512_mask_storeu_ps(dgate + i, mask, _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(d, u), s), ds));
  }
  for (int64_t i = body; i < hi; i++) {
    const float g = gate[i], d = dout[i], u = up[i];
    const float s = 1 / (1 + Exp1(-g));
    if (act) act[i] = (g / (1 + Exp1(-g))) * u;
    dup[i] = d * g * s;
    dgate[i] = d * u * s * (1 + g * (1 - s));
  }
}
#endif

// The kernels' work in the wasm runtime's chunks (src/core/wasm/runtime.ts chunkGrain): chunk c covers
// [c·grain, min(total, (c+1)·grain)), an item each.
class ChunkedWork : public SharedWork {
 public:
  ChunkedWork(int64_t total, int64_t grain) : SharedWork((total + grain - 1) / grain), total_(total), grain_(grain) {}

 protected:
  void Do(int64_t chunk, int) override {
    const int64_t lo = chunk * grain_;
    DoRange(chunk, lo, lo + grain_ < total_ ? lo + grain_ : total_);
  }
  virtual void DoRange(int64_t chunk, int64_t lo, int64_t hi) = 0;

 private:
  const int64_t total_, grain_;
};

bool smallKernelOn = kHaveSmallKernel; // useSmallKernel(false) turns it off (tests, A/B runs)

// Batched products small enough for SmallGemmAvx512, when there are two threads to share them (decoding
// shapes keep their own path; SUPRA_THREADS=1 keeps everything on one thread, through OpenBLAS). Entries
// must write apart: with strideC 0 (dW summed over the batch) they run one after another, in order.
bool UseSmallBatch(int64_t m, int64_t n, int64_t k, int64_t ldc, int64_t strideC, int64_t batch) {
  return smallKernelOn && batch >= 2 && m > kDecodeRows && m <= kSmallMaxDim && n >= 1 && n <= kSmallMaxDim &&
         k >= 1 && k <= kSmallMaxDim && strideC >= (m - 1) * ldc + n && TwoThreads();
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
    HelperThread& helper = Helper();
    std::unique_lock<std::mutex> lock(helper.busy(), std::try_to_lock);
    if (lock.owns_lock()) { // else another thread has the helper: OpenBLAS, below
      SmallBatch work(helper, transA, transB, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k),
                      static_cast<float>(alpha), static_cast<float>(beta), a.data, static_cast<int>(lda), strideA,
                      b.data, static_cast<int>(ldb), strideB, c.data, static_cast<int>(ldc), strideC, batch);
      helper.Run(work);
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
    totals_[chunk] = CrossEntropyRows(logits_, targets_, vocab_, dlogits_, zLoss_, inv_, lo, hi);
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
  void DoRange(int64_t, int64_t lo, int64_t hi) override { SwigluRange(gate_, up_, out_, lo, hi); }

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
  void DoRange(int64_t, int64_t lo, int64_t hi) override { SwigluBackwardRange(dout_, gate_, up_, dgate_, dup_, act_, lo, hi); }

 private:
  const float *dout_, *gate_, *up_;
  float *dgate_, *dup_, *act_;
};
#endif

bool elementwiseOn = kHaveSmallKernel; // the same AVX-512 requirement; useElementwiseKernels(false) turns it off

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
                            (kHaveSmallKernel ? "turned off" : "not available on this CPU (no AVX-512)"))
      .ThrowAsJavaScriptException();
  return false;
}

// crossEntropy(logits, targets, vocab, dlogits | null, zLoss, inv, rows, grain) -> the loss summed over rows
napi_value CrossEntropy(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 8;
  napi_value argv[8];
  napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr);
  const char* name = "crossEntropy";
  if (argc != 8) {
    Napi::TypeError::New(env, "supra native crossEntropy: expected 8 arguments").ThrowAsJavaScriptException();
    return nullptr;
  }
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
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr);
  const char* name = "swiglu";
  int64_t n, grain;
  float *gate, *up, *out;
  if (argc != 5) {
    Napi::TypeError::New(env, "supra native swiglu: expected 5 arguments").ThrowAsJavaScriptException();
    return nullptr;
  }
  if (!ElementwiseAvailable(env, name) || !ReadCount(env, argv[3], name, "n", 0, &n) ||
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
  size_t argc = 8;
  napi_value argv[8];
  napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr);
  const char* name = "swigluBackward";
  int64_t n, grain;
  float *dout, *gate, *up, *dgate, *dup, *act;
  if (argc != 8) {
    Napi::TypeError::New(env, "supra native swigluBackward: expected 8 arguments").ThrowAsJavaScriptException();
    return nullptr;
  }
  if (!ElementwiseAvailable(env, name) || !ReadCount(env, argv[6], name, "n", 0, &n) ||
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
  out.Set("elementwiseKernels", Napi::String::New(env, elementwiseOn ? "avx512" : kHaveSmallKernel ? "off" : "none"));
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

// useElementwiseKernels(on): crossEntropy / swiglu / swigluBackward callable (when the CPU has AVX-512).
Napi::Value UseElementwiseKernels(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsBoolean()) {
    Napi::TypeError::New(env, "supra native useElementwiseKernels: expected one boolean").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  elementwiseOn = kHaveSmallKernel && info[0].As<Napi::Boolean>().Value();
  return Napi::Boolean::New(env, elementwiseOn);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  napi_value sgemm;
  napi_create_function(env, "sgemm", NAPI_AUTO_LENGTH, Sgemm, nullptr, &sgemm);
  exports.Set("sgemm", Napi::Value(env, sgemm));
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("useSmallKernel", Napi::Function::New(env, UseSmallKernel, "useSmallKernel"));
  exports.Set("useElementwiseKernels", Napi::Function::New(env, UseElementwiseKernels, "useElementwiseKernels"));
  for (auto [name, fn] : {std::pair<const char*, napi_callback>{"crossEntropy", CrossEntropy}, {"swiglu", Swiglu},
                          {"swigluBackward", SwigluBackward}}) {
    napi_value f;
    napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, nullptr, &f);
    exports.Set(name, Napi::Value(env, f));
  }
  return exports;
}

} // namespace

NODE_API_MODULE(supra_native, Init)
