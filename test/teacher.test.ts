// The Llama-family teacher against the reference fixture (float64 PyTorch values), plus tied-embedding
// and Qwen2 (attention biases) models checked by finite differences, and the loading API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensors } from '../src/io/safetensors.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { parseConfig } from '../src/io/config.js';
import { DecoderLM } from '../src/models/decoder.js';
import { AutoModelForCausalLM } from '../src/api.js';
import { loadDecoder } from '../src/models/auto.js';
import { Mt19937 } from '../src/core/random.js';
import { arenaStats } from '../src/core/memory.js';
import { gqaDir, maxAbs, maxAbsDiff } from './helpers/fixture.js';

const expected = readSafetensors(join(gqaDir, 'expected.safetensors'));
const gradsRef = readSafetensors(join(gqaDir, 'grads_teacher.safetensors'));
const inputs = JSON.parse(readFileSync(join(gqaDir, 'inputs.json'), 'utf8')) as {
  input_ids: number[][];
  prompt_for_greedy: number[][];
  greedy_new_tokens: number;
  kv_cache_prefill: number;
};
const teacherDir = join(gqaDir, 'teacher');
const B = inputs.input_ids.length;
const T = inputs.input_ids[0]!.length;
const ids = Int32Array.from(inputs.input_ids.flat());
const LOGIT_TOL = 1e-4;
const GRAD_REL_TOL = 1e-4;

function ref(name: string): Float32Array {
  const t = expected.get(name);
  if (!t) throw new Error(`fixture lacks ${name}`);
  return t.data as Float32Array;
}

function argmax(x: Float32Array, from: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (x[from + i]! > x[from + best]!) best = i;
  return best;
}

test('teacher logits and hidden states match the fixture (from_pretrained, forward({input_ids}))', async () => {
  const lm = await AutoModelForCausalLM.from_pretrained(teacherDir, { backend: undefined });
  assert.deepEqual(lm.unexpectedTensors, []);
  const out = await lm.forward({ input_ids: inputs.input_ids, output_hidden_states: true });
  assert.deepEqual(out.logits.dims, [B, T, 256]);
  const err = maxAbsDiff(out.logits.data, ref('teacher.logits'));
  console.log(`# teacher.logits max abs err ${err.toExponential(2)}`);
  assert.ok(err <= LOGIT_TOL, `logits err ${err}`);
  const hs = out.hidden_states!;
  assert.equal(hs.length, lm.config.num_hidden_layers + 1);
  hs.forEach((h, i) => {
    const e = maxAbsDiff(h.data, ref(`teacher.hidden_states.${i}`));
    console.log(`# teacher.hidden_states.${i} max abs err ${e.toExponential(2)}`);
    assert.ok(e <= LOGIT_TOL, `hidden_states.${i} err ${e}`);
  });
  // the same ids as a transformers.js-style tensor with int64 data
  const big = await lm.forward({ input_ids: { data: BigInt64Array.from(Array.from(ids, BigInt)), dims: [B, T] } });
  assert.deepEqual(Array.from(big.logits.data), Array.from(out.logits.data));
  lm.dispose();
});

