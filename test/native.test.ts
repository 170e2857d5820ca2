// The OpenBLAS backend against a float64 reference. Runs when the add-on loaded; skipped with the reason
// otherwise, unless SUPRA_REQUIRE_NATIVE=1 makes a missing add-on a failure. The fallback tests (missing
// add-on, build without OpenBLAS) always run.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GemmArgs } from '../src/core/backend.js';
import { allocF32, free, inArena } from '../src/core/memory.js';
import { coretypeFromCpuFlags, createNativeBackend, packageRoot, type NativeBackend, type NativeInfo, type VectorKernel } from '../src/core/native/backend.js';
import * as ops from '../src/core/ops.js';
import { getBackend, setBackend } from '../src/core/select.js';
import { parseConfig } from '../src/io/config.js';
import { randomModel } from '../src/bench/model.js';
import { supraConfig, type LinearizeOptions } from '../src/models/linearize.js';
import { signedRng as rng } from './helpers/random.js';

const native = createNativeBackend();
const required = process.env.SUPRA_REQUIRE_NATIVE === '1';
const skip = native.ok || required ? false : `native backend not loaded: ${native.reason}`;

function backend(): NativeBackend {
  if (!native.ok) assert.fail(`SUPRA_REQUIRE_NATIVE=1 but the native backend did not load: ${native.reason}`);
  return native.backend;
}


type Alloc = (n: number) => Float32Array;
const arena: Alloc = (n) => allocF32(n);
const plain: Alloc = (n) => new Float32Array(n);
// a view that starts 3 floats into an ordinary buffer, to catch a lost byteOffset
const offsetPlain: Alloc = (n) => new Float32Array(new ArrayBuffer(4 * (n + 3)), 12, n);

function filled(alloc: Alloc, n: number, next: () => number): Float32Array {
  const x = alloc(n);
  for (let i = 0; i < n; i++) x[i] = next();
  return x;
}

// float64 reference with the GemmArgs semantics: batches in order, packed leading dims by default.
function referenceGemm(g: GemmArgs): Float64Array {
  const lda = g.lda ?? (g.transA ? g.m : g.k);
  const ldb = g.ldb ?? (g.transB ? g.k : g.n);
  const ldc = g.ldc ?? g.n;
  const alpha = g.alpha ?? 1;
  const beta = g.beta ?? 0;
  const c = Float64Array.from(g.c);
  for (let bi = 0; bi < (g.batch ?? 1); bi++) {
    const oa = bi * (g.strideA ?? 0);
    const ob = bi * (g.strideB ?? 0);
    const oc = bi * (g.strideC ?? 0);
    for (let i = 0; i < g.m; i++) {
      for (let j = 0; j < g.n; j++) {
        let sum = 0;
        for (let p = 0; p < g.k; p++) {
          const av = g.transA ? g.a[oa + p * lda + i]! : g.a[oa + i * lda + p]!;
          const bv = g.transB ? g.b[ob + j * ldb + p]! : g.b[ob + p * ldb + j]!;
          sum += av * bv;
        }
        const idx = oc + i * ldc + j;
        c[idx] = beta === 0 ? alpha * sum : alpha * sum + beta * c[idx]!;
      }
    }
  }
  return c;
}

function assertClose(got: Float32Array, want: Float64Array, what: string): void {
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) {
    if (Number.isNaN(want[i]!) && Number.isNaN(got[i]!)) continue; // padding C was filled with
    const tol = 1e-5 * (8 + Math.abs(want[i]!));
    if (!(Math.abs(got[i]! - want[i]!) <= tol)) {
      assert.fail(`${what}: element ${i} is ${got[i]}, want ${want[i]}`);
    }
  }
}

test('native backend loads and reports OpenBLAS', { skip }, () => {
  const be = backend();
  const info = be.info();
  assert.equal(be.name, 'native');
  assert.match(info.config, /OpenBLAS/);
  assert.ok(info.corename.length > 0);
  assert.ok(be.threads >= 1 && be.threads === info.threads);
  assert.ok(['avx512', 'avx2', 'none'].includes(info.decodeKernel), info.decodeKernel);
});

test('adviseHugePages asks for the whole 2 MiB pages inside a large buffer only, and its values stay', { skip }, () => {
  const advise = backend().adviseHugePages!;
  const page = 2 << 20;
  assert.equal(advise(new Float32Array(1000)), 0, 'smaller than a huge page');
  for (const big of [new Uint16Array(5 << 20), new Float32Array((3 << 20) + 5), new Int8Array(9 << 20)]) {
    const advised = advise(big);
    assert.ok(advised % page === 0 && advised <= big.byteLength && advised >= big.byteLength - 2 * page, `${advised} of ${big.byteLength}`);
    // where Linux has transparent huge pages at all, it takes the advice
    let thp = '';
    try {
      thp = readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8');
    } catch {}
    if (/\[(always|madvise)\]/.test(thp)) assert.ok(advised > 0, 'advised nothing');
    big.fill(3, 0, 100);
    big[big.length - 1] = 7;
    assert.deepEqual([big[0], big[99], big[100], big[big.length >> 1], big[big.length - 1]], [3, 3, 0, 0, 7]);
  }
  assert.throws(() => advise({} as Float32Array), /adviseHugePages: view must be a typed array/);
});

test('sgemm matches float64 for every transpose, alpha/beta, leading dim and array kind', { skip }, () => {
  const be = backend();
  const next = rng(1);
  // [m, n, k]: general, single row and single column (the sgemv paths), a dot product, an attention-like block
  const shapes: Array<[number, number, number]> = [
    [5, 7, 9],
    [1, 13, 17],
    [11, 1, 6],
    [1, 1, 5],
    [33, 16, 40],
    // decoding products (m ≤ 4; with a weight stored n×k they run on the add-on's AVX kernels): k with
    // every tail (32-, 16-, 8-wide steps, then scalar)
    [2, 19, 70],
    [3, 5, 33],
    [4, 9, 300],
  ];
  const allocs: Array<[string, Alloc]> = [
    ['arena', arena],
    ['plain', plain],
    ['offset', offsetPlain],
  ];
  let calls = 0;
  for (const [m, n, k] of shapes) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        for (const [alpha, beta] of [
          [1, 0],
          [0.5, -2],
          [1, 1],
        ] as const) {
          for (const pad of [0, 3]) {
            for (const [kind, alloc] of allocs) {
              const rowsA = transA ? k : m;
              const colsA = transA ? m : k;
              const rowsB = transB ? n : k;
              const colsB = transB ? k : n;
              const lda = colsA + pad;
              const ldb = colsB + pad;
              const ldc = n + pad;
              const a = filled(alloc, rowsA * lda, next);
              const b = filled(alloc === arena ? plain : alloc, rowsB * ldb, next); // mix arena and plain
              const c = filled(alloc, m * ldc, next);
              // beta = 0 must overwrite C, even NaN
              if (beta === 0) c.fill(NaN);
              const g: GemmArgs = { transA, transB, m, n, k, alpha, beta, a, b, c, lda, ldb, ldc };
              if (pad === 0) {
                delete g.lda;
                delete g.ldb;
                delete g.ldc;
              }
              const want = referenceGemm(g);
              be.sgemm(g);
              assertClose(c, want, `${m}x${n}x${k} transA=${transA} transB=${transB} alpha=${alpha} beta=${beta} pad=${pad} ${kind}`);
              calls++;
              if (alloc === arena) {
                assert.ok(inArena(a));
                free(a);
                free(c);
              }
            }
          }
        }
      }
    }
  }
  assert.equal(calls, shapes.length * 4 * 3 * 2 * 3);
});

test('batched sgemm follows strideA/B/C, including broadcast and accumulate', { skip }, () => {
  const be = backend();
  const next = rng(2);
  const [m, n, k, batch] = [6, 5, 4, 3];
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      // padded strides: entries do not touch; A in the arena, B plain
      const strideA = m * k + 7;
      const strideB = k * n + 2;
      const strideC = m * n + 5;
      const a = filled(arena, batch * strideA, next);
      const b = filled(plain, batch * strideB, next);
      const c = filled(arena, batch * strideC, next);
      const g: GemmArgs = { transA, transB, m, n, k, a, b, c, alpha: 1.5, beta: 0.25, batch, strideA, strideB, strideC };
      const want = referenceGemm(g);
      be.sgemm(g);
      assertClose(c, want, `batch transA=${transA} transB=${transB}`);
      free(a);
      free(c);
    }
  }
  // B shared by every entry (strideB 0), and C accumulating every entry (strideC 0, beta 1): dW += sum_b X_b^T dY_b
  const a = filled(plain, batch * m * k, next);
  const b = filled(plain, k * n, next);
  const c = filled(plain, m * n, next);
  const g: GemmArgs = { transA: false, transB: false, m, n, k, a, b, c, beta: 1, batch, strideA: m * k, strideB: 0, strideC: 0 };
  const want = referenceGemm(g);
  be.sgemm(g);
  assertClose(c, want, 'accumulate over batch');
});

/** The widths of a kernel set written for both (info()'s name of the widest in use), widest first: an AVX-512 CPU runs the AVX2 copy too. */
function widthsFrom(widest: string): VectorKernel[] {
  assert.ok(['avx512', 'avx2', 'none'].includes(widest), widest);
  return widest === 'avx512' ? ['avx512', 'avx2'] : widest === 'avx2' ? ['avx2'] : [];
}

test('batched small products (the attention\'s per-head blocks) on the add-on\'s kernel match float64 and OpenBLAS, with the same bits on AVX-512 and AVX2', { skip }, () => {
  const be = backend();
  const kernel = be.info().smallKernel;
  const widths = widthsFrom(kernel);
  const next = rng(5);
  // [m, n, k, batch]: the training shape; every row tail (6-, 8- and 12-row tiles) and column tail (masked
  // vectors of 16 or 8, one to four per band); several column bands; k = 1; the largest the kernel takes (128)
  const shapes: Array<[number, number, number, number]> = [
    [64, 64, 64, 32],
    [5, 7, 9, 3],
    [17, 33, 65, 4],
    [13, 50, 3, 5],
    [100, 70, 128, 2],
    [6, 16, 1, 3],
    [128, 128, 128, 2],
  ];
  for (const [m, n, k, batch] of shapes) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        for (const [alpha, beta] of [[1, 0], [1, 1], [0.5, -2]] as const) {
          const pad = (m + n + k) % 3; // some padded leading dimensions
          const lda = (transA ? m : k) + pad;
          const ldb = (transB ? k : n) + pad;
          const ldc = n + pad;
          const strideA = (transA ? k : m) * lda + 1;
          const strideB = (transB ? n : k) * ldb + 2;
          const strideC = m * ldc + 3;
          const a = filled(arena, batch * strideA, next);
          const b = filled(plain, batch * strideB, next);
          const c0 = filled(arena, batch * strideC, next);
          const c1 = allocF32(c0.length);
          c1.set(c0);
          const g = { transA, transB, m, n, k, alpha, beta, a, b, lda, ldb, ldc, batch, strideA, strideB, strideC };
          const what = `${m}x${n}x${k} batch ${batch} transA=${transA} transB=${transB} alpha=${alpha} beta=${beta}`;
          const want = referenceGemm({ ...g, c: c0 });
          const start = Float32Array.from(c0);
          let first: Float32Array | undefined;
          for (const width of widths) {
            c0.set(start);
            assert.equal(be.useSmallKernel(true, width), true, width);
            be.sgemm({ ...g, c: c0 });
            if (first) assertSameBits(c0, first, `the ${width} small kernel against the ${widths[0]} one, ${what}`);
            else assertClose(c0, want, `small kernel (${width}) ${what}`);
            first ??= Float32Array.from(c0);
          }
          be.useSmallKernel(false);
          be.sgemm({ ...g, c: c1 });
          assertClose(c1, Float64Array.from(first ?? c0), `OpenBLAS against the small kernel ${what}`);
          free(a);
          free(c0);
          free(c1);
        }
      }
    }
  }
  assert.equal(be.info().smallKernel, kernel === 'none' ? 'none' : 'off');
  assert.throws(() => be.useSmallKernel(true, 'sse' as never), /useSmallKernel: kernel must be "avx512" or "avx2", got "sse"/);
  assert.equal(be.useSmallKernel(true), kernel !== 'none');
  assert.equal(be.info().smallKernel, kernel);
});

