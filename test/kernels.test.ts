// The wasm kernels (src/core/ops.ts over kernels.wasm) against the plain-JS reference on odd sizes,
// finite-difference checks of every backward in float64, the SIMD exp, and the worker pool.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ops from '../src/core/ops.js';
import * as ref from '../test/helpers/reference-ops.js';
import { allocF32, allocI32, free, inArena } from '../src/core/memory.js';
import { sgemmWasm } from '../src/core/wasm/backend.js';
import { getPool, kernels, setThreads } from '../src/core/wasm/runtime.js';
import type { GemmArgs } from '../src/core/backend.js';
import { maxAbs, maxAbsDiff } from './helpers/fixture.js';
import { centralDifferences } from './helpers/finite-diff.js';

// ---------------------------------------------------------------- helpers

let seed = 12345;
function rand(): number {
  // xorshift32, deterministic across runs
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 4294967296;
}
function randn(): number {
  return Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
}
/** n normal values, in the arena or on the JS heap. */
function randArr(n: number, arena = true, scale = 1): Float32Array {
  const a = arena ? allocF32(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = randn() * scale;
  return a;
}
function copy(a: Float32Array, arena = inArena(a)): Float32Array {
  const b = arena ? allocF32(a.length) : new Float32Array(a.length);
  b.set(a);
  return b;
}
/** |a − b| <= tol·max(1, max|b|) everywhere */
function close(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  const d = maxAbsDiff(a, b);
  const scale = Math.max(1, maxAbs(b));
  assert.ok(d <= tol * scale, `${what}: max |diff| ${d.toExponential(2)} > ${tol}·${scale.toFixed(3)}`);
}

/** Relative error of an analytic gradient against a numeric one: max|g − n| / max|n|. */
function gradError(analytic: ArrayLike<number>, numeric: ArrayLike<number>): number {
  return maxAbsDiff(analytic, numeric) / Math.max(1e-12, maxAbs(numeric));
}
const GRAD_TOL = 2e-4; // float32 kernels vs float64 central differences; a wrong term gives > 1e-1

/**
 * d/dx of L = Σ gy ⊙ f(x) by central differences in float64; f writes its output into y.
 */
function numericGrad(x: Float64Array, gy: Float64Array, f: (x: Float64Array, y: Float64Array) => void): Float64Array {
  const y = new Float64Array(gy.length);
  const loss = (): number => {
    f(x, y);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += gy[i]! * y[i]!;
    return s;
  };
  return centralDifferences(x, loss, 1e-5);
}
const f64 = (a: Float32Array): Float64Array => Float64Array.from(a);

// ---------------------------------------------------------------- exp

test('SIMD exp is within 2 ulp of Math.exp, flushes below the float range and keeps NaN', () => {
  const n = 20003;
  const x = allocF32(n);
  const y = allocF32(n);
  for (let i = 0; i < n; i++) x[i] = -87 + (175 * i) / (n - 1); // [-87, 88]
  kernels().expInto(x.byteOffset, y.byteOffset, n);
  let worst = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp(x[i]!);
    const ulp = Math.pow(2, Math.floor(Math.log2(e)) - 23);
    worst = Math.max(worst, Math.abs(y[i]! - e) / ulp);
  }
  assert.ok(worst <= 2, `exp error ${worst.toFixed(2)} ulp`);
  x.set([-Infinity, -100, NaN, 0, 1, -0.5, 2.5]);
  kernels().expInto(x.byteOffset, y.byteOffset, 7);
  assert.equal(y[0], 0);
  assert.equal(y[1], 0);
  assert.ok(Number.isNaN(y[2]));
  assert.equal(y[3], 1);
  assert.ok(Math.abs(y[4]! - Math.E) < 3e-7);
  free(x);
  free(y);
});

// ---------------------------------------------------------------- sgemm

