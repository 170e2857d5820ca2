import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gqaDir } from './helpers/fixture.js';
import { configToJson, loadConfig, parseConfig, saveConfig, SUPRA_ARCHITECTURE } from '../src/io/config.js';
import { checkpointConfig } from '../src/models/convert.js';
import { errorOf } from './helpers/errors.js';
import { tempRoot, freshDirs } from './helpers/tmp.js';

const root = tempRoot('supra-io-config-');
const freshDir = freshDirs(root, 'c');

/** A folder holding config.json with the given object (or raw text). */
function folderWith(config: unknown): string {
  const dir = freshDir();
  writeFileSync(join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config, null, 2));
  return dir;
}

// Field values as published in the models' config.json files on the Hub.
const mistral7b = {
  architectures: ['MistralForCausalLM'],
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: 'silu',
  hidden_size: 4096,
  initializer_range: 0.02,
  intermediate_size: 14336,
  max_position_embeddings: 32768,
  model_type: 'mistral',
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  sliding_window: 4096,
  tie_word_embeddings: false,
  torch_dtype: 'bfloat16',
  use_cache: true,
  vocab_size: 32000,
};

const qwen2_05b = {
  architectures: ['Qwen2ForCausalLM'],
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151643,
  hidden_act: 'silu',
  hidden_size: 896,
  initializer_range: 0.02,
  intermediate_size: 4864,
  max_position_embeddings: 131072,
  max_window_layers: 24,
  model_type: 'qwen2',
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 131072,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

test('the fixture teacher config (Llama, GQA, untied)', () => {
  const c = loadConfig(join(gqaDir, 'teacher'));
  assert.equal(c.architecture, 'LlamaForCausalLM');
  assert.equal(c.model_type, 'llama');
  assert.deepEqual(
    [c.vocab_size, c.hidden_size, c.intermediate_size, c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads, c.head_dim],
    [256, 64, 128, 2, 4, 2, 16],
  );
  assert.equal(c.rms_norm_eps, 1e-5);
  assert.equal(c.rope_theta, 1e4);
  assert.equal(c.tie_word_embeddings, false);
  assert.equal(c.attention_bias, false);
  assert.equal(c.o_proj_bias, false);
  assert.equal(c.sliding_window, null);
  assert.equal(c.supra, null);
});

test('a Mistral config: GQA 32/8, sliding window, no biases', () => {
  const c = loadConfig(folderWith(mistral7b));
  assert.equal(c.architecture, 'MistralForCausalLM');
  assert.equal(c.model_type, 'mistral');
  assert.equal(c.num_key_value_heads, 8);
  assert.equal(c.head_dim, 128);
  assert.equal(c.rms_norm_eps, 1e-5);
  assert.equal(c.sliding_window, 4096);
  assert.equal(c.attention_bias, false);
  assert.equal(c.max_position_embeddings, 32768);
  assert.equal(c.eos_token_id, 2);
  // Mistral never has attention biases, even if a stray field says so
  assert.equal(parseConfig({ ...mistral7b, attention_bias: true }).attention_bias, false);
  // defaults where fields are missing: model_type from the architecture, MHA when kv heads are absent
  const { model_type: _m, num_key_value_heads: _k, sliding_window: _s, ...bare } = mistral7b;
  const d = parseConfig(bare);
  assert.equal(d.model_type, 'mistral');
  assert.equal(d.num_key_value_heads, 32);
  assert.equal(d.sliding_window, null);
});

test('a Qwen2 config: q/k/v biases, tied embeddings, rope_theta 1e6, unused sliding window', () => {
  const c = loadConfig(folderWith(qwen2_05b));
  assert.equal(c.architecture, 'Qwen2ForCausalLM');
  assert.equal(c.attention_bias, true);
  assert.equal(c.o_proj_bias, false);
  assert.equal(c.tie_word_embeddings, true);
  assert.equal(c.rope_theta, 1e6);
  assert.equal(c.rms_norm_eps, 1e-6);
  assert.equal(c.head_dim, 64);
  assert.equal(c.num_key_value_heads, 2);
  assert.equal(c.sliding_window, null, 'use_sliding_window is false');
  assert.equal(parseConfig({ ...qwen2_05b, use_sliding_window: true }).sliding_window, 131072);
});

test('Llama with attention_bias has biases on q, k, v and o; explicit head_dim wins', () => {
  const c = parseConfig({ ...qwen2_05b, architectures: ['LlamaForCausalLM'], model_type: 'llama', attention_bias: true, head_dim: 32 });
  assert.equal(c.attention_bias, true);
  assert.equal(c.o_proj_bias, true);
  assert.equal(c.head_dim, 32);
  assert.equal(c.sliding_window, null);
  assert.deepEqual(parseConfig({ ...mistral7b, architectures: ['LlamaForCausalLM'], model_type: 'llama', eos_token_id: [128001, 128009] }).eos_token_id, [128001, 128009]);
  // plain RoPE spelled out as rope_scaling is accepted
  assert.equal(parseConfig({ ...mistral7b, rope_scaling: { rope_type: 'default' } }).rope_theta, 10000);
});

test('errors name the file: missing field, unknown architecture, invalid JSON, bad values', () => {
  const { hidden_size: _h, ...noHidden } = mistral7b;
  const d1 = folderWith(noHidden);
  assert.equal(errorOf(() => loadConfig(d1)), `supra: ${join(d1, 'config.json')}: missing field "hidden_size"`);

  const d2 = folderWith({ ...mistral7b, architectures: ['GPT2LMHeadModel'] });
  assert.match(errorOf(() => loadConfig(d2)), new RegExp(`${join(d2, 'config.json')}: unknown architecture "GPT2LMHeadModel"; supra reads LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, SupraForCausalLM`));

  const d3 = folderWith('{"architectures": ["LlamaForCausalLM"], "hidden_size": 64,');
  assert.match(errorOf(() => loadConfig(d3)), new RegExp(`${join(d3, 'config.json')}: not valid JSON`));

  const d4 = join(root, 'empty');
  mkdirSync(d4);
  assert.match(errorOf(() => loadConfig(d4)), new RegExp(`${join(d4, 'config.json')}: not found`));

  const d5 = folderWith('[1, 2]');
  assert.match(errorOf(() => loadConfig(d5)), /config\.json: expected a JSON object/);

  const d6 = folderWith({ ...mistral7b, architectures: undefined });
  assert.match(errorOf(() => loadConfig(d6)), /config\.json: missing "architectures"/);

  assert.match(errorOf(() => parseConfig({ ...mistral7b, num_key_value_heads: 5 }, 'x/config.json')), /x\/config\.json: num_attention_heads 32 is not a multiple of num_key_value_heads 5/);
  assert.match(errorOf(() => parseConfig({ ...mistral7b, hidden_size: 100, num_attention_heads: 3, num_key_value_heads: 1 })), /hidden_size 100 is not a multiple of num_attention_heads 3, and no head_dim is given/);
  assert.match(errorOf(() => parseConfig({ ...mistral7b, vocab_size: 0 })), /field "vocab_size" must be a positive integer, got 0/);
  assert.match(errorOf(() => parseConfig({ ...mistral7b, rms_norm_eps: -1 })), /field "rms_norm_eps" must be a positive number/);
  assert.match(errorOf(() => parseConfig({ ...mistral7b, tie_word_embeddings: 'yes' })), /field "tie_word_embeddings" must be true or false/);
  assert.match(errorOf(() => parseConfig({ ...mistral7b, eos_token_id: 'x' })), /field "eos_token_id" must be a token id or a list of ids/);
  assert.match(errorOf(() => parseConfig({ ...mistral7b, hidden_act: 'gelu' })), /hidden_act "gelu" is not supported/);
  assert.match(errorOf(() => parseConfig({ ...mistral7b, rope_scaling: { rope_type: 'llama3', factor: 32 } })), /rope_scaling .*llama3.* is not supported/);
  assert.match(errorOf(() => parseConfig({ ...mistral7b, mlp_bias: true })), /mlp_bias is not supported/);
  assert.match(errorOf(() => parseConfig({ ...mistral7b, architectures: [SUPRA_ARCHITECTURE] })), /SupraForCausalLM config lacks its "supra" object/);
  assert.match(errorOf(() => parseConfig({ ...mistral7b, architectures: [SUPRA_ARCHITECTURE], supra: { qk_norm: 'l2' } })), /supra\.qk_norm must be none\|rms\|layernorm, got "l2"/);
});

test('config.json of the wrong type, or with wrong-typed or absurd fields, names the file and the field', () => {
  // null, a list or a scalar: refused by every reader of a folder's config (HF and open_lm alike)
  for (const [text, what] of [['null', 'null'], ['"LlamaForCausalLM"', 'string "LlamaForCausalLM"'], ['3', 'number 3']]) {
    const d = folderWith(text);
    const want = `supra: ${join(d, 'config.json')}: expected a JSON object, got ${what}`;
    assert.equal(errorOf(() => loadConfig(d)), want);
    assert.equal(errorOf(() => checkpointConfig(d, new Map())), want);
  }
  // architectures must be a list: a bare string is refused with what to write instead
  const d1 = folderWith({ ...mistral7b, architectures: 'MistralForCausalLM' });
  assert.equal(
    errorOf(() => checkpointConfig(d1, new Map())),
    `supra: ${join(d1, 'config.json')}: field "architectures" must be a list of class names such as ["LlamaForCausalLM"], got "MistralForCausalLM"`,
  );
  assert.match(errorOf(() => parseConfig({ ...mistral7b, architectures: [] })), /field "architectures" must be a list of class names .*got \[\]/);
  assert.match(errorOf(() => parseConfig({ ...mistral7b, architectures: [7] })), /field "architectures" must be a list of class names .*got \[7\]/);
  assert.match(errorOf(() => parseConfig({ ...mistral7b, model_type: 3 })), /field "model_type" must be a string, got 3/);
  // sizes: positive integers within int32
  assert.match(errorOf(() => parseConfig({ ...mistral7b, vocab_size: 2 ** 40 })), /field "vocab_size" = 1099511627776 is too large \(at most 2147483647\)/);
  assert.match(errorOf(() => parseConfig({ ...mistral7b, max_position_embeddings: 1e300 })), /field "max_position_embeddings" = 1e\+300 is too large/);
  assert.match(errorOf(() => parseConfig({ ...mistral7b, intermediate_size: 14336.5 })), /field "intermediate_size" must be a positive integer, got 14336.5/);
  assert.match(errorOf(() => parseConfig({ ...mistral7b, num_hidden_layers: -2 })), /field "num_hidden_layers" must be a positive integer, got -2/);
  assert.match(errorOf(() => parseConfig({ ...mistral7b, head_dim: '128' })), /field "head_dim" must be a positive integer, got "128"/);
  assert.match(errorOf(() => parseConfig({ ...mistral7b, o_proj_bias: 'no' })), /field "o_proj_bias" must be true or false/);
});

test('saveConfig writes raw fields plus supra updates, atomically, and reads back the same', () => {
  const teacher = loadConfig(folderWith({ ...qwen2_05b, custom_field: { keep: [1, 2] } }));
  const supra = {
    ...teacher,
    architecture: SUPRA_ARCHITECTURE,
    supra: { qk_norm: 'rms' as const, qk_norm_eps: 1e-5, decay: 'lightning' as const, group_norm_eps: 1e-5, normalization: 'group_norm' as const, normalizer_eps: 1e-6 },
  };
  const dir = join(root, 'saved');
  mkdirSync(dir);
  writeFileSync(join(dir, 'config.json'), '{"old": true}');
  const path = saveConfig(dir, supra, { torch_dtype: 'float32' });
  assert.equal(path, join(dir, 'config.json'));
  assert.deepEqual(readdirSync(dir), ['config.json'], 'no temp file left');
  const json = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  assert.deepEqual(json.architectures, [SUPRA_ARCHITECTURE]);
  assert.deepEqual(json.custom_field, { keep: [1, 2] }, 'fields supra does not use are kept');
  assert.equal(json.torch_dtype, 'float32');
  assert.equal(json.use_sliding_window, false);
  assert.equal(json.sliding_window, 131072, 'the unused Qwen2 window is kept as read');
  assert.equal(json.old, undefined);
  const back = loadConfig(dir);
  const strip = ({ raw: _r, ...rest }: typeof back) => rest;
  assert.deepEqual(strip(back), strip({ ...supra, raw: {} }));
  assert.equal(back.supra!.qk_norm, 'rms');
  assert.equal(back.attention_bias, true, 'the Qwen2 biases survive the architecture change');

  // an o_proj bias without q/k/v biases is written too, so it survives a save and load
  const llama = parseConfig({ ...qwen2_05b, architectures: ['LlamaForCausalLM'], model_type: 'llama' });
  const oOnly = parseConfig(configToJson({ ...llama, o_proj_bias: true }));
  assert.equal(oOnly.attention_bias, false);
  assert.equal(oOnly.o_proj_bias, true);

  // back to a teacher: the supra object is dropped
  const plain = configToJson({ ...back, architecture: 'Qwen2ForCausalLM', supra: null });
  assert.equal(plain.supra, undefined);

  // a config supra could not read back is refused and the old file stays
  const before = readFileSync(path, 'utf8');
  assert.match(errorOf(() => saveConfig(dir, { ...back, num_key_value_heads: 5 })), /num_attention_heads 14 is not a multiple of num_key_value_heads 5/);
  assert.equal(readFileSync(path, 'utf8'), before);
  assert.ok(!existsSync(`${path}.tmp-${process.pid}`));
});
