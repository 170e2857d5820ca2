// sgemm throughput of the selected backend: square sizes and the teacher's shapes (a 256-wide,
// 704-FFN model on 2048-token batches), on 1 and 2 threads for wasm. Best of N repetitions, because
// the machine is shared: the best run is the one least disturbed by other work.
import { allocF32, free } from '../core/memory.js';
import { getBackend } from '../core/select.js';
import { getPool, setThreads } from '../core/wasm/runtime.js';
import type { GemmArgs } from '../core/backend.js';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface SgemmShape {
  name: string;
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
}

export const SGEMM_SHAPES: SgemmShape[] = [
  { name: 'n=256', m: 256, n: 256, k: 256, transA: false, transB: false },
  { name: 'n=512', m: 512, n: 512, k: 512, transA: false, transB: false },
  { name: 'n=1024', m: 1024, n: 1024, k: 1024, transA: false, transB: false },
  { name: 'qkv   [2048x256]·[256x768]ᵀ', m: 2048, n: 768, k: 256, transA: false, transB: true },
  { name: 'up    [2048x256]·[256x704]ᵀ', m: 2048, n: 704, k: 256, transA: false, transB: true },
  { name: 'down  [2048x704]·[704x256]ᵀ', m: 2048, n: 256, k: 704, transA: false, transB: true },
  { name: 'logits[2048x256]·[256x4096]ᵀ', m: 2048, n: 4096, k: 256, transA: false, transB: true },
  { name: 'dx    [2048x768]·[768x256]', m: 2048, n: 256, k: 768, transA: false, transB: false },
  { name: 'dW    [2048x768]ᵀ·[2048x256]', m: 768, n: 256, k: 2048, transA: true, transB: false },
  { name: 'dW    [2048x4096]ᵀ·[2048x256]', m: 4096, n: 256, k: 2048, transA: true, transB: false },
];

/** Best GFLOP/s of `reps` timed runs (after one warm-up) of one shape, and of at least `minMs` of runs. */
export function measureSgemm(s: SgemmShape, reps = 5, minMs = 300): number {
  const a = allocF32(s.m * s.k);
  const b = allocF32(s.k * s.n);
  const c = allocF32(s.m * s.n);
  for (let i = 0; i < a.length; i++) a[i] = Math.sin(i) * 0.5;
  for (let i = 0; i < b.length; i++) b[i] = Math.cos(i) * 0.5;
  const args: GemmArgs = { transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, a, b, c };
  const backend = getBackend();
  backend.sgemm(args);
  let best = Infinity;
  // at least `reps` runs and at least ~minMs of them, whichever is more
  const start = performance.now();
  for (let r = 0; r < reps || (performance.now() - start < minMs && r < 200); r++) {
    const t = performance.now();
    backend.sgemm(args);
    best = Math.min(best, performance.now() - t);
  }
  free(a);
  free(b);
  free(c);
  return (2 * s.m * s.n * s.k) / (best * 1e6);
}

export interface SgemmBenchOptions {
  /** Thread counts to measure on the wasm backend (other backends: their own count). Default [1, 2]. */
  threadCounts?: number[];
  /** Timed runs per shape (best of). Default 5. */
  reps?: number;
  /** Minimum milliseconds of timed runs per shape. Default 300. */
  minMs?: number;
  shapes?: SgemmShape[];
  log?: (line: string) => void;
}

export interface SgemmBenchResult {
  backend: string;
  threads: number[];
  reps: number;
  /** One row per shape: GFLOP/s per entry of `threads`. */
  rows: Array<{ shape: string; m: number; n: number; k: number; gflops: number[] }>;
}

/** Measure every shape on each thread count (wasm) and print a table. */
export function benchSgemm(options: SgemmBenchOptions = {}): SgemmBenchResult {
  const reps = options.reps ?? 5;
  const shapes = options.shapes ?? SGEMM_SHAPES;
  const log = options.log ?? ((l: string) => console.log(l));
  const backend = getBackend();
  const counts = backend.name === 'wasm' ? options.threadCounts ?? [1, 2] : [backend.threads];
  const rows = shapes.map((s) => ({ shape: s.name, m: s.m, n: s.n, k: s.k, gflops: [] as number[] }));
  const before = backend.name === 'wasm' ? getPool().threads : 0;
  try {
    for (const t of counts) {
      if (backend.name === 'wasm') setThreads(t);
      shapes.forEach((s, i) => rows[i]!.gflops.push(measureSgemm(s, reps, options.minMs ?? 300)));
    }
  } finally {
    if (backend.name === 'wasm') setThreads(before);
  }
  log(`sgemm on ${backend.name}, GFLOP/s, best of >= ${reps} runs (shared machine)`);
  log(`${'shape'.padEnd(32)}${counts.map((t) => `${t} thread${t > 1 ? 's' : ''}`.padStart(12)).join('')}`);
  for (const r of rows) log(`${r.shape.padEnd(32)}${r.gflops.map((g) => g.toFixed(1).padStart(12)).join('')}`);
  return { backend: backend.name, threads: counts, reps, rows };
}

// run directly: node dist/src/bench/sgemm.js [threads...]
if (process.argv[1] && pathToFileURL(resolve(process.argv[1])).href === import.meta.url) {
  const counts = process.argv.slice(2).map(Number).filter((x) => x > 0);
  benchSgemm({ threadCounts: counts.length ? counts : [1, 2] });
}
