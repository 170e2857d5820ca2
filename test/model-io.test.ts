// Model folders through linearize, convert and load: attention-bias families keep their o_proj rule,
// non-finite weights are refused naming the tensor and file, and convert / linearize validate the
// tensors against the config the same way, leaving nothing behind when they refuse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gqaDir, maxAbsDiff } from './helpers/fixture.js';
import { freshDirs, tempRoot } from './helpers/tmp.js';
import { saveCheckpoint } from '../src/io/checkpoint.js';
import { readSafetensors, type StoredTensor } from '../src/io/safetensors.js';
import { loadDecoder } from '../src/models/auto.js';
import { writeTorchCheckpoint } from '../src/io/torch.js';
import { convertCheckpoint, readCheckpointTensors } from '../src/models/convert.js';
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
  // info, linearize and convert read through readCheckpointTensors
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
