// The round trip of docs/scale-out.md: a SUPRA model -> `supra convert --format open_lm` (the HF wrapper's
// layout, or with --open-lm-train what open_lm.main loads) -> back through the one folder reader and
// `supra convert --format supra`: every tensor bit for bit (F32 and BF16), every config field, the same
// logits. What supra writes is also held against what TRI-ML/linear_open_lm builds from it: the Params its
// HF wrapper and its create_params make of the two JSON files, and the state dict its Transformer has for
// those Params (both transcribed below from open_lm/model.py, which cannot run here). The doc's mapping
// table, tensor table and supra commands are read from docs/scale-out.md and checked against the code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorOf } from './helpers/errors.js';
import { rng } from './helpers/random.js';
import { freshDirs, tempRoot } from './helpers/tmp.js';
import { byteTokenizerJson, writeTokenizer } from './helpers/tokenizers.js';
import { commands } from '../src/cli/commands.js';
import { openModel, saveCheckpoint } from '../src/io/checkpoint.js';
import { parseConfig, saveConfig, type ModelConfig } from '../src/io/config.js';
import { OPEN_LM_FIELDS, openLmConfig, ropeInvFreq, ropeThetaFromInvFreq, toOpenLm, toOpenLmModelJson, toOpenLmParams, type OpenLmParams } from '../src/io/open_lm.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { readTorchCheckpoint, writeTorchCheckpoint } from '../src/io/torch.js';
import { bf16ToF32, f32ToBf16 } from '../src/io/dtype.js';
import { loadDecoder } from '../src/models/auto.js';
import { convertCheckpoint, OPEN_LM_MODEL_JSON } from '../src/models/convert.js';
import { parameterShapes } from '../src/models/decoder.js';
import { supraConfig } from '../src/models/linearize.js';

const here = dirname(fileURLToPath(import.meta.url)); // dist/test
const repoRoot = resolve(here, '../..');
const cli = resolve(here, '../src/cli/main.js');
const supraCli = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000 });
const fresh = freshDirs(tempRoot('supra-scale-out-'));

// ---- models ------------------------------------------------------------------------------------

const TEACHER = {
  architectures: ['MistralForCausalLM'], model_type: 'mistral', vocab_size: 256, hidden_size: 32, intermediate_size: 48,
  num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 8, rms_norm_eps: 1e-5,
  rope_theta: 10000, max_position_embeddings: 512, tie_word_embeddings: false, hidden_act: 'silu', bos_token_id: 1, eos_token_id: 2,
};

interface Case {
  name: string;
  teacher: Record<string, unknown>;
  qk_norm: 'none' | 'rms';
  decay: 'lightning' | 'retnet' | 'none';
}

const CASES: Case[] = [
  { name: 'GQA, qk-norm none, lightning', teacher: TEACHER, qk_norm: 'none', decay: 'lightning' },
  { name: 'GQA, qk-norm rms, retnet, rope_theta 5e5', teacher: { ...TEACHER, rope_theta: 500000 }, qk_norm: 'rms', decay: 'retnet' },
  { name: 'MHA (shared kernel), tied, qk-norm rms, no decay', teacher: { ...TEACHER, num_key_value_heads: 4, tie_word_embeddings: true }, qk_norm: 'rms', decay: 'none' },
];

/** The SUPRA config of a case: the teacher's plus the linearize settings. */
function caseConfig(c: Case): ModelConfig {
  return supraConfig(parseConfig(c.teacher), { qk_norm: c.qk_norm, decay: c.decay });
}

/** A SUPRA folder for a case: every parameter random (norm gains too, so nothing is trivially 1), stored as dtype. */
function supraFolder(c: Case, dtype: 'F32' | 'BF16'): string {
  const config = caseConfig(c);
  const dir = fresh();
  const next = rng(CASES.indexOf(c) + 1);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, shape] of parameterShapes(config)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = (next() * 2 - 1) * (/norm\.weight$/.test(name) ? 0.5 : 0.3) + (/norm\.weight$/.test(name) ? 1 : 0);
    tensors.set(name, { shape, data });
  }
  saveConfig(dir, config, { torch_dtype: dtype === 'BF16' ? 'bfloat16' : 'float32' });
  saveCheckpoint(dir, tensors, { dtype });
  writeTokenizer(dir, byteTokenizerJson());
  return dir;
}

