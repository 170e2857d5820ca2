// The kernels added for speed: the unpacked small-m sgemm path (decoding), the head-layout moves, the
// per-head decay scalings and the fused recurrent linear-attention step, each against plain JS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ops from '../src/core/ops.js';
import * as ref from '../test/helpers/reference-ops.js';
import { allocF32 } from '../src/core/memory.js';
import { sgemmWasm } from '../src/core/wasm/backend.js';
import { getPool, setThreads } from '../src/core/wasm/runtime.js';
import type { GemmArgs } from '../src/core/backend.js';
import { maxAbs, maxAbsDiff } from './helpers/fixture.js';

let seed = 987654321;
function rand(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 4294967296 - 0.5;
}
function randArr(n: number, arena = true): Float32Array {
  const a = arena ? allocF32(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rand();
  return a;
}
function close(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  const d = maxAbsDiff(a, b);
  assert.ok(d <= tol * Math.max(1, maxAbs(b)), `${what}: max abs diff ${d}`);
}

// ---------------------------------------------------------------- small-m sgemm

function gemmCase(g: Omit<GemmArgs, 'a' | 'b' | 'c'>): void {
  const lda = g.lda ?? (g.transA ? g.m : g.k), ldb = g.ldb ?? (g.transB ? g.k : g.n), ldc = g.ldc ?? g.n;
  const batch = g.batch ?? 1;
  const a = randArr((batch - 1) * (g.strideA ?? 0) + (g.transA ? g.k : g.m) * lda);
  const b = randArr((batch - 1) * (g.strideB ?? 0) + (g.transB ? g.n : g.k) * ldb);
  const c = randArr((batch - 1) * (g.strideC ?? 0) + g.m * ldc);
  if ((g.beta ?? 0) === 0) c.fill(NaN); // beta = 0 must overwrite
  const cRef = Float32Array.from(c);
  if ((g.beta ?? 0) === 0) cRef.fill(0);
  sgemmWasm({ ...g, a, b, c });
  ref.sgemmRef({ ...g, a, b, c: cRef });
  // entries outside the products (ldc padding) stay NaN on both sides only when beta = 0; compare the products
  for (let bi = 0; bi < batch; bi++) {
    for (let i = 0; i < g.m; i++) {
      const o = bi * (g.strideC ?? 0) + i * ldc;
      close(c.subarray(o, o + g.n), cRef.subarray(o, o + g.n), 3e-6 * Math.sqrt(g.k + 1), `sgemm ${JSON.stringify(g)} row ${i}`);
    }
  }
}

test('sgemm with m ≤ 4 (the unpacked path) matches the reference for every layout', () => {
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      for (const m of [1, 2, 3, 4]) {
        gemmCase({ transA, transB, m, n: 37, k: 53 }); // k neither a multiple of 16 nor of 4
        gemmCase({ transA, transB, m, n: 16, k: 64, alpha: -0.5, beta: 0.75 });
        gemmCase({ transA, transB, m, n: 5, k: 3 });
        gemmCase({ transA, transB, m, n: 21, k: 19, lda: 70, ldb: 71, ldc: 33, beta: 1 });
      }
      gemmCase({ transA, transB, m: 1, n: 40, k: 24, batch: 6, strideA: 30, strideB: 1000, strideC: 41, beta: 1 });
      gemmCase({ transA, transB, m: 2, n: 24, k: 64, batch: 3, strideA: 0, strideB: 24 * 64, strideC: 48 });
    }
  }
  gemmCase({ transA: false, transB: true, m: 1, n: 4096, k: 256 }); // an lm_head step, split across threads
  gemmCase({ transA: false, transB: true, m: 4, n: 8, k: 0, beta: 0.5 }); // k = 0: C = beta·C
});

test('sgemm with m ≤ 4 gives the same bits on 1 and 2 threads', () => {
  const before = getPool().threads;
  try {
    const m = 1, n = 4096, k = 260;
    const a = randArr(m * k), b = randArr(n * k);
    const c1 = allocF32(m * n), c2 = allocF32(m * n);
    setThreads(1);
    sgemmWasm({ transA: false, transB: true, m, n, k, a, b, c: c1 });
    setThreads(2);
    for (let r = 0; r < 3; r++) sgemmWasm({ transA: false, transB: true, m, n, k, a, b, c: c2 });
    assert.deepEqual(c2, c1);
  } finally {
    setThreads(before);
  }
});

