import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gqaDir, maxAbs } from './helpers/fixture.js';
import { allocF32, free, inArena } from '../src/core/memory.js';
import {
  bf16ToF32,
  bitsToF32,
  f16ToF32,
  f16ToF32Array,
  f32ToBf16,
  f32ToBits,
  f32ToF16,
  f32ToF16Array,
  f32ToBf16Array,
  bf16ToF32Array,
} from '../src/io/dtype.js';
import { SafetensorsFile, readSafetensors, writeSafetensors, MAX_HEADER_BYTES, type TensorData } from '../src/io/safetensors.js';
import { tempRoot } from './helpers/tmp.js';

const tmp = tempRoot('supra-io-st-');
let fileCounter = 0;

/** A hand-made safetensors file: header object (or raw header text), data bytes, optional header-length lie. */
function rawFile(header: unknown, data: Uint8Array | number, opts: { declaredLen?: bigint; name?: string } = {}): string {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const hdr = Buffer.from(text, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(opts.declaredLen ?? BigInt(hdr.length));
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const path = join(tmp, opts.name ?? `raw${fileCounter++}.safetensors`);
  writeFileSync(path, Buffer.concat([len, hdr, body]));
  return path;
}

function openError(path: string): string {
  try {
    SafetensorsFile.open(path).close();
  } catch (e) {
    return (e as Error).message;
  }
  assert.fail(`${path} opened without error`);
}

// ---- the fixture ------------------------------------------------------------------------------

test('every fixture file reads back with the manifest names, shapes, dtypes and value ranges', () => {
  const manifest = JSON.parse(readFileSync(join(gqaDir, 'manifest.json'), 'utf8')) as Record<
    string,
    Record<string, { shape: number[]; dtype: string; max_abs_value?: number }>
  >;
  let checked = 0;
  let ranged = 0;
  for (const [file, entries] of Object.entries(manifest)) {
    const tensors = readSafetensors(join(gqaDir, file));
    assert.deepEqual([...tensors.keys()].sort(), Object.keys(entries).sort(), file);
    for (const [name, want] of Object.entries(entries)) {
      const t = tensors.get(name)!;
      assert.deepEqual(t.shape, want.shape, `${file}:${name}`);
      assert.equal(t.dtype, want.dtype === 'int32' ? 'I32' : 'F32', `${file}:${name}`);
      assert.equal(t.data.length, want.shape.reduce((a, b) => a * b, 1));
      if (want.dtype === 'float32') {
        assert.ok(t.data instanceof Float32Array);
        if (want.max_abs_value !== undefined) {
          // max_abs_value is the float64 value before the single rounding to float32
          const m = maxAbs(t.data);
          assert.ok(Math.abs(m - want.max_abs_value) <= 1e-6 * want.max_abs_value + 1e-38, `${file}:${name} max ${m} vs ${want.max_abs_value}`);
          ranged++;
        }
      } else {
        assert.ok(t.data instanceof Int32Array);
      }
      checked++;
    }
  }
  assert.ok(checked > 150 && ranged > 50, `checked ${checked} tensors, ${ranged} value ranges`);
});

test('SafetensorsFile reads straight into an arena buffer, and reports info/metadata', () => {
  const path = join(gqaDir, 'teacher', 'model.safetensors');
  const f = SafetensorsFile.open(path);
  try {
    assert.equal(f.metadata.format, 'pt');
    const info = f.info('model.layers.0.self_attn.k_proj.weight');
    assert.deepEqual({ dtype: info.dtype, shape: info.shape, numel: info.numel }, { dtype: 'F32', shape: [32, 64], numel: 2048 });
    const dest = allocF32(info.numel);
    assert.ok(inArena(dest));
    f.readInto('model.layers.0.self_attn.k_proj.weight', dest);
    assert.deepEqual(Array.from(dest), Array.from(f.readF32('model.layers.0.self_attn.k_proj.weight')));
    assert.ok(maxAbs(dest) > 0);
    free(dest);
    assert.throws(() => f.readInto('model.norm.weight', new Float32Array(3)), /model\.norm\.weight' has 64 values.*holds 3/);
    assert.throws(() => f.info('nope'), /model\.safetensors: no tensor 'nope'/);
  } finally {
    f.close();
  }
  assert.throws(() => f.readF32('model.norm.weight'), /closed/);
});

// ---- validation -------------------------------------------------------------------------------

const okEntry = { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] };

test('a file shorter than the 8-byte length is rejected', () => {
  const path = join(tmp, 'tiny.safetensors');
  writeFileSync(path, Buffer.from([1, 2, 3]));
  assert.match(openError(path), /tiny\.safetensors: truncated: 3 bytes/);
});

test('truncated data: offsets beyond the end of the file', () => {
  const path = rawFile({ x: okEntry, y: { dtype: 'F32', shape: [4], data_offsets: [24, 40] } }, 30);
  assert.match(openError(path), /raw\d+\.safetensors: tensor 'y': data_offsets \[24,40\] lie outside the data area of 30 bytes/);
});

test('header length larger than the file, or over the 100 MB bound', () => {
  const big = rawFile({ x: okEntry }, 24, { declaredLen: 5000n, name: 'biglen.safetensors' });
  assert.match(openError(big), /biglen\.safetensors: header length 5000 is larger than the \d+ bytes after it/);
  const huge = rawFile({ x: okEntry }, 24, { declaredLen: 2n ** 63n, name: 'hugelen.safetensors' });
  assert.match(openError(huge), new RegExp(`hugelen\\.safetensors: header length 9223372036854775808 exceeds the ${MAX_HEADER_BYTES}-byte limit`));
});

test('a lying header (shape x dtype != byte length) names tensor, bytes and need', () => {
  const path = rawFile({ x: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 16] } }, 16, { name: 'model.safetensors' });
  assert.match(openError(path), /model\.safetensors: tensor 'x' declares 16 bytes but shape \[2,3\] of F32 needs 24/);
});

