// PyTorch zip checkpoints: a hand-assembled archive (pickle opcodes, zip headers and directory written
// byte by byte here, independent of src/io/zip.ts and the pickle writer), writer -> reader round trips,
// refusal of malicious pickles, and clear errors on corrupt archives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { readTorchCheckpoint, TorchFile, writeTorchCheckpoint } from '../src/io/torch.js';
import { allocF32, free } from '../src/core/memory.js';
import { unpickle } from '../src/io/pickle.js';
import { ZipReader, ZipWriter, crc32, crc32Table } from '../src/io/zip.js';
import { f32ToBf16, bf16ToF32, f32ToF16, f16ToF32 } from '../src/io/dtype.js';
import { errorOf } from './helpers/errors.js';
import { tempRoot } from './helpers/tmp.js';

const root = tempRoot('supra-io-torch-');
let counter = 0;
const fresh = (ext = '.bin') => join(root, `f${counter++}${ext}`);

// ---- independent helpers: bitwise CRC-32 and raw byte builders --------------------------------------

function bitCrc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of data) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

const u16 = (v: number) => [v & 0xff, (v >>> 8) & 0xff];
const u32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const ascii = (s: string) => [...Buffer.from(s, 'latin1')];

/** A zip of the given entries; method 8 entries are deflated. Layout per APPNOTE 4.3.7 / 4.3.12 / 4.3.16. */
function buildZip(entries: Array<{ name: string; data: Uint8Array; deflate?: boolean }>): Buffer {
  const out: number[] = [];
  const central: number[] = [];
  for (const e of entries) {
    const offset = out.length;
    const stored = e.deflate ? new Uint8Array(deflateRawSync(e.data)) : e.data;
    const crc = bitCrc32(e.data);
    const name = ascii(e.name);
    const method = e.deflate ? 8 : 0;
    out.push(...u32(0x04034b50), ...u16(20), ...u16(0), ...u16(method), ...u16(0), ...u16(33));
    out.push(...u32(crc), ...u32(stored.length), ...u32(e.data.length), ...u16(name.length), ...u16(0), ...name);
    for (const b of stored) out.push(b);
    central.push(...u32(0x02014b50), ...u16(20), ...u16(20), ...u16(0), ...u16(method), ...u16(0), ...u16(33));
    central.push(...u32(crc), ...u32(stored.length), ...u32(e.data.length), ...u16(name.length), ...u16(0), ...u16(0));
    central.push(...u16(0), ...u16(0), ...u32(0), ...u32(offset), ...name);
  }
  const cdOffset = out.length;
  out.push(...central);
  out.push(...u32(0x06054b50), ...u16(0), ...u16(0), ...u16(entries.length), ...u16(entries.length));
  out.push(...u32(central.length), ...u32(cdOffset), ...u16(0));
  return Buffer.from(out);
}

// pickle opcodes, spelled out
const PROTO = 0x80, MARK = 0x28, STOP = 0x2e, EMPTY_DICT = 0x7d, EMPTY_TUPLE = 0x29, GLOBAL = 0x63, REDUCE = 0x52;
const BINPERSID = 0x51, TUPLE = 0x74, TUPLE1 = 0x85, TUPLE2 = 0x86, BININT1 = 0x4b, BININT = 0x4a, NEWFALSE = 0x89;
const NEWTRUE = 0x88, SETITEMS = 0x75, BINPUT = 0x71, BINGET = 0x68, BUILD = 0x62, SHORT_BINUNICODE = 0x8c, BINUNICODE = 0x58;

const sStr = (s: string) => [SHORT_BINUNICODE, s.length, ...ascii(s)];
const lStr = (s: string) => [BINUNICODE, ...u32(s.length), ...ascii(s)];
const glob = (m: string, n: string) => [GLOBAL, ...ascii(`${m}\n${n}\n`)];

