// Single-precision GEMM, C = alpha·op(A)·op(B) + beta·C, row-major, the GotoBLAS/BLIS way:
// panels of op(B) (KC×NC) and op(A) (MC×KC) are packed into contiguous, zero-padded strips (the
// packing absorbs the transpose flags), and a 4×8 register-blocked microkernel of eight f32x4
// accumulators runs over them: per k step two B vectors, four broadcast A values, 8 mul + 8 add.
//
// Why 4×8: V8 (TurboFan) has 15 usable xmm registers and schedules all loads of a loop body before
// its arithmetic, so accumulators + loaded values + one temporary must fit in 15: 8 + 6 + 1 here.
// 5×8, 6×8 and k-unrolled variants spill and measured 25–40% slower. In SIMD128 there is no FMA, so
// mul and add are separate instructions: the 4×8 loop runs ~6 cycles per k step on Zen 4 (about
// 40 GFLOP/s on one core here), bound by instruction dispatch. The FMA build (kernels-fma.wasm, relaxed
// SIMD, see madd) fuses them and is bound by the FMA pipes instead: 50–51 GFLOP/s on the same core.
// Products of m ≤ 4 rows (decoding) skip all this: see sgemmSmallM.
// Blocking: KC = 512 (a B micro-panel of 16 KiB stays in L1), MC = 64 (A block 128 KiB in L2),
// NC = 512 (B block 1 MiB). KC 128–512, MC 64–256, NC 512–1024 were all within 3% of each other.
//
// Pointers are byte offsets in the shared memory; the caller (JS) splits C into tiles for threads.

export const MR: i32 = 4;
export const NR: i32 = 8;
export const KC: i32 = 512;
export const MC: i32 = 64;
export const NC: i32 = 512;
/** floats of scratch one thread needs: packed A block, packed B block, one edge tile */
export const WORK_FLOATS: i32 = MC * KC + KC * NC + MR * NR;

// c + a·b. The FMA build (kernels-fma.wasm, relaxed SIMD) fuses it into one instruction: the 4×8 loop
// then issues 14 instead of 22 instructions per k step.
// @ts-ignore: decorator
@inline function madd(c: v128, a: v128, b: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

/**
 * One MR×NR tile: acc = Σ_p Ap[p]·Bp[p] over kc steps, then C = alpha·acc (+ beta·C unless
 * overwrite). ldc is in bytes.
 */
function micro4x8(kc: i32, pa: usize, pb: usize, c: usize, ldc: usize, alpha: f32, beta: f32, overwrite: bool): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  const end = pb + (<usize>kc << 5);
  while (pb < end) {
    const b0 = v128.load(pb);
    const b1 = v128.load(pb, 16);
    let a = v128.load32_splat(pa);
    c00 = madd(c00, a, b0);
    c01 = madd(c01, a, b1);
    a = v128.load32_splat(pa, 4);
    c10 = madd(c10, a, b0);
    c11 = madd(c11, a, b1);
    a = v128.load32_splat(pa, 8);
    c20 = madd(c20, a, b0);
    c21 = madd(c21, a, b1);
    a = v128.load32_splat(pa, 12);
    c30 = madd(c30, a, b0);
    c31 = madd(c31, a, b1);
    pa += 16;
    pb += 32;
  }
  const va = f32x4.splat(alpha);
  if (overwrite) {
    v128.store(c, f32x4.mul(va, c00));
    v128.store(c, f32x4.mul(va, c01), 16);
    c += ldc;
    v128.store(c, f32x4.mul(va, c10));
    v128.store(c, f32x4.mul(va, c11), 16);
    c += ldc;
    v128.store(c, f32x4.mul(va, c20));
    v128.store(c, f32x4.mul(va, c21), 16);
    c += ldc;
    v128.store(c, f32x4.mul(va, c30));
    v128.store(c, f32x4.mul(va, c31), 16);
  } else {
    const vb = f32x4.splat(beta);
    v128.store(c, madd(f32x4.mul(va, c00), vb, v128.load(c)));
    v128.store(c, madd(f32x4.mul(va, c01), vb, v128.load(c, 16)), 16);
    c += ldc;
    v128.store(c, madd(f32x4.mul(va, c10), vb, v128.load(c)));
    v128.store(c, madd(f32x4.mul(va, c11), vb, v128.load(c, 16)), 16);
    c += ldc;
    v128.store(c, madd(f32x4.mul(va, c20), vb, v128.load(c)));
    v128.store(c, madd(f32x4.mul(va, c21), vb, v128.load(c, 16)), 16);
    c += ldc;
    v128.store(c, madd(f32x4.mul(va, c30), vb, v128.load(c)));
    v128.store(c, madd(f32x4.mul(va, c31), vb, v128.load(c, 16)), 16);
  }
}

