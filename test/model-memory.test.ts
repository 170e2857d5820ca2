// A model too big for the arena its weights live in is refused from its config, before any weight is
// allocated or read, with the estimate and what to do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gqaDir } from './helpers/fixture.js';
import { errorOf } from './helpers/errors.js';
import { freshDirs, tempRoot } from './helpers/tmp.js';
import { arenaStats } from '../src/core/memory.js';
import { getBackend } from '../src/core/select.js';
import { saveCheckpoint } from '../src/io/checkpoint.js';
import { parseConfig, readConfigJson } from '../src/io/config.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { loadDecoder } from '../src/models/auto.js';
import { DecoderLM, parameterMemory } from '../src/models/decoder.js';

const here = dirname(fileURLToPath(import.meta.url)); // dist/test
const cli = resolve(here, '../src/cli/main.js');
const fresh = freshDirs(tempRoot('supra-model-memory-'));

// TinyLlama-1.1B's shape: 1.10 B parameters, 4.10 GiB at float32
const HUGE = { vocab_size: 32000, hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 22, num_attention_heads: 32, num_key_value_heads: 4, head_dim: 64 };

test('parameterMemory counts what the layers declare, from the config alone', () => {
  const teacher = parseConfig(readConfigJson(join(gqaDir, 'teacher')).raw);
  const m = parameterMemory(teacher);
  const stored = [...readSafetensors(join(gqaDir, 'teacher', 'model.safetensors')).values()].reduce((n, t) => n + t.data.length, 0);
  assert.equal(m.count, stored);
  assert.equal(m.bytes, 4 * m.count);
  // at bf16 the matrices take 2 bytes a value, the gains and biases stay float32
  const vectors = [...readSafetensors(join(gqaDir, 'teacher', 'model.safetensors')).values()].filter((t) => t.shape.length !== 2).reduce((n, t) => n + t.data.length, 0);
  assert.ok(vectors > 0);
  assert.equal(parameterMemory(teacher, { dtype: 'bf16' }).bytes, 2 * (m.count - vectors) + 4 * vectors);
  const huge = parameterMemory(parseConfig({ ...readConfigJson(join(gqaDir, 'teacher')).raw, ...HUGE }));
  assert.equal(huge.count, 1_100_048_384);
});

test('a model whose parameters cannot fit the arena is refused before allocating, naming the folder, the estimate and the advice', () => {
  // huge shapes in config.json and no real weights: one small tensor, so nothing disagrees with the config
  const dir = fresh();
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...readConfigJson(join(gqaDir, 'teacher')).raw, ...HUGE }));
  saveCheckpoint(dir, [{ name: 'model.norm.weight', shape: [2048], data: new Float32Array(2048).fill(1) }]);
  const before = arenaStats();
  const config = parseConfig({ ...readConfigJson(join(gqaDir, 'teacher')).raw, ...HUGE });
  // matrices in the arena (the wasm backend's place, or asked for): 4.10 GiB cannot fit its 4 GiB
  const e = errorOf(() => loadDecoder(dir, { place: 'arena' }));
  assert.match(e, new RegExp(`^supra: ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: the model's 1\\.10 B parameters need 4\\.10 GiB with matrices in float32, more than the [\\d.]+ GiB free in the 4 GiB wasm32 arena`));
  assert.match(e, /load it with dtype bf16 \(--dtype bf16; inference only\), which halves its matrices, or int8 \(--quantize int8\), which takes 0\.27 of them, or use a smaller model: the arena holds about 1\.0\d B parameters this way/);
  // the wasm backend's message points to the native one, which keeps matrices outside the arena
  if (getBackend().heapWeights) assert.doesNotMatch(e, /--backend native/);
  else assert.match(e, /use the native backend \(--backend native, or SUPRA_BACKEND=native\), which keeps the matrices outside the arena/);
  // nothing was allocated: the arena neither grew nor holds more
  assert.deepEqual(arenaStats(), before);
  // at bf16 its matrices take half: it would fit
  assert.ok(parameterMemory(config, { dtype: 'bf16' }).bytes < 2.1 * 2 ** 30);

  // every way of making a model passes the same check (here an init config, as supra train --init)
  assert.match(errorOf(() => new DecoderLM(config, { place: 'arena' })), /^supra: LlamaForCausalLM: the model's 1\.10 B parameters need 4\.10 GiB with matrices in float32/);
  assert.deepEqual(arenaStats(), before);
});

test('a model too big for the machine is refused before allocating, on either backend; the command line exits 1 with the estimate', () => {
  // TinyLlama's layers a thousand times over: 1.1 TB, more than any arena or machine here
  const dir = fresh();
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...readConfigJson(join(gqaDir, 'teacher')).raw, ...HUGE, num_hidden_layers: 22_000 }));
  saveCheckpoint(dir, [{ name: 'model.norm.weight', shape: [2048], data: new Float32Array(2048).fill(1) }]);
  const before = arenaStats();
  const e = errorOf(() => loadDecoder(dir));
  assert.match(e, /the model's [\d.]+ B parameters need [\d.]+ GiB with matrices in float32, more than the [\d.]+ GiB (free in the 4 GiB wasm32 arena|of memory this machine has available)/);
  if (getBackend().heapWeights) assert.match(e, /of memory this machine has available\. To run it, load it with dtype bf16/);
  assert.deepEqual(arenaStats(), before);

  // the command line: the message and exit 1, quickly and without the memory
  writeFileSync(join(dir, 'tokenizer.json'), readFileSync(join(here, '../../assets/teacher/tokenizer.json')));
  const r = spawnSync(process.execPath, [cli, 'generate', '--model', dir, '--prompt', 'hi'], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /parameters need [\d.]+ GiB with matrices in float32, more than/);
});
