// normalization 'sum': the T2R-style ablation of the SUPRA mixer (the classic linear-attention
// denominator, no GroupNorm), checked against a float64 reference written from the formula, in every
// form, stepping with a state, gradients, config, snapshots and the command line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { allocF32, toArena } from '../src/core/memory.js';
import { ropeTables } from '../src/core/ops.js';
import { loadConfig, parseConfig, saveConfig, type Decay, type ModelConfig, type QkNorm } from '../src/io/config.js';
import { toOpenLmParams } from '../src/io/open_lm.js';
import { ParamStore } from '../src/layers/params.js';
import { createSupraMixer, SupraAttention, SupraState, type AttentionForm } from '../src/layers/supra_attention.js';
import { loadDecoder } from '../src/models/auto.js';
import { linearize } from '../src/models/linearize.js';
import type { DecoderLM } from '../src/models/decoder.js';
import { generate, generateFromState } from '../src/generate/generate.js';
import { GenerationState } from '../src/generate/state.js';
import { loadState, saveState } from '../src/generate/snapshot.js';
import { gqaDir, maxAbs, maxAbsDiff } from './helpers/fixture.js';
import { centralDifferences } from './helpers/finite-diff.js';
import { rng } from './helpers/random.js';
import { rope as referenceRope } from './helpers/reference-ops.js';
import { freshDirs, tempRoot } from './helpers/tmp.js';
import { charTokenizerFiles, tinyConfig } from './helpers/train-data.js';

const tmp = freshDirs(tempRoot('supra-t2r-'));

// ---------------------------------------------------------------- a tiny mixer and its float64 reference

const B = 2, T = 7, H = 4, KV = 2, D = 8, C = 16;
const P = 'model.layers.0.self_attn.';

interface Case {
  name: string;
  decay: Decay;
  qkNorm: QkNorm;
  eps: number;
  seed: number;
}

const T2R: Case = { name: 'T2R (decay none)', decay: 'none', qkNorm: 'none', eps: 1e-6, seed: 21 };
const LIGHTNING: Case = { name: 'sum + lightning decay + qk-norm rms', decay: 'lightning', qkNorm: 'rms', eps: 1e-3, seed: 22 };

function sumConfig(c: Case): ModelConfig {
  return parseConfig({
    architectures: ['SupraForCausalLM'], model_type: 'llama', vocab_size: 16, hidden_size: C, intermediate_size: 8,
    num_hidden_layers: 1, num_attention_heads: H, num_key_value_heads: KV, head_dim: D, rope_theta: 1e4, rms_norm_eps: 1e-5,
    supra: { qk_norm: c.qkNorm, decay: c.decay, normalization: 'sum', normalizer_eps: c.eps },
  });
}

const gauss = (r: () => number) => Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());

interface Built {
  mixer: SupraAttention;
  store: ParamStore;
  x: Float32Array;
  P64: Map<string, Float64Array>;
  x64: Float64Array;
}

/** The mixer with kernels as initialised (U(±1/√fan_in)), other weights N(0, 1/fan_in), gains 1 + 0.1·N. */
function build(c: Case, form: AttentionForm = 'chunked'): Built {
  const store = new ParamStore();
  const mixer = createSupraMixer(sumConfig(c), (n, s) => store.add(n, s), 0, { form, chunkSize: 3 });
  const r = rng(c.seed);
  for (const p of store.list()) {
    const fan = p.shape.length === 2 ? p.shape[1]! : (store.get(p.name.replace(/bias$/, 'weight')).shape[1] ?? 1);
    for (let i = 0; i < p.data.length; i++) {
      if (p.name.endsWith('norm.weight')) p.data[i] = 1 + 0.1 * gauss(r);
      else if (p.name.includes('kernel_')) p.data[i] = (2 * r() - 1) / Math.sqrt(fan);
      else p.data[i] = gauss(r) / Math.sqrt(fan);
    }
  }
  const x = toArena(Array.from({ length: B * T * C }, () => gauss(r)));
  return { mixer, store, x, P64: new Map(store.list().map((p) => [p.name, Float64Array.from(p.data)])), x64: Float64Array.from(x) };
}

