// Weights in their stored precision (src/core/weights.ts): the BF16 products of both backends against a
// float64 reference of the same BF16 weights and, bit for bit, against the float32 kernels on the widened
// weights; BF16 loading (as stored, or rounded from F32 as PyTorch rounds); the embedded teacher and its
// SUPRA model loaded at bf16 against f32; backward through a BF16 weight refused. Runs on the backend the
// runner selects (SUPRA_BACKEND), like every test file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { allocF32, allocU16, free, inArena } from '../src/core/memory.js';
import * as ops from '../src/core/ops.js';
import { getBackend } from '../src/core/select.js';
import { bf16ToF32Array, f32BitsToBf16Bits, WEIGHT_TYPES, weightBytes, type Weight } from '../src/core/weights.js';
import { saveCheckpoint, openCheckpoint } from '../src/io/checkpoint.js';
import { f32ToBf16 } from '../src/io/dtype.js';
import { writeSafetensors, SafetensorsFile } from '../src/io/safetensors.js';
import { writeTorchCheckpoint } from '../src/io/torch.js';
import { Linear } from '../src/layers/linear.js';
import { mapSource, ParamStore } from '../src/layers/params.js';
import { loadDecoder } from '../src/models/auto.js';
import { linearizeFolder } from '../src/models/linearize.js';
import { generate } from '../src/generate/generate.js';
import { loadState, modelFingerprint, saveState } from '../src/generate/snapshot.js';
import { GenerationState } from '../src/generate/state.js';
import { maxAbs, maxAbsDiff } from './helpers/fixture.js';
import { freshDirs, tempRoot } from './helpers/tmp.js';
import { randomF32, signedRng as rng } from './helpers/random.js';

const teacherDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../assets/teacher');
const newDir = freshDirs(tempRoot('supra-weights-'));



/** A BF16 weight of n random values (in the arena), and the same values widened to float32. */
function randomBf16(n: number, next: () => number): { w: Uint16Array; widened: Float32Array } {
  const w = allocU16(n);
  for (let i = 0; i < n; i++) w[i] = f32ToBf16(next());
  const widened = allocF32(n);
  bf16ToF32Array(w, new Uint32Array(widened.buffer, widened.byteOffset, n));
  return { w, widened };
}

// Odd shapes: tails of every vector width (k mod 16, mod 32), the decoding path (m ≤ 4; the last two big
// enough for the native add-on to share their rows with its helper thread) and the packed one.
const SHAPES: Array<[m: number, n: number, k: number]> = [
  [1, 67, 1], [1, 33, 15], [1, 130, 33], [2, 9, 130], [3, 40, 47], [4, 17, 64], [4, 64, 200],
  [1, 300, 257], [3, 1001, 130], [5, 19, 33], [9, 70, 130], [37, 23, 17], [64, 96, 576],
];

test('the weight types table: sizes, rows read back as float32, float32 rounded to BF16 as PyTorch rounds', () => {
  assert.equal(weightBytes('f32', 3, 5), 60);
  assert.equal(weightBytes('bf16', 3, 5), 30);
  assert.equal(WEIGHT_TYPES.f32.trainable, true);
  assert.equal(WEIGHT_TYPES.bf16.trainable, false);
  const values = new Float32Array([1, -2.5, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 3.0e38, Number.NaN, -0, 1e-40]);
  const w = WEIGHT_TYPES.bf16.alloc(values.length + 2, 'arena');
  assert.ok(inArena(w.data));
  assert.ok(!inArena(WEIGHT_TYPES.bf16.alloc(4, 'heap').data));
  assert.ok(!inArena(WEIGHT_TYPES.f32.alloc(4, 'heap').data));
  WEIGHT_TYPES.bf16.fromFloat(values, w, 1);
  const bits = new Uint32Array(values.buffer);
  for (let i = 0; i < values.length; i++) assert.equal(w.data[i + 1], f32BitsToBf16Bits(bits[i]!), `value ${values[i]}`);
  // ties to even: 1 + 2^-8 is halfway between 1 and 1 + 2^-7 and goes to 1; 1 + 3·2^-8 goes up
  assert.equal(w.data[3], 0x3f80);
  assert.equal(w.data[4], 0x3f82);
  const back = new Float32Array(values.length);
  WEIGHT_TYPES.bf16.toFloat(w, 1, values.length, back);
  assert.deepEqual([back[0], back[1], back[2], back[3]], [1, -2.5, 1, 1 + 2 ** -6]);
  assert.ok(Number.isNaN(back[5]!));
  free(w.data);
});

