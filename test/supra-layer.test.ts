import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { allocF32, toArena } from '../src/core/memory.js';
import { ropeTables } from '../src/core/ops.js';
import { parseConfig, type ModelConfig, type QkNorm, type Decay } from '../src/io/config.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { decaySlopes } from '../src/layers/linear_attention.js';
import { ParamStore, mapSource } from '../src/layers/params.js';
import { createSupraMixer, SupraAttention, type AttentionForm } from '../src/layers/supra_attention.js';
import { gqaDir, maxAbs, maxAbsDiff } from './helpers/fixture.js';
import { centralDifferences } from './helpers/finite-diff.js';
import { rng } from './helpers/random.js';
import { rope as referenceRope } from './helpers/reference-ops.js';

// ---------------------------------------------------------------- the fixture's layer 0

const expected = readSafetensors(join(gqaDir, 'expected.safetensors'));
const ref = (name: string): Float32Array => {
  const t = expected.get(name);
  if (!t) throw new Error(`fixture lacks ${name}`);
  return t.data as Float32Array;
};

function fixtureConfig(): ModelConfig {
  const raw = JSON.parse(readFileSync(join(gqaDir, 'teacher', 'config.json'), 'utf8')) as Record<string, unknown>;
  return parseConfig({
    ...raw, architectures: ['SupraForCausalLM'],
    supra: { qk_norm: 'none', qk_norm_eps: 1e-5, decay: 'lightning', group_norm_eps: 1e-5 },
  });
}

function fixtureLayer0(form: AttentionForm, chunkSize: number): SupraAttention {
  const store = new ParamStore();
  const mixer = createSupraMixer(fixtureConfig(), (n, s) => store.add(n, s), 0, { form, chunkSize });
  const tensors = new Map([...readSafetensors(join(gqaDir, 'teacher', 'model.safetensors')), ...readSafetensors(join(gqaDir, 'supra_kernels.safetensors'))]);
  store.load(mapSource(tensors), 'fixture');
  return mixer;
}

const B0 = 2, T0 = 33, C0 = 64;

test('layer 0 internals match the fixture in every form and chunk size', () => {
  const x = toArena(ref('supra.layer0.attn_in'));
  const out = allocF32(B0 * T0 * C0);
  const runs: Array<[AttentionForm, number]> = [['chunked', 8], ['chunked', 1], ['chunked', 5], ['chunked', 32], ['chunked', 64], ['parallel', 8], ['recurrent', 8]];
  const worst: Record<string, number> = {};
  for (const [form, chunk] of runs) {
    const mixer = fixtureLayer0(form, chunk);
    mixer.forward(x, out, B0, T0);
    const got = mixer.internals();
    const pairs: Array<[string, Float32Array, string]> = [
      ['q', got.q, 'supra.layer0.q'], ['k', got.k, 'supra.layer0.k'], ['v', got.v, 'supra.layer0.v'],
      ['attn_raw', got.attnRaw, 'supra.layer0.attn_raw'], ['attn_gn', got.attnGn, 'supra.layer0.attn_gn'], ['attn_out', out, 'supra.layer0.attn_out'],
    ];
    for (const [name, a, refName] of pairs) {
      const err = maxAbsDiff(a, ref(refName));
      worst[name] = Math.max(worst[name] ?? 0, err);
      assert.ok(err < 1e-4, `${form} chunk ${chunk}: ${name} off by ${err}`);
    }
    mixer.freeActivations();
  }
  console.log('# layer-0 max abs errors vs fixture:', JSON.stringify(worst));
});

/** Rows [t0, t1) of every sequence of x [B, T, C]. */
function tokens(x: Float32Array, B: number, T: number, C: number, t0: number, t1: number): Float32Array {
  const out = allocF32(B * (t1 - t0) * C);
  for (let b = 0; b < B; b++) out.set(x.subarray((b * T + t0) * C, (b * T + t1) * C), b * (t1 - t0) * C);
  return out;
}