// Same bits, or NaN in both (the payload may differ).
function assertSameBits(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) {
    if (Object.is(got[i], want[i]) || (Number.isNaN(got[i]!) && Number.isNaN(want[i]!))) continue;
    assert.fail(`${what}: element ${i} is ${got[i]}, the wasm kernel wrote ${want[i]}`);
  }
}

/** Runs fn on the wasm kernels, then on the native backend's own, and returns both results. */
function onBothKernels<T>(fn: () => T): { wasm: T; native: T } {
  const before = getBackend().name;
  try {
    setBackend('wasm');
    const wasm = fn();
    setBackend('native');
    assert.ok(getBackend().kernels, 'the native backend has its elementwise kernels');
    return { wasm, native: fn() };
  } finally {
    setBackend(before);
  }
}

/** The elementwise kernels' widths this CPU has, widest first. */
function elementwiseWidths(be: NativeBackend): VectorKernel[] {
  return widthsFrom(be.info().elementwiseKernels);
}

/** The backend when the CPU runs the add-on's elementwise kernels, else null with the test skipped (the wasm ones run). */
function elementwiseBackend(t: TestContext, without: string): NativeBackend | null {
  const be = backend();
  if (elementwiseWidths(be).length > 0) return be;
  t.skip(`no AVX-512 or AVX2 on this CPU: ${without}`);
  return null;
}

/** Values from a seeded generator, n at a time. */
function valuesFrom(seed: number): (n: number) => Float32Array {
  const next = rng(seed);
  return (n) => Float32Array.from({ length: n }, () => next());
}

/** Runs check on every elementwise width of the CPU, then puts the widest back. */
function onEveryWidth(be: NativeBackend, check: (width: VectorKernel) => void): void {
  const widths = elementwiseWidths(be);
  try {
    for (const width of widths) {
      assert.equal(be.useElementwiseKernels(true, width), true, width);
      assert.equal(be.info().elementwiseKernels, width);
      check(width);
    }
  } finally {
    be.useElementwiseKernels(true);
  }
  assert.equal(be.info().elementwiseKernels, widths[0]);
}

test('a batch of small products with its decay before and its mask after (ops.matmul decayC, maskC) gives the bits of the separate passes, on 1 and 2 threads; bad fusions are refused', { skip }, () => {
  const be = backend();
  const next = rng(17);
  const heads = 3, B = 2, batch = B * heads, L = 64, D = 32, T = 2 * L;
  const powers = new Float64Array(heads * (L + 2));
  for (let h = 0; h < heads; h++) for (let e = 0; e <= L + 1; e++) powers[h * (L + 2) + e] = Math.exp(-(0.3 + h) * e / 16);
  const q = filled(arena, batch * T * D, next), k = filled(arena, batch * T * D, next);
  const pattern = filled(arena, heads * L * L, next);
  const state = filled(arena, batch * D * D, next), from = filled(arena, batch * D * D, next);
  const scores = (fused: boolean) => {
    const c = allocF32(batch * L * L);
    const g: GemmArgs = { transA: false, transB: true, m: L, n: L, k: D, a: q.subarray(L * D), lda: D, strideA: T * D, b: k, ldb: D, strideB: T * D, c, ldc: L, strideC: L * L, batch };
    if (fused) ops.matmul({ ...g, maskC: { pattern, period: heads } });
    else {
      be.sgemm(g);
      ops.mulBlocks(c, pattern, B, heads * L * L);
    }
    return c;
  };
  const states = (fused: boolean, src: Float32Array | undefined) => {
    const c = allocF32(batch * D * D);
    c.set(state);
    const g: GemmArgs = { transA: true, transB: false, m: D, n: D, k: L, a: k, lda: D, strideA: T * D, b: q, ldb: D, strideB: T * D, c, ldc: D, strideC: D * D, batch, beta: 1 };
    if (fused) ops.matmul({ ...g, decayC: { powers, powStride: L + 2, heads, exponent: L, ...(src ? { from: src } : {}) } });
    else {
      if (src) ops.scaleRowsByDecay(src, D * D, c, batch, heads, 1, D * D, powers, L + 2, 1, L);
      else ops.decayBlocks(c, batch, heads, D * D, powers, L + 2, L);
      be.sgemm(g);
    }
    return c;
  };
  const threads = be.threads;
  try {
    for (const n of [1, 2]) {
      be.setThreads(n);
      assert.deepEqual(Array.from(scores(true)), Array.from(scores(false)), `masked scores, ${n} threads`);
      assert.deepEqual(Array.from(states(true, undefined)), Array.from(states(false, undefined)), `decayed state, ${n} threads`);
      assert.deepEqual(Array.from(states(true, from)), Array.from(states(false, from)), `state decayed from another, ${n} threads`);
    }
  } finally {
    be.setThreads(threads);
  }
  // the same rule on wasm, which makes the passes itself
  const c = allocF32(batch * L * L);
  const base: GemmArgs = { transA: false, transB: true, m: L, n: L, k: D, a: q, lda: D, strideA: T * D, b: k, ldb: D, strideB: T * D, c, ldc: L, strideC: L * L, batch };
  assert.throws(() => ops.matmul({ ...base, beta: 1, maskC: { pattern, period: heads } }), /maskC multiplies the product alone \(beta 0\)/);
  assert.throws(() => ops.matmul({ ...base, maskC: { pattern, period: 4 } }), /whole periods/);
  assert.throws(() => ops.matmul({ ...base, decayC: { powers, powStride: L + 2, heads, exponent: 1 } }), /beta must be 1/);
  assert.throws(() => ops.matmul({ ...base, ldc: L + 1, strideC: L * (L + 1), c: allocF32(batch * L * (L + 1)), maskC: { pattern, period: heads } }), /whole blocks of m·n/);
  // the add-on checks its own arguments too (a caller past ops.matmul's checks)
  const fused = (g: Partial<GemmArgs>) => be.sgemmFused!({ ...base, ...g });
  assert.throws(() => fused({ decayC: { powers, powStride: L + 2, heads, exponent: 1 } }), /a decay before the product needs beta 1/);
  assert.throws(() => fused({ beta: 1, decayC: { powers: powers.subarray(0, L), powStride: L + 2, heads, exponent: 1 } }), /powers holds 64 values, too few/);
  const room = allocF32(batch * L * L + 8);
  assert.throws(() => fused({ c: room.subarray(0, batch * L * L), beta: 1, decayC: { powers, powStride: L + 2, heads, exponent: 1, from: room.subarray(8) } }), /from overlaps C in memory/);
  assert.throws(() => fused({ maskC: { pattern: pattern.subarray(1), period: heads } }), /pattern holds \d+ values, 3 blocks need/);
  // a bound past 2^63 in int64 (found by a review: it wrapped and let the read through), powers in C's own bytes
  const big63 = { powers: new Float64Array(1), powStride: 2 ** 53, heads: 1024, exponent: 2 ** 53 };
  assert.throws(() => be.sgemmFused!({ transA: false, transB: false, m: 5, n: 1, k: 1, a: allocF32(5 * 1024), b: allocF32(1024), c: allocF32(5 * 1024), lda: 1, strideA: 5, ldb: 1, strideB: 1, ldc: 1, strideC: 5, batch: 1024, beta: 1, decayC: big63 }), /powers holds 1 values, too few/);
  assert.throws(() => fused({ beta: 1, decayC: { powers: new Float64Array(c.buffer, c.byteOffset + 256, 64), powStride: 1, heads, exponent: 1 } }), /powers overlaps C in memory/);
  assert.throws(() => fused({ maskC: { pattern, period: 4 } }), /whole periods of the pattern/);
  // not a batch of small products: nothing done, the caller makes the passes
  const big = allocF32(2 * 200 * 200);
  assert.equal(be.sgemmFused!({ transA: false, transB: false, m: 200, n: 200, k: 1, a: allocF32(400), b: allocF32(400), c: big, ldc: 200, strideC: 200 * 200, batch: 2, maskC: { pattern: allocF32(200 * 200), period: 1 } }), false);
});

test('the add-on\'s cross-entropy and swiglu kernels write exactly the wasm kernels\' bits, on AVX-512 and on AVX2', { skip }, (t) => {
  const be = backend();
  const widths = elementwiseWidths(be);
  if (widths.length === 0) {
    t.skip('no AVX-512 or AVX2 on this CPU: the wasm kernels run');
    return;
  }
  const next = rng(7);
  // special values: the exp clamps (±100), infinities (a masked logit), NaN, both zeros
  const special = [100, -100, 88.5, -87.4, -Infinity, Infinity, NaN, 0, -0];
  const values = (n: number, spread: number, specials: boolean): Float32Array => {
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = next() * spread;
    if (specials) for (let i = 0; i < n; i += 97) x[i] = special[(i / 97) % special.length]!;
    return x;
  };
  onEveryWidth(be, (width) => {
    // [rows, vocab]: whole 16- and 8-lane steps; 4-lane steps after them (1000: 16 lanes; 1004: both); a scalar
    // tail; many chunks (grain 63)
    for (const [rows, vocab] of [[8, 4096], [37, 1000], [6, 1004], [5, 4099], [300, 131], [3, 2]] as const) {
      for (const zLoss of [0, 1e-4]) {
        for (const withGrad of [false, true]) {
          const logits = values(rows * vocab, 12, false);
          const targets = new Int32Array(rows).map((_, r) => (r % 7 === 3 ? -100 : (r * 131) % vocab));
          if (rows > 4) {
            logits[vocab + 1] = NaN; // a row whose loss is NaN
            logits.fill(0, 2 * vocab, 3 * vocab); // a row of zeros: logsumexp = log(vocab)
            logits[2 * vocab + 1] = -0;
            logits[4 * vocab] = -Infinity; // a masked logit
          }
          const run = () => {
            const dlogits = withGrad ? new Float32Array(rows * vocab).fill(7) : null;
            const { loss, count } = ops.crossEntropy(logits, targets, rows, vocab, dlogits, zLoss);
            return { loss, count, dlogits };
          };
          const { wasm, native } = onBothKernels(run);
          const what = `${width}: crossEntropy ${rows}x${vocab} zLoss ${zLoss}${withGrad ? ' with gradient' : ''}`;
          assert.ok(Object.is(native.loss, wasm.loss) || (Number.isNaN(native.loss) && Number.isNaN(wasm.loss)), `${what}: loss ${native.loss} against ${wasm.loss}`);
          assert.equal(native.count, wasm.count);
          if (withGrad) assertSameBits(native.dlogits!, wasm.dlogits!, what);
        }
      }
    }
    // n: shorter than a vector; a vector, a 4-lane step and a tail; several chunks of 8192 and a tail
    for (const n of [1, 3, 23, 8192 * 3 + 5, 100_003]) {
      const gate = values(n, 9, true);
      const up = values(n, 3, true);
      const dout = values(n, 2, false);
      const { wasm, native } = onBothKernels(() => {
        const out = new Float32Array(n);
        ops.swiglu(gate, up, out, n);
        const grads = [new Float32Array(n), new Float32Array(n), new Float32Array(n), new Float32Array(n), new Float32Array(n)];
        ops.swigluBackward(dout, gate, up, grads[0]!, grads[1]!, n, grads[2]!);
        ops.swigluBackward(dout, gate, up, grads[3]!, grads[4]!, n); // without act
        return [out, ...grads];
      });
      ['swiglu', 'dgate', 'dup', 'act', 'dgate (no act)', 'dup (no act)'].forEach((name, i) => {
        assertSameBits(native[i]!, wasm[i]!, `${width}: ${name}, n = ${n}`);
      });
    }
  });
  // bad arguments are refused by the add-on itself, before it touches memory
  const k = be.kernels!;
  assert.throws(() => k.swiglu(new Float32Array(3), new Float32Array(4), new Float32Array(4), 4, 8192), /gate has 3 floats, the call needs 4/);
  assert.throws(() => k.crossEntropy(new Float32Array(4), new Int32Array([0, 9]), 2, null, 0, 0.5, 2, 1), /target 9 outside vocab 2/);
  assert.equal(be.useElementwiseKernels(false), false);
  assert.equal(be.kernels, undefined);
  assert.equal(be.info().elementwiseKernels, 'off');
  assert.throws(() => k.swiglu(new Float32Array(4), new Float32Array(4), new Float32Array(4), 4, 8192), /turned off/);
  assert.throws(() => be.useElementwiseKernels(true, 'sse' as never), /kernel must be "avx512" or "avx2", got "sse"/);
  if (!widths.includes('avx512')) {
    // an AVX2-only CPU: asking for AVX-512 leaves them off, as a CPU without either would
    assert.equal(be.useElementwiseKernels(true, 'avx512'), false);
    assert.equal(be.info().elementwiseKernels, 'off');
  }
  assert.equal(be.useElementwiseKernels(true), true);
});

