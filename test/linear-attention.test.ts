import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { toArena, allocF32 } from '../src/core/memory.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { LinearAttention, decayGammas, decaySlopes, lightningSlopes } from '../src/layers/linear_attention.js';
import { gqaDir, maxAbs, maxAbsDiff } from './helpers/fixture.js';
import { centralDifferences } from './helpers/finite-diff.js';
import { rng } from './helpers/random.js';

function randn(n: number, r: () => number, scale = 1, nonneg = false): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const g = Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
    out[i] = (nonneg ? Math.abs(g) : g) * scale;
  }
  return out;
}

/** float64 reference: o[b,h,t] = Σ_{j≤t} γ^(t−j)(q_t·k_j)/√Dk v_j; state = Σ_j γ^(T−j) k_jᵀv_j/√Dk. */
function reference(
  q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, slopes: ArrayLike<number>,
  B: number, H: number, T: number, Dk: number, Dv: number,
): { o: Float64Array; state: Float64Array } {
  const o = new Float64Array(B * H * T * Dv);
  const state = new Float64Array(B * H * Dk * Dv);
  const scale = 1 / Math.sqrt(Dk);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const bh = b * H + h;
      for (let t = 0; t < T; t++) {
        for (let j = 0; j <= t; j++) {
          let dot = 0;
          for (let i = 0; i < Dk; i++) dot += q[(bh * T + t) * Dk + i]! * k[(bh * T + j) * Dk + i]!;
          const w = Math.exp(-slopes[h]! * (t - j)) * dot * scale;
          for (let c = 0; c < Dv; c++) o[(bh * T + t) * Dv + c]! += w * v[(bh * T + j) * Dv + c]!;
        }
      }
      for (let j = 0; j < T; j++) {
        const f = Math.exp(-slopes[h]! * (T - j)) * scale;
        for (let i = 0; i < Dk; i++) {
          for (let c = 0; c < Dv; c++) state[(bh * Dk + i) * Dv + c]! += f * k[(bh * T + j) * Dk + i]! * v[(bh * T + j) * Dv + c]!;
        }
      }
    }
  }
  return { o, state };
}

const f32 = (a: ArrayLike<number>) => toArena(Float32Array.from(a));

test('lightning slopes and gammas match the fixture; 6 heads; retnet; none', () => {
  const expected = readSafetensors(join(gqaDir, 'expected.safetensors'));
  const slopes = expected.get('supra.slopes')!.data;
  const gamma = expected.get('supra.gamma')!.data;
  assert.ok(maxAbsDiff(decaySlopes(4, 'lightning'), slopes) === 0, 'slopes are exact powers of two');
  assert.ok(maxAbsDiff(decayGammas(4, 'lightning'), gamma) < 1e-7);
  assert.deepEqual(lightningSlopes(6), [0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125]);
  assert.deepEqual(lightningSlopes(8), [0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.0078125, 0.00390625]);
  assert.deepEqual(lightningSlopes(1), [2 ** -8]);
  // 12 heads: the 8 power-of-two slopes, then 2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5
  const s12 = lightningSlopes(12);
  assert.equal(s12.length, 12);
  assert.ok(maxAbsDiff(s12.slice(8), [2 ** -0.5, 2 ** -1.5, 2 ** -2.5, 2 ** -3.5]) < 1e-15);
  const retnet = decayGammas(5, 'retnet');
  assert.ok(maxAbsDiff(retnet, [1 - 2 ** -5, 1 - 2 ** -6, 1 - 2 ** -7, 1 - 2 ** -8, 1 - 2 ** -9]) < 1e-15);
  assert.ok(maxAbsDiff(decaySlopes(5, 'retnet').map((s) => Math.exp(-s)), retnet) < 1e-15);
  assert.deepEqual(Array.from(decayGammas(3, 'none')), [1, 1, 1]);
});

