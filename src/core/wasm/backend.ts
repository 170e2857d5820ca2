// The wasm backend: sgemm from the AssemblyScript SIMD module (assembly/sgemm.ts), with C cut into
// tiles that the worker pool shares. Small products run on the calling thread only.
import { INT8_BLOCK, leadingDims, type Backend, type Bf16GemmArgs, type GemmArgs, type Int8GemmArgs } from '../backend.js';
import { MAX_CHUNKS } from './pool.js';
import { beginCall, endCall, getPool, kernels, ptr } from './runtime.js';

/**
 * Below this many flops a product runs on the calling thread: a sleeping worker takes tens of µs to
 * wake. Measured on 2 Zen 4 cores: 96³ (1.8 MFLOP) took 45 µs alone and 49 µs on two threads, 128³
 * (4.2 MFLOP) 106 µs alone and 71 µs on two.
 */
export const GEMM_PARALLEL_FLOPS = 4e6;
/**
 * The threshold for products of m ≤ SMALL_M rows. Measured on 2 shared cores, decoding configuration S:
 * splitting the 256×256 and 704×256 projections across threads made each slower (waking a worker costs
 * more than the 5–20 µs they take); splitting the 4096×256 lm_head paid.
 */
export const GEMV_PARALLEL_FLOPS = 2 ** 20;
const SMALL_M = 4;
/** Tiles per thread, so a core slowed by other work hands its share to the others. */
const TILES_PER_THREAD = 3;
const MR = 4;
const NR = 8;

function roundUp(x: number, m: number): number {
  return Math.ceil(x / m) * m;
}

function checkDim(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) throw new RangeError(`supra: sgemm ${name} must be a non-negative integer, got ${v}`);
}

/**
 * The operands of a product by a weight in a narrower type, each of the typed array the kernel reads: a wrong
 * one (float32 scales, from before int8's became bfloat16) would be read as other bits, not refused.
 */
function checkWeightOperands(fn: string, operands: Record<string, [ArrayBufferView, new (...a: never[]) => ArrayBufferView]>): void {
  for (const [name, [array, type]] of Object.entries(operands)) {
    if (!(array instanceof type)) throw new TypeError(`supra: ${fn}: ${name} must be a ${type.name}, got ${(array as object | null)?.constructor?.name ?? typeof array}`);
  }
}

/** Elements a strided batch of rows×cols matrices spans. */
function extent(batch: number, stride: number, rows: number, cols: number, ld: number): number {
  if (rows === 0 || cols === 0) return 0;
  return (batch - 1) * stride + (rows - 1) * ld + cols;
}

/**
 * Cut each m×n product into tilesM × tilesN tiles so that all threads get about `want` tiles in
 * total while packing stays low: every tile column repacks A, every tile row repacks B, so the cost
 * is tilesN·m + tilesM·n (times k).
 */
export function planTiles(m: number, n: number, want: number): { tileM: number; tileN: number; tilesM: number; tilesN: number } {
  let best = { tileM: m, tileN: n, tilesM: 1, tilesN: 1 };
  let bestCost = Infinity;
  for (let tm = 1; tm <= want; tm++) {
    const tn = Math.ceil(want / tm);
    const tileM = roundUp(Math.ceil(m / tm), MR);
    const tileN = roundUp(Math.ceil(n / tn), NR);
    const tilesM = Math.ceil(m / tileM);
    const tilesN = Math.ceil(n / tileN);
    const shortfall = Math.max(0, want - tilesM * tilesN); // fewer tiles than threads want: idle cores
    const cost = tilesN * m + tilesM * n + shortfall * (m + n) * 4;
    if (cost < bestCost) {
      bestCost = cost;
      best = { tileM, tileN, tilesM, tilesN };
    }
  }
  return best;
}

