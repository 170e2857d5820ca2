import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { gqaDir } from './helpers/fixture.js';
import { loadConfig, parseConfig, readConfigJson, saveConfig } from '../src/io/config.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { parameterShapes } from '../src/models/decoder.js';
import { initSupraParams, supraConfig } from '../src/models/linearize.js';
import { Mt19937 } from '../src/core/random.js';
import { freshDirs, tempRoot } from './helpers/tmp.js';

const fresh = freshDirs(tempRoot('supra-linearize-'));

test('Mt19937 matches std::mt19937 (10000th draw of the default seed is 4123659995)', () => {
  const g = new Mt19937(5489);
  let v = 0;
  for (let i = 0; i < 10000; i++) v = g.nextU32();
  assert.equal(v, 4123659995);
});

test('kernel initialisation reproduces the reference kernels bit for bit from the fixture seed', () => {
  const config = loadConfig(join(gqaDir, 'teacher'));
  const ref = readSafetensors(join(gqaDir, 'supra_kernels.safetensors'));
  const made = initSupraParams(config, { seed: 1000 });
  assert.deepEqual(made.map((t) => t.name).sort(), [...ref.keys()].sort());
  for (const t of made) {
    const r = ref.get(t.name)!;
    assert.deepEqual(t.shape, r.shape, t.name);
    assert.deepEqual(Array.from(t.data), Array.from(r.data), t.name);
  }
});

test('multi-head attention shares one kernel; qk-norm adds gains at 1', () => {
  const config = { ...loadConfig(join(gqaDir, 'teacher')), num_key_value_heads: 4 };
  const names = initSupraParams(config, { seed: 1, qk_norm: 'rms' }).map((t) => t.name);
  assert.ok(!names.some((n) => n.includes('kernel_k')));
  assert.ok(names.includes('model.layers.1.self_attn.q_norm.weight'));
  const gains = initSupraParams(config, { seed: 1, qk_norm: 'layernorm' }).find((t) => t.name.endsWith('k_norm.weight'))!;
  assert.equal(gains.shape[0], 64);
  assert.ok(gains.data.every((v) => v === 1));
});

test('supraConfig keeps the teacher fields and records the settings', () => {
  const teacher = loadConfig(join(gqaDir, 'teacher'));
  const c = supraConfig(teacher, { decay: 'retnet', qk_norm: 'rms' });
  assert.equal(c.architecture, 'SupraForCausalLM');
  assert.deepEqual(c.raw.architectures, ['SupraForCausalLM']);
  assert.equal(c.raw.model_type, 'supra');
  assert.deepEqual(c.supra, { qk_norm: 'rms', qk_norm_eps: 1e-5, decay: 'retnet', group_norm_eps: 1e-5, normalization: 'group_norm', normalizer_eps: 1e-6 });
  assert.equal(c.raw.rope_theta, 10000);
  assert.throws(() => supraConfig(c), /already a SUPRA model/);
});

test('a Qwen2 teacher linearized, its config saved and reloaded: q/k/v biases, none on o_proj, each mixer in its declaration order', () => {
  // the bias rule reads attention_bias and o_proj_bias; a SUPRA config no longer names the Qwen2 family
  const teacher = parseConfig({ ...readConfigJson(join(gqaDir, 'teacher')).raw, architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2' });
  const dir = fresh();
  saveConfig(dir, supraConfig(teacher));
  const reloaded = loadConfig(dir);
  assert.equal(reloaded.attention_bias, true);
  assert.equal(reloaded.o_proj_bias, false);
  const p = 'model.layers.0.self_attn.';
  const layer0 = (config: typeof teacher) => [...parameterShapes(config).keys()].filter((n) => n.startsWith(p)).map((n) => n.slice(p.length));
  // the model's params() follow declaration order (optimizer state, gradient-norm sums): pinned per mixer
  assert.deepEqual(layer0(teacher), ['q_proj.weight', 'q_proj.bias', 'k_proj.weight', 'k_proj.bias', 'v_proj.weight', 'v_proj.bias', 'o_proj.weight']);
  assert.deepEqual(layer0(reloaded), [
    'q_proj.weight', 'k_proj.weight', 'v_proj.weight', 'o_proj.weight', 'q_proj.bias', 'k_proj.bias', 'v_proj.bias',
    'kernel_q.weight', 'kernel_q.bias', 'kernel_k.weight', 'kernel_k.bias',
  ]);
});
