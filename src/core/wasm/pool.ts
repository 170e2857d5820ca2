// The worker pool: every thread (the caller included) runs the same kernel module on the arena's
// shared memory. A job is posted through a control block in shared memory below ARENA_BASE; threads
// claim its chunks one at a time with a compare-and-swap, so a busy or sleeping core never holds up
// the others, and the caller waits (Atomics.wait is allowed on Node's main thread) until every chunk
// is done. Calls stay synchronous for the caller. In a browser the workers are module Web Workers and
// the caller must itself be a worker (a page's main thread may not Atomics.wait): supra/web runs the
// model in one.
//
// Control block (int32 words at CTRL_BASE):
//   GEN    job generation; workers sleep on it
//   CLAIM  (generation & 0xffff) << 16 | next chunk; a claim only succeeds for the current job
//   DONE   chunks finished; the caller sleeps on it
//   TOTAL, KERNEL, NARGS, ERROR   the job: TOTAL chunks of GRAIN units out of UNITS
//   EPOCH  which pool owns the workers (setThreads replaces the pool; old workers then exit)
//   STATS + t   chunks thread t has run (a diagnostic, read by the tests)
// then the job's float64 arguments, each chunk's float64 result, and an error message.
import { isNode, nodeBuiltin } from '../host.js';
import { ARENA_BASE, allocF32, memory } from '../memory.js';
import { kernelModule, type KernelExports } from './module.js';

export const CTRL_BASE = 0x80000; // 512 KiB; the kernel module keeps no data in memory at all
const GEN = 0;
const CLAIM = 1;
const DONE = 2;
const TOTAL = 3;
const KERNEL = 4;
const NARGS = 5;
const ERROR = 6;
const EPOCH = 7; // which pool the workers belong to; a replaced pool's workers exit
const UNITS = 8; // chunk i covers units [i·GRAIN, min(UNITS, (i+1)·GRAIN))
const GRAIN = 9;
const STATS = 16;
export const MAX_THREADS = 256;
const CTRL_INTS = STATS + MAX_THREADS;
const ARGS_OFFSET = CTRL_BASE + 4 * CTRL_INTS;
const MAX_ARGS = 32;
const RESULTS_OFFSET = ARGS_OFFSET + 8 * MAX_ARGS;
export const MAX_CHUNKS = 4096;
const MESSAGE_OFFSET = RESULTS_OFFSET + 8 * MAX_CHUNKS;
const MESSAGE_CHARS = 1024;
if (MESSAGE_OFFSET + 2 * MESSAGE_CHARS > ARENA_BASE) throw new Error('supra: pool control block overlaps the arena');

/** Kernels a job may name (exports of kernels.wasm taking (...args, lo, hi[, work])). */
export const POOL_KERNELS = [
  'sgemmTiles', 'gemmBf16Tiles', 'gemmInt8Tiles', 'add', 'axpy', 'scale', 'mul', 'relu', 'reluBackward', 'swiglu', 'swigluBackward',
  'addBias', 'sumRows', 'rmsnorm', 'rmsnormBackwardDx', 'rmsnormBackwardDw', 'groupnorm', 'groupnormBackward',
  'rope', 'softmax', 'softmaxBackward', 'logSoftmax', 'crossEntropy', 'embedding', 'embeddingBackward',
  'sumSquares', 'anyNonFinite', 'adamw',
  'toHeadMajor', 'toTokenMajor', 'mulBlocks', 'mulRows', 'gainGrad', 'scaleRowsByDecay', 'decayChunkRows', 'decayBlocks', 'linearAttentionStep',
] as const;
export type PoolKernel = (typeof POOL_KERNELS)[number];

/** Views of the control block (one SharedArrayBuffer view stays valid after the memory grows). */
export interface Control {
  ctl: Int32Array;
  args: Float64Array;
  results: Float64Array;
  message: Uint16Array;
}

export function controlViews(mem: WebAssembly.Memory): Control {
  const buf = mem.buffer;
  return {
    ctl: new Int32Array(buf, CTRL_BASE, CTRL_INTS),
    args: new Float64Array(buf, ARGS_OFFSET, MAX_ARGS),
    results: new Float64Array(buf, RESULTS_OFFSET, MAX_CHUNKS),
    message: new Uint16Array(buf, MESSAGE_OFFSET, MESSAGE_CHARS),
  };
}

