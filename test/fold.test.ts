// Folded feature maps (SupraAttention.foldForInference, DecoderLM.foldForInference, loadDecoder's
// foldFeatureMaps): kernel_q∘q_proj and kernel_k∘k_proj composed into one weight each. Exact up to float32
// rounding at f32 (GQA and not, Qwen2's biases, qk-norm, the sum normalization; every form and decoding);
// the composed weight quantized once from the file's values; the parts gone from the store and from the bytes
// a token reads; the folded model refused for training; the CLI's --feature-maps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { allocF32, free } from '../src/core/memory.js';
import { matmul } from '../src/core/ops.js';
import { WEIGHT_TYPES, type Weight } from '../src/core/weights.js';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { parseConfig } from '../src/io/config.js';
import { SupraAttention, type AttentionForm } from '../src/layers/supra_attention.js';
import { loadDecoder } from '../src/models/auto.js';
import { DecoderLM, foldsFeatureMaps, parameterMemory } from '../src/models/decoder.js';
import { defaultWeightPlace } from '../src/core/select.js';
import { weightBytes } from '../src/core/weights.js';
import { linearizeFolder, supraConfig, type LinearizeOptions } from '../src/models/linearize.js';
import { randomModel } from '../src/bench/model.js';
import { weightBytesPerToken } from '../src/bench/weights.js';
import { generate } from '../src/generate/generate.js';
import { writeModelFiles } from '../src/train/checkpoint.js';
import { loadState, modelFingerprint, saveState } from '../src/generate/snapshot.js';
import { GenerationState } from '../src/generate/state.js';
import { LoraAdapters } from '../src/models/lora.js';
import { AttentionTransfer } from '../src/models/attention_transfer.js';
import { maxAbs, maxAbsDiff } from './helpers/fixture.js';
import { freshDirs, tempRoot } from './helpers/tmp.js';

const here = dirname(fileURLToPath(import.meta.url));
const teacherDir = resolve(here, '../../assets/teacher');
const cli = resolve(here, '../src/cli/main.js');
const newDir = freshDirs(tempRoot('supra-fold-'));

const IDS = Array.from({ length: 40 }, (_, i) => (i * 37 + 11) % 96);

function tiny(architecture: string, kvHeads: number, options: LinearizeOptions = {}) {
  const teacher = parseConfig({
    architectures: [architecture], vocab_size: 96, hidden_size: 48, intermediate_size: 64, num_hidden_layers: 2,
    num_attention_heads: 6, num_key_value_heads: kvHeads, rms_norm_eps: 1e-5, rope_theta: 10000,
    max_position_embeddings: 256, tie_word_embeddings: false,
  });
  return supraConfig(teacher, options);
}

function setForm(model: DecoderLM, form: AttentionForm): void {
  for (const l of model.layers) (l.mixer as SupraAttention).form = form;
}

/** Logits of IDS step by step through the decoding state, in pieces of 1, 7 and the rest. */
function decoded(model: DecoderLM): Float32Array {
  const V = model.config.vocab_size;
  const out = new Float32Array(IDS.length * V);
  const state = model.newState(1);
  try {
    let t = 0;
    for (const n of [1, 7, IDS.length - 8]) {
      out.set(model.step(IDS.slice(t, t + n), 1, n, state), t * V);
      t += n;
    }
  } finally {
    state.free();
  }
  return out;
}

const CASES: Array<{ name: string; architecture: string; kv: number; options?: LinearizeOptions }> = [
  { name: 'GQA (own key kernel), Llama', architecture: 'LlamaForCausalLM', kv: 2 },
  { name: 'shared kernel (kv heads = heads), Qwen2 biases on q/k/v', architecture: 'Qwen2ForCausalLM', kv: 6 },
  { name: 'GQA, Qwen2 biases, rms qk-norm', architecture: 'Qwen2ForCausalLM', kv: 3, options: { qk_norm: 'rms' } },
  { name: 'GQA, sum normalization', architecture: 'MistralForCausalLM', kv: 2, options: { normalization: 'sum' } },
];

