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
//   int8  blockwise symmetric int8 (ggml's Q8_0, with a bfloat16 scale): each row cut in blocks of
//         INT8_BLOCK = 32 values (the last one shorter when cols is not a multiple), each block stored as
//         int8 q = round-half-even(x / scale) in [-127, 127] with scale the least bfloat16 >= max|x| / 127.
//         34 bytes per 32 values, as Q8_0: 0.27 of f32's. Lossy, so inference only; the kernels widen q
//         to float32 in registers, sum each block in float32 and apply its scale (see Int8GemmArgs).
//         The scale is bfloat16 rather than Q8_0's f16: widening it is the shift BF16 weights take on
//         every backend (wasm SIMD has no f16), it has float32's range (f16 goes subnormal for blocks
//         under 2^-14·127 ≈ 0.0078 and loses bits there), and rounding it up keeps every |x / scale|
//         within 127, so q needs no clamp and stays within half a step of x / scale. Float32 scales
//         (36 bytes a block, until 2026-12-08) read 5.9% more bytes a decoded token for no measured
//         gain: the teacher's int8 distributions sit as close to its f32 ones with either (README, the
//         int8 perplexity table).
import { INT8_BLOCK, type Backend, type SharedInputPart } from './backend.js';
import { allocF32, allocI8, allocU16, free } from './memory.js';
import { getBackend } from './select.js';

export type WeightType = 'f32' | 'bf16' | 'int8';

/**
 * Where a weight's values live. 'arena': the shared wasm memory (4 GiB at most), where every kernel works
 * in place. 'heap': ordinary memory outside it, bounded only by the machine, for a backend whose weight
 * products read any memory in place (Backend.heapWeights: native). Only matrices go there; the wasm
 * kernels that touch other parameters (norm gains, biases) need them in the arena.
 */
export type WeightPlace = 'arena' | 'heap';

/**
 * A zeroed float32 buffer of n values in `place`: a gradient, or an optimizer moment, beside its parameter.
 * A heap buffer is written here, on one thread: its pages are otherwise first touched by two kernel threads
 * at once (AdamW's first step, a backward product), which on the 2-core VMs measured here faults them in
 * 3-5x slower (SmolLM-135M's first AdamW step: 6.6 s against 0.1 s for the next ones).
 */
export function allocF32In(n: number, place: WeightPlace): Float32Array {
  return place === 'heap' ? heapArray(Float32Array, n).fill(0) : allocF32(n);
}

/** Buffers outside the arena from this size ask for huge pages (a smaller one holds no whole 2 MiB page). */
const HUGE_PAGES_FROM_BYTES = 4 << 20;

/**
 * A zeroed array of n values outside the arena (a weight, or a tensor's copy while it loads), in huge pages
 * where the backend can ask for them (Backend.adviseHugePages): loading a model faults in every page of its
 * weights, and on the 2-core VMs measured here each 4 KiB fault cost ~15 us, most of a 1B-parameter model's
 * load (TinyLlama-1.1B's shape at bf16: 8-9 s of system time in 13-14 s; 2-4 s of 4.4-6.3 s with huge pages).
 */
export function heapArray<T extends Float32Array | Uint16Array | Int8Array>(make: new (n: number) => T, n: number): T {
  const array = new make(n);
  if (array.byteLength >= HUGE_PAGES_FROM_BYTES) getBackend().adviseHugePages?.(array);
  return array;
}

type HeapView = Float32Array | Uint16Array | Int8Array;
type ViewOf<T extends HeapView> = new (buffer: ArrayBuffer, byteOffset: number, length: number) => T;

/** Bytes of one weight slab (see weightArray). */
const WEIGHT_SLAB_BYTES = 32 << 20;
/** Offsets of weights cut from a slab start at this alignment (a cache line). */
const WEIGHT_ALIGN = 64;

/** A buffer in huge pages that small weights are cut from: bump-allocated, freed regions reused by size. */
interface WeightSlab {
  readonly buffer: ArrayBuffer;
  used: number; // bytes handed out from the start
  live: number; // bytes of weights not yet freed
  readonly freed: Map<number, number[]>; // byte length -> offsets of freed regions of that length
}

const weightSlabs = new Map<ArrayBuffer, WeightSlab>();

/**
 * A zeroed array for a weight outside the arena. One of HUGE_PAGES_FROM_BYTES or more is its own heapArray;
 * a smaller one (a small model's every matrix) is cut from a shared slab in huge pages, so that a decoded
 * token's many small products stream from 2 MiB pages as large ones do: SmolLM-135M's 210 layer products of a
 * BF16 token, replayed through the add-on, ran 5-10% faster from such a slab than from separate arrays in
 * 4 KiB pages (2026-12-07, Zen 4 VM, alternated in one process). freeWeightArray gives its region back for the
 * next weight of its size (folding replaces each layer's q and k projections by ones of the same sizes); a
 * slab whose weights are all freed is dropped, for the garbage collector.
 */
