// Products at BF16 precision (kernels.h GemmBf16Products): both operands rounded to BF16 (nearest even) as
// they are packed, multiplied with AVX-512 BF16's vdpbf16ps, summed in float32. Training's products are
// ~90% of a step and OpenBLAS's sgemm is already near this CPU's float32 peak; vdpbf16ps does twice the
// multiply-adds per instruction (measured on the 2-core Zen 4 VM, a 6x32 tile over packed in-cache panels:
// 230 GFLOP/s per core against 117 with float32 FMAs; OpenBLAS's sgemm ~105).
//
// The classic blocked GEMM: op(A) and op(B) are packed a super-block at a time (rows x kSuperDepth,
// kSuperDepth x kSuperCols) into panels of 6 rows and 32 columns whose elements are pairs of consecutive k values (the
// operand layout of vdpbf16ps); then macro tiles of C (kMacroRows x kMacroCols) are computed, each over K
// in blocks of the Layout's blockPairs pairs, with a 6x32 register tile. Packing and tiles are shared between the
// caller and the helper thread item by item. Every C value is summed by one tile in a fixed k order, so
// the bits do not depend on the thread count.
//
// Where the CPU has AMX (Intel Sapphire Rapids and later), the same blocking runs a second kernel: A packed in
// panels of 32 rows whose 16 x 16-pair tiles are contiguous, B in the same 32-column panels (a B tile is 16
// pairs x 16 columns of one), and a 32 x 32 block of C summed in four tile registers by tdpbf16ps. There
// vdpbf16ps issues on one port against two for float32 FMAs (measured on a 2-core Xeon: 160 GFLOP/s, half of
// OpenBLAS's sgemm), while one tdpbf16ps does 16 x 16 x 32 multiply-adds (the same Xeon: 800-1500 GFLOP/s).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "helper_thread.h"
#include "kernels.h"
#ifdef SUPRA_AMX_PRODUCTS
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace supra {

#ifdef SUPRA_BF16_PRODUCTS
bool HaveAvx512Bf16() {
  static const bool have = HaveAvx512() && __builtin_cpu_supports("avx512bf16"); // HaveAvx512: SUPRA_NATIVE_ISA
  return have;
}
#else
bool HaveAvx512Bf16() { return false; }
#endif

#ifdef SUPRA_AMX_PRODUCTS
bool HaveAmxBf16() {
  static const bool have = [] {
    unsigned a, b, c, d;
    if (!HaveAvx512Bf16() || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    if (!((d >> 22) & 1) || !((d >> 24) & 1)) return false; // AMX-BF16, AMX-TILE
    // Linux (5.16+) hands out AMX's 8 KiB of tile data per process on request: ARCH_REQ_XCOMP_PERM for
    // XFEATURE_XTILEDATA. Refused (an older kernel, a hypervisor that hides it): no AMX.
    constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return have;
}
#else
bool HaveAmxBf16() { return false; }
#endif

#ifdef SUPRA_BF16_PRODUCTS
namespace {

constexpr int kTileRows = 6;     // register tile: 6 rows x 32 columns, 12 zmm accumulators
constexpr int kTileCols = 32;    // the width of a B panel, for both kernels
constexpr int kMacroRows = 96;   // a multiple of both kernels' panel rows
constexpr int kMacroCols = 256;

// How a kernel wants its operands: A in panels of panelRows rows, a panel's pairs padded to a multiple of
// pairAlign, K computed in blocks of blockPairs pairs (one pass over C per block).
struct Layout {
  Bf16Kernel kernel;
  int panelRows;
  int pairAlign;
  int blockPairs;
  int Padded(int pairs) const { return (pairs + pairAlign - 1) / pairAlign * pairAlign; }
};
// a B panel's k block (16 KiB) stays in L1, a macro tile's A block (96 x 256 BF16, 48 KiB) in L2
constexpr Layout kAvx512Layout{Bf16Kernel::kAvx512Bf16, kTileRows, 1, 128};
// 16 pairs per tile load; a block twice as deep, as C is read and written through memory once per block
constexpr Layout kAmxLayout{Bf16Kernel::kAmx, 32, 16, 256};
// Packed at a time: kSuperDepth values of k (even), by at least kSuperRows rows of A (more while their
// panels take under kPackBytesA: each element of B is packed once per super-block of rows) and kSuperCols
// columns of B. The pack buffers stay under ~20 MiB per calling thread whatever the shape.
constexpr int kSuperDepth = 4096;
constexpr int kSuperRows = 768;
constexpr int64_t kPackBytesA = 8 << 20;
constexpr int kSuperCols = 1536;
constexpr int kStreamRows = 4 * kMacroRows; // at most this many rows: B packed inside the tile items

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

// v[i] lane j <-> v[j] lane i (16 x 16 32-bit values): unpack 32- and 64-bit within 128-bit lanes, then
// regroup the lanes.
__attribute__((target("avx512f"))) inline void Transpose16(__m512i v[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]);
  }
  // u[4i + c], 128-bit lane L: column 4L + c of rows 4i..4i+3
  for (int i = 0; i < 4; i++) {
    u[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int c = 0; c < 4; c++) {
    const __m512i a0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x44), a1 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xee);
    const __m512i b0 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x44), b1 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xee);
    v[c] = _mm512_shuffle_i32x4(a0, b0, 0x88);
    v[4 + c] = _mm512_shuffle_i32x4(a0, b0, 0xdd);
    v[8 + c] = _mm512_shuffle_i32x4(a1, b1, 0x88);
    v[12 + c] = _mm512_shuffle_i32x4(a1, b1, 0xdd);
  }
}