export function sgemmWasm(g: GemmArgs): void {
  const { transA, transB, m, n, k } = g;
  checkDim('m', m);
  checkDim('n', n);
  checkDim('k', k);
  const { lda, ldb, ldc } = leadingDims(g);
  const alpha = g.alpha ?? 1;
  const beta = g.beta ?? 0;
  const batch = g.batch ?? 1;
  const strideA = g.strideA ?? 0;
  const strideB = g.strideB ?? 0;
  const strideC = g.strideC ?? 0;
  checkDim('batch', batch);
  checkDim('strideA', strideA);
  checkDim('strideB', strideB);
  checkDim('strideC', strideC);
  if (lda < (transA ? m : k) || ldb < (transB ? k : n) || ldc < n) {
    throw new RangeError(`supra: sgemm leading dimensions too small (lda ${lda}, ldb ${ldb}, ldc ${ldc} for m ${m}, n ${n}, k ${k})`);
  }
  if (m === 0 || n === 0 || batch === 0) return;
  beginCall();
  const pa = ptr(g.a, extent(batch, strideA, transA ? k : m, transA ? m : k, lda), 'sgemm A', 'in');
  const pb = ptr(g.b, extent(batch, strideB, transB ? n : k, transB ? k : n, ldb), 'sgemm B', 'in');
  const pc = ptr(g.c, extent(batch, strideC, m, n, ldc), 'sgemm C', beta === 0 ? 'out' : 'inout');
  const pool = getPool();
  const flops = 2 * m * n * k * batch;
  const ta = transA ? 1 : 0;
  const tb = transB ? 1 : 0;
  // Products of m ≤ 4 rows (decoding) run unpacked (sgemmSmallM), bound by streaming B from cache or
  // memory: a second core brings its own bandwidth, which pays from a lower size than packed products.
  const small = m <= SMALL_M && (!transA || m * k <= pool.workFloats); // as useSmallM in sgemm.ts
  if (pool.threads === 1 || flops < (small ? GEMV_PARALLEL_FLOPS : GEMM_PARALLEL_FLOPS)) {
    kernels().sgemmTiles(ta, tb, m, n, k, alpha, pa, lda, strideA, pb, ldb, strideB, beta, pc, ldc, strideC,
      m, n, 1, 1, 0, batch, pool.workPtr(0));
  } else {
    const want = pool.threads * TILES_PER_THREAD;
    const plan = batch >= want ? { tileM: m, tileN: n, tilesM: 1, tilesN: 1 } : planTiles(m, n, Math.ceil(want / batch));
    const tiles = batch * plan.tilesM * plan.tilesN;
    // a tile is a unit; group units into at most MAX_CHUNKS chunks
    const grain = Math.ceil(tiles / Math.min(tiles, MAX_CHUNKS));
    pool.run('sgemmTiles', [ta, tb, m, n, k, alpha, pa, lda, strideA, pb, ldb, strideB, beta, pc, ldc, strideC,
      plan.tileM, plan.tileN, plan.tilesM, plan.tilesN], tiles, grain);
  }
  endCall();
}

/**
 * A product by a weight in a narrower type (gemmBf16Tiles, gemmInt8Tiles: m, n, k, the operands' pointers,
 * then the tiling) on the calling thread when small, else tiled over the pool as sgemmWasm.
 */
function runWeightTiles(kernel: 'gemmBf16Tiles' | 'gemmInt8Tiles', m: number, n: number, k: number, operands: number[]): void {
  const pool = getPool();
  const small = m <= SMALL_M;
  if (pool.threads === 1 || 2 * m * n * k < (small ? GEMV_PARALLEL_FLOPS : GEMM_PARALLEL_FLOPS)) {
    (kernels()[kernel] as (...a: number[]) => void)(m, n, k, ...operands, m, n, 1, 1, 0, 1, pool.workPtr(0));
  } else {
    const plan = planTiles(m, n, pool.threads * TILES_PER_THREAD);
    const tiles = plan.tilesM * plan.tilesN;
    pool.run(kernel, [m, n, k, ...operands, plan.tileM, plan.tileN, plan.tilesM, plan.tilesN], tiles, Math.ceil(tiles / Math.min(tiles, MAX_CHUNKS)));
  }
}

/** y[m, n] = x[m, k]·Wᵀ with W stored [n, k] as BF16 (see Bf16GemmArgs), tiled over the pool as sgemmWasm. */
export function gemmBf16Wasm(g: Bf16GemmArgs): void {
  const { m, n, k } = g;
  checkDim('m', m);
  checkDim('n', n);
  checkDim('k', k);
  checkWeightOperands('gemmBf16', { x: [g.x, Float32Array], w: [g.w, Uint16Array], y: [g.y, Float32Array] });
  if (m === 0 || n === 0) return;
  beginCall();
  const px = ptr(g.x, m * k, 'gemmBf16: x', 'in');
  const pw = ptr(g.w, n * k, 'gemmBf16: w', 'in');
  const py = ptr(g.y, m * n, 'gemmBf16: y', 'out');
  runWeightTiles('gemmBf16Tiles', m, n, k, [px, pw, py]);
  endCall();
}

/** y[m, n] = x[m, k]·Wᵀ with W an int8 weight stored [n, k] (see Int8GemmArgs), tiled over the pool as gemmBf16Wasm. */
export function gemmInt8Wasm(g: Int8GemmArgs): void {
  const { m, n, k } = g;
  checkDim('m', m);
  checkDim('n', n);
  checkDim('k', k);
  checkWeightOperands('gemmInt8', { x: [g.x, Float32Array], w: [g.w, Int8Array], scales: [g.scales, Uint16Array], y: [g.y, Float32Array] });
  if (m === 0 || n === 0) return;
  beginCall();
  const px = ptr(g.x, m * k, 'gemmInt8: x', 'in');
  const pw = ptr(g.w, n * k, 'gemmInt8: w', 'in');
  const ps = ptr(g.scales, n * Math.ceil(k / INT8_BLOCK), 'gemmInt8: scales', 'in');
  const py = ptr(g.y, m * n, 'gemmInt8: y', 'out');
  runWeightTiles('gemmInt8Tiles', m, n, k, [px, pw, ps, py]);
  endCall();
}

export function createWasmBackend(): Backend {
  return {
    name: 'wasm',
    get threads() {
      return getPool().threads;
    },
    sgemm: sgemmWasm,
    gemmBf16: gemmBf16Wasm,
    gemmInt8: gemmInt8Wasm,
    heapWeights: false,
    // every product and reduction splits over outputs, each summed in the same order on any thread
    fingerprint: () => ({ backend: 'wasm' }),
  };
}
