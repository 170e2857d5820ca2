// The playground in a real browser (headless Chromium, driven by playwright-core): the page loads without
// console errors, its greedy tokens and SUPRA state equal Node's on the same wasm kernels bit for bit,
// a saved state continues exactly as the uninterrupted run, picked local folders load, and bad folders
// show their error on the page. Then hostile use: clicks while a run is in flight, a load meanwhile,
// corrupt or foreign saved states, folders picked wrong, missing shards, truncated or oversized weights,
// a transfer cut short, a worker that cannot start: each shows its error and leaves the page usable.
// One browser for the whole file. The browser runs the wasm kernels only, so this runs in the wasm pass.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
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
  stop(): Promise<void>;
  error(): string | null;
  ready?: boolean;
}
declare const window: { playground: PlaygroundApi };
declare const document: { getElementById(id: string): { files: Iterable<unknown>; disabled: boolean; value: string; checked: boolean; hidden: boolean } };
declare class Worker {
  constructor(url: string, options: { type: 'module' });
  onmessage: (e: { data: { type: string; message?: string } }) => void;
  postMessage(m: unknown): void;
  terminate(): void;
}

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

function safetensorsHeader(path: string): Record<string, unknown> {
  const bytes = readFileSync(path);
  const n = Number(bytes.readBigUInt64LE(0));
  return JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
}