// The operand op(X) of a product as rows x K (rows of C for A, columns of C for B): element (r, kk) at
// X[r * ld + kk] when k runs along memory, at X[kk * ld + r] when rows do.
struct Operand {
  const float* data;
  int64_t ld;
  bool kContiguous;
  int k;
  // values [k0, k0 + depth) of every row
  Operand Slice(int k0, int depth) const { return {kContiguous ? data + k0 : data + static_cast<int64_t>(k0) * ld, ld, kContiguous, depth}; }
};

// Packs rows [r0, r0 + width) of op(X) (width <= panel, the rest zero) into one panel: pair q of row r at
// out[q * panel + r], over all ceil(K / 2) pairs.
// prefetchAhead: also fetch the same rows' values that far on (the next k block) into L2, so that streaming B
// from memory (SuperBlock's streamB) overlaps with the tiles computed in between.
__attribute__((target("avx512f,avx512bf16"))) void PackPanel(const Operand& x, int64_t r0, int width, int panel, uint32_t* out,
                                                               int prefetchAhead = 0) {
  const bool prefetch = prefetchAhead > 0;
  const int k = x.k;
  const int pairs = (k + 1) / 2;
  const int fullPairs = k / 2;
  if (width < panel) {
    for (int q = 0; q < pairs; q++) std::memset(out + static_cast<int64_t>(q) * panel + width, 0, sizeof(uint32_t) * (panel - width));
  }
  if (x.kContiguous) {
    // 16 rows x 16 pairs at a time, transposed in registers: each pair's row values land side by side
    const int blocked = fullPairs / 16 * 16;
    for (int g = 0; g < width; g += 16) {
      const int rows = std::min(16, width - g);
      const __mmask16 lanes = static_cast<__mmask16>(panel - g >= 16 ? 0xffff : (1u << (panel - g)) - 1);
      for (int q = 0; q < blocked; q += 16) {
        __m512i v[16];
        for (int i = 0; i < 16; i++) v[i] = i < rows ? Pairs16(x.data + (r0 + g + i) * x.ld + 2 * q) : _mm512_setzero_si512();
        if (prefetch) {
          for (int i = 0; i < rows; i++) {
            const char* next = reinterpret_cast<const char*>(x.data + (r0 + g + i) * x.ld + 2 * q + prefetchAhead);
            _mm_prefetch(next, _MM_HINT_T1);
            _mm_prefetch(next + 64, _MM_HINT_T1);
          }
        }
        Transpose16(v);
        for (int t = 0; t < 16; t++) _mm512_mask_storeu_epi32(out + static_cast<int64_t>(q + t) * panel + g, lanes, v[t]);
      }
    }
    for (int r = 0; r < width; r++) {
      const float* row = x.data + (r0 + r) * x.ld;
      for (int q = blocked; q < fullPairs; q++) out[static_cast<int64_t>(q) * panel + r] = PairBits(row[2 * q], row[2 * q + 1]);
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
      for (; r + 16 <= width; r += 16) {
        if (prefetch) {
          _mm_prefetch(reinterpret_cast<const char*>(l0 + r + prefetchAhead * x.ld), _MM_HINT_T1);
          _mm_prefetch(reinterpret_cast<const char*>(l1 + r + prefetchAhead * x.ld), _MM_HINT_T1);
        }
        _mm512_storeu_si512(o + r, Interleave16(l0 + r, l1 + r));
      }
      if (r < width) { // the rest (an A panel's 6 rows) masked: no scalar rounding per element
        const __mmask16 tail = static_cast<__mmask16>((1u << (width - r)) - 1);
        const __m512i lo = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(tail, l0 + r)));
        const __m512i hi = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(tail, l1 + r)));
        _mm512_mask_storeu_epi32(o + r, tail, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
      }
    } else {
      for (; r < width; r++) o[r] = PairBits(l0[r], 0.0f);
    }
  }
}

