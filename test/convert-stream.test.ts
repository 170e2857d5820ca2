// supra convert at any size: each input tensor is read when the writer reaches the output tensor made of
// it (never all of them first), in both directions and both containers, and a big output is written as
// safetensors shards past --max-shard-size, as linearize writes them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gqaDir } from './helpers/fixture.js';
import { freshDirs, tempRoot } from './helpers/tmp.js';
import { AtomicFile } from '../src/io/atomic.js';
import { INDEX_FILE, SINGLE_FILE } from '../src/io/checkpoint.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { TorchFile } from '../src/io/torch.js';
import { convertCheckpoint, type ConvertOptions } from '../src/models/convert.js';
import { linearizeFolder } from '../src/models/linearize.js';

const here = dirname(fileURLToPath(import.meta.url)); // dist/test
const cli = resolve(here, '../src/cli/main.js');
const fresh = freshDirs(tempRoot('supra-convert-stream-'));
const teacherDir = join(gqaDir, 'teacher');

type Event = { read: string } | { write: string };

/**
 * The reads of stored tensors (readInto of a safetensors or PyTorch file, through which every read goes)
 * and the writes to files being written (AtomicFile.write: safetensors and zip alike), in order, while
 * `run` runs.
 */
function traced(run: () => void): Event[] {
  const events: Event[] = [];
  const patches: Array<[{ prototype: object }, string]> = [
    [SafetensorsFile, 'readInto'],
    [TorchFile, 'readInto'],
    [AtomicFile, 'write'],
  ];
  const originals = patches.map(([cls, method]) => (cls.prototype as Record<string, (...args: unknown[]) => unknown>)[method]!);
  patches.forEach(([cls, method], i) => {
    const original = originals[i]!;
    (cls.prototype as Record<string, unknown>)[method] = function (this: { path: string }, ...args: unknown[]) {
      events.push(method === 'write' ? { write: this.path } : { read: String(args[0]) });
      return original.apply(this, args);
    };
  });
  try {
    run();
  } finally {
    patches.forEach(([cls, method], i) => ((cls.prototype as Record<string, unknown>)[method] = originals[i]));
  }
  return events;
}

/** How often each stored tensor was read, and the most reads in a row with no write between them. */
function readPattern(events: Event[]): { reads: Map<string, number>; longestRun: number } {
  const reads = new Map<string, number>();
  let run = 0;
  let longestRun = 0;
  for (const e of events) {
    if ('read' in e) {
      reads.set(e.read, (reads.get(e.read) ?? 0) + 1);
      longestRun = Math.max(longestRun, ++run);
    } else {
      run = 0;
    }
  }
  return { reads, longestRun };
}

function storedNames(dir: string): string[] {
  const names: string[] = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.safetensors'))) {
    const file = SafetensorsFile.open(join(dir, f));
    names.push(...file.names());
    file.close();
  }
  return names;
}

test('convert reads each stored tensor once, when the writer reaches it: at most q, k and v (for in_proj) between two writes', () => {
  const supra = join(fresh(), 'supra');
  linearizeFolder(teacherDir, supra, { seed: 3, qk_norm: 'rms' });
  const open = join(fresh(), 'open');
  const cases: Array<[string, string, ConvertOptions, number]> = [
    // in_proj is built from q, k and v; w12 from gate and up: each output tensor's inputs are read just before it is written
    ['supra -> open_lm safetensors', supra, { format: 'open_lm', dtype: 'bf16' }, 3],
    ['supra -> open_lm pytorch_model.bin', supra, { format: 'open_lm', container: 'pytorch', openLmInvFreq: true }, 3],
    ['teacher -> supra pytorch_model.bin', teacherDir, { format: 'supra', container: 'pytorch', dtype: 'f16' }, 1],
  ];
  for (const [what, input, options, most] of cases) {
    const out = join(fresh(), 'out');
    const { reads, longestRun } = readPattern(traced(() => convertCheckpoint(input, out, options)));
    const stored = storedNames(input);
    assert.deepEqual([...reads.keys()].sort(), [...stored].sort(), `${what}: every stored tensor is read`);
    for (const [name, n] of reads) assert.equal(n, 1, `${what}: ${name} is read ${n} times`);
    assert.ok(longestRun <= most, `${what}: ${longestRun} tensors read with no write between them (at most ${most})`);
  }
  // the open_lm side: in_proj and w12 are read once each and split into q/k/v and gate/up as they are written
  convertCheckpoint(supra, open, { format: 'open_lm' });
  const back = join(fresh(), 'back');
  const { reads, longestRun } = readPattern(traced(() => convertCheckpoint(open, back, { format: 'supra' })));
  for (const name of storedNames(open)) assert.equal(reads.get(name), 1, `open_lm -> supra: ${name}`);
  assert.equal(longestRun, 1, 'open_lm -> supra: one tensor read per write');
});

test('convert --max-shard-size: safetensors shards plus the HF index, the same tensors as one file; refused with --container pytorch', () => {
  const single = join(fresh(), 'single');
  convertCheckpoint(teacherDir, single, { format: 'open_lm' });
  const sharded = join(fresh(), 'sharded');
  const r = spawnSync(process.execPath, [cli, 'convert', teacherDir, '--out', sharded, '--format', 'open_lm', '--max-shard-size', '64KB'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const shards = readdirSync(sharded).filter((f) => f.endsWith('.safetensors')).sort();
  assert.ok(shards.length >= 3, `${shards.length} shards`);
  assert.ok(!existsSync(join(sharded, SINGLE_FILE)));
  const index = JSON.parse(readFileSync(join(sharded, INDEX_FILE), 'utf8')) as { weight_map: Record<string, string> };
  assert.deepEqual(Object.keys(index.weight_map).sort(), storedNames(single).sort());
  for (const name of storedNames(single)) {
    const a = SafetensorsFile.open(join(single, SINGLE_FILE));
    const b = SafetensorsFile.open(join(sharded, index.weight_map[name]!));
    assert.ok(Buffer.from(a.readRaw(name)).equals(Buffer.from(b.readRaw(name))), name);
    a.close();
    b.close();
  }
  // the sharded open_lm folder converts back as the single file does
  const backs = [single, sharded].map((dir) => {
    const back = join(fresh(), 'back');
    convertCheckpoint(dir, back, { format: 'supra' });
    return readFileSync(join(back, SINGLE_FILE));
  });
  assert.ok(backs[0]!.equals(backs[1]!));

  const help = spawnSync(process.execPath, [cli, 'convert', '--help'], { encoding: 'utf8' });
  assert.match(help.stdout, /--max-shard-size/);
  const bad = spawnSync(process.execPath, [cli, 'convert', teacherDir, '--out', join(fresh(), 'x'), '--container', 'pytorch', '--max-shard-size', '1MB'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--max-shard-size applies to safetensors output/);
});