/** The stored tensors of a folder (safetensors or pytorch_model.bin) with their stored dtype and raw float32 bits. */
function storedTensors(dir: string): Map<string, { dtype: string; shape: number[]; bits: Buffer }> {
  const { stored } = openModel(dir);
  try {
    return new Map(stored.names().map((n) => {
      const { dtype, shape } = stored.info(n);
      const data = stored.readF32(n);
      return [n, { dtype, shape: [...shape], bits: Buffer.from(data.buffer, data.byteOffset, data.byteLength) }];
    }));
  } finally {
    stored.close();
  }
}

function assertSameStored(got: ReturnType<typeof storedTensors>, want: ReturnType<typeof storedTensors>, what: string): void {
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort(), `${what}: tensor names`);
  for (const [name, t] of want) {
    const u = got.get(name)!;
    assert.equal(u.dtype, t.dtype, `${what}: ${name} dtype`);
    assert.deepEqual(u.shape, t.shape, `${what}: ${name} shape`);
    assert.ok(u.bits.equals(t.bits), `${what}: ${name} differs`);
  }
}

/** Every field of ModelConfig that a model computes with (raw aside). */
const CONFIG_FIELDS = [
  'architecture', 'vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads',
  'head_dim', 'rms_norm_eps', 'rope_theta', 'tie_word_embeddings', 'attention_bias', 'o_proj_bias', 'max_position_embeddings',
  'bos_token_id', 'eos_token_id', 'supra',
] as const;

function assertSameConfig(got: ModelConfig, want: ModelConfig, what: string): void {
  for (const k of CONFIG_FIELDS) assert.deepEqual(got[k], want[k], `${what}: ${k}`);
}

const IDS = [3, 141, 59, 26, 53, 58, 97, 93, 23, 84, 62, 64, 33];

function logitsOf(dir: string, dtype: 'f32' | 'bf16' = 'f32'): Buffer {
  const { model } = loadDecoder(dir, { strict: true, dtype });
  try {
    return Buffer.from(Float32Array.from(model.forward(IDS, 1, IDS.length)).buffer);
  } finally {
    model.free();
  }
}

// ---- what TRI-ML/linear_open_lm makes of the files (open_lm/model.py, read, not run) ---------------

/** The Params fields of open_lm/model.py that a JSON can set (attn_func and the MoE knobs aside). */
const PARAMS_FIELDS = new Set([
  'dim', 'qk_head_dim', 'v_head_dim', 'intermediate_dim_ffn', 'n_layers', 'n_heads', 'n_heads_kv', 'vocab_size', 'norm_eps', 'seq_len',
  'post_embed_norm', 'weight_tying', 'norm_type', 'attn_name', 'apply_qk_norm', 'moe_loss_weight', 'moe_capacity_factor',
  'moe_expert_model_parallelism', 'moe_weight_parallelism', 'moe_num_experts', 'moe_top_k', 'moe_freq', 'positional_embedding_type',
  'ffn_type', 'decay_start', 'rotary_base_frequency', 'rotary_scale', 'use_retnet_slopes', 'use_decay',
]);

/** The Params open_lm builds; norm is the name get_norm_class was given ('layer_norm': the class default nn.LayerNorm). */
interface Params {
  dim: number; qk_head_dim: number; v_head_dim: number; intermediate_dim_ffn: number | null; n_layers: number; n_heads: number;
  n_heads_kv: number; vocab_size: number; norm_eps: number; seq_len: number; post_embed_norm: boolean; weight_tying: boolean;
  norm: string; attn_name: string; apply_qk_norm: boolean; positional_embedding_type: string; ffn_type: string;
  decay_start: number | null; rotary_base_frequency: number; rotary_scale: number; use_retnet_slopes: boolean; use_decay: boolean;
}