test('overlapping offsets are rejected', () => {
  const path = rawFile({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] }, b: { dtype: 'F32', shape: [4], data_offsets: [8, 24] } }, 24);
  assert.match(openError(path), /tensor 'b' bytes \[8,24\] overlap tensor 'a' \[0,16\]/);
});

test('offsets outside the data area, and end before begin', () => {
  const out = rawFile({ a: { dtype: 'F16', shape: [2], data_offsets: [100, 104] } }, 8);
  assert.match(openError(out), /tensor 'a': data_offsets \[100,104\] lie outside the data area of 8 bytes/);
  const backwards = rawFile({ a: { dtype: 'F32', shape: [0], data_offsets: [8, 4] } }, 8);
  assert.match(openError(backwards), /tensor 'a': data_offsets \[8,4\] end before begin/);
});

test('unknown dtype, bad shape, bad offsets, bad metadata', () => {
  assert.match(openError(rawFile({ w: { dtype: 'F8_E4M3', shape: [2], data_offsets: [0, 2] } }, 2)), /tensor 'w': unknown dtype "F8_E4M3"/);
  assert.match(openError(rawFile({ w: { dtype: 'toString', shape: [2], data_offsets: [0, 2] } }, 2)), /tensor 'w': unknown dtype "toString"/);
  assert.match(openError(rawFile({ w: { dtype: 'F32', shape: [2, -1], data_offsets: [0, 8] } }, 8)), /tensor 'w': shape must be an array of non-negative integers, got \[2,-1\]/);
  assert.match(openError(rawFile({ w: { dtype: 'F32', shape: [1.5], data_offsets: [0, 8] } }, 8)), /tensor 'w': shape must be/);
  assert.match(openError(rawFile({ w: { dtype: 'F32', shape: [2], data_offsets: [0] } }, 8)), /tensor 'w': data_offsets must be \[begin, end\]/);
  assert.match(openError(rawFile({ w: 'F32' }, 0)), /tensor 'w': entry must be an object/);
  assert.match(openError(rawFile({ __metadata__: { format: 1 }, w: okEntry }, 24)), /__metadata__ key 'format' must be a string/);
});

