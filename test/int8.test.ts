// int8 weights (src/core/weights.ts, Backend.gemmInt8): quantizing and dequantizing (exact where the values
// are representable, within half a scale otherwise, NaN/Infinity refused naming the tensor), the products
// of both backends against float arithmetic on the dequantized weights, loading that quantizes as it reads,
// the embedded teacher and its SUPRA model at int8 against f32, backward refused, and --quantize int8 on
// the command line. Runs on the backend the runner selects (SUPRA_BACKEND), like every test file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { INT8_BLOCK } from '../src/core/backend.js';
import { allocF32, free, inArena } from '../src/core/memory.js';
import * as ops from '../src/core/ops.js';
import { getBackend } from '../src/core/select.js';
import { int8BlocksPerRow, WEIGHT_TYPES, weightBytes, type Weight } from '../src/core/weights.js';
import { saveCheckpoint, openCheckpoint } from '../src/io/checkpoint.js';
import { Linear } from '../src/layers/linear.js';
import { mapSource, ParamStore } from '../src/layers/params.js';
import { loadDecoder } from '../src/models/auto.js';
import { parameterMemory } from '../src/models/decoder.js';
import { linearizeFolder } from '../src/models/linearize.js';
import { generate } from '../src/generate/generate.js';
import { maxAbs, maxAbsDiff } from './helpers/fixture.js';
import { freshDirs, tempRoot } from './helpers/tmp.js';
import { randomF32, signedRng as rng } from './helpers/random.js';

type Int8Weight = Extract<Weight, { type: 'int8' }>;
const INT8 = WEIGHT_TYPES.int8;
const teacherDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../assets/teacher');
const newDir = freshDirs(tempRoot('supra-int8-'));



/** An int8 weight [rows, cols] quantized from random values, and its dequantized values (float32, in the arena). */
function randomInt8(rows: number, cols: number, next: () => number): { w: Int8Weight; deq: Float32Array } {
  const w = INT8.alloc(rows * cols, 'arena', cols) as Int8Weight;
  INT8.fromFloat(randomF32(rows * cols, next, false), w, 0);
  const deq = allocF32(rows * cols);
  INT8.toFloat(w, 0, rows * cols, deq);
  return { w, deq };
}

/** The values of bfloat16 bits (an int8 weight's scales). */
const bf16Values = (bits: ArrayLike<number>): number[] => Array.from(new Float32Array(Uint32Array.from(Array.from(bits), (b) => b << 16).buffer));

const freeInt8 = (w: Int8Weight): void => {
  free(w.data);
  free(w.scales);
};