const PARAMS_DEFAULTS: Params = {
  dim: 512, qk_head_dim: NaN, v_head_dim: NaN, intermediate_dim_ffn: null, n_layers: 8, n_heads: 8, n_heads_kv: 8, vocab_size: -1,
  norm_eps: 1e-5, seq_len: 2048, post_embed_norm: false, weight_tying: false, norm: 'layer_norm', attn_name: 'xformers_attn',
  apply_qk_norm: false, positional_embedding_type: 'rotary', ffn_type: 'swiglu', decay_start: null, rotary_base_frequency: 10000,
  rotary_scale: 1, use_retnet_slopes: false, use_decay: false,
};

/** open_lm_hf's OpenLMForCausalLM: Params(**every config attribute named like a Params field), norm_type through get_norm_class. */
function hfWrapperParams(config: OpenLmParams): Params {
  const p: Record<string, unknown> = { ...PARAMS_DEFAULTS };
  for (const [k, v] of Object.entries(config)) if (PARAMS_FIELDS.has(k)) p[k === 'norm_type' ? 'norm' : k] = v;
  return p as unknown as Params;
}

/** open_lm.main's create_params for `--model x.json` with every command-line default (open_lm/params.py). */
function createParams(cfg: OpenLmParams): Params {
  const required = (k: string) => {
    if (cfg[k] === undefined) throw new Error(`create_params: KeyError '${k}'`);
    return cfg[k];
  };
  const dim = required('hidden_dim') as number;
  const nHeads = required('n_heads') as number;
  const or = <T>(k: string, d: T) => (cfg[k] ?? d) as T;
  return {
    dim, qk_head_dim: or('qk_head_dim', Math.floor(dim / nHeads)), v_head_dim: or('v_head_dim', Math.floor(dim / nHeads)),
    intermediate_dim_ffn: or('intermediate_dim_ffn', null), n_heads_kv: or('n_heads_kv', nHeads), n_layers: required('n_layers') as number,
    n_heads: nHeads, seq_len: required('seq_len') as number, vocab_size: required('vocab_size') as number,
    post_embed_norm: required('post_embed_norm') as boolean, weight_tying: required('weight_tying') as boolean,
    norm_eps: PARAMS_DEFAULTS.norm_eps, // not passed: Params' default
    norm: or('model_norm', 'default_layer_norm') === 'default_layer_norm' ? 'layer_norm' : (cfg.model_norm as string),
    attn_name: or('attn_name', 'auto'), apply_qk_norm: or('qk_norm', false), positional_embedding_type: or('positional_embedding_type', 'rotary'),
    rotary_base_frequency: or('rotary_base_frequency', 10000), rotary_scale: or('rotary_scale', 1), ffn_type: or('ffn_type', 'swiglu'),
    use_decay: or('use_decay', false), use_retnet_slopes: or('use_retnet_slopes', false), decay_start: or('decay_start', null),
  };
}

