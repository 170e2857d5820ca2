// open_lm layout (the released Mistral-SUPRA checkpoint): supra names -> open_lm -> supra names is the
// identity on the fixture teacher + kernels, GQA concatenations have the right shapes and contents, the
// config mapping round-trips, and bad checkpoints fail with clear errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { gqaDir } from './helpers/fixture.js';
import { parseConfig, type ModelConfig } from '../src/io/config.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { readTorchCheckpoint, writeTorchCheckpoint } from '../src/io/torch.js';
import {
  fromOpenLm,
  isOpenLmConfig,
  isOpenLmLayout,
  openLmConfig,
  ropeInvFreq,
  toOpenLm,
  toOpenLmParams,
  type FloatTensor,
  type TensorLike,
} from '../src/io/open_lm.js';
import { convertCheckpoint } from '../src/models/convert.js';
import { errorOf } from './helpers/errors.js';
import { tempRoot } from './helpers/tmp.js';

const root = tempRoot('supra-io-openlm-');

const teacherRaw = JSON.parse(readFileSync(join(gqaDir, 'teacher', 'config.json'), 'utf8')) as Record<string, unknown>;

function supraConfigOf(raw: Record<string, unknown>, qk_norm: 'none' | 'rms' = 'none'): ModelConfig {
  return parseConfig({ ...raw, architectures: ['SupraForCausalLM'], model_type: 'supra', supra: { qk_norm, qk_norm_eps: 1e-5, decay: 'lightning', group_norm_eps: 1e-5 } });
}

/** Fixture teacher + SUPRA kernels, in supra names. */
function fixtureSupra(): Map<string, TensorLike> {
  const m = new Map<string, TensorLike>(readSafetensors(join(gqaDir, 'teacher', 'model.safetensors')));
  for (const [n, t] of readSafetensors(join(gqaDir, 'supra_kernels.safetensors'))) m.set(n, t);
  return m;
}

function assertSameTensors(a: ReadonlyMap<string, TensorLike>, b: ReadonlyMap<string, TensorLike>): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [name, t] of a) {
    const u = b.get(name)!;
    assert.deepEqual([...u.shape], [...t.shape], name);
    assert.ok(Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)), `${name} differs`);
  }
}

const rowsOf = (t: FloatTensor, begin: number, end: number) => [...t.data.subarray(begin * t.shape[1]!, end * t.shape[1]!)];

test('fixture: supra -> open_lm has the released layout with GQA concat shapes and contents', () => {
  const config = supraConfigOf(teacherRaw);
  const supra = fixtureSupra();
  const open = toOpenLm(supra, config, { rotaryBuffers: true });
  // H=4, Hkv=2, D=16, hidden 64, ffn 128, vocab 256, 2 layers, untied
  for (let l = 0; l < 2; l++) {
    const p = `model.layers.${l}.`;
    const inProj = open.get(`${p}attention.in_proj.weight`)!;
    assert.deepEqual(inProj.shape, [64 + 32 + 32, 64]);
    assert.deepEqual(rowsOf(inProj, 0, 64), [...supra.get(`model.layers.${l}.self_attn.q_proj.weight`)!.data]);
    assert.deepEqual(rowsOf(inProj, 64, 96), [...supra.get(`model.layers.${l}.self_attn.k_proj.weight`)!.data]);
    assert.deepEqual(rowsOf(inProj, 96, 128), [...supra.get(`model.layers.${l}.self_attn.v_proj.weight`)!.data]);
    const w12 = open.get(`${p}feed_forward.w12.weight`)!;
    assert.deepEqual(w12.shape, [256, 64]);
    assert.deepEqual(rowsOf(w12, 0, 128), [...supra.get(`model.layers.${l}.mlp.gate_proj.weight`)!.data]);
    assert.deepEqual(rowsOf(w12, 128, 256), [...supra.get(`model.layers.${l}.mlp.up_proj.weight`)!.data]);
    assert.deepEqual(open.get(`${p}feed_forward.w3.weight`)!.shape, [64, 128]);
    assert.deepEqual(open.get(`${p}attention.out_proj.weight`)!.shape, [64, 64]);
    assert.deepEqual(open.get(`${p}attention._totrain_embed.weight`)!.shape, [64, 64]);
    assert.deepEqual(open.get(`${p}attention._totrain_embed.bias`)!.shape, [64]);
    assert.deepEqual(open.get(`${p}attention._totrain_embed_kv.weight`)!.shape, [32, 32]);
    assert.deepEqual(open.get(`${p}attention._totrain_embed_kv.bias`)!.shape, [32]);
    assert.deepEqual(open.get(`${p}attention.pos_embed.inv_freq`)!.shape, [8]);
    assert.ok(!open.has(`${p}attention._totrain_q_norm.weight`));
  }
  assert.deepEqual(open.get('model.tok_embeddings.weight')!.shape, [256, 64]);
  assert.deepEqual(open.get('model.output.weight')!.shape, [256, 64]);
  assert.ok(open.has('model.norm.weight'));
  // 3 top-level + per layer: 2 norms, in/out proj, 4 kernels, inv_freq, w12, w3 = 11
  assert.equal(open.size, 3 + 2 * 11);
  assert.ok(isOpenLmLayout(open.keys()));
  assert.ok(!isOpenLmLayout(supra.keys()));
});

