// Products at BF16 precision (kernels.h GemmBf16Products): both operands rounded to BF16 (nearest even) as
// they are packed, multiplied with AVX-512 BF16's vdpbf16ps, summed in float32. Training's products are
// ~90% of a step and OpenBLAS's sgemm is already near this CPU's float32 peak; vdpbf16ps does twice the
// multiply-adds per instruction (measured on the 2-core Zen 4 VM, a 6x32 tile over packed in-cache panels:
// 230 GFLOP/s per core against 117 with float32 FMAs; OpenBLAS's sgemm ~105).
//
// The classic blocked GEMM: op(A) and op(B) are packed a super-block at a time (kSuperRows x K, K x
// kSuperCols) into panels of 6 rows and 32 columns whose elements are pairs of consecutive k values (the
// operand layout of vdpbf16ps); then macro tiles of C (kMacroRows x kMacroCols) are computed, each over K
// in blocks of kBlockPairs pairs, with a 6x32 register tile. Packing and tiles are shared between the
// caller and the helper thread item by item. Every C value is summed by one tile in a fixed k order, so
// the bits do not depend on the thread count.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "helper_thread.h"
#include "kernels.h"

namespace supra {

#ifdef SUPRA_BF16_PRODUCTS
bool HaveAvx512Bf16() {
  static const bool have = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
  return have;
}
#else
bool HaveAvx512Bf16() { return false; }
#endif

#ifdef SUPRA_BF16_PRODUCTS
namespace {

constexpr int kTileRows = 6;     // register tile: 6 rows x 32 columns, 12 zmm accumulators
constexpr int kTileCols = 32;
constexpr int kBlockPairs = 128; // k block: 256 values; a B panel's block (16 KiB) stays in L1
constexpr int kMacroRows = 96;   // a macro tile's A block (96 x 256 BF16, 48 KiB) stays in L2
constexpr int kMacroCols = 256;
constexpr int kSuperRows = 768;  // packed at a time: each element of B is packed once per 768 rows of A...
constexpr int kSuperCols = 1536; // ...and each of A once per 1536 columns of B

// BF16 bits of x, rounded to nearest even (NaN kept a quiet NaN), as vcvtneps2bf16 rounds.
inline uint32_t Bf16Bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x40u;
  return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}
inline uint32_t PairBits(float lo, float hi) { return Bf16Bits(lo) | (Bf16Bits(hi) << 16); }

// 16 pairs (k, k+1) of BF16 from 32 consecutive floats: lane t holds p[2t] (low half) and p[2t+1].
__attribute__((target("avx512f,avx512bf16"))) inline __m512i Pairs16(const float* p) {
  return (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(p + 16), _mm512_loadu_ps(p));
}
// 16 pairs from two rows: lane t holds r0[t] (low half) and r1[t].
__attribute__((target("avx512f,avx512bf16"))) inline __m512i Interleave16(const float* r0, const float* r1) {
  const __m512i lo = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(r0)));
  const __m512i hi = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(r1)));
  return _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16));
}

// The operand op(X) of a product as rows x K (rows of C for A, columns of C for B): element (r, kk) at
// X[r * ld + kk] when k runs along memory, at X[kk * ld + r] when rows do.
struct Operand {
  const float* data;
  int64_t ld;
  bool kContiguous;
  int k;
  float at(int64_t r, int64_t kk) const { return kContiguous ? data[r * ld + kk] : data[kk * ld + r]; }
};