/** The state dict of open_lm's Transformer(p): name -> shape (Block, LinearAttn / CustomAttn, SwiGLU, the norm classes). */
function transformerStateShapes(p: Params): Map<string, number[]> {
  const out = new Map<string, number[]>();
  const norm = (name: string, n: number) => {
    out.set(`${name}.weight`, [n]);
    if (p.norm === 'layer_norm' || p.norm === 'lp_layer_norm') out.set(`${name}.bias`, [n]); // rms_norm and gain_only_*: a gain only
  };
  out.set('tok_embeddings.weight', [p.vocab_size, p.dim]);
  if (p.post_embed_norm) norm('post_embed_norm', p.dim);
  const qk = p.qk_head_dim, v = p.v_head_dim, H = p.n_heads, Hkv = p.n_heads_kv;
  const hidden = p.intermediate_dim_ffn ?? 256 * Math.floor((Math.floor((8 * p.dim) / 3) + 255) / 256);
  for (let l = 0; l < p.n_layers; l++) {
    const a = `layers.${l}.attention`;
    if (p.attn_name === 'linear_attn') {
      const qkIn = Math.floor(p.dim / H); // the projections' head size; qk is the kernels' output
      out.set(`${a}.in_proj.weight`, [H * qkIn + Hkv * qkIn + Hkv * v, p.dim]);
      out.set(`${a}.out_proj.weight`, [p.dim, H * v]);
      out.set(`${a}._totrain_embed.weight`, [H * qk, H * qkIn]);
      out.set(`${a}._totrain_embed.bias`, [H * qk]);
      if (H !== Hkv) {
        out.set(`${a}._totrain_embed_kv.weight`, [Hkv * qk, Hkv * qkIn]);
        out.set(`${a}._totrain_embed_kv.bias`, [Hkv * qk]);
      }
      if (p.apply_qk_norm) (norm(`${a}._totrain_q_norm`, H * qk), norm(`${a}._totrain_k_norm`, H * qk));
    } else {
      out.set(`${a}.in_proj.weight`, [H * qk + Hkv * qk + Hkv * v, p.dim]);
      out.set(`${a}.out_proj.weight`, [p.dim, H * v]);
      if (p.apply_qk_norm) (norm(`${a}.q_norm`, H * qk), norm(`${a}.k_norm`, H * qk));
    }
    assert.match(p.ffn_type, /^swiglu(_torch)?$/);
    out.set(`layers.${l}.feed_forward.w12.weight`, [2 * hidden, p.dim]);
    out.set(`layers.${l}.feed_forward.w3.weight`, [p.dim, hidden]);
    norm(`layers.${l}.attention_norm`, p.dim);
    norm(`layers.${l}.ffn_norm`, p.dim);
  }
  norm('norm', p.dim);
  out.set('output.weight', [p.vocab_size, p.dim]); // a tied model registers the one matrix under both names
  return out;
}

/** open_lm's model for Params p is the SUPRA model `config` describes: the settings it computes with. */
function assertSameModel(p: Params, config: ModelConfig, what: string): void {
  const s = config.supra!;
  assert.equal(p.attn_name, 'linear_attn', `${what}: attn_name`);
  assert.equal(p.norm, 'rms_norm', `${what}: norm`);
  assert.equal(p.norm_eps, config.rms_norm_eps, `${what}: norm_eps`);
  assert.equal(p.apply_qk_norm, s.qk_norm === 'rms', `${what}: qk-norm`);
  if (p.apply_qk_norm) assert.equal(p.norm_eps, s.qk_norm_eps, `${what}: qk-norm eps`);
  assert.equal(s.group_norm_eps, 1e-5, `${what}: open_lm's GroupNorm eps`);
  const decay = !p.use_decay ? 'none' : p.use_retnet_slopes ? 'retnet' : 'lightning';
  assert.equal(decay, s.decay, `${what}: decay`);
  assert.equal(p.decay_start, null, `${what}: decay_start`);
  assert.equal(p.positional_embedding_type, 'rotary', `${what}: rotate-half RoPE`);
  assert.equal(p.rotary_base_frequency, config.rope_theta, `${what}: RoPE theta`);
  assert.equal(p.rotary_scale, 1, `${what}: RoPE scale`);
  assert.equal(Math.floor(p.dim / p.n_heads), config.head_dim, `${what}: RoPE head size dim // n_heads`);
  assert.equal(p.qk_head_dim, config.head_dim, `${what}: square kernels`);
  assert.equal(p.weight_tying, config.tie_word_embeddings, `${what}: tying`);
}

// ---- the round trip --------------------------------------------------------------------------