export function weightArray<T extends HeapView>(make: ViewOf<T> & { BYTES_PER_ELEMENT: number }, n: number): T {
  const bytes = n * make.BYTES_PER_ELEMENT;
  const backend = getBackend();
  if (bytes === 0 || bytes >= HUGE_PAGES_FROM_BYTES || !backend.adviseHugePages) return heapArray(make as unknown as new (n: number) => T, n);
  const size = Math.ceil(bytes / WEIGHT_ALIGN) * WEIGHT_ALIGN;
  for (const slab of weightSlabs.values()) {
    const offset = slab.freed.get(size)?.pop();
    if (offset === undefined) continue;
    slab.live += size;
    return new make(slab.buffer, offset, n).fill(0) as T;
  }
  let slab = [...weightSlabs.values()].find((s) => s.used + size <= s.buffer.byteLength);
  if (!slab) {
    const buffer = new ArrayBuffer(WEIGHT_SLAB_BYTES);
    backend.adviseHugePages(new Int8Array(buffer));
    slab = { buffer, used: 0, live: 0, freed: new Map() };
    weightSlabs.set(buffer, slab);
  }
  const array = new make(slab.buffer, slab.used, n);
  slab.used += size;
  slab.live += size;
  return array;
}

/** Frees a weight's array: an arena one (core/memory.ts free), a slab's region, or nothing (the GC's). */
export function freeWeightArray(view: HeapView): void {
  const slab = weightSlabs.get(view.buffer as ArrayBuffer);
  if (!slab) return free(view);
  const size = Math.ceil(view.byteLength / WEIGHT_ALIGN) * WEIGHT_ALIGN;
  slab.live -= size;
  if (slab.live === 0) weightSlabs.delete(slab.buffer);
  else {
    const list = slab.freed.get(size);
    if (list) list.push(view.byteOffset);
    else slab.freed.set(size, [view.byteOffset]);
  }
}

/** The values of a weight as stored, by type. */
export type Weight =
  | { readonly type: 'f32'; readonly data: Float32Array }
  | { readonly type: 'bf16'; readonly data: Uint16Array }
  /** int8 values [rows · cols] row-major, scales [rows · ceil(cols / INT8_BLOCK)] as bfloat16 bits, cols the row length. */
  | { readonly type: 'int8'; readonly data: Int8Array; readonly scales: Uint16Array; readonly cols: number };

export interface WeightTraits {
  readonly type: WeightType;
  /** Values per block; a row of n values takes ceil(n / blockSize) blocks. */
  readonly blockSize: number;
  /** Bytes per block (a quantized type's scales included). */
  readonly blockBytes: number;
  /** Gradients can flow into it (training). Only float32 weights are trained. */
  readonly trainable: boolean;
  /**
   * A zero weight of n values in `place` (a zero-length one off the arena, for declare-only stores), in rows
   * of `cols` values (default n: one row), which decides where a blockwise type's blocks fall.
   */
  alloc(n: number, place: WeightPlace, cols?: number): Weight;
  /** out[0, count) = values [from, from + count) as float32 (exact for every type but a quantized one). */
  toFloat(w: Weight, from: number, count: number, out: Float32Array): void;
  /**
   * Store float32 values [0, src.length) into w at `from`, rounded as PyTorch rounds to this type. A
   * blockwise type takes whole blocks only (from and from + src.length at block edges) and throws on a
   * value it cannot hold (int8: NaN, ±Infinity).
   */
  fromFloat(src: Float32Array, w: Weight, from: number): void;
  /**
   * y[m, n] = x[m, k] · Wᵀ (y overwritten) on `backend`, W stored [n, k]: sgemm for f32, the backend's
   * BF16 kernel (Backend.gemmBf16) for bf16, its int8 one (Backend.gemmInt8) for int8, float32
   * accumulation in all.
   */
  matmulT(backend: Backend, x: Float32Array, w: Weight, y: Float32Array, m: number, n: number, k: number): void;
  /** The weight as a part of Backend.gemmShared (y = x·Wᵀ, W stored [n, k]), or null for a type it does not take. */
  sharedPart(w: Weight, y: Float32Array, n: number, k: number): SharedInputPart | null;
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
  // fill: first-touched on one thread, as allocF32In's heap buffers (its comment says why)
  alloc: (n, place) => ({ type: 'f32', data: n === 0 ? new Float32Array(0) : place === 'heap' ? weightArray(Float32Array, n).fill(0) : allocF32(n) }),
  toFloat: (w, from, count, out) => out.set(asF32(w).subarray(from, from + count)),
  fromFloat: (src, w, from) => asF32(w).set(src, from),
  matmulT: (backend, x, w, y, m, n, k) => backend.sgemm({ transA: false, transB: true, m, n, k, a: x, b: asF32(w), c: y }),
  sharedPart: () => null, // float32 decoding products keep sgemm's own choice of kernel
};

