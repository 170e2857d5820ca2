// Model folders through linearize, convert and load: attention-bias families keep their o_proj rule,
// non-finite weights are refused naming the tensor and file, and convert / linearize validate the
// tensors against the config the same way, leaving nothing behind when they refuse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gqaDir, maxAbsDiff } from './helpers/fixture.js';
import { freshDirs, tempRoot } from './helpers/tmp.js';
import { saveCheckpoint } from '../src/io/checkpoint.js';
import { readSafetensors, type StoredTensor } from '../src/io/safetensors.js';
import { loadDecoder } from '../src/models/auto.js';
import { convertCheckpoint } from '../src/models/convert.js';
import { linearize, linearizeFolder } from '../src/models/linearize.js';

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