test('teacher loss and every parameter gradient match the fixture', () => {
  const { model } = loadDecoder(teacherDir);
  model.zeroGrad();
  const loss = model.loss(ids, B, T);
  model.backward();
  const lossRef = ref('teacher.loss')[0]!;
  console.log(`# teacher.loss ${loss} ref ${lossRef} err ${Math.abs(loss - lossRef).toExponential(2)}`);
  assert.ok(Math.abs(loss - lossRef) <= 1e-5);
  const names = model.params().map((p) => p.name).sort();
  assert.deepEqual(names, [...gradsRef.keys()].sort(), 'a reference gradient for every parameter and no other');
  let worst = 0;
  let worstName = '';
  for (const p of model.params()) {
    const g = gradsRef.get(p.name)!.data as Float32Array;
    const rel = maxAbsDiff(p.grad!, g) / maxAbs(g);
    if (rel > worst) [worst, worstName] = [rel, p.name];
    assert.ok(rel <= GRAD_REL_TOL, `${p.name}: max|g − g_ref| / max|g_ref| = ${rel}`);
  }
  console.log(`# teacher grads: worst max|g − g_ref|/max|g_ref| = ${worst.toExponential(2)} (${worstName})`);
  // backward accumulates: a second pass doubles every gradient, zeroGrad resets; and a second step at
  // the same (B, T) allocates nothing (activations, scratch and gradients are reused)
  const before = Float32Array.from(model.param('model.norm.weight').grad!);
  const live = arenaStats().liveBytes;
  model.loss(ids, B, T);
  model.backward();
  assert.equal(arenaStats().liveBytes, live, 'no arena allocation in a second training step');
  const after = model.param('model.norm.weight').grad!;
  assert.ok(maxAbsDiff(after, before.map((v) => 2 * v)) <= 1e-6 * maxAbs(before) * 4);
  model.zeroGrad();
  assert.equal(maxAbs(model.param('model.norm.weight').grad!), 0);
  model.free();
});

test('teacher KV cache: prefill 16, then 17 single steps, equals teacher.logits.kv_cache', () => {
  const { model } = loadDecoder(teacherDir);
  const V = model.config.vocab_size;
  const P = inputs.kv_cache_prefill;
  const got = new Float32Array(B * T * V);
  const state = model.newState(B);
  const chunk = (t0: number, n: number): Int32Array => {
    const a = new Int32Array(B * n);
    for (let b = 0; b < B; b++) a.set(ids.subarray(b * T + t0, b * T + t0 + n), b * n);
    return a;
  };
  const place = (logits: Float32Array, t0: number, n: number): void => {
    for (let b = 0; b < B; b++) got.set(logits.subarray(b * n * V, (b + 1) * n * V), (b * T + t0) * V);
  };
  place(model.step(chunk(0, P), B, P, state), 0, P);
  for (let t = P; t < T; t++) place(model.step(chunk(t, 1), B, 1, state), t, 1);
  assert.equal(state.position, T);
  assert.ok(state.bytes() > 0);
  const err = maxAbsDiff(got, ref('teacher.logits.kv_cache'));
  console.log(`# teacher.logits.kv_cache max abs err ${err.toExponential(2)}`);
  assert.ok(err <= LOGIT_TOL, `kv-cache logits err ${err}`);
  state.free();
  model.free();
});

test('teacher greedy decoding with the KV cache reproduces teacher.greedy_tokens', () => {
  const { model } = loadDecoder(teacherDir);
  const V = model.config.vocab_size;
  const prompt = Int32Array.from(inputs.prompt_for_greedy[0]!);
  const state = model.newState(1);
  let logits = model.step(prompt, 1, prompt.length, state);
  let last = (prompt.length - 1) * V;
  const tokens: number[] = [];
  for (let i = 0; i < inputs.greedy_new_tokens; i++) {
    const next = argmax(logits, last, V);
    tokens.push(next);
    logits = model.step(Int32Array.of(next), 1, 1, state);
    last = 0;
  }
  assert.deepEqual(tokens, Array.from(expected.get('teacher.greedy_tokens')!.data));
  state.free();
  model.free();
});

// ---------------------------------------------------------------- tiny random models, finite differences

/** A tiny random model: weights N(0,1)/√fan_in, gains 1 + 0.1·N, biases 0.1·N, embeddings N(0, 1). */
function randomModel(raw: Record<string, unknown>, seed: number): DecoderLM {
  const model = new DecoderLM(parseConfig(raw));
  const rng = new Mt19937(seed);
  for (const p of model.params()) {
    const isGain = p.name.endsWith('norm.weight');
    const isBias = p.name.endsWith('.bias');
    const std = p.shape.length === 2 && !p.name.includes('embed_tokens') ? 1 / Math.sqrt(p.shape[1]!) : isBias || isGain ? 0.1 : 1;
    for (let i = 0; i < p.data.length; i++) p.data[i] = (isGain ? 1 : 0) + std * rng.normal();
  }
  return model;
}