function gemmCase(g: Omit<GemmArgs, 'a' | 'b' | 'c'>, arena: boolean): void {
  const { lda, ldb, ldc } = { lda: g.lda ?? (g.transA ? g.m : g.k), ldb: g.ldb ?? (g.transB ? g.k : g.n), ldc: g.ldc ?? g.n };
  const batch = g.batch ?? 1;
  const aLen = (batch - 1) * (g.strideA ?? 0) + (g.transA ? g.k : g.m) * lda;
  const bLen = (batch - 1) * (g.strideB ?? 0) + (g.transB ? g.n : g.k) * ldb;
  const cLen = (batch - 1) * (g.strideC ?? 0) + g.m * ldc;
  const a = randArr(aLen, arena);
  const b = randArr(bLen, arena);
  const c = randArr(cLen, arena);
  if ((g.beta ?? 0) === 0) {
    // beta = 0 must overwrite, not scale garbage: poison the entries the product writes
    for (let bi = 0; bi < batch; bi++) {
      for (let i = 0; i < g.m; i++) c.fill(NaN, bi * (g.strideC ?? 0) + i * ldc, bi * (g.strideC ?? 0) + i * ldc + g.n);
    }
  }
  const cRef = Float32Array.from(c);
  sgemmWasm({ ...g, a, b, c });
  ref.sgemmRef({ ...g, a, b, c: cRef });
  const what = `sgemm ${JSON.stringify(g)} ${arena ? 'arena' : 'heap'}`;
  close(c, cRef, 2e-5 * Math.sqrt(g.k + 1), what);
}

test('sgemm matches the reference: transposes, alpha/beta, leading dims, odd sizes', () => {
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      gemmCase({ transA, transB, m: 13, n: 19, k: 23 }, true);
      gemmCase({ transA, transB, m: 1, n: 1, k: 1 }, true);
      gemmCase({ transA, transB, m: 37, n: 70, k: 129, alpha: 0.5, beta: 1 }, true);
      gemmCase({ transA, transB, m: 5, n: 9, k: 7, alpha: -1.5, beta: 0.25 }, false);
      gemmCase({ transA, transB, m: 10, n: 11, k: 12, lda: 31, ldb: 29, ldc: 17, beta: 1 }, true);
      // crosses the K (512) and M (64) blocks; 2·m·n·k is above the threading threshold
      gemmCase({ transA, transB, m: 133, n: 75, k: 530, beta: 1 }, true);
    }
  }
  gemmCase({ transA: false, transB: true, m: 3, n: 1030, k: 5 }, true); // crosses the N block (512) twice
  gemmCase({ transA: false, transB: false, m: 4, n: 8, k: 0, beta: 0.5 }, true); // k = 0: C = beta·C
  gemmCase({ transA: true, transB: false, m: 6, n: 9, k: 5, alpha: 0, beta: 0.5 }, true); // alpha = 0: C = beta·C
});

test('sgemm batched with strides (including a shared, stride-0 operand)', () => {
  for (const [transA, transB] of [[false, false], [false, true], [true, false], [true, true]] as const) {
    gemmCase({ transA, transB, m: 9, n: 17, k: 6, batch: 5, strideA: 60, strideB: 110, strideC: 160 }, true);
    gemmCase({ transA, transB, m: 33, n: 16, k: 33, batch: 8, strideA: 33 * 33, strideB: 0, strideC: 33 * 16, beta: 1 }, false);
    gemmCase({ transA, transB, m: 64, n: 72, k: 40, batch: 3, strideA: 64 * 40, strideB: 72 * 40, strideC: 64 * 72 }, true);
  }
});

test('sgemm rejects short arrays and bad leading dimensions with a clear error', () => {
  const a = allocF32(10);
  const b = allocF32(12);
  const c = allocF32(5);
  assert.throws(() => sgemmWasm({ transA: false, transB: false, m: 2, n: 3, k: 4, a, b, c }), /sgemm C has 5 elements, the call needs 6/);
  assert.throws(() => sgemmWasm({ transA: false, transB: false, m: 2, n: 3, k: 4, a, b: allocF32(12), c: allocF32(6), lda: 2 }), /leading dimensions/);
  assert.throws(() => sgemmWasm({ transA: false, transB: false, m: 2, n: 3, k: 5, a, b, c: allocF32(6) }), /sgemm B has 12 elements, the call needs 15/);
});