for (const c of CASES) {
  test(`folded at f32 equals separate within float32 rounding, every form and decoding: ${c.name}`, () => {
    const config = tiny(c.architecture, c.kv, c.options);
    const separate = randomModel(config, 7);
    const folded = randomModel(config, 7);
    try {
      const want = separate.forward(IDS, 1, IDS.length).slice();
      const before = weightBytesPerToken(folded);
      assert.equal(folded.foldForInference(), true);
      assert.equal(folded.foldedForInference, true);
      const names = folded.params().map((p) => p.name);
      for (const gone of ['q_proj.weight', 'k_proj.weight', 'kernel_q.weight', 'kernel_q.bias']) {
        assert.ok(!names.some((n) => n.endsWith(`self_attn.${gone}`)), `${gone} left the store`);
      }
      assert.ok(names.includes('model.layers.1.self_attn.q_feature_map.weight') && names.includes('model.layers.1.self_attn.k_feature_map.bias'));
      // the kernels' square matrices no longer read: H·D squared, and (Hkv·D) squared under GQA (a shared kernel counted once before)
      const D = config.head_dim, H = config.num_attention_heads, Hkv = config.num_key_value_heads;
      const kernels = config.num_hidden_layers * 4 * ((H * D) ** 2 + (Hkv !== H ? (Hkv * D) ** 2 : 0));
      const biasesAdded = config.num_hidden_layers * 4 * (Hkv !== H ? 0 : H * D); // a shared kernel's bias now in both maps
      const qkBiases = config.attention_bias ? config.num_hidden_layers * 4 * (H * D + Hkv * D) : 0;
      assert.equal(before - weightBytesPerToken(folded), kernels - biasesAdded + qkBiases);
      for (const form of ['chunked', 'parallel', 'recurrent'] as const) {
        setForm(folded, form);
        const got = folded.forward(IDS, 1, IDS.length);
        const diff = maxAbsDiff(got, want);
        assert.ok(diff <= 2e-5 * Math.max(1, maxAbs(want)), `${form}: max |logit diff| ${diff} of ${maxAbs(want)}`);
      }
      setForm(folded, 'chunked');
      const stepped = decoded(folded);
      assert.ok(maxAbsDiff(stepped, want) <= 2e-5 * Math.max(1, maxAbs(want)), 'decoding steps');
      // inference only: no gradients, no backward, with the reason
      assert.throws(() => folded.enableGrads(), /cannot train: its feature maps are folded into q_proj and k_proj/);
      assert.throws(() => (folded.layers[0]!.mixer as SupraAttention).backward(new Float32Array(48), new Float32Array(48)), /folded into the projections \(for inference\)/);
      assert.throws(() => writeModelFiles(join(newDir(), 'out'), folded, null), /cannot save this model as a model folder: its feature maps are folded/);
      assert.equal(folded.foldForInference(), true, 'folding again changes nothing');
      assert.deepEqual(folded.params().map((p) => p.name), names);
    } finally {
      separate.free();
      folded.free();
    }
  });
}

test('a softmax teacher has nothing to fold and stays trainable; the default folds bf16 and int8 only', () => {
  const teacher = new DecoderLM(parseConfig({
    architectures: ['LlamaForCausalLM'], vocab_size: 32, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 1,
    num_attention_heads: 2, num_key_value_heads: 1, rms_norm_eps: 1e-5, rope_theta: 10000, max_position_embeddings: 64,
  }));
  try {
    const names = teacher.params().map((p) => p.name);
    assert.equal(teacher.foldForInference(), false);
    assert.equal(teacher.foldedForInference, false);
    assert.deepEqual(teacher.params().map((p) => p.name), names);
    teacher.enableGrads();
  } finally {
    teacher.free();
  }
  assert.equal(foldsFeatureMaps({}), false);
  assert.equal(foldsFeatureMaps({ dtype: 'f32' }), false);
  assert.equal(foldsFeatureMaps({ dtype: 'bf16' }), true);
  assert.equal(foldsFeatureMaps({ dtype: 'int8' }), true);
  assert.equal(foldsFeatureMaps({ dtype: 'int8', foldFeatureMaps: false }), false);
  assert.equal(foldsFeatureMaps({ dtype: 'f32', foldFeatureMaps: true }), true);
});