const tinyBase = {
  vocab_size: 32, hidden_size: 24, intermediate_size: 40, num_hidden_layers: 2,
  num_attention_heads: 6, num_key_value_heads: 2, head_dim: 4, rms_norm_eps: 1e-5, rope_theta: 500,
};

/**
 * Central differences of the float32 loss with Richardson extrapolation (error O(h⁴)), evaluated in
 * float64 from the actual float32 perturbations, on the largest-gradient entry and two random entries of
 * every parameter; each must agree with backward within 2% of the entry plus 1e-3 of the tensor's max.
 */
function checkGradientsByFiniteDifferences(model: DecoderLM, seed: number): void {
  const Bm = 2, Tm = 7;
  const rng = new Mt19937(seed);
  const tokens = Int32Array.from({ length: Bm * Tm }, () => Math.floor(rng.random() * model.config.vocab_size));
  model.zeroGrad();
  model.loss(tokens, Bm, Tm);
  model.backward();
  const lossAt = (): number => model.loss(tokens, Bm, Tm);
  let worst = 0;
  for (const p of model.params()) {
    const g = Float32Array.from(p.grad!);
    const gmax = maxAbs(g);
    assert.ok(gmax > 0, `${p.name}: gradient is all zero`);
    let top = 0;
    for (let i = 1; i < g.length; i++) if (Math.abs(g[i]!) > Math.abs(g[top]!)) top = i;
    const picks = [top, Math.floor(rng.random() * g.length), Math.floor(rng.random() * g.length)];
    for (const i of picks) {
      const w = p.data[i]!;
      const central = (h: number): number => {
        p.data[i] = w + h;
        const up = p.data[i]!;
        const lUp = lossAt();
        p.data[i] = w - h;
        const down = p.data[i]!;
        const lDown = lossAt();
        p.data[i] = w;
        return (lUp - lDown) / (up - down);
      };
      const h = 2e-2;
      const fd = (4 * central(h / 2) - central(h)) / 3;
      const err = Math.abs(fd - g[i]!);
      worst = Math.max(worst, err / gmax);
      assert.ok(err <= 0.02 * Math.abs(g[i]!) + 1e-3 * gmax, `${p.name}[${i}]: backward ${g[i]}, finite differences ${fd}`);
    }
  }
  console.log(`# finite differences: worst |fd − g| / max|g| = ${worst.toExponential(2)}`);
}

test('tied embeddings (Llama, 6 heads / 2 kv heads): backward matches finite differences', () => {
  const model = randomModel({ ...tinyBase, architectures: ['LlamaForCausalLM'], tie_word_embeddings: true }, 11);
  assert.ok(!model.params().some((p) => p.name === 'lm_head.weight'), 'no separate head when tied');
  checkGradientsByFiniteDifferences(model, 12);
  model.free();
});