test('fixture: supra -> open_lm -> supra is the identity (with and without the model. prefix, with and without a config)', () => {
  const config = supraConfigOf(teacherRaw);
  const supra = fixtureSupra();
  assertSameTensors(fromOpenLm(toOpenLm(supra, config), config), supra);
  assertSameTensors(fromOpenLm(toOpenLm(supra, config, { prefix: false }), config), supra);
  assertSameTensors(fromOpenLm(toOpenLm(supra, config, { rotaryBuffers: true })), supra); // shapes inferred
  assertSameTensors(fromOpenLm(toOpenLm(supra, config)), supra);
});

test('open_lm export matches what the paper code loads strictly: no inv_freq unless asked for', () => {
  // TRI-ML/linear_open_lm keeps RotaryEmbedding.inv_freq as a plain attribute, so it is no state_dict key
  const config = supraConfigOf(teacherRaw);
  const names = [...toOpenLm(fixtureSupra(), config).keys()];
  assert.ok(!names.some((n) => n.includes('inv_freq')), names.join(', '));
  assert.equal(names.length, 3 + 2 * 10);
  const withBuffers = toOpenLm(fixtureSupra(), config, { rotaryBuffers: true });
  assert.deepEqual([...withBuffers.get('model.layers.1.attention.pos_embed.inv_freq')!.data], [...ropeInvFreq(16, 10000)]);
  // convert: the default folder has none, --open-lm-inv-freq (openLmInvFreq) adds them; both read back
  const supraDir = join(root, 'supra-for-invfreq');
  mkdirSync(supraDir);
  writeFileSync(join(supraDir, 'config.json'), JSON.stringify(config.raw));
  writeTorchCheckpoint(join(supraDir, 'pytorch_model.bin'), new Map([...fixtureSupra()].map(([n, t]) => [n, { shape: [...t.shape], data: t.data as Float32Array }])));
  const plainDir = join(root, 'open-plain');
  const buffersDir = join(root, 'open-buffers');
  convertCheckpoint(supraDir, plainDir, { format: 'open_lm' });
  convertCheckpoint(supraDir, buffersDir, { format: 'open_lm', openLmInvFreq: true });
  const plainNames = [...readSafetensors(join(plainDir, 'model.safetensors')).keys()];
  assert.ok(!plainNames.some((n) => n.includes('inv_freq')));
  assert.ok(readSafetensors(join(buffersDir, 'model.safetensors')).has('model.layers.0.attention.pos_embed.inv_freq'));
  for (const d of [plainDir, buffersDir]) {
    const back = join(root, `${d.split('/').pop()}-back`);
    convertCheckpoint(d, back, { format: 'supra' });
    assertSameTensors(readSafetensors(join(back, 'model.safetensors')), fixtureSupra());
  }
});

test('fixture: open_lm tensors through a PyTorch zip (pytorch_model.bin) and back', () => {
  const config = supraConfigOf(teacherRaw);
  const supra = fixtureSupra();
  const path = join(root, 'pytorch_model.bin');
  writeTorchCheckpoint(path, toOpenLm(supra, config));
  assertSameTensors(fromOpenLm(readTorchCheckpoint(path), config), supra);
});

