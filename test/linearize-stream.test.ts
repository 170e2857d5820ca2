// supra linearize at any size: it streams the teacher tensor by tensor into safetensors shards (HF's
// layout past --max-shard-size), keeps the teacher's stored dtype, and its kernels stay the reference's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gqaDir } from './helpers/fixture.js';
import { errorOf } from './helpers/errors.js';
import { freshDirs, tempRoot } from './helpers/tmp.js';
import { byteSizeOption } from '../src/cli/args.js';
import { INDEX_FILE, SINGLE_FILE, openCheckpoint } from '../src/io/checkpoint.js';
import { f32ToBf16 } from '../src/io/dtype.js';
import { readSafetensors, SafetensorsFile } from '../src/io/safetensors.js';
import { loadConfig } from '../src/io/config.js';
import { loadDecoder } from '../src/models/auto.js';
import { initSupraParams, linearizeFolder } from '../src/models/linearize.js';

const here = dirname(fileURLToPath(import.meta.url)); // dist/test
const cli = resolve(here, '../src/cli/main.js');
const randomModelScript = resolve(here, '../../scripts/random-model.mjs');
const fresh = freshDirs(tempRoot('supra-linearize-stream-'));
const teacherDir = join(gqaDir, 'teacher');

function bits(a: Float32Array | Int32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

/** Every tensor of a folder (one file or shards), by name, as stored: dtype, shape and raw bytes. */
function storedTensors(dir: string): Map<string, { dtype: string; shape: number[]; bytes: Buffer }> {
  const out = new Map<string, { dtype: string; shape: number[]; bytes: Buffer }>();
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.safetensors'))) {
    const file = SafetensorsFile.open(join(dir, f));
    for (const name of file.names()) out.set(name, { dtype: file.info(name).dtype, shape: file.info(name).shape, bytes: Buffer.from(file.readRaw(name)) });
    file.close();
  }
  return out;
}

test('linearize sharded at a small --max-shard-size: the same tensors as one file, HF index, loads back identically; kernels still the reference', () => {
  const single = join(fresh(), 'single');
  const sharded = join(fresh(), 'sharded');
  linearizeFolder(teacherDir, single, { seed: 1000 });
  linearizeFolder(teacherDir, sharded, { seed: 1000, maxShardBytes: 64_000 });

  assert.deepEqual(readdirSync(single).sort(), ['config.json', SINGLE_FILE]);
  const shardFiles = readdirSync(sharded).filter((f) => f.endsWith('.safetensors')).sort();
  assert.ok(shardFiles.length >= 3, `${shardFiles.length} shards`);
  shardFiles.forEach((f, i) => assert.equal(f, `model-${String(i + 1).padStart(5, '0')}-of-${String(shardFiles.length).padStart(5, '0')}.safetensors`));
  const index = JSON.parse(readFileSync(join(sharded, INDEX_FILE), 'utf8')) as { metadata: { total_size: number }; weight_map: Record<string, string> };
  const a = storedTensors(single);
  const b = storedTensors(sharded);
  assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
  assert.deepEqual(Object.keys(index.weight_map).sort(), [...a.keys()].sort());
  assert.equal(index.metadata.total_size, [...a.values()].reduce((s, t) => s + t.bytes.length, 0));
  for (const [name, t] of a) {
    assert.equal(b.get(name)!.dtype, t.dtype, name);
    assert.deepEqual(b.get(name)!.shape, t.shape, name);
    assert.ok(b.get(name)!.bytes.equals(t.bytes), name);
  }
  assert.deepEqual(JSON.parse(readFileSync(join(sharded, 'config.json'), 'utf8')), JSON.parse(readFileSync(join(single, 'config.json'), 'utf8')));

  // the fixture's reference kernels, bit for bit, in both
  const ckpt = openCheckpoint(sharded);
  try {
    assert.equal(ckpt.sharded, true);
    for (const [name, ref] of readSafetensors(join(gqaDir, 'supra_kernels.safetensors'))) {
      assert.deepEqual(bits(ckpt.readF32(name)), bits(ref.data), name);
    }
  } finally {
    ckpt.close();
  }

  const { model: m1 } = loadDecoder(single);
  const { model: m2 } = loadDecoder(sharded);
  try {
    for (const p of m1.params()) assert.deepEqual(bits(m2.param(p.name).data), bits(p.data), p.name);
  } finally {
    m1.free();
    m2.free();
  }
});

test('supra linearize --max-shard-size takes sizes as transformers writes them; a bad one is a usage error', () => {
  assert.equal(byteSizeOption('5GB', 'max-shard-size', 0), 5_000_000_000);
  assert.equal(byteSizeOption('2GiB', 'max-shard-size', 0), 2 * 2 ** 30);
  assert.equal(byteSizeOption('500mb', 'max-shard-size', 0), 500_000_000);
  assert.equal(byteSizeOption('64000', 'max-shard-size', 0), 64_000);
  assert.equal(byteSizeOption(undefined, 'max-shard-size', 7), 7);
  for (const bad of ['lots', '0', '-1GB', '5XB', '']) assert.match(errorOf(() => byteSizeOption(bad, 'max-shard-size', 0)), /--max-shard-size must be a size such as 5GB/, bad);

  const out = join(fresh(), 'out');
  const r = spawnSync(process.execPath, [cli, 'linearize', teacherDir, '--out', out, '--seed', '1000', '--max-shard-size', '64KB'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(existsSync(join(out, INDEX_FILE)));
  assert.match(r.stdout, /model-00001-of-\d{5}\.safetensors/);
  const bad = spawnSync(process.execPath, [cli, 'linearize', teacherDir, '--out', join(fresh(), 'x'), '--max-shard-size', 'big'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--max-shard-size must be a size/);
});

test('a BF16 teacher gives a BF16 SUPRA folder: teacher tensors byte for byte, the kernels rounded once; --dtype still chooses', async () => {
  const { writeRandomModel } = (await import(pathToFileURL(randomModelScript).href)) as {
    writeRandomModel: (shape: string, dir: string, options: { dtype?: string; seed?: number }) => string[];
  };
  const teacher = join(fresh(), 'teacher');
  writeRandomModel('tiny', teacher, { dtype: 'bf16', seed: 5 });
  const out = join(fresh(), 'supra');
  linearizeFolder(teacher, out, { seed: 9 });

  const before = storedTensors(teacher);
  const after = storedTensors(out);
  for (const [name, t] of before) {
    assert.equal(after.get(name)!.dtype, 'BF16', name);
    assert.ok(after.get(name)!.bytes.equals(t.bytes), name);
  }
  const kernels = initSupraParams(loadConfig(teacher), { seed: 9 });
  assert.equal(after.size, before.size + kernels.length);
  for (const k of kernels) {
    const saved = after.get(k.name)!;
    assert.equal(saved.dtype, 'BF16', k.name);
    assert.deepEqual(Array.from(new Uint16Array(saved.bytes.buffer, saved.bytes.byteOffset, saved.bytes.length / 2)), Array.from(k.data, f32ToBf16), k.name);
  }
  assert.equal(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).torch_dtype, 'bfloat16');

  const f32 = join(fresh(), 'f32');
  linearizeFolder(teacher, f32, { seed: 9, dtype: 'F32' });
  assert.ok([...storedTensors(f32).values()].every((t) => t.dtype === 'F32'));
  assert.equal(JSON.parse(readFileSync(join(f32, 'config.json'), 'utf8')).torch_dtype, 'float32');
});