test('linear and linearBackward match the reference and finite differences', () => {
  const rows = 7, inF = 13, outF = 6;
  const x = randArr(rows * inF), w = randArr(outF * inF), b = randArr(outF);
  const y = allocF32(rows * outF), yRef = new Float32Array(rows * outF);
  ops.linear(x, w, b, y, rows, inF, outF);
  ref.linear(x, w, b, yRef, rows, inF, outF);
  close(y, yRef, 1e-5, 'linear');
  const dy = randArr(rows * outF);
  const dx = allocF32(rows * inF), dw = randArr(outF * inF), db = randArr(outF);
  const dwRef = Float32Array.from(dw), dbRef = Float32Array.from(db), dxRef = new Float32Array(rows * inF);
  ops.linearBackward(dy, x, w, dx, dw, db, rows, inF, outF);
  ref.linearBackward(dy, x, w, dxRef, dwRef, dbRef, rows, inF, outF);
  close(dx, dxRef, 1e-5, 'linear dx');
  close(dw, dwRef, 1e-5, 'linear dW (accumulated)');
  close(db, dbRef, 1e-5, 'linear db (accumulated)');
  // gradients against central differences of the float64 reference
  const gy = f64(dy);
  const dx0 = allocF32(rows * inF), dw0 = allocF32(outF * inF), db0 = allocF32(outF);
  ops.linearBackward(dy, x, w, dx0, dw0, db0, rows, inF, outF);
  const W = f64(w), X = f64(x), B = f64(b);
  assert.ok(gradError(dx0, numericGrad(X, gy, (xx, yy) => ref.linear(xx, W, B, yy, rows, inF, outF))) < GRAD_TOL, 'linear dx');
  assert.ok(gradError(dw0, numericGrad(W, gy, (ww, yy) => ref.linear(X, ww, B, yy, rows, inF, outF))) < GRAD_TOL, 'linear dW');
  assert.ok(gradError(db0, numericGrad(B, gy, (bb, yy) => ref.linear(X, W, bb, yy, rows, inF, outF))) < GRAD_TOL, 'linear db');
});

// ---------------------------------------------------------------- elementwise

test('elementwise kernels match the reference on odd lengths, arena and heap arrays', () => {
  for (const n of [1, 7, 1001, 70001]) {
    for (const arena of [true, false]) {
      const a = randArr(n, arena), b = randArr(n, arena);
      const out = arena ? allocF32(n) : new Float32Array(n), outRef = new Float32Array(n);
      ops.add(a, b, out);
      ref.add(a, b, outRef);
      assert.deepEqual(out, outRef, 'add');
      ops.mul(a, b, out);
      ref.mul(a, b, outRef);
      assert.deepEqual(out, outRef, 'mul');
      const y = copy(b), yRef = Float32Array.from(b);
      ops.axpy(0.37, a, y);
      ref.axpy(0.37, a, yRef);
      close(y, yRef, 1e-6, 'axpy');
      ops.scale(y, -1.25);
      ref.scale(yRef, -1.25);
      close(y, yRef, 1e-6, 'scale');
      ops.relu(a, out);
      ref.relu(a, outRef);
      assert.deepEqual(out, outRef, 'relu');
      ops.reluBackward(b, outRef, out);
      const dxRef = new Float32Array(n);
      ref.reluBackward(b, outRef, dxRef);
      assert.deepEqual(out, dxRef, 'reluBackward');
      ops.swiglu(a, b, out);
      ref.swiglu(a, b, outRef);
      close(out, outRef, 1e-6, 'swiglu');
      const d = randArr(n, arena);
      const dg = arena ? allocF32(n) : new Float32Array(n), du = arena ? allocF32(n) : new Float32Array(n);
      const dgRef = new Float32Array(n), duRef = new Float32Array(n);
      ops.swigluBackward(d, a, b, dg, du);
      ref.swigluBackward(d, a, b, dgRef, duRef);
      close(dg, dgRef, 1e-6, 'swigluBackward dgate');
      close(du, duRef, 1e-6, 'swigluBackward dup');
      // with act it also writes swiglu's output, bit for bit, and the same gradients
      const act = arena ? allocF32(n) : new Float32Array(n), dg2 = new Float32Array(n), du2 = new Float32Array(n);
      ops.swigluBackward(d, a, b, dg2, du2, n, act);
      ops.swiglu(a, b, out);
      assert.deepEqual(act, out, 'swigluBackward act = swiglu');
      assert.deepEqual([dg2, du2], [dg, du], 'swigluBackward with act: same gradients');
    }
  }
  // explicit n shorter than the arrays only touches the first n
  const a = randArr(10), out = allocF32(10);
  out.fill(9);
  ops.add(a, a, out, 5);
  assert.equal(out[5], 9);
  assert.throws(() => ops.add(a, allocF32(3), out, 5), /add: b has 3 elements, the call needs 5/);
});