test('parallel, chunked (any chunk size) and recurrent forms agree with the float64 formula', () => {
  const r = rng(1);
  const B = 2, H = 3, T = 33, Dk = 8, Dv = 6;
  const slopes = [0.25, 0.0625, 0.5];
  const q = randn(B * H * T * Dk, r, 0.7, true);
  const k = randn(B * H * T * Dk, r, 0.7, true);
  const v = randn(B * H * T * Dv, r);
  const ref = reference(q, k, v, slopes, B, H, T, Dk, Dv);
  const tol = 1e-5 * Math.max(1, maxAbs(ref.o));
  const la = new LinearAttention({ heads: H, dk: Dk, dv: Dv, slopes });
  const o = allocF32(B * H * T * Dv);
  la.forwardParallel(f32(q), f32(k), f32(v), o, B, T);
  assert.ok(maxAbsDiff(o, ref.o) < tol, `parallel ${maxAbsDiff(o, ref.o)}`);
  for (const chunk of [1, 5, 8, 32, 33, 64]) {
    la.setChunkSize(chunk);
    const state = allocF32(B * H * Dk * Dv);
    la.forwardChunked(f32(q), f32(k), f32(v), o, B, T, state);
    assert.ok(maxAbsDiff(o, ref.o) < tol, `chunk ${chunk}: ${maxAbsDiff(o, ref.o)}`);
    assert.ok(maxAbsDiff(state, ref.state) < 1e-5 * maxAbs(ref.state), `chunk ${chunk} state: ${maxAbsDiff(state, ref.state)}`);
    la.forwardChunked(f32(q), f32(k), f32(v), o, B, T, null, true);
    assert.ok(maxAbsDiff(o, ref.o) < tol, `chunk ${chunk} (training): ${maxAbsDiff(o, ref.o)}`);
  }
  const state = allocF32(B * H * Dk * Dv);
  la.forwardRecurrent(f32(q), f32(k), f32(v), o, B, T, state);
  assert.ok(maxAbsDiff(o, ref.o) < tol, `recurrent ${maxAbsDiff(o, ref.o)}`);
  assert.ok(maxAbsDiff(state, ref.state) < 1e-5 * maxAbs(ref.state), `recurrent state ${maxAbsDiff(state, ref.state)}`);
  la.free();
});

/** [B, H, T, D] → the tokens [t0, t1) as [B, H, t1−t0, D]. */
function sliceTokens(x: ArrayLike<number>, BH: number, T: number, D: number, t0: number, t1: number): Float32Array {
  const out = allocF32(BH * (t1 - t0) * D);
  for (let bh = 0; bh < BH; bh++) {
    for (let t = t0; t < t1; t++) for (let i = 0; i < D; i++) out[(bh * (t1 - t0) + t - t0) * D + i] = x[(bh * T + t) * D + i]!;
  }
  return out;
}

test('chunked prefill, then recurrent steps and another chunked block, equals the full forward', () => {
  const r = rng(2);
  const B = 2, H = 4, T = 29, Dk = 4, Dv = 4;
  const slopes = decaySlopes(H, 'lightning');
  const q = randn(B * H * T * Dk, r, 1, true);
  const k = randn(B * H * T * Dk, r, 1, true);
  const v = randn(B * H * T * Dv, r);
  const ref = reference(q, k, v, slopes, B, H, T, Dk, Dv);
  const la = new LinearAttention({ heads: H, dk: Dk, dv: Dv, slopes, chunkSize: 4 });
  const state = allocF32(B * H * Dk * Dv);
  const pieces: Array<[number, number, 'chunked' | 'recurrent']> = [[0, 11, 'chunked'], [11, 12, 'recurrent'], [12, 13, 'recurrent'], [13, 20, 'chunked'], [20, 23, 'recurrent'], [23, 29, 'chunked']];
  let worst = 0;
  for (const [t0, t1, form] of pieces) {
    const n = t1 - t0;
    const o = allocF32(B * H * n * Dv);
    const args = [sliceTokens(q, B * H, T, Dk, t0, t1), sliceTokens(k, B * H, T, Dk, t0, t1), sliceTokens(v, B * H, T, Dv, t0, t1), o, B, n, state] as const;
    if (form === 'chunked') la.forwardChunked(...args);
    else la.forwardRecurrent(...args);
    worst = Math.max(worst, maxAbsDiff(o, sliceTokens(ref.o, B * H, T, Dv, t0, t1)));
  }
  assert.ok(worst < 1e-5 * maxAbs(ref.o), `pieces vs full: ${worst}`);
  assert.ok(maxAbsDiff(state, ref.state) < 1e-5 * maxAbs(ref.state));
  la.free();
});