test('tied embeddings, MHA (kernel_q shared by q and k) and qk-norm map both ways', () => {
  const raw = { ...teacherRaw, num_key_value_heads: 4, tie_word_embeddings: true };
  const config = supraConfigOf(raw, 'rms');
  let seed = 1;
  const rand = (n: number) => new Float32Array(n).map(() => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1);
  const t = new Map<string, TensorLike>();
  const add = (name: string, shape: number[]) => t.set(name, { dtype: 'F32', shape, data: rand(shape.reduce((a, b) => a * b, 1)) });
  add('model.embed_tokens.weight', [256, 64]);
  for (let l = 0; l < 2; l++) {
    const p = `model.layers.${l}.`;
    add(`${p}input_layernorm.weight`, [64]);
    for (const x of ['q', 'k', 'v', 'o']) add(`${p}self_attn.${x}_proj.weight`, [64, 64]);
    add(`${p}self_attn.kernel_q.weight`, [64, 64]);
    add(`${p}self_attn.kernel_q.bias`, [64]);
    add(`${p}self_attn.q_norm.weight`, [64]);
    add(`${p}self_attn.k_norm.weight`, [64]);
    add(`${p}post_attention_layernorm.weight`, [64]);
    add(`${p}mlp.gate_proj.weight`, [128, 64]);
    add(`${p}mlp.up_proj.weight`, [128, 64]);
    add(`${p}mlp.down_proj.weight`, [64, 128]);
  }
  add('model.norm.weight', [64]);
  const open = toOpenLm(t, config);
  assert.ok(!open.has('model.layers.0.attention._totrain_embed_kv.weight'));
  assert.deepEqual(open.get('model.layers.0.attention.in_proj.weight')!.shape, [192, 64]);
  assert.deepEqual(open.get('model.layers.1.attention._totrain_k_norm.weight')!.shape, [64]);
  assert.equal(open.get('model.output.weight')!.data, open.get('model.tok_embeddings.weight')!.data);
  assertSameTensors(fromOpenLm(open, config), t);
  assertSameTensors(fromOpenLm(open), t); // no config: an output.weight identical to the embedding means tied
});