interface Reference {
  out: Float64Array; // [B, T, C]
  z: Float64Array; // [B, T, H]
  stateN: Float64Array; // [B, H, D, D] after all tokens, × γ (the carried convention)
  stateZ: Float64Array; // [B, H, D]
}

/**
 * The 'sum' mixer in float64 from its definition: u = relu(kernel(proj(x))) (keys repeated, [qk-norm]),
 * q̃, k̃ = RoPE(u); N_t = Σ_j γ^(t−j) q̃_t·k̃_j/√D v_j; z_t = Σ_j γ^(t−j) u_q,t·u_k,j/√D; out = o_proj(N/(z+eps)).
 */
function reference(c: Case, W: Map<string, Float64Array>, x: Float64Array, Tn: number): Reference {
  const N = B * Tn, rep = H / KV, scale = 1 / Math.sqrt(D);
  const w = (n: string) => W.get(P + n)!;
  const lin = (a: Float64Array, wt: Float64Array, bias: Float64Array | null, inF: number, outF: number) => {
    const y = new Float64Array(N * outF);
    for (let r = 0; r < N; r++) for (let o = 0; o < outF; o++) {
      let s = bias ? bias[o]! : 0;
      for (let i = 0; i < inF; i++) s += a[r * inF + i]! * wt[o * inF + i]!;
      y[r * outF + o] = s;
    }
    return y;
  };
  const q = lin(x, w('q_proj.weight'), null, C, H * D);
  const k = lin(x, w('k_proj.weight'), null, C, KV * D);
  const v = lin(x, w('v_proj.weight'), null, C, KV * D);
  const fq = lin(q, w('kernel_q.weight'), w('kernel_q.bias'), H * D, H * D).map((a) => Math.max(0, a));
  const fk = lin(k, w('kernel_k.weight'), w('kernel_k.bias'), KV * D, KV * D).map((a) => Math.max(0, a));
  // per (token, head) rows of D; query head h reads kv head ⌊h / rep⌋
  const uq = fq, uk = new Float64Array(N * H * D), vr = new Float64Array(N * H * D);
  for (let n = 0; n < N; n++) for (let h = 0; h < H; h++) for (let i = 0; i < D; i++) {
    uk[(n * H + h) * D + i] = fk[(n * KV + Math.floor(h / rep)) * D + i]!;
    vr[(n * H + h) * D + i] = v[(n * KV + Math.floor(h / rep)) * D + i]!;
  }
  if (c.qkNorm === 'rms') {
    for (const [a, g] of [[uq, w('q_norm.weight')], [uk, w('k_norm.weight')]] as const) {
      for (let n = 0; n < N; n++) {
        let ms = 0;
        for (let i = 0; i < H * D; i++) ms += a[n * H * D + i]! ** 2 / (H * D);
        for (let i = 0; i < H * D; i++) a[n * H * D + i] = (a[n * H * D + i]! / Math.sqrt(ms + 1e-5)) * g[i]!;
      }
    }
  }
  const { cos, sin } = ropeTables(Tn, D, 1e4);
  const rot = (a: Float64Array) => {
    const out = Float64Array.from(a);
    referenceRope(out, cos, sin, B, Tn, H, D, 0);
    return out;
  };
  const qt = rot(uq), kt = rot(uk);
  // the fixture's Lightning slopes for 4 heads, or no decay
  const slopes = c.decay === 'none' ? [0, 0, 0, 0] : [0.25, 0.0625, 0.015625, 0.00390625];
  const dot = (a: Float64Array, i: number, bb: Float64Array, j: number) => {
    let s = 0;
    for (let d = 0; d < D; d++) s += a[i * D + d]! * bb[j * D + d]!;
    return s;
  };
  const o = new Float64Array(N * H * D), z = new Float64Array(N * H);
  const stateN = new Float64Array(B * H * D * D), stateZ = new Float64Array(B * H * D);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) {
    for (let t = 0; t < Tn; t++) {
      const rt = (b * Tn + t) * H + h;
      const num = new Float64Array(D);
      let den = 0;
      for (let j = 0; j <= t; j++) {
        const rj = (b * Tn + j) * H + h, g = Math.exp(-slopes[h]! * (t - j));
        const a = g * dot(qt, rt, kt, rj) * scale;
        for (let d = 0; d < D; d++) num[d] += a * vr[rj * D + d]!;
        den += g * dot(uq, rt, uk, rj) * scale;
      }
      z[rt] = den;
      for (let d = 0; d < D; d++) o[rt * D + d] = num[d]! / (den + c.eps);
    }
    // carried states after all Tn tokens: Σ_j γ^(Tn−j) scale k̃_jᵀ v_j and Σ_j γ^(Tn−j) scale u_k,j
    for (let j = 0; j < Tn; j++) {
      const rj = (b * Tn + j) * H + h, g = Math.exp(-slopes[h]! * (Tn - j)) * scale;
      for (let i = 0; i < D; i++) {
        stateZ[(b * H + h) * D + i] += g * uk[rj * D + i]!;
        for (let d = 0; d < D; d++) stateN[((b * H + h) * D + i) * D + d] += g * kt[rj * D + i]! * vr[rj * D + d]!;
      }
    }
  }
  return { out: lin(o, w('o_proj.weight'), null, H * D, C), z, stateN, stateZ };
}