test('Qwen2 (q/k/v biases, tied): backward matches finite differences', () => {
  const model = randomModel(
    { ...tinyBase, architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', num_key_value_heads: 3, tie_word_embeddings: true },
    21,
  );
  const names = model.params().map((p) => p.name);
  assert.ok(names.includes('model.layers.0.self_attn.q_proj.bias'));
  assert.ok(names.includes('model.layers.1.self_attn.v_proj.bias'));
  assert.ok(!names.includes('model.layers.0.self_attn.o_proj.bias'), 'Qwen2 has no o_proj bias');
  checkGradientsByFiniteDifferences(model, 22);
  model.free();
});

test('Llama with attention_bias has an o_proj bias too; untied MHA: backward matches finite differences', () => {
  const model = randomModel(
    { ...tinyBase, architectures: ['LlamaForCausalLM'], attention_bias: true, num_attention_heads: 3, num_key_value_heads: 3, head_dim: 8 },
    31,
  );
  assert.ok(model.params().some((p) => p.name === 'model.layers.0.self_attn.o_proj.bias'));
  assert.ok(model.params().some((p) => p.name === 'lm_head.weight'));
  checkGradientsByFiniteDifferences(model, 32);
  model.free();
});

test('decoding with the KV cache matches the full forward, across cache growth and odd chunk sizes', () => {
  const model = randomModel({ ...tinyBase, architectures: ['MistralForCausalLM'], sliding_window: 4096 }, 41);
  const Bm = 2, Tm = 150; // more than the initial cache capacity of 64
  const V = model.config.vocab_size;
  const rng = new Mt19937(42);
  const tokens = Int32Array.from({ length: Bm * Tm }, () => Math.floor(rng.random() * V));
  const full = Float32Array.from(model.forward(tokens, Bm, Tm));
  const state = model.newState(Bm);
  let t0 = 0;
  let worst = 0;
  for (const n of [5, 1, 60, 3, 1, 80]) {
    const chunk = new Int32Array(Bm * n);
    for (let b = 0; b < Bm; b++) chunk.set(tokens.subarray(b * Tm + t0, b * Tm + t0 + n), b * n);
    const logits = model.step(chunk, Bm, n, state);
    for (let b = 0; b < Bm; b++) {
      const e = maxAbsDiff(logits.subarray(b * n * V, (b + 1) * n * V), full.subarray((b * Tm + t0) * V, (b * Tm + t0 + n) * V));
      worst = Math.max(worst, e);
    }
    t0 += n;
  }
  assert.equal(t0, Tm);
  assert.ok(worst <= 1e-5, `cached vs full logits differ by ${worst}`);
  state.free();
  model.free();
});

// ---------------------------------------------------------------- loading

test('from_pretrained checks tensors: missing, wrong shape, and extras are reported', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'supra-teacher-'));
  try {
    copyFileSync(join(teacherDir, 'config.json'), join(dir, 'config.json'));
    const all = readSafetensors(join(teacherDir, 'model.safetensors'));
    const write = (edit: (m: Map<string, { shape: number[]; data: Float32Array }>) => void): void => {
      const m = new Map([...all].map(([n, t]) => [n, { shape: t.shape, data: t.data as Float32Array }]));
      edit(m);
      writeSafetensors(join(dir, 'model.safetensors'), m);
    };
    write((m) => m.delete('model.layers.1.mlp.up_proj.weight'));
    await assert.rejects(AutoModelForCausalLM.from_pretrained(dir), /model\.safetensors: missing tensor model\.layers\.1\.mlp\.up_proj\.weight/);
    write((m) => m.set('model.norm.weight', { shape: [2, 32], data: new Float32Array(64) }));
    await assert.rejects(AutoModelForCausalLM.from_pretrained(dir), /model\.safetensors: tensor model\.norm\.weight has shape \[2, 32\], the config expects \[64\]/);
    write((m) => m.set('model.layers.0.self_attn.rotary_emb.inv_freq', { shape: [8], data: new Float32Array(8) }));
    const lm = await AutoModelForCausalLM.from_pretrained(dir);
    assert.deepEqual(lm.unexpectedTensors, ['model.layers.0.self_attn.rotary_emb.inv_freq']);
    lm.dispose();
    await assert.rejects(AutoModelForCausalLM.from_pretrained(dir, { strict: true }), /not used by LlamaForCausalLM: model\.layers\.0\.self_attn\.rotary_emb\.inv_freq/);
    // a config whose shapes disagree with the file
    const cfg = JSON.parse(readFileSync(join(teacherDir, 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, intermediate_size: 96 }));
    write(() => {});
    await assert.rejects(AutoModelForCausalLM.from_pretrained(dir), /gate_proj\.weight has shape \[128, 64\], the config expects \[96, 64\]/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('forward rejects bad input ids', async () => {
  const lm = await AutoModelForCausalLM.from_pretrained(teacherDir);
  await assert.rejects(lm.forward({ input_ids: [[1, 2, 3], [4, 5]] }), /row 1 has 2 tokens/);
  await assert.rejects(lm.forward({ input_ids: [[1, 256]] }), /token id 256 at position 1 is outside the vocabulary/);
  await assert.rejects(lm.forward({ input_ids: [[1, 2]], attention_mask: [[1, 0]] }), /padding/);
  const one = await lm.forward({ input_ids: [5, 6, 7] });
  assert.deepEqual(one.logits.dims, [1, 3, 256]);
  lm.dispose();
});
