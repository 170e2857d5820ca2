// Where a model's matrices live (core/weights.ts WeightPlace): outside the 4 GiB wasm arena on a backend
// whose products read them there (native), in it on wasm. The place changes no bits: forward, greedy
// decoding, gradients and optimizer steps are those of an arena model (native trains them outside the
// arena, with its optimizer kernels; wasm moves them in).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arenaStats, inArena } from '../src/core/memory.js';
import { getBackend } from '../src/core/select.js';
import { freeWeightArray, WEIGHT_TYPES, weightArray } from '../src/core/weights.js';
import { storedWeight } from '../src/layers/params.js';
import { loadDecoder } from '../src/models/auto.js';
import type { DecoderLM } from '../src/models/decoder.js';
import { linearizeFolder } from '../src/models/linearize.js';
import { generate } from '../src/generate/generate.js';
import { train } from '../src/train/trainer.js';
import { freshDirs, tempRoot } from './helpers/tmp.js';
import { MemoryBatches, repeatedText } from './helpers/train-data.js';

const teacherDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../assets/teacher');
const fresh = freshDirs(tempRoot('supra-weight-place-'));
const PROMPT = Array.from({ length: 40 }, (_, i) => (i * 613 + 11) % 4096);

const matrices = (m: DecoderLM) => m.params().filter((p) => p.shape.length === 2);
const vectors = (m: DecoderLM) => m.params().filter((p) => p.shape.length !== 2);

function sameRun(a: DecoderLM, b: DecoderLM): void {
  assert.deepEqual(Array.from(a.forward(PROMPT, 1, PROMPT.length)), Array.from(b.forward(PROMPT, 1, PROMPT.length)));
  const opts = { max_new_tokens: 10, do_sample: false, eos_token_id: null };
  assert.deepEqual(generate(a, [PROMPT], opts).sequences[0], generate(b, [PROMPT], opts).sequences[0]);
}

test('matrices live outside the arena where the backend reads them there, vectors in it; the default follows the backend', () => {
  const before = arenaStats().liveBytes;
  const model = loadDecoder(teacherDir).model;
  try {
    const outside = getBackend().heapWeights;
    assert.ok(matrices(model).every((p) => inArena(storedWeight(p).data) === !outside));
    assert.ok(vectors(model).every((p) => inArena(p.data)));
    const matrixBytes = matrices(model).reduce((n, p) => n + storedWeight(p).data.byteLength, 0);
    const grew = arenaStats().liveBytes - before;
    if (outside) assert.ok(grew < matrixBytes / 10, `arena grew ${grew} bytes for ${matrixBytes} bytes of matrices`);
    else assert.ok(grew >= matrixBytes);
  } finally {
    model.free();
  }
});

for (const dtype of ['f32', 'bf16', 'int8'] as const) {
  test(`${dtype} matrices outside the arena give the arena's bits: logits and greedy tokens, teacher and SUPRA`, () => {
    const supraDir = join(fresh(), 'supra');
    linearizeFolder(teacherDir, supraDir, { seed: 5 });
    for (const dir of [teacherDir, supraDir]) {
      const inside = loadDecoder(dir, { dtype, place: 'arena' }).model;
      const outside = loadDecoder(dir, { dtype, place: 'heap' }).model;
      try {
        assert.ok(matrices(outside).every((p) => !inArena(storedWeight(p).data)));
        assert.ok(matrices(inside).every((p) => inArena(storedWeight(p).data)));
        sameRun(inside, outside);
      } finally {
        inside.free();
        outside.free();
      }
    }
  });
}

test('training keeps matrices outside the arena where the backend has its optimizer kernels there (native), else moves them in; gradients, AdamW steps and clipping give the arena model\'s bits', async () => {
  const inside = loadDecoder(teacherDir, { place: 'arena' }).model;
  const outside = loadDecoder(teacherDir, { place: 'heap' }).model;
  const root = fresh();
  try {
    inside.enableGrads();
    outside.enableGrads();
    const stays = getBackend().heapKernels !== undefined;
    assert.equal(stays, getBackend().name === 'native');
    for (const p of matrices(outside)) {
      assert.equal(inArena(p.data), !stays, p.name);
      assert.equal(inArena(p.grad!), !stays, `${p.name}'s gradient lives beside it`);
    }
    for (const p of vectors(outside)) assert.ok(inArena(p.data) && inArena(p.grad!), p.name);
    const lossIn = inside.loss(PROMPT, 1, PROMPT.length);
    inside.backward();
    const lossOut = outside.loss(PROMPT, 1, PROMPT.length);
    outside.backward();
    assert.equal(lossOut, lossIn);
    for (const p of inside.params()) assert.ok(sameBits(outside.param(p.name).grad!, p.grad!), p.name);
    // whole steps: AdamW (its moments beside the parameters), the clipped global norm, the schedule
    const data = () => new MemoryBatches(repeatedText(3000, 37, 4096), repeatedText(400, 37, 4096), 32, 0);
    const run = (model: DecoderLM, out: string) =>
      train({ model, data: data(), out: join(root, out), steps: 3, batchSize: 2, gradClip: 0.5, lr: 1e-3, evalSequences: 0, quiet: true });
    const a = await run(inside, 'inside');
    const b = await run(outside, 'outside');
    assert.deepEqual(b.losses, a.losses);
    for (const p of inside.params()) assert.ok(sameBits(outside.param(p.name).data, p.data), `${p.name} after 3 steps`);
    sameRun(inside, outside);
  } finally {
    inside.free();
    outside.free();
  }
});

const sameBits = (a: Float32Array, b: Float32Array) =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

test('small weights outside the arena share huge-page slabs (native): zeroed, a freed region reused by the next weight of its size; large ones and wasm\'s are their own', () => {
  const slabs = getBackend().adviseHugePages !== undefined;
  const a = weightArray(Uint16Array, 1000);
  const b = weightArray(Float32Array, 333);
  const big = weightArray(Float32Array, 1 << 20); // 4 MiB: its own array, in huge pages of its own
  try {
    assert.ok([a, b, big].every((x) => !inArena(x) && x.every((v) => v === 0)));
    assert.equal(a.buffer === b.buffer, slabs);
    assert.equal(big.byteOffset, 0);
    assert.equal(big.buffer.byteLength, big.byteLength);
    if (slabs) {
      assert.equal(a.byteOffset % 64, 0);
      assert.equal(b.byteOffset % 64, 0);
      assert.ok(b.byteOffset >= a.byteOffset + a.byteLength || a.byteOffset >= b.byteOffset + b.byteLength, 'regions overlap');
    }
    a.fill(7);
    b.fill(1.5);
    const { byteOffset } = a;
    freeWeightArray(a);
    const c = weightArray(Int8Array, 2000); // the same bytes (1000 BF16 values), another type
    try {
      if (slabs) assert.equal(c.buffer === b.buffer && c.byteOffset === byteOffset, true, 'the freed region is reused');
      assert.ok(c.every((v) => v === 0), 'a reused region is zeroed');
      assert.ok(b.every((v) => v === 1.5), 'freeing one weight leaves its neighbours');
    } finally {
      freeWeightArray(c);
    }
    // each weight type's heap allocation goes through it
    const w = WEIGHT_TYPES.int8.alloc(64 * 32, 'heap', 32);
    assert.ok(w.type === 'int8' && !inArena(w.data) && !inArena(w.scales) && w.data.buffer === b.buffer === slabs);
    freeWeightArray(w.data);
    freeWeightArray(w.scales);
  } finally {
    freeWeightArray(b);
    freeWeightArray(big);
  }
});
