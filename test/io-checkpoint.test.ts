import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gqaDir } from './helpers/fixture.js';
import { allocF32, free } from '../src/core/memory.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../src/io/dtype.js';
import { openCheckpoint, saveCheckpoint, INDEX_FILE, SINGLE_FILE } from '../src/io/checkpoint.js';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../src/io/safetensors.js';
import { errorOf } from './helpers/errors.js';
import { tempRoot, freshDirs } from './helpers/tmp.js';

const root = tempRoot('supra-io-ckpt-');
const freshDir = freshDirs(root);

/** The fixture teacher as a list of tensors to write. */
function teacherTensors(): TensorToWrite[] {
  return [...readSafetensors(join(gqaDir, 'teacher', 'model.safetensors'))].map(([name, t]) => ({
    name,
    shape: t.shape,
    data: t.data,
  }));
}

test('openCheckpoint on the fixture teacher: one file, every tensor readable into the arena', () => {
  const ckpt = openCheckpoint(join(gqaDir, 'teacher'));
  try {
    assert.equal(ckpt.sharded, false);
    assert.equal(ckpt.files.length, 1);
    const ref = readSafetensors(join(gqaDir, 'teacher', 'model.safetensors'));
    assert.deepEqual(ckpt.names(), [...ref.keys()]);
    assert.equal(ckpt.names().length, 21);
    for (const name of ckpt.names()) {
      const info = ckpt.info(name);
      assert.deepEqual(info.shape, ref.get(name)!.shape);
      const dest = allocF32(info.numel);
      ckpt.readInto(name, dest);
      assert.deepEqual(Array.from(dest), Array.from(ref.get(name)!.data), name);
      free(dest);
    }
    assert.ok(ckpt.has('lm_head.weight'));
    assert.match(errorOf(() => ckpt.readF32('model.missing')), /teacher: checkpoint has no tensor 'model\.missing'/);
  } finally {
    ckpt.close();
  }
});

test('a folder without weights names the folder and what was expected', () => {
  const dir = freshDir();
  assert.equal(errorOf(() => openCheckpoint(dir)), `supra: no ${SINGLE_FILE} or ${INDEX_FILE} in ${dir}`);
  assert.match(errorOf(() => openCheckpoint(join(dir, 'nothing-here'))), /nothing-here: not a folder/);
});

test('sharded round trip in F32, F16 and BF16, with the HF index layout', () => {
  const tensors = teacherTensors();
  const total32 = tensors.reduce((s, t) => s + t.data.length * 4, 0);
  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    const dir = freshDir();
    const files = saveCheckpoint(dir, tensors, { dtype, maxShardBytes: 100_000 });
    const size = dtype === 'F32' ? 4 : 2;
    const index = JSON.parse(readFileSync(join(dir, INDEX_FILE), 'utf8')) as { metadata: { total_size: number }; weight_map: Record<string, string> };
    assert.equal(index.metadata.total_size, (total32 / 4) * size);
    assert.deepEqual(Object.keys(index.weight_map), tensors.map((t) => t.name));
    const shardFiles = [...new Set(Object.values(index.weight_map))];
    assert.ok(shardFiles.length > 2, `${dtype}: ${shardFiles.length} shards`);
    shardFiles.forEach((s, i) => assert.equal(s, `model-${String(i + 1).padStart(5, '0')}-of-${String(shardFiles.length).padStart(5, '0')}.safetensors`));
    assert.deepEqual(files, [...shardFiles.map((s) => join(dir, s)), join(dir, INDEX_FILE)]);
    assert.ok(!existsSync(join(dir, SINGLE_FILE)));
    assert.deepEqual(readdirSync(dir).filter((n) => n.includes('.tmp-')), []);

    const ckpt = openCheckpoint(dir);
    try {
      assert.equal(ckpt.sharded, true);
      assert.deepEqual(ckpt.names(), tensors.map((t) => t.name));
      for (const t of tensors) {
        assert.equal(ckpt.info(t.name).dtype, dtype);
        assert.deepEqual(ckpt.info(t.name).shape, t.shape);
        const round = dtype === 'F32' ? (v: number) => v : dtype === 'F16' ? (v: number) => f16ToF32(f32ToF16(v)) : (v: number) => bf16ToF32(f32ToBf16(v));
        assert.deepEqual(Array.from(ckpt.readF32(t.name)), Array.from(t.data, round), `${dtype} ${t.name}`);
      }
    } finally {
      ckpt.close();
    }
  }
});

