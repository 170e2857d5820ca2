// scripts/random-model.mjs, the random-weight teacher folders of real models' shapes that the scale
// checks use: reproducible from the seed, and folders supra loads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { freshDirs, tempRoot } from './helpers/tmp.js';
import { loadDecoder } from '../src/models/auto.js';
import { loadTokenizer } from '../src/io/tokenizer.js';

const here = dirname(fileURLToPath(import.meta.url)); // dist/test
const randomModelScript = resolve(here, '../../scripts/random-model.mjs');
const fresh = freshDirs(tempRoot('supra-random-model-'));

test('scripts/random-model.mjs: the same shape and seed give the same bytes, as a module and as a command', async () => {
  const { writeRandomModel, MODEL_SHAPES } = (await import(pathToFileURL(randomModelScript).href)) as {
    writeRandomModel: (shape: string, dir: string, options: { dtype?: string; seed?: number }) => string[];
    MODEL_SHAPES: Record<string, unknown>;
  };
  assert.deepEqual(Object.keys(MODEL_SHAPES), ['tiny', 'smollm-135m', 'qwen2.5-0.5b', 'tinyllama-1.1b', 'mistral-7b']);
  const files = (dir: string) => readdirSync(dir).sort().map((f) => [f, readFileSync(join(dir, f))] as const);
  const a = join(fresh(), 'a');
  const b = join(fresh(), 'b');
  const c = join(fresh(), 'c');
  writeRandomModel('tiny', a, { seed: 3 });
  const r = spawnSync(process.execPath, [randomModelScript, 'tiny', b, '--seed', '3', '--dtype', 'bf16'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  writeRandomModel('tiny', c, { seed: 4 });
  const [fa, fb, fc] = [files(a), files(b), files(c)];
  assert.deepEqual(fa.map(([f]) => f), ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
  for (let i = 0; i < fa.length; i++) assert.ok(fa[i]![1].equals(fb[i]![1]), fa[i]![0]);
  assert.ok(!fa[1]![1].equals(fc[1]![1]), 'another seed, other weights');
  // its tokenizer makes word w<i> token i, for every id of the vocabulary
  const tokenizer = loadTokenizer(a);
  assert.equal(tokenizer.vocab_size, 256);
  assert.deepEqual(tokenizer.encode('w3 w255 w17', { add_special_tokens: false }), [3, 255, 17]);
  assert.equal(tokenizer.decode([5, 6]), 'w5 w6');

  // a teacher supra loads, stored as BF16 with HF names
  const { model } = loadDecoder(a, { strict: true });
  try {
    assert.equal(model.config.architecture, 'LlamaForCausalLM');
    assert.equal(model.params().length, 21);
  } finally {
    model.free();
  }
  assert.equal(JSON.parse(readFileSync(join(a, 'config.json'), 'utf8')).torch_dtype, 'bfloat16');
  const bad = spawnSync(process.execPath, [randomModelScript, 'gpt-5', join(fresh(), 'x')], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /unknown shape "gpt-5"; one of tiny, smollm-135m/);
});