// Packs rows [r0, r0 + width) of op(X) (width <= panel, the rest zero) into one panel: pair q of row r at
// out[q * panel + r], over all ceil(K / 2) pairs.
__attribute__((target("avx512f,avx512bf16"))) void PackPanel(const Operand& x, int64_t r0, int width, int panel, uint32_t* out) {
  const int k = x.k;
  const int pairs = (k + 1) / 2;
  const int fullPairs = k / 2;
  if (width < panel) {
    for (int q = 0; q < pairs; q++) std::memset(out + static_cast<int64_t>(q) * panel + width, 0, sizeof(uint32_t) * (panel - width));
  }
  if (x.kContiguous) {
    // each row's pairs 16 at a time, scattered panel apart
    alignas(64) uint32_t lanes[16];
    for (int r = 0; r < width; r++) {
      const float* row = x.data + (r0 + r) * x.ld;
      int q = 0;
      for (; q + 16 <= fullPairs; q += 16) {
        _mm512_store_si512(lanes, Pairs16(row + 2 * q));
        uint32_t* o = out + static_cast<int64_t>(q) * panel + r;
        for (int t = 0; t < 16; t++) o[static_cast<int64_t>(t) * panel] = lanes[t];
      }
      for (; q < fullPairs; q++) out[static_cast<int64_t>(q) * panel + r] = PairBits(row[2 * q], row[2 * q + 1]);
      if (k & 1) out[static_cast<int64_t>(fullPairs) * panel + r] = PairBits(row[k - 1], 0.0f);
    }
    return;
  }
  // rows run along memory: pair q interleaves two consecutive lines of X
  for (int q = 0; q < pairs; q++) {
    const float* l0 = x.data + static_cast<int64_t>(2 * q) * x.ld + r0;
    const float* l1 = 2 * q + 1 < k ? l0 + x.ld : nullptr;
    uint32_t* o = out + static_cast<int64_t>(q) * panel;
    int r = 0;
    if (l1) {
      for (; r + 16 <= width; r += 16) _mm512_storeu_si512(o + r, Interleave16(l0 + r, l1 + r));
      for (; r < width; r++) o[r] = PairBits(l0[r], l1[r]);
    } else {
      for (; r < width; r++) o[r] = PairBits(l0[r], 0.0f);
    }
  }
}

// C tile (rows x cols, at most 6 x 32) = alpha * sum over kp pairs of A panel . B panel, plus beta * C
// (first k block; beta 0 never reads C) or plus C (later blocks).
__attribute__((target("avx512f,avx512bf16"))) void Tile(int kp, const uint32_t* a, const uint32_t* b, float* c, int64_t ldc,
                                                          int rows, int cols, float alpha, float beta, bool first) {
  __m512 acc[kTileRows][2];
  for (int r = 0; r < kTileRows; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int q = 0; q < kp; q++) {
    const __m512bh b0 = (__m512bh)_mm512_load_si512(b + q * kTileCols);
    const __m512bh b1 = (__m512bh)_mm512_load_si512(b + q * kTileCols + 16);
    const uint32_t* aq = a + q * kTileRows;
#pragma GCC unroll 6
    for (int r = 0; r < kTileRows; r++) {
      const __m512bh ar = (__m512bh)_mm512_set1_epi32(static_cast<int>(aq[r]));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], ar, b0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], ar, b1);
    }
  }
  const __mmask16 m0 = cols >= 16 ? 0xffff : static_cast<__mmask16>((1u << cols) - 1);
  const __mmask16 m1 = cols >= 32 ? 0xffff : cols <= 16 ? 0 : static_cast<__mmask16>((1u << (cols - 16)) - 1);
  const __m512 va = _mm512_set1_ps(alpha);
  const __m512 vb = _mm512_set1_ps(beta);
  for (int r = 0; r < rows; r++) {
    float* cr = c + r * ldc;
    __m512 v0 = alpha == 1.0f ? acc[r][0] : _mm512_mul_ps(va, acc[r][0]);
    __m512 v1 = alpha == 1.0f ? acc[r][1] : _mm512_mul_ps(va, acc[r][1]);
    if (!first) {
      v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, cr));
      v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, cr + 16));
    } else if (beta != 0.0f) {
      v0 = _mm512_add_ps(v0, _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m0, cr)));
      v1 = _mm512_add_ps(v1, _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m1, cr + 16)));
    }
    _mm512_mask_storeu_ps(cr, m0, v0);
    _mm512_mask_storeu_ps(cr + 16, m1, v1);
  }
}

// Buffers of packed panels, 64-byte aligned, grown as needed (one product at a time per calling thread).
struct PackBuffer {
  std::vector<uint32_t> storage;
  uint32_t* Get(int64_t n) {
    if (static_cast<int64_t>(storage.size()) < n + 16) storage.resize(n + 16);
    auto p = reinterpret_cast<uintptr_t>(storage.data());
    return reinterpret_cast<uint32_t*>((p + 63) & ~static_cast<uintptr_t>(63));
  }
};

// One super-block: pack its A panels, then its B panels (one item per panel), then its macro tiles.
class SuperBlock : public SharedWork {
 public:
  SuperBlock(const Operand& a, const Operand& b, int64_t i0, int rows, int64_t j0, int cols, uint32_t* packA,
             uint32_t* packB, float* c, int64_t ldc, float alpha, float beta, int phase)
      : SharedWork(Items(rows, cols, phase)), a_(a), b_(b), i0_(i0), rows_(rows), j0_(j0), cols_(cols),
        pairs_((a.k + 1) / 2), packA_(packA), packB_(packB), c_(c), ldc_(ldc), alpha_(alpha), beta_(beta), phase_(phase) {}

