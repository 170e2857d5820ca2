// Batched small products (small_gemm.inc) on AVX-512 and on AVX2: the file's kernel once per instruction set,
// each over that set's vector operations (vector_ops.h), dispatched by VectorIsa (kernels.h).
#include "kernels.h"
#include "vector_ops.h"

#include <cstdint>
#include <cstring>

#ifdef SUPRA_X86
#include <immintrin.h>

namespace supra {
namespace {

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
#include "small_gemm.inc"
#undef SUPRA_ISA
}  // namespace avx512

namespace avx2 {
using V = Avx2Ops;
#define SUPRA_ISA "avx2,fma"
#include "small_gemm.inc"
#undef SUPRA_ISA
}  // namespace avx2

void SmallGemm(VectorIsa isa, bool transA, bool transB, int m, int n, int k, float alpha, float beta, const float* A, int lda,
               const float* B, int ldb, float* C, int ldc, float* pack) {
  if (isa == VectorIsa::kAvx512) avx512::SmallGemm(transA, transB, m, n, k, alpha, beta, A, lda, B, ldb, C, ldc, pack);
  else avx2::SmallGemm(transA, transB, m, n, k, alpha, beta, A, lda, B, ldb, C, ldc, pack);
}

}  // namespace supra
#endif