test('the add-on\'s range kernels (norms, layouts, bias sums, relu, rope, decays) write exactly the wasm kernels\' bits, on AVX-512 and on AVX2', { skip }, (t) => {
  const be = elementwiseBackend(t, 'the wasm kernels run');
  if (!be) return;
  const names = be.kernels?.rangeKernels;
  assert.ok(names && names.size >= 16, 'the add-on lists its range kernels');
  const next = rng(11);
  const special = [NaN, Infinity, -Infinity, 0, -0, 1e-40, -3e38];
  const values = (n: number, spread: number, specials = false): Float32Array => {
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = next() * spread;
    if (specials) for (let i = 5; i < n; i += 89) x[i] = special[(i / 89) % special.length | 0]!;
    return x;
  };
  const compare = (what: string, run: () => Float32Array[]) => {
    const { wasm, native } = onBothKernels(run);
    wasm.forEach((w, i) => assertSameBits(native[i]!, w, `${what} [output ${i}]`));
  };
  onEveryWidth(be, (width) => {
    // lengths: shorter than a vector, a vector and a tail of groups of four and of single values, several chunks
    for (const n of [1, 3, 23, 8192 * 3 + 5, 70_001]) {
      const a = values(n, 5, true), b = values(n, 3, true);
      compare(`${width}: add n = ${n}`, () => { const out = new Float32Array(n); ops.add(a, b, out, n); return [out]; });
      compare(`${width}: relu n = ${n}`, () => { const y = new Float32Array(n); ops.relu(a, y, n); return [y]; });
      compare(`${width}: reluBackward n = ${n}`, () => { const dx = new Float32Array(n); ops.reluBackward(b, a, dx, n); return [dx]; });
    }
    for (const [rows, cols] of [[1, 3], [7, 37], [300, 19], [64, 1000], [3, 576]] as const) {
      const y0 = values(rows * cols, 2, true), bias = values(cols, 1), db0 = values(cols, 1);
      compare(`${width}: addBias ${rows}x${cols}`, () => { const y = y0.slice(); ops.addBias(y, bias, rows, cols); return [y]; });
      compare(`${width}: sumRowsInto ${rows}x${cols}`, () => { const db = db0.slice(); ops.sumRowsInto(db, y0, rows, cols); return [db]; });
      compare(`${width}: mulBlocks ${rows}x${cols}`, () => { const x = y0.slice(); ops.mulBlocks(x, bias, rows, cols); return [x]; });
    }
    // dims: below a group of four, groups of four and a tail, 16- and 8-lane bodies with tails, model sizes
    for (const [rows, dim] of [[3, 3], [5, 7], [9, 37], [4, 64], [33, 576], [2, 1001]] as const) {
      for (const gain of [true, false]) {
        const x = values(rows * dim, 3), w = gain ? values(dim, 1) : null, dout = values(rows * dim, 2), dx0 = values(rows * dim, 1);
        if (rows > 3) x.fill(0, dim, 2 * dim); // a row of zeros: rstd = 1/sqrt(eps)
        const what = `${width}: rmsnorm ${rows}x${dim}${gain ? '' : ' without a gain'}`;
        compare(what, () => {
          const out = new Float32Array(rows * dim), rstd = new Float32Array(rows);
          ops.rmsnorm(x, w, out, rstd, rows, dim, 1e-5);
          const dx = new Float32Array(rows * dim), dxAcc = dx0.slice(), dw = gain ? new Float32Array(dim).fill(0.5) : null;
          ops.rmsnormBackward(dout, x, w, rstd, dx, dw, rows, dim);
          ops.rmsnormBackward(dout, x, w, rstd, dxAcc, null, rows, dim, true);
          return [out, rstd, dx, dxAcc, ...(dw ? [dw] : [])];
        });
      }
    }
    for (const [rows, groups, size] of [[3, 2, 3], [5, 3, 64], [7, 2, 37], [2, 4, 130]] as const) {
      const x = values(rows * groups * size, 4), dout = values(rows * groups * size, 2);
      x.fill(1.5, 0, size); // a constant group: variance 0
      compare(`${width}: groupnorm ${rows}x${groups}x${size}`, () => {
        const y = new Float32Array(x.length), rstd = new Float32Array(rows * groups), dx = new Float32Array(x.length);
        ops.groupnorm(x, y, rstd, rows, groups, size, 1e-5);
        ops.groupnormBackward(dout, y, rstd, dx, rows, groups, size);
        return [y, rstd, dx];
      });
    }
    for (const [batch, tokens, heads, dim, start] of [[2, 5, 3, 64, 0], [1, 9, 2, 10, 3], [3, 4, 5, 34, 7], [1, 2, 1, 2, 0]] as const) {
      const { cos, sin } = ops.ropeTables(start + tokens, dim, 10000);
      const x0 = values(batch * tokens * heads * dim, 2);
      for (const inverse of [false, true]) {
        compare(`${width}: rope ${batch}x${tokens}x${heads}x${dim} from ${start}${inverse ? ' inverse' : ''}`, () => {
          const x = x0.slice();
          ops.rope(x, cos, sin, batch, tokens, heads, dim, start, inverse);
          return [x];
        });
      }
      free(cos);
      free(sin);
    }
    for (const [B, T, H, rep, D] of [[2, 5, 6, 3, 7], [1, 33, 9, 3, 64], [3, 4, 4, 1, 16], [2, 3, 8, 4, 1]] as const) {
      const tokenMajor = values((B * T * H * D) / rep, 3, true), headMajor = values(B * T * H * D, 3);
      compare(`${width}: toHeadMajor, toTokenMajor ${B}x${T}x${H}/${rep}x${D}`, () => {
        const dst = new Float32Array(B * T * H * D), back = new Float32Array((B * T * H * D) / rep);
        ops.toHeadMajor(tokenMajor, dst, B, T, H, rep, D);
        ops.toTokenMajor(headMajor, back, B, T, H, rep, D);
        return [dst, back];
      });
    }
    for (const [U, H, rows, cols, stride, from] of [[6, 3, 5, 7, 40, -1], [4, 2, 9, 64, 9 * 64, 8], [2, 2, 3, 16, 100, 10]] as const) {
      const powers = Float64Array.from({ length: H * 16 }, (_, i) => Math.exp(-0.1 * (i % 16) * (1 + Math.floor(i / 16))));
      const src = values((U - 1) * stride + rows * cols, 2, true), x0 = values(U * cols, 2, true);
      compare(`${width}: scaleRowsByDecay ${U}x${rows}x${cols} from ${from}, decayBlocks`, () => {
        const dst = new Float32Array(U * rows * cols), x = x0.slice();
        ops.scaleRowsByDecay(src, stride, dst, U, H, rows, cols, powers, 16, 0.3, from);
        ops.decayBlocks(x, U, H, cols, powers, 16, 5);
        return [dst, x];
      });
    }
    for (const [U, H, tokens, cols, chunk] of [[6, 3, 37, 7, 8], [9, 9, 128, 64, 64], [2, 2, 5, 16, 64]] as const) {
      const powers = Float64Array.from({ length: H * (chunk + 1) }, (_, i) => Math.exp(-0.1 * (i % (chunk + 1)) * (1 + Math.floor(i / (chunk + 1)))));
      const src = values(U * tokens * cols, 2, true);
      compare(`${width}: decayChunkRows ${U}x${tokens}x${cols} in chunks of ${chunk}`, () => {
        const up = new Float32Array(U * tokens * cols), down = new Float32Array(U * tokens * cols);
        ops.decayChunkRows(src, up, U, H, tokens, cols, chunk, powers, chunk + 1, 1, false);
        ops.decayChunkRows(src, down, U, H, tokens, cols, chunk, powers, chunk + 1, 0.125, true);
        return [up, down];
      });
    }
    // arrays in the arena run in place, as arrays outside it do (a call this large: a small one on arena
    // arrays runs the wasm kernel on the calling thread, the cheaper call)
    const xa = allocF32(128 * 576), outa = allocF32(128 * 576), rstda = allocF32(128);
    try {
      xa.set(values(128 * 576, 2));
      const { wasm, native } = onBothKernels(() => {
        ops.rmsnorm(xa, null, outa, rstda, 128, 576, 1e-6);
        return [outa.slice(), rstda.slice()];
      });
      wasm.forEach((w, i) => assertSameBits(native[i]!, w, `${width}: rmsnorm in the arena [output ${i}]`));
    } finally {
      free(xa);
      free(outa);
      free(rstda);
    }
  });
  // bad arguments are refused by the add-on itself, before it touches memory
  const k = be.kernels!;
  assert.throws(() => k.range!('toHeadMajor', [new Float32Array(3), new Float32Array(6)], [1, 2, 1, 3], 2, 1), /src has 3 values, the call needs 6/);
  assert.throws(() => k.range!('toHeadMajor', [new Float32Array(6), new Float32Array(6)], [1, 2, 0, 3], 2, 1), /invalid sizes/);
  assert.throws(() => k.range!('rope', [new Float32Array(8), new Float32Array(8), new Float32Array(8)], [0, 1, 2, 0, 1], 4, 1), /invalid sizes/);
  assert.throws(() => k.range!('rmsnorm', [new Float32Array(4), null, new Float32Array(4), null], [4, 1e-5], 1, 1), /rstd must be a Float32Array/);
  assert.throws(() => k.range!('add', [new Float64Array(4) as never, new Float32Array(4), new Float32Array(4)], [], 4, 1), /a must be a Float32Array/);
  assert.throws(() => k.range!('add', [new Float32Array(4)], [], 4, 1), /takes an array of 3 arrays and an array of 0 numbers/);
  assert.throws(() => k.range!('decayBlocks', [new Float32Array(4), new Float32Array(4) as never], [2, 1, 0, 0], 2, 1), /powers must be a Float64Array/);
  assert.throws(() => k.range!('decayBlocks', [new Float32Array(4), new Float64Array(2)], [2, 2, 4, 1], 2, 1), /powers has 2 values, the call needs 6/);
  assert.throws(() => k.range!('softmax' as never, [], [], 0, 1), /no kernel named "softmax"/);
  assert.throws(() => k.range!('add', [new Float32Array(4), new Float32Array(4), new Float32Array(4)], [], 4, 0), /grain must be an integer >= 1/);
});

