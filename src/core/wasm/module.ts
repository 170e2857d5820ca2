// The compiled SIMD kernel module (assembly/ → kernels.wasm, built by scripts/build-wasm.mjs and
// committed). Compiled once per process; each thread instantiates it on the arena's shared memory.
import { canShareMemory, envVar, isNode, nodeBuiltin } from '../host.js';

/** The exports of kernels.wasm. Pointers are byte offsets in the arena memory; lo/hi a work range. */
export interface KernelExports {
  sgemmTiles(
    transA: number, transB: number, m: number, n: number, k: number, alpha: number,
    a: number, lda: number, strideA: number, b: number, ldb: number, strideB: number,
    beta: number, c: number, ldc: number, strideC: number,
    tileM: number, tileN: number, tilesM: number, tilesN: number, lo: number, hi: number, work: number,
  ): void;
  gemmBf16Tiles(
    m: number, n: number, k: number, x: number, w: number, y: number,
    tileM: number, tileN: number, tilesM: number, tilesN: number, lo: number, hi: number, work: number,
  ): void;
  gemmInt8Tiles(
    m: number, n: number, k: number, x: number, w: number, scales: number, y: number,
    tileM: number, tileN: number, tilesM: number, tilesN: number, lo: number, hi: number, work: number,
  ): void;
  add(a: number, b: number, out: number, lo: number, hi: number): void;
  axpy(alpha: number, x: number, y: number, lo: number, hi: number): void;
  scale(x: number, s: number, lo: number, hi: number): void;
  mul(a: number, b: number, out: number, lo: number, hi: number): void;
  relu(x: number, y: number, lo: number, hi: number): void;
  reluBackward(dy: number, y: number, dx: number, lo: number, hi: number): void;
  swiglu(gate: number, up: number, out: number, lo: number, hi: number): void;
  swigluBackward(dout: number, gate: number, up: number, dgate: number, dup: number, act: number, lo: number, hi: number): void;
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
    bc1: number, bc2: number, gs: number, clear: number, lo: number, hi: number,
  ): void;
  sgemmSmallM(
    transA: number, transB: number, m: number, n: number, k: number, alpha: number,
    a: number, lda: number, b: number, ldb: number, beta: number, c: number, ldc: number, work: number,
  ): void;
  toHeadMajor(src: number, dst: number, tokens: number, heads: number, rep: number, dim: number, lo: number, hi: number): void;
  toTokenMajor(src: number, dst: number, tokens: number, heads: number, rep: number, dim: number, lo: number, hi: number): void;
  mulBlocks(x: number, pattern: number, size: number, lo: number, hi: number): void;
  mulRows(x: number, w: number, y: number, cols: number, lo: number, hi: number): void;
  gainGrad(dy: number, x: number, dw: number, rows: number, cols: number, lo: number, hi: number): void;
  scaleRowsByDecay(
    src: number, srcStride: number, dst: number, heads: number, rows: number, cols: number,
    powers: number, powStride: number, mult: number, from: number, lo: number, hi: number,
  ): void;
  decayChunkRows(
    src: number, dst: number, heads: number, tokens: number, cols: number, chunk: number, powers: number, powStride: number,
    mult: number, fromEnd: number, lo: number, hi: number,
  ): void;
  decayBlocks(x: number, size: number, heads: number, powers: number, powStride: number, n: number, lo: number, hi: number): void;
  linearAttentionStep(
    q: number, k: number, v: number, o: number, state: number, heads: number, tokens: number, dk: number, dv: number,
    scale: number, powers: number, powStride: number, lo: number, hi: number,
  ): void;
  expInto(x: number, out: number, n: number): void;
  log64(x: number): number;
  WORK_FLOATS: WebAssembly.Global;
  MR: WebAssembly.Global;
  NR: WebAssembly.Global;
  SMALL_M: WebAssembly.Global;
}

// kernels.wasm sits beside this file when running from src/, and in src/core/wasm of the repository
// when running the tsc output (dist*/src/core/wasm/ → four levels up).
function candidates(file: string): URL[] {
  return [new URL(`./${file}`, import.meta.url), new URL(`../../../../src/core/wasm/${file}`, import.meta.url)];
}

// In a browser the files cannot be read synchronously: loadKernelFiles (supra/web's init) fetches them
// first and keeps them here.
const fetched = new Map<string, Uint8Array<ArrayBuffer>>();