test('the int8 row: sizes count the scales, representable values come back exactly, others within half a scale', () => {
  assert.equal(weightBytes('int8', 3, 64), 3 * 2 * 34);
  assert.equal(weightBytes('int8', 3, 40), 3 * 2 * 34, 'a row of 40 takes two blocks');
  assert.equal(INT8.trainable, false);
  // two rows of 40: blocks [0, 32) and [32, 40) per row, each with its own scale
  const cols = 40;
  const w = INT8.alloc(2 * cols, 'arena', cols) as Int8Weight;
  assert.ok(inArena(w.data) && inArena(w.scales));
  assert.equal(w.scales.length, 4);
  // multiples of 2^-7 with |q| ≤ 127 and 127 reached in every block: exact
  const exact = new Float32Array(2 * cols);
  for (let i = 0; i < exact.length; i++) exact[i] = (((i * 37) % 255) - 127) * 2 ** -7;
  for (const b of [0, 32, 40, 72]) exact[b] = 127 * 2 ** -7;
  INT8.fromFloat(exact, w, 0);
  assert.deepEqual(bf16Values(w.scales), [2 ** -7, 2 ** -7, 2 ** -7, 2 ** -7]);
  const back = new Float32Array(2 * cols);
  INT8.toFloat(w, 0, back.length, back);
  assert.deepEqual(Array.from(back), Array.from(exact));
  // a part read from the middle of a row
  const part = new Float32Array(10);
  INT8.toFloat(w, 35, 10, part);
  assert.deepEqual(Array.from(part), Array.from(exact.subarray(35, 45)));
  // zeros: a zero scale and zero values; the other block of the row is unaffected
  INT8.fromFloat(new Float32Array(32), w, 40);
  assert.equal(w.scales[2], 0);
  INT8.toFloat(w, 40, 40, back.subarray(0, 40));
  assert.deepEqual(Array.from(back.subarray(0, 32)), new Array(32).fill(0));
  assert.equal(back[32], exact[72]);
  // ties go to even: with scale 1, 2.5 → 2, 3.5 → 4, -2.5 → -2, -0.5 → 0
  const ties = new Float32Array(40);
  ties.set([127, 2.5, 3.5, -2.5, -0.5, 0.5, 1.5]);
  ties[32] = 1;
  INT8.fromFloat(ties, w, 0);
  assert.deepEqual(Array.from(w.data.subarray(0, 7)), [127, 2, 4, -2, 0, 0, 2]);
  // the scale is rounded up to a bfloat16: 0.3 / 127 is not one, and the next one up keeps 0.3 within 127
  ties.fill(0, 0, 32).set([0.3, -0.15]);
  INT8.fromFloat(ties, w, 0);
  assert.ok(bf16Values(w.scales)[0]! > 0.3 / 127 && bf16Values(w.scales)[0]! < (0.3 / 127) * (1 + 2 ** -7));
  assert.deepEqual(Array.from(w.data.subarray(0, 2)), [Math.round(0.3 / bf16Values(w.scales)[0]!), -Math.round(0.15 / bf16Values(w.scales)[0]!)]);
  // subnormal scales: 200·2^-133 / 127 rounds up to 2·2^-133 (bits 2), the halves still to even (7 / 2 → 4);
  // 178·2^-149 / 127 to the least bfloat16, 2^-133, where every value is 0
  const tiny = new Float32Array(32);
  tiny.set([200 * 2 ** -133, 7 * 2 ** -133, -100 * 2 ** -133]);
  INT8.fromFloat(tiny, w, 0);
  assert.equal(w.scales[0], 2);
  assert.deepEqual(Array.from(w.data.subarray(0, 3)), [100, 4, -50]);
  tiny.fill(0).set([178 * 2 ** -149, -178 * 2 ** -149, 89 * 2 ** -149]);
  INT8.fromFloat(tiny, w, 0);
  assert.equal(w.scales[0], 1);
  assert.deepEqual(Array.from(w.data.subarray(0, 3)), [0, 0, 0]);
  // random values: within half their block's scale
  const next = rng(3);
  const values = randomF32(2 * cols, next, false);
  INT8.fromFloat(values, w, 0);
  INT8.toFloat(w, 0, values.length, back);
  for (let i = 0; i < values.length; i++) {
    const scale = bf16Values([w.scales[Math.floor(i / cols) * 2 + Math.floor((i % cols) / INT8_BLOCK)]!])[0]!;
    assert.ok(Math.abs(back[i]! - values[i]!) <= (scale / 2) * (1 + 2 ** -20), `value ${i}: ${values[i]} → ${back[i]} (scale ${scale})`);
  }
  // what int8 cannot hold, and writes that would split a block
  assert.throws(() => INT8.fromFloat(new Float32Array(32).fill(Number.NaN, 1, 2), w, 0), /int8 weights cannot hold NaN \(value 1 of the weight\)/);
  assert.throws(() => INT8.fromFloat(new Float32Array(8).fill(Number.NEGATIVE_INFINITY), w, 32), /cannot hold -Infinity \(value 32/);
  assert.throws(() => INT8.fromFloat(new Float32Array(16), w, 0), /values \[0, 16\) do not cover whole blocks of 32 \(rows of 40\)/);
  assert.throws(() => INT8.fromFloat(new Float32Array(8), w, 4), /do not cover whole blocks/);
  assert.throws(() => INT8.alloc(50, 'arena', 40), /int8 weight of 50 values cannot have rows of 40/);
  freeInt8(w);
});

/**
 * The int8 rule, written another way: per block the least bfloat16 c with 127·c >= max|x| (a product exact in
 * float64), found by stepping bit patterns; q = round(x / scale) with the quotient in float32 (as torch's
 * round(x / scale) on float32 tensors), ties to even, and never past ±127.
 */
function referenceScale(amax: number): number {
  let bits = new Uint32Array(new Float32Array([amax / 127]).buffer)[0]! >>> 16;
  while (127 * bf16Values([bits])[0]! < amax) bits++;
  while (bits > 0 && 127 * bf16Values([bits - 1])[0]! >= amax) bits--;
  return bits;
}

function referenceInt8(values: Float32Array, cols: number): { q: number[]; scales: number[] } {
  const q: number[] = [], scales: number[] = [];
  const halfEven = (v: number): number => {
    const r = Math.round(v); // halves go up
    return (r - v === 0.5 && r % 2 !== 0 ? r - 1 : r) + 0; // + 0: no -0 in an Int8Array
  };
  for (let row = 0; row < values.length / cols; row++) {
    for (let c = 0; c < cols; c += INT8_BLOCK) {
      const block = values.subarray(row * cols + c, row * cols + Math.min(cols, c + INT8_BLOCK));
      const bits = referenceScale(Math.max(...Array.from(block, Math.abs)));
      const scale = bf16Values([bits])[0]!;
      scales.push(bits);
      for (const x of block) {
        const v = scale === 0 ? 0 : halfEven(Math.fround(x / scale));
        assert.ok(Math.abs(v) <= 127, `${x} / ${scale} quantizes to ${v}`);
        q.push(v);
      }
    }
  }
  return { q, scales };
}

test(`quantizing on ${getBackend().name} (${getBackend().quantizeInt8 ? 'its own kernel' : 'JavaScript'}) follows the rule to the bit: scales rounded up to bfloat16, halves to even, short blocks, chunks`, () => {
  const cols = 70; // two whole blocks and a short one a row
  const rows = 400;
  const next = rng(11);
  const values = randomF32(rows * cols, next, false);
  // values half a step from two q: ties go to even. With a bfloat16 scale (8 significant bits), half·scale is
  // a float32, and a quotient that float32 rounds onto a half-integer is one: near it, x / scale moves by
  // more than float32's spacing from one float32 x to the next.
  let ties = 0;
  for (let row = 0; row < rows; row++) {
    const base = row * cols;
    const amax = Math.fround(0.5 + Math.abs(next()));
    values[base] = amax;
    const scale = bf16Values([referenceScale(amax)])[0]!;
    for (let j = 1; j < 32; j++) {
      const half = Math.floor(Math.abs(next()) * 120) + 0.5;
      const x = Math.fround(half * scale);
      values[base + j] = next() < 0 ? -x : x;
      if (x / scale === half) ties++;
    }
  }
  assert.equal(ties, rows * 31, 'every half·scale is a float32');
  const want = referenceInt8(values, cols);
  const w = INT8.alloc(rows * cols, 'heap', cols) as Int8Weight;
  // in chunks of whole rows, as loading quantizes (layers/params.ts), then the whole weight at once
  for (let from = 0; from < values.length; from += 7 * cols) INT8.fromFloat(values.subarray(from, Math.min(values.length, from + 7 * cols)), w, from);
  assert.deepEqual(Array.from(w.scales), want.scales);
  assert.deepEqual(Array.from(w.data), want.q);
  w.data.fill(99);
  INT8.fromFloat(values, w, 0);
  assert.deepEqual(Array.from(w.data), want.q);
  // the first value that is not finite is the one named, whichever kind comes first in its block
  const bad = values.slice(0, 2 * cols);
  bad[cols + 3] = Number.POSITIVE_INFINITY;
  bad[cols + 5] = Number.NaN;
  assert.throws(() => INT8.fromFloat(bad, w, 0), new RegExp(`cannot hold Infinity \\(value ${cols + 3} of the weight\\)`));
});

// Odd shapes: k below, at and past a block, k not a multiple of 32 (a shorter last block), the decoding path
// (m ≤ 4; the larger ones shared with the native add-on's helper thread) and the packed one (m > 4).
const SHAPES: Array<[m: number, n: number, k: number]> = [
  [1, 67, 1], [1, 33, 15], [1, 130, 32], [2, 9, 130], [3, 40, 47], [4, 17, 64], [4, 64, 200],
  [1, 300, 576], [2, 1001, 96], [3, 257, 100], [4, 130, 704], [5, 19, 33], [9, 70, 130], [37, 23, 17], [64, 96, 576],
];

test('int8 products match a float64 reference of the dequantized weights within (k + 4)·2^-24·Σ|x·w|, and m > 4 matches sgemm on them (wasm: bit for bit)', () => {
  const next = rng(7);
  const be = getBackend();
  for (const [m, n, k] of SHAPES) {
    const x = randomF32(m * k, next);
    const { w, deq } = randomInt8(n, k, next);
    const y = allocF32(m * n).fill(Number.NaN); // overwritten, NaN garbage included
    be.gemmInt8({ m, n, k, x, w: w.data, scales: w.scales, y });
    const what = `${be.name} [${m}×${k}]·[${n}×${k}]ᵀ`;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let exact = 0;
        let bound = 0;
        for (let p = 0; p < k; p++) {
          exact += x[i * k + p]! * deq[j * k + p]!;
          bound += Math.abs(x[i * k + p]! * deq[j * k + p]!);
        }
        const err = Math.abs(y[i * n + j]! - exact);
        assert.ok(err <= (k + 4) * 2 ** -24 * bound, `${what} (${i}, ${j}): ${y[i * n + j]} vs ${exact}`);
      }
    }
    if (m > 4) {
      // the packed path dequantizes and runs the float32 product: the wasm kernel packs as it dequantizes
      // (the same bits); native hands dequantized bands to OpenBLAS, whose rounding depends on the split
      const y32 = allocF32(m * n);
      be.sgemm({ transA: false, transB: true, m, n, k, a: x, b: deq, c: y32 });
      if (be.name === 'wasm') assert.deepEqual(Array.from(y), Array.from(y32), what);
      else assert.ok(maxAbsDiff(y, y32) <= 1e-5 * Math.max(1, maxAbs(y32)), what);
      free(y32);
    } else {
      // each decoding row alone gives the same bits as within the product
      if (m > 1) {
        const row = allocF32(n);
        be.gemmInt8({ m: 1, n, k, x: x.subarray(k * (m - 1)), w: w.data, scales: w.scales, y: row });
        assert.deepEqual(Array.from(row), Array.from(y.subarray(n * (m - 1))), `${what}, last row alone`);
        free(row);
      }
      // and so does each weight row alone (wasm takes them two at a time where it can, one at a time here)
      const blocks = int8BlocksPerRow(k);
      const one = allocF32(m);
      for (const j of [0, 1, n - 1]) {
        if (j >= n) continue;
        be.gemmInt8({ m, n: 1, k, x, w: w.data.subarray(j * k, (j + 1) * k), scales: w.scales.subarray(j * blocks, (j + 1) * blocks), y: one });
        for (let i = 0; i < m; i++) assert.equal(one[i], y[i * n + j], `${what}, weight row ${j} alone, x row ${i}`);
      }
      free(one);
    }
    for (const a of [x, deq, y]) free(a);
    freeInt8(w);
  }
});