/** Rows [t0, t1) of every sequence of x [B, Tn, width]. */
function rows(x: ArrayLike<number>, Tn: number, width: number, t0: number, t1: number): Float32Array {
  const out = allocF32(B * (t1 - t0) * width);
  for (let b = 0; b < B; b++) for (let i = 0; i < (t1 - t0) * width; i++) out[b * (t1 - t0) * width + i] = x[(b * Tn + t0) * width + i]!;
  return out;
}

function close(got: ArrayLike<number>, want: ArrayLike<number>, what: string, rel = 2e-5): number {
  const err = maxAbsDiff(got, want);
  assert.ok(err <= rel * Math.max(1, maxAbs(want)), `${what}: off by ${err} (max |want| ${maxAbs(want)})`);
  return err;
}

test("normalization 'sum' matches the float64 reference in the parallel, chunked (chunk 3) and recurrent forms", () => {
  for (const c of [T2R, LIGHTNING]) {
    const { mixer, store, x, P64, x64 } = build(c);
    const want = reference(c, P64, x64, T);
    // z is exactly 0 where a token's query features meet no key features (then N = 0 too, and o = 0);
    // otherwise this seed keeps it clear of 0, where the division would amplify round-off
    let minZ = Infinity, zeros = 0;
    for (const z of want.z) if (z === 0) zeros++; else minZ = Math.min(minZ, z);
    assert.ok(minZ > 1e-3, `${c.name}: the test's nonzero denominators should stay clear of 0 (min z ${minZ})`);
    assert.ok(mixer.normalizer !== null && mixer.normalizer.dv === 1, 'the denominator is a second linear attention with Dv = 1');
    const out = allocF32(B * T * C);
    const errs: string[] = [];
    for (const form of ['parallel', 'chunked', 'recurrent'] as const) {
      mixer.form = form;
      out.fill(NaN);
      mixer.forward(x, out, B, T);
      errs.push(`${form} ${close(out, want.out, `${c.name} ${form} out`).toExponential(1)}`);
      close(mixer.internals().denominator!, want.z, `${c.name} ${form} z`);
    }
    console.log(`# ${c.name}: ${zeros} of ${want.z.length} z = 0, min nonzero z ${minZ.toFixed(3)}; max abs error ${errs.join(', ')}`);
    mixer.freeActivations();
    store.free();
  }
});