test('a header that is not JSON, not UTF-8, or not an object', () => {
  assert.match(openError(rawFile('{"x": {"dtype": "F32",', 0, { name: 'broken.safetensors' })), /broken\.safetensors: header is not valid JSON/);
  const badUtf8 = join(tmp, 'utf8.safetensors');
  const hdr = Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]); // {"\xff\xfe":1}
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(hdr.length));
  writeFileSync(badUtf8, Buffer.concat([len, hdr]));
  assert.match(openError(badUtf8), /utf8\.safetensors: header is not valid UTF-8/);
  assert.match(openError(rawFile('[1, 2]', 0)), /header must be a JSON object, got an array/);
  assert.match(openError(join(tmp, 'absent.safetensors')), /absent\.safetensors: not found/);
  assert.match(openError(tmp), /not a regular file/);
});

test('empty tensors own no bytes and read back empty; scalars have shape []', () => {
  const data = new Uint8Array(8);
  new DataView(data.buffer).setFloat32(4, 2.5, true);
  const path = rawFile(
    {
      empty: { dtype: 'F32', shape: [0, 3], data_offsets: [0, 0] },
      a: { dtype: 'F32', shape: [], data_offsets: [0, 4] },
      b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
      empty2: { dtype: 'F16', shape: [0], data_offsets: [8, 8] },
    },
    data,
  );
  const t = readSafetensors(path);
  assert.equal(t.get('empty')!.data.length, 0);
  assert.deepEqual(t.get('empty')!.shape, [0, 3]);
  assert.deepEqual(t.get('a')!.shape, []);
  assert.equal(t.get('a')!.data[0], 0);
  assert.equal(t.get('b')!.data[0], 2.5);
  assert.equal(t.get('empty2')!.data.length, 0);
});

test('I64, I32, U8, BOOL read as int32; F64 as float32; I64 out of range is an error', () => {
  const data = new Uint8Array(8 * 3 + 4 * 2 + 3 + 2 + 8 * 2 + 8);
  const dv = new DataView(data.buffer);
  dv.setBigInt64(0, -5n, true);
  dv.setBigInt64(8, 2147483647n, true);
  dv.setBigInt64(16, 7n, true);
  dv.setInt32(24, -9, true);
  dv.setInt32(28, 123456, true);
  data.set([0, 200, 255], 32);
  data.set([1, 0], 35);
  dv.setFloat64(37, Math.PI, true); // unaligned on purpose: the reader copies through a chunk buffer
  dv.setFloat64(45, -1e-3, true);
  dv.setBigInt64(53, 1n << 40n, true);
  const path = rawFile(
    {
      i64: { dtype: 'I64', shape: [3], data_offsets: [0, 24] },
      i32: { dtype: 'I32', shape: [2], data_offsets: [24, 32] },
      u8: { dtype: 'U8', shape: [3], data_offsets: [32, 35] },
      bool: { dtype: 'BOOL', shape: [2], data_offsets: [35, 37] },
      f64: { dtype: 'F64', shape: [2], data_offsets: [37, 53] },
      big: { dtype: 'I64', shape: [1], data_offsets: [53, 61] },
    },
    data,
    { name: 'ints.safetensors' },
  );
  const f = SafetensorsFile.open(path);
  try {
    assert.deepEqual(Array.from(f.readI32('i64')), [-5, 2147483647, 7]);
    assert.deepEqual(Array.from(f.readI32('i32')), [-9, 123456]);
    assert.deepEqual(Array.from(f.readI32('u8')), [0, 200, 255]);
    assert.deepEqual(Array.from(f.readI32('bool')), [1, 0]);
    assert.deepEqual(Array.from(f.readF32('f64')), [Math.fround(Math.PI), Math.fround(-1e-3)]);
    assert.throws(() => f.readI32('big'), /ints\.safetensors: tensor 'big' element 0 = 1099511627776 does not fit in int32/);
    assert.throws(() => f.readF32('i32'), /tensor 'i32' is I32, not a float tensor/);
    assert.throws(() => f.readI32('f64'), /tensor 'f64' is F64, not an integer tensor/);
  } finally {
    f.close();
  }
});