// Packs rows [r0, r0 + width) of op(X) (width <= 48) into 8 consecutive A panels of 6 rows, `pairs` pairs
// each, when rows run along memory (transposed A: training's dW = dYᵀ·X): pair q of 48 rows is 3 vectors
// from two lines of X, cut into the 8 panels' 6 values with valignd. One panel at a time would read 24
// bytes from each line per pair.
__attribute__((target("avx512f,avx512bf16"))) void PackSixPanelsOf48(const Operand& x, int64_t r0, int width, int64_t pairs,
                                                                      uint32_t* out) {
  const int k = x.k;
  const __mmask16 six = 0x3f;
  __mmask16 load[3];
  for (int v = 0; v < 3; v++) {
    const int n = std::max(0, std::min(16, width - 16 * v));
    load[v] = static_cast<__mmask16>((1u << n) - 1);
  }
  const int panels = (width + kTileRows - 1) / kTileRows;
  for (int q = 0; q < pairs; q++) {
    const float* l0 = x.data + static_cast<int64_t>(2 * q) * x.ld + r0;
    const bool odd = 2 * q + 1 >= k; // the last pair of an odd k: its second value is 0
    __m512i v[3];
    for (int j = 0; j < 3; j++) {
      const __m512i lo = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(load[j], l0 + 16 * j)));
      const __m512i hi = odd ? _mm512_setzero_si512()
                             : _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(load[j], l0 + x.ld + 16 * j)));
      v[j] = _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16));
    }
    const __m512i cut[8] = {
        v[0], _mm512_alignr_epi32(v[1], v[0], 6), _mm512_alignr_epi32(v[1], v[0], 12), _mm512_alignr_epi32(v[2], v[1], 2),
        _mm512_alignr_epi32(v[2], v[1], 8), _mm512_alignr_epi32(v[2], v[1], 14), _mm512_alignr_epi32(v[2], v[2], 4),
        _mm512_alignr_epi32(v[2], v[2], 10)};
    uint32_t* o = out + static_cast<int64_t>(q) * kTileRows;
    for (int p = 0; p < panels; p++) _mm512_mask_storeu_epi32(o + p * pairs * kTileRows, six, cut[p]);
  }
}