test('loaded at bf16 and int8 the embedded SUPRA model folds by default: composed from the file\'s float32 values and rounded once; logits near f32, greedy tokens alike', () => {
  const dir = join(newDir(), 'supra');
  linearizeFolder(teacherDir, dir, { seed: 3, dtype: 'F32' });
  const f32 = loadDecoder(dir).model;
  assert.equal(f32.foldedForInference, false);
  const PROMPT = Array.from({ length: 48 }, (_, i) => (i * 997 + 5) % 4096);
  const want = f32.forward(PROMPT, 1, PROMPT.length).slice();
  const greedy = (m: DecoderLM) => generate(m, [PROMPT], { max_new_tokens: 10, do_sample: false, eos_token_id: null }).sequences[0];
  const ckpt = openCheckpoint(dir);
  try {
    for (const [dtype, tol] of [['bf16', 0.05], ['int8', 0.5]] as const) {
      const model = loadDecoder(dir, { dtype }).model;
      try {
        assert.equal(model.foldedForInference, true, dtype);
        const diff = maxAbsDiff(model.forward(PROMPT, 1, PROMPT.length), want);
        assert.ok(diff > 0 && diff <= tol, `${dtype}: max |logit diff| ${diff} (max |logit| ${maxAbs(want)})`);
        assert.deepEqual(greedy(model), greedy(f32), dtype);
        // layer 0's composed query map: W_φ·W_q of the file's values in float32, stored once in the type
        const p = 'model.layers.0.self_attn';
        const [rows, cols] = ckpt.info(`${p}.q_proj.weight`).shape as [number, number];
        const a = allocF32(rows * rows), b = allocF32(rows * cols), c = allocF32(rows * cols);
        try {
          ckpt.readInto(`${p}.kernel_q.weight`, a);
          ckpt.readInto(`${p}.q_proj.weight`, b);
          matmul({ transA: false, transB: false, m: rows, n: cols, k: rows, a, b, c });
          const expected: Weight = WEIGHT_TYPES[dtype].alloc(rows * cols, 'heap', cols);
          WEIGHT_TYPES[dtype].fromFloat(c, expected, 0);
          const got = model.param(`${p}.q_feature_map.weight`).stored!;
          assert.deepEqual(Array.from(got.data), Array.from(expected.data), `${dtype}: the composed values`);
          if (got.type === 'int8' && expected.type === 'int8') assert.deepEqual(Array.from(got.scales), Array.from(expected.scales));
        } finally {
          free(a);
          free(b);
          free(c);
        }
      } finally {
        model.free();
      }
    }
    // kept separate on request: the weight type alone
    const separate = loadDecoder(dir, { dtype: 'bf16', foldFeatureMaps: false }).model;
    assert.equal(separate.foldedForInference, false);
    assert.ok(separate.params().some((p) => p.name.endsWith('kernel_q.weight')));
    separate.free();
  } finally {
    ckpt.close();
    f32.free();
  }
});

test('--feature-maps on eval: folded or separate in the JSON report, the default by dtype, a bad value a usage error', () => {
  const dir = join(newDir(), 'supra');
  linearizeFolder(teacherDir, dir, { seed: 3 });
  const text = join(newDir(), 'text.txt');
  writeFileSync(text, readFileSync(join(here, '../../docs/figures/heldout.txt'), 'utf8').slice(0, 6000));
  const run = (...args: string[]) => spawnSync(process.execPath, [cli, 'eval', '--model', dir, ...args], { encoding: 'utf8' });
  const report = (...args: string[]) => {
    const json = join(newDir(), 'eval.json');
    const r = run('--text', text, '--max-length', '64', '--json', json, ...args);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(readFileSync(json, 'utf8')) as { featureMaps: string; dtype: string; perplexity: { overall: { perplexity: number } } };
  };
  const f32 = report();
  assert.equal(f32.featureMaps, 'separate');
  const bf16 = report('--dtype', 'bf16');
  assert.equal(bf16.featureMaps, 'folded');
  const bf16Separate = report('--dtype', 'bf16', '--feature-maps', 'separate');
  assert.equal(bf16Separate.featureMaps, 'separate');
  const f32Folded = report('--feature-maps', 'folded');
  assert.equal(f32Folded.featureMaps, 'folded');
  const ppl = (r: typeof f32) => r.perplexity.overall.perplexity;
  assert.ok(Math.abs(ppl(f32Folded) / ppl(f32) - 1) < 1e-4, `f32 folded ${ppl(f32Folded)} vs ${ppl(f32)}`);
  assert.ok(Math.abs(ppl(bf16) / ppl(bf16Separate) - 1) < 0.01, `bf16 folded ${ppl(bf16)} vs separate ${ppl(bf16Separate)}`);
  const bad = run('--text', text, '--feature-maps', 'fused');
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /--feature-maps/);
});