// 4×4 transpose of rows r0..r3 stored at out, out+16, out+32, out+48 as columns
// @ts-ignore: decorator
@inline function transpose4(r0: v128, r1: v128, r2: v128, r3: v128, out: usize, stride: usize): void {
  const t0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5);
  const t1 = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5);
  const t2 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7);
  const t3 = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
  v128.store(out, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
  v128.store(out + stride, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7));
  v128.store(out + 2 * stride, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5));
  v128.store(out + 3 * stride, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7));
}

/**
 * Pack op(A)[0:mc, 0:kc] into MR-row strips, each kc steps of MR values (zero rows past mc).
 * a points at op(A)[0][0]; lda in floats.
 */
function packA(transA: bool, mc: i32, kc: i32, a: usize, lda: i32, out: usize): void {
  const ldab = <usize>lda << 2;
  for (let i0 = 0; i0 < mc; i0 += MR) {
    const rows = min(MR, mc - i0);
    if (transA) {
      // A is stored k×m: the MR values of one step are contiguous
      let src = a + (<usize>i0 << 2);
      if (rows == MR) {
        for (let p = 0; p < kc; p++) {
          v128.store(out, v128.load(src));
          src += ldab;
          out += 16;
        }
      } else {
        for (let p = 0; p < kc; p++) {
          for (let r = 0; r < MR; r++) store<f32>(out + (<usize>r << 2), r < rows ? load<f32>(src + (<usize>r << 2)) : 0);
          src += ldab;
          out += 16;
        }
      }
    } else {
      // A is stored m×k: read 4 steps of each of the MR rows and transpose
      const r0 = a + <usize>i0 * ldab;
      if (rows == MR) {
        const r1 = r0 + ldab, r2 = r1 + ldab, r3 = r2 + ldab;
        let p = 0;
        for (; p + 4 <= kc; p += 4) {
          const o = <usize>p << 2;
          transpose4(v128.load(r0 + o), v128.load(r1 + o), v128.load(r2 + o), v128.load(r3 + o), out, 16);
          out += 64;
        }
        for (; p < kc; p++) {
          const o = <usize>p << 2;
          store<f32>(out, load<f32>(r0 + o));
          store<f32>(out, load<f32>(r1 + o), 4);
          store<f32>(out, load<f32>(r2 + o), 8);
          store<f32>(out, load<f32>(r3 + o), 12);
          out += 16;
        }
      } else {
        for (let p = 0; p < kc; p++) {
          for (let r = 0; r < MR; r++) {
            store<f32>(out + (<usize>r << 2), r < rows ? load<f32>(r0 + <usize>r * ldab + (<usize>p << 2)) : 0);
          }
          out += 16;
        }
      }
    }
  }
}

/**
 * Pack op(B)[0:kc, 0:nc] into NR-column strips, each kc steps of NR values (zero columns past nc).
 * b points at op(B)[0][0]; ldb in floats.
 */
function packB(transB: bool, kc: i32, nc: i32, b: usize, ldb: i32, out: usize): void {
  const ldbb = <usize>ldb << 2;
  for (let j0 = 0; j0 < nc; j0 += NR) {
    const cols = min(NR, nc - j0);
    if (!transB) {
      // B is stored k×n: the NR values of one step are contiguous
      let src = b + (<usize>j0 << 2);
      if (cols == NR) {
        for (let p = 0; p < kc; p++) {
          v128.store(out, v128.load(src));
          v128.store(out, v128.load(src, 16), 16);
          src += ldbb;
          out += 32;
        }
      } else {
        for (let p = 0; p < kc; p++) {
          for (let c = 0; c < NR; c++) store<f32>(out + (<usize>c << 2), c < cols ? load<f32>(src + (<usize>c << 2)) : 0);
          src += ldbb;
          out += 32;
        }
      }
    } else {
      // B is stored n×k: read 4 steps of each of the NR rows and transpose in two 4×4 blocks
      const s0 = b + <usize>j0 * ldbb;
      if (cols == NR) {
        const s1 = s0 + ldbb, s2 = s1 + ldbb, s3 = s2 + ldbb;
        const s4 = s3 + ldbb, s5 = s4 + ldbb, s6 = s5 + ldbb, s7 = s6 + ldbb;
        let p = 0;
        for (; p + 4 <= kc; p += 4) {
          const o = <usize>p << 2;
          transpose4(v128.load(s0 + o), v128.load(s1 + o), v128.load(s2 + o), v128.load(s3 + o), out, 32);
          transpose4(v128.load(s4 + o), v128.load(s5 + o), v128.load(s6 + o), v128.load(s7 + o), out + 16, 32);
          out += 128;
        }
        for (; p < kc; p++) {
          const o = <usize>p << 2;
          for (let c = 0; c < NR; c++) store<f32>(out + (<usize>c << 2), load<f32>(s0 + <usize>c * ldbb + o));
          out += 32;
        }
      } else {
        for (let p = 0; p < kc; p++) {
          const o = <usize>p << 2;
          for (let c = 0; c < NR; c++) store<f32>(out + (<usize>c << 2), c < cols ? load<f32>(s0 + <usize>c * ldbb + o) : 0);
          out += 32;
        }
      }
    }
  }
}

