import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { gqaDir } from './helpers/fixture.js';
import { Mt19937 } from '../src/core/random.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { loadDecoder } from '../src/models/auto.js';
import { linearize } from '../src/models/linearize.js';
import {
  analyzeAttention, compareAttention, cosineSimilarity, rowNormalize, singularValueDistance, singularValues,
  supraAttention, teacherAttention, weightDrift,
} from '../src/eval/analyze.js';

function randomMatrix(rng: Mt19937, rows: number, cols: number): Float64Array {
  return Float64Array.from({ length: rows * cols }, () => rng.normal());
}

/** An orthogonal n × n matrix: a product of Householder reflections of random vectors. */
function orthogonal(rng: Mt19937, n: number): Float64Array {
  let q: Float64Array = Float64Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? 1 : 0));
  for (let r = 0; r < 3; r++) {
    const v = Float64Array.from({ length: n }, () => rng.normal());
    const vv = v.reduce((s, x) => s + x * x, 0);
    const h = Float64Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? 1 : 0) - (2 * v[Math.floor(i / n)]! * v[i % n]!) / vv);
    q = matmul(q, h, n, n, n);
  }
  return q;
}

function matmul(a: Float64Array, b: Float64Array, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) c[i * n + j]! += a[i * k + p]! * b[p * n + j]!;
  return c;
}

test('cosine similarity and row normalization match direct computations', () => {
  assert.ok(Math.abs(cosineSimilarity([1, 2, 3], [2, 4, 6]) - 1) < 1e-15);
  assert.ok(Math.abs(cosineSimilarity([1, 0], [0, 1])) < 1e-15);
  assert.ok(Math.abs(cosineSimilarity([1, 1], [1, 0]) - Math.SQRT1_2) < 1e-15);
  assert.ok(Math.abs(cosineSimilarity([1, 2], [-1, -2]) + 1) < 1e-15);
  assert.ok(Number.isNaN(cosineSimilarity([0, 0], [1, 2])));
  const m = Float64Array.from([1, 3, 0, -2, -2, 0, 0, 0, 0]);
  // rows: [1, 3, 0] / 4; [−2, −2, 0] / |−4|; a zero-sum row stays
  assert.deepEqual(Array.from(rowNormalize(m, 3, 3)), [0.25, 0.75, 0, -0.5, -0.5, 0, 0, 0, 0]);
});

test('singular values: diagonal, orthogonal × diagonal × orthogonal, rectangular, and Frobenius norm', () => {
  const diag = Float64Array.from({ length: 16 }, (_, i) => (i % 5 === 0 ? [3, -7, 0.5, 2][i / 5]! : 0));
  assert.deepEqual(Array.from(singularValues(diag, 4, 4)).map((v) => Number(v.toFixed(12))), [7, 3, 2, 0.5]);

  const rng = new Mt19937(11);
  const n = 12;
  const sigma = [9, 5, 4, 2.5, 2, 1, 0.5, 0.25, 0.1, 0.01, 0, 0];
  const D = Float64Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? sigma[i / (n + 1)]! : 0));
  const A = matmul(matmul(orthogonal(rng, n), D, n, n, n), orthogonal(rng, n), n, n, n);
  const s = singularValues(A, n, n);
  for (let i = 0; i < n; i++) assert.ok(Math.abs(s[i]! - sigma[i]!) < 1e-12, `σ${i} = ${s[i]} vs ${sigma[i]}`);

  const R = randomMatrix(rng, 30, 17);
  const sr = singularValues(R, 30, 17);
  const st = singularValues(Float64Array.from({ length: 30 * 17 }, (_, i) => R[(i % 30) * 17 + Math.floor(i / 30)]!), 17, 30);
  assert.equal(sr.length, 17);
  const frob2 = R.reduce((acc, x) => acc + x * x, 0);
  const sum2 = sr.reduce((acc, x) => acc + x * x, 0);
  assert.ok(Math.abs(sum2 - frob2) < 1e-10 * frob2, `${sum2} vs ${frob2}`);
  for (let i = 0; i < 17; i++) {
    assert.ok(Math.abs(sr[i]! - st[i]!) < 1e-11, 'the transpose has the same singular values');
    if (i > 0) assert.ok(sr[i]! <= sr[i - 1]!, 'descending');
  }

  // distance: 0 for proportional spectra, √2 at most, and the definition on a small case
  assert.ok(singularValueDistance(A, A.map((x) => -3 * x), n) < 1e-12);
  const a2 = Float64Array.from([1, 0, 0, 0]), b2 = Float64Array.from([1, 0, 0, 1]);
  assert.ok(Math.abs(singularValueDistance(a2, b2, 2) - Math.hypot(1 - Math.SQRT1_2, Math.SQRT1_2)) < 1e-12);
});