test('addBias and sumRowsInto match the reference', () => {
  for (const [rows, cols] of [[3, 5], [17, 33], [300, 257]] as const) {
    const y = randArr(rows * cols), bias = randArr(cols);
    const yRef = Float32Array.from(y);
    ops.addBias(y, bias, rows, cols);
    ref.addBias(yRef, bias, rows, cols);
    assert.deepEqual(y, yRef, 'addBias');
    const db = randArr(cols, false), dbRef = Float32Array.from(db);
    ops.sumRowsInto(db, y, rows, cols);
    ref.sumRowsInto(dbRef, y, rows, cols);
    close(db, dbRef, 1e-5, 'sumRowsInto');
  }
});

test('relu and swiglu backward match finite differences', () => {
  const n = 23;
  const x = randArr(n), up = randArr(n), gy = randArr(n);
  for (let i = 0; i < n; i++) if (Math.abs(x[i]!) < 0.05) x[i] = 0.3; // keep relu away from its kink
  const y = allocF32(n), dx = allocF32(n);
  ops.relu(x, y);
  ops.reluBackward(gy, y, dx);
  assert.ok(gradError(dx, numericGrad(f64(x), f64(gy), (xx, yy) => ref.relu(xx, yy))) < GRAD_TOL, 'relu');
  const dgate = allocF32(n), dup = allocF32(n);
  ops.swigluBackward(gy, x, up, dgate, dup);
  const U = f64(up), X = f64(x);
  assert.ok(gradError(dgate, numericGrad(f64(x), f64(gy), (gg, yy) => ref.swiglu(gg, U, yy))) < GRAD_TOL, 'swiglu dgate');
  assert.ok(gradError(dup, numericGrad(f64(up), f64(gy), (uu, yy) => ref.swiglu(X, uu, yy))) < GRAD_TOL, 'swiglu dup');
});

test('the gradient check fails on a wrong formula', () => {
  // swiglu dgate without the σ' term: d·up·σ(g) instead of d·up·σ(g)·(1 + g(1 − σ(g)))
  const n = 23;
  const g = randArr(n), up = randArr(n), gy = randArr(n);
  const wrong = new Float32Array(n);
  for (let i = 0; i < n; i++) wrong[i] = (gy[i]! * up[i]!) / (1 + Math.exp(-g[i]!));
  const U = f64(up);
  assert.ok(gradError(wrong, numericGrad(f64(g), f64(gy), (gg, yy) => ref.swiglu(gg, U, yy))) > 100 * GRAD_TOL);
  // rmsnorm dx with the projection term negated
  const rows = 3, dim = 9;
  const x = randArr(rows * dim), w = randArr(dim), dout = randArr(rows * dim);
  const out = allocF32(rows * dim), rstd = allocF32(rows), dx = allocF32(rows * dim);
  ops.rmsnorm(x, w, out, rstd, rows, dim, 1e-5);
  ops.rmsnormBackward(dout, x, w, rstd, dx, null, rows, dim);
  const flipped = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    const s = rstd[r]!;
    let dot = 0;
    for (let i = 0; i < dim; i++) dot += dout[r * dim + i]! * w[i]! * x[r * dim + i]!;
    for (let i = 0; i < dim; i++) flipped[r * dim + i] = dout[r * dim + i]! * w[i]! * s + ((dot * s ** 3) / dim) * x[r * dim + i]!;
  }
  const W = f64(w);
  const numeric = numericGrad(f64(x), f64(dout), (xx, yy) => ref.rmsnorm(xx, W, yy, new Float64Array(rows), rows, dim, 1e-5));
  assert.ok(gradError(dx, numeric) < GRAD_TOL, 'the right formula passes');
  assert.ok(gradError(flipped, numeric) > 100 * GRAD_TOL, 'the flipped one fails');
});

// ---------------------------------------------------------------- norms