test('the add-on\'s linear attention step (a SUPRA decoding step) writes exactly the wasm kernel\'s bits, output and state, on AVX-512 and on AVX2', { skip }, (t) => {
  const be = elementwiseBackend(t, 'the wasm kernel runs');
  if (!be) return;
  assert.ok(be.kernels?.linearAttentionStep, 'the add-on has linearAttentionStep');
  const values = valuesFrom(9);
  onEveryWidth(be, (width) => {
    // [U, H, T, Dk, Dv]: a SmolLM-135M decoding step (9 heads, 64 x 64); groups of four vectors and of one, and
    // a scalar tail; only a tail; several tokens per unit and B = U / H sequences
    for (const [U, H, T, Dk, Dv] of [[9, 9, 1, 64, 64], [4, 2, 3, 7, 100], [6, 3, 5, 16, 40], [2, 2, 2, 5, 3]] as const) {
      const q = values(U * T * Dk), k = values(U * T * Dk), v = values(U * T * Dv), state0 = values(U * Dk * Dv);
      const powStride = T + 1;
      const powers = Float64Array.from({ length: H * powStride }, (_, i) => 0.9 + 0.01 * (i % 7) + 1e-9 * i); // not a float32
      const { wasm, native } = onBothKernels(() => {
        const o = new Float32Array(U * T * Dv).fill(NaN);
        const state = Float32Array.from(state0);
        ops.linearAttentionStep(q, k, v, o, state, U, H, T, Dk, Dv, 0.125, powers, powStride);
        return { o, state };
      });
      const what = `${width}: U ${U} H ${H} T ${T} Dk ${Dk} Dv ${Dv}`;
      assertSameBits(native.o, wasm.o, `${what}: o`);
      assertSameBits(native.state, wasm.state, `${what}: state`);
    }
  });
  const f = (n: number) => new Float32Array(n);
  assert.throws(() => be.kernels!.linearAttentionStep!(f(64), f(64), f(64), f(64), f(4095), 1, 1, 64, 64, 1, new Float64Array(2), 1, 1),
    /state has 4095 floats, the call needs 4096/);
  assert.throws(() => be.kernels!.linearAttentionStep!(f(128), f(128), f(128), f(128), f(8192), 2, 1, 64, 64, 1, new Float64Array(2), 1, 2),
    /powers must be a Float64Array of at least 3 values/);
  // sizes whose products wrap int64 (a hostile-input review's crash): refused before any array is read
  assert.throws(() => be.kernels!.linearAttentionStep!(f(4), f(4), f(4), f(4), f(4), 1, 2 ** 30, 1, 2 ** 30, 1, new Float64Array(2), 0, 2 ** 33),
    /2\^31 or more/);
  assert.throws(() => be.kernels!.linearAttentionStep!(f(4), f(4), f(4), f(4), f(4), 1, 2 ** 30, 2 ** 30, 2 ** 30, 1, new Float64Array(2), 0, 2 ** 30),
    /the arrays would hold 2\^53 floats or more/);
});

test('the fused recurrent step (a SUPRA decoding step from raw features to GroupNorm in one call) writes exactly the separate wasm kernels\' bits, on AVX-512 and on AVX2; bad calls are refused', { skip }, (t) => {
  const be = elementwiseBackend(t, 'the separate calls run');
  if (!be) return;
  assert.ok(be.kernels?.fusedRecurrentStep, 'the add-on has fusedRecurrentStep');
  const values = valuesFrom(17);
  onEveryWidth(be, (width) => {
    // [B, H, Hkv, Dk, Dv, start]: a SmolLM-135M step (GQA 3), heads = kv heads, two sequences with odd sizes
    for (const [B, H, Hkv, Dk, Dv, start] of [[1, 9, 3, 64, 64, 5], [2, 4, 4, 32, 32, 0], [2, 6, 2, 10, 12, 3]] as const) {
      const rep = H / Hkv;
      const q0 = values(B * H * Dk), k0 = values(B * Hkv * Dk), v = values(B * Hkv * Dv), state0 = values(B * H * Dk * Dv);
      const tables = ops.ropeTables(start + 1, Dk, 10000);
      const powStride = 65;
      const powers = Float64Array.from({ length: H * powStride }, (_, i) => 0.9 + 0.01 * (i % 7) + 1e-9 * i);
      const { wasm, native } = onBothKernels(() => {
        const q = Float32Array.from(q0), k = Float32Array.from(k0), state = Float32Array.from(state0);
        const kRep = rep > 1 ? new Float32Array(B * H * Dk).fill(NaN) : null, vRep = rep > 1 ? new Float32Array(B * H * Dv).fill(NaN) : null;
        const o = new Float32Array(B * H * Dv).fill(NaN), out = new Float32Array(B * H * Dv).fill(NaN), rstd = new Float32Array(B * H).fill(NaN);
        ops.fusedRecurrentStep(q, k, v, kRep, vRep, o, out, rstd, state, tables.cos, tables.sin, powers, B, H, Hkv, Dk, Dv, start, 0.125, powStride, 1e-5);
        return { q, k, kRep, vRep, o, out, rstd, state };
      });
      const what = `${width}: B ${B} H ${H} Hkv ${Hkv} Dk ${Dk} Dv ${Dv} start ${start}`;
      for (const name of ['q', 'k', 'kRep', 'vRep', 'o', 'out', 'rstd', 'state'] as const) {
        const a = native[name], b = wasm[name];
        if (a === null || b === null) assert.equal(a, b, `${what}: ${name}`);
        else assertSameBits(a, b, `${what}: ${name}`);
      }
      free(tables.cos);
      free(tables.sin);
    }
  });
  const f = (n: number) => new Float32Array(n);
  const call = (over: Partial<Record<'q' | 'kRep' | 'o' | 'state' | 'cos', Float32Array | null>>, Hkv = 3) =>
    be.kernels!.fusedRecurrentStep!(over.q ?? f(9 * 8), f(Hkv * 8), f(Hkv * 8), 'kRep' in over ? over.kRep! : f(9 * 8), Hkv === 9 ? null : f(9 * 8),
      over.o ?? f(9 * 8), f(9 * 8), f(9), over.state ?? f(9 * 64), over.cos ?? f(2 * 4), f(2 * 4), new Float64Array(9 * 3), 1, 9, Hkv, 8, 8, 1, 1, 3, 1e-5);
  assert.doesNotThrow(() => call({}));
  assert.throws(() => call({ state: f(9 * 64 - 1) }), /state has 575 floats, the call needs 576/);
  assert.throws(() => call({ cos: f(7) }), /cos has 7 floats, the call needs 8/);
  assert.throws(() => call({ kRep: null }), /kRep/);
  assert.throws(() => call({}, 9), /kRep and vRep must be null when heads == kvHeads/);
  assert.throws(() => call({}, 4), /heads \(9\) must be a multiple of kvHeads \(4\)/);
  const shared = f(9 * 8 * 2);
  assert.throws(() => call({ q: shared.subarray(0, 72), o: shared.subarray(40, 112) }), /q overlaps o in memory/);
  assert.throws(() => ops.fusedRecurrentStep(f(72), f(24), f(24), null, f(72), f(72), f(72), f(9), f(576), f(8), f(8), new Float64Array(27), 1, 9, 3, 8, 8, 1, 1, 3, 1e-5),
    /kRep and vRep are null exactly when heads == kv heads/);
  assert.throws(() => be.kernels!.fusedRecurrentStep!(f(72), f(24), f(24), f(72), f(72), f(72), f(72), f(9), f(576), f(8), f(8), new Float64Array(27),
    1, 9, 3, 2 ** 30, 2 ** 30, 1, 1, 3, 1e-5), /the state is too large/);
  // The separate calls (the wasm backend's path) refuse what the add-on refuses, before they change q or k.
  const before = getBackend().name;
  setBackend('wasm');
  try {
    const q = Float32Array.from({ length: 72 }, (_, i) => i - 30);
    const q0 = Float32Array.from(q);
    assert.throws(() => ops.fusedRecurrentStep(q, f(24), f(24), f(72), f(72), f(72), f(72), f(9), f(575), f(8), f(8), new Float64Array(27), 1, 9, 3, 8, 8, 1, 1, 3, 1e-5),
      /state holds 575 values, the call needs 576/);
    const shared = f(144);
    assert.throws(() => ops.fusedRecurrentStep(shared.subarray(0, 72), f(24), f(24), f(72), f(72), shared.subarray(40, 112), f(72), f(9), f(576), f(8), f(8),
      new Float64Array(27), 1, 9, 3, 8, 8, 1, 1, 3, 1e-5), /q overlaps o in memory/);
    assert.throws(() => ops.fusedRecurrentStep(q, f(24), f(24), f(72), f(72), f(72), f(72), f(9), f(576), f(8), f(8), new Float64Array(27), 1, 9, 3, 7, 8, 1, 1, 3, 1e-5),
      /Dk must be even/);
    assert.deepEqual(q, q0, 'q untouched by a refused call');
  } finally {
    setBackend(before);
  }
});

/** Turns the backend's decoding blocks off while fn runs (the separate calls run), and counts the blocks that ran. */
function withDecodingBlocks<T>(on: boolean, fn: () => T): { value: T; blocks: number } {
  const be = getBackend();
  const own = { decodeMlpBlock: be.decodeMlpBlock, fusedRecurrentLayerStep: be.fusedRecurrentLayerStep };
  let blocks = 0;
  const counted = <A>(f: ((a: A) => boolean) | undefined) => (f ? (a: A) => { const done = f.call(be, a); if (done) blocks++; return done; } : undefined);
  be.decodeMlpBlock = on ? counted(own.decodeMlpBlock) : undefined;
  be.fusedRecurrentLayerStep = on ? counted(own.fusedRecurrentLayerStep) : undefined;
  try {
    return { value: fn(), blocks };
  } finally {
    be.decodeMlpBlock = own.decodeMlpBlock;
    be.fusedRecurrentLayerStep = own.fusedRecurrentLayerStep;
  }
}

test('decoding blocks (a layer\'s MLP half and the norm after it, a SUPRA layer\'s step from its input to o_proj) decode exactly the separate calls\' logits: BF16 and int8, GQA, Qwen2 biases, 1 and 3 sequences, on AVX-512 and AVX2 and 1 and 2 threads; other layers keep the separate calls', { skip }, (t) => {
  const be = elementwiseBackend(t, 'the separate calls run');
  if (!be) return;
  const before = getBackend().name;
  const threads = be.threads;
  setBackend('native');
  try {
    const cases: Array<{ name: string; architecture: string; kv: number; options?: LinearizeOptions; mixerBlocks: boolean }> = [
      { name: 'GQA, Llama', architecture: 'LlamaForCausalLM', kv: 2, mixerBlocks: true },
      { name: 'kv heads = heads, Qwen2 biases', architecture: 'Qwen2ForCausalLM', kv: 6, mixerBlocks: true },
      { name: 'GQA, Qwen2 biases, rms qk-norm (the mixer keeps its calls)', architecture: 'Qwen2ForCausalLM', kv: 3, options: { qk_norm: 'rms' }, mixerBlocks: false },
    ];
    for (const c of cases) {
      const teacher = parseConfig({
        architectures: [c.architecture], vocab_size: 96, hidden_size: 48, intermediate_size: 64, num_hidden_layers: 2,
        num_attention_heads: 6, num_key_value_heads: c.kv, rms_norm_eps: 1e-5, rope_theta: 10000,
        max_position_embeddings: 256, tie_word_embeddings: false,
      });
      for (const dtype of ['bf16', 'int8'] as const) {
        const model = randomModel(supraConfig(teacher, c.options), 7, dtype);
        try {
          assert.equal(model.foldForInference(), true);
          for (const B of [1, 3]) {
            const decode = () => {
              const state = model.newState(B);
              try {
                const V = model.config.vocab_size, out: number[] = [];
                for (let t = 0; t < 12; t++) out.push(...model.step(Array.from({ length: B }, (_, b) => (t * 37 + b * 11) % 96), B, 1, state).subarray(0, B * V));
                return Float32Array.from(out);
              } finally {
                state.free();
              }
            };
            const separate = withDecodingBlocks(false, decode).value;
            onEveryWidth(be, (width) => {
              for (const n of [1, 2]) {
                be.setThreads(n);
                const { value, blocks } = withDecodingBlocks(true, decode);
                const what = `${c.name}, ${dtype}, B ${B}, ${width}, ${n} threads`;
                assertSameBits(value, separate, what);
                const layers = 12 * model.layers.length;
                assert.equal(blocks, layers + (c.mixerBlocks ? layers : 0), `${what}: blocks that ran`);
              }
            });
          }
        } finally {
          be.setThreads(threads);
          model.free();
        }
      }
    }
  } finally {
    setBackend(before);
  }
});