// One row of a C tile (cols <= 32 values, v0 and v1): alpha * v, plus beta * C on the first k block (beta 0
// never reads C), plus C on later ones.
__attribute__((target("avx512f"))) inline void StoreRow(float* cr, __m512 v0, __m512 v1, int cols, float alpha, float beta, bool first) {
  const __mmask16 m0 = cols >= 16 ? 0xffff : static_cast<__mmask16>((1u << cols) - 1);
  const __mmask16 m1 = cols >= 32 ? 0xffff : cols <= 16 ? 0 : static_cast<__mmask16>((1u << (cols - 16)) - 1);
  if (alpha != 1.0f) {
    v0 = _mm512_mul_ps(_mm512_set1_ps(alpha), v0);
    v1 = _mm512_mul_ps(_mm512_set1_ps(alpha), v1);
  }
  if (!first) {
    v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, cr));
    v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, cr + 16));
  } else if (beta != 0.0f) {
    v0 = _mm512_add_ps(v0, _mm512_mul_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(m0, cr)));
    v1 = _mm512_add_ps(v1, _mm512_mul_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(m1, cr + 16)));
  }
  _mm512_mask_storeu_ps(cr, m0, v0);
  _mm512_mask_storeu_ps(cr + 16, m1, v1);
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
  for (int r = 0; r < rows; r++) StoreRow(c + r * ldc, acc[r][0], acc[r][1], cols, alpha, beta, first);
}

#ifdef SUPRA_AMX_PRODUCTS
// Packs rows [r0, r0 + width) of op(X) (width <= 32, the rest zero) into one AMX A panel of `padded` pairs (a
// multiple of 16; pairs past K zero): pair q of row r at out[(q / 16) * 512 + r * 16 + q % 16], so that each
// tile of 16 rows x 16 pairs is 1 KiB in a row (a tile load with a stride of 64 bytes).
__attribute__((target("avx512f,avx512bf16"))) void PackAmxPanel(const Operand& x, int64_t r0, int width, int padded, uint32_t* out) {
  const int k = x.k;
  const int groups = padded / 16;
  if (x.kContiguous) { // 32 values of a row are a tile row's 16 pairs
    for (int r = 0; r < 32; r++) {
      uint32_t* o = out + r * 16;
      const float* row = r < width ? x.data + (r0 + r) * x.ld : nullptr;
      for (int g = 0; g < groups; g++) {
        const int k0 = 32 * g;
        __m512i v = _mm512_setzero_si512();
        if (row && k0 + 32 <= k) {
          v = Pairs16(row + k0);
        } else if (row && k0 < k) {
          const int n = k - k0;
          const __mmask16 m0 = n >= 16 ? 0xffff : static_cast<__mmask16>((1u << n) - 1);
          const __mmask16 m1 = n > 16 ? static_cast<__mmask16>((1u << (n - 16)) - 1) : 0;
          v = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, row + k0 + 16), _mm512_maskz_loadu_ps(m0, row + k0));
        }
        _mm512_storeu_si512(o + g * 512, v);
      }
    }
    return;
  }
  // rows run along memory: 16 rows of pairs (16g + t) from lines 2q and 2q + 1, transposed in registers
  for (int h = 0; h < 2; h++) {
    const int rows = std::max(0, std::min(16, width - 16 * h));
    const __mmask16 lanes = static_cast<__mmask16>((1u << rows) - 1);
    for (int g = 0; g < groups; g++) {
      __m512i v[16];
      for (int t = 0; t < 16; t++) {
        const int q = 16 * g + t;
        v[t] = _mm512_setzero_si512();
        if (rows == 0 || 2 * q >= k) continue;
        const float* l0 = x.data + static_cast<int64_t>(2 * q) * x.ld + r0 + 16 * h;
        const __m512i lo = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(lanes, l0)));
        const __m512i hi = 2 * q + 1 < k ? _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(lanes, l0 + x.ld)))
                                         : _mm512_setzero_si512();
        v[t] = _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16));
      }
      Transpose16(v);
      for (int r = 0; r < 16; r++) _mm512_storeu_si512(out + g * 512 + (16 * h + r) * 16, v[r]);
    }
  }
}

// Every tile 16 rows x 64 bytes: 0-3 a 32 x 32 block of C, 4 and 5 A's two halves, 6 and 7 B's.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t startRow = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {64, 64, 64, 64, 64, 64, 64, 64};
  uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
};