test('BF16 products match a float64 reference of the same BF16 weights within (k + 2)·2^-24·Σ|x·w|', () => {
  const next = rng(7);
  for (const [m, n, k] of SHAPES) {
    const x = randomF32(m * k, next);
    const { w, widened } = randomBf16(n * k, next);
    const y = allocF32(m * n).fill(Number.NaN); // overwritten, NaN garbage included
    getBackend().gemmBf16({ m, n, k, x, w, y });
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let exact = 0;
        let scale = 0;
        for (let p = 0; p < k; p++) {
          exact += x[i * k + p]! * widened[j * k + p]!;
          scale += Math.abs(x[i * k + p]! * widened[j * k + p]!);
        }
        const err = Math.abs(y[i * n + j]! - exact);
        assert.ok(err <= (k + 2) * 2 ** -24 * scale, `[${m}×${k}]·[${n}×${k}]ᵀ (${i}, ${j}): ${y[i * n + j]} vs ${exact}`);
      }
    }
    free(x);
    free(w);
    free(widened);
    free(y);
  }
});

test('a BF16 product is the float32 product by the widened weight, bit for bit (decoding rows: every backend; packed: wasm)', () => {
  const next = rng(11);
  const be = getBackend();
  for (const [m, n, k] of SHAPES) {
    const x = randomF32(m * k, next);
    const { w, widened } = randomBf16(n * k, next);
    const y16 = allocF32(m * n);
    const y32 = allocF32(m * n);
    be.gemmBf16({ m, n, k, x, w, y: y16 });
    be.sgemm({ transA: false, transB: true, m, n, k, a: x, b: widened, c: y32 });
    const what = `${be.name} [${m}×${k}]·[${n}×${k}]ᵀ`;
    // The decoding kernels widen in registers and sum as the float32 ones do; the wasm packed product widens
    // while packing. Native packed products widen bands of W for OpenBLAS, whose rounding may depend on how
    // a product is split: there only the reference bound holds (previous test), plus closeness here.
    const exact = m <= 4 || be.name === 'wasm';
    if (exact) assert.deepEqual(Array.from(y16), Array.from(y32), what);
    else assert.ok(maxAbsDiff(y16, y32) <= 1e-5 * Math.max(1, maxAbs(y32)), what);
    // each decoding row alone gives the same bits as within the product (one sequence or several)
    if (m > 1 && m <= 4) {
      const row = allocF32(n);
      be.gemmBf16({ m: 1, n, k, x: x.subarray(k * (m - 1)), w, y: row });
      assert.deepEqual(Array.from(row), Array.from(y16.subarray(n * (m - 1))), `${what}, last row alone`);
      free(row);
    }
    for (const a of [x, w, widened, y16, y32]) free(a);
  }
});

test('a decoding step and a prefill over the same rows agree within float32 rounding', () => {
  const next = rng(13);
  const [m, n, k] = [12, 300, 257];
  const x = randomF32(m * k, next);
  const { w } = randomBf16(n * k, next);
  const packed = allocF32(m * n);
  getBackend().gemmBf16({ m, n, k, x, w, y: packed });
  const rows = allocF32(m * n);
  for (let i = 0; i < m; i++) getBackend().gemmBf16({ m: 1, n, k, x: x.subarray(i * k, (i + 1) * k), w, y: rows.subarray(i * n, (i + 1) * n) });
  assert.ok(maxAbsDiff(rows, packed) <= 4e-6 * Math.max(1, maxAbs(packed)), `max diff ${maxAbsDiff(rows, packed)}`);
  for (const a of [x, w, packed, rows]) free(a);
});