for (const c of CASES) {
  for (const dtype of ['F32', 'BF16'] as const) {
    test(`round trip, ${c.name}, ${dtype}: supra -> open_lm (HF wrapper layout; open_lm.main's) -> supra, tensors bit for bit, config, logits`, () => {
      const config = caseConfig(c);
      const supraDir = supraFolder(c, dtype);
      const original = storedTensors(supraDir);
      const d = dtype === 'BF16' ? 'bf16' : 'f32';
      const hfDir = fresh();
      convertCheckpoint(supraDir, hfDir, { format: 'open_lm', dtype: d });
      const trainDir = fresh();
      convertCheckpoint(supraDir, trainDir, { format: 'open_lm', dtype: d, openLmTrain: true, openLmSeqLen: 64 });

      // the files are what open_lm builds: the HF wrapper's Transformer under "model.", open_lm.main's bare
      const hfConfig = JSON.parse(readFileSync(join(hfDir, 'config.json'), 'utf8')) as OpenLmParams;
      const modelJson = JSON.parse(readFileSync(join(trainDir, OPEN_LM_MODEL_JSON), 'utf8')) as OpenLmParams;
      for (const k of Object.keys(hfConfig)) assert.ok(PARAMS_FIELDS.has(k) || ['architectures', 'model_type', 'bos_token_id', 'eos_token_id', 'torch_dtype'].includes(k), `config.json: ${k} is no Params field`);
      const hfParams = hfWrapperParams(hfConfig);
      const mainParams = createParams(modelJson);
      assertSameModel(hfParams, config, 'HF wrapper');
      assertSameModel(mainParams, config, 'open_lm.main');
      assert.equal(hfParams.seq_len, config.max_position_embeddings);
      assert.equal(mainParams.seq_len, 64);
      const shapes = (t: ReturnType<typeof storedTensors>) => new Map([...t].map(([n, u]) => [n, u.shape]));
      const prefixed = (m: Map<string, number[]>) => new Map([...m].map(([n, s]) => [`model.${n}`, s]));
      assert.deepEqual(shapes(storedTensors(hfDir)), prefixed(transformerStateShapes(hfParams)));
      assert.deepEqual(shapes(storedTensors(trainDir)), transformerStateShapes(mainParams));
      assert.deepEqual(readTorchCheckpoint(join(trainDir, 'pytorch_model.bin')).get('tok_embeddings.weight')!.dtype, dtype);

      // and back: the folders read as the SUPRA model, and convert to it bit for bit
      for (const [what, dir] of [['HF wrapper layout', hfDir], ["open_lm.main's layout", trainDir]] as const) {
        const opened = openModel(dir);
        opened.checkpoint.close();
        assert.equal(opened.layout, 'open_lm', what);
        assertSameConfig(opened.config, config, what); // both read config.json, the HF wrapper's
        const back = fresh();
        convertCheckpoint(dir, back, { format: 'supra', dtype: d });
        assertSameStored(storedTensors(back), original, what);
        assertSameConfig(parseConfig(JSON.parse(readFileSync(join(back, 'config.json'), 'utf8')) as Record<string, unknown>), config, `${what}, converted back`);
      }
      // the JSON for open_lm.main maps back to the same model too (its seq_len is the training length)
      assertSameConfig(openLmConfig(modelJson), { ...config, max_position_embeddings: 64, bos_token_id: null, eos_token_id: null }, OPEN_LM_MODEL_JSON);
      if (dtype === 'F32') {
        const want = logitsOf(supraDir);
        assert.ok(logitsOf(hfDir).equals(want), 'logits of the HF-layout folder');
        assert.ok(logitsOf(trainDir).equals(want), "logits of open_lm.main's folder");
      }
    });
  }
}

test("open_lm.main's training checkpoint (module. / _orig_mod. names, epoch_N.pt) with config.json beside it -> supra convert -> the same logits", () => {
  const c = CASES[0]!;
  const supraDir = supraFolder(c, 'F32');
  const trainDir = fresh();
  convertCheckpoint(supraDir, trainDir, { format: 'open_lm', openLmTrain: true });
  const sd = readTorchCheckpoint(join(trainDir, 'pytorch_model.bin'));
  const want = logitsOf(supraDir);
  for (const prefix of ['module.', '_orig_mod.', 'module._orig_mod.']) {
    const run = fresh(); // as logs/<name>/checkpoints/
    writeTorchCheckpoint(join(run, 'epoch_3.pt'), new Map([...sd].map(([n, t]) => [prefix + n, { shape: t.shape, data: t.data }])));
    copyFileSync(join(trainDir, 'config.json'), join(run, 'config.json'));
    writeTokenizer(run, byteTokenizerJson());
    const back = fresh();
    const r = supraCli('convert', join(run, 'epoch_3.pt'), '--out', back);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /converted SupraForCausalLM from the open_lm layout/);
    assert.ok(logitsOf(back).equals(want), prefix);
    assertSameStored(storedTensors(back), storedTensors(supraDir), prefix);
  }
});

