// open_lm folders (what `supra convert --format open_lm` writes; the released Mistral-SUPRA's layout) load
// through the one folder reader, io/checkpoint.ts openModel: loadDecoder, from_pretrained, linearize,
// info and `supra generate` read them as they read the SUPRA folder they came from, bit for bit, from
// safetensors or pytorch_model.bin, single or sharded, with or without the "model." prefix; the fused
// in_proj and w12 are read once and split as they are read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gqaDir } from './helpers/fixture.js';
import { errorOf } from './helpers/errors.js';
import { freshDirs, tempRoot } from './helpers/tmp.js';
import { byteTokenizerJson, writeTokenizer } from './helpers/tokenizers.js';
import { AutoModelForCausalLM } from '../src/api.js';
import { Checkpoint, openModel, saveCheckpoint, type TensorFile } from '../src/io/checkpoint.js';
import { fromOpenLm, mapOpenLm } from '../src/io/open_lm.js';
import { readSafetensors, SafetensorsFile, type StoredTensor } from '../src/io/safetensors.js';
import { loadDecoder } from '../src/models/auto.js';
import { convertCheckpoint } from '../src/models/convert.js';
import { DecoderLM } from '../src/models/decoder.js';
import { linearizeFolder } from '../src/models/linearize.js';

const here = dirname(fileURLToPath(import.meta.url)); // dist/test
const cli = resolve(here, '../src/cli/main.js');
const supraCli = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000 });
const fresh = freshDirs(tempRoot('supra-openlm-folder-'));