test('int8 products: arrays off the arena, k = 0 and bad arguments', () => {
  const next = rng(17);
  const [m, n, k] = [3, 21, 40];
  const { w: wa, deq } = randomInt8(n, k, next);
  const x = randomF32(m * k, next, false);
  const w = new Int8Array(wa.data);
  const scales = new Uint16Array(wa.scales);
  const y = new Float32Array(m * n);
  getBackend().gemmInt8({ m, n, k, x, w, scales, y });
  const xa = allocF32(m * k);
  xa.set(x);
  const ya = allocF32(m * n);
  getBackend().gemmInt8({ m, n, k, x: xa, w: wa.data, scales: wa.scales, y: ya });
  assert.deepEqual(Array.from(y), Array.from(ya));
  const y0 = new Float32Array(6).fill(Number.NaN);
  getBackend().gemmInt8({ m: 2, n: 3, k: 0, x: new Float32Array(0), w: new Int8Array(0), scales: new Uint16Array(0), y: y0 });
  assert.deepEqual(Array.from(y0), [0, 0, 0, 0, 0, 0]);
  assert.throws(() => getBackend().gemmInt8({ m, n, k, x, w: w.subarray(1), scales, y }), /gemmInt8: w has 839 (elements|values)/);
  assert.throws(() => getBackend().gemmInt8({ m, n, k, x, w, scales: scales.subarray(1), y }), /gemmInt8: scales has 41 (elements|values)/);
  assert.throws(() => getBackend().gemmInt8({ m, n, k, x, w, scales, y: y.subarray(1) }), /gemmInt8: y has 62 (elements|values)/);
  assert.throws(() => getBackend().gemmInt8({ m, n, k, x: x.subarray(1), w, scales, y }), /gemmInt8: x has 119 (elements|values)/);
  // float32 scales (int8's before they became bfloat16) would be read as other bits: refused on either backend
  assert.throws(() => getBackend().gemmInt8({ m, n, k, x, w, scales: new Float32Array(scales.length) as unknown as Uint16Array, y }), /gemmInt8: scales must be a Uint16Array/);
  const floatScales = allocF32(scales.length); // in the arena, where the wasm kernel would read it in place
  assert.throws(() => getBackend().gemmInt8({ m, n, k, x: xa, w: wa.data, scales: floatScales as unknown as Uint16Array, y: ya }), /gemmInt8: scales must be a Uint16Array/);
  free(floatScales);
  for (const a of [xa, ya, deq]) free(a);
  freeInt8(wa);
});