// ---------------------------------------------------------------- layouts

function toHeadMajorRef(src: Float32Array, B: number, T: number, H: number, rep: number, D: number): Float32Array {
  const out = new Float32Array(B * H * T * D);
  const Hs = H / rep;
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let t = 0; t < T; t++) {
    for (let i = 0; i < D; i++) out[((b * H + h) * T + t) * D + i] = src[((b * T + t) * Hs + Math.floor(h / rep)) * D + i]!;
  }
  return out;
}

function toTokenMajorRef(src: Float32Array, B: number, T: number, H: number, rep: number, D: number): Float32Array {
  const Hs = H / rep;
  const out = new Float32Array(B * T * Hs * D);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let g = 0; g < Hs; g++) {
    for (let i = 0; i < D; i++) {
      let s = 0;
      for (let r = 0; r < rep; r++) s = Math.fround(s + src[((b * H + g * rep + r) * T + t) * D + i]!);
      out[((b * T + t) * Hs + g) * D + i] = s;
    }
  }
  return out;
}

test('toHeadMajor / toTokenMajor move heads (with repeat_kv and its sum) exactly', () => {
  for (const [B, T, H, rep, D] of [[2, 3, 4, 1, 5], [2, 7, 6, 3, 8], [3, 1, 4, 2, 6], [1, 300, 4, 1, 64]] as const) {
    const src = randArr((B * T * H * D) / rep);
    const dst = allocF32(B * H * T * D);
    ops.toHeadMajor(src, dst, B, T, H, rep, D);
    assert.deepEqual(dst, toHeadMajorRef(src, B, T, H, rep, D), `toHeadMajor ${[B, T, H, rep, D]}`);
    const back = allocF32((B * T * H * D) / rep);
    ops.toTokenMajor(dst, back, B, T, H, rep, D);
    assert.deepEqual(back, toTokenMajorRef(dst, B, T, H, rep, D), `toTokenMajor ${[B, T, H, rep, D]}`);
  }
  assert.throws(() => ops.toHeadMajor(allocF32(8), allocF32(8), 1, 1, 3, 2, 4), /not a multiple of rep/);
});

test('mulBlocks, mulRows and gainGrad match plain JS', () => {
  const blocks = 5, size = 37;
  const x = randArr(blocks * size), pattern = randArr(size);
  const want = Float32Array.from(x, (v, i) => Math.fround(v * pattern[i % size]!));
  ops.mulBlocks(x, pattern, blocks, size);
  assert.deepEqual(x, want);
  const rows = 9, cols = 13;
  const a = randArr(rows * cols), w = randArr(cols), y = allocF32(rows * cols);
  ops.mulRows(a, w, y, rows, cols);
  assert.deepEqual(y, Float32Array.from(a, (v, i) => Math.fround(v * w[i % cols]!)));
  const dy = randArr(rows * cols), dw = randArr(cols);
  const dwRef = Float64Array.from(dw);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) dwRef[c]! += dy[r * cols + c]! * a[r * cols + c]!;
  ops.gainGrad(dy, a, dw, rows, cols);
  close(dw, dwRef, 1e-6, 'gainGrad');
});

// ---------------------------------------------------------------- decay scalings and the recurrent step

function powersTable(H: number, stride: number): Float64Array {
  const p = new Float64Array(H * stride); // on the JS heap: the kernels stage it
  for (let h = 0; h < H; h++) for (let n = 0; n < stride; n++) p[h * stride + n] = Math.exp(-0.05 * (h + 1) * n);
  return p;
}