const BF16: WeightTraits = {
  type: 'bf16',
  blockSize: 1,
  blockBytes: 2,
  trainable: false,
  alloc: (n, place) => ({ type: 'bf16', data: n === 0 || place === 'heap' ? weightArray(Uint16Array, n) : allocU16(n) }),
  toFloat: (w, from, count, out) =>
    bf16ToF32Array(asBf16(w).subarray(from, from + count), new Uint32Array(out.buffer, out.byteOffset, count)),
  fromFloat: (src, w, from) =>
    f32ToBf16Array(new Uint32Array(src.buffer, src.byteOffset, src.length), asBf16(w).subarray(from, from + src.length)),
  matmulT: (backend, x, w, y, m, n, k) => backend.gemmBf16({ m, n, k, x, w: asBf16(w), y }),
  sharedPart: (w, y, n) => ({ w: asBf16(w), scales: null, n, y }),
};

function asInt8(w: Weight): Extract<Weight, { type: 'int8' }> {
  if (w.type !== 'int8') throw new Error(`supra: expected an int8 weight, got ${w.type}`);
  return w;
}

/** An int8 weight in a product over rows of k values: its blocks fall by its own row length, so they must agree. */
function int8Rows(w: Weight, k: number): Extract<Weight, { type: 'int8' }> {
  const q = asInt8(w);
  if (q.cols !== k) throw new RangeError(`supra: int8 weight has rows of ${q.cols} values, the product needs ${k}`);
  return q;
}

/** Blocks per row of an int8 weight with rows of `cols` values. */
export function int8BlocksPerRow(cols: number): number {
  return Math.ceil(cols / INT8_BLOCK);
}

/**
 * Nearest integer, ties to even (as torch.round), for |v| < 2^51: adding and taking away 1.5·2^52 leaves
 * no fraction bits, and float64 addition rounds ties to even.
 */
const ROUND_MAGIC = 6755399441055744;
const roundHalfEven = (v: number): number => v + ROUND_MAGIC - ROUND_MAGIC;

/** out[0, count) = values [from, from + count) of an int8 weight: q · its block's scale, in float32. */
function int8ToFloat(w: Extract<Weight, { type: 'int8' }>, from: number, count: number, out: Float32Array): void {
  const { data, scales, cols } = w;
  const blocks = int8BlocksPerRow(cols);
  if (out.length < count) throw new RangeError(`supra: int8 toFloat: destination holds ${out.length} < ${count}`);
  if (from < 0 || from + count > data.length) throw new RangeError(`supra: int8 toFloat: values [${from}, ${from + count}) outside the weight's ${data.length}`);
  let row = Math.floor(from / cols);
  let col = from - row * cols;
  for (let i = 0; i < count; i++) {
    out[i] = data[from + i]! * bf16ToF32(scales[row * blocks + ((col / INT8_BLOCK) | 0)]!);
    if (++col === cols) {
      col = 0;
      row++;
    }
  }
}

/** Is flat index i of a weight with rows of `cols` values at the edge of an int8 block? */
const atBlockEdge = (i: number, cols: number): boolean => (i % cols) % INT8_BLOCK === 0;

/** The largest finite float32: |x| above it (or NaN) cannot be quantized. */
const F32_MAX = 3.4028234663852886e38;

const notFinite = (v: number, index: number): RangeError => new RangeError(`supra: int8 weights cannot hold ${v} (value ${index} of the weight)`);

/**
 * The bits of the least bfloat16 >= amax / 127 (0 for 0). The quotient in float64 is within 2^-53 of the
 * real one, too close to cross a bfloat16 (8 significant bits over a divisor of 127), so rounding it up to
 * a float32 and that up to a bfloat16 gives the least one above the real quotient.
 */
function int8Scale(amax: number): number {
  const quotient = amax / 127;
  scratchF32[0] = quotient; // (the scratch of the BF16 bits section below)
  if (scratchF32[0]! < quotient) scratchU32[0]! += 1; // the next float32 up (quotient > 0, below the largest)
  const bits = scratchU32[0]!;
  return (bits >>> 16) + ((bits & 0xffff) !== 0 ? 1 : 0);
}

/**
 * Quantize src into an int8 weight at `from`, block by block (whole blocks only, see WeightTraits.fromFloat):
 * scale = the least bfloat16 >= max|x| / 127 (int8Scale), q = round-half-even(x / scale) with the quotient
 * rounded to float32 first (torch's round(x / scale) on float32 tensors); |x / scale| <= 127 by the scale's
 * choice, so no clamp. The rule's one statement; a backend's quantizeInt8 (native) computes the same bits
 * faster and is used when it has one.
 */