// ---- half-precision conversions ------------------------------------------------------------------

/** Independent binary16 decoder, in float64 arithmetic. */
function f16Reference(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  if (exp === 0) return sign * mant * 2 ** -24;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

test('F16 -> F32 on known bit patterns', () => {
  const cases: Array<[number, number]> = [
    [0x0000, 0],
    [0x3c00, 1],
    [0xc000, -2],
    [0x3555, 0.333251953125],
    [0x7bff, 65504],
    [0x0400, 2 ** -14], // smallest normal
    [0x03ff, 1023 * 2 ** -24], // largest subnormal
    [0x0001, 2 ** -24], // smallest subnormal
    [0x8001, -(2 ** -24)],
    [0x7c00, Infinity],
    [0xfc00, -Infinity],
  ];
  for (const [h, v] of cases) assert.equal(f16ToF32(h), v, `0x${h.toString(16)}`);
  assert.ok(Object.is(f16ToF32(0x8000), -0));
  assert.ok(Number.isNaN(f16ToF32(0x7e00)));
  assert.equal(f32ToBits(f16ToF32(0xfe01)), 0xffc02000, 'NaN keeps its sign and payload');
});

test('F16 <-> F32: all 65536 patterns decode exactly and round-trip', () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const wide = new Float32Array(65536);
  f16ToF32Array(all, new Uint32Array(wide.buffer));
  const back = new Uint16Array(65536);
  f32ToF16Array(new Uint32Array(wide.buffer), back);
  for (let h = 0; h < 65536; h++) {
    const ref = f16Reference(h);
    if (Number.isNaN(ref)) {
      assert.ok(Number.isNaN(wide[h]!), `0x${h.toString(16)}`);
      assert.ok(Number.isNaN(f16ToF32(back[h]!)) && (back[h]! & 0x8000) === (h & 0x8000), `NaN 0x${h.toString(16)}`);
      continue;
    }
    assert.ok(Object.is(wide[h], ref), `decode 0x${h.toString(16)}: ${wide[h]} vs ${ref}`);
    assert.ok(Object.is(f16ToF32(h), ref));
    assert.equal(back[h], h, `round trip 0x${h.toString(16)}`);
  }
});

test('F32 -> F16 rounds to nearest even, with subnormals, overflow, inf and NaN', () => {
  const cases: Array<[number, number]> = [
    [1 + 2 ** -11, 0x3c00], // tie between 0x3c00 and 0x3c01 -> even
    [1 + 3 * 2 ** -11, 0x3c02], // tie between 0x3c01 and 0x3c02 -> even
    [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie
    [65504, 0x7bff],
    [65519.99, 0x7bff],
    [65520, 0x7c00], // tie between max finite and the next power -> inf
    [1e6, 0x7c00],
    [-1e6, 0xfc00],
    [Infinity, 0x7c00],
    [2 ** -24, 0x0001],
    [2 ** -25, 0x0000], // tie between 0 and the smallest subnormal -> even 0
    [2 ** -25 * 1.0000001, 0x0001],
    [3 * 2 ** -25, 0x0002], // 1.5 units -> even 2
    [5 * 2 ** -25, 0x0002], // 2.5 units -> even 2
    [2 ** -14 - 2 ** -25, 0x0400], // tie between largest subnormal and smallest normal -> even normal
    [1e-10, 0x0000],
    [-1e-10, 0x8000],
    [0.1, 0x2e66],
  ];
  for (const [v, h] of cases) assert.equal(f32ToF16(v), h, `${v} -> 0x${h.toString(16)} (got 0x${f32ToF16(v).toString(16)})`);
  assert.equal(f32ToF16(-0), 0x8000);
  assert.equal(f32ToF16(NaN) & 0x7e00, 0x7e00);
  assert.equal(f32ToF16(bitsToF32(0xff800001)) & 0xfe00, 0xfe00, 'signalling NaN becomes a quiet NaN, sign kept');
});

test('F32 -> F16 matches an independent nearest-even search on random floats', () => {
  // the positive half-precision values in increasing order, decoded independently
  const values = new Float64Array(0x7c01).map((_, h) => f16Reference(h));
  const src = new Float32Array(20000);
  let seed = 12345;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (let i = 0; i < src.length; i++) src[i] = (rand() - 0.5) * 2 ** (Math.floor(rand() * 44) - 28);
  const out = new Uint16Array(src.length);
  f32ToF16Array(new Uint32Array(src.buffer), out);
  for (let i = 0; i < src.length; i++) {
    const x = Math.abs(src[i]!);
    let lo = 0;
    let hi = 0x7c00;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (values[mid]! <= x) lo = mid;
      else hi = mid;
    }
    // inf is the next value past 65504 at distance 2^5 (as if the exponent continued)
    const upper = hi === 0x7c00 ? 65536 : values[hi]!;
    const dLo = x - values[lo]!;
    const dHi = upper - x;
    const want = dLo < dHi || (dLo === dHi && (lo & 1) === 0) ? lo : hi;
    const signed = want | (src[i]! < 0 ? 0x8000 : 0);
    assert.equal(out[i], signed, `${src[i]}`);
  }
});