// ---------------------------------------------------------------- BF16 weights
//
// A BF16 value is the top half of a float32, so widening is a 16-bit shift (exact): the products by a
// BF16 weight (src/core/weights.ts) are the float32 products by the widened weight, computed by the same
// kernels in the same order (same bits), with the widening done where the weight is read: in packing
// (gemmBf16 with m > SMALL_M) or in registers (dotBf16, the decoding path).

/** Four BF16 values at p widened to float32. */
// @ts-ignore: decorator
@inline function widen4(p: usize): v128 {
  return i32x4.shl(v128.load16x4_u(p), 16);
}

/** One BF16 value at p widened to float32. */
// @ts-ignore: decorator
@inline function widen1(p: usize): f32 {
  return reinterpret<f32>(<u32>load<u16>(p) << 16);
}

/** One BF16 value at p widened to float32 in all four lanes. */
// @ts-ignore: decorator
@inline function widenSplat(p: usize): v128 {
  return i32x4.shl(v128.load16_splat(p), 16);
}

/**
 * packB for a BF16 B stored n×k (transB, a weight): the same strips as packB, widened to float32.
 * b points at B[0][0]; ldb in values.
 */
function packBBf16(kc: i32, nc: i32, b: usize, ldb: i32, out: usize): void {
  const ldbb = <usize>ldb << 1;
  for (let j0 = 0; j0 < nc; j0 += NR) {
    const cols = min(NR, nc - j0);
    const s0 = b + <usize>j0 * ldbb;
    if (cols == NR) {
      const s1 = s0 + ldbb, s2 = s1 + ldbb, s3 = s2 + ldbb;
      const s4 = s3 + ldbb, s5 = s4 + ldbb, s6 = s5 + ldbb, s7 = s6 + ldbb;
      let p = 0;
      for (; p + 4 <= kc; p += 4) {
        const o = <usize>p << 1;
        transpose4(widen4(s0 + o), widen4(s1 + o), widen4(s2 + o), widen4(s3 + o), out, 32);
        transpose4(widen4(s4 + o), widen4(s5 + o), widen4(s6 + o), widen4(s7 + o), out + 16, 32);
        out += 128;
      }
      for (; p < kc; p++) {
        const o = <usize>p << 1;
        for (let c = 0; c < NR; c++) store<f32>(out + (<usize>c << 2), widen1(s0 + <usize>c * ldbb + o));
        out += 32;
      }
    } else {
      for (let p = 0; p < kc; p++) {
        const o = <usize>p << 1;
        for (let c = 0; c < NR; c++) store<f32>(out + (<usize>c << 2), c < cols ? widen1(s0 + <usize>c * ldbb + o) : 0);
        out += 32;
      }
    }
  }
}

// ---------------------------------------------------------------- int8 weights
//
// An int8 weight (src/core/weights.ts, Int8GemmArgs in src/core/backend.ts) holds each row in blocks of
// INT8_BLOCK values along k, block b of row j being scales[j·ceil(k/32) + b]·q, the scales BF16 (widened as a
// BF16 weight is: widen1, widenSplat). Packed products dequantize
// as they pack (q·scale in float32, the values weights.ts's toFloat gives), so they are the float32 products
// by the dequantized weight, bit for bit; decoding products (dotInt8) sum each block in float32 on the
// widened q and scale the block's sum.

export const INT8_BLOCK: i32 = 32;

/** Blocks per row of an int8 weight with rows of k values. */
// @ts-ignore: decorator
@inline function int8Blocks(k: i32): i32 {
  return (k + INT8_BLOCK - 1) / INT8_BLOCK;
}

/** Four int8 values at p as float32. */
// @ts-ignore: decorator
@inline function int8x4(p: usize): v128 {
  return f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(v128.load8x8_s(p)));
}

/**
 * packB for an int8 B stored n×k (a weight): the same strips as packB, dequantized. b points at B[0][pc]
 * (bytes), ldb in values (k), sc at the scales of B's row 0; pc is the strip's offset along k, which
 * decides each value's block. Four values from a multiple of 4 are always in one block.
 */
