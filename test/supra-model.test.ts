// The whole SUPRA model (the fixture's teacher + kernels) through the decoder: logits in the three forms,
// hidden states, recurrent states, loss, every gradient, greedy decoding and AdamW after our backward.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../src/io/config.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { mapSource } from '../src/layers/params.js';
import { SupraAttention, SupraState, type AttentionForm } from '../src/layers/supra_attention.js';
import { DecoderLM } from '../src/models/decoder.js';
import { AdamW } from '../src/train/adamw.js';
import { gqaDir, maxAbs, maxAbsDiff } from './helpers/fixture.js';

const expected = readSafetensors(join(gqaDir, 'expected.safetensors'));
const grads = readSafetensors(join(gqaDir, 'grads_supra.safetensors'));
const steps = readSafetensors(join(gqaDir, 'adamw_supra.safetensors'));
const manifest = JSON.parse(readFileSync(join(gqaDir, 'manifest.json'), 'utf8')) as Record<string, Record<string, { fp32_run_elements_off_by_over_1e_5?: number; [k: string]: unknown }>>;
const inputs = JSON.parse(readFileSync(join(gqaDir, 'inputs.json'), 'utf8')) as {
  input_ids: number[][]; prompt_for_greedy: number[][]; greedy_new_tokens: number; chunk_size_for_chunked: number;
  adamw: { lr: number; betas: [number, number]; eps: number; weight_decay: number };
};
const ref = (name: string): Float32Array | Int32Array => {
  const t = expected.get(name);
  if (!t) throw new Error(`fixture lacks ${name}`);
  return t.data;
};

const B = 2, T = 33;
const ids = Int32Array.from(inputs.input_ids.flat());
const TOL = 1e-4;

function supraModel(): DecoderLM {
  const raw = JSON.parse(readFileSync(join(gqaDir, 'teacher', 'config.json'), 'utf8')) as Record<string, unknown>;
  const config = parseConfig({
    ...raw, architectures: ['SupraForCausalLM'],
    supra: { qk_norm: 'none', qk_norm_eps: 1e-5, decay: 'lightning', group_norm_eps: 1e-5 },
  });
  const model = new DecoderLM(config);
  const tensors = new Map([...readSafetensors(join(gqaDir, 'teacher', 'model.safetensors')), ...readSafetensors(join(gqaDir, 'supra_kernels.safetensors'))]);
  const { unexpected } = model.store.load(mapSource(tensors), 'fixture teacher + supra_kernels');
  assert.deepEqual(unexpected, []);
  return model;
}

function setForm(model: DecoderLM, form: AttentionForm, chunk = inputs.chunk_size_for_chunked): void {
  for (const layer of model.layers) {
    assert.ok(layer.mixer instanceof SupraAttention, 'a SupraForCausalLM config builds SUPRA mixers');
    layer.mixer.form = form;
    layer.mixer.setChunkSize(chunk);
  }
}

test('SUPRA logits in all three forms, hidden states and recurrent states match the fixture', () => {
  const model = supraModel();
  const errs: string[] = [];
  for (const [form, name] of [['chunked', 'supra.logits.chunked8'], ['parallel', 'supra.logits.parallel'], ['recurrent', 'supra.logits.recurrent']] as const) {
    setForm(model, form);
    const logits = model.forward(ids, B, T);
    const e = maxAbsDiff(logits, ref(name));
    errs.push(`${name} (${form} forward) ${e.toExponential(2)}`);
    assert.ok(e <= TOL, `${form}: ${name} off by ${e}`);
  }
  setForm(model, 'chunked', 64);
  model.forward(ids, B, T);
  model.hiddenStates().forEach((h, i) => {
    const e = maxAbsDiff(h, ref(`supra.hidden_states.${i}`));
    errs.push(`hidden_states.${i} ${e.toExponential(2)}`);
    assert.ok(e <= TOL, `hidden_states.${i} off by ${e}`);
  });
  // one token at a time through the recurrent states
  setForm(model, 'recurrent');
  const state = model.newState(B);
  const V = model.config.vocab_size;
  const want = ref('supra.logits.recurrent');
  let worst = 0;
  for (let t = 0; t < T; t++) {
    const logits = model.step([ids[t]!, ids[T + t]!], B, 1, state);
    for (let b = 0; b < B; b++) {
      worst = Math.max(worst, maxAbsDiff(logits.subarray(b * V, (b + 1) * V), want.subarray((b * T + t) * V, (b * T + t + 1) * V)));
    }
  }
  errs.push(`supra.logits.recurrent (token steps) ${worst.toExponential(2)}`);
  assert.ok(worst <= TOL, `recurrent steps off by ${worst}`);
  state.layers.forEach((s, l) => {
    assert.ok(s instanceof SupraState);
    const e = maxAbsDiff(s.data, ref(`supra.state.${l}`));
    errs.push(`state.${l} ${e.toExponential(2)}`);
    assert.ok(e <= TOL, `state.${l} off by ${e}`);
  });
  state.free();
  console.log(`# SUPRA model max abs errors: ${errs.join(', ')}`);
  model.free();
});