test("normalization 'sum' with a state: token steps, chunked pieces and recurrent runs equal the full forward", () => {
  for (const c of [T2R, LIGHTNING]) {
    const { mixer, store, x, P64, x64 } = build(c);
    const want = reference(c, P64, x64, T);
    const state = mixer.newState(B);
    assert.ok(state.normalizer, "a 'sum' state carries the denominator's state");
    assert.equal(state.bytes(), (B * H * D * D + B * H * D) * 4, 'state [B, H, Dk, Dv] plus the denominator [B, H, Dk]');
    // token by token
    const one = allocF32(B * C);
    for (let t = 0; t < T; t++) {
      mixer.forward(rows(x, T, C, t, t + 1), one, B, 1, state);
      close(one, rows(want.out, T, C, t, t + 1), `${c.name} step ${t}`);
    }
    assert.equal(state.position, T);
    close(state.data, want.stateN, `${c.name} numerator state`);
    close(state.normalizer, want.stateZ, `${c.name} denominator state`);
    // chunked from a state: 4 tokens (a full chunk of 3 and a partial one), then 3 more from that state
    for (const form of ['chunked', 'recurrent'] as const) {
      mixer.form = form;
      state.reset();
      assert.equal(maxAbs(state.normalizer), 0, 'reset clears the denominator state');
      const a = allocF32(B * 4 * C), b = allocF32(B * 3 * C);
      mixer.forward(rows(x, T, C, 0, 4), a, B, 4, state);
      mixer.forward(rows(x, T, C, 4, T), b, B, 3, state);
      close(a, rows(want.out, T, C, 0, 4), `${c.name} ${form} first piece`);
      close(b, rows(want.out, T, C, 4, T), `${c.name} ${form} from the state`);
      close(state.data, want.stateN, `${c.name} ${form} numerator state`);
      close(state.normalizer, want.stateZ, `${c.name} ${form} denominator state`);
    }
    // a clone continues identically
    const copy = state.clone();
    assert.deepEqual(Array.from(copy.normalizer!), Array.from(state.normalizer));
    assert.equal(copy.position, T);
    copy.free();
    // a GroupNorm layer's state has no denominator, and is refused here
    const gnStore = new ParamStore();
    const gnConfig = sumConfig(c);
    const gn = createSupraMixer({ ...gnConfig, supra: { ...gnConfig.supra!, normalization: 'group_norm' } }, (n, s) => gnStore.add(n, s), 0);
    const gnState = gn.newState(B);
    assert.equal(gnState.normalizer, null);
    assert.equal(gnState.bytes(), B * H * D * D * 4);
    assert.throws(() => mixer.forward(rows(x, T, C, 0, 1), one, B, 1, gnState), /newState/);
    gnState.free();
    gnStore.free();
    state.free();
    mixer.freeActivations();
    store.free();
  }
});

test("normalization 'sum': gradients of x and every parameter vs float64 finite differences", () => {
  for (const c of [T2R, LIGHTNING]) {
    const { mixer, store, x, P64, x64 } = build(c);
    const r = rng(c.seed + 100);
    const wOut = toArena(Array.from({ length: B * T * C }, () => gauss(r))); // loss = Σ out ⊙ wOut
    const loss = () => {
      const out = reference(c, P64, x64, T).out;
      let s = 0;
      for (let i = 0; i < out.length; i++) s += out[i]! * wOut[i]!;
      return s;
    };
    const fd = (a: Float64Array) => centralDifferences(a, loss, 1e-6);
    const wantX = fd(x64);
    const wantP = new Map(store.list().map((p) => [p.name, fd(P64.get(p.name)!)]));
    assert.ok(wantP.has(`${P}kernel_k.weight`) && wantP.has(`${P}kernel_q.weight`) && wantP.has(`${P}q_proj.weight`));
    store.enableGrads();
    const out = allocF32(B * T * C), dx = allocF32(B * T * C);
    for (const form of ['parallel', 'chunked'] as const) {
      for (const p of store.list()) p.grad!.fill(0);
      mixer.form = form;
      mixer.forward(x, out, B, T);
      mixer.backward(wOut, dx);
      const report: string[] = [];
      const check = (name: string, got: Float32Array, want: Float64Array) => {
        const err = maxAbsDiff(got, want), scale = maxAbs(want);
        assert.ok(scale > 0, `${c.name}: ${name} has a zero gradient`);
        assert.ok(err <= 1e-4 * scale, `${c.name} ${form}: d${name} off by ${err} (max |g| ${scale})`);
        report.push(`${name.replace(P, '')} ${(err / scale).toExponential(1)}`);
      };
      check('x', dx, wantX);
      for (const p of store.list()) check(p.name, p.grad!, wantP.get(p.name)!);
      console.log(`# ${c.name}, ${form}: max|g − g_fd| / max|g_fd|: ${report.join(', ')}`);
    }
    mixer.freeActivations();
    store.free();
  }
});