test('decoding blocks refuse bad calls naming the array, before writing anything', { skip }, (t) => {
  const be = elementwiseBackend(t, 'the separate calls run');
  if (!be) return;
  const f = (n: number) => new Float32Array(n);
  const H = 48, F = 64, blocks = Math.ceil(H / 32);
  const bf16 = (n: number) => new Uint16Array(n);
  const int8 = (n: number, k: number) => ({ w: new Int8Array(n * k), scales: new Uint16Array(n * Math.ceil(k / 32)) });
  const mlp = (over: Record<string, unknown> = {}) => {
    const a = { hIn: f(H), branch: f(H), hOut: f(H), normWeight: f(H), normed: f(H), rstd: f(1), act: f(F), rows: 1, hidden: H, ffn: F, eps: 1e-5,
      gate: { w: bf16(F * H), scales: null, n: F, y: f(F) }, up: { w: bf16(F * H), scales: null, n: F, y: f(F) }, down: { w: bf16(H * F), scales: null, n: H, y: f(H) }, ...over };
    a.down = { ...a.down, y: a.branch };
    return be.decodeMlpBlock!(a as never);
  };
  assert.equal(mlp(), true);
  const shared = f(2 * H);
  assert.equal(mlp({ hIn: shared.subarray(0, H), hOut: shared.subarray(0, H) }), true, 'hOut may be hIn itself');
  assert.throws(() => mlp({ hIn: shared.subarray(0, H), hOut: shared.subarray(4, 4 + H) }), /decodeMlpBlock: hOut overlaps hIn in memory/);
  assert.throws(() => mlp({ normed: f(H - 1) }), /decodeMlpBlock: n2 has 47 floats, the call needs 48/);
  assert.throws(() => mlp({ act: f(F).subarray(1) }), /a has 63 floats/);
  assert.equal(mlp({ rows: 5 }), false, 'not a decoding shape: the caller makes the separate calls');
  // the norm that follows: its output and rstd checked like the rest
  assert.equal(mlp({ next: { weight: f(H), out: f(H), rstd: f(1), eps: 1e-6 } }), true);
  assert.throws(() => mlp({ next: { weight: f(H), out: f(H - 1), rstd: f(1), eps: 1e-6 } }), /decodeMlpBlock: nextOut has 47 floats, the call needs 48/);
  assert.throws(() => mlp({ next: { weight: f(H - 1), out: f(H), rstd: f(1), eps: 1e-6 } }), /nextW has 47 floats/);
  const out = f(H);
  assert.throws(() => mlp({ hOut: out, next: { weight: f(H), out, rstd: f(1), eps: 1e-6 } }), /hOut overlaps nextOut in memory/);
  // hOut may be hIn itself, but then neither norm's gain may be that array
  assert.throws(() => mlp({ hIn: out, hOut: out, normWeight: out }), /hOut overlaps normW in memory/);
  assert.throws(() => mlp({ hIn: out, hOut: out, next: { weight: out, out: f(H), rstd: f(1), eps: 1e-6 } }), /hOut overlaps nextW in memory/);
  assert.throws(() => mlp({ eps: NaN }), /eps and nextEps must be finite and >= 0/);
  const gw = bf16(F * H);
  assert.throws(() => mlp({ act: new Float32Array(gw.buffer, 0, F), gate: { w: gw, scales: null, n: F, y: f(F) } }), /a overlaps the gate weight or its scales in memory/);
  assert.throws(() => mlp({ gate: { w: bf16(F * H - 1), scales: null, n: F, y: f(F) } }), /decodeMlpBlock: gate: w has 3071 values but the call reads 3072/);
  const q8 = int8(H, F);
  assert.throws(() => mlp({ down: { w: q8.w, scales: q8.scales.subarray(1), n: H, y: f(H) } }), /down: scales has 95 values but the call reads 96/);
  assert.throws(() => mlp({ up: { w: f(F * H), scales: null, n: F, y: f(F) } }), /up: w must be a Uint16Array \(BF16 bits\) or an Int8Array/);
  const g = f(F);
  assert.throws(() => mlp({ gate: { w: bf16(F * H), scales: null, n: F, y: g }, up: { w: bf16(F * H), scales: null, n: F, y: g } }), /g overlaps u in memory/);
  // the layer step: fusedRecurrentStep's checks, then the projections'
  const Hh = 6, Hkv = 2, D = 8, hidden = 16;
  const powers = new Float64Array(Hh * 3);
  const tables = { cos: f(2 * D / 2), sin: f(2 * D / 2) };
  const layer = (over: Record<string, unknown> = {}, B = 1) => {
    const q = f(B * Hh * D), k = f(B * Hkv * D), v = f(B * Hkv * D);
    const proj = (n: number, k: number, y: Float32Array) => ({ part: { w: bf16(n * k), scales: null, n, y }, bias: null as Float32Array | null });
    const a = { x: f(B * hidden), hidden, q: proj(Hh * D, hidden, q), k: proj(Hkv * D, hidden, k), v: proj(Hkv * D, hidden, v), o: proj(hidden, Hh * D, f(B * hidden)),
      step: [q, k, v, f(B * Hh * D), f(B * Hh * D), f(B * Hh * D), f(B * Hh * D), f(B * Hh), f(B * Hh * D * D), tables.cos, tables.sin, powers, B, Hh, Hkv, D, D, 1, 0.125, 3, 1e-5],
      ...over };
    return be.fusedRecurrentLayerStep!(a as never);
  };
  assert.equal(layer(), true);
  assert.throws(() => layer({ x: f(hidden - 1) }), /fusedRecurrentLayerStep: x has 15 values but the call reads 16/);
  assert.throws(() => layer({ o: { part: { w: bf16(hidden * Hh * D), scales: null, n: hidden, y: f(3) }, bias: null } }), /y has 3 values but the call writes 16/);
  assert.throws(() => layer({ v: { part: { w: bf16(Hkv * D * hidden), scales: null, n: Hkv * D, y: f(Hkv * D) }, bias: null } }), /the projections must write the step's q, k and v/);
  {
    const qk = f(Hh * D + Hkv * D);
    const q = qk.subarray(0, Hh * D), k = qk.subarray(Hh * D - 4), v = f(Hkv * D);
    const proj = (n: number, kk: number, y: Float32Array) => ({ part: { w: bf16(n * kk), scales: null, n, y }, bias: null });
    assert.throws(() => layer({ q: proj(Hh * D, hidden, q), k: proj(Hkv * D, hidden, k), v: proj(Hkv * D, hidden, v),
      step: [q, k, v, f(Hh * D), f(Hh * D), f(Hh * D), f(Hh * D), f(Hh), f(Hh * D * D), tables.cos, tables.sin, powers, 1, Hh, Hkv, D, D, 1, 0.125, 3, 1e-5] }),
    /q overlaps k in memory/);
  }
    assert.equal(layer({}, 5), false, 'not a decoding shape: the caller makes the separate calls');
  // a bias too short, y over x, a weight over the state: refused, and the state untouched
  const state = Float32Array.from({ length: Hh * D * D }, (_, i) => i);
  const withState = (over: Record<string, unknown>) => {
    const q = f(Hh * D), k = f(Hkv * D), v = f(Hkv * D);
    const proj = (n: number, kk: number, y: Float32Array, bias: Float32Array | null = null) => ({ part: { w: bf16(n * kk), scales: null, n, y }, bias });
    return layer({ q: proj(Hh * D, hidden, q, (over.qBias as Float32Array) ?? null), k: proj(Hkv * D, hidden, k), v: proj(Hkv * D, hidden, v),
      step: [q, k, v, f(Hh * D), f(Hh * D), f(Hh * D), f(Hh * D), f(Hh), state, tables.cos, tables.sin, powers, 1, Hh, Hkv, D, D, 1, 0.125, 3, 1e-5],
      ...('o' in over ? { o: over.o } : {}), ...('x' in over ? { x: over.x } : {}) });
  };
  const state0 = Float32Array.from(state);
  assert.throws(() => withState({ qBias: f(Hh * D - 1) }), /fusedRecurrentLayerStep: q_proj bias has 47 floats, the call needs 48/);
  const xy = f(hidden);
  assert.throws(() => withState({ x: xy, o: { part: { w: bf16(hidden * Hh * D), scales: null, n: hidden, y: xy }, bias: null } }), /y overlaps x in memory/);
  const overState = new Uint16Array(state.buffer, 0, hidden * Hh * D);
  assert.throws(() => withState({ o: { part: { w: overState, scales: null, n: hidden, y: f(hidden) }, bias: null } }), /state overlaps the o_proj weight, scales or bias in memory/);
  // y over the RoPE table or the decay powers, which every layer and step reads
  {
    const q = f(Hh * D), k = f(Hkv * D), v = f(Hkv * D), shared = f(hidden + D);
    const y = shared.subarray(0, hidden), cos = shared.subarray(hidden - 4, hidden + 4);
    const proj = (n: number, kk: number, out: Float32Array) => ({ part: { w: bf16(n * kk), scales: null, n, y: out }, bias: null });
    assert.throws(() => layer({ q: proj(Hh * D, hidden, q), k: proj(Hkv * D, hidden, k), v: proj(Hkv * D, hidden, v), o: proj(hidden, Hh * D, y),
      step: [q, k, v, f(Hh * D), f(Hh * D), f(Hh * D), f(Hh * D), f(Hh), state, cos, tables.sin, powers, 1, Hh, Hkv, D, D, 1, 0.125, 3, 1e-5] }),
    /y overlaps cos in memory/);
  }
  assert.deepEqual(state, state0, 'the state untouched by refused calls');
});

test('degenerate sizes: k = 0 scales C by beta, m = 0 and batch = 0 do nothing', { skip }, () => {
  const be = backend();
  const c = Float32Array.from([1, 2, 3, 4, 5, 6]);
  be.sgemm({ transA: false, transB: false, m: 2, n: 3, k: 0, a: new Float32Array(0), b: new Float32Array(0), c, beta: 2 });
  assert.deepEqual(Array.from(c), [2, 4, 6, 8, 10, 12]);
  be.sgemm({ transA: false, transB: false, m: 2, n: 3, k: 0, a: new Float32Array(0), b: new Float32Array(0), c });
  assert.deepEqual(Array.from(c), [0, 0, 0, 0, 0, 0]);
  const untouched = Float32Array.from([7, 7]);
  be.sgemm({ transA: false, transB: false, m: 0, n: 2, k: 3, a: new Float32Array(0), b: new Float32Array(6), c: untouched });
  be.sgemm({ transA: true, transB: true, m: 1, n: 2, k: 3, a: new Float32Array(3), b: new Float32Array(6), c: untouched, batch: 0 });
  assert.deepEqual(Array.from(untouched), [7, 7]);
});

test('the add-on measures read bandwidth on 1 and 2 threads (the scale benchmark\'s bound), and refuses more', { skip }, async () => {
  const be = backend();
  assert.ok(be.readBandwidth, 'the add-on has readBandwidth');
  for (const threads of [1, 2] as const) {
    // 1 MiB + 1 byte: rounded up to whole 256-byte blocks; the add-on checks the loop's sum itself
    const r = be.readBandwidth(2 ** 20 + 1, threads, 3);
    assert.equal(r.bytes, 2 ** 20 + 256);
    assert.equal(r.threads, threads);
    assert.equal(r.passes.length, 3);
    assert.ok(r.passes.every((gbs) => Number.isFinite(gbs) && gbs > 0), JSON.stringify(r));
    assert.equal(r.kernel, be.info().decodeKernel === 'none' ? 'scalar' : be.info().decodeKernel);
  }
  assert.throws(() => be.readBandwidth!(1024, 3 as 2, 1), /threads must be 1 or 2/);
  assert.throws(() => be.readBandwidth!(0, 1, 1), /bytes must be an integer >= 1/);
  // the benchmark's measure uses it by default, and names the loop
  const { defaultBandwidthLoop, bandwidthThreadCounts, measureReadBandwidth } = await import('../src/bench/bandwidth.js');
  assert.equal(defaultBandwidthLoop(), 'native');
  assert.deepEqual(bandwidthThreadCounts('native'), [...new Set([1, Math.min(2, (await import('node:os')).availableParallelism())])]);
  const m = await measureReadBandwidth({ bytes: 2 ** 20, threads: 1, passes: 2 });
  assert.match(m.method, /^native add-on, (AVX-512 512-bit|AVX2 256-bit|64-bit scalar) loads/);
  assert.equal(m.bestGBPerS, Math.max(...m.passes));
  await assert.rejects(measureReadBandwidth({ bytes: 2 ** 20, threads: 3, loop: 'native' }), /1 or 2 threads, not 3/);
});

test('bad calls throw a clear error instead of touching memory', { skip }, () => {
  const be = backend();
  const ok: GemmArgs = {
    transA: false,
    transB: false,
    m: 4,
    n: 3,
    k: 2,
    a: new Float32Array(8),
    b: new Float32Array(6),
    c: new Float32Array(12),
  };
  be.sgemm(ok); // the baseline is valid
  const bad: Array<[string, Partial<GemmArgs> | Record<string, unknown>, RegExp]> = [
    ['A too short', { a: new Float32Array(7) }, /A has 7 floats but the call reads 8/],
    ['B too short for transB', { transB: true, b: new Float32Array(5) }, /B has 5 floats/],
    ['C too short', { c: new Float32Array(11) }, /C has 11 floats/],
    ['lda below the columns', { lda: 1, a: new Float32Array(100) }, /ldA = 1 is smaller than the 2 columns/],
    ['ldc below n', { ldc: 2 }, /ldC = 2 is smaller than the 3 columns/],
    ['batch past the end', { batch: 2, strideC: 12, strideA: 0, strideB: 0 }, /C has 12 floats but the call reads 24/],
    ['huge stride', { batch: 2, strideA: 2 ** 50 }, /A has 8 floats but the call reads 1125899906842632 /],
    ['stride past 2^53', { batch: 3, strideA: 2 ** 53 }, /A has 8 floats but the call reads past them/],
    ['negative m', { m: -1 }, /m must be an integer/],
    ['fractional k', { k: 1.5 }, /k must be an integer/],
    ['NaN n', { n: NaN }, /n must be an integer/],
    ['negative stride', { batch: 2, strideB: -6 }, /strideB must be a non-negative integer/],
    ['Float64Array', { a: new Float64Array(8) }, /a must be a Float32Array/],
    ['plain array', { b: [1, 2, 3, 4, 5, 6] }, /b must be a Float32Array/],
    ['transA not boolean', { transA: 1 }, /transA must be a boolean/],
    ['alpha not a number', { alpha: '2' }, /alpha must be a number/],
  ];
  for (const [what, change, message] of bad) {
    assert.throws(() => be.sgemm({ ...ok, ...change } as GemmArgs), message, what);
  }
  // C may not alias an input: BLAS would silently compute garbage
  const shared = new Float32Array(30);
  assert.throws(
    () => be.sgemm({ ...ok, a: shared.subarray(0, 8), c: shared.subarray(4, 16) }),
    /C overlaps A or B/,
  );
  be.sgemm({ ...ok, a: shared.subarray(0, 8), c: shared.subarray(8, 20) }); // adjacent is fine
});

test('thread count can be changed and results do not depend on it', { skip }, () => {
  const be = backend();
  const before = be.threads;
  const next = rng(3);
  const [m, n, k] = [96, 80, 64];
  const a = filled(plain, m * k, next);
  const b = filled(plain, k * n, next);
  const c1 = new Float32Array(m * n);
  const c2 = new Float32Array(m * n);
  assert.equal(be.setThreads(1), 1);
  assert.equal(be.threads, 1);
  be.sgemm({ transA: false, transB: true, m, n, k, a, b, c: c1 });
  be.setThreads(Math.max(2, before));
  be.sgemm({ transA: false, transB: true, m, n, k, a, b, c: c2 });
  assertClose(c1, Float64Array.from(c2), 'threads 1 vs many');
  assert.throws(() => be.setThreads(0), /thread count must be an integer/);
  be.setThreads(before);
  assert.equal(be.threads, before);
});

test('decoding products by a float32 weight big enough to share with the helper thread: float64 values, the same bits on 1 and 2 threads', { skip }, () => {
  const be = backend();
  const before = be.threads;
  const next = rng(4);
  // n x k weights of 300 KiB and 1.2 MiB (several 64 KiB items), with every k tail, alpha/beta and padded
  // leading dimensions, so items start mid-B and mid-C
  for (const [m, n, k, pad] of [[1, 300, 257, 0], [3, 611, 130, 5], [4, 1031, 300, 3]] as const) {
    for (const [alpha, beta] of [[1, 0], [0.5, -2]] as const) {
      const a = filled(arena, m * (k + pad), next);
      const b = filled(arena, n * (k + pad), next);
      const c0 = filled(arena, m * (n + pad), next);
      const g = (c: Float32Array): GemmArgs => ({ transA: false, transB: true, m, n, k, alpha, beta, a, b, c, lda: k + pad, ldb: k + pad, ldc: n + pad });
      const want = referenceGemm(g(Float32Array.from(c0)));
      const results = [1, 2].map((threads) => {
        be.setThreads(threads);
        const c = allocF32(c0.length);
        c.set(c0);
        be.sgemm(g(c));
        return c;
      });
      const what = `${m}x${n}x${k} pad ${pad} alpha ${alpha} beta ${beta}`;
      assertClose(results[1]!, want, what);
      assert.deepEqual(Array.from(results[1]!), Array.from(results[0]!), `${what}: 2 threads vs 1`);
      for (const x of [a, b, c0, ...results]) free(x);
    }
  }
  be.setThreads(before);
});

test('gemmShared: BF16 and int8 parts read from one input, each the bits of its own product on 1 and 2 threads; bad parts refused naming the part', { skip }, () => {
  const be = backend();
  const before = be.threads;
  const next = rng(5);
  const k = 300; // a shorter last int8 block; 8 and 24 items of 64 KiB in the two larger parts
  const blocks = Math.ceil(k / 32);
  const bf16 = (n: number): Uint16Array => Uint16Array.from(new Uint32Array(Float32Array.from({ length: n * k }, next).buffer), (bits) => bits >>> 16);
  const int8 = (n: number) => ({ w: Int8Array.from({ length: n * k }, () => Math.round(next() * 127)), scales: Uint16Array.from({ length: n * blocks }, () => 0x3c00 + Math.floor(Math.abs(next()) * 0x100)) }); // bfloat16 scales in [2^-7, 2^-6)
  const a = bf16(1031), b = int8(67), c = bf16(5), d = int8(2500);
  for (const m of [1, 2, 4]) {
    const x = filled(arena, m * k, next);
    const own = [
      (() => { const y = new Float32Array(m * 1031); be.gemmBf16({ m, n: 1031, k, x, w: a, y }); return y; })(),
      (() => { const y = new Float32Array(m * 67); be.gemmInt8({ m, n: 67, k, x, w: b.w, scales: b.scales, y }); return y; })(),
      (() => { const y = new Float32Array(m * 5); be.gemmBf16({ m, n: 5, k, x, w: c, y }); return y; })(),
      (() => { const y = new Float32Array(m * 2500); be.gemmInt8({ m, n: 2500, k, x, w: d.w, scales: d.scales, y }); return y; })(),
    ];
    for (const threads of [1, 2]) {
      be.setThreads(threads);
      const ys = own.map((y) => new Float32Array(y.length).fill(Number.NaN));
      assert.equal(be.gemmShared!(m, k, x, [
        { w: a, scales: null, n: 1031, y: ys[0]! }, { w: b.w, scales: b.scales, n: 67, y: ys[1]! },
        { w: c, scales: null, n: 5, y: ys[2]! }, { w: d.w, scales: d.scales, n: 2500, y: ys[3]! },
      ]), true);
      for (let i = 0; i < 4; i++) assert.deepEqual(Array.from(ys[i]!), Array.from(own[i]!), `m ${m}, part ${i}, ${threads} threads`);
    }
    free(x);
  }
  be.setThreads(before);
  assert.equal(be.gemmShared!(5, k, new Float32Array(5 * k), [{ w: c, scales: null, n: 5, y: new Float32Array(25) }]), false, 'not a decoding shape: the caller makes the products');
  const x = new Float32Array(k), y = new Float32Array(8);
  const call = (parts: unknown[]) => (be as unknown as { gemmShared(m: number, k: number, x: Float32Array, p: unknown[]): boolean }).gemmShared(1, k, x, parts);
  assert.throws(() => call([{ w: c.subarray(1), scales: null, n: 5, y }]), /gemmShared: part 0: w has 1499 values but the call reads 1500/);
  assert.throws(() => call([{ w: c, scales: null, n: 5, y }, { w: b.w, scales: b.scales.subarray(1), n: 67, y: new Float32Array(67) }]), /part 1: scales has 669 values but the call reads 670/);
  assert.throws(() => call([{ w: c, scales: b.scales, n: 5, y }]), /part 0: a BF16 weight takes no scales/);
  assert.throws(() => call([{ w: new Float32Array(5 * k), scales: null, n: 5, y }]), /part 0: w must be a Uint16Array \(BF16 bits\) or an Int8Array/);
  assert.throws(() => call([{ w: c, scales: null, n: 5, y: y.subarray(4) }]), /part 0: y has 4 values but the call writes 5/);
  assert.throws(() => call([{ w: c, scales: null, n: 5, y }, { w: c, scales: null, n: 3, y: y.subarray(4) }]), /part 1: y overlaps another part's y/);
  const shared = new Float32Array(k + 5);
  assert.throws(() => (be as unknown as { gemmShared(m: number, k: number, x: Float32Array, p: unknown[]): boolean }).gemmShared(1, k, shared.subarray(0, k), [{ w: c, scales: null, n: 5, y: shared.subarray(k - 1) }]),
    /part 0: y overlaps x, w or scales in memory/);
  assert.throws(() => call([]), /parts must be an array of 1 to 16/);
});

test('the add-on refuses hostile arrays of arrays and shared memory without crashing: getters that throw, parts over each other, int8 scales of the wrong type', { skip }, () => {
  // the add-on itself, as the backend loads it: getters only run on arrays the backend does not build
  const addon = createRequire(import.meta.url)(backend().info().addonPath) as Record<string, (...a: unknown[]) => unknown>;
  const k = 64, n = 4;
  const w = new Int8Array(n * k), scales = new Uint16Array(n * 2).fill(0x3f80), x = new Float32Array(k);
  const throwing = (entry: unknown[], index: number): unknown[] => {
    Object.defineProperty(entry, index, { get() { throw new Error('a getter threw'); } });
    return entry;
  };
  // a getter that throws: its error comes back, for every field and for the part itself
  for (let f = 0; f < 4; f++) assert.throws(() => addon.gemmShared!(1, k, x, [throwing([w, scales, n, new Float32Array(n)], f)]), /a getter threw/);
  assert.throws(() => addon.gemmShared!(1, k, x, throwing([[w, scales, n, new Float32Array(n)]], 0)), /a getter threw/);
  assert.throws(() => addon.rangeKernel!('add', throwing([new Float32Array(4), new Float32Array(4), new Float32Array(4)], 1), [], 4, 4), /a getter threw/);
  assert.throws(() => addon.rangeKernel!('addBias', [new Float32Array(4), new Float32Array(4)], throwing([4], 0), 4, 4), /a getter threw/);
  // one part's y over another part's weight or scales, whichever comes first
  const bytes = new ArrayBuffer(4 * 64);
  const scalesInY = new Uint16Array(bytes, 0, n * 2), yOverScales = new Float32Array(bytes, 0, n);
  assert.throws(() => addon.gemmShared!(1, k, x, [[w, scalesInY, n, new Float32Array(n)], [w, scales, n, yOverScales]]), /part 1: y overlaps part 0's w or scales in memory/);
  assert.throws(() => addon.gemmShared!(1, k, x, [[w, scales, n, yOverScales], [w, scalesInY, n, new Float32Array(n)]]), /part 0: y overlaps part 1's w or scales in memory/);
  // float32 scales (int8's before they became bfloat16) are refused, naming the call and the weight
  assert.throws(() => addon.gemmInt8!(1, n, k, x, w, new Float32Array(n * 2), new Float32Array(n)), /gemmInt8: scales must be a Uint16Array \(bfloat16 scales\)/);
  assert.throws(() => addon.gemmShared!(1, k, x, [[w, new Float32Array(n * 2), n, new Float32Array(n)]]), /gemmShared: part 0: scales must be a Uint16Array/);
  // quantizing into memory it reads: refused
  const shared = new ArrayBuffer(4 * 128);
  assert.throws(() => addon.quantizeInt8!(new Float32Array(shared, 0, 64), 0, 64, new Int8Array(shared, 128, 64), new Uint16Array(2)), /src, q and scales must not share memory/);
  assert.throws(() => addon.quantizeInt8!(new Float32Array(64), 0, 64, new Int8Array(shared, 0, 64), new Uint16Array(shared, 60, 2)), /src, q and scales must not share memory/);
  assert.equal(addon.quantizeInt8!(new Float32Array(64).fill(1), 0, 64, new Int8Array(shared, 0, 64), new Uint16Array(shared, 64, 2)), -1);
});

// Children: OpenBLAS reads OPENBLAS_CORETYPE and thread settings once, at load.
const nativeModuleUrl = new URL('../src/core/native/backend.js', import.meta.url).href;
const selectModuleUrl = new URL('../src/core/select.js', import.meta.url).href;

function childInfo(env: Record<string, string | undefined>): NativeInfo {
  const script =
    `import { createNativeBackend } from ${JSON.stringify(nativeModuleUrl)};` +
    `const r = createNativeBackend(); if (!r.ok) throw new Error(r.reason);` +
    `console.log(JSON.stringify(r.backend.info()));`;
  const childEnv: Record<string, string | undefined> = { ...process.env, ...env };
  for (const key of Object.keys(childEnv)) if (childEnv[key] === undefined) delete childEnv[key];
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: childEnv });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as NativeInfo;
}

test('SUPRA_NATIVE_ISA=avx2 caps the add-on\'s own kernels at AVX2 (the second test pass on AVX-512 CPUs)', { skip }, () => {
  backend();
  // the CPU's own, whatever this process runs with (the AVX2 pass of npm test sets the cap here too)
  const widest = childInfo({ SUPRA_NATIVE_ISA: undefined }).decodeKernel;
  const capped = childInfo({ SUPRA_NATIVE_ISA: 'avx2' });
  if (widest === 'none') {
    assert.equal(capped.decodeKernel, 'none');
    return;
  }
  assert.equal(capped.decodeKernel, 'avx2');
  assert.equal(capped.smallKernel, 'avx2');
  assert.equal(capped.elementwiseKernels, 'avx2');
  assert.deepEqual(capped.bf16Kernels, ['rounded'], 'BF16 products by rounded operands only');
  assert.equal(capped.bf16Products, 'off');
  // any other value leaves the CPU's own
  assert.equal(childInfo({ SUPRA_NATIVE_ISA: 'avx512' }).decodeKernel, widest);
});

test('the add-on is tuned by CPU maker (BF16 decoding prefetch, one-token states on one thread, prefetches in the optimizer\'s passes); SUPRA_BF16_PREFETCH, SUPRA_STEP_ALONE_FLOATS and SUPRA_PASS_PREFETCH override it, and no setting changes a bit', { skip }, () => {
  backend();
  const info = childInfo({});
  if (info.decodeKernel === 'none') {
    assert.equal(info.cpuTuning, undefined);
    return;
  }
  const own = info.cpuTuning;
  assert.ok(own, 'the add-on reports its tuning');
  assert.ok(['amd', 'other'].includes(own.vendor));
  assert.equal(own.bf16DecodePrefetch, own.vendor === 'amd' ? 'nta' : 'l1l2');
  assert.deepEqual(childInfo({ SUPRA_BF16_PREFETCH: 'nta', SUPRA_STEP_ALONE_FLOATS: '0', SUPRA_PASS_PREFETCH: 'none' }).cpuTuning,
    { vendor: own.vendor, bf16DecodePrefetch: 'nta', stepAloneFloats: 0, passPrefetch: 'none' });
  assert.deepEqual(childInfo({ SUPRA_BF16_PREFETCH: 'l1l2', SUPRA_STEP_ALONE_FLOATS: '65536', SUPRA_PASS_PREFETCH: 'l1l2' }).cpuTuning,
    { vendor: own.vendor, bf16DecodePrefetch: 'l1l2', stepAloneFloats: 65536, passPrefetch: 'l1l2' });
  // a value it does not know leaves the maker's own
  assert.deepEqual(childInfo({ SUPRA_BF16_PREFETCH: 'fast', SUPRA_STEP_ALONE_FLOATS: '-3', SUPRA_PASS_PREFETCH: 'yes' }).cpuTuning, own);
  // In children of each setting: a BF16 product big enough to share with the helper, a SmolLM-135M-sized
  // recurrent step, AdamW and the sum of squares over 3 chunks and a tail: the same bits.
  const script =
    `import { createNativeBackend } from ${JSON.stringify(nativeModuleUrl)};` +
    `const r = createNativeBackend(); if (!r.ok) throw new Error(r.reason); const be = r.backend;` +
    `let seed = 7; const next = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5);` +
    `const k = 576, n = 300; const x = Float32Array.from({ length: k }, next);` +
    `const w = Uint16Array.from({ length: n * k }, () => (Math.floor((next() + 0.5) * 0x7f00) | 0) ^ 0x3c00);` +
    `const y = new Float32Array(n); be.gemmBf16({ m: 1, n, k, x, w, y });` +
    `const U = 9, D = 64; const q = Float32Array.from({ length: U * D }, next), kk = Float32Array.from({ length: U * D }, next);` +
    `const v = Float32Array.from({ length: U * D }, next), o = new Float32Array(U * D), state = Float32Array.from({ length: U * D * D }, next);` +
    `const powers = Float64Array.from({ length: U * 2 }, (_, i) => 0.9 + 0.001 * i);` +
    `be.kernels.linearAttentionStep(q, kk, v, o, state, U, 1, D, D, 0.125, powers, 2, U);` +
    `const P = 3 * 32768 + 21; const p = Float32Array.from({ length: P }, next), g = Float32Array.from({ length: P }, next);` +
    `const m1 = Float32Array.from({ length: P }, next), v1 = Float32Array.from({ length: P }, () => Math.abs(next()));` +
    `const ss = be.heapKernels.sumSquares(g, P, 32768);` +
    `be.heapKernels.adamw(p, g, m1, v1, 1e-3, 0.9, 0.95, 1e-8, 0.1, 0.5, 0.3, 0.7, false, P, 32768);` +
    `const { createHash } = await import('node:crypto');` +
    `console.log(JSON.stringify([...[y, o, state, p, m1, v1].map((a) => createHash('sha256').update(new Uint8Array(a.buffer)).digest('hex')), ss]));`;
  const run = (env: Record<string, string>) => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, ...env } });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as unknown[];
  };
  const base = run({ SUPRA_BF16_PREFETCH: 'nta', SUPRA_STEP_ALONE_FLOATS: '65536', SUPRA_PASS_PREFETCH: 'none' });
  assert.deepEqual(run({ SUPRA_BF16_PREFETCH: 'l1l2', SUPRA_STEP_ALONE_FLOATS: '0', SUPRA_PASS_PREFETCH: 'l1l2' }), base);
});