  static int64_t Items(int rows, int cols, int phase) {
    if (phase == 0) return (rows + kTileRows - 1) / kTileRows + (cols + kTileCols - 1) / kTileCols;
    return static_cast<int64_t>((rows + kMacroRows - 1) / kMacroRows) * ((cols + kMacroCols - 1) / kMacroCols);
  }

 protected:
  void Do(int64_t item, int) override {
    if (phase_ == 0) return Pack(item);
    const int macroCols = (cols_ + kMacroCols - 1) / kMacroCols;
    const int mi = static_cast<int>(item / macroCols) * kMacroRows;
    const int mj = static_cast<int>(item % macroCols) * kMacroCols;
    const int mRows = std::min(kMacroRows, rows_ - mi);
    const int mCols = std::min(kMacroCols, cols_ - mj);
    for (int q0 = 0; q0 < pairs_; q0 += kBlockPairs) {
      const int kp = std::min(kBlockPairs, pairs_ - q0);
      for (int tj = 0; tj < mCols; tj += kTileCols) {
        const uint32_t* bp = packB_ + (static_cast<int64_t>((mj + tj) / kTileCols) * pairs_ + q0) * kTileCols;
        for (int ti = 0; ti < mRows; ti += kTileRows) {
          const uint32_t* ap = packA_ + (static_cast<int64_t>((mi + ti) / kTileRows) * pairs_ + q0) * kTileRows;
          float* c = c_ + (i0_ + mi + ti) * ldc_ + j0_ + mj + tj;
          Tile(kp, ap, bp, c, ldc_, std::min(kTileRows, mRows - ti), std::min(kTileCols, mCols - tj), alpha_, beta_, q0 == 0);
        }
      }
    }
  }

 private:
  void Pack(int64_t item) {
    const int64_t aPanels = (rows_ + kTileRows - 1) / kTileRows;
    if (item < aPanels) {
      const int r = static_cast<int>(item) * kTileRows;
      PackPanel(a_, i0_ + r, std::min(kTileRows, rows_ - r), kTileRows, packA_ + item * pairs_ * kTileRows);
    } else {
      const int64_t p = item - aPanels;
      const int r = static_cast<int>(p) * kTileCols;
      PackPanel(b_, j0_ + r, std::min(kTileCols, cols_ - r), kTileCols, packB_ + p * pairs_ * kTileCols);
    }
  }

  const Operand a_, b_;
  const int64_t i0_;
  const int rows_;
  const int64_t j0_;
  const int cols_;
  const int pairs_;
  uint32_t* const packA_;
  uint32_t* const packB_;
  float* const c_;
  const int64_t ldc_;
  const float alpha_, beta_;
  const int phase_;
};

} // namespace

__attribute__((target("avx512f,avx512bf16"))) void GemmBf16Products(bool transA, bool transB, int m, int n, int k, float alpha,
                                                                      float beta, const float* A, int lda, const float* B,
                                                                      int ldb, float* C, int ldc) {
  // op(A) as m rows of K, op(B) as n rows (columns of C) of K
  const Operand a{A, lda, !transA, k};
  const Operand b{B, ldb, transB, k};
  const int64_t pairs = (k + 1) / 2;
  thread_local PackBuffer bufA, bufB;
  for (int64_t i0 = 0; i0 < m; i0 += kSuperRows) {
    const int rows = static_cast<int>(std::min<int64_t>(kSuperRows, m - i0));
    uint32_t* packA = bufA.Get(((rows + kTileRows - 1) / kTileRows) * kTileRows * pairs);
    for (int64_t j0 = 0; j0 < n; j0 += kSuperCols) {
      const int cols = static_cast<int>(std::min<int64_t>(kSuperCols, n - j0));
      uint32_t* packB = bufB.Get(((cols + kTileCols - 1) / kTileCols) * kTileCols * pairs);
      // A's panels are packed with the first column block only; later blocks pack B alone
      SuperBlock pack(a, b, i0, j0 == 0 ? rows : 0, j0, cols, packA, packB, C, ldc, alpha, beta, 0);
      RunShared(pack);
      SuperBlock tiles(a, b, i0, rows, j0, cols, packA, packB, C, ldc, alpha, beta, 1);
      RunShared(tiles);
    }
  }
}
#endif

} // namespace supra