function packBInt8(kc: i32, nc: i32, b: usize, ldb: i32, sc: usize, pc: i32, out: usize): void {
  const ldbb = <usize>ldb;
  const lds = <usize>int8Blocks(ldb) << 1;
  for (let j0 = 0; j0 < nc; j0 += NR) {
    const cols = min(NR, nc - j0);
    const s0 = b + <usize>j0 * ldbb;
    const c0 = sc + <usize>j0 * lds;
    if (cols == NR) {
      let p = 0;
      for (; p + 4 <= kc; p += 4) {
        const o = <usize>p;
        const so = <usize>((pc + p) / INT8_BLOCK) << 1;
        const w0 = f32x4.mul(int8x4(s0 + o), widenSplat(c0 + so));
        const w1 = f32x4.mul(int8x4(s0 + ldbb + o), widenSplat(c0 + lds + so));
        const w2 = f32x4.mul(int8x4(s0 + 2 * ldbb + o), widenSplat(c0 + 2 * lds + so));
        const w3 = f32x4.mul(int8x4(s0 + 3 * ldbb + o), widenSplat(c0 + 3 * lds + so));
        transpose4(w0, w1, w2, w3, out, 32);
        const w4 = f32x4.mul(int8x4(s0 + 4 * ldbb + o), widenSplat(c0 + 4 * lds + so));
        const w5 = f32x4.mul(int8x4(s0 + 5 * ldbb + o), widenSplat(c0 + 5 * lds + so));
        const w6 = f32x4.mul(int8x4(s0 + 6 * ldbb + o), widenSplat(c0 + 6 * lds + so));
        const w7 = f32x4.mul(int8x4(s0 + 7 * ldbb + o), widenSplat(c0 + 7 * lds + so));
        transpose4(w4, w5, w6, w7, out + 16, 32);
        out += 128;
      }
      for (; p < kc; p++) {
        const so = <usize>((pc + p) / INT8_BLOCK) << 1;
        for (let c = 0; c < NR; c++) store<f32>(out + (<usize>c << 2), <f32>load<i8>(s0 + <usize>c * ldbb + <usize>p) * widen1(c0 + <usize>c * lds + so));
        out += 32;
      }
    } else {
      for (let p = 0; p < kc; p++) {
        const so = <usize>((pc + p) / INT8_BLOCK) << 1;
        for (let c = 0; c < NR; c++) {
          store<f32>(out + (<usize>c << 2), c < cols ? <f32>load<i8>(s0 + <usize>c * ldbb + <usize>p) * widen1(c0 + <usize>c * lds + so) : 0);
        }
        out += 32;
      }
    }
  }
}

/** C[0:m, 0:n] = beta·C (beta = 0 writes zeros, so NaN garbage in C does not survive). */
function scaleC(m: i32, n: i32, beta: f32, c: usize, ldc: i32): void {
  for (let i = 0; i < m; i++) {
    const row = c + <usize>i * (<usize>ldc << 2);
    for (let j = 0; j < n; j++) {
      const q = row + (<usize>j << 2);
      store<f32>(q, beta == 0 ? 0 : beta * load<f32>(q));
    }
  }
}

/**
 * One product C = alpha·op(A)·op(B) + beta·C on an m×n block; a, b, c point at its first element.
 * work: WORK_FLOATS floats of this thread's scratch.
 */
export function sgemmBlock(
  transA: bool, transB: bool, m: i32, n: i32, k: i32, alpha: f32,
  a: usize, lda: i32, b: usize, ldb: i32, beta: f32, c: usize, ldc: i32, work: usize,
): void {
  gemmBlock(transA, transB, B_F32, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, work);
}

/** How B is stored in gemmBlock: float32, or (then transB: a weight stored n×k) BF16 or int8 with scales. */
const B_F32: i32 = 0;
const B_BF16: i32 = 1;
const B_INT8: i32 = 2;