test('BF16 products: arrays off the arena, k = 0 and bad arguments', () => {
  const next = rng(17);
  const [m, n, k] = [3, 21, 40];
  const x = randomF32(m * k, next, false);
  const w = new Uint16Array(n * k).map(() => f32ToBf16(next()));
  const y = new Float32Array(m * n);
  getBackend().gemmBf16({ m, n, k, x, w, y });
  const xa = allocF32(m * k);
  xa.set(x);
  const wa = allocU16(n * k);
  wa.set(w);
  const ya = allocF32(m * n);
  getBackend().gemmBf16({ m, n, k, x: xa, w: wa, y: ya });
  assert.deepEqual(Array.from(y), Array.from(ya));
  const y0 = new Float32Array(6).fill(Number.NaN);
  getBackend().gemmBf16({ m: 2, n: 3, k: 0, x: new Float32Array(0), w: new Uint16Array(0), y: y0 });
  assert.deepEqual(Array.from(y0), [0, 0, 0, 0, 0, 0]);
  assert.throws(() => getBackend().gemmBf16({ m, n, k, x, w: w.subarray(1), y }), /gemmBf16: w has 839 (elements|values)/);
  assert.throws(() => getBackend().gemmBf16({ m, n, k, x, w, y: y.subarray(1) }), /gemmBf16: y has 62 (elements|values)/);
  assert.throws(() => getBackend().gemmBf16({ m, n, k, x: x.subarray(1), w, y }), /gemmBf16: x has 119 (elements|values)/);
  for (const a of [xa, wa, ya]) free(a);
});

test('Linear.forwardShared: each layer\'s own forward bit for bit (BF16 and int8 weights side by side, biases, decoding rows and more)', () => {
  const next = rng(23);
  for (const dtype of ['bf16', 'int8'] as const) {
    const store = new ParamStore({ dtype });
    const k = 100; // a shorter last int8 block
    const layers = [Linear.create(store, 'a', k, 67, true), Linear.create(store, 'b', k, 9, false), Linear.create(store, 'c', k, 300, true)];
    for (const p of store.list()) {
      const values = randomF32(p.shape.reduce((x, y) => x * y, 1), next, false);
      const stored = p.stored ?? { type: 'f32' as const, data: p.data };
      WEIGHT_TYPES[stored.type].fromFloat(values, stored, 0);
    }
    for (const rows of [1, 2, 4, 9]) {
      const x = randomF32(rows * k, next);
      const apart = layers.map((l) => { const y = allocF32(rows * l.outFeatures); l.forward(x, y, rows); return y; });
      const together = layers.map((l) => allocF32(rows * l.outFeatures).fill(Number.NaN));
      Linear.forwardShared(x, rows, layers.map((l, i) => [l, together[i]!] as const));
      for (let i = 0; i < layers.length; i++) assert.deepEqual(Array.from(together[i]!), Array.from(apart[i]!), `${getBackend().name} ${dtype}, ${rows} rows, layer ${i}`);
      for (const a of [x, ...apart, ...together]) free(a);
    }
    assert.throws(() => Linear.forwardShared(new Float32Array(k), 1, [[layers[0]!, new Float32Array(67)], [Linear.create(store, 'd', 64, 3, false), new Float32Array(3)]]),
      /d\.weight reads 64 features, not the 100 of the layers beside it/);
    store.free();
  }
});

test('Linear over a BF16 weight: forward with the bias; backward refused, naming the weight', () => {
  const next = rng(19);
  const store = new ParamStore({ dtype: 'bf16' });
  const layer = Linear.create(store, 'proj', 24, 10, true);
  assert.equal(layer.weight.stored?.type, 'bf16');
  assert.equal(layer.bias?.stored?.type, 'f32', 'vectors stay float32');
  const values = randomF32(240, next, false);
  WEIGHT_TYPES.bf16.fromFloat(values, layer.weight.stored as Weight, 0);
  layer.bias!.data.set(randomF32(10, next, false));
  const widened = allocF32(240);
  WEIGHT_TYPES.bf16.toFloat(layer.weight.stored as Weight, 0, 240, widened);
  const x = randomF32(3 * 24, next);
  const y = allocF32(30);
  layer.forward(x, y, 3);
  const want = allocF32(30);
  ops.linear(x, widened, layer.bias!.data, want, 3, 24, 10);
  assert.deepEqual(Array.from(y), Array.from(want));
  assert.throws(() => layer.weight.data, /proj\.weight is stored as bf16.*load the model with dtype f32/);
  const dy = allocF32(30);
  const message = /supra: proj\.weight is stored as bf16: trained weights are float32; load with dtype f32/;
  assert.throws(() => layer.backward(dy, x, allocF32(72), 3), message);
  assert.throws(() => layer.backwardInput(dy, allocF32(72), 3), message);
  assert.throws(() => layer.backwardParams(dy, x, 3), message);
  assert.throws(() => store.enableGrads(), message);
  assert.equal(store.gradsEnabled, false);
  store.free();
});