const expected = readSafetensors(join(gqaDir, 'expected.safetensors'));
const ids = Array.from(expected.get('input_ids')!.data.subarray(0, 33));
const T = 33;

test('teacher attention rows are causal probabilities; the SUPRA matrix equals a float64 recomputation from the fixture q̃, k̃', () => {
  const teacher = loadDecoder(join(gqaDir, 'teacher')).model;
  const model = linearize(teacher, { seed: 1000 });
  try {
    const P = teacherAttention(teacher, ids);
    assert.equal(P.length, 2);
    for (const heads of P) {
      assert.equal(heads.length, 4);
      for (const p of heads) {
        for (let t = 0; t < T; t++) {
          let s = 0;
          for (let j = 0; j < T; j++) {
            const v = p[t * T + j]!;
            if (j > t) assert.equal(v, 0);
            else assert.ok(v > 0);
            s += v;
          }
          assert.ok(Math.abs(s - 1) < 1e-12, `row ${t} sums to ${s}`);
        }
      }
    }

    const A = supraAttention(model, ids);
    const q = expected.get('supra.layer0.q')!, k = expected.get('supra.layer0.k')!; // [2, H, 33, Dk], batch 0
    const [, H, , Dk] = q.shape as [number, number, number, number];
    const slopes = expected.get('supra.slopes')!.data;
    for (let h = 0; h < H; h++) {
      let maxRef = 0, maxErr = 0;
      for (let t = 0; t < T; t++) {
        for (let j = 0; j < T; j++) {
          let ref = 0;
          if (j <= t) {
            let dot = 0;
            for (let d = 0; d < Dk; d++) dot += q.data[(h * T + t) * Dk + d]! * k.data[(h * T + j) * Dk + d]!;
            ref = Math.exp(-slopes[h]! * (t - j)) * dot / Math.sqrt(Dk);
          }
          maxRef = Math.max(maxRef, Math.abs(ref));
          maxErr = Math.max(maxErr, Math.abs(A[0]![h]![t * T + j]! - ref));
        }
      }
      assert.ok(maxRef > 0.1, 'a non-trivial matrix');
      assert.ok(maxErr < 2e-5 * Math.max(1, maxRef), `head ${h}: max error ${maxErr} (max |A| ${maxRef})`);
    }

    // the comparison has one value per layer and head; a matrix compared with itself is a perfect match
    const m = compareAttention(P, A, T);
    assert.deepEqual([m.cosine.raw.length, m.cosine.raw[0]!.length, m.svDistance.rownorm[1]!.length], [2, 4, 4]);
    for (const row of [...m.cosine.raw, ...m.cosine.rownorm]) for (const v of row) assert.ok(v >= -1 && v <= 1);
    for (const row of [...m.svDistance.raw, ...m.svDistance.rownorm]) for (const v of row) assert.ok(v >= 0 && v <= Math.SQRT2 + 1e-12);
    const self = compareAttention(P, P, T);
    for (const row of self.cosine.raw) for (const v of row) assert.ok(Math.abs(v - 1) < 1e-12);
    for (const row of self.svDistance.rownorm) for (const v of row) assert.ok(v < 1e-12);

    // weight drift: none right after linearization; a perturbed q_proj shows its relative change
    for (const l of weightDrift(teacher, model)) {
      for (const d of Object.values(l.drift)) assert.deepEqual(d, { relChange: 0, cosine: 1 });
    }
    const w = model.param('model.layers.1.self_attn.q_proj.weight').data;
    for (let i = 0; i < w.length; i++) w[i] = w[i]! * 1.5;
    const drift = weightDrift(teacher, model)[1]!.drift.q_proj!;
    assert.ok(Math.abs(drift.relChange - 0.5) < 1e-6 && Math.abs(drift.cosine - 1) < 1e-6);

    const r = analyzeAttention(teacher, model, [...ids, ...ids], 16, 3);
    assert.equal(r.windows, 3);
    assert.equal(r.tokens, 16);
    assert.equal(r.cosine.rownorm.length, 2);
    assert.ok(typeof r.definitions.svDistance === 'string');
  } finally {
    teacher.free();
    model.free();
  }
});