/** The pickle torch.save would write for a 5-tensor state dict, with views, memo use and _metadata. */
function handPickle(): Buffer {
  const pid = (cls: string, key: string, numel: number) => [MARK, ...lStr('storage'), ...glob('torch', cls), ...lStr(key), ...lStr('cpu'), BININT1, numel, TUPLE, BINPERSID];
  const hooks = [BINGET, 0, EMPTY_TUPLE, REDUCE]; // memo 0 = collections.OrderedDict
  const rebuild = [BINGET, 2]; // memo 2 = torch._utils._rebuild_tensor_v2
  const b: number[] = [PROTO, 2];
  b.push(...glob('collections', 'OrderedDict'), BINPUT, 0, EMPTY_TUPLE, REDUCE, BINPUT, 1);
  b.push(MARK);
  // w_f32: FloatStorage "0" (6 elements), [2, 3] contiguous
  b.push(...sStr('w_f32'), ...glob('torch._utils', '_rebuild_tensor_v2'), BINPUT, 2);
  b.push(MARK, ...pid('FloatStorage', '0', 6), BININT1, 0, BININT1, 2, BININT1, 3, TUPLE2, BININT1, 3, BININT1, 1, TUPLE2, NEWFALSE, ...hooks, TUPLE, REDUCE);
  // h_f16: HalfStorage "1", [4], wrapped as an nn.Parameter
  b.push(...sStr('h_f16'), ...glob('torch._utils', '_rebuild_parameter'));
  b.push(MARK, ...rebuild, MARK, ...pid('HalfStorage', '1', 4), BININT1, 0, BININT1, 4, TUPLE1, BININT1, 1, TUPLE1, NEWFALSE, ...hooks, TUPLE, REDUCE);
  b.push(NEWTRUE, ...hooks, TUPLE, REDUCE);
  // b_bf16: BFloat16Storage "2", [2, 2]
  b.push(...sStr('b_bf16'), ...rebuild);
  b.push(MARK, ...pid('BFloat16Storage', '2', 4), BININT1, 0, BININT1, 2, BININT1, 2, TUPLE2, BININT1, 2, BININT1, 1, TUPLE2, NEWFALSE, ...hooks, TUPLE, REDUCE);
  // t_view: FloatStorage "3" (12 elements 0..11), offset 1, size [3, 2], stride [1, 4]: a transposed view
  b.push(...sStr('t_view'), ...rebuild);
  b.push(MARK, ...pid('FloatStorage', '3', 12), BININT1, 1, BININT1, 3, BININT1, 2, TUPLE2, BININT1, 1, BININT1, 4, TUPLE2, NEWFALSE, ...hooks, TUPLE, REDUCE);
  // tied: shares storage "0" with w_f32, offset 3, size [3] (the second row), 4-byte BININT offset
  b.push(...sStr('tied'), ...rebuild);
  b.push(MARK, ...pid('FloatStorage', '0', 6), BININT, ...u32(3), BININT1, 3, TUPLE1, BININT1, 1, TUPLE1, NEWFALSE, ...hooks, TUPLE, REDUCE);
  b.push(SETITEMS);
  // state_dict._metadata = {'': {'version': 1}}
  b.push(EMPTY_DICT, ...sStr('_metadata'), EMPTY_DICT, ...sStr(''), EMPTY_DICT, ...sStr('version'), BININT1, 1, 0x73, 0x73, 0x73, BUILD);
  b.push(STOP);
  return Buffer.from(b);
}

const W_F32 = [1.5, -2.25, 3, 0.125, 1e-3, -7];
const H_F16_BITS = [0x3e00 /* 1.5 */, 0xc000 /* -2 */, 0x2e66 /* 0.0999755859375 */, 0x7bff /* 65504 */];
const H_F16 = [1.5, -2, 0.0999755859375, 65504];
const B_BF16_BITS = [0x3f80 /* 1 */, 0xc040 /* -3 */, 0x3e20 /* 0.15625 */, 0x4049 /* 3.140625 */];
const B_BF16 = [1, -3, 0.15625, 3.140625];

function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}
function u16Bytes(bits: number[]): Uint8Array {
  return new Uint8Array(new Uint16Array(bits).buffer);
}

function handArchive(): Buffer {
  return buildZip([
    { name: 'mymodel/data.pkl', data: handPickle() },
    { name: 'mymodel/byteorder', data: Buffer.from('little') },
    { name: 'mymodel/data/0', data: f32Bytes(W_F32) },
    { name: 'mymodel/data/1', data: u16Bytes(H_F16_BITS) },
    { name: 'mymodel/data/2', data: u16Bytes(B_BF16_BITS) },
    { name: 'mymodel/data/3', data: f32Bytes([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]) },
    { name: 'mymodel/version', data: Buffer.from('3\n'), deflate: true },
  ]);
}

