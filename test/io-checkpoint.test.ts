import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gqaDir } from './helpers/fixture.js';
import { allocF32, free } from '../src/core/memory.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../src/io/dtype.js';
import { openCheckpoint, readCheckpointTensors, saveCheckpoint, INDEX_FILE, SINGLE_FILE, TORCH_FILE, TORCH_INDEX_FILE } from '../src/io/checkpoint.js';
import { writeTorchCheckpoint } from '../src/io/torch.js';
import { loadDecoder } from '../src/models/auto.js';
import { readSafetensors, writeSafetensors, type TensorData, type TensorToWrite } from '../src/io/safetensors.js';
import { errorOf } from './helpers/errors.js';
import { tempRoot, freshDirs } from './helpers/tmp.js';

const root = tempRoot('supra-io-ckpt-');
const freshDir = freshDirs(root);

/** The fixture teacher as a list of tensors to write. */
function teacherTensors(): Array<TensorToWrite & { data: TensorData }> {
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
  assert.equal(errorOf(() => openCheckpoint(dir)), `supra: ${dir}: no ${SINGLE_FILE}, ${INDEX_FILE}, ${TORCH_FILE} or ${TORCH_INDEX_FILE}`);
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

// ---- a broken sharded folder is refused with a precise message, in either format ------------------

const FORMATS = [
  { name: 'safetensors', ext: 'safetensors', indexFile: INDEX_FILE },
  { name: 'pytorch', ext: 'bin', indexFile: TORCH_INDEX_FILE },
] as const;
type Format = (typeof FORMATS)[number];

/** Write one shard in the format's container. */
function writeShard(format: Format, path: string, tensors: { name: string; shape: number[]; data: Float32Array }[]): void {
  if (format.name === 'safetensors') writeSafetensors(path, tensors);
  else writeTorchCheckpoint(path, new Map(tensors.map((t) => [t.name, { shape: t.shape, data: t.data }])));
}

function shardedFolder(format: Format = FORMATS[0]): { dir: string; index: { metadata: object; weight_map: Record<string, string> } } {
  const dir = freshDir();
  const [a, b] = [`a.${format.ext}`, `b.${format.ext}`];
  writeShard(format, join(dir, a), [
    { name: 'x', shape: [2], data: new Float32Array([1, 2]) },
    { name: 'y', shape: [1], data: new Float32Array([3]) },
  ]);
  writeShard(format, join(dir, b), [{ name: 'z', shape: [1], data: new Float32Array([4]) }]);
  const index = { metadata: { total_size: 16 }, weight_map: { x: a, y: a, z: b } };
  writeFileSync(join(dir, format.indexFile), JSON.stringify(index));
  return { dir, index };
}

for (const format of FORMATS) {
  test(`a hand-made sharded folder opens and reads across shards (${format.name})`, () => {
    const { dir } = shardedFolder(format);
    const ckpt = openCheckpoint(dir);
    try {
      assert.equal(ckpt.format, format.name);
      assert.equal(ckpt.sharded, true);
      assert.deepEqual(ckpt.names(), ['x', 'y', 'z']);
      assert.deepEqual(Array.from(ckpt.readF32('z')), [4]);
      assert.equal(ckpt.fileOf('z'), join(dir, `b.${format.ext}`));
    } finally {
      ckpt.close();
    }
  });

  test(`sharded folder validation: missing shard, duplicates, disagreement, bad index (${format.name})`, () => {
    const { ext, indexFile } = format;
    const write = (dir: string, index: object) => writeFileSync(join(dir, indexFile), JSON.stringify(index));
    {
      const { dir, index } = shardedFolder(format);
      index.weight_map.z = `c.${ext}`;
      write(dir, index);
      assert.match(errorOf(() => openCheckpoint(dir)), new RegExp(`${indexFile}: lists shard 'c\\.${ext}', but .*c\\.${ext} does not exist`));
    }
    {
      const { dir } = shardedFolder(format);
      writeShard(format, join(dir, `b.${ext}`), [
        { name: 'z', shape: [1], data: new Float32Array([4]) },
        { name: 'x', shape: [2], data: new Float32Array([1, 2]) },
      ]);
      assert.match(errorOf(() => openCheckpoint(dir)), new RegExp(`tensor 'x' is in two shards: .*a\\.${ext} and .*b\\.${ext}`));
    }
    {
      const { dir, index } = shardedFolder(format);
      index.weight_map.y = `b.${ext}`;
      write(dir, index);
      assert.match(errorOf(() => openCheckpoint(dir)), new RegExp(`weight_map puts tensor 'y' in 'b\\.${ext}', but it is in shard 'a\\.${ext}'`));
    }
    {
      const { dir, index } = shardedFolder(format);
      delete (index.weight_map as Record<string, string>).y;
      write(dir, index);
      assert.match(errorOf(() => openCheckpoint(dir)), new RegExp(`tensor 'y' is in shard 'a\\.${ext}' but not in weight_map`));
    }
    {
      const { dir, index } = shardedFolder(format);
      index.weight_map.w = `b.${ext}`;
      write(dir, index);
      assert.match(errorOf(() => openCheckpoint(dir)), new RegExp(`weight_map puts tensor 'w' in 'b\\.${ext}', but that shard does not hold it`));
    }
    {
      const { dir, index } = shardedFolder(format);
      index.weight_map.z = `../b.${ext}`;
      write(dir, index);
      assert.match(errorOf(() => openCheckpoint(dir)), new RegExp(`weight_map\\['z'\\] = '\\.\\./b\\.${ext}' must be a file inside the checkpoint folder`));
    }
    {
      const { dir } = shardedFolder(format);
      writeFileSync(join(dir, indexFile), '{"weight_map": {"x": ');
      assert.match(errorOf(() => openCheckpoint(dir)), new RegExp(`${indexFile}: not valid JSON`));
      writeFileSync(join(dir, indexFile), '{"metadata": {}}');
      assert.match(errorOf(() => openCheckpoint(dir)), /expected an object with a "weight_map"/);
      writeFileSync(join(dir, indexFile), '{"weight_map": {}}');
      assert.match(errorOf(() => openCheckpoint(dir)), new RegExp(`${indexFile}: weight_map is empty`));
    }
    {
      // a corrupt shard is reported with the shard's own name
      const { dir } = shardedFolder(format);
      writeFileSync(join(dir, `b.${ext}`), Buffer.from([1, 2, 3]));
      const why = format.name === 'safetensors' ? 'truncated: 3 bytes' : 'not a PyTorch zip checkpoint';
      assert.match(errorOf(() => openCheckpoint(dir)), new RegExp(`b\\.${ext}: ${why}`));
    }
  });

  test(`a malformed index, or a shard name outside the folder, is refused naming the index (${format.name})`, () => {
    const { ext, indexFile } = format;
    const cases: Array<[string, unknown, RegExp]> = [
      ['absolute shard path', { weight_map: { x: `a.${ext}`, y: `a.${ext}`, z: `/tmp/b.${ext}` } }, /weight_map\['z'\] = '\/tmp\/b\..*' must be a file inside the checkpoint folder/],
      ['.. inside a path', { weight_map: { x: `a.${ext}`, y: `a.${ext}`, z: `sub/../../b.${ext}` } }, /weight_map\['z'\] = 'sub\/\.\.\/\.\.\/b\..*' must be a file inside the checkpoint folder/],
      ['.. with a backslash', { weight_map: { x: `a.${ext}`, y: `a.${ext}`, z: `..\\b.${ext}` } }, /must be a file inside the checkpoint folder/],
      ['a shard that is not a string', { weight_map: { x: `a.${ext}`, y: `a.${ext}`, z: 3 } }, /weight_map\['z'\] must be a shard file name, got 3/],
      ['an empty shard name', { weight_map: { x: `a.${ext}`, y: `a.${ext}`, z: '' } }, /weight_map\['z'\] must be a shard file name, got ""/],
      ['weight_map a list', { weight_map: [`a.${ext}`] }, /expected an object with a "weight_map"/],
      ['the index a list', [{ weight_map: {} }], /expected an object with a "weight_map"/],
      ['the index null', null, /expected an object with a "weight_map"/],
    ];
    for (const [what, index, want] of cases) {
      const { dir } = shardedFolder(format);
      const indexPath = join(dir, indexFile);
      writeFileSync(indexPath, JSON.stringify(index));
      const message = errorOf(() => openCheckpoint(dir));
      assert.ok(message.startsWith(`supra: ${indexPath}: `), `${what}: ${message}`);
      assert.match(message, want, what);
      // from_pretrained and every command open folders through the same parser
      writeFileSync(join(dir, 'config.json'), readFileSync(join(gqaDir, 'teacher', 'config.json')));
      assert.equal(errorOf(() => loadDecoder(dir)), message, what);
    }
  });

  test(`info's reader and loadDecoder give the same tensors from one sharded ${format.name} folder`, () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'config.json'), readFileSync(join(gqaDir, 'teacher', 'config.json')));
    const tensors = teacherTensors() as { name: string; shape: number[]; data: Float32Array }[];
    // three shards: the embedding, the layers, the rest
    const groups = [tensors.slice(0, 1), tensors.slice(1, -2), tensors.slice(-2)];
    const weightMap: Record<string, string> = {};
    groups.forEach((group, i) => {
      const shard = `model-0000${i + 1}-of-00003.${format.ext}`;
      writeShard(format, join(dir, shard), group);
      for (const t of group) weightMap[t.name] = shard;
    });
    writeFileSync(join(dir, format.indexFile), JSON.stringify({ metadata: {}, weight_map: weightMap }));

    const read = readCheckpointTensors(dir);
    assert.equal(read.dir, dir);
    assert.deepEqual([...read.tensors.keys()], tensors.map((t) => t.name));
    const { model, unexpected } = loadDecoder(dir, { strict: true });
    try {
      assert.deepEqual(unexpected, []);
      assert.equal(model.params().length, tensors.length);
      for (const p of model.params()) {
        const t = read.tensors.get(p.name)!;
        assert.deepEqual(t.shape, p.shape, p.name);
        assert.ok(Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)), p.name);
      }
    } finally {
      model.free();
    }
  });
}