test('idle OpenBLAS threads sleep at once unless OPENBLAS_THREAD_TIMEOUT says otherwise', { skip }, () => {
  backend();
  assert.equal(childInfo({ OPENBLAS_THREAD_TIMEOUT: undefined }).threadTimeoutEnv, '4');
  assert.equal(childInfo({ OPENBLAS_THREAD_TIMEOUT: '20' }).threadTimeoutEnv, '20');
});

test('SUPRA_OPENBLAS_CORETYPE picks the kernels (or auto-detects over a preset), SUPRA_THREADS the threads', {
  skip: skip || (process.arch !== 'x64' ? 'coretype names are for x86-64' : false),
}, () => {
  backend();
  // unset: the set the CPU's flags call for (where they can be read), not OpenBLAS's detection, which
  // falls back to SSE3 on CPU models it does not know
  const fromFlags = coretypeFromCpuFlags(process.platform === 'linux' ? readFileSync('/proc/cpuinfo', 'utf8') : '');
  const unset = childInfo({ OPENBLAS_CORETYPE: undefined, SUPRA_OPENBLAS_CORETYPE: undefined });
  assert.equal(unset.coretypeEnv, fromFlags ?? '');
  if (fromFlags) assert.equal(unset.corename, fromFlags);
  const detected = childInfo({ OPENBLAS_CORETYPE: undefined, SUPRA_OPENBLAS_CORETYPE: 'auto' });
  assert.equal(detected.coretypeEnv, '');
  const preset = childInfo({ OPENBLAS_CORETYPE: 'Prescott', SUPRA_OPENBLAS_CORETYPE: undefined, SUPRA_THREADS: '1' });
  assert.equal(preset.corename, 'Prescott');
  assert.equal(preset.threads, 1);
  const chosen = childInfo({ OPENBLAS_CORETYPE: 'Prescott', SUPRA_OPENBLAS_CORETYPE: 'Nehalem' });
  assert.equal(chosen.corename, 'Nehalem');
  const auto = childInfo({ OPENBLAS_CORETYPE: 'Prescott', SUPRA_OPENBLAS_CORETYPE: 'auto' });
  assert.equal(auto.corename, detected.corename);
  assert.equal(auto.coretypeEnv, '');
  // the flags' choice
  const cpu = (flags: string, vendor = 'GenuineIntel') => `vendor_id\t: ${vendor}\nflags\t\t: fpu sse2 ${flags}\n`;
  assert.equal(coretypeFromCpuFlags(cpu('avx2 fma avx512f avx512bw avx512vl avx512dq avx512cd')), 'SkylakeX');
  assert.equal(coretypeFromCpuFlags(cpu('avx2 fma avx512f avx512bw avx512vl avx512dq avx512cd avx512_bf16', 'AuthenticAMD')), 'Cooperlake');
  assert.equal(coretypeFromCpuFlags(cpu('avx2 fma', 'AuthenticAMD')), 'Zen');
  assert.equal(coretypeFromCpuFlags(cpu('avx2 fma')), 'Haswell');
  assert.equal(coretypeFromCpuFlags(cpu('avx sse4_2')), null);
  assert.equal(coretypeFromCpuFlags(''), null);
});