test('config: supra.normalization and normalizer_eps round-trip; absent means group_norm; bad values name the file', () => {
  const base = sumConfig({ ...T2R, eps: 1e-4 });
  assert.equal(base.supra!.normalization, 'sum');
  const dir = tmp();
  saveConfig(dir, base);
  const json = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { supra: Record<string, unknown> };
  assert.equal(json.supra.normalization, 'sum');
  assert.equal(json.supra.normalizer_eps, 1e-4);
  const back = loadConfig(dir);
  assert.deepEqual(back.supra, base.supra);
  // an older folder (no field) is a GroupNorm model
  delete json.supra.normalization;
  delete json.supra.normalizer_eps;
  const old = parseConfig(json);
  assert.equal(old.supra!.normalization, 'group_norm');
  assert.equal(old.supra!.normalizer_eps, 1e-6);
  // bad values
  const path = join(dir, 'config.json');
  writeFileSync(path, JSON.stringify({ ...json, supra: { ...json.supra, normalization: 'layer_norm' } }));
  assert.throws(() => loadConfig(dir), (e: Error) => e.message.includes(path) && /supra\.normalization must be group_norm\|sum, got "layer_norm"/.test(e.message));
  // open_lm's linear attention has a GroupNorm: a 'sum' model cannot be written in its layout
  assert.throws(() => toOpenLmParams({ ...base, hidden_size: H * D }), /open_lm: open_lm's linear attention uses GroupNorm; normalization "sum" cannot be expressed/);
  assert.equal(toOpenLmParams({ ...old, hidden_size: H * D }).attn_name, 'linear_attn');
  for (const eps of [0, -1, 'x']) {
    assert.throws(() => parseConfig({ ...json, supra: { ...json.supra, normalization: 'sum', normalizer_eps: eps } }, 'cfg.json'), /cfg\.json: field "normalizer_eps" must be a positive number/);
  }
});

// ---------------------------------------------------------------- a whole model: decoding, snapshots, folders

function t2rModel(normalization: 'sum' | 'group_norm' = 'sum'): DecoderLM {
  const t = loadDecoder(join(gqaDir, 'teacher')).model;
  const m = linearize(t, { seed: 5, normalization, decay: 'none' });
  t.free();
  return m;
}

test("a 'sum' model: snapshot and continue gives the uninterrupted run; a snapshot of the other layout is refused", () => {
  const s = t2rModel();
  const prompt = [3, 17, 42, 99, 5, 200, 7, 64, 1, 128, 33, 250];
  for (const opts of [{}, { do_sample: true, temperature: 1.2, seed: 9 }]) {
    const full = generate(s, [prompt], { ...opts, max_new_tokens: 16 }).sequences[0]!;
    const first = new GenerationState(s, 1);
    generateFromState(first, [prompt], { ...opts, max_new_tokens: 6 });
    const file = join(tmp(), 'snap.safetensors');
    saveState(file, s, first);
    first.free();
    const restored = loadState(file, s);
    const { seed: _ignored, ...rest } = opts as { seed?: number };
    assert.deepEqual(generateFromState(restored, [[]], { ...rest, max_new_tokens: 10 }).sequences[0], full, `continued run differs (${JSON.stringify(opts)})`);
    restored.free();
  }
  // a cloned decoding state (as the probes make them) carries the denominator states: it continues identically
  const V = s.config.vocab_size;
  const state = s.newState(1);
  s.step(prompt, 1, prompt.length, state);
  const copy = state.clone();
  const a = Float32Array.from(s.step([77], 1, 1, state).subarray(0, V));
  const b = Float32Array.from(s.step([77], 1, 1, copy).subarray(0, V));
  assert.deepEqual(Array.from(b), Array.from(a));
  assert.ok(copy.layers.every((l) => l instanceof SupraState && l.normalizer !== null));
  state.free();
  copy.free();
  const file = join(tmp(), 'sum.safetensors');
  const st = new GenerationState(s, 1);
  generateFromState(st, [prompt], { max_new_tokens: 1 });
  saveState(file, s, st);
  st.free();
  const gn = t2rModel('group_norm');
  assert.throws(() => loadState(file, gn), /sum\.safetensors: the snapshot holds denominator states .* normalization is group_norm/);
  const gnFile = join(tmp(), 'gn.safetensors');
  const gs = new GenerationState(gn, 1);
  generateFromState(gs, [prompt], { max_new_tokens: 1 });
  saveState(gnFile, gn, gs);
  gs.free();
  assert.throws(() => loadState(gnFile, s), /gn\.safetensors: the snapshot lacks denominator states .* normalization is sum/);
  gn.free();
  s.free();
});

const cli = resolve(dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });

