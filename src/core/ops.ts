// The kernels every layer stands on, each forward beside its backward. Buffers are explicit: callers
// pass output (and gradient) arrays, sized by the dims given. Gradients named d* that the doc says
// "accumulate" are added to (+=), so shared or tied parameters sum their uses; the rest are overwritten.
//
// Matrix products go to the selected backend (wasm SIMD or OpenBLAS); the other kernels run in the
// shared wasm module.
//
// Each kernel checks its array lengths, then runs in kernels.wasm (assembly/ops.ts) on the calling
// thread or, when large, split across the worker pool (src/core/wasm/runtime.ts). Arena arrays are
// used in place; other typed arrays are copied in and out (correct, slower). The plain-JS originals
// live in test/helpers/reference-ops.ts, which the tests compare against.
import { getBackend } from './select.js';
import { BF16_KERNEL_DESCRIPTIONS, type Bf16Kernel, type GemmArgs, type HeapKernels, type MatmulPrecision, type MlpBlockStep, type RangeKernelName, type SharedInputPart } from './backend.js';
import { allocF32, inArena } from './memory.js';
import { WEIGHT_TYPES, type Weight } from './weights.js';
import { beginCall, chunkGrain, endCall, PARALLEL_MIN_ELEMENTS, parallelFor, ptr, runOnCaller } from './wasm/runtime.js';

/**
 * The backend's optimizer kernels when one of `arrays` lives outside the arena and it has them (a weight,
 * gradient or moment kept there for training): the same bits as the wasm kernels, without copying the
 * array into the arena and back. Null: run the wasm kernel.
 */
function outsideArena(...arrays: Float32Array[]): HeapKernels | null {
  if (arrays.every((a) => inArena(a))) return null;
  return getBackend().heapKernels ?? null;
}

/**
 * Float touches below which a range kernel on arena arrays runs in wasm on the calling thread. Above it the
 * add-on's copy is cheaper even for one chunk: the chunked linear attention's per-chunk calls on 9 heads of
 * 64 × 64 (~37k touches) took 7-17 µs a call in wasm and 2-3.5 in the add-on (2026-12-07, Zen 4).
 */
const OWN_RANGE_MIN_ELEMENTS = 1 << 13;

/**
 * Runs a range kernel on the backend's own copy when it has one (BackendKernels.range: the same bits, no pool
 * round trip, arrays outside the arena in place), with the wasm kernel's arguments: its arrays, its numbers,
 * units [0, total) of about `unitElements` float touches (chunked as parallelFor chunks them, but at least
 * `minGrain` units a chunk, for a kernel whose chunking changes no bits). False: the caller runs the wasm kernel.
 */
function ownRange(
  kernel: RangeKernelName, spans: (Float32Array | Float64Array | null)[], scalars: number[], total: number, unitElements: number, minGrain = 1,
): boolean {
  const own = getBackend().kernels;
  if (!own?.range || !own.rangeKernels?.has(kernel)) return false;
  // A decoding step's small calls on arena arrays: the wasm kernel on this thread is the cheaper call (measured
  // 0.8-1.0 µs against 1.0-1.5 for a 576-wide rmsnorm or a 9-head rope, 2026-12-07), with the same bits.
  if (total * unitElements < OWN_RANGE_MIN_ELEMENTS && allInArena(spans)) return false;
  const small = total * unitElements < PARALLEL_MIN_ELEMENTS; // one chunk, on this thread, as the wasm runtime keeps it
  own.range(kernel, spans, scalars, total, small ? Math.max(1, total) : Math.max(minGrain, chunkGrain(total, Math.max(1, unitElements))));
  return true;
}

function allInArena(spans: (Float32Array | Float64Array | null)[]): boolean {
  for (const a of spans) if (a !== null && !inArena(a)) return false;
  return true;
}

/**
 * Columns a chunk of a column sum (sumRows, rmsnorm's weight gradient) takes at least in the add-on, which sums
 * four vectors of columns at a time (native/elementwise.inc AddColumnSums); each column is summed alone, so the
 * chunks change no bits. The pool's 8-column chunks at 2048 rows left AVX-512 a strided scalar walk.
 */
const COLUMN_SUM_MIN_GRAIN = 64;

function checkCount(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) throw new RangeError(`supra: ${name} must be a non-negative integer, got ${v}`);
}

function isCount(v: number): boolean {
  return Number.isInteger(v) && v >= 0;
}

/**
 * checkCount of up to six counts of one call, named in `names` (comma-separated) only to report a bad one:
 * a decoding step makes hundreds of these calls, and a list of [name, value] pairs for each was garbage.
 */
function checkCounts(op: string, names: string, a: number, b: number, c = 0, d = 0, e = 0, f = 0): void {
  if (isCount(a) && isCount(b) && isCount(c) && isCount(d) && isCount(e) && isCount(f)) return;
  const values = [a, b, c, d, e, f];
  names.split(',').forEach((name, i) => checkCount(`${op}: ${name}`, values[i]!));
}

// ---------------------------------------------------------------- matmul

/** Whether the backend computes large products at `precision` ('f32' always). */
export function hasMatmulPrecision(precision: MatmulPrecision): boolean {
  if (precision === 'f32') return true;
  const backend = getBackend();
  if (!backend.setMatmulPrecision?.(precision)) return false;
  backend.setMatmulPrecision('f32');
  return true;
}

/** The kernel the backend's 'bf16' products run on, described for logs ("AMX's tiles", ...). */
export function bf16ProductsText(): string {
  const backend = getBackend();
  const kernel = backend.fingerprint(1, 'bf16').bf16Products;
  return typeof kernel === 'string' && kernel in BF16_KERNEL_DESCRIPTIONS ? BF16_KERNEL_DESCRIPTIONS[kernel as Bf16Kernel] : backend.name;
}

/** Runs f with the backend's large products at `precision` (see MatmulPrecision), float32 again after. */
export function withMatmulPrecision<T>(precision: MatmulPrecision, f: () => T): T {
  if (precision === 'f32') return f();
  const backend = getBackend();
  if (!backend.setMatmulPrecision?.(precision)) throw new Error(`supra: the ${backend.name} backend has no ${precision} products on this CPU`);
  try {
    return f();
  } finally {
    backend.setMatmulPrecision('f32');
  }
}