test('a missing add-on reports why, and select.ts falls back to wasm with one warning', () => {
  const missing = join(tmpdir(), 'supra-no-such-addon', 'supra_native.node');
  const r = createNativeBackend({ addonPath: missing });
  assert.equal(r.ok, false);
  assert.ok(!r.ok && r.reason.includes(missing), !r.ok ? r.reason : '');
  // a file that is there but is no add-on (say, built against a library since removed)
  const dir = mkdtempSync(join(tmpdir(), 'supra-bad-addon-'));
  const broken = join(dir, 'supra_native.node');
  writeFileSync(broken, 'not a shared object');
  const rb = createNativeBackend({ addonPath: broken });
  rmSync(dir, { recursive: true, force: true });
  assert.ok(!rb.ok && /failed to load/.test(rb.reason), !rb.ok ? rb.reason : 'loaded a broken add-on');
  // an add-on built from older sources (here a stand-in module) lacks newer functions: named, not a crash later
  const staleDir = mkdtempSync(join(tmpdir(), 'supra-stale-addon-'));
  const stale = join(staleDir, 'supra_native.cjs');
  writeFileSync(stale, 'module.exports = { sgemm() {}, info() {}, setThreads() {} };');
  const rs = createNativeBackend({ addonPath: stale });
  rmSync(staleDir, { recursive: true, force: true });
  assert.ok(!rs.ok && /out of date \(no gemmBf16, useSmallKernel.*run npm install/.test(rs.reason), !rs.ok ? rs.reason : 'loaded a stale add-on');
  assert.ok(!rs.ok && /swigluBackward, gemmInt8;/.test(rs.reason), 'an add-on without the int8 kernels is out of date too');

  const script =
    `import { getBackend, setBackend } from ${JSON.stringify(selectModuleUrl)};` +
    `const first = getBackend().name; const second = setBackend('native').name; console.log(first, second);`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, SUPRA_BACKEND: 'native', SUPRA_NATIVE_ADDON: missing },
  });
  assert.equal(child.status, 0, child.stderr);
  assert.equal(child.stdout.trim(), 'wasm wasm');
  const warnings = child.stderr.split('\n').filter((l) => l.includes('native backend unavailable'));
  assert.equal(warnings.length, 1, child.stderr);
  assert.ok(warnings[0]!.includes('not built'), warnings[0]);
});