test('switching layouts removes the other one only after the new one is complete', () => {
  const tensors = teacherTensors();
  const dir = freshDir();
  saveCheckpoint(dir, tensors, { maxShardBytes: 200_000 });
  const shards = readdirSync(dir).filter((n) => n.startsWith('model-'));
  assert.ok(shards.length > 1);
  // now small enough for one file: index and shards go away
  assert.deepEqual(saveCheckpoint(dir, tensors.slice(0, 3)), [join(dir, SINGLE_FILE)]);
  assert.deepEqual(readdirSync(dir).sort(), [SINGLE_FILE]);
  const single = openCheckpoint(dir);
  assert.deepEqual(single.names(), tensors.slice(0, 3).map((t) => t.name));
  assert.equal(readSafetensors(join(dir, SINGLE_FILE)).size, 3);
  single.close();
  // and back to shards: model.safetensors (which would shadow the index) is removed
  saveCheckpoint(dir, tensors, { dtype: 'BF16', maxShardBytes: 150_000 });
  assert.ok(!existsSync(join(dir, SINGLE_FILE)));
  const again = openCheckpoint(dir);
  assert.equal(again.names().length, tensors.length);
  again.close();
  // a tensor bigger than the shard limit gets a shard of its own
  const big = freshDir();
  saveCheckpoint(big, tensors.slice(0, 2), { maxShardBytes: 1000 });
  const idx = JSON.parse(readFileSync(join(big, INDEX_FILE), 'utf8')) as { weight_map: Record<string, string> };
  assert.equal(new Set(Object.values(idx.weight_map)).size, 2);
});

test('saveCheckpoint metadata includes format=pt, and integer tensors stay I32', () => {
  const dir = freshDir();
  saveCheckpoint(dir, [
    { name: 'w', shape: [2], data: new Float32Array([1, 2]) },
    { name: 'ids', shape: [3], data: new Int32Array([5, 6, 7]) },
  ], { dtype: 'F16', metadata: { producer: 'supra' } });
  const ckpt = openCheckpoint(dir);
  try {
    assert.equal(ckpt.info('w').dtype, 'F16');
    assert.equal(ckpt.info('ids').dtype, 'I32');
    assert.deepEqual(Array.from(ckpt.readI32('ids')), [5, 6, 7]);
  } finally {
    ckpt.close();
  }
  const bytes = readFileSync(join(dir, SINGLE_FILE));
  const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString()) as { __metadata__: Record<string, string> };
  assert.deepEqual(header.__metadata__, { producer: 'supra', format: 'pt' });
  assert.match(errorOf(() => saveCheckpoint(join(dir, 'absent'), [])), /absent: not a folder/);
  assert.match(errorOf(() => saveCheckpoint(dir, [])), /no tensors to save/);
});

// ---- a broken sharded folder is refused with a precise message ------------------------------------

function shardedFolder(): { dir: string; index: { metadata: object; weight_map: Record<string, string> } } {
  const dir = freshDir();
  writeSafetensors(join(dir, 'a.safetensors'), [
    { name: 'x', shape: [2], data: new Float32Array([1, 2]) },
    { name: 'y', shape: [1], data: new Float32Array([3]) },
  ]);
  writeSafetensors(join(dir, 'b.safetensors'), [{ name: 'z', shape: [1], data: new Float32Array([4]) }]);
  const index = { metadata: { total_size: 16 }, weight_map: { x: 'a.safetensors', y: 'a.safetensors', z: 'b.safetensors' } };
  writeFileSync(join(dir, INDEX_FILE), JSON.stringify(index));
  return { dir, index };
}

