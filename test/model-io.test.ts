// Model folders through linearize, convert and load: attention-bias families keep their o_proj rule,
// non-finite weights are refused naming the tensor and file, and convert / linearize validate the
// tensors against the config the same way, leaving nothing behind when they refuse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gqaDir, maxAbsDiff } from './helpers/fixture.js';
import { freshDirs, tempRoot } from './helpers/tmp.js';
import { readCheckpointTensors, saveCheckpoint } from '../src/io/checkpoint.js';
import { readSafetensors, type StoredTensor } from '../src/io/safetensors.js';
import { loadDecoder } from '../src/models/auto.js';
import { writeTorchCheckpoint } from '../src/io/torch.js';
import { convertCheckpoint } from '../src/models/convert.js';
import { errorOf } from './helpers/errors.js';
import { linearize, linearizeFolder } from '../src/models/linearize.js';

const here = dirname(fileURLToPath(import.meta.url)); // dist/test
const repoRoot = resolve(here, '../..');
const cli = resolve(here, '../src/cli/main.js');
const supra = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
const fresh = freshDirs(tempRoot('supra-model-io-'));
const teacherDir = join(gqaDir, 'teacher');
const teacherConfig = (): Record<string, unknown> => JSON.parse(readFileSync(join(teacherDir, 'config.json'), 'utf8')) as Record<string, unknown>;
const teacherTensors = (): Map<string, StoredTensor> => readSafetensors(join(teacherDir, 'model.safetensors'));

/** A teacher folder from the fixture's config (with `configChanges`) and tensors (edited by `edit`). */
function teacherFolder(configChanges: Record<string, unknown> = {}, edit: (t: Map<string, StoredTensor>) => void = () => {}): string {
  const dir = fresh();
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...teacherConfig(), ...configChanges }));
  const tensors = teacherTensors();
  edit(tensors);
  saveCheckpoint(dir, new Map([...tensors].map(([name, t]) => [name, { shape: t.shape, data: t.data }])));
  return dir;
}