test('rmsnorm forward/backward match the reference and finite differences', () => {
  for (const [rows, dim] of [[1, 1], [5, 7], [9, 64], [130, 257]] as const) {
    for (const withW of [true, false]) {
      const x = randArr(rows * dim), w = withW ? randArr(dim) : null;
      const out = allocF32(rows * dim), rstd = allocF32(rows);
      const outRef = new Float32Array(rows * dim), rstdRef = new Float32Array(rows);
      ops.rmsnorm(x, w, out, rstd, rows, dim, 1e-5);
      ref.rmsnorm(x, w, outRef, rstdRef, rows, dim, 1e-5);
      close(out, outRef, 2e-6, 'rmsnorm out');
      close(rstd, rstdRef, 2e-6, 'rmsnorm rstd');
      const dout = randArr(rows * dim);
      for (const acc of [false, true]) {
        const dx = randArr(rows * dim), dxRef = Float32Array.from(dx);
        const dw = w ? randArr(dim) : null, dwRef = dw ? Float32Array.from(dw) : null;
        ops.rmsnormBackward(dout, x, w, rstd, dx, dw, rows, dim, acc);
        ref.rmsnormBackward(dout, x, w, rstdRef, dxRef, dwRef, rows, dim, acc);
        close(dx, dxRef, 1e-5, `rmsnorm dx acc=${acc}`);
        if (dw) close(dw, dwRef!, 1e-5, 'rmsnorm dw');
      }
    }
  }
  const rows = 4, dim = 11;
  const x = randArr(rows * dim), w = randArr(dim), gy = randArr(rows * dim);
  const out = allocF32(rows * dim), rstd = allocF32(rows), dx = allocF32(rows * dim), dw = allocF32(dim);
  ops.rmsnorm(x, w, out, rstd, rows, dim, 1e-5);
  ops.rmsnormBackward(gy, x, w, rstd, dx, dw, rows, dim);
  const X = f64(x), W = f64(w), R = new Float64Array(rows);
  assert.ok(gradError(dx, numericGrad(f64(x), f64(gy), (xx, yy) => ref.rmsnorm(xx, W, yy, R, rows, dim, 1e-5))) < GRAD_TOL, 'rmsnorm dx');
  assert.ok(gradError(dw, numericGrad(f64(w), f64(gy), (ww, yy) => ref.rmsnorm(X, ww, yy, R, rows, dim, 1e-5))) < GRAD_TOL, 'rmsnorm dw');
});

test('groupnorm forward/backward match the reference and finite differences', () => {
  for (const [rows, groups, size] of [[1, 1, 3], [3, 4, 16], [7, 3, 13], [200, 4, 64]] as const) {
    const n = rows * groups * size;
    const x = randArr(n, true, 3);
    for (let i = 0; i < n; i++) x[i]! += 5; // an offset, so the mean matters
    const out = allocF32(n), rstd = allocF32(rows * groups);
    const outRef = new Float32Array(n), rstdRef = new Float32Array(rows * groups);
    ops.groupnorm(x, out, rstd, rows, groups, size, 1e-5);
    ref.groupnorm(x, outRef, rstdRef, rows, groups, size, 1e-5);
    close(out, outRef, 2e-6, 'groupnorm out');
    close(rstd, rstdRef, 2e-6, 'groupnorm rstd');
    const dout = randArr(n), dx = allocF32(n), dxRef = new Float32Array(n);
    ops.groupnormBackward(dout, out, rstd, dx, rows, groups, size);
    ref.groupnormBackward(dout, outRef, rstdRef, dxRef, rows, groups, size);
    close(dx, dxRef, 1e-5, 'groupnorm dx');
  }
  const rows = 2, groups = 3, size = 5, n = rows * groups * size;
  const x = randArr(n), gy = randArr(n), out = allocF32(n), rstd = allocF32(rows * groups), dx = allocF32(n);
  ops.groupnorm(x, out, rstd, rows, groups, size, 1e-5);
  ops.groupnormBackward(gy, out, rstd, dx, rows, groups, size);
  const R = new Float64Array(rows * groups);
  assert.ok(gradError(dx, numericGrad(f64(x), f64(gy), (xx, yy) => ref.groupnorm(xx, yy, R, rows, groups, size, 1e-5))) < GRAD_TOL, 'groupnorm dx');
});

// ---------------------------------------------------------------- rope