test('by default the native backend is used where the add-on loads, else wasm without a warning', () => {
  const script = `import { getBackend } from ${JSON.stringify(selectModuleUrl)}; console.log(getBackend().name);`;
  const run = (env: Record<string, string>) => {
    const childEnv: Record<string, string | undefined> = { ...process.env, ...env };
    delete childEnv.SUPRA_BACKEND;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: childEnv });
    assert.equal(r.status, 0, r.stderr);
    return r;
  };
  const missing = run({ SUPRA_NATIVE_ADDON: join(tmpdir(), 'supra-no-such-addon', 'supra_native.node') });
  assert.equal(missing.stdout.trim(), 'wasm');
  assert.ok(!missing.stderr.includes('native backend unavailable'), missing.stderr);
  if (native.ok) assert.equal(run({}).stdout.trim(), 'native');
});

test('the install-time build succeeds without OpenBLAS and says why', () => {
  const script = join(packageRoot(), 'scripts', 'build-native.mjs');
  const r = spawnSync(process.execPath, [script], { encoding: 'utf8', env: { ...process.env, SUPRA_NO_OPENBLAS: '1' } });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1, r.stdout);
  assert.match(lines[0]!, /^supra: native backend not built: .*; supra will use the wasm backend$/);
});

test('the optimizer kernels for arrays outside the arena give the wasm kernels\' bits: adamw (with a gradient factor, clearing), sumSquares, scale, embeddingBackward', { skip }, () => {
  const b = backend();
  const heap = b.heapKernels;
  assert.ok(heap, 'the native backend has them');
  const previous = getBackend().name;
  setBackend('native');
  try {
    const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    for (const n of [0, 3, 17, 4099, (1 << 17) + 5]) {
      const next = rng(n + 1);
      const arena = [0, 1, 2, 3].map(() => allocF32(n));
      for (const a of arena) for (let i = 0; i < n; i++) a[i] = next();
      arena[3]!.forEach((x, i) => (arena[3]![i] = Math.abs(x))); // v ≥ 0
      const outside = arena.map((a) => Float32Array.from(a));
      assert.ok(!inArena(outside[0]!));
      // sumSquares: the same float64 sum, chunks and lanes included
      assert.equal(ops.sumSquares(outside[1]!), ops.sumSquares(arena[1]!), `sumSquares n ${n}`);
      ops.scale(arena[1]!, 0.37);
      ops.scale(outside[1]!, 0.37);
      assert.ok(bits(outside[1]!).equals(bits(arena[1]!)), `scale n ${n}`);
      for (const step of [1, 7]) {
        ops.adamw(arena[0]!, arena[1]!, arena[2]!, arena[3]!, 3e-4, 0.9, 0.95, 1e-8, 0.1, step);
        ops.adamw(outside[0]!, outside[1]!, outside[2]!, outside[3]!, 3e-4, 0.9, 0.95, 1e-8, 0.1, step);
        for (let j = 0; j < 4; j++) assert.ok(bits(outside[j]!).equals(bits(arena[j]!)), `adamw n ${n} step ${step} array ${j}`);
      }
      // the trainer's fused pass: the gradient times a factor, then zeroed
      ops.adamw(arena[0]!, arena[1]!, arena[2]!, arena[3]!, 3e-4, 0.9, 0.95, 1e-8, 0.1, 8, n, 0.37, true);
      ops.adamw(outside[0]!, outside[1]!, outside[2]!, outside[3]!, 3e-4, 0.9, 0.95, 1e-8, 0.1, 8, n, 0.37, true);
      for (let j = 0; j < 4; j++) assert.ok(bits(outside[j]!).equals(bits(arena[j]!)), `fused adamw n ${n} array ${j}`);
      assert.ok(outside[1]!.every((x) => Object.is(x, 0)), `fused adamw zeroes the gradient (n ${n})`);
      for (const a of arena) free(a);
    }
    // embeddingBackward with repeated ids
    const V = 50, dim = 37, rows = 300;
    const next = rng(9);
    const ids = Int32Array.from({ length: rows }, (_, i) => (i * 7) % V);
    const dout = allocF32(rows * dim);
    for (let i = 0; i < dout.length; i++) dout[i] = next();
    const tableIn = allocF32(V * dim);
    for (let i = 0; i < tableIn.length; i++) tableIn[i] = next();
    const tableOut = Float32Array.from(tableIn);
    ops.embeddingBackward(ids, dout, tableIn, rows, dim);
    ops.embeddingBackward(ids, dout, tableOut, rows, dim);
    assert.ok(bits(tableOut).equals(bits(tableIn)), 'embeddingBackward');
    assert.throws(() => ops.embeddingBackward(Int32Array.of(V), dout, tableOut, 1, dim), /token id 50 outside the table's 50 rows/);
    free(dout);
    free(tableIn);
  } finally {
    setBackend(previous);
  }
});

// BF16 bits of x rounded to nearest even, as a float (vcvtneps2bf16; NaN kept).
const bf16Scratch = new Float32Array(1);
const bf16Bits = new Uint32Array(bf16Scratch.buffer);
function toBf16(x: number): number {
  bf16Scratch[0] = x;
  const u = bf16Bits[0]!;
  if (!Number.isNaN(bf16Scratch[0]!)) bf16Bits[0] = ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16;
  return bf16Scratch[0]!;
}

test('BF16 products (--matmul-precision bf16): operands rounded to BF16, float32 sums, for every transpose, alpha/beta, leading dim and edge, on every BF16 kernel of the CPU (AMX, vdpbf16ps, rounded operands); AMX and vdpbf16ps give the same bits on 1 and 2 threads, rounded operands sgemm\'s', { skip }, () => {
  const be = backend();
  const kernels = be.info().bf16Kernels;
  assert.equal(kernels[0], 'rounded', 'every CPU has the rounded operands, the slowest');
  assert.equal(be.info().bf16Products, 'off');
  assert.equal(be.setMatmulPrecision!('bf16'), true);
  const before = be.threads;
  try {
    assert.equal(be.info().bf16Products, kernels.at(-1), 'the fastest kernel by default');
    assert.deepEqual(be.fingerprint(1, 'bf16').bf16Products, kernels.at(-1));
    assert.equal(be.fingerprint(1).bf16Products, undefined, 'float32 runs keep their fingerprint');
    assert.equal(be.setBf16Kernel('amx'), kernels.includes('amx'));
    const next = rng(11);
    // [m, n, k]: tiles and k blocks with tails, odd k, transposed A in groups of 48 rows and a tail, more rows,
    // columns and depth than one packed super-block (gemm_bf16.cc)
    const shapes: Array<[number, number, number]> = [
      [37, 101, 77], [64, 64, 64], [13, 45, 2001], [100, 40, 513], [130, 70, 33], [20, 40, 8193], [800, 1600, 19], [1000, 20, 4100],
      // rounded operands: many slabs of k (2048 each), and more rows, then columns, than a block of 4M floats holds
      [64, 64, 70000], [4200, 24, 1030], [24, 4200, 1030],
    ];
    const float32Product = (g: GemmArgs): Float32Array => {
      be.setMatmulPrecision!('f32');
      be.sgemm(g);
      be.setMatmulPrecision!('bf16');
      return g.c;
    };
    for (const kernel of kernels) {
      be.setBf16Kernel(kernel);
      be.setMatmulPrecision!('bf16');
      assert.equal(be.info().bf16Products, kernel);
      for (const [m, n, k] of shapes) {
        for (const [transA, transB] of [[false, true], [false, false], [true, false], [true, true]] as const) {
          if (m * n * k > 2e7 && transA === transB) continue; // the big shapes: the two training layouts with a transpose
          if (m * n * k > 1e8 && kernel !== 'rounded') continue; // the rounded operands' blocks
          const pad = 3; // leading dims past the packed ones
          const lda = (transA ? m : k) + pad, ldb = (transB ? k : n) + pad, ldc = n + pad;
          const a = filled(plain, (transA ? k : m) * lda, next);
          const b = filled(plain, (transB ? n : k) * ldb, next);
          const a16 = a.map(toBf16), b16 = b.map(toBf16);
          for (const [alpha, beta] of [[1, 0], [0.5, 2]]) {
            const c0 = filled(plain, m * ldc, next);
            if (beta === 0) c0.fill(NaN); // beta 0 never reads C
            const g: GemmArgs = { transA, transB, m, n, k, alpha, beta, a, lda, b, ldb, c: Float32Array.from(c0), ldc };
            be.setThreads(1);
            // rounded operands: against sgemm on operands rounded here (the float64 sum would add nothing but time)
            const want = kernel === 'rounded' ? float32Product({ ...g, a: a16, b: b16, c: Float32Array.from(c0) }) : referenceGemm({ ...g, a: a16, b: b16 });
            be.sgemm(g);
            const what = `${kernel}: ${m}x${n}x${k} transA=${transA} transB=${transB} alpha=${alpha} beta=${beta}`;
            for (let i = 0; i < m; i++) {
              for (let j = 0; j < ldc; j++) {
                const idx = i * ldc + j;
                if (j >= n) assert.ok(Object.is(g.c[idx], c0[idx]), `${what}: C[${i}, ${j}] past n written`);
                else if (!(Math.abs(g.c[idx]! - want[idx]!) <= 2e-5 * (8 + Math.abs(want[idx]!)))) assert.fail(`${what}: C[${i}, ${j}] is ${g.c[idx]}, want ${want[idx]}`);
              }
            }
            be.setThreads(Math.max(2, before));
            const two = { ...g, c: Float32Array.from(c0) };
            be.sgemm(two);
            if (kernel !== 'rounded') {
              assert.deepEqual(two.c, g.c, `${what}: the same bits on 2 threads`);
              continue;
            }
            for (let i = 0; i < m * ldc; i++) {
              if (i % ldc < n && !(Math.abs(two.c[i]! - g.c[i]!) <= 2e-5 * (8 + Math.abs(g.c[i]!)))) assert.fail(`${what}: 2 threads: C[${i}] is ${two.c[i]}, 1 thread ${g.c[i]}`);
            }
            // one block: sgemm's own bits (OpenBLAS's AVX2 kernels may round a product they split over threads
            // differently, so only the same thread count compares)
            if (m * k <= 4 << 20 && n * k <= 4 << 20 && k <= 2048) assert.deepEqual(g.c, want, `${what}: sgemm's bits on the rounded operands`);
          }
        }
      }
    }
    // off again: float32 products, which differ from the BF16 ones
    be.setMatmulPrecision!('f32');
    const [m, n, k] = [64, 64, 64];
    const a = filled(plain, m * k, next), b = filled(plain, k * n, next);
    const c32 = new Float32Array(m * n), c16 = new Float32Array(m * n);
    be.sgemm({ transA: false, transB: true, m, n, k, a, b, c: c32 });
    assertClose(c32, referenceGemm({ transA: false, transB: true, m, n, k, a, b, c: new Float32Array(m * n) }), 'float32 after bf16');
    const selected = getBackend().name;
    setBackend('native');
    try {
      ops.withMatmulPrecision('bf16', () => be.sgemm({ transA: false, transB: true, m, n, k, a, b, c: c16 }));
      assert.notDeepEqual(c16, c32);
      be.sgemm({ transA: false, transB: true, m, n, k, a, b, c: c16 });
      assert.deepEqual(c16, c32, 'withMatmulPrecision sets float32 back');
    } finally {
      setBackend(selected);
    }
  } finally {
    be.setMatmulPrecision!('f32');
    be.setBf16Kernel(kernels.at(-1)!);
    be.setThreads(before);
  }
});