test('BF16 conversions: known bit patterns, round-to-nearest-even, all patterns round-trip', () => {
  assert.equal(bf16ToF32(0x3f80), 1);
  assert.equal(bf16ToF32(0xc040), -3);
  assert.equal(bf16ToF32(0x7f7f), 3.3895313892515355e38);
  assert.equal(bf16ToF32(0x0001), 2 ** -133); // subnormal
  assert.equal(bf16ToF32(0xff80), -Infinity);
  assert.ok(Number.isNaN(bf16ToF32(0x7fc0)));
  assert.equal(f32ToBf16(1 + 2 ** -8), 0x3f80); // tie -> even
  assert.equal(f32ToBf16(1 + 3 * 2 ** -8), 0x3f82); // tie -> even (up)
  assert.equal(f32ToBf16(1 + 2 ** -8 + 2 ** -20), 0x3f81);
  assert.equal(f32ToBf16(bitsToF32(0x7f7fffff)), 0x7f80); // max float32 rounds to inf
  assert.equal(f32ToBf16(-Infinity), 0xff80);
  assert.equal(f32ToBf16(bitsToF32(0x7f800001)), 0x7fc0); // signalling NaN -> quiet
  assert.equal(f32ToBf16(bitsToF32(0xffa00000)), 0xffe0);
  assert.equal(f32ToBf16(0.1), 0x3dcd);
  const all = new Uint16Array(65536).map((_, i) => i);
  const wide = new Uint32Array(65536);
  bf16ToF32Array(all, wide);
  const back = new Uint16Array(65536);
  f32ToBf16Array(wide, back);
  for (let b = 0; b < 65536; b++) {
    assert.equal(wide[b], b << 16 >>> 0);
    const isNaN = (b & 0x7f80) === 0x7f80 && (b & 0x7f) !== 0;
    if (isNaN) assert.equal(back[b], b | 0x40);
    else assert.equal(back[b], b);
  }
});

// ---- writer ------------------------------------------------------------------------------------

function randomF32(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s / 2 ** 32 - 0.5) * 8;
  }
  return a;
}