test('Linear over an int8 weight: forward with the bias, as the float32 layer over the dequantized weight; backward refused, naming the weight', () => {
  const next = rng(19);
  const store = new ParamStore({ dtype: 'int8' });
  const layer = Linear.create(store, 'proj', 64, 10, true);
  const stored = layer.weight.stored as Int8Weight;
  assert.equal(stored.type, 'int8');
  assert.equal(layer.bias?.stored?.type, 'f32', 'vectors stay float32');
  INT8.fromFloat(randomF32(640, next, false), stored, 0);
  layer.bias!.data.set(randomF32(10, next, false));
  const deq = allocF32(640);
  INT8.toFloat(stored, 0, 640, deq);
  const x = randomF32(3 * 64, next);
  const y = allocF32(30);
  layer.forward(x, y, 3);
  const want = allocF32(30);
  ops.linear(x, deq, layer.bias!.data, want, 3, 64, 10);
  assert.ok(maxAbsDiff(y, want) <= 1e-5 * Math.max(1, maxAbs(want)), `max diff ${maxAbsDiff(y, want)}`);
  assert.throws(() => layer.weight.data, /proj\.weight is stored as int8.*load the model with dtype f32/);
  const dy = allocF32(30);
  const message = /supra: proj\.weight is stored as int8: trained weights are float32; load with dtype f32/;
  assert.throws(() => layer.backward(dy, x, allocF32(192), 3), message);
  assert.throws(() => layer.backwardParams(dy, x, 3), message);
  assert.throws(() => store.enableGrads(), message);
  store.free();
});