const retiredWork: Float32Array[] = [];

type KernelFn = (...a: number[]) => number | undefined;

/**
 * Claim and run chunks of the job of generation `gen` until none are left. Used by the caller and
 * the workers alike. `args` must have been read after GEN showed `gen`. A claim only succeeds while
 * that job's tag is in CLAIM, and the caller closes CLAIM before it writes the next job, so the
 * arguments and sizes read before a successful claim are that job's.
 */
export function runChunks(c: Control, ex: KernelExports, gen: number, args: number[], fn: KernelFn, tid: number, work: number): void {
  const { ctl, results } = c;
  const tag = (gen & 0xffff) << 16;
  const total = Atomics.load(ctl, TOTAL);
  const units = Atomics.load(ctl, UNITS);
  const grain = Atomics.load(ctl, GRAIN);
  for (;;) {
    const v = Atomics.load(ctl, CLAIM);
    if ((v & 0xffff0000) !== tag) return;
    const chunk = v & 0xffff;
    if (chunk >= total) return;
    if (Atomics.compareExchange(ctl, CLAIM, v, v + 1) !== v) continue;
    let result = 0;
    try {
      const lo = chunk * grain;
      result = Number(fn.call(ex, ...args, lo, Math.min(units, lo + grain), work) ?? 0);
    } catch (e) {
      if (Atomics.compareExchange(ctl, ERROR, 0, 1) === 0) {
        const text = String(e instanceof Error ? e.message : e).slice(0, MESSAGE_CHARS - 1);
        for (let i = 0; i < text.length; i++) c.message[i] = text.charCodeAt(i);
        c.message[text.length] = 0;
      }
    }
    results[chunk] = result;
    Atomics.add(ctl, STATS + tid, 1);
    if (Atomics.add(ctl, DONE, 1) + 1 === total) Atomics.notify(ctl, DONE);
  }
}

/** Read the job of generation `gen` (kernel name and arguments) from the control block. */
export function readJob(c: Control): { kernel: PoolKernel; args: number[] } {
  const kernel = POOL_KERNELS[Atomics.load(c.ctl, KERNEL)]!;
  const n = Atomics.load(c.ctl, NARGS);
  const args = new Array<number>(n);
  for (let i = 0; i < n; i++) args[i] = c.args[i]!;
  return { kernel, args };
}

export function currentEpoch(c: Control): number {
  return Atomics.load(c.ctl, EPOCH);
}

export function waitForJob(c: Control, seen: number, spinMs: number): number {
  let gen = Atomics.load(c.ctl, GEN);
  if (gen !== seen) return gen;
  // spin briefly: back-to-back kernels then start without a futex wake-up
  const until = performance.now() + spinMs;
  for (let i = 0; ; i++) {
    gen = Atomics.load(c.ctl, GEN);
    if (gen !== seen) return gen;
    if ((i & 255) === 255 && performance.now() > until) break;
  }
  Atomics.wait(c.ctl, GEN, seen);
  return Atomics.load(c.ctl, GEN);
}

/** How long a thread spins for the next job / the last chunks before it sleeps. */
export const WORKER_SPIN_MS = 0.05;
const CALLER_SPIN_MS = 0.2;

/** A pool thread as the pool sees it: Node's Worker or a browser's. */
interface PoolThread {
  terminate(): unknown;
}

function startThread(data: Record<string, unknown>): PoolThread {
  const url = new URL('./worker.js', import.meta.url);
  if (isNode) {
    const w = new (nodeBuiltin('worker_threads').Worker)(url, { workerData: data });
    w.unref(); // an idle pool never keeps the process alive
    return w;
  }
  const w = new Worker(url, { type: 'module', name: `supra pool ${String(data.tid)}` });
  w.postMessage(data); // the memory and the module are shared with the worker, not copied
  return w;
}

export class Pool {
  readonly threads: number;
  readonly workFloats: number;
  private readonly ex: KernelExports;
  private readonly c: Control;
  private readonly work: Float32Array; // threads × workFloats of scratch (sgemm packing)
  private workers: PoolThread[] = [];
  private gen: number;
  private readonly epoch: number;

