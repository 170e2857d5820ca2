// The wasm runtime on the calling thread: the kernel instance, the worker pool, staging of arrays
// that are not in the arena, and the split of each kernel call into chunks for the pool.
//
// Arrays given to kernels may be arena views (used in place: pointer = byteOffset) or ordinary typed
// arrays. Ordinary arrays are copied into temporary arena buffers and, for outputs, copied back:
// correct, but it costs a copy each way, so models keep their buffers in the arena.
import { canShareMemory, envVar, hostParallelism } from '../host.js';
import { allocF32, allocI32, allocI8, allocU16, free, inArena, memory } from '../memory.js';
import { instantiateKernels, kernelModule, type KernelExports } from './module.js';
import { MAX_CHUNKS, Pool, type PoolKernel } from './pool.js';

let exportsCache: KernelExports | undefined;
let pool: Pool | undefined;

/** The kernel module's exports on this thread. */
export function kernels(): KernelExports {
  if (!exportsCache) exportsCache = instantiateKernels(kernelModule(), memory);
  return exportsCache;
}

/**
 * Threads from SUPRA_THREADS, or every core (os.availableParallelism(); a browser's hardwareConcurrency);
 * one where memory cannot be shared (a browser page without cross-origin isolation).
 */
export function defaultThreads(): number {
  if (!canShareMemory) return 1;
  const env = envVar('SUPRA_THREADS');
  if (env === undefined || env === '') return hostParallelism();
  const n = Number(env);
  if (!Number.isInteger(n) || n < 1) throw new Error(`supra: SUPRA_THREADS must be a positive integer, got "${env}"`);
  return n;
}

export function getPool(): Pool {
  if (!pool) pool = new Pool(kernels(), defaultThreads());
  return pool;
}

/** Use n threads from now on (the bench and tests compare counts); replaces the pool. */
export function setThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`supra: thread count must be a positive integer, got ${n}`);
  if (n > 1 && !canShareMemory) {
    throw new Error('supra: more than one thread needs shared memory: serve the page cross-origin isolated (COOP: same-origin, COEP: require-corp)');
  }
  // close first: closing bumps the epoch that the new pool's workers will carry
  pool?.close();
  pool = undefined;
  pool = new Pool(kernels(), n);
}

// ---------------------------------------------------------------- staging

type Mode = 'in' | 'out' | 'inout';
type KernelArray = Float32Array | Int32Array | Float64Array | Uint16Array | Int8Array;
interface Staged {
  user: KernelArray;
  temp: KernelArray;
  block: Float32Array | Int32Array | Uint16Array | Int8Array; // the arena block under temp, freed after the call
  count: number;
  copyBack: boolean;
}
const staged: Staged[] = [];

/** Start a kernel call: drop temporaries a failed call may have left behind. */
export function beginCall(): void {
  for (const s of staged) free(s.block);
  staged.length = 0;
}

/**
 * Byte pointer of the first `count` elements of arr for a kernel, after checking its length. Arena
 * arrays are used in place; others are copied into a temporary arena buffer ('in'/'inout') and copied
 * back by endCall ('out'/'inout').
 */
export function ptr(arr: KernelArray, count: number, name: string, mode: Mode): number {
  if (arr.length < count) {
    throw new RangeError(`supra: ${name} has ${arr.length} elements, the call needs ${count}`);
  }
  if (inArena(arr)) return arr.byteOffset;
  let temp: KernelArray;
  let block: Float32Array | Int32Array | Uint16Array | Int8Array;
  if (arr instanceof Int32Array) temp = block = allocI32(count);
  else if (arr instanceof Uint16Array) temp = block = allocU16(count);
  else if (arr instanceof Int8Array) temp = block = allocI8(count);
  else if (arr instanceof Float64Array) {
    block = allocF32(2 * count);
    temp = new Float64Array(block.buffer, block.byteOffset, count);
  } else temp = block = allocF32(count);
  if (mode !== 'out') (temp as Float64Array).set((count === arr.length ? arr : arr.subarray(0, count)) as Float64Array);
  staged.push({ user: arr, temp, block, count, copyBack: mode !== 'in' });
  return temp.byteOffset;
}