test('the memory check counts what folding takes at once: the float32 temporaries and the composed weights kept', () => {
  const inArena = defaultWeightPlace() === 'arena';
  for (const kv of [2, 6]) {
    const config = tiny('LlamaForCausalLM', kv);
    const n = config.hidden_size, D = config.head_dim;
    for (const dtype of ['bf16', 'int8'] as const) {
      // composing [m, m] after [m, n]: temporaries 4(m² + 2mn) in the arena; kept: the weight (where matrices live) and its bias
      const part = (m: number) => ({ temporaries: 4 * (m * m + 2 * m * n), matrix: weightBytes(dtype, m, n), bias: 4 * m });
      const q = part(config.num_attention_heads * D), k = part(kv * D);
      const duringQuery = { arena: q.temporaries + q.bias + (inArena ? q.matrix : 0), heap: inArena ? 0 : q.matrix };
      const duringKey = { arena: q.bias + k.temporaries + k.bias + (inArena ? q.matrix + k.matrix : 0), heap: inArena ? 0 : q.matrix + k.matrix };
      const want = duringQuery.arena + duringQuery.heap >= duringKey.arena + duringKey.heap ? duringQuery : duringKey;
      const need = parameterMemory(config, { dtype });
      assert.deepEqual([need.foldingArenaBytes, need.foldingHeapBytes], [want.arena, want.heap], `${dtype}, ${kv} kv heads`);
      if (kv === 6) assert.equal(want, duringKey, 'a shared kernel: the key composition, with the query\'s weight kept, is the peak');
      assert.equal(parameterMemory(config, { dtype, foldFeatureMaps: false }).foldingArenaBytes, 0);
    }
    assert.equal(parameterMemory(config).foldingArenaBytes, 0, 'f32 does not fold by default');
  }
  const config = tiny('LlamaForCausalLM', 2);
  const teacher = parseConfig({ ...config.raw, architectures: ['LlamaForCausalLM'], model_type: 'llama', supra: undefined });
  assert.equal(parameterMemory(teacher, { dtype: 'bf16' }).foldingArenaBytes, 0, 'a teacher has nothing to fold');
});

test('a folded model keeps the fingerprint of its weights as loaded: state snapshots continue across --feature-maps; LoRA, attention transfer and a training model are refused', () => {
  const dir = join(newDir(), 'supra');
  linearizeFolder(teacherDir, dir, { seed: 3 }); // a BF16 teacher: BF16 kernels, so f32 and bf16 loads hold the same values
  const separate = loadDecoder(dir).model;
  const folded = loadDecoder(dir, { dtype: 'bf16' }).model;
  try {
    assert.equal(folded.foldedForInference, true);
    assert.equal(modelFingerprint(folded), modelFingerprint(separate));
    assert.equal(modelFingerprint(folded, true), modelFingerprint(separate), 'a fresh fingerprint of a folded model is the one taken before folding');
    const prompt = Array.from({ length: 20 }, (_, i) => (i * 13 + 7) % 4096);
    for (const [from, to] of [[folded, separate], [separate, folded]] as const) {
      const path = join(newDir(), 'state.safetensors');
      const state = new GenerationState(from, 1);
      state.append([prompt]);
      saveState(path, from, state);
      state.free();
      const back = loadState(path, to);
      assert.equal(back.position, prompt.length);
      back.free();
    }
    assert.throws(() => LoraAdapters.attach(folded, { rank: 2, alpha: 4, targets: ['q_proj'] }, 0), /LoRA: this model cannot take adapters: its feature maps are folded/);
    assert.throws(() => new AttentionTransfer(folded), /attention transfer: its feature maps are folded/);
    separate.enableGrads();
    assert.throws(() => separate.foldForInference(), /this model has gradients \(it is training\)/);
  } finally {
    separate.free();
    folded.free();
  }
});

test('a composed weight the type cannot hold is refused naming both parts, and the half-folded model is already inference-only', () => {
  const config = tiny('LlamaForCausalLM', 2);
  const model = randomModel(config, 5, 'int8');
  try {
    // finite in int8 (scale 3e38 / 127), but W_φ·W_q overflows float32 in layer 1
    const kernel = model.param('model.layers.1.self_attn.kernel_q.weight');
    const values = new Float32Array(kernel.shape[0]! * kernel.shape[1]!).fill(3e38);
    WEIGHT_TYPES.int8.fromFloat(values, kernel.stored!, 0);
    const proj = model.param('model.layers.1.self_attn.q_proj.weight');
    WEIGHT_TYPES.int8.fromFloat(new Float32Array(proj.shape[0]! * proj.shape[1]!).fill(1), proj.stored!, 0);
    assert.throws(() => model.foldForInference(),
      /^Error: supra: model\.layers\.1\.self_attn\.q_feature_map\.weight, model\.layers\.1\.self_attn\.kernel_q\.weight · model\.layers\.1\.self_attn\.q_proj\.weight: int8 weights cannot hold/);
    assert.equal(model.foldedForInference, true);
    assert.throws(() => model.enableGrads(), /cannot train: its feature maps are folded/);
  } finally {
    model.free();
  }
});