/** sgemmBlock, with B stored as bType says (scales: an int8 B's, for its rows from the first). */
function gemmBlock(
  transA: bool, transB: bool, bType: i32, m: i32, n: i32, k: i32, alpha: f32,
  a: usize, lda: i32, b: usize, ldb: i32, beta: f32, c: usize, ldc: i32, work: usize, scales: usize = 0,
): void {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == 0) {
    scaleC(m, n, beta, c, ldc);
    return;
  }
  const ap = work;
  const bp = work + (<usize>(MC * KC) << 2);
  const tile = bp + (<usize>(KC * NC) << 2);
  const ldcb = <usize>ldc << 2;
  for (let jc = 0; jc < n; jc += NC) {
    const nc = min(NC, n - jc);
    for (let pc = 0; pc < k; pc += KC) {
      const kc = min(KC, k - pc);
      if (bType == B_BF16) packBBf16(kc, nc, b + (<usize>jc * <usize>ldb + <usize>pc) * 2, ldb, bp);
      else if (bType == B_INT8) packBInt8(kc, nc, b + <usize>jc * <usize>ldb + <usize>pc, ldb, scales + <usize>jc * <usize>int8Blocks(ldb) * 2, pc, bp);
      else packB(transB, kc, nc, transB ? b + (<usize>jc * <usize>ldb + <usize>pc) * 4 : b + (<usize>pc * <usize>ldb + <usize>jc) * 4, ldb, bp);
      const first = pc == 0;
      const betaNow: f32 = first ? beta : 1; // later K blocks accumulate onto the first
      const overwrite = first && beta == 0;
      for (let ic = 0; ic < m; ic += MC) {
        const mc = min(MC, m - ic);
        const asrc = transA ? a + (<usize>pc * <usize>lda + <usize>ic) * 4 : a + (<usize>ic * <usize>lda + <usize>pc) * 4;
        packA(transA, mc, kc, asrc, lda, ap);
        for (let jr = 0; jr < nc; jr += NR) {
          const nr = min(NR, nc - jr);
          const pb = bp + <usize>(jr * kc) * 4;
          for (let ir = 0; ir < mc; ir += MR) {
            const mr = min(MR, mc - ir);
            const pa = ap + <usize>(ir * kc) * 4;
            const cp = c + <usize>(ic + ir) * ldcb + (<usize>(jc + jr) << 2);
            if (mr == MR && nr == NR) {
              micro4x8(kc, pa, pb, cp, ldcb, alpha, betaNow, overwrite);
            } else {
              // edge tile: full tile into scratch, then merge the valid part
              micro4x8(kc, pa, pb, tile, <usize>NR << 2, 1, 0, true);
              for (let i = 0; i < mr; i++) {
                for (let j = 0; j < nr; j++) {
                  const q = cp + <usize>i * ldcb + (<usize>j << 2);
                  const v = alpha * load<f32>(tile + <usize>(i * NR + j) * 4);
                  store<f32>(q, overwrite ? v : v + betaNow * load<f32>(q));
                }
              }
            }
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------- small m (GEMV-like products)
//
// With m ≤ SMALL_M rows (a decoding step: one token per sequence) packing costs as much as the product
// itself (every element of B is packed to be used m times), so these products run unpacked. Each C
// element is summed in an order fixed by the shape alone (never by the tile it falls in), so any
// thread split gives the same bits.

export const SMALL_M: i32 = 4;

// @ts-ignore: decorator
@inline function hsum4(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

// @ts-ignore: decorator
@inline function storeC(q: usize, acc: f32, alpha: f32, beta: f32): void {
  store<f32>(q, beta == 0 ? alpha * acc : alpha * acc + beta * load<f32>(q));
}

/**
 * Σ_p x[p]·y[p] over k contiguous floats: four lanes over the first k & ~3 (summed pairwise), then the
 * rest in order. Every dot product of the small-m path is summed this way.
 */
/** Σ_{p in [from, k)} x[p]·y[p], in order (the last k mod 4 steps of a dot product). */
// @ts-ignore: decorator
@inline function tail(x: usize, y: usize, from: i32, k: i32): f32 {
  let s: f32 = 0;
  for (let p = from; p < k; p++) s += load<f32>(x + (<usize>p << 2)) * load<f32>(y + (<usize>p << 2));
  return s;
}

/**
 * Σ_p x[p]·y[p] over k contiguous floats: four lanes over the first k & ~3 (summed pairwise), plus the
 * rest summed in order. Every dot product of the small-m path is summed this way.
 */
// @ts-ignore: decorator
@inline function dot(x: usize, y: usize, k: i32): f32 {
  // one sequential stream through y (a weight row: prefetch-friendly), four independent chains
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  const k16 = k & ~15;
  let p = 0;
  for (; p < k16; p += 16) {
    const o = <usize>p << 2;
    a0 = madd(a0, v128.load(x + o), v128.load(y + o));
    a1 = madd(a1, v128.load(x + o, 16), v128.load(y + o, 16));
    a2 = madd(a2, v128.load(x + o, 32), v128.load(y + o, 32));
    a3 = madd(a3, v128.load(x + o, 48), v128.load(y + o, 48));
  }
  const k4 = k & ~3;
  for (; p < k4; p += 4) a0 = madd(a0, v128.load(x + (<usize>p << 2)), v128.load(y + (<usize>p << 2)));
  return hsum4(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3))) + tail(x, y, k4, k);
}

/** dot(x, y, k) with y k BF16 values, widened in registers: the same sums in the same order. */
// @ts-ignore: decorator
@inline function dotBf16(x: usize, y: usize, k: i32): f32 {
  const zero = f32x4.splat(0);
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  const k16 = k & ~15;
  let p = 0;
  for (; p < k16; p += 16) {
    const o = <usize>p << 2;
    const w0 = v128.load(y + (<usize>p << 1));
    const w1 = v128.load(y + (<usize>p << 1), 16);
    // each BF16 value as the high half of a float32 lane: interleave with zeros
    a0 = madd(a0, v128.load(x + o), v128.shuffle<i16>(zero, w0, 0, 8, 1, 9, 2, 10, 3, 11));
    a1 = madd(a1, v128.load(x + o, 16), v128.shuffle<i16>(zero, w0, 4, 12, 5, 13, 6, 14, 7, 15));
    a2 = madd(a2, v128.load(x + o, 32), v128.shuffle<i16>(zero, w1, 0, 8, 1, 9, 2, 10, 3, 11));
    a3 = madd(a3, v128.load(x + o, 48), v128.shuffle<i16>(zero, w1, 4, 12, 5, 13, 6, 14, 7, 15));
  }
  const k4 = k & ~3;
  for (; p < k4; p += 4) a0 = madd(a0, v128.load(x + (<usize>p << 2)), widen4(y + (<usize>p << 1)));
  let s: f32 = 0;
  for (let q = k4; q < k; q++) s += load<f32>(x + (<usize>q << 2)) * widen1(y + (<usize>q << 1));
  return hsum4(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3))) + s;
}

/** One whole block of an int8 row (q at qo, its scale at so) against the block's x vectors, into acc. */
// @ts-ignore: decorator
@inline function blockInt8(acc: v128, x0: v128, x1: v128, x2: v128, x3: v128, x4: v128, x5: v128, x6: v128, x7: v128, qo: usize, so: usize): v128 {
  const q0 = v128.load8x8_s(qo), q1 = v128.load8x8_s(qo, 8), q2 = v128.load8x8_s(qo, 16), q3 = v128.load8x8_s(qo, 24);
  let s0 = f32x4.mul(x0, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(q0)));
  let s1 = f32x4.mul(x1, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(q0)));
  s0 = madd(s0, x2, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(q1)));
  s1 = madd(s1, x3, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(q1)));
  s0 = madd(s0, x4, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(q2)));
  s1 = madd(s1, x5, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(q2)));
  s0 = madd(s0, x6, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(q3)));
  s1 = madd(s1, x7, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(q3)));
  return madd(acc, f32x4.add(s0, s1), widenSplat(so));
}

