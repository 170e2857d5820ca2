// The playground in a real browser (headless Chromium, driven by playwright-core): the page loads without
// console errors, its greedy tokens and SUPRA state equal Node's on the same wasm kernels bit for bit,
// a saved state continues exactly as the uninterrupted run, picked local folders load, and bad folders
// show their error on the page. The browser runs the wasm kernels only, so this runs in the wasm pass.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findChromium, NO_CHROMIUM, openPlayground, type Playground } from '../src/bench/browser.js';
import type { WebModel } from '../src/serve/playground.js';
import { linearizeFolder } from '../src/models/linearize.js';
import { loadDecoder } from '../src/models/auto.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { GenerationState } from '../src/generate/state.js';
import { decodeTokens } from '../src/generate/generate.js';
import { stateToBytes } from '../src/generate/snapshot.js';
import { getBackend } from '../src/core/select.js';
import { tempRoot } from './helpers/tmp.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const teacherDir = join(repo, 'assets', 'teacher');
const PROMPT = 'The jury said that';
const wasmPass = getBackend().name === 'wasm';

interface Ids {
  model: number[];
  teacher: number[];
}
interface PlaygroundApi {
  load(sources: { model?: unknown; teacher?: unknown }): Promise<unknown>;
  generate(prompt: string, n: number): Promise<Ids>;
  more(n: number): Promise<Ids>;
  save(): Promise<Uint8Array>;
  restore(bytes: Uint8Array): Promise<unknown>;
  error(): string | null;
}
declare const window: { playground: PlaygroundApi };
declare const document: { getElementById(id: string): { files: Iterable<unknown> } };