test('loading as int8: F32 and BF16 tensors quantized as read, vectors kept float32, NaN refused naming the tensor', () => {
  const next = rng(23);
  const rows = 5, cols = 72; // a shorter last block per row
  const values = randomF32(rows * cols, next, false);
  const bias = randomF32(rows, next, false);
  const want = INT8.alloc(rows * cols, 'arena', cols) as Int8Weight;
  INT8.fromFloat(values, want, 0);
  // from tensors in memory (float32), and from a BF16 file (read as its BF16 bits, widened a few rows at a time)
  const dir = newDir();
  saveCheckpoint(dir, [{ name: 'w', shape: [rows, cols], data: values }, { name: 'b', shape: [rows], data: bias }], { dtype: 'BF16' });
  const ckpt = openCheckpoint(dir);
  const bf16Values = ckpt.readF32('w');
  const wantBf16 = INT8.alloc(rows * cols, 'arena', cols) as Int8Weight;
  INT8.fromFloat(bf16Values, wantBf16, 0);
  for (const [source, expected, name] of [
    [mapSource(new Map([['w', { dtype: 'F32', shape: [rows, cols], data: values }], ['b', { dtype: 'F32', shape: [rows], data: bias }]])), want, 'memory'],
    [ckpt, wantBf16, dir],
  ] as const) {
    const store = new ParamStore({ dtype: 'int8' });
    const w = store.add('w', [rows, cols]);
    const b = store.add('b', [rows]);
    store.load(source, name);
    const got = w.stored as Int8Weight;
    assert.deepEqual(Array.from(got.data), Array.from(expected.data), name);
    assert.deepEqual(Array.from(got.scales), Array.from(expected.scales), name);
    assert.equal(b.stored?.type, 'f32');
    store.free();
  }
  ckpt.close();
  const store = new ParamStore({ dtype: 'int8' });
  store.add('w', [2, 4]);
  const bad = new Float32Array([1, 2, 3, 4, 5, Number.POSITIVE_INFINITY, 7, 8]);
  assert.throws(() => store.load(mapSource(new Map([['w', { dtype: 'F32', shape: [2, 4], data: bad }]])), 'memory'),
    /^Error: supra: memory: tensor w: int8 weights cannot hold Infinity \(value 5 of the weight\)/);
  store.free();
  for (const w of [want, wantBf16]) freeInt8(w);
});