test('writeSafetensors round-trips F32, F16, BF16 and I32, HF layout', () => {
  const big = randomF32(700_001, 1); // over one 1 MiB conversion chunk, odd length
  const w = randomF32(12, 2);
  const ids = new Int32Array([3, -1, 2147483647]);
  const path = join(tmp, 'rt.safetensors');
  writeSafetensors(
    path,
    [
      { name: 'w32', shape: [3, 4], data: w, dtype: 'F32' },
      { name: 'w16', shape: [3, 4], data: w, dtype: 'F16' },
      { name: 'wbf', shape: [3, 4], data: w, dtype: 'BF16' },
      { name: 'big16', shape: [700_001], data: big, dtype: 'F16' },
      { name: 'bigbf', shape: [7], data: big.subarray(3, 10), dtype: 'BF16' }, // a view at an offset
      { name: 'ids', shape: [3], data: ids },
      { name: 'scalar', shape: [], data: new Float32Array([1.5]) },
      { name: 'empty', shape: [2, 0], data: new Float32Array(0), dtype: 'F16' },
    ],
    { format: 'pt', note: 'round trip' },
  );
  const bytes = readFileSync(path);
  const headerLen = Number(bytes.readBigUInt64LE(0));
  assert.equal(headerLen % 8, 0, 'header padded to 8 bytes');
  assert.doesNotThrow(() => JSON.parse(bytes.subarray(8, 8 + headerLen).toString('utf8')), 'padding is JSON whitespace');
  const f = SafetensorsFile.open(path);
  try {
    assert.deepEqual(f.metadata, { format: 'pt', note: 'round trip' });
    assert.deepEqual(f.names(), ['w32', 'w16', 'wbf', 'big16', 'bigbf', 'ids', 'scalar', 'empty']);
    assert.deepEqual(f.info('w16').shape, [3, 4]);
    assert.equal(f.info('w16').dtype, 'F16');
    assert.equal(f.info('wbf').dtype, 'BF16');
    assert.deepEqual(Array.from(f.readF32('w32')), Array.from(w));
    assert.deepEqual(Array.from(f.readF32('w16')), Array.from(w, (v) => f16ToF32(f32ToF16(v))));
    assert.deepEqual(Array.from(f.readF32('wbf')), Array.from(w, (v) => bf16ToF32(f32ToBf16(v))));
    const big16 = f.readF32('big16');
    for (let i = 0; i < big.length; i++) {
      if (big16[i] !== f16ToF32(f32ToF16(big[i]!))) assert.fail(`big16[${i}]`);
      // rounding error bound of binary16 (values here are normal)
      if (Math.abs(big16[i]! - big[i]!) > Math.abs(big[i]!) * 2 ** -11 + 2 ** -25) assert.fail(`big16[${i}] error`);
    }
    assert.deepEqual(Array.from(f.readF32('bigbf')), Array.from(big.subarray(3, 10), (v) => bf16ToF32(f32ToBf16(v))));
    assert.deepEqual(Array.from(f.readI32('ids')), [3, -1, 2147483647]);
    assert.deepEqual(f.info('scalar').shape, []);
    assert.equal(f.readF32('scalar')[0], 1.5);
    assert.equal(f.readF32('empty').length, 0);
  } finally {
    f.close();
  }
  assert.equal(statSync(path).size, 8 + headerLen + 48 + 24 + 24 + 700_001 * 2 + 14 + 12 + 4);
  assert.deepEqual(readdirSync(tmp).filter((n) => n.includes('.tmp-')), [], 'no temp file left behind');
  // the Map form writes the same file
  const path2 = join(tmp, 'rt-map.safetensors');
  writeSafetensors(path2, new Map([['w32', { shape: [3, 4], data: w }]]));
  assert.deepEqual(Array.from(readSafetensors(path2).get('w32')!.data), Array.from(w));
});

test('writeSafetensors rejects bad input before touching the disk', () => {
  const path = join(tmp, 'bad-input.safetensors');
  assert.throws(() => writeSafetensors(path, [{ name: 'a', shape: [2, 2], data: new Float32Array(3) }]), /bad-input\.safetensors: tensor 'a': shape \[2,2\] holds 4 values, data has 3/);
  assert.throws(() => writeSafetensors(path, [{ name: 'a', shape: [1], data: new Float32Array(1) }, { name: 'a', shape: [1], data: new Float32Array(1) }]), /tensor 'a' appears twice/);
  assert.throws(() => writeSafetensors(path, [{ name: 'a', shape: [1], data: new Int32Array(1), dtype: 'F16' }]), /Int32Array data cannot be stored as F16/);
  assert.throws(() => writeSafetensors(path, [{ name: '__metadata__', shape: [1], data: new Float32Array(1) }]), /invalid tensor name/);
  assert.equal(existsSync(path), false);
});