/** C = alpha·op(A)·op(B) + beta·C (row-major, optionally batched). See GemmArgs. */
export function matmul(args: GemmArgs): void {
  const backend = getBackend();
  const { decayC, maskC } = args;
  if (!decayC && !maskC) return backend.sgemm(args);
  const { m, n } = args;
  const batch = args.batch ?? 1, block = m * n;
  if ((args.ldc ?? n) !== n || (args.strideC ?? 0) !== block || (batch > 1 && block === 0)) {
    throw new RangeError(`supra: matmul: decayC and maskC need C in whole blocks of m·n (ldc ${args.ldc ?? n}, strideC ${args.strideC ?? 0}, m·n ${block})`);
  }
  if (decayC && (args.beta ?? 0) !== 1) throw new RangeError('supra: matmul: decayC decays C before adding the product to it: beta must be 1');
  if (maskC && ((args.beta ?? 0) !== 0 || batch % maskC.period !== 0)) {
    throw new RangeError(`supra: matmul: maskC multiplies the product alone (beta 0) in whole periods (batch ${batch}, period ${maskC.period})`);
  }
  if (backend.sgemmFused?.(args)) return;
  if (decayC) {
    const { powers, powStride, heads, exponent, from } = decayC;
    if (from) scaleRowsByDecay(from, block, args.c, batch, heads, 1, block, powers, powStride, 1, exponent);
    else decayBlocks(args.c, batch, heads, block, powers, powStride, exponent);
  }
  backend.sgemm({ ...args, decayC: undefined, maskC: undefined });
  if (maskC) mulBlocks(args.c, maskC.pattern, batch / maskC.period, maskC.period * block);
}

/**
 * y[rows, out] = x[rows, in] · Wᵀ (+ b), W stored [out, in] as in PyTorch/HF: float32, or a weight of any
 * type (core/weights.ts: BF16, widened exactly, summed in float32).
 * Backward (float32 weights only): dx = dy·W (overwrite, or accumulate with accumulateDx), dW += dyᵀ·x,
 * db += Σ_rows dy.
 */
export function linear(
  x: Float32Array, w: Float32Array | Weight, b: Float32Array | null, y: Float32Array,
  rows: number, inF: number, outF: number,
): void {
  const weight: Weight = w instanceof Float32Array ? { type: 'f32', data: w } : w;
  WEIGHT_TYPES[weight.type].matmulT(getBackend(), x, weight, y, rows, outF, inF);
  if (b) addBias(y, b, rows, outF);
}

/** One output of linearShared: y[rows, outF] = x·Wᵀ (+ b), W stored [outF, inF]. */
export interface LinearPart {
  w: Float32Array | Weight;
  b: Float32Array | null;
  y: Float32Array;
  outF: number;
}

/**
 * linear for several weights that read the same x (a layer's q/k/v, an MLP's gate and up): one backend
 * call for all of them where it has one for a decoding shape (Backend.gemmShared: rows ≤ 4, weights of a
 * type it takes), else one linear each. The same values either way.
 */
export function linearShared(x: Float32Array, parts: readonly LinearPart[], rows: number, inF: number): void {
  const backend = getBackend();
  if (backend.gemmShared && rows <= 4 && parts.length > 1) {
    const shared: SharedInputPart[] = [];
    for (const p of parts) {
      const w: Weight = p.w instanceof Float32Array ? { type: 'f32', data: p.w } : p.w;
      const part = WEIGHT_TYPES[w.type].sharedPart(w, p.y, p.outF, inF);
      if (!part) break;
      shared.push(part);
    }
    if (shared.length === parts.length && backend.gemmShared(rows, inF, x, shared)) {
      for (const p of parts) if (p.b) addBias(p.y, p.b, rows, p.outF);
      return;
    }
  }
  for (const p of parts) linear(x, p.w, p.b, p.y, rows, inF, p.outF);
}

/**
 * A decoder layer's residual MLP block for a decoding step of `rows` tokens, in one backend call where it has one
 * (Backend.decodeMlpBlock: rows ≤ 4, every weight of a type gemmShared takes): hOut = hIn + branch, then
 * hOut += down(swiglu(gate(n), up(n))) with n = rmsnorm(hOut)·normWeight; branch, normed, rstd, gate's and up's
 * outputs and act are its scratch. Returns false, having done nothing, otherwise (the caller makes the separate
 * calls, which give the same bits). With `next`, the norm that reads hOut next follows in the same call.
 */
export function decodeMlpBlock(
  hIn: Float32Array, branch: Float32Array, hOut: Float32Array, normWeight: Float32Array, normed: Float32Array, rstd: Float32Array, eps: number,
  gate: Weight, up: Weight, down: Weight, g: Float32Array, u: Float32Array, act: Float32Array, rows: number, hidden: number, ffn: number,
  next: MlpBlockStep['next'] = null,
): boolean {
  const backend = getBackend();
  if (!backend.decodeMlpBlock || rows > 4 || rows < 1) return false;
  const gatePart = WEIGHT_TYPES[gate.type].sharedPart(gate, g, ffn, hidden);
  const upPart = WEIGHT_TYPES[up.type].sharedPart(up, u, ffn, hidden);
  const downPart = WEIGHT_TYPES[down.type].sharedPart(down, branch, hidden, ffn);
  if (!gatePart || !upPart || !downPart) return false;
  return backend.decodeMlpBlock({
    hIn, branch, hOut, normWeight, normed, rstd, gate: gatePart, up: upPart, down: downPart, act, rows, hidden, ffn, eps, next,
  });
}

export function linearBackward(
  dy: Float32Array, x: Float32Array, w: Float32Array,
  dx: Float32Array | null, dw: Float32Array, db: Float32Array | null,
  rows: number, inF: number, outF: number, accumulateDx = false,
): void {
  if (dx) linearBackwardInput(dy, w, dx, rows, inF, outF, accumulateDx);
  linearBackwardParams(dy, x, dw, db, rows, inF, outF);
}

/** The input half of linearBackward: dx = dy·W (overwritten, or added with accumulateDx). */
export function linearBackwardInput(
  dy: Float32Array, w: Float32Array, dx: Float32Array, rows: number, inF: number, outF: number, accumulateDx = false,
): void {
  matmul({ transA: false, transB: false, m: rows, n: inF, k: outF, a: dy, b: w, c: dx, beta: accumulateDx ? 1 : 0 });
}

/** The parameter half of linearBackward: dW += dyᵀ·x, db += Σ_rows dy. */
export function linearBackwardParams(
  dy: Float32Array, x: Float32Array, dw: Float32Array, db: Float32Array | null, rows: number, inF: number, outF: number,
): void {
  matmul({ transA: true, transB: false, m: outF, n: inF, k: rows, a: dy, b: x, c: dw, beta: 1 });
  if (db) sumRowsInto(db, dy, rows, outF);
}

// ---------------------------------------------------------------- elementwise

/** out = a + b */
export function add(a: Float32Array, b: Float32Array, out: Float32Array, n = out.length): void {
  checkCount('add: n', n);
  if (ownRange('add', [a, b, out], [], n, 1)) return;
  beginCall();
  const args = [ptr(a, n, 'add: a', 'in'), ptr(b, n, 'add: b', 'in'), ptr(out, n, 'add: out', 'out')];
  parallelFor('add', args, n, 1);
  endCall();
}

/** y += alpha·x */
export function axpy(alpha: number, x: Float32Array, y: Float32Array, n = y.length): void {
  checkCount('axpy: n', n);
  beginCall();
  parallelFor('axpy', [alpha, ptr(x, n, 'axpy: x', 'in'), ptr(y, n, 'axpy: y', 'inout')], n, 1);
  endCall();
}