test('SUPRA greedy decoding (chunked prefill, then recurrent steps) gives the fixture tokens', () => {
  const model = supraModel();
  setForm(model, 'chunked', 8);
  const prompt = inputs.prompt_for_greedy[0]!;
  const V = model.config.vocab_size;
  const state = model.newState(1);
  let logits = model.step(prompt, 1, prompt.length, state);
  let last = logits.subarray((prompt.length - 1) * V, prompt.length * V);
  setForm(model, 'recurrent');
  const got: number[] = [];
  for (let i = 0; i < inputs.greedy_new_tokens; i++) {
    let best = 0;
    for (let j = 1; j < V; j++) if (last[j]! > last[best]!) best = j;
    got.push(best);
    if (i + 1 < inputs.greedy_new_tokens) {
      logits = model.step([best], 1, 1, state);
      last = logits.subarray(0, V);
    }
  }
  assert.deepEqual(got, Array.from(ref('supra.greedy_tokens')));
  assert.equal(state.layers[0]!.bytes(), 4 * 16 * 16 * 4, 'the state does not grow with the context');
  state.free();
  model.free();
});

test('SUPRA loss and every gradient match grads_supra', () => {
  const model = supraModel();
  setForm(model, 'chunked', 8);
  model.zeroGrad();
  const loss = model.loss(ids, B, T);
  const eLoss = Math.abs(loss - ref('supra.loss')[0]!);
  assert.ok(eLoss <= 1e-5, `loss ${loss} vs ${ref('supra.loss')[0]}`);
  model.backward();
  const names = new Set(model.params().map((p) => p.name));
  assert.deepEqual([...grads.keys()].filter((n) => !names.has(n)), [], 'every fixture gradient has a parameter');
  let worst = { rel: 0, name: '' };
  for (const p of model.params()) {
    const want = grads.get(p.name);
    assert.ok(want, `no reference gradient for ${p.name}`);
    const rel = maxAbsDiff(p.grad!, want.data) / maxAbs(want.data);
    if (rel > worst.rel) worst = { rel, name: p.name };
    assert.ok(rel <= 1e-4, `d${p.name}: max|g − g_ref| = ${rel} · max|g_ref|`);
  }
  console.log(`# SUPRA loss error ${eLoss.toExponential(2)}; worst gradient ${worst.name} at ${worst.rel.toExponential(2)} · max|g_ref|`);
  model.free();
});

test('AdamW after our own backward: two steps match step1/step2 (tiny-gradient elements within 2·lr)', () => {
  const model = supraModel();
  setForm(model, 'chunked', 8);
  const { lr, betas, eps, weight_decay } = inputs.adamw;
  const opt = new AdamW(model.params(), { lr, betas, eps, weightDecay: weight_decay });
  const report: string[] = [];
  for (const step of [1, 2]) {
    model.zeroGrad();
    model.loss(ids, B, T);
    model.backward();
    opt.step();
    let worst = 0;
    for (const p of model.params()) {
      const key = `step${step}.${p.name}`;
      const want = steps.get(key)!.data;
      const allowed = Number(manifest['adamw_supra.safetensors']![key]?.['fp32_run_elements_off_by_over_1e-5'] ?? 0);
      let over = 0;
      for (let i = 0; i < want.length; i++) {
        const d = Math.abs(p.data[i]! - want[i]!);
        if (d > TOL) {
          over++;
          assert.ok(d <= 2 * lr + 1e-6, `${key}[${i}] off by ${d} (> 2·lr)`);
        } else worst = Math.max(worst, d);
      }
      assert.ok(over <= allowed, `${key}: ${over} elements off by more than ${TOL}, the fixture allows ${allowed}`);
    }
    const loss = model.loss(ids, B, T);
    const wantLoss = steps.get(`loss.after_step${step}`)!.data[0]!;
    report.push(`step${step} max abs ${worst.toExponential(2)}, loss after ${Math.abs(loss - wantLoss).toExponential(2)} off`);
    assert.ok(Math.abs(loss - wantLoss) <= 1e-4, `loss after step ${step}: ${loss} vs ${wantLoss}`);
  }
  console.log(`# AdamW after own backward: ${report.join('; ')}`);
  opt.free();
  model.free();
});