  constructor(ex: KernelExports, threads: number) {
    if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
      throw new RangeError(`supra: thread count must be an integer in 1..${MAX_THREADS}, got ${threads}`);
    }
    this.ex = ex;
    this.threads = threads;
    this.workFloats = Number(ex.WORK_FLOATS.value);
    this.work = allocF32(threads * this.workFloats);
    retiredWork.push(this.work); // never freed: a replaced pool's worker may still be finishing a chunk
    this.c = controlViews(memory);
    // generations continue across pools, so a late worker of an old pool can never match a claim tag
    this.gen = Atomics.load(this.c.ctl, GEN);
    this.epoch = Atomics.add(this.c.ctl, EPOCH, 1) + 1;
    this.c.ctl.fill(0, STATS, STATS + MAX_THREADS);
  }

  /** Byte offset of thread t's scratch. */
  workPtr(t: number): number {
    return this.work.byteOffset + t * this.workFloats * 4;
  }

  private start(): void {
    const module = kernelModule();
    for (let t = 1; t < this.threads; t++) {
      const data = { memory, module, tid: t, work: this.workPtr(t), epoch: this.epoch, seenGen: this.gen, spinMs: WORKER_SPIN_MS };
      this.workers.push(startThread(data));
    }
  }

  /**
   * Run kernel over units [0, units) in chunks of `grain` units across the pool and return each
   * chunk's result (a view that the next job overwrites). The caller takes chunks too; it returns
   * when all are done.
   */
  run(kernel: PoolKernel, args: number[], units: number, grain: number): Float64Array {
    const chunks = Math.ceil(units / grain);
    if (!(chunks >= 1 && chunks <= MAX_CHUNKS)) throw new RangeError(`supra: bad chunk count ${chunks}`);
    if (args.length > MAX_ARGS) throw new RangeError(`supra: too many kernel arguments (${args.length})`);
    const { ctl } = this.c;
    if (this.threads > 1 && chunks > 1 && this.workers.length === 0) this.start();
    this.gen = (this.gen + 1) | 0;
    // close claims first (the new tag with chunk 0xffff matches no job yet and is past any TOTAL): a
    // late thread of the previous job can then no longer claim while the fields below are rewritten
    Atomics.store(ctl, CLAIM, ((this.gen & 0xffff) << 16) | 0xffff);
    for (let i = 0; i < args.length; i++) this.c.args[i] = args[i]!;
    Atomics.store(ctl, KERNEL, POOL_KERNELS.indexOf(kernel));
    Atomics.store(ctl, NARGS, args.length);
    Atomics.store(ctl, TOTAL, chunks);
    Atomics.store(ctl, UNITS, units);
    Atomics.store(ctl, GRAIN, grain);
    Atomics.store(ctl, DONE, 0);
    Atomics.store(ctl, ERROR, 0);
    Atomics.store(ctl, CLAIM, (this.gen & 0xffff) << 16);
    Atomics.store(ctl, GEN, this.gen);
    if (this.workers.length > 0 && chunks > 1) Atomics.notify(ctl, GEN, chunks - 1);
    const fn = this.ex[kernel] as unknown as KernelFn;
    runChunks(this.c, this.ex, this.gen, args, fn, 0, this.workPtr(0));
    // wait for chunks other threads still run
    const until = performance.now() + CALLER_SPIN_MS;
    for (let i = 0; ; i++) {
      const done = Atomics.load(ctl, DONE);
      if (done >= chunks) break;
      if (i > 1000 && performance.now() > until) Atomics.wait(ctl, DONE, done, 50);
    }
    if (Atomics.load(ctl, ERROR) !== 0) {
      let text = '';
      for (let i = 0; i < MESSAGE_CHARS && this.c.message[i] !== 0; i++) text += String.fromCharCode(this.c.message[i]!);
      throw new Error(`supra: kernel ${kernel} failed in a worker: ${text}`);
    }
    return this.c.results.subarray(0, chunks);
  }

  /** Chunks each thread has run since the pool started (index = thread). */
  stats(): number[] {
    return Array.from(this.c.ctl.subarray(STATS, STATS + this.threads));
  }

  /** Stop the workers (they are unref'd, so this is only needed to change the thread count). */
  close(): void {
    Atomics.add(this.c.ctl, EPOCH, 1);
    Atomics.notify(this.c.ctl, GEN); // wake sleepers so they see the new epoch and exit
    for (const w of this.workers) void w.terminate();
    this.workers = [];
  }
}