// Holds the tile configuration for a scope of one thread (a work item), releasing the tile state after it.
class TileScope {
 public:
  __attribute__((target("amx-tile"))) TileScope() {
    static const TileConfig config;
    _tile_loadconfig(&config);
  }
  __attribute__((target("amx-tile"))) ~TileScope() { _tile_release(); }
};

// C block (rows x cols, at most 32 x 32) = alpha * sum over kp pairs (a multiple of 16) of an AMX A panel and a
// B panel, plus C as Tile adds it. Needs a TileScope.
__attribute__((target("amx-tile,amx-bf16,avx512f"))) void TileAmx(int kp, const uint32_t* a, const uint32_t* b, float* c, int64_t ldc,
                                                                  int rows, int cols, float alpha, float beta, bool first) {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int q = 0; q < kp; q += 16) {
    _tile_loadd(4, a + q * 32, 64);
    _tile_loadd(5, a + q * 32 + 256, 64);
    _tile_loadd(6, b + q * kTileCols, 4 * kTileCols);
    _tile_loadd(7, b + q * kTileCols + 16, 4 * kTileCols);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  alignas(64) float acc[32 * 32];
  _tile_stored(0, acc, 128);
  _tile_stored(1, acc + 16, 128);
  _tile_stored(2, acc + 512, 128);
  _tile_stored(3, acc + 528, 128);
  for (int r = 0; r < rows; r++) StoreRow(c + r * ldc, _mm512_load_ps(acc + 32 * r), _mm512_load_ps(acc + 32 * r + 16), cols, alpha, beta, first);
}
#endif

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
  // firstDepth: the first k super-block, whose tiles apply beta (later ones add to C)
  // streamB: few rows (kStreamRows), so each item packs its own columns of B, k block by k block, into a
  // buffer of its thread (no packB) and runs them against every row
  SuperBlock(const Layout& layout, const Operand& a, const Operand& b, int64_t i0, int rows, int64_t j0, int cols, uint32_t* packA,
             uint32_t* packB, float* c, int64_t ldc, float alpha, float beta, bool firstDepth, bool streamB, int phase)
      : SharedWork(Items(layout, a, rows, cols, streamB, phase)), layout_(layout), streamB_(streamB), a_(a), b_(b), i0_(i0), rows_(rows),
        j0_(j0), cols_(cols), pairs_(layout.Padded((a.k + 1) / 2)), packA_(packA), packB_(packB), c_(c), ldc_(ldc), alpha_(alpha),
        beta_(beta), firstDepth_(firstDepth), phase_(phase) {}

  // A's panels packed per pack item: 8 (PackSixPanelsOf48) when vdpbf16ps's A has its rows along memory, else 1
  static int APanelsPerItem(const Layout& layout, const Operand& a) {
    return a.kContiguous || layout.kernel == Bf16Kernel::kAmx ? 1 : 8;
  }
  static int64_t APackItems(const Layout& layout, const Operand& a, int rows) {
    const int64_t panels = (rows + layout.panelRows - 1) / layout.panelRows;
    const int per = APanelsPerItem(layout, a);
    return (panels + per - 1) / per;
  }
  static int64_t Items(const Layout& layout, const Operand& a, int rows, int cols, bool streamB, int phase) {
    if (phase == 0) return APackItems(layout, a, rows) + (streamB ? 0 : (cols + kTileCols - 1) / kTileCols);
    if (streamB) return (cols + kMacroCols - 1) / kMacroCols;
    return static_cast<int64_t>((rows + kMacroRows - 1) / kMacroRows) * ((cols + kMacroCols - 1) / kMacroCols);
  }

 protected:
  void Do(int64_t item, int) override {
    if (phase_ == 0) return Pack(item);
#ifdef SUPRA_AMX_PRODUCTS
    if (layout_.kernel == Bf16Kernel::kAmx) {
      TileScope tiles;
      return Compute(item);
    }
#endif
    Compute(item);
  }

 private:
  void Compute(int64_t item) {
    const int blockPairs = layout_.blockPairs, panelRows = layout_.panelRows;
    const int macroCols = (cols_ + kMacroCols - 1) / kMacroCols;
    const int mi = streamB_ ? 0 : static_cast<int>(item / macroCols) * kMacroRows;
    const int mj = static_cast<int>(item % macroCols) * kMacroCols;
    const int mRows = streamB_ ? rows_ : std::min(kMacroRows, rows_ - mi);
    const int mCols = std::min(kMacroCols, cols_ - mj);
    thread_local PackBuffer streamed;
    uint32_t* local = streamB_ ? streamed.Get(static_cast<int64_t>(kMacroCols) * blockPairs) : nullptr;
    for (int q0 = 0; q0 < pairs_; q0 += blockPairs) {
      const int kp = std::min(blockPairs, pairs_ - q0);
      if (streamB_) {
        const Operand slice = b_.Slice(2 * q0, std::max(0, std::min(2 * blockPairs, b_.k - 2 * q0)));
        for (int tj = 0; tj < mCols; tj += kTileCols) {
          uint32_t* panel = local + static_cast<int64_t>(tj) * kp;
          PackPanel(slice, j0_ + mj + tj, std::min(kTileCols, mCols - tj), kTileCols, panel, q0 + blockPairs < pairs_ ? 2 * blockPairs : 0);
          ZeroPairs(panel, (slice.k + 1) / 2, kp);
        }
      }
      for (int tj = 0; tj < mCols; tj += kTileCols) {
        const uint32_t* bp = streamB_ ? local + static_cast<int64_t>(tj) * kp
                                      : packB_ + (static_cast<int64_t>((mj + tj) / kTileCols) * pairs_ + q0) * kTileCols;
        for (int ti = 0; ti < mRows; ti += panelRows) {
          const uint32_t* ap = packA_ + (static_cast<int64_t>((mi + ti) / panelRows) * pairs_ + q0) * panelRows;
          float* c = c_ + (i0_ + mi + ti) * ldc_ + j0_ + mj + tj;
          const int rows = std::min(panelRows, mRows - ti), cols = std::min(kTileCols, mCols - tj);
          const bool first = firstDepth_ && q0 == 0;
#ifdef SUPRA_AMX_PRODUCTS
          if (layout_.kernel == Bf16Kernel::kAmx) {
            TileAmx(kp, ap, bp, c, ldc_, rows, cols, alpha_, beta_, first);
            continue;
          }
#endif
          // C two tiles down, fetched while this one computes: with a short k (dW over a block of rows) the
          // tiles are loads and stores of C from memory as much as products
          if (ti + 3 * kTileRows <= mRows) {
            for (int r = 2 * kTileRows; r < 3 * kTileRows; r++) {
              _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc_), _MM_HINT_T0);
              _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc_ + 16), _MM_HINT_T0);
            }
          }
          Tile(kp, ap, bp, c, ldc_, rows, cols, alpha_, beta_, first);
        }
      }
    }
  }

  // Zero pairs [from, to) of a B panel: the padding of the AMX layout past K.
  static void ZeroPairs(uint32_t* panel, int from, int to) {
    if (to > from) std::memset(panel + static_cast<int64_t>(from) * kTileCols, 0, sizeof(uint32_t) * kTileCols * (to - from));
  }

  void Pack(int64_t item) {
    const int64_t aItems = APackItems(layout_, a_, rows_);
    const int panelRows = layout_.panelRows;
    if (item < aItems) {
      uint32_t* out = packA_ + item * APanelsPerItem(layout_, a_) * pairs_ * panelRows;
#ifdef SUPRA_AMX_PRODUCTS
      if (layout_.kernel == Bf16Kernel::kAmx) {
        const int r = static_cast<int>(item) * panelRows;
        return PackAmxPanel(a_, i0_ + r, std::min(panelRows, rows_ - r), pairs_, out);
      }
#endif
      if (!a_.kContiguous) {
        const int r = static_cast<int>(item) * 8 * kTileRows;
        return PackSixPanelsOf48(a_, i0_ + r, std::min(8 * kTileRows, rows_ - r), pairs_, out);
      }
      const int r = static_cast<int>(item) * kTileRows;
      return PackPanel(a_, i0_ + r, std::min(kTileRows, rows_ - r), kTileRows, out);
    }
    const int64_t p = item - aItems;
    const int r = static_cast<int>(p) * kTileCols;
    uint32_t* out = packB_ + p * pairs_ * kTileCols;
    PackPanel(b_, j0_ + r, std::min(kTileCols, cols_ - r), kTileCols, out);
    ZeroPairs(out, (b_.k + 1) / 2, pairs_);
  }

  const Layout layout_;
  const bool streamB_;
  const Operand a_, b_;
  const int64_t i0_;
  const int rows_;
  const int64_t j0_;
  const int cols_;
  const int pairs_; // of a panel: K's pairs, padded as the layout wants
  uint32_t* const packA_;
  uint32_t* const packB_;
  float* const c_;
  const int64_t ldc_;
  const float alpha_, beta_;
  const bool firstDepth_;
  const int phase_;
};

} // namespace