test('recurrent state after 33 tokens matches supra.state.0; chunked prefill + recurrent steps = full forward', () => {
  const x = toArena(ref('supra.layer0.attn_in'));
  const wantOut = ref('supra.layer0.attn_out');
  const wantState = ref('supra.state.0');
  // all 33 tokens through the recurrent form with a state
  const mixer = fixtureLayer0('recurrent', 8);
  const state = mixer.newState(B0);
  const out = allocF32(B0 * T0 * C0);
  mixer.forward(x, out, B0, T0, state);
  const errState = maxAbsDiff(state.data, wantState);
  assert.ok(errState < 1e-4, `state after 33 recurrent tokens off by ${errState}`);
  assert.ok(maxAbsDiff(out, wantOut) < 1e-4);
  assert.equal(state.position, 33);
  assert.equal(state.bytes(), B0 * 4 * 16 * 16 * 4, 'a SUPRA state is [B, H, Dk, Dv] floats');
  // chunked prefill of 16 (chunk 8), then 17 single tokens
  mixer.form = 'chunked';
  state.reset();
  const pre = allocF32(B0 * 16 * C0);
  mixer.forward(tokens(x, B0, T0, C0, 0, 16), pre, B0, 16, state);
  let worst = maxAbsDiff(pre, tokens(wantOut, B0, T0, C0, 0, 16));
  mixer.form = 'recurrent';
  const one = allocF32(B0 * C0);
  for (let t = 16; t < T0; t++) {
    mixer.forward(tokens(x, B0, T0, C0, t, t + 1), one, B0, 1, state);
    worst = Math.max(worst, maxAbsDiff(one, tokens(wantOut, B0, T0, C0, t, t + 1)));
  }
  const errState2 = maxAbsDiff(state.data, wantState);
  console.log(`# state.0 max abs error: recurrent ${errState.toExponential(2)}, prefill+steps ${errState2.toExponential(2)}; outputs ${worst.toExponential(2)}`);
  assert.ok(worst < 1e-4, `prefill + steps outputs off by ${worst}`);
  assert.ok(errState2 < 1e-4, `state after prefill + steps off by ${errState2}`);
  assert.throws(() => mixer.forward(x, out, 1, T0, state), /newState/);
  state.free();
});

// ---------------------------------------------------------------- float64 reference and gradient checks

interface Tiny {
  name: string;
  heads: number;
  kvHeads: number;
  headDim: number;
  hidden: number;
  qkNorm: QkNorm;
  decay: Decay;
  ropeTheta: number;
  groupNormEps: number;
  bias?: 'llama' | 'qwen2';
}

function tinyConfig(c: Tiny): ModelConfig {
  return parseConfig({
    architectures: ['SupraForCausalLM'], model_type: c.bias === 'qwen2' ? 'qwen2' : 'llama',
    vocab_size: 16, hidden_size: c.hidden, intermediate_size: 8, num_hidden_layers: 1,
    num_attention_heads: c.heads, num_key_value_heads: c.kvHeads, head_dim: c.headDim,
    rope_theta: c.ropeTheta, rms_norm_eps: 1e-5, attention_bias: c.bias !== undefined,
    supra: { qk_norm: c.qkNorm, qk_norm_eps: 1e-5, decay: c.decay, group_norm_eps: c.groupNormEps },
  });
}

const gauss = (r: () => number) => Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());

type P64 = Map<string, Float64Array>;

function lin(x: Float64Array, w: Float64Array, b: Float64Array | undefined, rows: number, inF: number, outF: number): Float64Array {
  const y = new Float64Array(rows * outF);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outF; o++) {
      let s = b ? b[o]! : 0;
      for (let i = 0; i < inF; i++) s += x[r * inF + i]! * w[o * inF + i]!;
      y[r * outF + o] = s;
    }
  }
  return y;
}