test('scaleRowsByDecay and decayBlocks scale by γ_h^n', () => {
  const U = 6, H = 3, rows = 5, cols = 7, srcStride = 50, stride = 9;
  const powers = powersTable(H, stride);
  const src = randArr((U - 1) * srcStride + rows * cols);
  for (const [mult, from] of [[1, -1], [0.25, rows], [0.5, rows - 1]] as const) {
    const dst = allocF32(U * rows * cols);
    ops.scaleRowsByDecay(src, srcStride, dst, U, H, rows, cols, powers, stride, mult, from);
    const want = new Float64Array(U * rows * cols);
    for (let u = 0; u < U; u++) for (let i = 0; i < rows; i++) for (let c = 0; c < cols; c++) {
      const f = mult * powers[(u % H) * stride + (from >= 0 ? from - i : i)]!;
      want[(u * rows + i) * cols + c] = src[u * srcStride + i * cols + c]! * f;
    }
    close(dst, want, 1e-6, `scaleRowsByDecay mult ${mult} from ${from}`);
  }
  assert.throws(() => ops.scaleRowsByDecay(src, srcStride, allocF32(U * rows * cols), U, H, rows, cols, powers, stride, 1, 2), /negative exponents/);
  const x = randArr(U * 11);
  const want = Float32Array.from(x, (v, i) => Math.fround(v * Math.fround(powers[(Math.floor(i / 11) % H) * stride + 4]!)));
  ops.decayBlocks(x, U, H, 11, powers, stride, 4);
  assert.deepEqual(x, want);
});

test('decayChunkRows gives every chunk\'s rows what scaleRowsByDecay gives that chunk, in one call', () => {
  const H = 3, U = 6, cols = 5, stride = 9;
  const powers = powersTable(H, stride);
  for (const [tokens, chunk] of [[17, 4], [8, 8], [5, 8], [12, 1]] as const) {
    const src = randArr(U * tokens * cols);
    for (const [mult, fromEnd] of [[1, false], [0.25, true]] as const) {
      const dst = allocF32(U * tokens * cols);
      ops.decayChunkRows(src, dst, U, H, tokens, cols, chunk, powers, stride, mult, fromEnd);
      for (let s = 0; s < tokens; s += chunk) {
        const L = Math.min(chunk, tokens - s);
        const want = allocF32(U * L * cols);
        ops.scaleRowsByDecay(src.subarray(s * cols), tokens * cols, want, U, H, L, cols, powers, stride, mult, fromEnd ? L : -1);
        for (let u = 0; u < U; u++) {
          const got = dst.subarray((u * tokens + s) * cols, (u * tokens + s + L) * cols);
          assert.deepEqual(got, want.subarray(u * L * cols, (u + 1) * L * cols), `T ${tokens} chunk ${chunk} fromEnd ${fromEnd}: head ${u}, chunk at ${s}`);
        }
      }
    }
  }
  assert.throws(() => ops.decayChunkRows(randArr(U * 4 * cols), allocF32(U * 4 * cols), U, H, 4, cols, 0, powers, stride, 1, false), /chunk 0/);
});

test('linearAttentionStep follows the recurrence S += scale·kᵀv, o = q·S, S ← γ·S', () => {
  const U = 4, H = 2, T = 5, Dk = 6, Dv = 21; // Dv: one 16-column block and a 5-column tail
  const scale = 1 / Math.sqrt(Dk);
  const powers = powersTable(H, 3);
  const q = randArr(U * T * Dk), k = randArr(U * T * Dk), v = randArr(U * T * Dv);
  const state = randArr(U * Dk * Dv);
  const S = Float64Array.from(state);
  const o = allocF32(U * T * Dv).fill(NaN);
  ops.linearAttentionStep(q, k, v, o, state, U, H, T, Dk, Dv, scale, powers, 3);
  const oRef = new Float64Array(U * T * Dv);
  for (let u = 0; u < U; u++) {
    const g = powers[(u % H) * 3 + 1]!;
    for (let t = 0; t < T; t++) {
      const r = u * T + t;
      for (let p = 0; p < Dk; p++) for (let j = 0; j < Dv; j++) S[(u * Dk + p) * Dv + j]! += scale * k[r * Dk + p]! * v[r * Dv + j]!;
      for (let j = 0; j < Dv; j++) {
        let s = 0;
        for (let p = 0; p < Dk; p++) s += q[r * Dk + p]! * S[(u * Dk + p) * Dv + j]!;
        oRef[r * Dv + j] = s;
      }
      for (let i = u * Dk * Dv; i < (u + 1) * Dk * Dv; i++) S[i]! *= g;
    }
  }
  close(o, oRef, 1e-5, 'o');
  close(state, S, 1e-5, 'state');
});