/** x *= s, in place */
export function scale(x: Float32Array, s: number, n = x.length): void {
  checkCount('scale: n', n);
  const heap = outsideArena(x);
  if (heap) return heap.scale(x, s, n, chunkGrain(n, 1));
  beginCall();
  parallelFor('scale', [ptr(x, n, 'scale: x', 'inout'), s], n, 1);
  endCall();
}

/** out = a ⊙ b */
export function mul(a: Float32Array, b: Float32Array, out: Float32Array, n = out.length): void {
  checkCount('mul: n', n);
  beginCall();
  const args = [ptr(a, n, 'mul: a', 'in'), ptr(b, n, 'mul: b', 'in'), ptr(out, n, 'mul: out', 'out')];
  parallelFor('mul', args, n, 1);
  endCall();
}

/** y[r, :] += bias */
export function addBias(y: Float32Array, bias: Float32Array, rows: number, cols: number): void {
  checkCount('addBias: rows', rows);
  checkCount('addBias: cols', cols);
  if (ownRange('addBias', [y, bias], [cols], rows, cols)) return;
  beginCall();
  const args = [ptr(y, rows * cols, 'addBias: y', 'inout'), ptr(bias, cols, 'addBias: bias', 'in'), cols];
  parallelFor('addBias', args, rows, cols);
  endCall();
}

/** db += Σ_r dy[r, :] */
export function sumRowsInto(db: Float32Array, dy: Float32Array, rows: number, cols: number): void {
  checkCount('sumRowsInto: rows', rows);
  checkCount('sumRowsInto: cols', cols);
  if (ownRange('sumRows', [db, dy], [rows, cols], cols, rows, COLUMN_SUM_MIN_GRAIN)) return;
  beginCall();
  // split by columns: each thread sums whole columns, so no two threads add into the same db entry
  const args = [ptr(db, cols, 'sumRowsInto: db', 'inout'), ptr(dy, rows * cols, 'sumRowsInto: dy', 'in'), rows, cols];
  parallelFor('sumRows', args, cols, rows);
  endCall();
}

/** y = max(x, 0) (y may be x) */
export function relu(x: Float32Array, y: Float32Array, n = y.length): void {
  checkCount('relu: n', n);
  if (ownRange('relu', [x, y], [], n, 1)) return;
  beginCall();
  parallelFor('relu', [ptr(x, n, 'relu: x', 'in'), ptr(y, n, 'relu: y', 'out')], n, 1);
  endCall();
}

/** dx = dy ⊙ [y > 0] (dx may be dy) */
export function reluBackward(dy: Float32Array, y: Float32Array, dx: Float32Array, n = dx.length): void {
  checkCount('reluBackward: n', n);
  if (ownRange('reluBackward', [dy, y, dx], [], n, 1)) return;
  beginCall();
  const args = [ptr(dy, n, 'reluBackward: dy', 'in'), ptr(y, n, 'reluBackward: y', 'in'), ptr(dx, n, 'reluBackward: dx', 'out')];
  parallelFor('reluBackward', args, n, 1);
  endCall();
}

/** out = silu(gate) ⊙ up, silu(g) = g·σ(g) */
export function swiglu(gate: Float32Array, up: Float32Array, out: Float32Array, n = out.length): void {
  checkCount('swiglu: n', n);
  const own = getBackend().kernels;
  if (own) {
    if (n > 0) own.swiglu(gate, up, out, n, chunkGrain(n, 4));
    return;
  }
  beginCall();
  const args = [ptr(gate, n, 'swiglu: gate', 'in'), ptr(up, n, 'swiglu: up', 'in'), ptr(out, n, 'swiglu: out', 'out')];
  parallelFor('swiglu', args, n, 4); // exp and a division per element
  endCall();
}

/**
 * dgate, dup of out = silu(gate)·up given dout. With `act` it also writes act = silu(gate)·up, bit for bit
 * what swiglu writes, from the same sigmoid (backward needs it for the down projection's weight gradient).
 */
export function swigluBackward(
  dout: Float32Array, gate: Float32Array, up: Float32Array,
  dgate: Float32Array, dup: Float32Array, n = dout.length, act: Float32Array | null = null,
): void {
  checkCount('swigluBackward: n', n);
  const own = getBackend().kernels;
  if (own) {
    if (n > 0) own.swigluBackward(dout, gate, up, dgate, dup, act, n, chunkGrain(n, 4));
    return;
  }
  beginCall();
  const args = [
    ptr(dout, n, 'swigluBackward: dout', 'in'), ptr(gate, n, 'swigluBackward: gate', 'in'),
    ptr(up, n, 'swigluBackward: up', 'in'), ptr(dgate, n, 'swigluBackward: dgate', 'out'),
    ptr(dup, n, 'swigluBackward: dup', 'out'), act ? ptr(act, n, 'swigluBackward: act', 'out') : 0,
  ];
  parallelFor('swigluBackward', args, n, 4);
  endCall();
}

// ---------------------------------------------------------------- norms

/** out = x / rms(x) ⊙ w per row; rstd[r] = 1/sqrt(mean(x²)+eps) is kept for the backward. */
export function rmsnorm(
  x: Float32Array, w: Float32Array | null, out: Float32Array, rstd: Float32Array,
  rows: number, dim: number, eps: number,
): void {
  checkCount('rmsnorm: rows', rows);
  checkCount('rmsnorm: dim', dim);
  if (ownRange('rmsnorm', [x, w, out, rstd], [dim, eps], rows, dim)) return;
  beginCall();
  const args = [
    ptr(x, rows * dim, 'rmsnorm: x', 'in'), w ? ptr(w, dim, 'rmsnorm: w', 'in') : 0,
    ptr(out, rows * dim, 'rmsnorm: out', 'out'), ptr(rstd, rows, 'rmsnorm: rstd', 'out'), dim, eps,
  ];
  parallelFor('rmsnorm', args, rows, dim);
  endCall();
}

/** dx (overwritten, or accumulated with accumulateDx) and dw (accumulated) of rmsnorm. */
export function rmsnormBackward(
  dout: Float32Array, x: Float32Array, w: Float32Array | null, rstd: Float32Array,
  dx: Float32Array, dw: Float32Array | null, rows: number, dim: number, accumulateDx = false,
): void {
  checkCount('rmsnormBackward: rows', rows);
  checkCount('rmsnormBackward: dim', dim);
  if (ownRange('rmsnormBackwardDx', [dout, x, w, rstd, dx], [dim, accumulateDx ? 1 : 0], rows, 2 * dim)) {
    if (dw) ownRange('rmsnormBackwardDw', [dout, x, rstd, dw], [rows, dim], dim, 2 * rows, COLUMN_SUM_MIN_GRAIN);
    return;
  }
  beginCall();
  const pd = ptr(dout, rows * dim, 'rmsnormBackward: dout', 'in');
  const px = ptr(x, rows * dim, 'rmsnormBackward: x', 'in');
  const pw = w ? ptr(w, dim, 'rmsnormBackward: w', 'in') : 0;
  const pr = ptr(rstd, rows, 'rmsnormBackward: rstd', 'in');
  const pdx = ptr(dx, rows * dim, 'rmsnormBackward: dx', accumulateDx ? 'inout' : 'out');
  // dx by rows; dw (a sum over rows) by columns, so threads never add into the same entry
  parallelFor('rmsnormBackwardDx', [pd, px, pw, pr, pdx, dim, accumulateDx ? 1 : 0], rows, 2 * dim);
  if (dw) parallelFor('rmsnormBackwardDw', [pd, px, pr, ptr(dw, dim, 'rmsnormBackward: dw', 'inout'), rows, dim], dim, 2 * rows);
  endCall();
}