test('CRC-32: table and native agree with the check value', () => {
  const check = Buffer.from('123456789');
  assert.equal(crc32(check), 0xcbf43926);
  assert.equal(crc32Table(check, 0), 0xcbf43926);
  assert.equal(bitCrc32(check), 0xcbf43926);
  const big = new Uint8Array(100_003).map((_, i) => (i * 7919) & 0xff);
  assert.equal(crc32(big), crc32Table(big, 0));
  assert.equal(crc32(big.subarray(50_000), crc32(big.subarray(0, 50_000))), crc32(big)); // streaming
});

test('hand-assembled PyTorch archive: F32/F16/BF16, parameter wrapper, offset and transposed views, shared storage', () => {
  const path = fresh();
  writeFileSync(path, handArchive());
  const sd = readTorchCheckpoint(path);
  assert.deepEqual([...sd.keys()], ['w_f32', 'h_f16', 'b_bf16', 't_view', 'tied']);
  const w = sd.get('w_f32')!;
  assert.equal(w.dtype, 'F32');
  assert.deepEqual(w.shape, [2, 3]);
  assert.deepEqual([...w.data], W_F32.map(Math.fround));
  const h = sd.get('h_f16')!;
  assert.equal(h.dtype, 'F16');
  assert.deepEqual(h.shape, [4]);
  assert.deepEqual([...h.data], H_F16);
  const b = sd.get('b_bf16')!;
  assert.equal(b.dtype, 'BF16');
  assert.deepEqual(b.shape, [2, 2]);
  assert.deepEqual([...b.data], B_BF16);
  const v = sd.get('t_view')!;
  assert.deepEqual(v.shape, [3, 2]);
  assert.deepEqual([...v.data], [1, 5, 2, 6, 3, 7]);
  const tied = sd.get('tied')!;
  assert.deepEqual(tied.shape, [3]);
  assert.deepEqual([...tied.data], W_F32.slice(3).map(Math.fround));
  // the shared storage must not alias: changing one tensor leaves the other intact
  tied.data[0] = 42;
  assert.equal(w.data[3], Math.fround(W_F32[3]!));
});

test('TorchFile reads tensor by tensor: opening reads no storage, each tensor lands in place (arena too), a corrupt storage is met when read', () => {
  const path = fresh();
  writeFileSync(path, handArchive());
  const all = readTorchCheckpoint(path);
  const file = TorchFile.open(path);
  try {
    for (const [name, t] of all) {
      assert.deepEqual(file.info(name), { dtype: t.dtype, shape: t.shape, numel: t.data.length });
      const dest = allocF32(t.data.length);
      assert.equal(file.readInto(name, dest), dest);
      assert.deepEqual([...dest], [...t.data], name);
      assert.deepEqual([...file.readF32(name)], [...t.data], name);
      free(dest);
    }
  } finally {
    file.close();
  }
  // flip a byte of storage 3 (t_view's): the file still opens, the other tensors read, t_view names the entry
  const bad = Buffer.from(handArchive());
  bad[bad.indexOf(Buffer.from('mymodel/data/3')) + 'mymodel/data/3'.length + 8]! ^= 0x40;
  const corrupt = fresh();
  writeFileSync(corrupt, bad);
  const lazy = TorchFile.open(corrupt);
  try {
    assert.deepEqual([...lazy.readF32('w_f32')], [...all.get('w_f32')!.data]);
    assert.deepEqual([...lazy.readF32('b_bf16')], [...all.get('b_bf16')!.data]);
    assert.match(errorOf(() => lazy.readF32('t_view')), /CRC-32 mismatch in entry "mymodel\/data\/3"/);
  } finally {
    lazy.close();
  }
  assert.match(errorOf(() => TorchFile.open(corrupt).readF32('t_view')), /file is corrupt/);
});

