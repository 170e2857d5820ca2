// The machine's memory read bandwidth, the bound of a memory-bound batch-1 decode, best of several passes
// over a buffer of 1 GiB by default. Where the native add-on loads, its loop (native/addon.cc: AVX-512 or
// AVX2 loads summed into 64-bit integers, on the calling thread and its helper thread, the two threads
// decoding runs on); otherwise, and for more than 2 threads, a wasm SIMD loop (128-bit loads folded into
// four xor accumulators, eight loads per iteration) run by one worker per thread over its share of a
// shared buffer, which reads less than the machine can (24.9 against 30.7 GB/s on the bench machine).
// The wasm module is assembled here from its bytes, so that measure depends on neither backend's build.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { createNativeBackend, type NativeBackend } from '../core/native/backend.js';

const PAGE = 65536;
const UNROLL = 8; // 16-byte loads per iteration
export const BANDWIDTH_ALIGN = 16 * UNROLL;

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

const section = (id: number, body: number[]): number[] => [id, ...leb(body.length), ...body];
const name = (s: string): number[] => [...leb(s.length), ...[...s].map((c) => c.charCodeAt(0))];

/** (func (export "read") (param start end i32) (result i32)): xor of every 16-byte word in [start, end). */
export function readLoopModule(pages: number): Uint8Array<ArrayBuffer> {
  const loadInto = (acc: number, offset: number): number[] => [
    0x20, acc, 0x20, 0, 0xfd, 0x00, 4, ...leb(offset), // local.get acc; local.get p; v128.load align=16 offset
    0xfd, 0x51, 0x21, acc, // v128.xor; local.set acc
  ];
  const body: number[] = [
    1, 4, 0x7b, // locals: 4 × v128 (indices 2..5)
    0x03, 0x40, // loop
    ...Array.from({ length: UNROLL }, (_, i) => loadInto(2 + (i % 4), 16 * i)).flat(),
    0x20, 0, 0x41, ...leb(BANDWIDTH_ALIGN), 0x6a, 0x22, 0, // p += 16·UNROLL (local.tee)
    0x20, 1, 0x49, 0x0d, 0, // br_if p < end (unsigned)
    0x0b, // end loop
    0x20, 2, 0x20, 3, 0xfd, 0x51, 0x20, 4, 0xfd, 0x51, 0x20, 5, 0xfd, 0x51, // fold the accumulators
    0xfd, 0x1b, 0, // i32x4.extract_lane 0
    0x0b,
  ];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 2, 0x7f, 0x7f, 1, 0x7f]),
    ...section(2, [1, ...name('env'), ...name('memory'), 0x02, 0x03, ...leb(pages), ...leb(pages)]), // shared memory
    ...section(3, [1, 0]),
    ...section(7, [1, ...name('read'), 0x00, 0]),
    ...section(10, [1, ...leb(body.length), ...body]),
  ]);
}

export interface BandwidthResult {
  /** Bytes read per pass (all threads together). */
  bytes: number;
  threads: number;
  /** GB/s (10^9 bytes) of each pass: bytes ÷ (last thread's end − first thread's start). */
  passes: number[];
  bestGBPerS: number;
  /** The loop that read, without the thread count (which is `threads`). */
  method: string;
}

/** Which loop measures: the native add-on's where it loads and has one, else wasm. */
export type BandwidthLoop = 'native' | 'wasm';

/** The add-on's read-bandwidth loop (synchronous), where the add-on loads and has one. */
export function nativeReader(): NativeBackend['readBandwidth'] {
  const native = createNativeBackend();
  return native.ok ? native.backend.readBandwidth : undefined;
}

/** The loop measureReadBandwidth uses by default on this machine. */
export function defaultBandwidthLoop(): BandwidthLoop {
  return nativeReader() ? 'native' : 'wasm';
}

/** The thread counts worth measuring with a loop: 1 and every thread it can use (the native one has two). */
export function bandwidthThreadCounts(loop: BandwidthLoop = defaultBandwidthLoop()): number[] {
  return [...new Set([1, loop === 'native' ? Math.min(2, availableParallelism()) : availableParallelism()])];
}