function int8FromFloat(src: Float32Array, w: Extract<Weight, { type: 'int8' }>, from: number): void {
  const { data, scales, cols } = w;
  const end = from + src.length;
  if (from < 0 || end > data.length) throw new RangeError(`supra: int8 fromFloat: values [${from}, ${end}) outside the weight's ${data.length}`);
  if (!atBlockEdge(from, cols) || !(end === data.length || atBlockEdge(end, cols))) {
    throw new RangeError(`supra: int8 fromFloat: values [${from}, ${end}) do not cover whole blocks of ${INT8_BLOCK} (rows of ${cols})`);
  }
  const fast = getBackend().quantizeInt8;
  if (fast) {
    const bad = fast(src, from, cols, data, scales);
    if (bad >= 0) throw notFinite(src[bad]!, bad + from);
    return;
  }
  const blocks = int8BlocksPerRow(cols);
  for (let start = from; start < end; ) {
    const row = Math.floor(start / cols);
    const col = start - row * cols;
    const stop = start + Math.min(INT8_BLOCK, cols - col); // this block: to the next edge or the row's end
    let amax = 0;
    for (let i = start - from; i < stop - from; i++) {
      const a = Math.abs(src[i]!);
      if (!(a <= F32_MAX)) throw notFinite(src[i]!, i + from); // NaN or an infinity
      if (a > amax) amax = a;
    }
    const scaleBits = int8Scale(amax);
    scales[row * blocks + col / INT8_BLOCK] = scaleBits;
    if (scaleBits === 0) data.fill(0, start, stop);
    else {
      const scale = bf16ToF32(scaleBits);
      for (let i = start; i < stop; i++) data[i] = roundHalfEven(Math.fround(src[i - from]! / scale));
    }
    start = stop;
  }
}

const INT8: WeightTraits = {
  type: 'int8',
  blockSize: INT8_BLOCK,
  blockBytes: INT8_BLOCK + 2, // the int8 values and a bfloat16 scale
  trainable: false,
  alloc: (n, place, cols = n) => {
    const rows = cols === 0 ? 0 : n / cols;
    if (!Number.isInteger(rows)) throw new RangeError(`supra: an int8 weight of ${n} values cannot have rows of ${cols}`);
    if (n === 0) return { type: 'int8', data: new Int8Array(0), scales: new Uint16Array(0), cols: Math.max(1, cols) };
    const scales = rows * int8BlocksPerRow(cols);
    if (place === 'heap') return { type: 'int8', data: weightArray(Int8Array, n), scales: weightArray(Uint16Array, scales), cols };
    return { type: 'int8', data: allocI8(n), scales: allocU16(scales), cols };
  },
  toFloat: (w, from, count, out) => int8ToFloat(asInt8(w), from, count, out),
  fromFloat: (src, w, from) => int8FromFloat(src, asInt8(w), from),
  matmulT: (backend, x, w, y, m, n, k) => {
    const q = int8Rows(w, k);
    backend.gemmInt8({ m, n, k, x, w: q.data, scales: q.scales, y });
  },
  sharedPart: (w, y, n, k) => {
    const q = int8Rows(w, k);
    return { w: q.data, scales: q.scales, n, y };
  },
};

/** The weight types by name. */
export const WEIGHT_TYPES: Readonly<Record<WeightType, WeightTraits>> = { f32: F32, bf16: BF16, int8: INT8 };

export function isWeightType(value: string): value is WeightType {
  return Object.hasOwn(WEIGHT_TYPES, value);
}

export function weightTraits(type: WeightType): WeightTraits {
  return WEIGHT_TYPES[type];
}

/** Bytes per value of type `a` over those of type `b`, two decimals (int8 over f32: "0.27"), for messages. */
export function bytesRatioText(a: WeightType, b: WeightType): string {
  const perValue = (t: WeightType) => WEIGHT_TYPES[t].blockBytes / WEIGHT_TYPES[t].blockSize;
  return (perValue(a) / perValue(b)).toFixed(2);
}

/** Bytes a [rows, cols] weight of this type takes. */
export function weightBytes(type: WeightType, rows: number, cols: number): number {
  const t = WEIGHT_TYPES[type];
  return rows * Math.ceil(cols / t.blockSize) * t.blockBytes;
}

// ---------------------------------------------------------------- bfloat16 bits
// The one implementation of the BF16 conversions (io/dtype.ts re-exports them for the file readers).

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** One bfloat16 bit pattern's value: its bits are the top half of a float32's. */
export function bf16ToF32(b: number): number {
  scratchU32[0] = (b & 0xffff) << 16;
  return scratchF32[0]!;
}

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