test('rope matches the reference, and inverse = backward (finite differences)', () => {
  for (const [batch, tokens, heads, dim, start] of [[1, 1, 1, 2, 0], [2, 5, 3, 10, 4], [2, 33, 4, 16, 0], [1, 9, 2, 64, 100]] as const) {
    const { cos, sin } = ops.ropeTables(start + tokens, dim, 10000);
    const x = randArr(batch * tokens * heads * dim), xRef = Float32Array.from(x);
    ops.rope(x, cos, sin, batch, tokens, heads, dim, start);
    ref.rope(xRef, cos, sin, batch, tokens, heads, dim, start);
    close(x, xRef, 1e-6, 'rope');
    ops.rope(x, cos, sin, batch, tokens, heads, dim, start, true);
    ref.rope(xRef, cos, sin, batch, tokens, heads, dim, start, true);
    close(x, xRef, 1e-6, 'rope inverse');
  }
  const [batch, tokens, heads, dim, start] = [2, 3, 2, 6, 1];
  const { cos, sin } = ops.ropeTables(start + tokens, dim, 10000);
  const n = batch * tokens * heads * dim;
  const gy = randArr(n), g = copy(gy);
  ops.rope(g, cos, sin, batch, tokens, heads, dim, start, true);
  const C = f64(cos), S = f64(sin);
  const numeric = numericGrad(f64(randArr(n)), f64(gy), (xx, yy) => {
    yy.set(xx);
    ref.rope(yy, C, S, batch, tokens, heads, dim, start);
  });
  assert.ok(gradError(g, numeric) < GRAD_TOL, 'rope backward');
  assert.throws(() => ops.rope(allocF32(n), cos, sin, batch, tokens + 5, heads, dim, start), /rope: (x|cos table)/);
});

// ---------------------------------------------------------------- softmax and losses

test('softmax (plain, causal, with offset) and its backward match the reference', () => {
  for (const [rows, cols, causal, tq, offset] of [
    [1, 1, false, 1, 0], [5, 7, false, 5, 0], [6, 6, true, 6, 0], [8, 13, true, 4, 9], [66, 33, true, 33, 0], [40, 1001, false, 40, 0],
  ] as const) {
    const x = randArr(rows * cols, true, 4), xRef = Float32Array.from(x);
    ops.softmax(x, rows, cols, causal, tq, offset);
    ref.softmax(xRef, rows, cols, causal, tq, offset);
    close(x, xRef, 1e-6, `softmax ${rows}x${cols} causal=${causal}`);
    const dy = randArr(rows * cols), dx = allocF32(rows * cols), dxRef = new Float32Array(rows * cols);
    ops.softmaxBackward(dy, x, dx, rows, cols);
    ref.softmaxBackward(dy, xRef, dxRef, rows, cols);
    close(dx, dxRef, 1e-6, 'softmaxBackward');
  }
  // -inf scores (masks) give exactly 0
  const x = allocF32(4);
  x.set([0, -Infinity, 1, -Infinity]);
  ops.softmax(x, 1, 4);
  assert.equal(x[1], 0);
  assert.ok(Math.abs(x[0]! + x[2]! - 1) < 1e-6);
  // backward against finite differences
  const rows = 3, cols = 7;
  const s = randArr(rows * cols), y = copy(s), gy = randArr(rows * cols), dx = allocF32(rows * cols);
  ops.softmax(y, rows, cols);
  ops.softmaxBackward(gy, y, dx, rows, cols);
  const numeric = numericGrad(f64(s), f64(gy), (xx, yy) => {
    yy.set(xx);
    ref.softmax(yy, rows, cols);
  });
  assert.ok(gradError(dx, numeric) < GRAD_TOL, 'softmax backward');
});