/** The SUPRA mixer in float64, written from the method's definition (not from the implementation). */
function referenceMixer(c: Tiny, cfg: ModelConfig, P: P64, x: Float64Array, B: number, T: number): Float64Array {
  const { heads: H, kvHeads: K, headDim: D, hidden: C } = c;
  const N = B * T, rep = H / K;
  const g = (n: string) => P.get(`model.layers.0.self_attn.${n}`);
  const q = lin(x, g('q_proj.weight')!, g('q_proj.bias'), N, C, H * D);
  const k = lin(x, g('k_proj.weight')!, g('k_proj.bias'), N, C, K * D);
  const v = lin(x, g('v_proj.weight')!, g('v_proj.bias'), N, C, K * D);
  const kq = lin(q, g('kernel_q.weight')!, g('kernel_q.bias'), N, H * D, H * D).map((a) => Math.max(a, 0));
  const kk = (K === H ? lin(k, g('kernel_q.weight')!, g('kernel_q.bias'), N, K * D, K * D) : lin(k, g('kernel_k.weight')!, g('kernel_k.bias'), N, K * D, K * D)).map((a) => Math.max(a, 0));
  // repeat_kv
  const kr = new Float64Array(N * H * D), vr = new Float64Array(N * H * D);
  for (let n = 0; n < N; n++) for (let h = 0; h < H; h++) for (let i = 0; i < D; i++) {
    kr[(n * H + h) * D + i] = kk[(n * K + Math.floor(h / rep)) * D + i]!;
    vr[(n * H + h) * D + i] = v[(n * K + Math.floor(h / rep)) * D + i]!;
  }
  const norm = (a: Float64Array, w: Float64Array | undefined) => {
    if (c.qkNorm === 'none') return a;
    const W = H * D, out = new Float64Array(a.length);
    for (let n = 0; n < N; n++) {
      let mean = 0, ss = 0;
      for (let i = 0; i < W; i++) mean += a[n * W + i]! / W;
      if (c.qkNorm === 'rms') mean = 0;
      for (let i = 0; i < W; i++) ss += (a[n * W + i]! - mean) ** 2 / W;
      for (let i = 0; i < W; i++) out[n * W + i] = ((a[n * W + i]! - mean) / Math.sqrt(ss + 1e-5)) * w![i]!;
    }
    return out;
  };
  const qn = norm(kq, g('q_norm.weight')), kn = norm(kr, g('k_norm.weight'));
  const { cos, sin } = ropeTables(T, D, c.ropeTheta);
  const rope = (a: Float64Array) => {
    const out = Float64Array.from(a);
    referenceRope(out, cos, sin, B, T, H, D, 0);
    return out;
  };
  const qr = rope(qn), krr = rope(kn);
  const slopes = decaySlopes(H, c.decay);
  const o = new Float64Array(N * H * D);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let t = 0; t < T; t++) for (let j = 0; j <= t; j++) {
    let dot = 0;
    for (let i = 0; i < D; i++) dot += qr[((b * T + t) * H + h) * D + i]! * krr[((b * T + j) * H + h) * D + i]!;
    const w = (Math.exp(-slopes[h]! * (t - j)) * dot) / Math.sqrt(D);
    for (let i = 0; i < D; i++) o[((b * T + t) * H + h) * D + i]! += w * vr[((b * T + j) * H + h) * D + i]!;
  }
  for (let r = 0; r < N * H; r++) {
    let mean = 0, va = 0;
    for (let i = 0; i < D; i++) mean += o[r * D + i]! / D;
    for (let i = 0; i < D; i++) va += (o[r * D + i]! - mean) ** 2 / D;
    for (let i = 0; i < D; i++) o[r * D + i] = (o[r * D + i]! - mean) / Math.sqrt(va + cfg.supra!.group_norm_eps);
  }
  return lin(o, g('o_proj.weight')!, g('o_proj.bias'), N, H * D, C);
}

