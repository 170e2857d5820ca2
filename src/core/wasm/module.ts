// The compiled SIMD kernel module (assembly/ → kernels.wasm, built by scripts/build-wasm.mjs and
// committed). Compiled once per process; each thread instantiates it on the arena's shared memory.
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The exports of kernels.wasm. Pointers are byte offsets in the arena memory; lo/hi a work range. */
export interface KernelExports {
  sgemmTiles(
    transA: number, transB: number, m: number, n: number, k: number, alpha: number,
    a: number, lda: number, strideA: number, b: number, ldb: number, strideB: number,
    beta: number, c: number, ldc: number, strideC: number,
    tileM: number, tileN: number, tilesM: number, tilesN: number, lo: number, hi: number, work: number,
  ): void;
  add(a: number, b: number, out: number, lo: number, hi: number): void;
  axpy(alpha: number, x: number, y: number, lo: number, hi: number): void;
  scale(x: number, s: number, lo: number, hi: number): void;
  mul(a: number, b: number, out: number, lo: number, hi: number): void;
  relu(x: number, y: number, lo: number, hi: number): void;
  reluBackward(dy: number, y: number, dx: number, lo: number, hi: number): void;
  swiglu(gate: number, up: number, out: number, lo: number, hi: number): void;
  swigluBackward(dout: number, gate: number, up: number, dgate: number, dup: number, lo: number, hi: number): void;
  addBias(y: number, bias: number, cols: number, lo: number, hi: number): void;
  sumRows(db: number, dy: number, rows: number, cols: number, lo: number, hi: number): void;
  rmsnorm(x: number, w: number, out: number, rstd: number, dim: number, eps: number, lo: number, hi: number): void;
  rmsnormBackwardDx(
    dout: number, x: number, w: number, rstd: number, dx: number, dim: number, accumulate: number, lo: number, hi: number,
  ): void;
  rmsnormBackwardDw(dout: number, x: number, rstd: number, dw: number, rows: number, dim: number, lo: number, hi: number): void;
  groupnorm(x: number, out: number, rstd: number, size: number, eps: number, lo: number, hi: number): void;
  groupnormBackward(dout: number, y: number, rstd: number, dx: number, size: number, lo: number, hi: number): void;
  rope(
    x: number, cos: number, sin: number, tokens: number, heads: number, dim: number, start: number, sign: number,
    lo: number, hi: number,
  ): void;
  softmax(x: number, cols: number, causal: number, tq: number, offset: number, lo: number, hi: number): void;
  softmaxBackward(dy: number, y: number, dx: number, cols: number, lo: number, hi: number): void;
  logSoftmax(x: number, out: number, cols: number, lo: number, hi: number): void;
  crossEntropy(
    logits: number, targets: number, vocab: number, dlogits: number, zLoss: number, inv: number, lo: number, hi: number,
  ): number;
  embedding(ids: number, table: number, out: number, dim: number, lo: number, hi: number): void;
  embeddingBackward(ids: number, dout: number, dtable: number, n: number, dim: number, lo: number, hi: number): void;
  sumSquares(x: number, lo: number, hi: number): number;
  anyNonFinite(x: number, lo: number, hi: number): number;
  adamw(
    p: number, g: number, m: number, v: number, lr: number, b1: number, b2: number, eps: number, wd: number,
    bc1: number, bc2: number, lo: number, hi: number,
  ): void;
  expInto(x: number, out: number, n: number): void;
  log64(x: number): number;
  WORK_FLOATS: WebAssembly.Global;
  MR: WebAssembly.Global;
  NR: WebAssembly.Global;
}

// kernels.wasm sits beside this file when running from src/, and in src/core/wasm of the repository
// when running the tsc output (dist*/src/core/wasm/ → four levels up).
const candidates = [new URL('./kernels.wasm', import.meta.url), new URL('../../../../src/core/wasm/kernels.wasm', import.meta.url)];

let compiled: WebAssembly.Module | undefined;

export function kernelModule(): WebAssembly.Module {
  if (!compiled) {
    const found = candidates.find((u) => existsSync(fileURLToPath(u)));
    if (!found) {
      throw new Error(
        `supra: kernels.wasm not found (looked in ${candidates.map((u) => fileURLToPath(u)).join(', ')}); ` +
          'run `node scripts/build-wasm.mjs`',
      );
    }
    compiled = new WebAssembly.Module(readFileSync(fileURLToPath(found)));
  }
  return compiled;
}

export function instantiateKernels(module: WebAssembly.Module, memory: WebAssembly.Memory): KernelExports {
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  return instance.exports as unknown as KernelExports;
}