test('loading as BF16: a BF16 tensor as stored, F32 and F16 rounded to nearest even, NaN refused naming the file', () => {
  const dir = newDir();
  const values = new Float32Array([1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -0.3, 65504, 2 ** -20, 7.25, -1e-3]);
  const want = Array.from(values, (v) => f32ToBf16(v));
  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    const path = join(dir, `${dtype}.safetensors`);
    writeSafetensors(path, [{ name: 'w', shape: [2, 4], data: values, dtype }]);
    const file = SafetensorsFile.open(path);
    const got = file.readBf16Into('w', new Uint16Array(8), { requireFinite: true });
    // F16 holds its own rounding of the values first; widening it is exact, so BF16 rounds that once
    const f16 = dtype === 'F16' ? file.readF32('w') : values;
    assert.deepEqual(Array.from(got), dtype === 'F16' ? Array.from(f16, (v) => f32ToBf16(v)) : want, dtype);
    assert.throws(() => file.readBf16Into('w', new Uint16Array(7)), /destination holds 7/);
    file.close();
  }
  const bad = join(dir, 'bad');
  mkdirSync(bad);
  saveCheckpoint(bad, new Map([['w', { shape: [2], data: new Float32Array([1, Number.NaN]) }]]));
  const ckpt = openCheckpoint(bad);
  assert.throws(() => ckpt.readBf16Into('w', new Uint16Array(2)), /model\.safetensors: tensor w has 1 NaN\/Inf value \(first at index 1\)/);
  ckpt.close();
  // a pytorch_model.bin (no BF16 reader of its own): its float32 values rounded the same way
  const torch = join(dir, 'torch');
  mkdirSync(torch);
  writeTorchCheckpoint(join(torch, 'pytorch_model.bin'), new Map([['w', { shape: [2, 4], data: values }]]));
  const tk = openCheckpoint(torch);
  assert.deepEqual(Array.from(tk.readBf16Into('w', new Uint16Array(8))), want);
  tk.close();
  // a store filled from tensors in memory rounds the same way
  const store = new ParamStore({ dtype: 'bf16' });
  const p = store.add('w', [2, 4]);
  store.load(mapSource(new Map([['w', { dtype: 'F32', shape: [2, 4], data: values }]])), 'memory');
  assert.deepEqual(Array.from(p.stored!.data), want);
  store.free();
});

/** Logits of every position of `ids` (one row) from a fresh forward. */
function logitsOf(model: ReturnType<typeof loadDecoder>['model'], ids: number[]): Float32Array {
  return model.forward(ids, 1, ids.length).slice();
}

const PROMPT = Array.from({ length: 48 }, (_, i) => (i * 997 + 5) % 4096);

test('the embedded teacher at bf16: the same logits and greedy tokens as at f32 (its file is BF16), half the bytes', () => {
  const f32 = loadDecoder(teacherDir).model;
  const bf16 = loadDecoder(teacherDir, { dtype: 'bf16' }).model;
  try {
    assert.equal(bf16.store.dtype, 'bf16');
    const matrices = bf16.params().filter((p) => p.shape.length === 2);
    assert.ok(matrices.length > 0 && matrices.every((p) => p.stored?.type === 'bf16'));
    assert.ok(bf16.params().filter((p) => p.shape.length === 1).every((p) => p.stored?.type === 'f32'));
    assert.equal(bf16.store.numel(), f32.store.numel());
    // BF16 values widen exactly to the float32 ones the f32 model holds, and the kernels sum alike
    assert.deepEqual(Array.from(logitsOf(bf16, PROMPT)), Array.from(logitsOf(f32, PROMPT)));
    const opts = { max_new_tokens: 12, do_sample: false, eos_token_id: null };
    const a = generate(f32, [PROMPT], opts).sequences[0]!;
    const b = generate(bf16, [PROMPT], opts).sequences[0]!;
    assert.deepEqual(b, a);
    assert.equal(modelFingerprint(bf16), modelFingerprint(f32), 'the same values: snapshots fit both');
    assert.throws(() => {
      bf16.loss(PROMPT, 1, PROMPT.length);
      bf16.backward();
    }, /stored as bf16: trained weights are float32; load with dtype f32/);
  } finally {
    f32.free();
    bf16.free();
  }
});