function readKernelFile(file: string): Uint8Array<ArrayBuffer> | null {
  if (!isNode) return fetched.get(file) ?? null;
  const { existsSync, readFileSync } = nodeBuiltin('fs');
  const { fileURLToPath } = nodeBuiltin('url');
  const found = candidates(file).find((u) => existsSync(fileURLToPath(u)));
  return found ? new Uint8Array(readFileSync(fileURLToPath(found))) : null;
}

/** Browser: fetch kernels-fma.wasm and kernels.wasm (from beside this module, else src/core/wasm) before first use. */
export async function loadKernelFiles(): Promise<void> {
  for (const file of ['kernels-fma.wasm', 'kernels.wasm']) {
    if (fetched.has(file)) continue;
    for (const url of candidates(file)) {
      const r = await fetch(url).catch(() => null);
      if (r?.ok) {
        fetched.set(file, new Uint8Array(await r.arrayBuffer()));
        break;
      }
    }
  }
  if (!fetched.has('kernels.wasm')) {
    throw new Error(`supra: kernels.wasm not found (fetched ${candidates('kernels.wasm').map(String).join(', ')})`);
  }
}

/**
 * The module as built imports a shared memory. Where memory cannot be shared (a browser page that is
 * not cross-origin isolated) the same code runs on an unshared one: the import's limits flag loses
 * its shared bit (0x03 → 0x01), the only byte that differs. Atomics on unshared memory are valid wasm.
 */
export function unsharedMemoryImport(bytes: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  const out = bytes.slice();
  const u32 = (pos: number): [number, number] => {
    let result = 0;
    for (let shift = 0; ; shift += 7) {
      const b = out[pos++]!;
      result |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) return [result >>> 0, pos];
    }
  };
  let pos = 8; // magic + version
  while (pos < out.length) {
    const id = out[pos++]!;
    const [size, body] = u32(pos);
    if (id === 2) {
      let [count, p] = u32(body);
      for (; count > 0; count--) {
        let len: number;
        [len, p] = u32(p); // module name
        p += len;
        [len, p] = u32(p); // field name
        p += len;
        const kind = out[p++]!;
        if (kind === 2) {
          if (out[p] === 0x03) out[p] = 0x01;
          return out;
        }
        throw new Error('supra: kernels.wasm imports something other than its memory');
      }
    }
    pos = body + size;
  }
  throw new Error('supra: kernels.wasm has no memory import');
}

let compiled: WebAssembly.Module | undefined;
let compiledVariant: 'fma' | 'simd' = 'simd';

/**
 * kernels-fma.wasm (sgemm with relaxed SIMD's fused multiply-add, ~1.4× faster products) where the
 * engine runs it: Node 22+ by default; Node 20 once V8's --experimental-wasm-relaxed-simd is set, which
 * is done here (the flag only adds instructions; engine flags are process-wide, so worker threads see
 * it too). SUPRA_WASM_FMA=0 keeps the plain SIMD128 build.
 */
function fmaBytes(): Uint8Array<ArrayBuffer> | null {
  if (envVar('SUPRA_WASM_FMA') === '0') return null;
  const bytes = readKernelFile('kernels-fma.wasm');
  if (!bytes) return null;
  if (WebAssembly.validate(bytes)) return bytes;
  if (!isNode) return null; // a browser that does not validate it has no flag to turn on
  try {
    nodeBuiltin('v8').setFlagsFromString('--experimental-wasm-relaxed-simd');
  } catch {
    return null;
  }
  return WebAssembly.validate(bytes) ? bytes : null;
}

export function kernelModule(): WebAssembly.Module {
  if (!compiled) {
    const fma = fmaBytes();
    const bytes = fma ?? readKernelFile('kernels.wasm');
    if (!bytes) {
      throw new Error(
        isNode
          ? `supra: kernels.wasm not found (looked in ${candidates('kernels.wasm').map((u) => nodeBuiltin('url').fileURLToPath(u)).join(', ')}); ` +
              'run `node scripts/build-wasm.mjs`'
          : 'supra: the wasm kernels are not loaded yet (await init() from supra/web first)',
      );
    }
    compiled = new WebAssembly.Module(canShareMemory ? bytes : unsharedMemoryImport(bytes));
    compiledVariant = fma ? 'fma' : 'simd';
  }
  return compiled;
}

/** Which build of the kernels runs: 'fma' (relaxed-SIMD multiply-add in sgemm) or 'simd'. */
export function kernelVariant(): 'fma' | 'simd' {
  kernelModule();
  return compiledVariant;
}

export function instantiateKernels(module: WebAssembly.Module, memory: WebAssembly.Memory): KernelExports {
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  return instance.exports as unknown as KernelExports;
}