const PROMPT = Array.from({ length: 48 }, (_, i) => (i * 997 + 5) % 4096);

test('the embedded teacher and its SUPRA model at int8: logits within 0.5 of f32 (measured 0.29 on the teacher, logits ±12), the same greedy tokens but at near-ties, 0.27 of the bytes', () => {
  const supraDir = join(newDir(), 'supra');
  linearizeFolder(teacherDir, supraDir, { seed: 3, dtype: 'F32' });
  for (const dir of [teacherDir, supraDir]) {
    const f32 = loadDecoder(dir).model;
    const int8 = loadDecoder(dir, { dtype: 'int8', foldFeatureMaps: false }).model; // the weight type alone (folding: test/fold.test.ts)
    try {
      assert.equal(int8.store.dtype, 'int8');
      assert.ok(int8.params().filter((p) => p.shape.length === 2).every((p) => p.stored?.type === 'int8'));
      assert.ok(int8.params().filter((p) => p.shape.length === 1).every((p) => p.stored?.type === 'f32'));
      const mem = parameterMemory(int8.config, { dtype: 'int8' });
      const matrices = int8.params().filter((p) => p.shape.length === 2);
      const expect = matrices.reduce((s, p) => s + p.shape[0]! * int8BlocksPerRow(p.shape[1]!) * 34, 0) +
        int8.params().filter((p) => p.shape.length === 1).reduce((s, p) => s + 4 * p.shape[0]!, 0);
      assert.equal(mem.bytes, expect);
      assert.ok(mem.bytes < 0.3 * parameterMemory(f32.config).bytes);
      const a = f32.forward(PROMPT, 1, PROMPT.length).slice();
      const b = int8.forward(PROMPT, 1, PROMPT.length).slice();
      const diff = maxAbsDiff(a, b);
      assert.ok(diff > 0 && diff <= 0.5, `${dir}: max |logit diff| ${diff} (max |logit| ${maxAbs(a)})`);
      // greedy tokens: the same, up to a step where float32's two best logits are closer than int8's error
      // (the teacher's 10th token here: 0.019 apart, measured 2026-12-08)
      const opts = { max_new_tokens: 10, do_sample: false, eos_token_id: null };
      const want = generate(f32, [PROMPT], opts).sequences[0]!, got = generate(int8, [PROMPT], opts).sequences[0]!;
      const split = got.findIndex((t, i) => t !== want[i]);
      if (split >= 0) {
        const prefix = want.slice(0, split);
        const last = f32.forward(prefix, 1, prefix.length).slice((prefix.length - 1) * f32.config.vocab_size);
        const [first, second] = Array.from(last).sort((x, y) => y - x);
        assert.ok(first! - second! < diff, `${dir}: int8 greedy differs at token ${split}, where float32's best two logits are ${first! - second!} apart`);
      }
      assert.throws(() => {
        int8.loss(PROMPT, 1, PROMPT.length);
        int8.backward();
      }, /stored as int8: trained weights are float32; load with dtype f32/);
    } finally {
      f32.free();
      int8.free();
    }
  }
});