function gradCheck(c: Tiny, seed: number): void {
  const cfg = tinyConfig(c);
  const store = new ParamStore();
  const mixer = createSupraMixer(cfg, (n, s) => store.add(n, s), 0, { chunkSize: 3 });
  const r = rng(seed);
  // the SUPRA kernels as initialised (U(±1/√fan_in)), every other weight N(0, 1/fan_in), gains 1 + 0.1·N
  for (const p of store.list()) {
    const fan = p.shape.length === 2 ? p.shape[1]! : (store.get(p.name.replace(/bias$/, 'weight')).shape[1] ?? 1);
    for (let i = 0; i < p.data.length; i++) {
      if (p.name.endsWith('norm.weight')) p.data[i] = 1 + 0.1 * gauss(r);
      else if (p.name.includes('kernel_')) p.data[i] = (2 * r() - 1) / Math.sqrt(fan);
      else p.data[i] = gauss(r) / Math.sqrt(fan);
    }
  }
  store.enableGrads();
  const B = 2, T = 7, N = B * T, C = c.hidden;
  const x = toArena(Array.from({ length: N * C }, () => gauss(r)));
  const wOut = toArena(Array.from({ length: N * C }, () => gauss(r))); // loss = Σ out ⊙ wOut
  const P: P64 = new Map(store.list().map((p) => [p.name, Float64Array.from(p.data)]));
  const x64 = Float64Array.from(x);
  const loss64 = () => {
    const out = referenceMixer(c, cfg, P, x64, B, T);
    let s = 0;
    for (let i = 0; i < out.length; i++) s += out[i]! * wOut[i]!;
    return s;
  };
  // forward in every form agrees with the float64 reference
  const want = referenceMixer(c, cfg, P, x64, B, T);
  const out = allocF32(N * C);
  for (const form of ['parallel', 'recurrent', 'chunked'] as const) {
    mixer.form = form;
    mixer.forward(x, out, B, T);
    const err = maxAbsDiff(out, want);
    assert.ok(err < 1e-5 * Math.max(1, maxAbs(want)), `${c.name}: ${form} forward off by ${err}`);
  }
  // analytic gradients (float32) against float64 central differences
  const dx = allocF32(N * C);
  mixer.backward(wOut, dx);
  const fd = (a: Float64Array) => centralDifferences(a, loss64, 1e-6);
  const report: string[] = [];
  const check = (name: string, got: Float32Array, wantG: Float64Array) => {
    const err = maxAbsDiff(got, wantG), scale = maxAbs(wantG);
    report.push(`${name.replace('model.layers.0.self_attn.', '')} ${(err / scale).toExponential(1)}`);
    assert.ok(scale > 0, `${c.name}: ${name} has a zero gradient`);
    assert.ok(err <= 1e-4 * scale, `${c.name}: d${name} off by ${err} (max |g| ${scale})`);
  };
  check('x', dx, fd(x64));
  for (const p of store.list()) check(p.name, p.grad!, fd(P.get(p.name)!));
  const names = store.list().map((p) => p.name.replace('model.layers.0.self_attn.', ''));
  if (c.kvHeads === c.heads) assert.ok(!names.includes('kernel_k.weight'), 'MHA shares kernel_q');
  else assert.ok(names.includes('kernel_k.weight'), 'GQA has kernel_k');
  if (c.qkNorm !== 'none') assert.ok(names.includes('q_norm.weight') && names.includes('k_norm.weight'));
  console.log(`# ${c.name}: max|g − g_fd| / max|g_fd|: ${report.join(', ')}`);
  mixer.freeActivations();
  store.free();
}

const base = { headDim: 4, hidden: 8, qkNorm: 'none' as QkNorm, decay: 'lightning' as Decay, ropeTheta: 1e4, groupNormEps: 1e-5 };

test('gradients vs float64 finite differences: GQA with kernel_k', () => gradCheck({ ...base, name: 'GQA', heads: 4, kvHeads: 2 }, 11));
test('gradients vs float64 finite differences: MHA with kernel_q shared by q and k', () => gradCheck({ ...base, name: 'MHA', heads: 2, kvHeads: 2 }, 12));
test('gradients vs float64 finite differences: qk-norm rms with gains ≠ 1 (GQA)', () => gradCheck({ ...base, name: 'qk-rms', heads: 4, kvHeads: 2, qkNorm: 'rms' }, 13));
test('gradients vs float64 finite differences: qk-norm layernorm with gains ≠ 1 (MHA)', () => gradCheck({ ...base, name: 'qk-layernorm', heads: 2, kvHeads: 2, qkNorm: 'layernorm' }, 14));
test('gradients vs float64 finite differences: 6 heads (3 kv heads)', () => gradCheck({ ...base, name: '6 heads', heads: 6, kvHeads: 3, hidden: 12 }, 15));
test('gradients vs float64 finite differences: rope_theta 500, retnet decay, Llama biases, GroupNorm eps 1e-3', () =>
  gradCheck({ ...base, name: 'theta 500 retnet', heads: 2, kvHeads: 1, ropeTheta: 500, decay: 'retnet', groupNormEps: 1e-3, bias: 'llama' }, 16));
test('gradients vs float64 finite differences: no decay, Qwen2 biases, qk-norm rms, MHA', () =>
  gradCheck({ ...base, name: 'no decay qwen2', heads: 2, kvHeads: 2, decay: 'none', qkNorm: 'rms', bias: 'qwen2' }, 17));

test('clear errors: no supra settings, backward before forward', () => {
  const cfg = tinyConfig({ ...base, name: 'e', heads: 2, kvHeads: 2 });
  const store = new ParamStore();
  assert.throws(() => createSupraMixer({ ...cfg, supra: null }, (n, s) => store.add(n, s), 0), /config\.supra/);
  const mixer = createSupraMixer(cfg, (n, s) => store.add(n, s), 0);
  assert.throws(() => mixer.backward(allocF32(16), allocF32(16)), /training forward/);
});