test('a Qwen2 teacher (q/k/v biases, bias-free o_proj) goes through linearize, convert and load', () => {
  const teacher = teacherFolder({ architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2' }, (t) => {
    for (let l = 0; l < 2; l++) {
      for (const [p, n] of [['q', 64], ['k', 32], ['v', 32]] as const) {
        t.set(`model.layers.${l}.self_attn.${p}_proj.bias`, { dtype: 'F32', shape: [n], data: Float32Array.from({ length: n }, (_, i) => 0.01 * (i % 7) - 0.03) });
      }
    }
  });
  const linDir = fresh();
  linearizeFolder(teacher, linDir, { seed: 3 });
  const saved = JSON.parse(readFileSync(join(linDir, 'config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(saved.attention_bias, true);
  assert.equal(saved.o_proj_bias, false, 'the SUPRA config records that o_proj has no bias');
  const convDir = fresh();
  convertCheckpoint(linDir, convDir, { format: 'supra' });

  const { model } = loadDecoder(convDir);
  const { model: teacherModel } = loadDecoder(teacher);
  const inMemory = linearize(teacherModel, { seed: 3 });
  try {
    const names = model.params().map((p) => p.name);
    assert.ok(names.includes('model.layers.1.self_attn.v_proj.bias'));
    assert.ok(!names.some((n) => n.endsWith('o_proj.bias')));
    const ids = Array.from({ length: 12 }, (_, i) => (i * 37) % 256);
    const a = Float32Array.from(model.forward(ids, 1, 12));
    const b = inMemory.forward(ids, 1, 12);
    assert.ok(maxAbsDiff(a, b) < 1e-5, 'the converted folder computes what the in-memory linearization does');
  } finally {
    model.free();
    teacherModel.free();
    inMemory.free();
  }
});

/** The fixture teacher with NaN, +Inf and −Inf written into layer 0's up_proj at 17, 20 and 100. */
function poisoned(t: Map<string, StoredTensor>): void {
  const w = t.get('model.layers.0.mlp.up_proj.weight')!.data as Float32Array;
  w[17] = NaN;
  w[20] = Infinity;
  w[100] = -Infinity;
}
const POISON = 'tensor model.layers.0.mlp.up_proj.weight has 3 NaN/Inf values (first at index 17)';

test('NaN/Inf weights are refused at load, naming the file and the tensor (F32, BF16, pytorch_model.bin)', () => {
  const dir = teacherFolder({}, poisoned);
  const file = join(dir, 'model.safetensors');
  assert.equal(errorOf(() => loadDecoder(dir)), `supra: ${file}: ${POISON}`);
  // info, linearize and convert read every tensor through readCheckpointTensors
  assert.equal(errorOf(() => readCheckpointTensors(dir)), `supra: ${file}: ${POISON}`);
  const out = join(fresh(), 'out');
  assert.equal(errorOf(() => linearizeFolder(dir, out)), `supra: ${file}: ${POISON}`);
  assert.equal(errorOf(() => convertCheckpoint(dir, out, { format: 'open_lm' })), `supra: ${file}: ${POISON}`);
  assert.ok(!existsSync(out), 'nothing is written');

  // stored as BF16 the values come through the chunked conversion, checked chunk by chunk
  const bf16 = fresh();
  writeFileSync(join(bf16, 'config.json'), JSON.stringify(teacherConfig()));
  const tensors = teacherTensors();
  poisoned(tensors);
  saveCheckpoint(bf16, new Map([...tensors].map(([name, t]) => [name, { shape: t.shape, data: t.data }])), { dtype: 'BF16' });
  assert.equal(errorOf(() => loadDecoder(bf16)), `supra: ${join(bf16, 'model.safetensors')}: ${POISON}`);

  // a PyTorch checkpoint
  const bin = fresh();
  writeFileSync(join(bin, 'config.json'), JSON.stringify(teacherConfig()));
  writeTorchCheckpoint(join(bin, 'pytorch_model.bin'), new Map([...tensors].map(([name, t]) => [name, { shape: t.shape, data: t.data as Float32Array }])));
  assert.equal(errorOf(() => convertCheckpoint(bin, out, { format: 'supra' })), `supra: ${join(bin, 'pytorch_model.bin')}: ${POISON}`);
  assert.equal(errorOf(() => loadDecoder(bin)), `supra: ${join(bin, 'pytorch_model.bin')}: ${POISON}`, 'from_pretrained reads .bin folders through the same reader');
  assert.ok(!existsSync(out));
});

test('supra info and greedy generate on a folder with NaN weights: the message and exit 1', () => {
  const dir = teacherFolder({}, poisoned);
  const expected = `${join(dir, 'model.safetensors')}: ${POISON}`;
  const info = supra('info', dir);
  assert.equal(info.status, 1);
  assert.ok(info.stderr.includes(expected), info.stderr);
  // the fixture has a 256-token vocabulary; any byte-level tokenizer serves to get generate to the weights
  copyFileSync(join(repoRoot, 'assets', 'teacher', 'tokenizer.json'), join(dir, 'tokenizer.json'));
  const gen = supra('generate', '--model', dir, '--prompt', 'a', '--max-new-tokens', '2');
  assert.equal(gen.status, 1);
  assert.equal(gen.stdout, '');
  assert.ok(gen.stderr.includes(expected), gen.stderr);
});

test('convert (both directions) and linearize check the tensors against the config the same way, and write nothing when they refuse', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['missing tensor', teacherFolder({}, (t) => t.delete('model.layers.1.mlp.down_proj.weight')), /missing tensor model\.layers\.1\.mlp\.down_proj\.weight \(needed by LlamaForCausalLM/],
    ['wrong shape', teacherFolder({}, (t) => t.set('model.norm.weight', { dtype: 'F32', shape: [32], data: new Float32Array(32).fill(1) })), /tensor model\.norm\.weight has shape \[32\], the config expects \[64\]/],
    ['config vocab not the tensors', teacherFolder({ vocab_size: 300 }), /tensor model\.embed_tokens\.weight has shape \[256, 64\], the config expects \[300, 64\]/],
    ['absurd config', teacherFolder({ vocab_size: 2 ** 40 }), /config\.json: field "vocab_size" = 1099511627776 is too large/],
    ['unused tensor', teacherFolder({}, (t) => t.set('model.value_head.weight', { dtype: 'F32', shape: [4], data: new Float32Array(4) })), /1 tensor not used by LlamaForCausalLM as config\.json describes it: model\.value_head\.weight; they would be lost/],
  ];
  for (const [what, dir, want] of cases) {
    for (const [how, run] of [
      ['convert', (out: string) => convertCheckpoint(dir, out, { format: 'supra' })],
      ['convert to open_lm', (out: string) => convertCheckpoint(dir, out, { format: 'open_lm' })],
      ['linearize', (out: string) => linearizeFolder(dir, out)],
    ] as const) {
      const parent = fresh();
      const out = join(parent, 'out');
      assert.match(errorOf(() => run(out)), want, `${what}: ${how}`);
      assert.deepEqual(readdirSync(parent), [], `${what}: ${how} leaves nothing behind`);
    }
  }
  // the same check on the open_lm side: a tensor missing from an open_lm folder
  const open = join(fresh(), 'open');
  convertCheckpoint(teacherFolder(), open, { format: 'open_lm' });
  const cut = fresh();
  const openTensors = readSafetensors(join(open, 'model.safetensors'));
  openTensors.delete('model.layers.0.feed_forward.w3.weight');
  saveCheckpoint(cut, new Map([...openTensors].map(([name, t]) => [name, { shape: t.shape, data: t.data }])));
  copyFileSync(join(open, 'config.json'), join(cut, 'config.json'));
  assert.match(errorOf(() => convertCheckpoint(cut, join(fresh(), 'x'), { format: 'supra' })), /missing tensor layers\.0\.feed_forward\.w3\.weight/);

  // RoPE inv_freq buffers of old HF Llama checkpoints are derived from rope_theta: dropped, not refused
  const withBuffer = teacherFolder({}, (t) => t.set('model.layers.0.self_attn.rotary_emb.inv_freq', { dtype: 'F32', shape: [8], data: new Float32Array(8) }));
  const out = join(fresh(), 'out');
  convertCheckpoint(withBuffer, out, { format: 'supra' });
  assert.ok(!readSafetensors(join(out, 'model.safetensors')).has('model.layers.0.self_attn.rotary_emb.inv_freq'));
});

test('convert and linearize write the output folder under a temporary name: a failure part-way leaves nothing', () => {
  // a "tokenizer.json" that is a folder makes copying it fail after the weights and config are written
  const dir = teacherFolder();
  mkdirSync(join(dir, 'tokenizer.json'));
  for (const run of [(out: string) => convertCheckpoint(dir, out, { format: 'supra' }), (out: string) => linearizeFolder(dir, out)]) {
    const parent = fresh();
    assert.throws(() => run(join(parent, 'out')));
    assert.deepEqual(readdirSync(parent), []);
  }
  // an existing non-empty folder is never written into; an empty one is fine
  const busy = fresh();
  writeFileSync(join(busy, 'keep.txt'), 'x');
  assert.match(errorOf(() => convertCheckpoint(teacherFolder(), busy, { format: 'supra' })), /already exists and is not empty/);
  assert.deepEqual(readdirSync(busy), ['keep.txt']);
  const empty = fresh();
  convertCheckpoint(teacherFolder(), empty, { format: 'supra' });
  assert.deepEqual(readdirSync(empty).sort(), ['config.json', 'model.safetensors']);
});

test('supra convert of a folder missing a tensor: the message and exit 1, no output', () => {
  const dir = teacherFolder({}, (t) => t.delete('lm_head.weight'));
  const out = join(fresh(), 'out');
  const r = supra('convert', dir, '--out', out);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /missing tensor lm_head\.weight/);
  assert.ok(!existsSync(out));
  const usage = supra('convert', dir, '--out', out, '--open-lm-inv-freq');
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /--open-lm-inv-freq only applies with --format open_lm/);
});

test('a config that disagrees with its weights (vocab_size 2^31 − 1) is named at load, before any memory is taken', () => {
  const dir = teacherFolder({ vocab_size: 2 ** 31 - 1 });
  const e = errorOf(() => loadDecoder(dir));
  assert.match(e, /model\.safetensors: tensor model\.embed_tokens\.weight has shape \[256, \d+\], the config expects \[2147483647, \d+\]/);
});