/** Node's greedy continuation of PROMPT on the wasm backend, and (a SUPRA model's) state after it as bytes. */
function nodeRun(dir: string, n: number): { ids: number[]; state: Uint8Array | null } {
  const model = loadDecoder(dir).model;
  const tokenizer = loadTokenizer(dir);
  const state = new GenerationState(model, 1);
  try {
    state.append([tokenizer.encode(PROMPT)]);
    const ids = [...decodeTokens(state, { max_new_tokens: n, do_sample: false, tokenizer })].map((s) => s.tokens[0]!);
    return { ids, state: model.config.supra ? stateToBytes(model, state) : null };
  } finally {
    state.free();
    model.free();
  }
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

let tmp: string;
let supraDir: string;
let pg: Playground | null = null;
const skip = !wasmPass ? 'the browser runs the wasm kernels: checked in the wasm pass' : process.env.SUPRA_SKIP_BROWSER === '1' ? 'SUPRA_SKIP_BROWSER=1' : false;

before(async () => {
  if (skip) return;
  if (!findChromium()) throw new Error(`supra: ${NO_CHROMIUM} (or set SUPRA_SKIP_BROWSER=1 to leave these tests out)`);
  tmp = tempRoot('web-browser');
  supraDir = join(tmp, 'supra');
  linearizeFolder(teacherDir, supraDir, { seed: 0 });
  // bad folders, each served like a model: an unknown architecture, and a config without its weights
  const unknown = join(tmp, 'unknown');
  mkdirSync(unknown);
  writeFileSync(join(unknown, 'config.json'), JSON.stringify({ architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', vocab_size: 16 }));
  copyFileSync(join(teacherDir, 'model.safetensors'), join(unknown, 'model.safetensors'));
  const noWeights = join(tmp, 'no-weights');
  mkdirSync(noWeights);
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(teacherDir, f), join(noWeights, f));
  const models: WebModel[] = [
    { name: 'supra', dir: supraDir, role: 'supra', note: 'the embedded teacher, linearized' },
    { name: 'teacher', dir: teacherDir, role: 'teacher', note: 'the embedded teacher' },
    { name: 'unknown', dir: unknown, role: 'supra', note: 'an unknown architecture' },
    { name: 'no-weights', dir: noWeights, role: 'supra', note: 'no weights' },
  ];
  pg = await openPlayground(models);
});

after(async () => {
  await pg?.close();
});

test('the page loads both models without console errors', { skip }, async () => {
  const loaded = (await pg!.page.evaluate(() => window.playground.load({ model: '/models/supra', teacher: '/models/teacher' }))) as Record<string, { recurrent: boolean }>;
  assert.equal(loaded.model!.recurrent, true);
  assert.equal(loaded.teacher!.recurrent, false);
  assert.deepEqual(pg!.log.errors, []);
});

test('greedy tokens and the SUPRA state in the page equal Node’s, bit for bit, for SUPRA and teacher side by side', { skip }, async () => {
  await pg!.page.evaluate(() => window.playground.load({ model: '/models/supra', teacher: '/models/teacher' }));
  const page = await pg!.page.evaluate((p) => window.playground.generate(p, 12), PROMPT);
  const bytes = await pg!.page.evaluate(async () => Array.from(await window.playground.save()));
  const supra = nodeRun(supraDir, 12);
  const teacher = nodeRun(teacherDir, 12);
  assert.deepEqual(page.model, supra.ids);
  assert.deepEqual(page.teacher, teacher.ids);
  assert.equal(sha(Uint8Array.from(bytes)), sha(supra.state!), 'the saved state differs from Node’s');
  assert.deepEqual(pg!.log.errors, []);
});

test('a saved state continues exactly as the uninterrupted run', { skip }, async () => {
  await pg!.page.evaluate(() => window.playground.load({ model: '/models/supra', teacher: null }));
  const whole = await pg!.page.evaluate((p) => window.playground.generate(p, 12), PROMPT);
  const first = await pg!.page.evaluate((p) => window.playground.generate(p, 5), PROMPT);
  const saved = await pg!.page.evaluate(async () => Array.from(await window.playground.save()));
  await pg!.page.evaluate((p) => window.playground.generate(p, 3), 'Something else entirely');
  await pg!.page.evaluate((b) => window.playground.restore(Uint8Array.from(b)), saved);
  const rest = await pg!.page.evaluate(() => window.playground.more(7));
  assert.deepEqual([...first.model, ...rest.model], whole.model);
  assert.equal(rest.teacher.length, 0);
});

test('a local folder picked in the page loads and decodes as over HTTP', { skip }, async () => {
  await pg!.page.setInputFiles('#teacher-folder', teacherDir);
  await pg!.page.evaluate(() => window.playground.load({ model: null, teacher: [...document.getElementById('teacher-folder').files] }));
  const picked = await pg!.page.evaluate((p) => window.playground.generate(p, 6), PROMPT);
  assert.deepEqual(picked.teacher, nodeRun(teacherDir, 6).ids);
  assert.deepEqual(pg!.log.errors, []);
});

test('bad folders show their error on the page', { skip }, async () => {
  const shown = async (model: string): Promise<string> =>
    pg!.page.evaluate(
      (m) => window.playground.load({ model: m, teacher: null }).then(() => 'loaded', () => window.playground.error() ?? 'no error shown'),
      model,
    );
  assert.match(await shown('/models/missing'), /\/models\/missing\/config\.json: not found/);
  assert.match(await shown('/models/unknown'), /GPT2LMHeadModel/);
  assert.match(await shown('/models/no-weights'), /no-weights.*(model\.safetensors|weights)/);
  // the page still works after them
  await pg!.page.evaluate(() => window.playground.load({ model: '/models/supra', teacher: null }));
  assert.equal((await pg!.page.evaluate((p) => window.playground.generate(p, 2), PROMPT)).model.length, 2);
});

test('without cross-origin isolation the page runs on one thread and says why', { skip }, async () => {
  const plain = await openPlayground([{ name: 'supra', dir: supraDir, role: 'supra', note: 'the embedded teacher, linearized' }], { isolated: false });
  try {
    const loaded = (await plain.page.evaluate(() => window.playground.load({ model: '/models/supra', teacher: null }))) as { runtime: { threads: number; note: string | null } };
    assert.equal(loaded.runtime.threads, 1);
    assert.match(loaded.runtime.note ?? '', /not cross-origin isolated/);
    assert.match(await plain.page.evaluate(() => (document as unknown as { getElementById(id: string): { textContent: string } }).getElementById('runtime').textContent), /one thread/);
    const ids = await plain.page.evaluate((p) => window.playground.generate(p, 6), PROMPT);
    assert.deepEqual(ids.model, nodeRun(supraDir, 6).ids);
    assert.deepEqual(plain.log.errors, []);
  } finally {
    await plain.close();
  }
});