test('supra linearize --normalization sum --decay none and supra train --linearize --normalization sum: a T2R model that trains and reloads', () => {
  const root = tmp();
  // a small teacher folder with a tokenizer: a few training steps from --init
  const tok = join(root, 'tok');
  mkdirSync(tok);
  for (const [name, text] of Object.entries(charTokenizerFiles())) writeFileSync(join(tok, name), text);
  writeFileSync(join(root, 'config.json'), JSON.stringify(tinyConfig({ vocab: 128 })));
  writeFileSync(join(root, 'text.txt'), Array.from({ length: 60 }, (_, i) => `the cat sat on the mat ${i % 3}. the dog ate the log.`).join('\n\n'));
  const data = ['--data', join(root, 'text.txt'), '--txt-split', 'paragraph', '--validation-fraction', '0.1', '--cache-dir', join(root, 'cache'), '--seq-len', '16', '--batch-size', '4', '--quiet'];
  const init = run('train', '--init', join(root, 'config.json'), '--tokenizer', tok, ...data, '--out', join(root, 'teacher'), '--steps', '2');
  assert.equal(init.status, 0, init.stderr);
  const teacher = join(root, 'teacher', 'final');

  const lin = run('linearize', teacher, '--out', join(root, 't2r'), '--normalization', 'sum', '--decay', 'none');
  assert.equal(lin.status, 0, lin.stderr);
  assert.match(lin.stdout, /decay none, qk-norm none, normalization sum/);
  const config = loadConfig(join(root, 't2r'));
  assert.deepEqual([config.supra!.normalization, config.supra!.decay, config.supra!.normalizer_eps], ['sum', 'none', 1e-6]);
  assert.match(run('info', join(root, 't2r')).stdout, /normalization sum \(T2R-style\)/);
  const bad = run('linearize', teacher, '--out', join(root, 'bad'), '--normalization', 'group_norm');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--normalization must be one of group-norm, sum, got "group_norm"/);

  const out = join(root, 'out');
  const tr = run('train', '--model', teacher, '--linearize', '--normalization', 'sum', '--decay', 'none', ...data, '--out', out,
    '--steps', '12', '--lr', '1e-2', '--warmup-steps', '2', '--eval-every', '12', '--eval-sequences', '4', '--eval-at-start');
  assert.equal(tr.status, 0, tr.stderr + tr.stdout);
  const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; val_loss?: number });
  const vals = metrics.filter((m) => m.val_loss !== undefined).map((m) => m.val_loss!);
  assert.ok(vals.length >= 2 && vals.every(Number.isFinite) && vals.at(-1)! < vals[0]!, `val loss ${vals.join(' → ')}`);
  const trained = loadDecoder(join(out, 'final'), { strict: true }).model;
  assert.equal(trained.config.supra!.normalization, 'sum');
  // decodes recurrently like its chunked forward
  const ids = Int32Array.from([40, 50, 60, 70, 80, 90, 100, 110]);
  const V = trained.config.vocab_size;
  const full = Float32Array.from(trained.step(ids, 1, ids.length, trained.newState(1)));
  const state = trained.newState(1);
  let worst = 0;
  for (let t = 0; t < ids.length; t++) {
    const logits = trained.step(ids.subarray(t, t + 1), 1, 1, state);
    worst = Math.max(worst, maxAbsDiff(logits.subarray(0, V), full.subarray(t * V, (t + 1) * V)));
  }
  assert.ok(worst < 1e-4, `recurrent decoding off the chunked forward by ${worst}`);
  state.free();
  trained.free();
  const misuse = run('train', '--model', teacher, '--normalization', 'sum', ...data, '--out', join(root, 'o3'), '--steps', '1');
  assert.equal(misuse.status, 2);
  assert.match(misuse.stderr, /--normalization choose the SUPRA layers of --linearize/);
});
