// supra/web: the browser build's module graph reaches no node: module, its pieces that differ from
// Node's (the pure SHA-256, folders mounted in memory, snapshots as bytes) agree with Node's bit for bit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { builtinModules } from 'node:module';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sha256Js } from '../src/core/sha256.js';
import { mountFolder, unmountFolder } from '../src/io/files.js';
import { loadDecoder } from '../src/models/auto.js';
import { linearize } from '../src/models/linearize.js';
import { GenerationState } from '../src/generate/state.js';
import { decodeTokens } from '../src/generate/generate.js';
import { saveState, stateFromBytes, stateToBytes } from '../src/generate/snapshot.js';
import { tempRoot } from './helpers/tmp.js';

const dist = resolve(dirname(fileURLToPath(import.meta.url)), '..'); // dist/
const repo = resolve(dist, '..');
/** Bare imports the page maps to files (its import map); anything else would not load in a browser. */
const MAPPED = new Set(['@huggingface/tokenizers']);
const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/** Every module reachable by static import from `entry`, with the bare specifiers each imports. */
function graph(entry: string): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    const text = readFileSync(file, 'utf8');
    const bare: string[] = [];
    seen.set(file, bare);
    for (const m of text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm)) {
      const spec = m[1] ?? m[2] ?? m[3]!;
      if (spec.startsWith('.')) visit(resolve(dirname(file), spec));
      else bare.push(spec);
    }
  };
  visit(entry);
  return seen;
}

test('the module graph of supra/web (and of the pool worker it starts) has no node: import', () => {
  for (const entry of ['src/web/index.js', 'src/core/wasm/worker.js']) {
    const g = graph(join(dist, entry));
    assert.ok(g.size > 20 || entry.includes('worker'), `${entry}: only ${g.size} modules found`);
    for (const [file, bare] of g) {
      for (const spec of bare) {
        assert.ok(!builtins.has(spec), `${file.slice(dist.length + 1)} imports ${spec} (reached from ${entry})`);
        assert.ok(MAPPED.has(spec), `${file.slice(dist.length + 1)} imports ${spec}, which the page does not map`);
      }
    }
  }
  // it does reach what a browser needs
  const files = [...graph(join(dist, 'src/web/index.js')).keys()].map((f) => f.slice(dist.length + 1));
  for (const need of ['src/core/wasm/pool.js', 'src/io/tokenizer.js', 'src/generate/snapshot.js', 'src/models/decoder.js']) {
    assert.ok(files.includes(need), `supra/web does not reach ${need}`);
  }
  assert.ok(existsSync(join(repo, 'src/core/wasm/kernels.wasm')));
});

test('the pure SHA-256 (browsers) equals node:crypto, whole and in pieces', () => {
  for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 4099]) {
    const data = randomBytes(n);
    const whole = new Sha256Js().update(data).digest('hex');
    assert.equal(whole, createHash('sha256').update(data).digest('hex'), `length ${n}`);
    const pieces = new Sha256Js();
    for (let i = 0; i < n; i += 7) pieces.update(data.subarray(i, i + 7));
    assert.equal(pieces.digest('hex'), whole, `length ${n} in pieces`);
  }
  assert.equal(new Sha256Js().update('supra é').digest('hex'), createHash('sha256').update('supra é').digest('hex'));
});

test('a folder mounted in memory loads as from disk; snapshot bytes equal the file and continue exactly', () => {
  const dir = join(repo, 'assets', 'teacher');
  const files = new Map(readdirSync(dir).map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))] as const));
  const mem = mountFolder('mem:teacher', files);
  try {
    const fromDisk = loadDecoder(dir).model;
    const fromMem = loadDecoder(mem).model;
    const ids = [[5, 17, 300, 42, 9]];
    const a = new GenerationState(fromDisk, 1), b = new GenerationState(fromMem, 1);
    a.append(ids);
    b.append(ids);
    assert.deepEqual([...b.nextLogits()], [...a.nextLogits()], 'mounted folder gives other logits');
    a.free(); b.free(); fromMem.free();

    // snapshots: a SUPRA model, greedy tokens continued from bytes equal an uninterrupted run
    const supra = linearize(fromDisk, { seed: 3 });
    fromDisk.free();
    const greedy = (s: GenerationState, n: number): number[] => {
      const out: number[] = [];
      // no EOS: the embedded teacher's EOS (0) may come first, and a stop would end one run and not the other
      for (const step of decodeTokens(s, { max_new_tokens: n, do_sample: false, eos_token_id: null })) out.push(step.tokens[0]!);
      return out;
    };
    const whole = new GenerationState(supra, 1);
    whole.append(ids);
    const expected = greedy(whole, 12);
    const first = new GenerationState(supra, 1);
    first.append(ids);
    const head = greedy(first, 5);
    const bytes = stateToBytes(supra, first);
    const path = join(tempRoot('web-state'), 'state.safetensors');
    saveState(path, supra, first);
    assert.deepEqual(bytes, new Uint8Array(readFileSync(path)), 'stateToBytes differs from the file saveState writes');
    const resumed = stateFromBytes(bytes, supra);
    assert.deepEqual([...head, ...greedy(resumed, 7)], expected);
    const bad = bytes.slice();
    bad[bad.length - 1]! ^= 1;
    assert.throws(() => stateFromBytes(bad, supra), /state\.safetensors: the snapshot is damaged/);
    whole.free(); first.free(); resumed.free(); supra.free();
  } finally {
    unmountFolder('mem:teacher');
  }
});