/**
 * Per-group standardization (GroupNorm without affine): each row of `groups·size` values is split in
 * groups, each set to (x − mean)/sqrt(var + eps) with the biased variance. rstd[r·groups + g] is kept.
 */
export function groupnorm(
  x: Float32Array, out: Float32Array, rstd: Float32Array,
  rows: number, groups: number, size: number, eps: number,
): void {
  checkCount('groupnorm: rows', rows);
  checkCount('groupnorm: groups', groups);
  checkCount('groupnorm: size', size);
  const count = rows * groups;
  if (ownRange('groupnorm', [x, out, rstd], [size, eps], count, 2 * size)) return;
  beginCall();
  const args = [
    ptr(x, count * size, 'groupnorm: x', 'in'), ptr(out, count * size, 'groupnorm: out', 'out'),
    ptr(rstd, count, 'groupnorm: rstd', 'out'), size, eps,
  ];
  parallelFor('groupnorm', args, count, 2 * size);
  endCall();
}

/** dx (overwritten) of groupnorm, from its output y and rstd. */
export function groupnormBackward(
  dout: Float32Array, y: Float32Array, rstd: Float32Array, dx: Float32Array,
  rows: number, groups: number, size: number,
): void {
  checkCount('groupnormBackward: rows', rows);
  checkCount('groupnormBackward: groups', groups);
  checkCount('groupnormBackward: size', size);
  const count = rows * groups;
  if (ownRange('groupnormBackward', [dout, y, rstd, dx], [size], count, 2 * size)) return;
  beginCall();
  const args = [
    ptr(dout, count * size, 'groupnormBackward: dout', 'in'), ptr(y, count * size, 'groupnormBackward: y', 'in'),
    ptr(rstd, count, 'groupnormBackward: rstd', 'in'), ptr(dx, count * size, 'groupnormBackward: dx', 'out'), size,
  ];
  parallelFor('groupnormBackward', args, count, 2 * size);
  endCall();
}

// ---------------------------------------------------------------- per-row denominators

// The 'sum' normalization of linear attention (the T2R-style ablation): each (token, head) row of the
// numerator divided by its own denominator. Plain TypeScript: one pass over the attention output, small
// beside the products around it, so not worth a wasm kernel.

function checkLength(name: string, arr: ArrayLike<number>, count: number): void {
  if (arr.length < count) throw new RangeError(`supra: ${name} has ${arr.length} elements, the call needs ${count}`);
}

/** y[r, :] = x[r, :] / (z[r] + eps) for rows × cols values (y may be x). */
export function divideRows(x: Float32Array, z: Float32Array, eps: number, y: Float32Array, rows: number, cols: number): void {
  checkCount('divideRows: rows', rows);
  checkCount('divideRows: cols', cols);
  checkLength('divideRows: x', x, rows * cols);
  checkLength('divideRows: z', z, rows);
  checkLength('divideRows: y', y, rows * cols);
  for (let r = 0; r < rows; r++) {
    const d = z[r]! + eps;
    for (let c = r * cols, end = c + cols; c < end; c++) y[c] = x[c]! / d;
  }
}

/**
 * Backward of divideRows from its output y: dx = dy / (z + eps) (overwritten; dx may be dy) and
 * dz[r] = −Σ_c dy[r, c]·y[r, c] / (z[r] + eps) (overwritten), since ∂y/∂z = −y/(z + eps).
 */
export function divideRowsBackward(
  dy: Float32Array, y: Float32Array, z: Float32Array, eps: number, dx: Float32Array, dz: Float32Array,
  rows: number, cols: number,
): void {
  checkCount('divideRowsBackward: rows', rows);
  checkCount('divideRowsBackward: cols', cols);
  checkLength('divideRowsBackward: dy', dy, rows * cols);
  checkLength('divideRowsBackward: y', y, rows * cols);
  checkLength('divideRowsBackward: z', z, rows);
  checkLength('divideRowsBackward: dx', dx, rows * cols);
  checkLength('divideRowsBackward: dz', dz, rows);
  for (let r = 0; r < rows; r++) {
    const d = z[r]! + eps;
    let dot = 0; // read dy before dx (which may be dy) is written
    for (let c = r * cols, end = c + cols; c < end; c++) dot += dy[c]! * y[c]!;
    for (let c = r * cols, end = c + cols; c < end; c++) dx[c] = dy[c]! / d;
    dz[r] = -dot / d;
  }
}

// ---------------------------------------------------------------- rotary embeddings

/**
 * RoPE tables in the HF convention: inv_freq_i = 1/theta^(2i/dim) in float32,
 * angle = float32(pos · inv_freq_i); cos/sin are [positions, dim/2].
 */
