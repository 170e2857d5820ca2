// TEMPORARY plain-JS sgemm so the layers above can be written and tested; replaced by the
// AssemblyScript SIMD kernels on the worker pool.
import { leadingDims, type Backend, type GemmArgs } from '../backend.js';

function sgemmJs(g: GemmArgs): void {
  const { lda, ldb, ldc } = leadingDims(g);
  const alpha = g.alpha ?? 1;
  const beta = g.beta ?? 0;
  const batch = g.batch ?? 1;
  const row = new Float64Array(g.n);
  for (let bi = 0; bi < batch; bi++) {
    const oa = bi * (g.strideA ?? 0);
    const ob = bi * (g.strideB ?? 0);
    const oc = bi * (g.strideC ?? 0);
    for (let i = 0; i < g.m; i++) {
      row.fill(0);
      for (let p = 0; p < g.k; p++) {
        const av = g.transA ? g.a[oa + p * lda + i]! : g.a[oa + i * lda + p]!;
        if (av === 0) continue;
        if (g.transB) for (let j = 0; j < g.n; j++) row[j]! += av * g.b[ob + j * ldb + p]!;
        else for (let j = 0; j < g.n; j++) row[j]! += av * g.b[ob + p * ldb + j]!;
      }
      const c = g.c;
      for (let j = 0; j < g.n; j++) {
        const idx = oc + i * ldc + j;
        c[idx] = beta === 0 ? alpha * row[j]! : alpha * row[j]! + beta * c[idx]!;
      }
    }
  }
}

export function createWasmBackend(): Backend {
  return { name: 'wasm', threads: 1, sgemm: sgemmJs };
}