/**
 * Σ_p x[p]·w[p] over k floats x and one row of an int8 weight (q: k int8 values, sc: its scales): each
 * whole block summed on the widened q in two chains, times its scale into four lanes; a last, shorter
 * block summed in order and scaled alone.
 */
// @ts-ignore: decorator
@inline function dotInt8(x: usize, q: usize, sc: usize, k: i32): f32 {
  let acc = f32x4.splat(0);
  const whole = k / INT8_BLOCK;
  for (let b = 0; b < whole; b++) {
    const xo = x + (<usize>b << 7);
    const x0 = v128.load(xo), x1 = v128.load(xo, 16), x2 = v128.load(xo, 32), x3 = v128.load(xo, 48);
    const x4 = v128.load(xo, 64), x5 = v128.load(xo, 80), x6 = v128.load(xo, 96), x7 = v128.load(xo, 112);
    acc = blockInt8(acc, x0, x1, x2, x3, x4, x5, x6, x7, q + (<usize>b << 5), sc + (<usize>b << 1));
  }
  let rest: f32 = 0;
  const from = whole * INT8_BLOCK;
  if (from < k) {
    let s: f32 = 0;
    for (let p = from; p < k; p++) s += load<f32>(x + (<usize>p << 2)) * <f32>load<i8>(q + <usize>p);
    rest = s * widen1(sc + (<usize>whole << 1));
  }
  return hsum4(acc) + rest;
}

/**
 * dotInt8 of one x against two rows of an int8 weight (qa, qb with their scales), stored at ya and yb: each
 * row's sums in dotInt8's order (the same bits), x's vectors loaded once for both. Decoding SmolLM-135M's SUPRA
 * model at int8 on wasm (2 threads, the Xeon VM, 2026-12-08, processes alternated three times) went from
 * 27.7-28.0 to 38.7-40.3 tokens/s, about BF16's speed there; two BF16 rows at a time made no difference
 * (35.7-36.0 against 36.8-36.9), so dotBf16 keeps one.
 */
// @ts-ignore: decorator
@inline function dotInt8Two(x: usize, qa: usize, sa: usize, qb: usize, sb: usize, k: i32, ya: usize, yb: usize): void {
  let accA = f32x4.splat(0), accB = f32x4.splat(0);
  const whole = k / INT8_BLOCK;
  for (let b = 0; b < whole; b++) {
    const xo = x + (<usize>b << 7);
    const x0 = v128.load(xo), x1 = v128.load(xo, 16), x2 = v128.load(xo, 32), x3 = v128.load(xo, 48);
    const x4 = v128.load(xo, 64), x5 = v128.load(xo, 80), x6 = v128.load(xo, 96), x7 = v128.load(xo, 112);
    const qo = <usize>b << 5, so = <usize>b << 1;
    accA = blockInt8(accA, x0, x1, x2, x3, x4, x5, x6, x7, qa + qo, sa + so);
    accB = blockInt8(accB, x0, x1, x2, x3, x4, x5, x6, x7, qb + qo, sb + so);
  }
  let restA: f32 = 0, restB: f32 = 0;
  const from = whole * INT8_BLOCK;
  if (from < k) {
    let s: f32 = 0, t: f32 = 0;
    for (let p = from; p < k; p++) {
      const xp = load<f32>(x + (<usize>p << 2));
      s += xp * <f32>load<i8>(qa + <usize>p);
      t += xp * <f32>load<i8>(qb + <usize>p);
    }
    restA = s * widen1(sa + (<usize>whole << 1));
    restB = t * widen1(sb + (<usize>whole << 1));
  }
  store<f32>(ya, hsum4(accA) + restA);
  store<f32>(yb, hsum4(accB) + restB);
}

/**
 * C[0:m, 0:n] = alpha·op(A)·op(B) + beta·C for m ≤ SMALL_M without packing. op(B) stored n×k (transB,
 * a PyTorch weight): dot products of A rows with four B rows at a time; stored k×n: rows of B scaled
 * and summed, 16 columns at a time. A transposed A is first copied to rows in `work` (m·k floats).
 */