test('zip readPieces: an entry in 1 MiB pieces through one buffer, CRC checked at the end', () => {
  const path = fresh();
  const big = new Uint8Array(2.5 * 2 ** 20).map((_, i) => (i * 7919) & 0xff);
  const zw = new ZipWriter(path);
  zw.add('a/data/0', big);
  zw.finish();
  const zip = ZipReader.open(path);
  try {
    const seen: number[] = [];
    const copy = new Uint8Array(big.length);
    zip.readPieces('a/data/0', (piece, offset) => {
      seen.push(offset);
      copy.set(piece, offset);
    });
    assert.deepEqual(seen, [0, 2 ** 20, 2 * 2 ** 20]);
    assert.ok(Buffer.from(copy).equals(Buffer.from(big)));
  } finally {
    zip.close();
  }
});

test('zip reader on the hand-built archive: names, sizes, deflated entry, CRC', () => {
  const path = fresh();
  writeFileSync(path, handArchive());
  const zip = ZipReader.open(path);
  try {
    assert.equal(zip.entries.size, 7);
    assert.equal(Buffer.from(zip.read('mymodel/version')).toString(), '3\n');
    assert.equal(zip.entries.get('mymodel/version')!.method, 8);
    assert.equal(zip.read('mymodel/data/3').byteLength, 48);
  } finally {
    zip.close();
  }
});

test('writer -> reader round trip in F32, BF16 and F16; tied arrays share one storage', () => {
  const emb = new Float32Array([0.1, -0.2, 0.3, 1e-8, 65519, -1e5]);
  const tensors = new Map([
    ['model.embed_tokens.weight', { shape: [3, 2], data: emb }],
    ['lm_head.weight', { shape: [3, 2], data: emb }],
    ['scalar', { shape: [], data: new Float32Array([3.5]) }],
    ['empty', { shape: [0, 4], data: new Float32Array(0) }],
    ['big', { shape: [70000], data: new Float32Array(70000).map((_, i) => Math.sin(i)) }],
  ]);
  for (const dtype of ['F32', 'BF16', 'F16'] as const) {
    const path = fresh();
    writeTorchCheckpoint(path, tensors, { dtype });
    const back = readTorchCheckpoint(path);
    assert.deepEqual([...back.keys()], [...tensors.keys()]);
    const round = dtype === 'F32' ? Math.fround : dtype === 'BF16' ? (x: number) => bf16ToF32(f32ToBf16(x)) : (x: number) => f16ToF32(f32ToF16(x));
    for (const [name, t] of tensors) {
      const r = back.get(name)!;
      assert.equal(r.dtype, dtype, name);
      assert.deepEqual(r.shape, t.shape, name);
      assert.deepEqual([...r.data], [...t.data].map(round), `${name} (${dtype})`);
    }
    // one storage for the two tied names, data aligned to 64 bytes as PyTorch writes it
    const zip = ZipReader.open(path);
    try {
      const storages = zip.names().filter((n) => n.startsWith('archive/data/'));
      assert.equal(storages.length, 4);
      for (const n of storages) assert.equal(zip.entries.get(n)!.dataOffset % 64, 0, n);
      assert.deepEqual(zip.names().filter((n) => !n.startsWith('archive/data/')), ['archive/data.pkl', 'archive/byteorder', 'archive/version']);
      assert.equal(Buffer.from(zip.read('archive/version')).toString(), '3\n');
    } finally {
      zip.close();
    }
  }
  // no temporary file is left behind
  assert.deepEqual(readdirSync(root).filter((n) => n.includes('.tmp-')), []);
});

test('zip writer: forced zip64 records read back; duplicate and escaping names are refused', () => {
  const path = fresh('.zip');
  const w = new ZipWriter(path, { zip64: 'force' });
  w.add('a/x', Buffer.from('hello'));
  w.add('a/y', [Buffer.from('wor'), Buffer.from('ld')]);
  assert.match(errorOf(() => w.add('a/x', Buffer.from(''))), /duplicate entry "a\/x"/);
  assert.match(errorOf(() => w.add('../evil', Buffer.from(''))), /contains "\.\."/);
  w.finish();
  const zip = ZipReader.open(path);
  try {
    assert.deepEqual(zip.names(), ['a/x', 'a/y']);
    assert.equal(Buffer.from(zip.read('a/y')).toString(), 'world');
  } finally {
    zip.close();
  }
});