test('a SUPRA model saved as F32 and loaded at bf16: logits within 0.05 of f32 (measured 0.013, logits ±6.5), greedy tokens alike', () => {
  const dir = join(newDir(), 'supra');
  linearizeFolder(teacherDir, dir, { seed: 3, dtype: 'F32' }); // F32 kernels (a BF16 teacher gives BF16 ones by default)
  const f32 = loadDecoder(dir).model;
  // the weight type alone (folding the feature maps, the bf16 default, rounds their products instead: test/fold.test.ts)
  const bf16 = loadDecoder(dir, { dtype: 'bf16', foldFeatureMaps: false }).model;
  try {
    const a = logitsOf(f32, PROMPT);
    const b = logitsOf(bf16, PROMPT);
    const diff = maxAbsDiff(a, b);
    assert.ok(diff > 0, 'the SUPRA kernels are not BF16 values: rounding them changes something');
    assert.ok(diff <= 0.05, `max |logit diff| ${diff} (max |logit| ${maxAbs(a)})`);
    // the same model with its weights rounded to BF16 by hand, computed at f32: the very same logits
    const rounded = loadDecoder(dir).model;
    try {
      for (const p of rounded.params()) {
        if (p.shape.length !== 2) continue;
        const bits = new Uint32Array(p.data.buffer, p.data.byteOffset, p.data.length);
        for (let i = 0; i < bits.length; i++) bits[i] = f32BitsToBf16Bits(bits[i]!) << 16;
      }
      assert.deepEqual(Array.from(logitsOf(rounded, PROMPT)), Array.from(b));
    } finally {
      rounded.free();
    }
    const opts = { max_new_tokens: 8, do_sample: false, eos_token_id: null };
    const ta = generate(f32, [PROMPT], opts).sequences[0]!.slice(PROMPT.length);
    const tb = generate(bf16, [PROMPT], opts).sequences[0]!.slice(PROMPT.length);
    assert.equal(tb.length, 8);
    assert.ok(tb.filter((t, i) => t === ta[i]).length >= 6, `greedy tokens f32 ${ta} vs bf16 ${tb}`);
    // a state snapshot of the bf16 model continues on it, and is refused by the f32 one (other numbers)
    const path = join(dir, 'state.safetensors');
    const state = new GenerationState(bf16, 1);
    state.append([PROMPT]);
    const logits = state.nextLogits().slice();
    saveState(path, bf16, state);
    state.free();
    const back = loadState(path, bf16);
    assert.deepEqual(Array.from(back.nextLogits()), Array.from(logits));
    back.free();
    assert.throws(() => loadState(path, f32), /the snapshot is from another model/);
  } finally {
    f32.free();
    bf16.free();
  }
});

test('loadDecoder refuses an unknown dtype', () => {
  assert.throws(() => loadDecoder(teacherDir, { dtype: 'int4' as never }), /dtype must be f32 or bf16 or int8, got "int4"/);
});

test('--dtype bf16 on generate and eval: the teacher (a BF16 file) gives the f32 run\'s text and perplexity; a bad value is a usage error', () => {
  const cli = resolve(dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');
  const run = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000 });
  const gen = (dtype: string) => run(['generate', '--model', teacherDir, '--prompt', 'Once upon a time', '-n', '10', '--dtype', dtype]);
  const f32 = gen('f32');
  assert.equal(f32.status, 0, f32.stderr);
  const bf16 = gen('bf16');
  assert.equal(bf16.status, 0, bf16.stderr);
  assert.equal(bf16.stdout, f32.stdout);
  const text = join(newDir(), 'text.txt');
  writeFileSync(text, 'The cat sat on the mat. It was a sunny day, and the children played in the park until dark.');
  const ev = (dtype: string) => {
    const json = join(dirname(text), `${dtype}.json`);
    const r = run(['eval', '--model', teacherDir, '--text', text, '--dtype', dtype, '--json', json]);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(readFileSync(json, 'utf8')) as { dtype: string; perplexity: { overall: { perplexity: number } } };
  };
  const [e32, e16] = [ev('f32'), ev('bf16')];
  assert.equal(e16.dtype, 'bf16');
  assert.ok(e32.perplexity.overall.perplexity > 1);
  assert.deepEqual(e16.perplexity, e32.perplexity);
  for (const cmd of ['generate', 'eval', 'serve']) {
    const bad = run([cmd, '--model', teacherDir, '--dtype', 'int4', ...(cmd === 'eval' ? ['--text', text] : ['--prompt', 'x'].slice(cmd === 'serve' ? 2 : 0))]);
    assert.equal(bad.status, 2, `${cmd}: ${bad.stderr}`);
    assert.match(bad.stderr, /--dtype must be one of f32, bf16, int8, got "int4"/, cmd);
  }
});