/** Finish a kernel call: copy staged outputs back and free the temporaries. */
export function endCall(): void {
  for (const s of staged) {
    if (s.copyBack) (s.user as Float64Array).set(s.temp.subarray(0, s.count) as Float64Array);
    free(s.block);
  }
  staged.length = 0;
}

// ---------------------------------------------------------------- splitting work

/**
 * Below this many float touches a kernel runs on the calling thread. Measured on 2 cores: add of 64 Ki
 * floats 7.9 µs alone vs 6.0 on two; swiglu (exp + divide, counted as 4 touches each) of 16 Ki floats
 * 38 µs vs 24.
 */
export const PARALLEL_MIN_ELEMENTS = 1 << 16;
/** Roughly how many float touches one chunk gets. */
export const CHUNK_ELEMENTS = 1 << 15;

/**
 * Units per chunk when `total` units of about `unitElements` float touches each are split: chunk c covers
 * [c·grain, min(total, (c+1)·grain)). It depends only on the problem size, never on the thread count.
 */
export function chunkGrain(total: number, unitElements: number): number {
  let grain = Math.max(1, Math.ceil(CHUNK_ELEMENTS / Math.max(1, unitElements)));
  if (Math.ceil(total / grain) > MAX_CHUNKS) grain = Math.ceil(total / MAX_CHUNKS);
  return grain;
}

/**
 * Run a range kernel (one without a result) over units [0, total) on the calling thread, in one call: for
 * work the pool does not speed up. Its units are independent, so the bits are parallelFor's.
 */
export function runOnCaller(kernel: PoolKernel, args: number[], total: number): void {
  if (total <= 0) return;
  callRange(kernels()[kernel] as unknown as RangeFn, args, 0, total);
}

type RangeFn = (...a: number[]) => number | undefined;

/**
 * fn(...args, lo, hi) on the exports, without building a new list for each call: a decoding step makes
 * hundreds of kernel calls, and the spread list of each was most of the garbage a token left.
 */
function callRange(fn: RangeFn, a: number[], lo: number, hi: number): number | undefined {
  switch (a.length) {
    case 1: return fn(a[0]!, lo, hi);
    case 2: return fn(a[0]!, a[1]!, lo, hi);
    case 3: return fn(a[0]!, a[1]!, a[2]!, lo, hi);
    case 4: return fn(a[0]!, a[1]!, a[2]!, a[3]!, lo, hi);
    case 5: return fn(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, lo, hi);
    case 6: return fn(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!, lo, hi);
    case 7: return fn(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, lo, hi);
    case 8: return fn(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, a[7]!, lo, hi);
    case 9: return fn(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, a[7]!, a[8]!, lo, hi);
    case 10: return fn(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, a[7]!, a[8]!, a[9]!, lo, hi);
    case 11: return fn(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, a[7]!, a[8]!, a[9]!, a[10]!, lo, hi);
    case 12: return fn(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, a[7]!, a[8]!, a[9]!, a[10]!, a[11]!, lo, hi);
    case 13: return fn(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, a[7]!, a[8]!, a[9]!, a[10]!, a[11]!, a[12]!, lo, hi);
    default: return fn(...a, lo, hi);
  }
}

/**
 * Run a range kernel over units [0, total), where one unit touches about `unitElements` floats, and
 * return the sum of its per-chunk results (summed in chunk order). Chunk boundaries (chunkGrain) depend
 * only on the problem size, never on the thread count, so reductions give identical results for any count.
 */
export function parallelFor(kernel: PoolKernel, args: number[], total: number, unitElements: number, reduction = false): number {
  if (total <= 0) return 0;
  const ex = kernels();
  const fn = ex[kernel] as unknown as (...a: number[]) => number | undefined;
  const perUnit = Math.max(1, unitElements);
  const grain = chunkGrain(total, perUnit);
  const chunks = Math.ceil(total / grain);
  const p = getPool();
  if (p.threads === 1 || chunks === 1 || total * perUnit < PARALLEL_MIN_ELEMENTS) {
    if (!reduction) return Number(callRange(fn, args, 0, total) ?? 0);
    let sum = 0;
    for (let lo = 0; lo < total; lo += grain) sum += Number(callRange(fn, args, lo, Math.min(total, lo + grain)) ?? 0);
    return sum;
  }
  const results = p.run(kernel, args, total, grain);
  let sum = 0;
  for (let i = 0; i < chunks; i++) sum += results[i]!;
  return sum;
}