test('logSoftmax and crossEntropy (ignored rows, z-loss, gradient) match the reference', () => {
  for (const [rows, vocab] of [[1, 1], [4, 7], [17, 256], [64, 4099]] as const) {
    const logits = randArr(rows * vocab, true, 3);
    const out = allocF32(rows * vocab), outRef = new Float32Array(rows * vocab);
    ops.logSoftmax(logits, out, rows, vocab);
    ref.logSoftmax(logits, outRef, rows, vocab);
    close(out, outRef, 2e-6, 'logSoftmax');
    const targets = allocI32(rows);
    for (let r = 0; r < rows; r++) targets[r] = r % 5 === 3 ? -100 : Math.floor(rand() * vocab);
    for (const zLoss of [0, 1e-2]) {
      const d = allocF32(rows * vocab), dRef = new Float32Array(rows * vocab);
      d.fill(NaN);
      const got = ops.crossEntropy(logits, targets, rows, vocab, d, zLoss);
      const want = ref.crossEntropy(logits, targets, rows, vocab, dRef, zLoss);
      assert.equal(got.count, want.count);
      assert.ok(Math.abs(got.loss - want.loss) <= 1e-6 * Math.max(1, Math.abs(want.loss)), `loss ${got.loss} vs ${want.loss}`);
      close(d, dRef, 1e-6, `crossEntropy dlogits z=${zLoss}`);
      const noGrad = ops.crossEntropy(logits, targets, rows, vocab, null, zLoss);
      assert.equal(noGrad.loss, got.loss);
    }
  }
  // gradient of the mean loss (with z-loss) against finite differences
  const rows = 5, vocab = 9;
  const logits = randArr(rows * vocab, true, 2), targets = allocI32(rows), d = allocF32(rows * vocab);
  targets.set([3, -100, 0, 8, 4]);
  ops.crossEntropy(logits, targets, rows, vocab, d, 0.05);
  const one = new Float64Array([1]);
  const numeric = numericGrad(f64(logits), one, (xx, yy) => {
    yy[0] = ref.crossEntropy(xx, targets, rows, vocab, null, 0.05).loss;
  });
  assert.ok(gradError(d, numeric) < GRAD_TOL, 'crossEntropy gradient');
  targets[0] = vocab;
  assert.throws(() => ops.crossEntropy(logits, targets, rows, vocab), /target 9 outside vocab 9/);
});

// ---------------------------------------------------------------- embeddings, reductions, optimizer