test('atomic write: a failure mid-stream leaves the old file intact and no temp file', () => {
  const path = join(tmp, 'atomic.safetensors');
  const old = randomF32(64, 3);
  writeSafetensors(path, [{ name: 'old', shape: [64], data: old }]);
  const oldBytes = readFileSync(path);
  const tensors = [0, 1, 2].map((i) => ({ name: `t${i}`, shape: [1000], data: randomF32(1000, 10 + i), dtype: 'F16' as const }));
  let calls = 0;
  assert.throws(
    () =>
      writeSafetensors(path, tensors, undefined, {
        onProgress: (written, total) => {
          calls++;
          // while the new file is being written, the real name still holds the complete old one
          assert.deepEqual(readFileSync(path), oldBytes);
          assert.equal(total, 6000);
          if (written === 4000) throw new Error('simulated crash after two tensors');
        },
      }),
    /simulated crash/,
  );
  assert.equal(calls, 2);
  assert.deepEqual(readFileSync(path), oldBytes);
  assert.deepEqual(Array.from(readSafetensors(path).get('old')!.data), Array.from(old));
  assert.deepEqual(readdirSync(tmp).filter((n) => n.startsWith('atomic.safetensors.tmp-')), []);
});

test('atomic write: a process killed mid-write never leaves a partial file under the real name', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'supra-io-kill-'));
  try {
    const path = join(dir, 'model.safetensors');
    writeSafetensors(path, [{ name: 'old', shape: [4], data: new Float32Array([1, 2, 3, 4]) }]);
    const oldBytes = readFileSync(path);
    const moduleUrl = new URL('../src/io/safetensors.js', import.meta.url).href;
    // the child writes ~48 MB through the F16 converter, long enough to be caught mid-write
    const script = `
      import { writeSafetensors } from ${JSON.stringify(moduleUrl)};
      const list = [];
      for (let i = 0; i < 12; i++) list.push({ name: 't' + i, shape: [2000000], data: new Float32Array(2000000).fill(i + 0.5), dtype: 'F16' });
      writeSafetensors(${JSON.stringify(path)}, list);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'ignore' });
    const exited = new Promise<void>((res) => child.on('exit', () => res()));
    const tmpName = `${path}.tmp-${child.pid}`;
    const deadline = Date.now() + 20000;
    let caught = false;
    while (Date.now() < deadline && child.exitCode === null) {
      if (existsSync(tmpName) && statSync(tmpName).size > 4096) {
        child.kill('SIGKILL');
        caught = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    await exited;
    const now = readFileSync(path);
    if (now.equals(oldBytes)) {
      assert.ok(caught, 'the child was killed mid-write');
      assert.ok(existsSync(tmpName), 'the partial data is only in the temp file');
      // usually caught early: then the temp file itself is visibly incomplete
      if (statSync(tmpName).size < 12 * 2000000 * 2) assert.throws(() => SafetensorsFile.open(tmpName).close(), /outside the data area/);
    } else {
      // the child finished before it could be killed: then the real name holds the complete new file
      const t = readSafetensors(path);
      assert.equal(t.size, 12);
      assert.equal(t.get('t11')!.data[1999999], 11.5);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// the compiled test lives in <dist>/test; keep the import path used by the child valid
assert.ok(existsSync(resolve(dirname(fileURLToPath(import.meta.url)), '../src/io/safetensors.js')));

test('atomic writes create a missing output folder (README commands write under runs/ on a fresh clone)', async () => {
  const { writeJsonAtomic } = await import('../src/io/atomic.js');
  const root = mkdtempSync(join(tmpdir(), 'supra-newdir-'));
  try {
    const json = join(root, 'a', 'b', 'eval.json');
    writeJsonAtomic(json, { ok: 1 });
    assert.deepEqual(JSON.parse(readFileSync(json, 'utf8')), { ok: 1 });
    const st = join(root, 'c', 'story.state');
    writeSafetensors(st, new Map([['x', { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) }]]));
    assert.deepEqual(Array.from(readSafetensors(st).get('x')!.data as Float32Array), [1, 2]);
    assert.deepEqual(readdirSync(join(root, 'c')), ['story.state'], 'no temporary file left');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('an atomic write to a path that is a folder is refused up front, naming it, with no temporary file left', async () => {
  const { writeJsonAtomic } = await import('../src/io/atomic.js');
  const root = mkdtempSync(join(tmpdir(), 'supra-isdir-'));
  try {
    const folder = join(root, 'story.state');
    mkdirSync(folder);
    const tensors = new Map([['x', { dtype: 'F32' as const, shape: [2], data: new Float32Array([1, 2]) }]]);
    assert.throws(() => writeSafetensors(folder, tensors), (e: Error) => e.message.includes(folder) && /is a folder/.test(e.message));
    assert.throws(() => writeJsonAtomic(folder, { ok: 1 }), (e: Error) => e.message.includes(folder) && /is a folder/.test(e.message));
    assert.deepEqual(readdirSync(root), ['story.state'], 'no temporary file left beside it');
    assert.deepEqual(readdirSync(folder), [], 'nothing written into it');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('the writer takes tensors as functions: each called once, in file order, when reached; a wrong one leaves no file', () => {
  const dir = join(tmp, 'lazy');
  mkdirSync(dir);
  const calls: string[] = [];
  // bytes of data already in the file being written (its temporary name) when a tensor is asked for
  const dataWritten = () => {
    const [partial] = readdirSync(dir).filter((f) => f.startsWith('a.safetensors.tmp'));
    const bytes = readFileSync(join(dir, partial!));
    return bytes.length - 8 - Number(bytes.readBigUInt64LE(0));
  };
  const lazy = (name: string, n: number, before: number) => ({
    name,
    shape: [n],
    data: (): TensorData => {
      calls.push(name);
      assert.equal(dataWritten(), before, `${name} is asked for once the tensors before it are written`);
      return Float32Array.from({ length: n }, (_, i) => i + n);
    },
  });
  writeSafetensors(join(dir, 'a.safetensors'), [lazy('x', 3, 0), { name: 'y', shape: [2], data: new Float32Array([7, 8]) }, lazy('z', 4, 20)]);
  assert.deepEqual(calls, ['x', 'z']);
  const back = readSafetensors(join(dir, 'a.safetensors'));
  assert.deepEqual(Array.from(back.get('x')!.data), [3, 4, 5]);
  assert.deepEqual(Array.from(back.get('z')!.data), [4, 5, 6, 7]);

  assert.throws(() => writeSafetensors(join(dir, 'b.safetensors'), [{ name: 'short', shape: [5], data: () => new Float32Array(2) }]), /b\.safetensors: tensor 'short': shape \[5\] holds 5 values, data has 2/);
  assert.deepEqual(readdirSync(dir), ['a.safetensors']);
});

test('reading BF16 tensors converts through one reused buffer: loading leaves no trail of chunk buffers', () => {
  // 40 tensors of 1 MiB in BF16: a chunk buffer per read would leave 40 MiB of garbage behind
  const path = join(tmp, 'many-bf16.safetensors');
  const n = 1 << 19;
  writeSafetensors(path, Array.from({ length: 40 }, (_, i) => ({ name: `t${i}`, shape: [n], data: () => new Float32Array(n).fill(i), dtype: 'BF16' as const })));
  const file = SafetensorsFile.open(path);
  const dest = new Float32Array(n);
  try {
    file.readInto('t0', dest); // the buffer itself, made once
    const before = process.memoryUsage().arrayBuffers;
    for (let i = 1; i < 40; i++) assert.equal(file.readInto(`t${i}`, dest)[n - 1], i);
    const grew = process.memoryUsage().arrayBuffers - before;
    assert.ok(grew < 2 ** 20, `array buffers grew by ${(grew / 2 ** 20).toFixed(1)} MiB while reading`);
  } finally {
    file.close();
  }
});