test('chunked form is stable for extreme slopes and long chunks (no γ^(−i))', () => {
  const r = rng(3);
  const B = 1, H = 4, T = 150, Dk = 4, Dv = 4;
  const slopes = [0, 1e-7, 5, 90]; // γ = 1, ≈1, e^-5, e^-90 (underflows float32 after one step)
  const q = randn(B * H * T * Dk, r, 1, true);
  const k = randn(B * H * T * Dk, r, 1, true);
  const v = randn(B * H * T * Dv, r);
  const ref = reference(q, k, v, slopes, B, H, T, Dk, Dv);
  for (const chunk of [64, 128, 150]) {
    const la = new LinearAttention({ heads: H, dk: Dk, dv: Dv, slopes, chunkSize: chunk });
    const o = allocF32(B * H * T * Dv);
    const state = allocF32(B * H * Dk * Dv);
    la.forwardChunked(f32(q), f32(k), f32(v), o, B, T, state);
    assert.ok(o.every(Number.isFinite) && state.every(Number.isFinite), `chunk ${chunk}: non-finite values`);
    const err = maxAbsDiff(o, ref.o) / maxAbs(ref.o);
    assert.ok(err < 2e-5, `chunk ${chunk}: relative error ${err}`);
    la.free();
  }
});

test('backward of the chunked form matches float64 central differences, for every form and chunk size', () => {
  const r = rng(4);
  const B = 2, H = 2, T = 11, Dk = 4, Dv = 3;
  const slopes = [0.3, 0.05];
  const q = randn(B * H * T * Dk, r, 0.8, true);
  const k = randn(B * H * T * Dk, r, 0.8, true);
  const v = randn(B * H * T * Dv, r);
  const w = randn(B * H * T * Dv, r); // loss = Σ o ⊙ w
  const loss = (qq: Float64Array, kk: Float64Array, vv: Float64Array) => {
    const { o } = reference(qq, kk, vv, slopes, B, H, T, Dk, Dv);
    let s = 0;
    for (let i = 0; i < o.length; i++) s += o[i]! * w[i]!;
    return s;
  };
  const fd = (x: Float64Array) => centralDifferences(x, () => loss(q, k, v), 1e-6);
  const gq = fd(q), gk = fd(k), gv = fd(v);
  const la = new LinearAttention({ heads: H, dk: Dk, dv: Dv, slopes });
  const o = allocF32(B * H * T * Dv);
  const dq = allocF32(q.length), dk = allocF32(k.length), dv = allocF32(v.length);
  const runs: Array<[string, number]> = [['chunked', 1], ['chunked', 4], ['chunked', 5], ['chunked', 64], ['parallel', 4], ['recurrent', 3]];
  for (const [form, chunk] of runs) {
    la.setChunkSize(chunk);
    if (form === 'chunked') la.forwardChunked(f32(q), f32(k), f32(v), o, B, T, null, true);
    else if (form === 'parallel') la.forwardParallel(f32(q), f32(k), f32(v), o, B, T);
    else la.forwardRecurrent(f32(q), f32(k), f32(v), o, B, T, null);
    la.backward(f32(q), f32(k), f32(v), f32(w), dq, dk, dv, B, T);
    for (const [name, got, want] of [['dq', dq, gq], ['dk', dk, gk], ['dv', dv, gv]] as const) {
      const err = maxAbsDiff(got, want);
      assert.ok(err <= 1e-4 * maxAbs(want), `${form} chunk ${chunk} ${name}: ${err} (max ${maxAbs(want)})`);
    }
  }
  la.free();
});

test('bad sizes give clear errors', () => {
  const la = new LinearAttention({ heads: 2, dk: 4, dv: 4, slopes: [0.1, 0.2] });
  assert.throws(() => la.forwardChunked(allocF32(10), allocF32(64), allocF32(64), allocF32(64), 2, 4), /q holds 10 values/);
  assert.throws(() => la.setChunkSize(0), /chunk size/);
  assert.throws(() => new LinearAttention({ heads: 3, dk: 4, dv: 4, slopes: [0.1] }), /1 decay slopes for 3 heads/);
});