export function sgemmSmallM(
  transA: bool, transB: bool, m: i32, n: i32, k: i32, alpha: f32,
  a: usize, lda: i32, b: usize, ldb: i32, beta: f32, c: usize, ldc: i32, work: usize,
): void {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == 0) {
    scaleC(m, n, beta, c, ldc);
    return;
  }
  const ldcb = <usize>ldc << 2;
  const ldbb = <usize>ldb << 2;
  let arow = a;
  let ldab = <usize>lda << 2;
  if (transA) {
    // op(A)[i][p] = a[p·lda + i]: gather the m rows
    for (let i = 0; i < m; i++) {
      for (let p = 0; p < k; p++) store<f32>(work + (<usize>(i * k + p) << 2), load<f32>(a + (<usize>p * <usize>lda + <usize>i) * 4));
    }
    arow = work;
    ldab = <usize>k << 2;
  }
  if (transB) {
    // one weight row at a time: a single sequential stream through B, which the prefetcher follows
    // (interleaving 4–8 rows ran 2–3× slower from L3)
    for (let j = 0; j < n; j++) {
      const bj = b + <usize>j * ldbb;
      for (let i = 0; i < m; i++) storeC(c + <usize>i * ldcb + (<usize>j << 2), dot(arow + <usize>i * ldab, bj, k), alpha, beta);
    }
    return;
  }
  // B stored k×n: C[i, j] = Σ_p op(A)[i][p]·B[p][j], summed over p in order in every lane
  const va = f32x4.splat(alpha), vb = f32x4.splat(beta);
  for (let i = 0; i < m; i++) {
    const x = arow + <usize>i * ldab;
    const ci = c + <usize>i * ldcb;
    let j = 0;
    for (; j + 16 <= n; j += 16) {
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
      let bp = b + (<usize>j << 2);
      for (let p = 0; p < k; p++) {
        const xs = v128.load32_splat(x + (<usize>p << 2));
        s0 = madd(s0, xs, v128.load(bp));
        s1 = madd(s1, xs, v128.load(bp, 16));
        s2 = madd(s2, xs, v128.load(bp, 32));
        s3 = madd(s3, xs, v128.load(bp, 48));
        bp += ldbb;
      }
      const q = ci + (<usize>j << 2);
      if (beta == 0) {
        v128.store(q, f32x4.mul(va, s0));
        v128.store(q, f32x4.mul(va, s1), 16);
        v128.store(q, f32x4.mul(va, s2), 32);
        v128.store(q, f32x4.mul(va, s3), 48);
      } else {
        v128.store(q, madd(f32x4.mul(va, s0), vb, v128.load(q)));
        v128.store(q, madd(f32x4.mul(va, s1), vb, v128.load(q, 16)), 16);
        v128.store(q, madd(f32x4.mul(va, s2), vb, v128.load(q, 32)), 32);
        v128.store(q, madd(f32x4.mul(va, s3), vb, v128.load(q, 48)), 48);
      }
    }
    for (; j < n; j++) {
      let s: f32 = 0;
      let bp = b + (<usize>j << 2);
      for (let p = 0; p < k; p++) {
        s += load<f32>(x + (<usize>p << 2)) * load<f32>(bp);
        bp += ldbb;
      }
      storeC(ci + (<usize>j << 2), s, alpha, beta);
    }
  }
}

/** True when a product of this shape runs on the small-m path (a transposed A must fit in work). */
// @ts-ignore: decorator
@inline function useSmallM(transA: bool, m: i32, k: i32): bool {
  return m <= SMALL_M && (!transA || m * k <= WORK_FLOATS);
}

/**
 * The unit of work the thread pool hands out: tiles [lo, hi) of a batched product whose C is cut in
 * tilesM × tilesN tiles of tileM × tileN per batch entry (tile t: batch t / (tilesM·tilesN), then
 * row-major). Strides are in floats.
 */
export function sgemmTiles(
  transA: bool, transB: bool, m: i32, n: i32, k: i32, alpha: f32,
  a: usize, lda: i32, strideA: i32, b: usize, ldb: i32, strideB: i32,
  beta: f32, c: usize, ldc: i32, strideC: i32,
  tileM: i32, tileN: i32, tilesM: i32, tilesN: i32, lo: i32, hi: i32, work: usize,
): void {
  const perBatch = tilesM * tilesN;
  const small = useSmallM(transA, m, k); // decided on the whole product's shape, never the tile's
  for (let t = lo; t < hi; t++) {
    const bi = t / perBatch;
    const r = t - bi * perBatch;
    const i0 = (r / tilesN) * tileM;
    const j0 = (r % tilesN) * tileN;
    const mm = min(tileM, m - i0);
    const nn = min(tileN, n - j0);
    if (mm <= 0 || nn <= 0) continue;
    const ab = a + (<usize>bi * <usize>strideA) * 4;
    const bb = b + (<usize>bi * <usize>strideB) * 4;
    const cb = c + (<usize>bi * <usize>strideC) * 4;
    const at = transA ? ab + (<usize>i0 << 2) : ab + <usize>i0 * <usize>lda * 4;
    const bt = transB ? bb + <usize>j0 * <usize>ldb * 4 : bb + (<usize>j0 << 2);
    const ct = cb + (<usize>i0 * <usize>ldc + <usize>j0) * 4;
    if (small) sgemmSmallM(transA, transB, mm, nn, k, alpha, at, lda, bt, ldb, beta, ct, ldc, work);
    else sgemmBlock(transA, transB, mm, nn, k, alpha, at, lda, bt, ldb, beta, ct, ldc, work);
  }
}