let tmp: string;
let supraDir: string;
let otherSupraDir: string;
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
  // another SUPRA model of the same shape (its saved states are foreign to the first)
  otherSupraDir = join(tmp, 'other-supra');
  linearizeFolder(teacherDir, otherSupraDir, { seed: 1 });
  const withTeacherFiles = (name: string, files = ['config.json', 'tokenizer.json', 'tokenizer_config.json']): string => {
    const dir = join(tmp, name);
    mkdirSync(dir, { recursive: true });
    for (const f of files) copyFileSync(join(teacherDir, f), join(dir, f));
    return dir;
  };
  // an index whose second shard is missing
  const sharded = withTeacherFiles('sharded');
  copyFileSync(join(teacherDir, 'model.safetensors'), join(sharded, 'model-00001-of-00002.safetensors'));
  const names = Object.keys(safetensorsHeader(join(teacherDir, 'model.safetensors'))).filter((n) => n !== '__metadata__');
  const weightMap = Object.fromEntries(names.map((n, i) => [n, i === names.length - 1 ? 'model-00002-of-00002.safetensors' : 'model-00001-of-00002.safetensors']));
  writeFileSync(join(sharded, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  // weights cut off half-way
  const truncated = withTeacherFiles('truncated', ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']);
  truncateSync(join(truncated, 'model.safetensors'), 6_000_000);
  // a config far beyond the wasm arena, beside 4 GiB of weights that cost no disk (sparse)
  const huge = withTeacherFiles('huge');
  const config = JSON.parse(readFileSync(join(huge, 'config.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(huge, 'config.json'), JSON.stringify({ ...config, hidden_size: 8192, intermediate_size: 28672, num_hidden_layers: 80, num_attention_heads: 64, num_key_value_heads: 8, head_dim: 128 }));
  writeFileSync(join(huge, 'model.safetensors'), '');
  truncateSync(join(huge, 'model.safetensors'), 4 * 2 ** 30);
  const models: WebModel[] = [
    { name: 'supra', dir: supraDir, role: 'supra', note: 'the embedded teacher, linearized' },
    { name: 'teacher', dir: teacherDir, role: 'teacher', note: 'the embedded teacher' },
    { name: 'unknown', dir: unknown, role: 'supra', note: 'an unknown architecture' },
    { name: 'no-weights', dir: noWeights, role: 'supra', note: 'no weights' },
    { name: 'sharded', dir: sharded, role: 'supra', note: 'a shard missing' },
    { name: 'truncated', dir: truncated, role: 'supra', note: 'truncated weights' },
    { name: 'huge', dir: huge, role: 'supra', note: 'too big' },
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

// ---------------------------------------------------------------- hostile use

/** The error of the page's last failed call as the page shows it, or null. */
const shownError = (): Promise<string | null> => pg!.page.evaluate(() => window.playground.error());

test('a corrupt or foreign saved state shows its error and the state before it continues exactly', { skip }, async () => {
  await pg!.page.evaluate(() => window.playground.load({ model: '/models/supra', teacher: null }));
  const whole = await pg!.page.evaluate((p) => window.playground.generate(p, 12), PROMPT);
  const saved = await pg!.page.evaluate(async () => Array.from(await window.playground.save()));
  const foreign = nodeRun(otherSupraDir, 3).state!;
  const bad: Array<[string, number[], RegExp]> = [
    ['garbage', Array.from({ length: 1000 }, (_, i) => (i * 37) & 255), /safetensors|header/],
    ['empty', [], /truncated|8-byte/],
    ['cut in half', saved.slice(0, saved.length >> 1), /truncated|outside the data area/],
    ['another model’s', Array.from(foreign), /another model|fingerprint|different model/],
  ];
  await pg!.page.evaluate((p) => window.playground.generate(p, 5), PROMPT);
  for (const [what, bytes, message] of bad) {
    const outcome = await pg!.page.evaluate((b) => window.playground.restore(Uint8Array.from(b)).then(() => 'restored', (e: Error) => e.message), bytes);
    assert.match(outcome, message, `${what}: ${outcome}`);
    assert.equal(await shownError(), outcome, `${what}: the page shows the error`);
  }
  // the state from before them continues as if they never came
  const rest = await pg!.page.evaluate(() => window.playground.more(7));
  assert.deepEqual(rest.model, whole.model.slice(5));
  // through the page's file input: the error is shown, and the input is cleared so the same file can be tried again
  const file = join(tmp, 'garbage.safetensors');
  writeFileSync(file, 'not a state');
  await pg!.page.setInputFiles('#restore', file);
  await pg!.page.evaluate(async () => {
    while (document.getElementById('error').hidden !== false) await new Promise((ok) => setTimeout(ok, 20));
  });
  assert.match((await shownError())!, /safetensors|header|truncated/);
  assert.equal(await pg!.page.evaluate(() => document.getElementById('restore').value), '');
  assert.deepEqual(pg!.log.errors, []);
});

test('Generate while a run is in flight is refused, and the run and its columns go on untouched', { skip }, async () => {
  await pg!.page.evaluate(() => window.playground.load({ model: '/models/supra', teacher: '/models/teacher' }));
  const r = await pg!.page.evaluate(async (p) => {
    const first = window.playground.generate(p, 40);
    const disabled = ['generate', 'continue', 'save', 'restore'].filter((id) => document.getElementById(id).disabled);
    const stopEnabled = !document.getElementById('stop').disabled;
    const second = await window.playground.generate('Something else', 3).then(() => 'ran', (e: Error) => e.message);
    const save = await window.playground.save().then(() => 'saved', (e: Error) => e.message);
    return { first: await first, second, save, disabled, stopEnabled };
  }, PROMPT);
  assert.match(r.second, /busy/);
  assert.match(r.save, /busy/);
  assert.deepEqual(r.disabled, ['generate', 'continue', 'save', 'restore']);
  assert.equal(r.stopEnabled, true);
  assert.deepEqual(r.first.model, nodeRun(supraDir, 40).ids);
  assert.deepEqual(r.first.teacher, nodeRun(teacherDir, 40).ids);
  assert.deepEqual(pg!.log.errors, []);
});

test('Stop ends a run where it is, and Continue goes on from there exactly', { skip }, async () => {
  await pg!.page.evaluate(() => window.playground.load({ model: '/models/supra', teacher: null }));
  const r = await pg!.page.evaluate(async (p) => {
    document.getElementById('stop-at-eos').checked = false;
    try {
      const run = window.playground.generate(p, 100_000);
      await new Promise((ok) => setTimeout(ok, 300));
      await window.playground.stop();
      const first = (await run).model;
      const rest = (await window.playground.more(5)).model;
      return { first, rest };
    } finally {
      document.getElementById('stop-at-eos').checked = true;
    }
  }, PROMPT);
  assert.ok(r.first.length > 0 && r.first.length < 100_000, `stopped after ${r.first.length} tokens`);
  const model = loadDecoder(supraDir).model;
  const tokenizer = loadTokenizer(supraDir);
  const state = new GenerationState(model, 1);
  try {
    state.append([tokenizer.encode(PROMPT)]);
    const all = [...decodeTokens(state, { max_new_tokens: r.first.length + 5, do_sample: false, eos_token_id: null })].map((t) => t.tokens[0]!);
    assert.deepEqual([...r.first, ...r.rest], all);
  } finally {
    state.free();
    model.free();
  }
});

test('loading a model while one generates stops the run, then loads; the page stays clean', { skip }, async () => {
  await pg!.page.evaluate(() => window.playground.load({ model: '/models/supra', teacher: '/models/teacher' }));
  const r = await pg!.page.evaluate(async (p) => {
    document.getElementById('stop-at-eos').checked = false;
    try {
      const run = window.playground.generate(p, 100_000);
      await new Promise((ok) => setTimeout(ok, 300));
      const loaded = (await window.playground.load({ model: '/models/supra', teacher: null })) as Record<string, unknown>;
      return { n: (await run).model.length, loaded: Object.keys(loaded).filter((k) => loaded[k]) };
    } finally {
      document.getElementById('stop-at-eos').checked = true;
    }
  }, PROMPT);
  assert.ok(r.n > 0 && r.n < 100_000);
  assert.deepEqual(r.loaded, ['model', 'runtime']);
  assert.deepEqual((await pg!.page.evaluate((p) => window.playground.generate(p, 6), PROMPT)).model, nodeRun(supraDir, 6).ids);
  assert.deepEqual(pg!.log.errors, []);
});

test('the engine takes one request at a time, in order, whatever a page sends it', { skip }, async () => {
  const seen = await pg!.page.evaluate(
    () =>
      new Promise<string[]>((ok) => {
        const w = new Worker('/web/engine.js', { type: 'module' });
        const seen: string[] = [];
        const end = (): void => {
          w.terminate();
          ok(seen);
        };
        setTimeout(end, 20_000); // what came, if not all of it
        w.onmessage = (e) => {
          if (e.data.type === 'token' || e.data.type === 'ready') return;
          seen.push(e.data.type === 'error' ? `error: ${e.data.message}` : e.data.type);
          if (seen.length === 4) end();
        };
        // all at once: the second load must wait for the run (it would free the model the run decodes)
        w.postMessage({ type: 'load', slot: 'model', source: '/models/supra' });
        w.postMessage({ type: 'run', prompt: 'The jury', maxNewTokens: 600, stopAtEos: false });
        w.postMessage({ type: 'load', slot: 'model', source: '/models/supra' });
        w.postMessage({ type: 'nonsense' });
      }),
  );
  assert.deepEqual(seen, ['loaded', 'done', 'loaded', 'error: supra: the engine has no request "nonsense"']);
});

test('folders picked wrong: no config.json, the model one level down, files beside the model that cannot be read', { skip }, async () => {
  const pick = async (dir: string): Promise<string> => {
    await pg!.page.setInputFiles('#folder', dir);
    return pg!.page.evaluate(() =>
      window.playground.load({ model: [...document.getElementById('folder').files], teacher: null }).then(() => 'loaded', (e: Error) => e.message),
    );
  };
  const noConfig = join(tmp, 'pick-no-config');
  mkdirSync(noConfig);
  copyFileSync(join(teacherDir, 'tokenizer.json'), join(noConfig, 'tokenizer.json'));
  assert.match(await pick(noConfig), /the picked folder pick-no-config has no config\.json/);
  const parent = join(tmp, 'pick-parent');
  mkdirSync(join(parent, 'smol'), { recursive: true });
  for (const f of ['config.json', 'tokenizer.json', 'model.safetensors']) copyFileSync(join(teacherDir, f), join(parent, 'smol', f));
  assert.match(await pick(parent), /has no config\.json .*pick the model folder itself: pick-parent\/smol/);
  // a training run: the model beside a file the page need not read (gone by the time it is loaded)
  const run = join(tmp, 'pick-run');
  mkdirSync(join(run, 'step-100'), { recursive: true });
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']) copyFileSync(join(teacherDir, f), join(run, f));
  writeFileSync(join(run, 'step-100', 'optimizer.bin'), 'moments');
  await pg!.page.setInputFiles('#folder', run);
  rmSync(join(run, 'step-100'), { recursive: true });
  const loaded = await pg!.page.evaluate(() =>
    window.playground.load({ model: [...document.getElementById('folder').files], teacher: null }).then(() => 'loaded', (e: Error) => e.message),
  );
  assert.equal(loaded, 'loaded');
  assert.deepEqual((await pg!.page.evaluate((p) => window.playground.generate(p, 4), PROMPT)).model, nodeRun(teacherDir, 4).ids);
});

test('weights that cannot load: a missing shard, a truncated file, a model too big (refused before its weights are fetched)', { skip }, async () => {
  const shown = async (model: string): Promise<string> =>
    pg!.page.evaluate((m) => window.playground.load({ model: m, teacher: null }).then(() => 'loaded', () => window.playground.error() ?? 'no error shown'), model);
  assert.match(await shown('/models/sharded'), /model-00002-of-00002\.safetensors/);
  assert.match(await shown('/models/truncated'), /truncated.*model\.safetensors|model\.safetensors.*(truncated|outside the data area)/);
  assert.match(await shown('/models/huge'), /\/models\/huge\/config\.json: .*arena/);
  assert.ok(!pg!.log.requests.some((u) => u.endsWith('/models/huge/model.safetensors')), 'the weights of a model too big were fetched');
});

test('a weights transfer cut short names the file', { skip }, async () => {
  // another origin that serves the teacher's folder (with CORS) but breaks off the weights half-way
  const files: Record<string, Buffer> = Object.fromEntries(['config.json', 'tokenizer.json', 'model.safetensors'].map((f) => [f, readFileSync(join(teacherDir, f))]));
  const server: NetServer = createNetServer((socket) => {
    socket.once('data', (d) => {
      const path = /^GET \/m\/(\S+)/.exec(d.toString())?.[1] ?? '';
      const body = files[path];
      const head = (status: string, length: number): string =>
        `HTTP/1.1 ${status}\r\nAccess-Control-Allow-Origin: *\r\nContent-Length: ${length}\r\nConnection: close\r\n\r\n`;
      if (!body) return void socket.end(head('404 Not Found', 0));
      if (path !== 'model.safetensors') return void socket.end(Buffer.concat([Buffer.from(head('200 OK', body.length)), body]));
      socket.write(head('200 OK', body.length));
      socket.write(body.subarray(0, 1 << 20), () => socket.destroy());
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  try {
    const a = server.address();
    const url = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}/m`;
    const outcome = await pg!.page.evaluate((m) => window.playground.load({ model: m, teacher: null }).then(() => 'loaded', (e: Error) => e.message), url);
    assert.match(outcome, new RegExp(`${url}/model\\.safetensors: could not read the file`));
  } finally {
    server.close();
  }
});

test('Save state downloads the state', { skip }, async () => {
  await pg!.page.evaluate(() => window.playground.load({ model: '/models/supra', teacher: null }));
  await pg!.page.evaluate((p) => window.playground.generate(p, 4), PROMPT);
  const download = pg!.page.waitForEvent('download');
  await pg!.page.click('#save');
  const path = await (await download).path();
  const expected = nodeRun(supraDir, 4).state!;
  assert.equal(sha(readFileSync(path!)), sha(expected));
  assert.deepEqual(pg!.log.errors, []);
});

test('a model worker that cannot start shows why, and later clicks fail at once instead of waiting forever', { skip }, async () => {
  const page = await pg!.newPage();
  try {
    await page.route('**/dist/src/web/index.js', (route) => route.abort());
    await page.goto(pg!.url);
    const r = await page.evaluate(async () => {
      while (document.getElementById('error').hidden !== false) await new Promise((ok) => setTimeout(ok, 20));
      const shown = window.playground.error();
      const load = await Promise.race([
        window.playground.load({ model: '/models/supra', teacher: null }).then(() => 'loaded', (e: Error) => e.message),
        new Promise((ok) => setTimeout(() => ok('still waiting after 5 s'), 5000)),
      ]);
      return { shown, load };
    });
    assert.match(r.shown!, /the model worker failed/);
    assert.match(String(r.load), /the model worker failed/);
  } finally {
    await page.close();
  }
});