const NATIVE_LOADS = { avx512: 'AVX-512 512-bit loads', avx2: 'AVX2 256-bit loads', scalar: '64-bit scalar loads' } as const;

/**
 * Read bandwidth of `bytes` on `threads` threads, best of `passes`, with `loop` (default: native where it
 * loads; the native loop runs on at most 2 threads).
 */
export async function measureReadBandwidth(
  options: { bytes?: number; threads?: number; passes?: number; loop?: BandwidthLoop } = {},
): Promise<BandwidthResult> {
  const loop = options.loop ?? defaultBandwidthLoop();
  if (loop === 'wasm') return measureWasmReadBandwidth(options);
  const read = nativeReader();
  if (!read) throw new Error('supra: bench: the native add-on is not loaded or has no read-bandwidth loop (npm install rebuilds it)');
  const threads = options.threads ?? Math.min(2, availableParallelism());
  if (threads !== 1 && threads !== 2) throw new RangeError(`supra: bench: the native read loop runs on 1 or 2 threads, not ${threads}`);
  const r = read(options.bytes ?? 2 ** 30, threads, options.passes ?? 5);
  return {
    bytes: r.bytes, threads: r.threads, passes: r.passes, bestGBPerS: Math.max(...r.passes),
    method: `native add-on, ${NATIVE_LOADS[r.kernel]} summed in 64-bit integers`,
  };
}

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { memory, module, start, end, sync, index, threads } = workerData;
const read = new WebAssembly.Instance(module, { env: { memory } }).exports.read;
const flags = new Int32Array(sync);
read(start, Math.min(end, start + 4096)); // compile the tier-up path before timing
parentPort.on('message', (pass) => {
  // barrier: every thread starts together, so the pass measures their combined rate
  Atomics.add(flags, 0, 1);
  while (Atomics.load(flags, 0) < threads * (pass + 1)) {}
  const t0 = performance.timeOrigin + performance.now();
  const sink = read(start, end);
  const t1 = performance.timeOrigin + performance.now();
  parentPort.postMessage({ index, t0, t1, sink });
});
parentPort.postMessage('ready');
`;

/** Read bandwidth of `bytes` (rounded up to whole 64 KiB pages) on `threads` wasm workers, best of `passes`. */
export async function measureWasmReadBandwidth(options: { bytes?: number; threads?: number; passes?: number } = {}): Promise<BandwidthResult> {
  const threads = options.threads ?? availableParallelism();
  const passes = options.passes ?? 5;
  const pages = Math.ceil((options.bytes ?? 2 ** 30) / PAGE);
  const bytes = pages * PAGE;
  if (pages >= 65536) throw new Error('supra: bench: the bandwidth buffer must be under 4 GiB (wasm32)');
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  new Uint8Array(memory.buffer).fill(1); // commit every page before timing
  const module = new WebAssembly.Module(readLoopModule(pages));
  const sync = new SharedArrayBuffer(4);
  const share = Math.floor(bytes / threads / BANDWIDTH_ALIGN) * BANDWIDTH_ALIGN;
  const workers = Array.from({ length: threads }, (_, index) => {
    const start = index * share;
    const end = index === threads - 1 ? bytes : start + share;
    return new Worker(WORKER, { eval: true, workerData: { memory, module, start, end, sync, index, threads } });
  });
  try {
    await Promise.all(workers.map((w) => new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    })));
    const results: number[] = [];
    for (let pass = 0; pass < passes; pass++) {
      const times = await Promise.all(workers.map((w) => new Promise<{ t0: number; t1: number }>((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
        w.postMessage(pass);
      })));
      const seconds = (Math.max(...times.map((t) => t.t1)) - Math.min(...times.map((t) => t.t0))) / 1000;
      results.push(bytes / seconds / 1e9);
    }
    return { bytes, threads, passes: results, bestGBPerS: Math.max(...results), method: 'wasm SIMD 128-bit loads, one worker per thread' };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