test('--quantize int8 (and --dtype int8) on generate and eval; disagreeing or unknown values are usage errors', () => {
  const cli = resolve(dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');
  const run = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000 });
  const gen = (...flags: string[]) => run(['generate', '--model', teacherDir, '--prompt', 'Once upon a time', '-n', '8', ...flags]);
  const q = gen('--quantize', 'int8');
  assert.equal(q.status, 0, q.stderr);
  const d = gen('--dtype', 'int8');
  assert.equal(d.status, 0, d.stderr);
  assert.equal(q.stdout, d.stdout);
  assert.ok(q.stdout.trim().length > 0, 'some text');
  const text = join(newDir(), 'text.txt');
  writeFileSync(text, 'The cat sat on the mat. It was a sunny day, and the children played in the park until dark.');
  const json = join(dirname(text), 'int8.json');
  const e = run(['eval', '--model', teacherDir, '--text', text, '--quantize', 'int8', '--json', json]);
  assert.equal(e.status, 0, e.stderr);
  const report = JSON.parse(readFileSync(json, 'utf8')) as { dtype: string; perplexity: { overall: { perplexity: number } } };
  assert.equal(report.dtype, 'int8');
  assert.ok(report.perplexity.overall.perplexity > 1);
  for (const cmd of ['generate', 'eval', 'serve']) {
    const extra = cmd === 'eval' ? ['--text', text] : cmd === 'generate' ? ['--prompt', 'x'] : [];
    const help = run([cmd, '--help']);
    assert.match(help.stdout, /--quantize int8/, cmd);
    assert.match(help.stdout, /--dtype f32\|bf16\|int8/, cmd);
    const bad = run([cmd, '--model', teacherDir, '--quantize', 'int4', ...extra]);
    assert.equal(bad.status, 2, `${cmd}: ${bad.stderr}`);
    assert.match(bad.stderr, /--quantize must be one of int8, got "int4"/, cmd);
    const both = run([cmd, '--model', teacherDir, '--quantize', 'int8', '--dtype', 'bf16', ...extra]);
    assert.equal(both.status, 2, `${cmd}: ${both.stderr}`);
    assert.match(both.stderr, /--dtype bf16 and --quantize int8 disagree/, cmd);
  }
});