test('open_lm params <-> HF config: the released-style config.json maps to the fixture config', () => {
  const config = supraConfigOf(teacherRaw);
  const open = toOpenLm(fixtureSupra(), config, { rotaryBuffers: true });
  const params = toOpenLmParams(config);
  assert.ok(isOpenLmConfig(params));
  assert.ok(!isOpenLmConfig(teacherRaw));
  const back = openLmConfig(params, open);
  for (const k of ['architecture', 'vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'head_dim', 'rms_norm_eps', 'rope_theta', 'tie_word_embeddings', 'supra'] as const) {
    assert.deepEqual(back[k], config[k], k);
  }
  // a sparse config as open_lm's HF wrapper saves it: no kv heads, no ffn size, no theta, nested params
  const sparse = {
    architectures: ['OpenLMForCausalLM'],
    model_type: 'openlm',
    params_args_dict: { dim: 64, n_layers: 2, n_heads: 4, vocab_size: 256, norm_eps: 1e-5, seq_len: 2048, weight_tying: false, model_norm: 'rms_norm', ffn_type: 'swiglu_torch', attn_name: 'linear_attn', apply_qk_norm: false, use_decay: true },
  };
  const inferred = openLmConfig(sparse, open);
  assert.equal(inferred.architecture, 'SupraForCausalLM');
  assert.equal(inferred.num_key_value_heads, 2); // from in_proj rows
  assert.equal(inferred.intermediate_size, 128); // from w12 rows
  assert.equal(inferred.rope_theta, 10000); // from inv_freq
  assert.equal(inferred.tie_word_embeddings, false);
  assert.deepEqual(inferred.supra, config.supra);
  // inv_freq implies theta: a 1e6 buffer is read as 1e6
  const open1e6 = new Map(open);
  open1e6.set('model.layers.0.attention.pos_embed.inv_freq', { dtype: 'F32', shape: [8], data: ropeInvFreq(16, 1e6) });
  assert.equal(openLmConfig({ ...sparse }, open1e6).rope_theta, 1e6);
  // unsupported settings are refused
  assert.match(errorOf(() => openLmConfig({ ...params, norm_type: 'gain_only_layer_norm' }, open)), /RMSNorm/);
  assert.match(errorOf(() => openLmConfig({ ...params, decay_start: 0.5 }, open)), /decay_start/);
  assert.match(errorOf(() => openLmConfig({ ...params, n_heads: undefined }, open)), /n_heads/);
});

test('fromOpenLm errors: missing, unexpected, wrong shape, wrong theta, config mismatch, wrong layout', () => {
  const config = supraConfigOf(teacherRaw);
  const open = toOpenLm(fixtureSupra(), config);
  const without = (name: string) => new Map([...open].filter(([n]) => n !== name));
  assert.match(errorOf(() => fromOpenLm(without('model.layers.1.attention._totrain_embed_kv.bias'), config)), /missing tensor layers\.1\.attention\._totrain_embed_kv\.bias/);
  assert.match(errorOf(() => fromOpenLm(without('model.output.weight'), config)), /untied embeddings but the checkpoint has no output\.weight/);
  const extra = new Map(open).set('model.layers.0.attention.extra', { dtype: 'F32', shape: [1], data: new Float32Array(1) });
  assert.match(errorOf(() => fromOpenLm(extra, config)), /unexpected tensors \(1\): layers\.0\.attention\.extra/);
  const wrong = new Map(open).set('model.layers.1.attention.in_proj.weight', { dtype: 'F32', shape: [96, 64], data: new Float32Array(96 * 64) });
  assert.match(errorOf(() => fromOpenLm(wrong, config)), /layers\.1\.attention\.in_proj\.weight has shape \[96, 64\], expected \[128, 64\]/);
  const theta = new Map(open).set('model.layers.0.attention.pos_embed.inv_freq', { dtype: 'F32', shape: [8], data: ropeInvFreq(16, 500000) });
  assert.match(errorOf(() => fromOpenLm(theta, config)), /does not match rope_theta 10000/);
  assert.match(errorOf(() => fromOpenLm(open, supraConfigOf({ ...teacherRaw, num_hidden_layers: 3 }))), /layer count is 2, but the config says 3/);
  assert.match(errorOf(() => fromOpenLm(open, parseConfig(teacherRaw))), /not a SUPRA config/);
  assert.match(errorOf(() => fromOpenLm(fixtureSupra(), config)), /not in the open_lm layout/);
  // toOpenLm checks too
  const supra = fixtureSupra();
  supra.delete('model.layers.0.self_attn.kernel_k.weight');
  assert.match(errorOf(() => toOpenLm(supra, config)), /missing tensor model\.layers\.0\.self_attn\.kernel_k\.weight/);
  const supra2 = fixtureSupra().set('model.layers.0.self_attn.q_proj.bias', { dtype: 'F32', shape: [64], data: new Float32Array(64) });
  assert.match(errorOf(() => toOpenLm(supra2, config)), /no place for \(1\): model\.layers\.0\.self_attn\.q_proj\.bias/);
  // an o_proj bias (o_proj_bias without q/k/v biases) has no place in open_lm either way
  assert.match(errorOf(() => toOpenLm(fixtureSupra(), { ...config, o_proj_bias: true })), /open_lm has no o_proj bias/);
  assert.match(errorOf(() => fromOpenLm(open, { ...config, o_proj_bias: true })), /has an o_proj bias \(o_proj_bias\), which open_lm checkpoints do not hold/);
});

test('convertCheckpoint: supra folder -> open_lm (pytorch_model.bin) -> supra folder, values and config preserved', () => {
  const supraDir = join(root, 'supra-in');
  mkdirSync(supraDir);
  const config = supraConfigOf(teacherRaw);
  writeFileSync(join(supraDir, 'config.json'), JSON.stringify(config.raw));
  const supra = fixtureSupra();
  const plain = new Map([...supra].map(([n, t]) => [n, { shape: [...t.shape], data: t.data as Float32Array }]));
  writeTorchCheckpoint(join(supraDir, 'pytorch_model.bin'), plain); // a .bin input in supra names
  const openDir = join(root, 'open-out');
  convertCheckpoint(supraDir, openDir, { format: 'open_lm', container: 'pytorch' });
  assert.ok(existsSync(join(openDir, 'pytorch_model.bin')));
  const openCfg = JSON.parse(readFileSync(join(openDir, 'config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(openCfg.model_type, 'openlm');
  assert.equal(openCfg.n_heads_kv, 2);
  const back = join(root, 'supra-back');
  convertCheckpoint(openDir, back, { format: 'supra', dtype: 'f32' });
  assertSameTensors(readSafetensors(join(back, 'model.safetensors')), supra);
  const backCfg = parseConfig(JSON.parse(readFileSync(join(back, 'config.json'), 'utf8')) as Record<string, unknown>);
  assert.deepEqual(backCfg.supra, config.supra);
  assert.equal(backCfg.num_key_value_heads, 2);
  // bf16 export rounds every value once
  const bf = join(root, 'open-bf16');
  convertCheckpoint(supraDir, bf, { format: 'open_lm', dtype: 'bf16' });
  const st = readSafetensors(join(bf, 'model.safetensors'));
  assert.equal(st.get('model.layers.0.attention.in_proj.weight')!.dtype, 'BF16');
});