__attribute__((target("avx512f,avx512bf16"))) void GemmBf16Products(Bf16Kernel kernel, bool transA, bool transB, int m, int n, int k,
                                                                      float alpha, float beta, const float* A, int lda, const float* B,
                                                                      int ldb, float* C, int ldc) {
  const Layout& layout = kernel == Bf16Kernel::kAmx && HaveAmxBf16() ? kAmxLayout : kAvx512Layout;
  // op(A) as m rows of K, op(B) as n rows (columns of C) of K
  const Operand a{A, lda, !transA, k};
  const Operand b{B, ldb, transB, k};
  const int64_t depthPairs = layout.Padded((std::min(k, kSuperDepth) + 1) / 2);
  const int64_t superRows = std::max<int64_t>(kSuperRows, kPackBytesA / (4 * depthPairs * kMacroRows) * kMacroRows);
  thread_local PackBuffer bufA, bufB;
  // few rows (the loss's blocks of rows against the LM head): each B element serves only m rows, so packing
  // B whole would cost a write and a read of it from memory; items pack their columns as they go instead
  const bool streamB = m <= kStreamRows;
  for (int64_t i0 = 0; i0 < m; i0 += superRows) {
    const int rows = static_cast<int>(std::min<int64_t>(superRows, m - i0));
    uint32_t* packA = bufA.Get((rows + layout.panelRows - 1) / layout.panelRows * layout.panelRows * depthPairs);
    for (int k0 = 0; k0 < k; k0 += kSuperDepth) {
      const Operand ak = a.Slice(k0, std::min(kSuperDepth, k - k0)), bk = b.Slice(k0, std::min(kSuperDepth, k - k0));
      if (streamB) {
        SuperBlock pack(layout, ak, bk, i0, rows, 0, n, packA, nullptr, C, ldc, alpha, beta, k0 == 0, true, 0);
        RunShared(pack);
        SuperBlock tiles(layout, ak, bk, i0, rows, 0, n, packA, nullptr, C, ldc, alpha, beta, k0 == 0, true, 1);
        RunShared(tiles);
        continue;
      }
      for (int64_t j0 = 0; j0 < n; j0 += kSuperCols) {
        const int cols = static_cast<int>(std::min<int64_t>(kSuperCols, n - j0));
        uint32_t* packB = bufB.Get((cols + kTileCols - 1) / kTileCols * kTileCols * depthPairs);
        // A's panels are packed with the first column block only; later blocks pack B alone
        SuperBlock pack(layout, ak, bk, i0, j0 == 0 ? rows : 0, j0, cols, packA, packB, C, ldc, alpha, beta, k0 == 0, false, 0);
        RunShared(pack);
        SuperBlock tiles(layout, ak, bk, i0, rows, j0, cols, packA, packB, C, ldc, alpha, beta, k0 == 0, false, 1);
        RunShared(tiles);
      }
    }
  }
}
#endif

} // namespace supra
