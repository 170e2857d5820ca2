// sgemm throughput of the selected backend: square sizes and the teacher's shapes (a 256-wide,
// 704-FFN model on 2048-token batches), on 1 and 2 threads for wasm. Best of N repetitions, because
// the machine is shared: the best run is the one least disturbed by other work.
import { allocF32, free } from '../src/core/memory.js';
import { getBackend } from '../src/core/select.js';
import { getPool, setThreads } from '../src/core/wasm/runtime.js';
import type { GemmArgs } from '../src/core/backend.js';

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

/** Best GFLOP/s of `reps` timed runs (after one warm-up) of one shape. */
export function measureSgemm(s: SgemmShape, reps = 5): number {
  const a = allocF32(s.m * s.k);
  const b = allocF32(s.k * s.n);
  const c = allocF32(s.m * s.n);
  for (let i = 0; i < a.length; i++) a[i] = Math.sin(i) * 0.5;
  for (let i = 0; i < b.length; i++) b[i] = Math.cos(i) * 0.5;
  const args: GemmArgs = { transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, a, b, c };
  const backend = getBackend();
  backend.sgemm(args);
  let best = Infinity;
  // at least `reps` runs and at least ~0.3 s of them, whichever is more
  const start = performance.now();
  for (let r = 0; r < reps || (performance.now() - start < 300 && r < 200); r++) {
    const t = performance.now();
    backend.sgemm(args);
    best = Math.min(best, performance.now() - t);
  }
  free(a);
  free(b);
  free(c);
  return (2 * s.m * s.n * s.k) / (best * 1e6);
}

/** Measure every shape on each thread count (wasm) and print a table; returns the rows. */
export function benchSgemm(threadCounts = [1, 2], reps = 5): Array<{ shape: string; gflops: number[] }> {
  const backend = getBackend();
  const counts = backend.name === 'wasm' ? threadCounts : [backend.threads];
  const rows = SGEMM_SHAPES.map((s) => ({ shape: s.name, gflops: [] as number[] }));
  const before = backend.name === 'wasm' ? getPool().threads : 0;
  for (const t of counts) {
    if (backend.name === 'wasm') setThreads(t);
    SGEMM_SHAPES.forEach((s, i) => rows[i]!.gflops.push(measureSgemm(s, reps)));
  }
  if (backend.name === 'wasm') setThreads(before);
  console.log(`sgemm on ${backend.name}, GFLOP/s, best of >= ${reps} runs (shared machine)`);
  console.log(`${'shape'.padEnd(32)}${counts.map((t) => `${t} thread${t > 1 ? 's' : ''}`.padStart(12)).join('')}`);
  for (const r of rows) console.log(`${r.shape.padEnd(32)}${r.gflops.map((g) => g.toFixed(1).padStart(12)).join('')}`);
  return rows;
}

// run directly: node dist/bench/sgemm.js [threads...]
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const counts = process.argv.slice(2).map(Number).filter((x) => x > 0);
  benchSgemm(counts.length ? counts : [1, 2]);
}