test('pickle: a malicious GLOBAL os.system + REDUCE is refused, naming the global and the file', () => {
  const evil = Buffer.from([PROTO, 2, ...glob('os', 'system'), ...sStr('echo pwned'), TUPLE1, REDUCE, STOP]);
  assert.match(errorOf(() => unpickle(evil, 'evil.pkl')), /evil\.pkl.*refusing global os\.system/);
  // the same inside a checkpoint: the error names the checkpoint file
  const path = fresh();
  writeFileSync(path, buildZip([{ name: 'archive/data.pkl', data: evil }]));
  const msg = errorOf(() => readTorchCheckpoint(path));
  assert.ok(msg.includes(path), msg);
  assert.match(msg, /os\.system/);
  // STACK_GLOBAL (protocol 4) goes through the same allow-list
  const evil4 = Buffer.from([PROTO, 4, ...sStr('builtins'), ...sStr('eval'), 0x93, ...sStr('1'), TUPLE1, REDUCE, STOP]);
  assert.match(errorOf(() => unpickle(evil4, 'evil4.pkl')), /refusing global builtins\.eval/);
  // an allow-listed type marker still cannot be called
  const call = Buffer.from([PROTO, 2, ...glob('torch', 'FloatStorage'), EMPTY_TUPLE, REDUCE, STOP]);
  assert.match(errorOf(() => unpickle(call, 'c.pkl')), /refusing REDUCE on torch\.FloatStorage/);
});

test('pickle: unknown and disallowed opcodes are refused with their name and offset', () => {
  assert.match(errorOf(() => unpickle(Buffer.from([PROTO, 2, 0x69, ...ascii('os\nsystem\n'), STOP]), 'x.pkl')), /x\.pkl: pickle: at byte 2: opcode 0x69 \(INST\) is not accepted/);
  assert.match(errorOf(() => unpickle(Buffer.from([PROTO, 2, 0xff, STOP]), 'y.pkl')), /at byte 2: opcode 0xff is not accepted/);
  assert.match(errorOf(() => unpickle(Buffer.from([PROTO, 2, 0x81, STOP]), 'z.pkl')), /NEWOBJ/);
  assert.match(errorOf(() => unpickle(Buffer.from([PROTO, 2, EMPTY_DICT]), 't.pkl')), /unexpected end of data/);
  assert.match(errorOf(() => unpickle(Buffer.from([PROTO, 2, SETITEMS, STOP]), 'u.pkl')), /no MARK/);
  assert.match(errorOf(() => unpickle(Buffer.from([PROTO, 2, BINGET, 7, STOP]), 'v.pkl')), /memo key 7/);
});

test('corrupt archives: bad CRC, truncation, not a zip, legacy format, missing storage', () => {
  const good = handArchive();
  // flip one byte inside storage 3's data: the CRC check names file and entry
  const bad = Buffer.from(good);
  const at = bad.indexOf(Buffer.from('mymodel/data/3')) + 'mymodel/data/3'.length + 8;
  bad[at]! ^= 0x40;
  const p1 = fresh();
  writeFileSync(p1, bad);
  const m1 = errorOf(() => readTorchCheckpoint(p1));
  assert.ok(m1.includes(p1), m1);
  assert.match(m1, /CRC-32 mismatch in entry "mymodel\/data\/3"/);
  // truncated: no end record
  const p2 = fresh();
  writeFileSync(p2, good.subarray(0, good.length - 30));
  const m2 = errorOf(() => readTorchCheckpoint(p2));
  assert.ok(m2.includes(p2), m2);
  assert.match(m2, /truncated/);
  // cut in the middle of the data but the directory re-attached (sizes no longer fit)
  const cdAt = good.lastIndexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
  const firstCd = good.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
  assert.ok(firstCd < cdAt);
  const p3 = fresh();
  writeFileSync(p3, Buffer.concat([good.subarray(0, firstCd - 10), good.subarray(firstCd)]));
  assert.match(errorOf(() => readTorchCheckpoint(p3)), new RegExp(`${p3.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: zip: `));
  // not a zip at all
  const p4 = fresh();
  writeFileSync(p4, 'hello world, definitely not a checkpoint');
  assert.match(errorOf(() => readTorchCheckpoint(p4)), /not a PyTorch zip checkpoint/);
  // the pre-1.6 format starts with a pickle
  const p5 = fresh();
  writeFileSync(p5, Buffer.from([0x80, 0x02, 0x8a, 0x0a]));
  assert.match(errorOf(() => readTorchCheckpoint(p5)), /legacy/);
  // a storage the pickle needs is absent
  const p6 = fresh();
  writeFileSync(p6, buildZip([{ name: 'mymodel/data.pkl', data: handPickle() }, { name: 'mymodel/data/0', data: f32Bytes(W_F32) }]));
  assert.match(errorOf(() => readTorchCheckpoint(p6)), /needs storage mymodel\/data\/1/);
  // a storage shorter than its numel
  const p7 = fresh();
  const entries = [
    { name: 'mymodel/data.pkl', data: handPickle() },
    { name: 'mymodel/data/0', data: f32Bytes(W_F32.slice(0, 5)) },
  ];
  writeFileSync(p7, buildZip(entries));
  assert.match(errorOf(() => readTorchCheckpoint(p7)), /storage mymodel\/data\/0 holds 20 bytes, expected 6 F32 elements/);
  assert.ok(existsSync(p1) && readFileSync(p1).length === good.length);
});