/** A copy of the fixture teacher with a byte tokenizer (the fixture's 256-token vocabulary), `edit`ed. */
function teacherFolder(configChanges: Record<string, unknown> = {}, edit: (t: Map<string, StoredTensor>) => void = () => {}): string {
  const dir = fresh();
  const config = JSON.parse(readFileSync(join(gqaDir, 'teacher', 'config.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, ...configChanges }));
  const tensors = readSafetensors(join(gqaDir, 'teacher', 'model.safetensors'));
  edit(tensors);
  saveCheckpoint(dir, new Map([...tensors].map(([n, t]) => [n, { shape: t.shape, data: t.data as Float32Array }])));
  writeTokenizer(dir, byteTokenizerJson());
  return dir;
}

const IDS = [3, 141, 59, 26, 53, 58, 97, 93, 23, 84, 62, 64, 33];

/** The logits of IDS (one row) from a folder, as bytes. */
function logitsOf(dir: string, dtype: 'f32' | 'bf16' = 'f32'): Buffer {
  const { model, unexpected } = loadDecoder(dir, { strict: true, dtype });
  try {
    assert.deepEqual(unexpected, []);
    return Buffer.from(Float32Array.from(model.forward(IDS, 1, IDS.length)).buffer);
  } finally {
    model.free();
  }
}

/** An open_lm folder re-sharded by hand (small shards, so in_proj / w12 sit in other shards than their neighbours), optionally without the "model." prefix. */
function reshard(openDir: string, prefix: boolean): string {
  const dir = fresh();
  copyFileSync(join(openDir, 'config.json'), join(dir, 'config.json'));
  const tensors = readSafetensors(join(openDir, 'model.safetensors'));
  const renamed = new Map([...tensors].map(([n, t]) => [prefix ? n : n.replace(/^model\./, ''), { shape: t.shape, data: t.data as Float32Array }]));
  saveCheckpoint(dir, renamed, { maxShardBytes: 40_000 });
  return dir;
}

const teacherDir = teacherFolder();
const supraDir = fresh();
linearizeFolder(teacherDir, supraDir, { seed: 1000 });
const openDir = fresh();
convertCheckpoint(supraDir, openDir, { format: 'open_lm' });

test('an open_lm folder loads with loadDecoder and from_pretrained: the SUPRA logits bit for bit (safetensors, .bin, sharded, no prefix)', async () => {
  const want = logitsOf(supraDir);
  const binDir = fresh();
  convertCheckpoint(supraDir, binDir, { format: 'open_lm', container: 'pytorch', openLmInvFreq: true });
  const cases: Array<[string, string]> = [
    ['model.safetensors', openDir],
    ['pytorch_model.bin with inv_freq buffers', binDir],
    ['sharded safetensors', reshard(openDir, true)],
    ['sharded, no "model." prefix', reshard(openDir, false)],
  ];
  for (const [what, dir] of cases) {
    const folder = openModel(dir);
    try {
      assert.equal(folder.layout, 'open_lm', what);
      assert.equal(folder.config.architecture, 'SupraForCausalLM', what);
      assert.ok(folder.checkpoint.has('model.layers.1.self_attn.k_proj.weight'), what);
      assert.deepEqual(folder.checkpoint.info('model.layers.1.self_attn.k_proj.weight').shape, [32, 64], what);
      assert.ok(folder.stored.has(`${what.includes('prefix') ? '' : 'model.'}layers.1.attention.in_proj.weight`), what);
    } finally {
      folder.checkpoint.close();
    }
    assert.ok(logitsOf(dir).equals(want), `${what}: logits differ from the SUPRA folder's`);
  }
  // at bf16 the fused tensors' rows are rounded as the SUPRA folder's tensors are
  assert.ok(logitsOf(openDir, 'bf16').equals(logitsOf(supraDir, 'bf16')), 'bf16: logits differ from the SUPRA folder\'s');
  const model = await AutoModelForCausalLM.from_pretrained(openDir);
  try {
    const { logits } = await model.forward({ input_ids: [IDS] });
    assert.ok(Buffer.from(logits.data.buffer, logits.data.byteOffset, logits.data.byteLength).equals(want), 'from_pretrained');
  } finally {
    model.dispose();
  }
});

test('tied embeddings with qk-norm: the open_lm folder loads bit for bit; an output.weight that is not the embedding is refused', () => {
  const tied = teacherFolder({ tie_word_embeddings: true }, (t) => t.delete('lm_head.weight'));
  const supra = fresh();
  linearizeFolder(tied, supra, { seed: 7, qk_norm: 'rms' });
  const open = fresh();
  convertCheckpoint(supra, open, { format: 'open_lm' });
  assert.ok(readSafetensors(join(open, 'model.safetensors')).has('model.output.weight'), 'open_lm saves a tied head under both names');
  assert.ok(logitsOf(open).equals(logitsOf(supra)));

  const bad = fresh();
  copyFileSync(join(open, 'config.json'), join(bad, 'config.json'));
  const tensors = readSafetensors(join(open, 'model.safetensors'));
  const head = tensors.get('model.output.weight')!;
  const changed = Float32Array.from(head.data as Float32Array);
  changed[5]! += 1;
  tensors.set('model.output.weight', { ...head, data: changed });
  saveCheckpoint(bad, new Map([...tensors].map(([n, t]) => [n, { shape: t.shape, data: t.data as Float32Array }])));
  assert.match(errorOf(() => loadDecoder(bad)), /open_lm: the config ties embeddings but output\.weight differs from tok_embeddings\.weight/);
});

test('a teacher in the open_lm layout loads and linearizes as the Hugging Face teacher does', () => {
  const open = fresh();
  convertCheckpoint(teacherDir, open, { format: 'open_lm', container: 'pytorch' });
  assert.equal(openModel(open).layout, 'open_lm');
  assert.ok(logitsOf(open).equals(logitsOf(teacherDir)));
  const fromOpen = fresh();
  linearizeFolder(open, fromOpen, { seed: 1000 });
  const a = readSafetensors(join(fromOpen, 'model.safetensors'));
  const b = readSafetensors(join(supraDir, 'model.safetensors'));
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [name, t] of a) assert.ok(Buffer.from((t.data as Float32Array).buffer).equals(Buffer.from((b.get(name)!.data as Float32Array).buffer)), name);
});

test('Checkpoint.withNames: parts of fused tensors in any order; loading a model reads each stored tensor once', () => {
  const file = SafetensorsFile.open(join(openDir, 'model.safetensors'));
  const reads = new Map<string, number>();
  const counted: TensorFile = {
    path: file.path,
    names: () => file.names(),
    info: (n) => file.info(n),
    readInto: (n, dest, o) => (reads.set(n, (reads.get(n) ?? 0) + 1), file.readInto(n, dest, o)),
    readF32: (n, o) => (reads.set(n, (reads.get(n) ?? 0) + 1), file.readF32(n, o)),
    readI32: (n, dest) => file.readI32(n, dest),
    close: () => file.close(),
  };
  const stored = new Checkpoint(openDir, 'safetensors', [counted], new Map(file.names().map((n) => [n, counted])), false);
  try {
    const config = openModel(supraDir).config;
    const mapping = mapOpenLm(new Map(stored.names().map((n) => [n, stored.info(n)])), config);
    const view = stored.withNames(mapping.tensors);
    const eager = fromOpenLm(readSafetensors(join(openDir, 'model.safetensors')), config);
    assert.deepEqual(view.names().sort(), [...eager.keys()].sort());
    // v before q, and layer 1's parts between layer 0's: each part is right (one fused tensor is kept at a
    // time, so bounded memory: layer 0's in_proj is read again after layer 1's w12 took its place)
    const order = ['model.layers.0.self_attn.v_proj.weight', 'model.layers.1.mlp.up_proj.weight', 'model.layers.1.mlp.gate_proj.weight', 'model.layers.0.self_attn.q_proj.weight', 'model.layers.0.self_attn.k_proj.weight'];
    for (const name of order) {
      const dest = new Float32Array(view.info(name).numel);
      view.readInto(name, dest);
      assert.deepEqual(Array.from(dest), Array.from(eager.get(name)!.data), name);
    }
    assert.equal(reads.get('model.layers.0.attention.in_proj.weight'), 2);
    assert.equal(reads.get('model.layers.1.feed_forward.w12.weight'), 1);
    // a whole model through a new view: every stored tensor read once (in_proj and w12 included)
    reads.clear();
    const model = new DecoderLM(config);
    try {
      assert.deepEqual(model.store.load(stored.withNames(mapping.tensors), openDir).unexpected, []);
    } finally {
      model.free();
    }
    assert.deepEqual([...reads.values()].filter((n) => n !== 1), []);
    assert.deepEqual(stored.names().filter((n) => !reads.has(n)), []);
    assert.equal(reads.get('model.output.weight'), 1);
    // parts that do not exist are named
    assert.match(errorOf(() => stored.withNames(new Map([['x', { source: 'model.norm.weight', rows: [0, 65] }]]))), /model\.safetensors: cannot take rows 0\.\.65 of tensor 'model\.norm\.weight' \(64 rows\) for x/);
    assert.match(errorOf(() => stored.withNames(new Map([['x', { source: 'nope' }]]))), /checkpoint has no tensor 'nope'/);
  } finally {
    stored.close();
  }
});

test('supra generate and supra info take an open_lm folder', () => {
  writeTokenizer(openDir, byteTokenizerJson());
  const args = ['--prompt', 'The answer is', '--max-new-tokens', '6'];
  const want = supraCli('generate', '--model', supraDir, ...args);
  assert.equal(want.status, 0, want.stderr);
  const got = supraCli('generate', '--model', openDir, ...args);
  assert.equal(got.status, 0, got.stderr);
  assert.equal(got.stdout, want.stdout);
  const info = supraCli('info', openDir, '--tensors');
  assert.equal(info.status, 0, info.stderr);
  assert.match(info.stdout, /: SupraForCausalLM \(open_lm layout\)\n/);
  assert.match(info.stdout, /model\.layers\.0\.attention\.in_proj\.weight F32 \[128, 64\]/);
});
