// scripts/grow-model.mjs, the recall teacher's growth step: a trained model made deeper and its MLPs wider
// computes exactly what it did (the new parts' writes into the residual stream start at zero).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { freshDirs, tempRoot } from './helpers/tmp.js';
import { loadDecoder } from '../src/models/auto.js';

const here = dirname(fileURLToPath(import.meta.url)); // dist/test
const script = resolve(here, '../../scripts/grow-model.mjs');
const fresh = freshDirs(tempRoot('supra-grow-model-'));

test('scripts/grow-model.mjs: deeper and wider with the same logits; the old weights kept; bad requests refused, nothing written', async () => {
  const { writeRandomModel } = (await import(pathToFileURL(resolve(here, '../../scripts/random-model.mjs')).href)) as {
    writeRandomModel: (shape: string, dir: string, options: { dtype?: string; seed?: number }) => string[];
  };
  const small = join(fresh(), 'small');
  writeRandomModel('tiny', small, { seed: 5, dtype: 'f32' });
  const grown = join(fresh(), 'grown');
  const { model: a } = loadDecoder(small);
  const L = a.config.num_hidden_layers, F = a.config.intermediate_size;
  const r = spawnSync(process.execPath, [script, small, '--layers', String(L + 2), '--intermediate', String(F + 24), '--out', grown], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const { model: b } = loadDecoder(grown);
  try {
    assert.equal(b.config.num_hidden_layers, L + 2);
    assert.equal(b.config.intermediate_size, F + 24);
    const B = 2, T = 9;
    const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 37 + 11) % a.config.vocab_size);
    const la = a.forward(ids, B, T).slice(), lb = b.forward(ids, B, T);
    let worst = 0;
    for (let i = 0; i < la.length; i++) worst = Math.max(worst, Math.abs(la[i]! - lb[i]!));
    assert.ok(worst <= 1e-5, `max |Δlogits| ${worst}`);
    // the grown parts are there to be trained: new gate rows are not zero
    const gate = b.params().find((p) => p.name === 'model.layers.0.mlp.gate_proj.weight')!;
    const newRows = gate.data.subarray(F * a.config.hidden_size);
    assert.ok(newRows.some((x) => x !== 0), 'new MLP units start from fresh values');
    const top = b.params().find((p) => p.name === `model.layers.${L + 1}.self_attn.o_proj.weight`)!;
    assert.ok(top.data.every((x) => x === 0), 'a new layer writes nothing at first');
  } finally {
    a.free();
    b.free();
  }
  const refused = (args: string[], status: number, message: RegExp) => {
    const out = join(fresh(), 'out');
    const s = spawnSync(process.execPath, [script, small, ...args, '--out', out], { encoding: 'utf8' });
    assert.equal(s.status, status, s.stderr);
    assert.match(s.stderr, message);
    assert.ok(!existsSync(out), 'nothing written');
  };
  refused(['--layers', String(L - 1)], 1, /--layers must be a whole number, at least the model's/);
  refused(['--intermediate', '2.5'], 1, /--intermediate must be a whole number/);
  refused(['--layers', String(L)], 1, /nothing to grow/);
  refused([], 2, /usage/);
  refused(['--residual-scale', '0'], 1, /--residual-scale must be a positive number/);
});

test('scripts/grow-model.mjs --residual-scale: the residual stream scaled, the logits the same, tied or not', async () => {
  const { writeRandomModel, MODEL_SHAPES } = (await import(pathToFileURL(resolve(here, '../../scripts/random-model.mjs')).href)) as {
    writeRandomModel: (shape: object, dir: string, options: { dtype?: string; seed?: number }) => string[];
    MODEL_SHAPES: Record<string, object>;
  };
  for (const tied of [false, true]) {
    const small = join(fresh(), 'small');
    // an RMSNorm eps far below the stream's mean square (random weights of std 0.02 keep it near 1e-5)
    writeRandomModel({ ...MODEL_SHAPES.tiny, tied, rmsNormEps: 1e-12 }, small, { seed: 7, dtype: 'f32' });
    const scaled = join(fresh(), 'scaled');
    const r = spawnSync(process.execPath, [script, small, '--residual-scale', '0.25', '--layers', '3', '--out', scaled], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const { model: a } = loadDecoder(small);
    const { model: b } = loadDecoder(scaled);
    try {
      const weight = (m: typeof a, name: string) => m.params().find((p) => p.name === name)!.data;
      for (const name of ['model.embed_tokens.weight', 'model.layers.1.self_attn.o_proj.weight', 'model.layers.0.mlp.down_proj.weight']) {
        assert.equal(weight(b, name)[5], Math.fround(weight(a, name)[5]! * 0.25), `${name} scaled`);
      }
      assert.equal(weight(b, 'model.layers.0.self_attn.q_proj.weight')[5], weight(a, 'model.layers.0.self_attn.q_proj.weight')[5], 'readers unchanged');
      const ids = Int32Array.from({ length: 16 }, (_, i) => (i * 41 + 5) % a.config.vocab_size);
      const la = a.forward(ids, 2, 8).slice(), lb = b.forward(ids, 2, 8);
      let worst = 0, largest = 0;
      for (let i = 0; i < la.length; i++) {
        worst = Math.max(worst, Math.abs(la[i]! - lb[i]!));
        largest = Math.max(largest, Math.abs(la[i]!));
      }
      assert.ok(worst <= 1e-5 * largest, `tied ${tied}: max |Δlogits| ${worst} of ${largest}`);
    } finally {
      a.free();
      b.free();
    }
  }
});