// ---- the bf16 inv_freq bug ---------------------------------------------------------------------

test('a BF16 open_lm folder written with --open-lm-inv-freq reads back (its buffers checked at BF16 precision); a wrong theta is still refused', () => {
  const c = CASES[1]!; // rope_theta 5e5
  const supraDir = supraFolder(c, 'BF16');
  const open = fresh();
  const r = supraCli('convert', supraDir, '--out', open, '--format', 'open_lm', '--dtype', 'bf16', '--open-lm-inv-freq');
  assert.equal(r.status, 0, r.stderr);
  const st = readSafetensors(join(open, 'model.safetensors'));
  assert.equal(st.get('model.layers.0.attention.pos_embed.inv_freq')!.dtype, 'BF16');
  const info = supraCli('info', open);
  assert.equal(info.status, 0, info.stderr);
  assert.ok(logitsOf(open, 'bf16').equals(logitsOf(supraDir, 'bf16')));
  const back = fresh();
  convertCheckpoint(open, back, { format: 'supra', dtype: 'bf16' });
  assertSameStored(storedTensors(back), storedTensors(supraDir), 'back from BF16 with buffers');

  // a config without theta: read from BF16 buffers, exactly (inv_freq[1] alone said 9136 for 1e4 at head size 128)
  const bf = (theta: number, d: number) => ropeInvFreq(d, theta).map((x) => bf16ToF32(f32ToBf16(x)));
  for (const theta of [10000, 500000, 1e6, 12345]) {
    for (const d of [8, 64, 128]) {
      const got = ropeThetaFromInvFreq(bf(theta, d), 'BF16')!;
      // BF16 pins theta only to its rounding: an exact answer for round thetas, a close one otherwise
      if (theta === 12345) assert.ok(Math.abs(got / theta - 1) < 0.02, `${theta}, d ${d}: ${got}`);
      else assert.equal(got, theta, `d ${d}`);
    }
    assert.equal(ropeThetaFromInvFreq(ropeInvFreq(128, theta)), theta, `${theta} from F32`);
  }
  const config = JSON.parse(readFileSync(join(open, 'config.json'), 'utf8')) as Record<string, unknown>;
  delete config.rotary_base_frequency;
  writeFileSync(join(open, 'config.json'), JSON.stringify(config));
  assert.equal(openModel(open).config.rope_theta, 500000);
  writeFileSync(join(open, 'config.json'), JSON.stringify({ ...config, rotary_base_frequency: 10000 }));
  assert.match(errorOf(() => openModel(open)), /inv_freq\[1\] = .* does not match rope_theta 10000 \(expected .* as BF16\)/);
});

// ---- refusals ----------------------------------------------------------------------------------