test('embedding gather and scatter-add (repeated ids) match the reference', () => {
  for (const [n, vocab, dim] of [[1, 1, 1], [9, 5, 7], [300, 50, 64]] as const) {
    const table = randArr(vocab * dim), ids = allocI32(n);
    for (let i = 0; i < n; i++) ids[i] = Math.floor(rand() * vocab);
    const out = allocF32(n * dim), outRef = new Float32Array(n * dim);
    ops.embedding(ids, table, out, n, dim);
    ref.embedding(ids, table, outRef, n, dim);
    assert.deepEqual(out, outRef, 'embedding');
    const dout = randArr(n * dim), dt = randArr(vocab * dim), dtRef = Float32Array.from(dt);
    ops.embeddingBackward(ids, dout, dt, n, dim);
    ref.embeddingBackward(ids, dout, dtRef, n, dim);
    close(dt, dtRef, 1e-6, 'embeddingBackward');
  }
  const ids = allocI32(2);
  ids.set([0, 5]);
  assert.throws(() => ops.embedding(ids, allocF32(10), allocF32(4), 2, 2), /token id 5 outside the table's 5 rows/);
});

test('sumSquares and allFinite', () => {
  for (const n of [0, 1, 5, 1003, 100003]) {
    const x = randArr(n, n % 2 === 1);
    const got = ops.sumSquares(x);
    const want = ref.sumSquares(x);
    assert.ok(Math.abs(got - want) <= 1e-12 * Math.max(1, want), `sumSquares ${got} vs ${want}`);
    assert.equal(ops.allFinite(x), true);
  }
  for (const bad of [NaN, Infinity, -Infinity]) {
    for (const pos of [0, 4, 70000, 100002]) {
      const x = randArr(100003);
      x[pos] = bad;
      assert.equal(ops.allFinite(x), false, `${bad} at ${pos}`);
      assert.equal(ops.allFinite(x, pos), true, 'the first pos values exclude it');
    }
  }
});

test('adamw matches the reference over two steps', () => {
  for (const n of [1, 7, 1001, 50001]) {
    const p = randArr(n), g = randArr(n), m = allocF32(n), v = allocF32(n);
    const pr = Float32Array.from(p), mr = new Float32Array(n), vr = new Float32Array(n);
    for (const step of [1, 2]) {
      ops.adamw(p, g, m, v, 1e-2, 0.9, 0.95, 1e-8, 0.1, step);
      ref.adamw(pr, g, mr, vr, 1e-2, 0.9, 0.95, 1e-8, 0.1, step);
      for (let i = 0; i < n; i++) g[i] = g[i]! * -0.5 + 0.1;
    }
    close(p, pr, 1e-6, 'adamw p');
    close(m, mr, 1e-6, 'adamw m');
    close(v, vr, 1e-6, 'adamw v');
  }
});

test('adamw with gradScale and clearGrad: the bits of scale(g) then adamw, g zeroed; in the arena and outside it', () => {
  const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  for (const arena of [true, false]) {
    for (const n of [0, 1, 7, 17, 33, 1001, (1 << 17) + 5]) {
      for (const factor of [1, 0.37, 1 / 3, 2.5e-7]) {
        const p = randArr(n, arena), g = randArr(n, arena), m = randArr(n, arena, 0.1), v = randArr(n, arena, 0.01);
        v.forEach((x, i) => (v[i] = Math.abs(x)));
        if (n > 1) g[1] = -0; // a negative zero gradient keeps its sign through the factor
        const [p2, g2, m2, v2] = [p, g, m, v].map((a) => copy(a)) as [Float32Array, Float32Array, Float32Array, Float32Array];
        for (const step of [1, 6]) {
          const kept = copy(g2);
          // the reference: scale's pass, then adamw's; fused, without then with clearGrad
          ops.scale(g, factor);
          ops.adamw(p, g, m, v, 3e-3, 0.9, 0.95, 1e-8, 0.1, step);
          ops.adamw(p2, g2, m2, v2, 3e-3, 0.9, 0.95, 1e-8, 0.1, step, n, factor);
          assert.ok(bits(g2).equals(bits(kept)), `g unchanged without clearGrad (n ${n})`);
          ops.adamw(p, g, m, v, 3e-3, 0.9, 0.95, 1e-8, 0.1, step + 1);
          ops.adamw(p2, g2, m2, v2, 3e-3, 0.9, 0.95, 1e-8, 0.1, step + 1, n, factor, true);
          for (const [a, b, what] of [[p, p2, 'p'], [m, m2, 'm'], [v, v2, 'v']] as const) {
            assert.ok(bits(b).equals(bits(a)), `${what}: arena ${arena}, n ${n}, factor ${factor}, step ${step}`);
          }
          assert.ok(g2.every((x) => Object.is(x, 0)), `clearGrad leaves +0 everywhere (n ${n})`);
          for (let i = 0; i < n; i++) g[i] = g2[i] = randn();
          if (inArena(kept)) free(kept);
        }
        for (const a of [p, g, m, v, p2, g2, m2, v2]) if (inArena(a)) free(a);
      }
    }
  }
});

// ---------------------------------------------------------------- the pool

test('with 2 threads the pool runs work on more than one thread, with the same results', () => {
  const before = getPool().threads;
  try {
    const m = 256, n = 256, k = 256;
    const a = randArr(m * k), b = randArr(k * n);
    const c1 = allocF32(m * n), c2 = allocF32(m * n);
    setThreads(1);
    sgemmWasm({ transA: false, transB: true, m, n, k, a, b, c: c1 });
    const logits = randArr(64 * 4099, true, 3), targets = allocI32(64);
    for (let r = 0; r < 64; r++) targets[r] = r * 61;
    const d1 = allocF32(64 * 4099), d2 = allocF32(64 * 4099);
    const loss1 = ops.crossEntropy(logits, targets, 64, 4099, d1, 1e-3).loss;
    setThreads(2);
    // the worker starts in the background; give it up to 5 s to take a share
    const t0 = performance.now();
    while (getPool().stats()[1] === 0 && performance.now() - t0 < 5000) {
      sgemmWasm({ transA: false, transB: true, m, n, k, a, b, c: c2 });
    }
    assert.ok(getPool().stats()[1]! > 0, `worker thread ran no chunks: ${getPool().stats().join(',')}`);
    assert.deepEqual(c2, c1, 'sgemm is identical on 1 and 2 threads');
    const loss2 = ops.crossEntropy(logits, targets, 64, 4099, d2, 1e-3).loss;
    assert.equal(loss2, loss1, 'cross-entropy sums in a fixed order on any thread count');
    assert.deepEqual(d2, d1);
  } finally {
    setThreads(before);
  }
});

test('kernels keep working on old views after the arena grows', () => {
  const x = randArr(1000), y = allocF32(1000);
  const big = allocF32(24 << 20); // 96 MiB: forces memory.grow
  ops.add(x, x, y);
  for (let i = 0; i < 1000; i++) assert.equal(y[i], 2 * x[i]!);
  big[big.length - 1] = 1;
  ops.scale(big, 3);
  assert.equal(big[big.length - 1], 3);
  free(big);
});