test('a hand-made sharded folder opens and reads across shards', () => {
  const { dir } = shardedFolder();
  const ckpt = openCheckpoint(dir);
  try {
    assert.deepEqual(ckpt.names(), ['x', 'y', 'z']);
    assert.deepEqual(Array.from(ckpt.readF32('z')), [4]);
    assert.equal(ckpt.fileOf('z'), join(dir, 'b.safetensors'));
  } finally {
    ckpt.close();
  }
});

test('sharded folder validation: missing shard, duplicates, disagreement, bad index', () => {
  {
    const { dir, index } = shardedFolder();
    index.weight_map.z = 'c.safetensors';
    writeFileSync(join(dir, INDEX_FILE), JSON.stringify(index));
    assert.match(errorOf(() => openCheckpoint(dir)), new RegExp(`${INDEX_FILE}: lists shard 'c\\.safetensors', but .*c\\.safetensors does not exist`));
  }
  {
    const { dir } = shardedFolder();
    writeSafetensors(join(dir, 'b.safetensors'), [
      { name: 'z', shape: [1], data: new Float32Array([4]) },
      { name: 'x', shape: [2], data: new Float32Array([1, 2]) },
    ]);
    assert.match(errorOf(() => openCheckpoint(dir)), /tensor 'x' is in two shards: .*a\.safetensors and .*b\.safetensors/);
  }
  {
    const { dir, index } = shardedFolder();
    index.weight_map.y = 'b.safetensors';
    writeFileSync(join(dir, INDEX_FILE), JSON.stringify(index));
    assert.match(errorOf(() => openCheckpoint(dir)), /weight_map puts tensor 'y' in 'b\.safetensors', but it is in shard 'a\.safetensors'/);
  }
  {
    const { dir, index } = shardedFolder();
    delete (index.weight_map as Record<string, string>).y;
    writeFileSync(join(dir, INDEX_FILE), JSON.stringify(index));
    assert.match(errorOf(() => openCheckpoint(dir)), /tensor 'y' is in shard 'a\.safetensors' but not in weight_map/);
  }
  {
    const { dir, index } = shardedFolder();
    index.weight_map.w = 'b.safetensors';
    writeFileSync(join(dir, INDEX_FILE), JSON.stringify(index));
    assert.match(errorOf(() => openCheckpoint(dir)), /weight_map puts tensor 'w' in 'b\.safetensors', but that shard does not hold it/);
  }
  {
    const { dir, index } = shardedFolder();
    index.weight_map.z = '../b.safetensors';
    writeFileSync(join(dir, INDEX_FILE), JSON.stringify(index));
    assert.match(errorOf(() => openCheckpoint(dir)), /weight_map\['z'\] = '\.\.\/b\.safetensors' must be a file inside the checkpoint folder/);
  }
  {
    const { dir } = shardedFolder();
    writeFileSync(join(dir, INDEX_FILE), '{"weight_map": {"x": ');
    assert.match(errorOf(() => openCheckpoint(dir)), new RegExp(`${INDEX_FILE}: not valid JSON`));
    writeFileSync(join(dir, INDEX_FILE), '{"metadata": {}}');
    assert.match(errorOf(() => openCheckpoint(dir)), /expected an object with a "weight_map"/);
  }
  {
    // a corrupt shard is reported with the shard's own name
    const { dir } = shardedFolder();
    writeFileSync(join(dir, 'b.safetensors'), Buffer.from([1, 2, 3]));
    assert.match(errorOf(() => openCheckpoint(dir)), /b\.safetensors: truncated: 3 bytes/);
  }
});