test('a view that reaches past its storage is refused', () => {
  // w_f32 claims [2, 3] with stride [3, 1] from offset 1: last element 1 + 3 + 2 = 6 >= 6
  const pkl = handPickle();
  const patched = Buffer.from(pkl);
  // the first "BININT1 0" after storage "0"'s persistent id is w_f32's offset
  const pidEnd = patched.indexOf(BINPERSID);
  assert.equal(patched[pidEnd + 1], BININT1);
  patched[pidEnd + 2] = 1;
  const path = fresh();
  writeFileSync(path, buildZip([{ name: 'm/data.pkl', data: patched }, { name: 'm/data/0', data: f32Bytes(W_F32) }]));
  assert.match(errorOf(() => readTorchCheckpoint(path)), /tensor "w_f32": view .* reaches element 6 of a storage of 6/);
});

test('a training checkpoint dict (open_lm epoch_N.pt style): the state dict is found under "state_dict"', () => {
  const BINFLOAT = 0x47, LONG1 = 0x8a, NONE = 0x4e, EMPTY_LIST = 0x5d, APPENDS = 0x65;
  const b: number[] = [PROTO, 2, EMPTY_DICT, MARK];
  b.push(...sStr('epoch'), BININT1, 3);
  b.push(...sStr('lr'), BINFLOAT, ...Buffer.from(new Float64Array([1e-4]).buffer).reverse()); // big-endian double
  b.push(...sStr('tokens'), LONG1, 5, 0, 0, 0, 0, 1); // 2^32 as a 5-byte LONG1
  b.push(...sStr('neg'), LONG1, 1, 0xfb); // -5
  b.push(...sStr('flags'), EMPTY_LIST, MARK, NEWTRUE, NONE, APPENDS);
  b.push(...sStr('state_dict'), ...glob('collections', 'OrderedDict'), EMPTY_TUPLE, REDUCE, MARK);
  b.push(...sStr('module.w'), ...glob('torch._utils', '_rebuild_tensor_v2'));
  b.push(MARK, MARK, ...lStr('storage'), ...glob('torch', 'FloatStorage'), ...lStr('0'), ...lStr('cpu'), BININT1, 6, TUPLE, BINPERSID);
  b.push(BININT1, 0, BININT1, 6, TUPLE1, BININT1, 1, TUPLE1, NEWFALSE, ...glob('collections', 'OrderedDict'), EMPTY_TUPLE, REDUCE, TUPLE, REDUCE);
  b.push(SETITEMS, SETITEMS, STOP);
  const pkl = Buffer.from(b);
  const obj = unpickle(pkl, 'ckpt.pkl') as Map<unknown, unknown>;
  assert.equal(obj.get('epoch'), 3);
  assert.equal(obj.get('lr'), 1e-4);
  assert.equal(obj.get('tokens'), 2 ** 32);
  assert.equal(obj.get('neg'), -5);
  assert.deepEqual(obj.get('flags'), [true, null]);
  const path = fresh('.pt');
  writeFileSync(path, buildZip([{ name: 'epoch_3/data.pkl', data: pkl }, { name: 'epoch_3/data/0', data: f32Bytes(W_F32) }]));
  const sd = readTorchCheckpoint(path);
  assert.deepEqual([...sd.keys()], ['module.w']);
  assert.deepEqual([...sd.get('module.w')!.data], W_F32.map(Math.fround));
});