/**
 * The unit of work of a product by a BF16 weight, y[m, n] = x[m, k]·Wᵀ (W stored n×k; all packed): tiles
 * [lo, hi) of y cut in tilesM × tilesN tiles of tileM × tileN, as sgemmTiles. Products of m ≤ SMALL_M rows
 * run unpacked (dotBf16, as sgemmSmallM), others packed (gemmBlock, widening as it packs): each gives the
 * bits sgemmTiles gives for the widened weight.
 */
export function gemmBf16Tiles(
  m: i32, n: i32, k: i32, x: usize, w: usize, y: usize,
  tileM: i32, tileN: i32, tilesM: i32, tilesN: i32, lo: i32, hi: i32, work: usize,
): void {
  const small = m <= SMALL_M;
  const rowX = <usize>k << 2, rowW = <usize>k << 1, rowY = <usize>n << 2;
  for (let t = lo; t < hi; t++) {
    const i0 = (t / tilesN) * tileM;
    const j0 = (t % tilesN) * tileN;
    const mm = min(tileM, m - i0);
    const nn = min(tileN, n - j0);
    if (mm <= 0 || nn <= 0) continue;
    const xt = x + <usize>i0 * rowX;
    const wt = w + <usize>j0 * rowW;
    const yt = y + <usize>i0 * rowY + (<usize>j0 << 2);
    if (!small) {
      gemmBlock(false, true, B_BF16, mm, nn, k, 1, xt, k, wt, k, 0, yt, n, work);
    } else if (k <= 0) {
      scaleC(mm, nn, 0, yt, n);
    } else {
      for (let j = 0; j < nn; j++) {
        const wj = wt + <usize>j * rowW;
        for (let i = 0; i < mm; i++) store<f32>(yt + <usize>i * rowY + (<usize>j << 2), dotBf16(xt + <usize>i * rowX, wj, k));
      }
    }
  }
}

/**
 * The unit of work of a product by an int8 weight (Int8GemmArgs), cut in tiles as gemmBf16Tiles: products
 * of m ≤ SMALL_M rows unpacked (dotInt8), others packed (gemmBlock, dequantizing as it packs: the float32
 * product by the dequantized weight, bit for bit).
 */
export function gemmInt8Tiles(
  m: i32, n: i32, k: i32, x: usize, w: usize, sc: usize, y: usize,
  tileM: i32, tileN: i32, tilesM: i32, tilesN: i32, lo: i32, hi: i32, work: usize,
): void {
  const small = m <= SMALL_M;
  const rowX = <usize>k << 2, rowW = <usize>k, rowS = <usize>int8Blocks(k) << 1, rowY = <usize>n << 2;
  for (let t = lo; t < hi; t++) {
    const i0 = (t / tilesN) * tileM;
    const j0 = (t % tilesN) * tileN;
    const mm = min(tileM, m - i0);
    const nn = min(tileN, n - j0);
    if (mm <= 0 || nn <= 0) continue;
    const xt = x + <usize>i0 * rowX;
    const wt = w + <usize>j0 * rowW;
    const st = sc + <usize>j0 * rowS;
    const yt = y + <usize>i0 * rowY + (<usize>j0 << 2);
    if (!small) {
      gemmBlock(false, true, B_INT8, mm, nn, k, 1, xt, k, wt, k, 0, yt, n, work, st);
    } else if (k <= 0) {
      scaleC(mm, nn, 0, yt, n);
    } else {
      let j = 0;
      for (; j + 2 <= nn; j += 2) {
        const wj = wt + <usize>j * rowW;
        const sj = st + <usize>j * rowS;
        for (let i = 0; i < mm; i++) {
          const yi = yt + <usize>i * rowY + (<usize>j << 2);
          dotInt8Two(xt + <usize>i * rowX, wj, sj, wj + rowW, sj + rowS, k, yi, yi + 4);
        }
      }
      for (; j < nn; j++) {
        const wj = wt + <usize>j * rowW;
        const sj = st + <usize>j * rowS;
        for (let i = 0; i < mm; i++) store<f32>(yt + <usize>i * rowY + (<usize>j << 2), dotInt8(xt + <usize>i * rowX, wj, sj, k));
      }
    }
  }
}