export function ropeTables(positions: number, dim: number, theta: number): { cos: Float32Array; sin: Float32Array } {
  const half = dim / 2;
  // in the arena, so rope() reads them in place
  const cos = allocF32(positions * half);
  const sin = allocF32(positions * half);
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(theta, (2 * i) / dim);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(p * inv[i]!);
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/**
 * rotate_half RoPE in place on x laid out [batch, tokens, heads, dim]; token t has position start + t.
 * out_i = x_i·cos − x_{i+half}·sin, out_{i+half} = x_{i+half}·cos + x_i·sin.
 * The backward is the same rotation by −angle: pass inverse = true.
 */
export function rope(
  x: Float32Array, cos: Float32Array, sin: Float32Array,
  batch: number, tokens: number, heads: number, dim: number, start: number, inverse = false,
): void {
  checkCounts('rope', 'batch,tokens,heads,dim,start', batch, tokens, heads, dim, start);
  if (dim % 2 !== 0) throw new RangeError(`supra: rope: dim must be even, got ${dim}`);
  const half = dim / 2;
  const rows = batch * tokens;
  if (ownRange('rope', [x, cos, sin], [tokens, heads, dim, start, inverse ? -1 : 1], rows, heads * dim)) return;
  beginCall();
  const tableLen = (start + tokens) * half;
  const args = [
    ptr(x, rows * heads * dim, 'rope: x', 'inout'), ptr(cos, tableLen, 'rope: cos table', 'in'),
    ptr(sin, tableLen, 'rope: sin table', 'in'), tokens, heads, dim, start, inverse ? -1 : 1,
  ];
  if (rows > 0) parallelFor('rope', args, rows, heads * dim);
  endCall();
}

// ---------------------------------------------------------------- softmax and losses

/**
 * Row softmax of `rows` rows of `cols` scores in place, causal: in row r (query t = r mod tq) only the
 * first min(cols, t + 1 + offset) entries count, the rest become 0. offset = cols − tq for a query block
 * at the end of the keys (KV cache); pass causal = false for a plain softmax.
 */
export function softmax(
  x: Float32Array, rows: number, cols: number, causal = false, tq = rows, offset = 0,
): void {
  checkCount('softmax: rows', rows);
  checkCount('softmax: cols', cols);
  if (causal && !(Number.isInteger(tq) && tq >= 1)) throw new RangeError(`supra: softmax: tq must be a positive integer, got ${tq}`);
  beginCall();
  const args = [ptr(x, rows * cols, 'softmax: x', 'inout'), cols, causal ? 1 : 0, causal ? tq : 1, offset];
  parallelFor('softmax', args, rows, 4 * cols);
  endCall();
}

/** dx = y ⊙ (dy − Σ dy·y) per row (dx may be dy). */
export function softmaxBackward(dy: Float32Array, y: Float32Array, dx: Float32Array, rows: number, cols: number): void {
  checkCount('softmaxBackward: rows', rows);
  checkCount('softmaxBackward: cols', cols);
  beginCall();
  const args = [
    ptr(dy, rows * cols, 'softmaxBackward: dy', 'in'), ptr(y, rows * cols, 'softmaxBackward: y', 'in'),
    ptr(dx, rows * cols, 'softmaxBackward: dx', 'out'), cols,
  ];
  parallelFor('softmaxBackward', args, rows, 2 * cols);
  endCall();
}

/** out = log_softmax(x) per row. */
export function logSoftmax(x: Float32Array, out: Float32Array, rows: number, cols: number): void {
  checkCount('logSoftmax: rows', rows);
  checkCount('logSoftmax: cols', cols);
  beginCall();
  const args = [ptr(x, rows * cols, 'logSoftmax: x', 'in'), ptr(out, rows * cols, 'logSoftmax: out', 'out'), cols];
  parallelFor('logSoftmax', args, rows, 4 * cols);
  endCall();
}

/** Targets in [0, vocab) among the first `rows` (−100 = ignored; anything else an error). */
export function countTargets(targets: Int32Array, rows: number, vocab: number): number {
  let count = 0;
  for (let r = 0; r < rows; r++) {
    const t = targets[r]!;
    if (t === -100) continue;
    if (!(t >= 0 && t < vocab)) throw new RangeError(`supra: target ${t} outside vocab ${vocab}`);
    count++;
  }
  return count;
}

/**
 * Mean cross-entropy of logits [rows, vocab] against targets (−100 = ignored), plus
 * zLoss · mean(logsumexp²) when zLoss > 0. When dlogits is given it receives d(loss)/d(logits)
 * (overwritten), scaled by 1/count so it is the gradient of the mean. Returns the loss and the count.
 * `meanOver` divides by another count instead (loss and gradient): a block of the rows of a mean over
 * more rows, whose blocks' losses then sum to it.
 */
export function crossEntropy(
  logits: Float32Array, targets: Int32Array, rows: number, vocab: number,
  dlogits: Float32Array | null = null, zLoss = 0, meanOver?: number,
): { loss: number; count: number } {
  checkCount('crossEntropy: rows', rows);
  checkCount('crossEntropy: vocab', vocab);
  if (targets.length < rows) throw new RangeError(`supra: crossEntropy: targets has ${targets.length} entries, need ${rows}`);
  const count = countTargets(targets, rows, vocab);
  const over = meanOver ?? count;
  const inv = over > 0 ? 1 / over : 0;
  const own = getBackend().kernels;
  if (own) {
    if (logits.length < rows * vocab) throw new RangeError(`supra: crossEntropy: logits has ${logits.length} values, need ${rows * vocab}`);
    if (dlogits && dlogits.length < rows * vocab) throw new RangeError(`supra: crossEntropy: dlogits has ${dlogits.length} values, need ${rows * vocab}`);
    const total = rows > 0 ? own.crossEntropy(logits, targets, vocab, dlogits, zLoss, inv, rows, chunkGrain(rows, 4 * vocab)) : 0;
    return { loss: total * inv, count };
  }
  beginCall();
  const args = [
    ptr(logits, rows * vocab, 'crossEntropy: logits', 'in'), ptr(targets, rows, 'crossEntropy: targets', 'in'), vocab,
    dlogits ? ptr(dlogits, rows * vocab, 'crossEntropy: dlogits', 'out') : 0, zLoss, inv,
  ];
  const total = parallelFor('crossEntropy', args, rows, 4 * vocab, true);
  endCall();
  return { loss: total * inv, count };
}

// ---------------------------------------------------------------- embeddings

/** out[i, :] = table[ids[i], :] */
export function embedding(ids: Int32Array, table: Float32Array, out: Float32Array, n: number, dim: number): void {
  checkCount('embedding: n', n);
  checkCount('embedding: dim', dim);
  if (ids.length < n) throw new RangeError(`supra: embedding: ids has ${ids.length} entries, need ${n}`);
  const vocab = dim > 0 ? Math.floor(table.length / dim) : 0;
  for (let i = 0; i < n; i++) {
    const id = ids[i]!;
    if (!(id >= 0 && id < vocab)) throw new RangeError(`supra: embedding: token id ${id} outside the table's ${vocab} rows`);
  }
  beginCall();
  const args = [ptr(ids, n, 'embedding: ids', 'in'), ptr(table, vocab * dim, 'embedding: table', 'in'), ptr(out, n * dim, 'embedding: out', 'out'), dim];
  parallelFor('embedding', args, n, dim);
  endCall();
}

/** embedding from a table stored in any weight type (core/weights.ts): rows widened to float32. */
export function embeddingOf(ids: Int32Array, table: Weight, out: Float32Array, n: number, dim: number): void {
  // a table outside the arena is read row by row here: the wasm kernel would copy all of it in first
  if (table.type === 'f32' && inArena(table.data)) return embedding(ids, table.data, out, n, dim);
  checkCount('embedding: n', n);
  checkCount('embedding: dim', dim);
  if (ids.length < n) throw new RangeError(`supra: embedding: ids has ${ids.length} entries, need ${n}`);
  checkLength('embedding: out', out, n * dim);
  const vocab = dim > 0 ? Math.floor(table.data.length / dim) : 0;
  const traits = WEIGHT_TYPES[table.type];
  for (let i = 0; i < n; i++) {
    const id = ids[i]!;
    if (!(id >= 0 && id < vocab)) throw new RangeError(`supra: embedding: token id ${id} outside the table's ${vocab} rows`);
    traits.toFloat(table, id * dim, dim, out.subarray(i * dim, (i + 1) * dim));
  }
}

/** dtable[ids[i], :] += dout[i, :] (scatter-add, accumulates). */
export function embeddingBackward(ids: Int32Array, dout: Float32Array, dtable: Float32Array, n: number, dim: number): void {
  checkCount('embeddingBackward: n', n);
  checkCount('embeddingBackward: dim', dim);
  if (ids.length < n) throw new RangeError(`supra: embeddingBackward: ids has ${ids.length} entries, need ${n}`);
  const vocab = dim > 0 ? Math.floor(dtable.length / dim) : 0;
  for (let i = 0; i < n; i++) {
    const id = ids[i]!;
    if (!(id >= 0 && id < vocab)) throw new RangeError(`supra: embeddingBackward: token id ${id} outside the table's ${vocab} rows`);
  }
  const heap = outsideArena(dtable);
  if (heap) return heap.embeddingBackward(ids, dout, dtable, n, dim, chunkGrain(dim, n));
  beginCall();
  // split by columns: repeated ids then never race
  const args = [
    ptr(ids, n, 'embeddingBackward: ids', 'in'), ptr(dout, n * dim, 'embeddingBackward: dout', 'in'),
    ptr(dtable, vocab * dim, 'embeddingBackward: dtable', 'inout'), n, dim,
  ];
  parallelFor('embeddingBackward', args, dim, n);
  endCall();
}

// ---------------------------------------------------------------- reductions and optimizer

/** Σ x² */
export function sumSquares(x: Float32Array, n = x.length): number {
  checkCount('sumSquares: n', n);
  const heap = outsideArena(x);
  if (heap) return heap.sumSquares(x, n, chunkGrain(n, 1));
  beginCall();
  const s = parallelFor('sumSquares', [ptr(x, n, 'sumSquares: x', 'in')], n, 1, true);
  endCall();
  return s;
}

/** True when every value is finite. */
export function allFinite(x: Float32Array, n = x.length): boolean {
  checkCount('allFinite: n', n);
  beginCall();
  const bad = parallelFor('anyNonFinite', [ptr(x, n, 'allFinite: x', 'in')], n, 1, true); // chunks with a NaN/inf
  endCall();
  return bad === 0;
}

/**
 * One AdamW step (PyTorch's) on the gradient g·gradScale: p −= lr·wd·p; m = b1·m + (1−b1)·g;
 * v = b2·v + (1−b2)·g²; p −= lr · (m / (1 − b1^t)) / (sqrt(v / (1 − b2^t)) + eps). `step` is t, counted
 * from 1. gradScale (the clipping and averaging factor) multiplies each gradient value in float32 in the
 * same pass: the bits of scale(g, gradScale) then adamw. With clearGrad, g is zeroed as it is read (its
 * owner's next gradients then accumulate from zero with no zeroing pass); otherwise g is left as it was.
 */
export function adamw(
  p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array,
  lr: number, b1: number, b2: number, eps: number, wd: number, step: number, n = p.length,
  gradScale = 1, clearGrad = false,
): void {
  checkCount('adamw: n', n);
  const bc1 = 1 - Math.pow(b1, step);
  const bc2 = 1 - Math.pow(b2, step);
  const heap = outsideArena(p, g, m, v);
  if (heap) return heap.adamw(p, g, m, v, lr, b1, b2, eps, wd, bc1, bc2, gradScale, clearGrad, n, chunkGrain(n, 4));
  beginCall();
  const args = [
    ptr(p, n, 'adamw: p', 'inout'), ptr(g, n, 'adamw: g', clearGrad ? 'inout' : 'in'), ptr(m, n, 'adamw: m', 'inout'),
    ptr(v, n, 'adamw: v', 'inout'), lr, b1, b2, eps, wd, bc1, bc2, gradScale, clearGrad ? 1 : 0,
  ];
  parallelFor('adamw', args, n, 4);
  endCall();
}

// ---------------------------------------------------------------- head layouts and linear attention

function checkHeads(name: string, heads: number, rep: number): void {
  if (!Number.isInteger(rep) || rep < 1 || heads % rep !== 0) throw new RangeError(`supra: ${name}: ${heads} heads is not a multiple of rep ${rep}`);
}

/**
 * Token-major [B, T, H/rep, D] to head-major [B, H, T, D], repeating each source head rep times:
 * dst[b, h, t, :] = src[b, t, ⌊h/rep⌋, :]. With T = 1 this is repeat_kv on rows.
 */
export function toHeadMajor(src: Float32Array, dst: Float32Array, B: number, T: number, H: number, rep: number, D: number): void {
  checkCounts('toHeadMajor', 'B,T,H,D', B, T, H, D);
  checkHeads('toHeadMajor', H, rep);
  const n = B * T * H * D;
  if (ownRange('toHeadMajor', [src, dst], [T, H, rep, D], B * H, T * D)) return;
  beginCall();
  const args = [ptr(src, n / rep, 'toHeadMajor: src', 'in'), ptr(dst, n, 'toHeadMajor: dst', 'out'), T, H, rep, D];
  if (n > 0) parallelFor('toHeadMajor', args, B * H, T * D);
  endCall();
}

/**
 * The backward of toHeadMajor (overwrites): dst[b, t, g, :] = Σ_{r < rep} src[b, g·rep + r, t, :],
 * head-major [B, H, T, D] back to token-major [B, T, H/rep, D].
 */
export function toTokenMajor(src: Float32Array, dst: Float32Array, B: number, T: number, H: number, rep: number, D: number): void {
  checkCounts('toTokenMajor', 'B,T,H,D', B, T, H, D);
  checkHeads('toTokenMajor', H, rep);
  const n = B * T * H * D;
  if (ownRange('toTokenMajor', [src, dst], [T, H, rep, D], (B * H) / rep, T * D * rep)) return;
  beginCall();
  const args = [ptr(src, n, 'toTokenMajor: src', 'in'), ptr(dst, n / rep, 'toTokenMajor: dst', 'out'), T, H, rep, D];
  if (n > 0) parallelFor('toTokenMajor', args, (B * H) / rep, T * D * rep);
  endCall();
}

/** x[u, :] ⊙= pattern for `blocks` consecutive blocks of `size` floats (a per-head pattern over a batch). */
export function mulBlocks(x: Float32Array, pattern: Float32Array, blocks: number, size: number): void {
  checkCount('mulBlocks: blocks', blocks);
  checkCount('mulBlocks: size', size);
  if (ownRange('mulBlocks', [x, pattern], [size], blocks, size)) return;
  beginCall();
  const args = [ptr(x, blocks * size, 'mulBlocks: x', 'inout'), ptr(pattern, size, 'mulBlocks: pattern', 'in'), size];
  parallelFor('mulBlocks', args, blocks, size);
  endCall();
}

/** y[r, :] = x[r, :] ⊙ w, a per-channel gain (y may be x). Its backward: mulRows(dy, w) and gainGrad. */
export function mulRows(x: Float32Array, w: Float32Array, y: Float32Array, rows: number, cols: number): void {
  checkCount('mulRows: rows', rows);
  checkCount('mulRows: cols', cols);
  beginCall();
  const args = [ptr(x, rows * cols, 'mulRows: x', 'in'), ptr(w, cols, 'mulRows: w', 'in'), ptr(y, rows * cols, 'mulRows: y', 'out'), cols];
  parallelFor('mulRows', args, rows, cols);
  endCall();
}

/** dw[c] += Σ_r dy[r, c]·x[r, c] (the gradient of the gain of mulRows; accumulates). */
export function gainGrad(dy: Float32Array, x: Float32Array, dw: Float32Array, rows: number, cols: number): void {
  checkCount('gainGrad: rows', rows);
  checkCount('gainGrad: cols', cols);
  beginCall();
  // split by columns, so no two threads add into the same dw entry
  const args = [ptr(dy, rows * cols, 'gainGrad: dy', 'in'), ptr(x, rows * cols, 'gainGrad: x', 'in'), ptr(dw, cols, 'gainGrad: dw', 'inout'), rows, cols];
  parallelFor('gainGrad', args, cols, 2 * rows);
  endCall();
}

/**
 * Per-head decay of rows, for U = BH heads: dst[u, i, :] = src[u·srcStride + i·cols + :] · mult ·
 * powers[(u mod H)·powStride + e(i)], e(i) = i, or from − i when from ≥ 0 (rows i < rows). dst is packed
 * [U, rows, cols]; powers (float64) hold γ_h^n.
 */
export function scaleRowsByDecay(
  src: Float32Array, srcStride: number, dst: Float32Array, U: number, H: number, rows: number, cols: number,
  powers: Float64Array, powStride: number, mult: number, from: number,
): void {
  checkCounts('scaleRowsByDecay', 'srcStride,U,H,rows,cols,powStride', srcStride, U, H, rows, cols, powStride);
  if (U === 0 || rows === 0) return;
  if (from >= 0 && from < rows - 1) throw new RangeError(`supra: scaleRowsByDecay: from ${from} would give negative exponents`);
  const maxExp = from >= 0 ? from : rows - 1;
  if (ownRange('scaleRowsByDecay', [src, dst, powers], [srcStride, H, rows, cols, powStride, mult, from], U, rows * cols)) return;
  beginCall();
  const args = [
    ptr(src, (U - 1) * srcStride + rows * cols, 'scaleRowsByDecay: src', 'in'), srcStride,
    ptr(dst, U * rows * cols, 'scaleRowsByDecay: dst', 'out'), H, rows, cols,
    ptr(powers, (H - 1) * powStride + maxExp + 1, 'scaleRowsByDecay: powers', 'in'), powStride, mult, from,
  ];
  parallelFor('scaleRowsByDecay', args, U, rows * cols);
  endCall();
}

/**
 * Per-head decay of the rows of every chunk of a sequence, in one pass: for U = BH heads of `tokens` rows of
 * `cols` (head-major [U, tokens, cols], src and dst alike), cut in chunks of `chunk` rows (the last may be
 * shorter), dst[u, t, :] = src[u, t, :] · mult · powers[(u mod H)·powStride + e], e = i, or len − i with
 * fromEnd, for row i of a chunk of len rows: each chunk's rows as scaleRowsByDecay gives them (from = len).
 */
export function decayChunkRows(
  src: Float32Array, dst: Float32Array, U: number, H: number, tokens: number, cols: number, chunk: number,
  powers: Float64Array, powStride: number, mult: number, fromEnd: boolean,
): void {
  checkCounts('decayChunkRows', 'U,H,tokens,cols,chunk,powStride', U, H, tokens, cols, chunk, powStride);
  if (U === 0 || tokens === 0) return;
  if (H < 1 || chunk < 1) throw new RangeError(`supra: decayChunkRows: heads ${H} and chunk ${chunk} must be at least 1`);
  const rows = U * tokens;
  if (ownRange('decayChunkRows', [src, dst, powers], [H, tokens, cols, chunk, powStride, mult, fromEnd ? 1 : 0], rows, cols)) return;
  beginCall();
  const args = [
    ptr(src, rows * cols, 'decayChunkRows: src', 'in'), ptr(dst, rows * cols, 'decayChunkRows: dst', 'out'), H, tokens, cols, chunk,
    ptr(powers, (H - 1) * powStride + Math.min(tokens, chunk) + 1, 'decayChunkRows: powers', 'in'), powStride, mult, fromEnd ? 1 : 0,
  ];
  parallelFor('decayChunkRows', args, rows, cols);
  endCall();
}

/** x[u] *= powers[(u mod H)·powStride + n] for U = BH consecutive blocks of `size` floats (decays states by γ_h^n). */
export function decayBlocks(x: Float32Array, U: number, H: number, size: number, powers: Float64Array, powStride: number, n: number): void {
  checkCounts('decayBlocks', 'U,H,size,powStride,n', U, H, size, powStride, n);
  if (U === 0) return;
  if (ownRange('decayBlocks', [x, powers], [size, H, powStride, n], U, size)) return;
  beginCall();
  const args = [
    ptr(x, U * size, 'decayBlocks: x', 'inout'), size, H,
    ptr(powers, (H - 1) * powStride + n + 1, 'decayBlocks: powers', 'in'), powStride, n,
  ];
  parallelFor('decayBlocks', args, U, size);
  endCall();
}

/**
 * A SUPRA layer's decoding step (one token per sequence, no qk-norm, GroupNorm after the attention) from its
 * raw feature-map outputs to o_proj's input, the fla-style fused recurrent form: ReLU of q [B, H, Dk] and k
 * [B, Hkv, Dk] in place, repeat_kv of k and v into kRep and vRep [B, H, ·] (null when H = Hkv: k and v serve),
 * RoPE of q and the repeated k at `start`, the recurrent step into o [B, H, Dv] and state [B, H, Dk, Dv]
 * (linearAttentionStep), and GroupNorm of each head's o into out and rstd. A backend with
 * BackendKernels.fusedRecurrentStep runs it in one call; otherwise the separate calls run, the same kernels in
 * the same order, so the bits are the same either way.
 */
export function fusedRecurrentStep(
  q: Float32Array, k: Float32Array, v: Float32Array, kRep: Float32Array | null, vRep: Float32Array | null, o: Float32Array,
  out: Float32Array, rstd: Float32Array, state: Float32Array, cos: Float32Array, sin: Float32Array, powers: Float64Array,
  B: number, H: number, Hkv: number, Dk: number, Dv: number, start: number, scale: number, powStride: number, eps: number,
): void {
  checkCounts('fusedRecurrentStep', 'B,H,Hkv,Dk,Dv', B, H, Hkv, Dk, Dv);
  checkCounts('fusedRecurrentStep', 'start,powStride', start, powStride);
  if (Hkv < 1 || H % Hkv !== 0) throw new RangeError(`supra: fusedRecurrentStep: ${H} heads are not a multiple of ${Hkv} kv heads`);
  const rep = H / Hkv;
  if ((rep === 1) !== (kRep === null) || (rep === 1) !== (vRep === null)) {
    throw new RangeError('supra: fusedRecurrentStep: kRep and vRep are null exactly when heads == kv heads');
  }
  if (Dk < 2 || Dk % 2 !== 0 || Dv < 1) throw new RangeError(`supra: fusedRecurrentStep: Dk must be even and at least 2, Dv at least 1, got ${Dk} and ${Dv}`);
  if (B === 0) return;
  const own = getBackend().kernels?.fusedRecurrentStep;
  if (own) {
    own(q, k, v, kRep, vRep, o, out, rstd, state, cos, sin, powers, B, H, Hkv, Dk, Dv, start, scale, powStride, eps); // it checks everything first
    return;
  }
  // Everything checked before anything is written, as the add-on does: the separate calls below change q and k
  // before a later one would find a short array.
  const table = (start + 1) * (Dk / 2);
  const spans: [string, Float32Array | Float64Array | null, number, boolean][] = [
    ['q', q, B * H * Dk, true], ['k', k, B * Hkv * Dk, true], ['v', v, B * Hkv * Dv, false], ['kRep', kRep, B * H * Dk, true],
    ['vRep', vRep, B * H * Dv, true], ['o', o, B * H * Dv, true], ['out', out, B * H * Dv, true], ['rstd', rstd, B * H, true],
    ['state', state, B * H * Dk * Dv, true], ['cos', cos, table, false], ['sin', sin, table, false],
    ['powers', powers, (H - 1) * powStride + 2, false],
  ];
  for (const [name, a, need] of spans) {
    if (a && a.length < need) throw new RangeError(`supra: fusedRecurrentStep: ${name} holds ${a.length} values, the call needs ${need}`);
  }
  for (let i = 0; i < spans.length; i++) {
    const [name, a, need, written] = spans[i]!;
    if (!a || !written) continue;
    for (let j = 0; j < spans.length; j++) {
      const [other, b, needB] = spans[j]!;
      if (j !== i && b && a.buffer === b.buffer && a.byteOffset < b.byteOffset + needB * b.BYTES_PER_ELEMENT &&
        b.byteOffset < a.byteOffset + need * a.BYTES_PER_ELEMENT) {
        throw new RangeError(`supra: fusedRecurrentStep: ${name} overlaps ${other} in memory`);
      }
    }
  }
  relu(q, q, B * H * Dk);
  relu(k, k, B * Hkv * Dk);
  if (kRep) toHeadMajor(k, kRep, B, 1, H, rep, Dk);
  rope(q, cos, sin, B, 1, H, Dk, start);
  rope(kRep ?? k, cos, sin, B, 1, H, Dk, start);
  if (vRep) toHeadMajor(v, vRep, B, 1, H, rep, Dv);
  linearAttentionStep(q, kRep ?? k, vRep ?? v, o, state, B * H, H, 1, Dk, Dv, scale, powers, powStride);
  groupnorm(o, out, rstd, B, H, Dv, eps);
}

/** A projection of fusedRecurrentLayerStep: y[B, outF] = x·Wᵀ (+ b), W stored [outF, inF]. */
export interface StepProjection {
  w: Weight;
  b: Float32Array | null;
  inF: number;
  outF: number;
}

/**
 * A SUPRA layer's decoding step (one token per sequence, feature maps folded into q_proj and k_proj) from its
 * normed input x [B, hidden] to o_proj's output y [B, hidden], in one backend call where it has one
 * (Backend.fusedRecurrentLayerStep: B ≤ 4, every weight of a type gemmShared takes): q, k, v = x·Wᵀ + b, then
 * fusedRecurrentStep's work on them, then y = out·W_oᵀ + b_o. Returns false, having done nothing, otherwise (the
 * caller makes the separate calls, which give the same bits).
 */
export function fusedRecurrentLayerStep(
  x: Float32Array, hidden: number, qProj: StepProjection, kProj: StepProjection, vProj: StepProjection, oProj: StepProjection, y: Float32Array,
  q: Float32Array, k: Float32Array, v: Float32Array, kRep: Float32Array | null, vRep: Float32Array | null, o: Float32Array,
  out: Float32Array, rstd: Float32Array, state: Float32Array, cos: Float32Array, sin: Float32Array, powers: Float64Array,
  B: number, H: number, Hkv: number, Dk: number, Dv: number, start: number, scale: number, powStride: number, eps: number,
): boolean {
  const backend = getBackend();
  if (!backend.fusedRecurrentLayerStep || B < 1 || B > 4) return false;
  const projection = (p: StepProjection, to: Float32Array) => {
    const part = WEIGHT_TYPES[p.w.type].sharedPart(p.w, to, p.outF, p.inF);
    return part ? { part, bias: p.b } : null;
  };
  const qp = projection(qProj, q), kp = projection(kProj, k), vp = projection(vProj, v), op = projection(oProj, y);
  if (!qp || !kp || !vp || !op) return false;
  return backend.fusedRecurrentLayerStep({
    x, hidden, q: qp, k: kp, v: vp, o: op,
    step: [q, k, v, kRep, vRep, o, out, rstd, state, cos, sin, powers, B, H, Hkv, Dk, Dv, start, scale, powStride, eps],
  });
}

/**
 * Recurrent linear attention over T tokens for U = BH heads, the reference's recurrent_forward:
 * S' = S + scale·k_tᵀ v_t; o_t = q_t·S'; S ← γ_h·S', with γ_h = powers[(u mod H)·powStride + 1].
 * q, k [U, T, Dk]; v, o [U, T, Dv] (o overwritten); state [U, Dk, Dv] advanced in place.
 */
export function linearAttentionStep(
  q: Float32Array, k: Float32Array, v: Float32Array, o: Float32Array, state: Float32Array,
  U: number, H: number, T: number, Dk: number, Dv: number, scale: number, powers: Float64Array, powStride: number,
): void {
  checkCounts('linearAttentionStep', 'U,H,T,Dk,Dv,powStride', U, H, T, Dk, Dv, powStride);
  if (U === 0 || T === 0) return;
  const own = getBackend().kernels?.linearAttentionStep;
  if (own) {
    own(q, k, v, o, state, H, T, Dk, Dv, scale, powers, powStride, U); // it checks the lengths itself
    return;
  }
  beginCall();
  const args = [
    ptr(q, U * T * Dk, 'linearAttentionStep: q', 'in'), ptr(k, U * T * Dk, 'linearAttentionStep: k', 'in'),
    ptr(v, U * T * Dv, 'linearAttentionStep: v', 'in'), ptr(o, U * T * Dv, 'linearAttentionStep: o', 'out'),
    ptr(state, U * Dk * Dv, 'linearAttentionStep: state', 'inout'), H, T, Dk, Dv, scale,
    ptr(powers, (H - 1) * powStride + 2, 'linearAttentionStep: powers', 'in'), powStride,
  ];
  // A decoding step (T = 1) stays on this thread. Measured on 2 cores, 64×64 states: 9 heads take 7–9 µs
  // here and 12 µs split over two threads whose workers are awake, 74 µs when they must be woken (between
  // a native decoding step's kernels they sleep); 72 heads 52 µs here, 56 and 126 µs on the pool.
  if (T === 1) runOnCaller('linearAttentionStep', args, U);
  else parallelFor('linearAttentionStep', args, U, 3 * T * Dk * Dv);
  endCall();
}
