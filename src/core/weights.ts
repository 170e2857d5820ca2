// Weight types, in the manner of ggml's type traits: one row per way a weight matrix may be stored, with
// everything the rest of supra needs to know about it: its size, how to read its rows as float32, how to
// store float32 values in it, which backend kernel multiplies by it, and whether it can be trained.
// A Linear (layers/linear.ts) holds a weight of any type; adding a type is a row here and its kernels.
//
// A weight is stored [rows, cols] row-major (PyTorch's [out, in]). A row of `cols` values takes
// ceil(cols / blockSize) · blockBytes bytes: 1 value per block for the plain types; a quantized type
// keeps its scales per block (or per row) and counts them in blockBytes.
//
//   f32   float32, the training type and the reference path.
//   bf16  bfloat16, the top half of a float32: widening is a 16-bit shift, exact, so a product over BF16
//         weights is the float32 product over the widened weights; the kernels widen in registers and
//         accumulate in float32. Half the bytes of f32: a memory-bound decode reads half as much.
import type { Backend } from './backend.js';
import { allocF32, allocU16 } from './memory.js';

export type WeightType = 'f32' | 'bf16';

/**
 * Where a weight's values live. 'arena': the shared wasm memory (4 GiB at most), where every kernel works
 * in place. 'heap': ordinary memory outside it, bounded only by the machine, for a backend whose weight
 * products read any memory in place (Backend.heapWeights: native). Only matrices go there; the wasm
 * kernels that touch other parameters (norm gains, biases) need them in the arena.
 */
export type WeightPlace = 'arena' | 'heap';

/** The values of a weight as stored, by type. */
export type Weight = { readonly type: 'f32'; readonly data: Float32Array } | { readonly type: 'bf16'; readonly data: Uint16Array };

export interface WeightTraits {
  readonly type: WeightType;
  /** Values per block; a row of n values takes ceil(n / blockSize) blocks. */
  readonly blockSize: number;
  /** Bytes per block (a quantized type's scales included). */
  readonly blockBytes: number;
  /** Gradients can flow into it (training). Only float32 weights are trained. */
  readonly trainable: boolean;
  /** A zero weight of n values in `place` (a zero-length one off the arena, for declare-only stores). */
  alloc(n: number, place: WeightPlace): Weight;
  /** out[0, count) = values [from, from + count) as float32 (exact for every type but a quantized one). */
  toFloat(w: Weight, from: number, count: number, out: Float32Array): void;
  /** Store float32 values [0, src.length) into w at `from`, rounded as PyTorch rounds to this type. */
  fromFloat(src: Float32Array, w: Weight, from: number): void;
  /**
   * y[m, n] = x[m, k] · Wᵀ (y overwritten) on `backend`, W stored [n, k]: sgemm for f32, the backend's
   * BF16 kernel (Backend.gemmBf16) for bf16, float32 accumulation in both.
   */
  matmulT(backend: Backend, x: Float32Array, w: Weight, y: Float32Array, m: number, n: number, k: number): void;
}

function asF32(w: Weight): Float32Array {
  if (w.type !== 'f32') throw new Error(`supra: expected a float32 weight, got ${w.type}`);
  return w.data;
}

function asBf16(w: Weight): Uint16Array {
  if (w.type !== 'bf16') throw new Error(`supra: expected a bf16 weight, got ${w.type}`);
  return w.data;
}

const F32: WeightTraits = {
  type: 'f32',
  blockSize: 1,
  blockBytes: 4,
  trainable: true,
  alloc: (n, place) => ({ type: 'f32', data: n === 0 || place === 'heap' ? new Float32Array(n) : allocF32(n) }),
  toFloat: (w, from, count, out) => out.set(asF32(w).subarray(from, from + count)),
  fromFloat: (src, w, from) => asF32(w).set(src, from),
  matmulT: (backend, x, w, y, m, n, k) => backend.sgemm({ transA: false, transB: true, m, n, k, a: x, b: asF32(w), c: y }),
};

const BF16: WeightTraits = {
  type: 'bf16',
  blockSize: 1,
  blockBytes: 2,
  trainable: false,
  alloc: (n, place) => ({ type: 'bf16', data: n === 0 || place === 'heap' ? new Uint16Array(n) : allocU16(n) }),
  toFloat: (w, from, count, out) =>
    bf16ToF32Array(asBf16(w).subarray(from, from + count), new Uint32Array(out.buffer, out.byteOffset, count)),
  fromFloat: (src, w, from) =>
    f32ToBf16Array(new Uint32Array(src.buffer, src.byteOffset, src.length), asBf16(w).subarray(from, from + src.length)),
  matmulT: (backend, x, w, y, m, n, k) => backend.gemmBf16({ m, n, k, x, w: asBf16(w), y }),
};

/** The weight types by name. */
export const WEIGHT_TYPES: Readonly<Record<WeightType, WeightTraits>> = { f32: F32, bf16: BF16 };

export function isWeightType(value: string): value is WeightType {
  return Object.hasOwn(WEIGHT_TYPES, value);
}

export function weightTraits(type: WeightType): WeightTraits {
  return WEIGHT_TYPES[type];
}

/** Bytes a [rows, cols] weight of this type takes. */
export function weightBytes(type: WeightType, rows: number, cols: number): number {
  const t = WEIGHT_TYPES[type];
  return rows * Math.ceil(cols / t.blockSize) * t.blockBytes;
}

// ---------------------------------------------------------------- bfloat16 bits
// The one implementation of the BF16 conversions (io/dtype.ts re-exports them for the file readers).

/** bfloat16 is the top half of a float32: widening is a shift. */
export function bf16ToF32Array(src: Uint16Array, dst: Uint32Array): void {
  const n = src.length;
  if (dst.length < n) throw new RangeError(`supra: bf16ToF32Array: destination holds ${dst.length} < ${n}`);
  for (let i = 0; i < n; i++) dst[i] = src[i]! << 16;
}

/** bfloat16 bit pattern of one float32 bit pattern, rounded to nearest even (NaN stays a quiet NaN). */
export function f32BitsToBf16Bits(x: number): number {
  x >>>= 0;
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff; // NaN: keep sign, force quiet
  // add 0x7fff plus the lowest kept bit: rounds half to even; a carry into the exponent is correct
  // rounding (up to inf for values past the largest bfloat16)
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

export function f32ToBf16Array(src: Uint32Array, dst: Uint16Array): void {
  const n = src.length;
  if (dst.length < n) throw new RangeError(`supra: f32ToBf16Array: destination holds ${dst.length} < ${n}`);
  for (let i = 0; i < n; i++) {
    const x = src[i]!;
    if ((x & 0x7fffffff) > 0x7f800000) dst[i] = (x >>> 16) | 0x40;
    else dst[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
}