test('what open_lm cannot express is refused, naming the setting; the --model JSON also needs norm_eps 1e-5', () => {
  const base = caseConfig(CASES[0]!);
  const withSupra = (s: Partial<NonNullable<ModelConfig['supra']>>) => ({ ...base, supra: { ...base.supra!, ...s } });
  assert.match(errorOf(() => toOpenLmParams(withSupra({ group_norm_eps: 1e-3 }))), /open_lm's GroupNorm has eps 0\.00001 .*group_norm_eps 0\.001 cannot be expressed/);
  assert.match(errorOf(() => toOpenLmParams(withSupra({ qk_norm: 'rms', qk_norm_eps: 1e-6 }))), /qk-norms use the blocks' norm_eps \(0\.00001\); supra\.qk_norm_eps 0\.000001 cannot be expressed/);
  assert.match(errorOf(() => toOpenLmParams(withSupra({ qk_norm: 'layernorm' }))), /gain-only layernorm qk-norm cannot be expressed/);
  const six = supraConfig(parseConfig({ ...TEACHER, hidden_size: 48, num_attention_heads: 6, num_key_value_heads: 2 }));
  assert.match(errorOf(() => toOpenLmParams(six)), /lightning slopes only for a power-of-two head count \(its get_slopes fails for 6 heads\)/);
  assert.equal(toOpenLmParams({ ...six, supra: { ...six.supra!, decay: 'retnet' } }).n_heads, 6);
  // norm_eps: the HF wrapper reads it, open_lm.main cannot be given it
  const eps6 = { ...base, rms_norm_eps: 1e-6, supra: { ...base.supra!, qk_norm_eps: 1e-6 } };
  assert.equal(toOpenLmParams(eps6).norm_eps, 1e-6);
  assert.match(errorOf(() => toOpenLmModelJson(eps6)), /open_lm\.main builds its norms with norm_eps 0\.00001 .*rms_norm_eps 0\.000001 cannot be expressed in a --model JSON/);
  const supraDir = fresh();
  saveConfig(supraDir, eps6);
  saveCheckpoint(supraDir, new Map([...parameterShapes(eps6)].map(([n, s]) => [n, { shape: s, data: new Float32Array(s.reduce((a, b) => a * b, 1)) }])));
  const out = join(fresh(), 'out');
  assert.match(errorOf(() => convertCheckpoint(supraDir, out, { format: 'open_lm', openLmTrain: true })), /rms_norm_eps 0\.000001 cannot be expressed/);
  // the command line
  const usage = (...args: string[]) => supraCli('convert', supraDir, '--out', out, ...args).stderr;
  assert.match(usage('--open-lm-train'), /--open-lm-train only applies with --format open_lm/);
  assert.match(usage('--format', 'open_lm', '--open-lm-train', '--container', 'safetensors'), /--open-lm-train writes a pytorch_model\.bin/);
  assert.match(usage('--format', 'open_lm', '--open-lm-seq-len', '64'), /--open-lm-seq-len only applies with --open-lm-train/);
});

test("reading open_lm's own spellings: use_decay absent is no decay (Params' default), rotary_base_frequency, intermediate_dim_ffn; RoPE scaling and MoE refused", () => {
  const config = caseConfig(CASES[0]!);
  const json = toOpenLmModelJson(config);
  assert.equal(openLmConfig({ ...json, use_decay: undefined }).supra!.decay, 'none');
  assert.equal(openLmConfig({ ...json, use_decay: undefined, use_retnet_slopes: true }).supra!.decay, 'none');
  assert.equal(openLmConfig({ ...json, use_retnet_slopes: true }).supra!.decay, 'retnet');
  assert.equal(openLmConfig({ ...json, rotary_base_frequency: 1000000 }).rope_theta, 1e6);
  assert.equal(openLmConfig({ ...json, intermediate_dim_ffn: 96 }).intermediate_size, 96);
  assert.equal(openLmConfig({ ...json, intermediate_dim_ffn: undefined }).intermediate_size, 256); // 256·⌈⌊8·32/3⌋/256⌉
  assert.match(errorOf(() => openLmConfig({ ...json, rotary_scale: 2 })), /rotary_scale 2 is not supported/);
  assert.match(errorOf(() => openLmConfig({ ...json, moe_freq: 2 })), /moe_freq 2: mixture-of-experts layers are not supported/);
});

// ---- the doc -----------------------------------------------------------------------------------

const doc = readFileSync(join(repoRoot, 'docs', 'scale-out.md'), 'utf8');

/** The rows of the markdown table whose header line starts with `header`, as trimmed cells. */
function tableRows(header: string): string[][] {
  const lines = doc.split('\n');
  const start = lines.findIndex((l) => l.startsWith(header));
  assert.ok(start >= 0, `docs/scale-out.md has no table starting "${header}"`);
  const rows: string[][] = [];
  for (let i = start + 2; i < lines.length && lines[i]!.startsWith('|'); i++) rows.push(lines[i]!.split('|').slice(1, -1).map((c) => c.trim()));
  return rows;
}

const code = (cell: string) => cell.replace(/^`|`$/g, '');

/** The embedded teacher (assets/teacher) and a Mistral-7B-v0.1-shaped teacher, linearized with the defaults. */
const embedded = supraConfig(parseConfig(JSON.parse(readFileSync(join(repoRoot, 'assets', 'teacher', 'config.json'), 'utf8')) as Record<string, unknown>));
const mistral = supraConfig(parseConfig({
  architectures: ['MistralForCausalLM'], model_type: 'mistral', vocab_size: 32000, hidden_size: 4096, intermediate_size: 14336,
  num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 128, rms_norm_eps: 1e-5, rope_theta: 10000,
  max_position_embeddings: 32768, sliding_window: 4096, tie_word_embeddings: false, hidden_act: 'silu', bos_token_id: 1, eos_token_id: 2,
}));

test('docs/scale-out.md: the mapping table is OPEN_LM_FIELDS, row by row, with the values convert writes for the embedded teacher and Mistral-7B', () => {
  const rows = tableRows('| supra config |');
  assert.equal(rows.length, OPEN_LM_FIELDS.length, 'one row per field');
  const params = [toOpenLmParams(embedded), toOpenLmParams(mistral)];
  const jsons = [toOpenLmModelJson(embedded), toOpenLmModelJson(mistral)];
  OPEN_LM_FIELDS.forEach((f, i) => {
    const [supra, param, modelJson, a, b] = rows[i]!;
    assert.equal(code(supra!), f.supra, `row ${i + 1}`);
    assert.equal(code(param!), f.params, `row ${i + 1}`);
    if (f.modelJson === null) assert.match(modelJson!, /^—/, `row ${i + 1}: no --model key`);
    else assert.equal(code(modelJson!), f.modelJson, `row ${i + 1}`);
    [a, b].forEach((cell, m) => {
      assert.equal(code(cell!), JSON.stringify(params[m]![f.params]), `row ${i + 1} (${f.params}), ${m === 0 ? 'embedded teacher' : 'Mistral-7B'}`);
      if (f.modelJson !== null) assert.deepEqual(jsons[m]![f.modelJson], params[m]![f.params]);
    });
  });
});

test('docs/scale-out.md: the tensor table names every key of the state dict convert writes (GQA, qk-norm, untied)', () => {
  const rows = tableRows('| open_lm state-dict key |');
  const config = caseConfig(CASES[1]!);
  const docKeys = rows.map((r) => code(r[0]!)).flatMap((k) => (k.includes('N.') ? [0, 1].map((l) => k.replace('N.', `${l}.`)) : [k]));
  const tensors = new Map([...parameterShapes(config)].map(([n, s]) => [n, { dtype: 'F32', shape: s, data: new Float32Array(0) }]));
  const written = [...toOpenLm(tensors, config, { prefix: false, rotaryBuffers: true }).keys()];
  assert.deepEqual([...docKeys].sort(), written.sort());
});

test('docs/scale-out.md: every supra command in its shell blocks exists, with flags it takes', async () => {
  const blocks = [...doc.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const lines = blocks.flatMap((b) => b.replace(/\\\n/g, ' ').split('\n')).filter((l) => /(^|\s)(npx )?supra \w/.test(l) && !l.trimStart().startsWith('#'));
  assert.ok(lines.length >= 5, `found ${lines.length} supra commands`);
  for (const line of lines) {
    const words = line.replace(/#.*$/, '').trim().split(/\s+/);
    const at = words.indexOf('supra');
    const name = words[at + 1]!;
    assert.ok(name in commands, `${line}: no command ${name}`);
    const options = (await commands[name]!()).options;
    for (const w of words.slice(at + 2)) {
      if (!w.startsWith('-') || w === '-') continue;
      const flag = w.replace(/^--?/, '').replace(/=.*$/, '');
      const known = flag in options || Object.values(options).some((o) => o.short === flag) || flag === 'backend';
      assert.ok(known, `${line}: supra ${name} has no option ${w}`);
    }
  }
});
