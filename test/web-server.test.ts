// supra web's server without a browser: the isolation headers on every response, model files streamed
// whole, and hostile requests (a path out of a mount, a malformed escape, other methods, another site's
// name, a symlinked folder pointing out, downloads dropped or cut short) answered with an error status
// or a closed connection while the server keeps serving. The `supra web` command's own checks at the end.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { Agent, request, type Server } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startWebServer } from '../src/serve/playground.js';
import { tempRoot } from './helpers/tmp.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const teacherDir = join(repo, 'assets', 'teacher');

// a model folder of links, as in the Hugging Face cache (files linked to blobs elsewhere), and a folder
// link pointing out of it
const tmp = tempRoot('web-server');
const linked = join(tmp, 'linked'), outside = join(tmp, 'outside'), blobs = join(tmp, 'blobs');
for (const d of [linked, outside, blobs]) mkdirSync(d);
writeFileSync(join(outside, 'secret.txt'), 'not for the page');
copyFileSync(join(teacherDir, 'config.json'), join(blobs, 'b1'));
symlinkSync(join(blobs, 'b1'), join(linked, 'config.json'));
symlinkSync(outside, join(linked, 'out'));
// a big file that costs no disk (sparse), to drop or cut short while it streams
const big = join(tmp, 'big');
mkdirSync(big);
const BIG = 256 << 20;
writeFileSync(join(big, 'model.safetensors'), '');
truncateSync(join(big, 'model.safetensors'), BIG);

let server: Server | null = null;
after(() => server?.close());

async function port(): Promise<number> {
  server ??= await startWebServer(
    [
      { name: 'teacher', dir: teacherDir, role: 'teacher', note: 'the embedded teacher' },
      { name: 'linked', dir: linked, role: 'supra', note: 'links' },
      { name: 'big', dir: big, role: 'supra', note: 'big' },
    ],
    0,
  );
  const a = server.address();
  return typeof a === 'object' && a ? a.port : 0;
}

/** A raw request (the path is sent as written, unlike fetch, which normalizes "..") */
async function get(path: string, method = 'GET', host?: string): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  const p = await port();
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port: p, path, method, ...(host ? { headers: { host } } : {}) }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => ok({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }));
    });
    req.on('error', fail);
    req.end();
  });
}

test('the page, the models listing and model files, each with the cross-origin-isolation headers', async () => {
  for (const path of ['/', '/web/app.js', '/api/models', '/models/teacher/config.json', '/dist/src/web/index.js']) {
    const r = await get(path);
    assert.equal(r.status, 200, path);
    assert.equal(r.headers['cross-origin-opener-policy'], 'same-origin', path);
    assert.equal(r.headers['cross-origin-embedder-policy'], 'require-corp', path);
  }
  const weights = await get('/models/teacher/model.safetensors');
  assert.ok(weights.body.equals(readFileSync(join(teacherDir, 'model.safetensors'))));
  assert.deepEqual(JSON.parse((await get('/api/models')).body.toString())[0], { name: 'teacher', role: 'teacher', note: 'the embedded teacher', url: '/models/teacher' });
  // the tokenizer package's bare import is rewritten to a file the browser can load
  assert.doesNotMatch((await get('/dist/src/io/tokenizer.js')).body.toString(), /from '@huggingface\/tokenizers'/);
});

test('hostile requests get an error status and the server goes on', async () => {
  assert.equal((await get('/models/teacher/../../package.json')).status, 404);
  assert.equal((await get('/models/teacher/%2e%2e/%2e%2e/package.json')).status, 404);
  assert.equal((await get('/web/%E0%A4%A')).status, 400);
  assert.equal((await get('/models/nothing/config.json')).status, 404);
  assert.equal((await get('/models/teacher/')).status, 404);
  assert.equal((await get('/', 'POST')).status, 405);
  const head = await get('/models/teacher/config.json', 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.body.length, 0);
  assert.equal(Number(head.headers['content-length']), readFileSync(join(teacherDir, 'config.json')).length);
  assert.equal((await get('/')).status, 200);
});

test('a page of another site pointing its name at 127.0.0.1 (DNS rebinding) gets nothing', async () => {
  const p = await port();
  assert.equal((await get('/models/teacher/config.json', 'GET', `evil.example:${p}`)).status, 421);
  assert.equal((await get('/models/teacher/config.json', 'GET', `localhost:${p}`)).status, 200);
});

test('a linked file in a model folder is served (the Hugging Face cache), a linked folder pointing out is not', async () => {
  const config = await get('/models/linked/config.json');
  assert.equal(config.status, 200);
  assert.ok(config.body.equals(readFileSync(join(teacherDir, 'config.json'))));
  assert.equal((await get('/models/linked/out/secret.txt')).status, 404);
});

test('a model folder that vanishes while served: 404, and the server goes on', async () => {
  const gone = join(tmp, 'gone');
  mkdirSync(gone);
  copyFileSync(join(teacherDir, 'config.json'), join(gone, 'config.json'));
  const s = await startWebServer([{ name: 'gone', dir: gone, role: 'supra', note: '' }], 0);
  try {
    const a = s.address();
    const p = typeof a === 'object' && a ? a.port : 0;
    const status = (path: string): Promise<number> =>
      new Promise((ok, fail) => request({ host: '127.0.0.1', port: p, path }, (res) => (res.resume(), ok(res.statusCode!))).on('error', fail).end());
    assert.equal(await status('/models/gone/config.json'), 200);
    rmSync(gone, { recursive: true });
    assert.equal(await status('/models/gone/config.json'), 404);
    assert.equal(await status('/'), 200);
  } finally {
    s.close();
  }
});

test('downloads the client drops release their file descriptors', async () => {
  const p = await port();
  const fds = (): number => readdirSync('/proc/self/fd').length;
  await get('/'); // the server's own descriptors are open before counting
  const before = fds();
  for (let i = 0; i < 8; i++) {
    await new Promise<void>((ok, fail) => {
      const req = request({ host: '127.0.0.1', port: p, path: '/models/big/model.safetensors', agent: false }, (res) => {
        res.once('data', () => {
          req.destroy();
          ok();
        });
      });
      req.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' ? undefined : fail(e)));
      req.end();
    });
  }
  await new Promise((ok) => setTimeout(ok, 200)); // the server sees the closed sockets
  assert.ok(fds() <= before, `${fds() - before} descriptors left open by dropped downloads`);
});

test('a file cut short while it streams ends the transfer at once (no wait for bytes that never come)', async () => {
  const p = await port();
  const cut = join(tmp, 'big', 'cut.bin');
  writeFileSync(cut, '');
  truncateSync(cut, 64 << 20);
  const t0 = Date.now();
  const outcome = await new Promise<string>((ok) => {
    // kept alive, as a browser's connection is (a closing one would end at the short body anyway)
    const req = request({ host: '127.0.0.1', port: p, path: '/models/big/cut.bin', agent: new Agent({ keepAlive: true }) }, (res) => {
      let got = 0;
      res.on('data', (d: Buffer) => {
        if (got === 0) {
          res.pause();
          truncateSync(cut, 1 << 20);
          setTimeout(() => res.resume(), 50);
        }
        got += d.length;
      });
      res.on('aborted', () => ok('aborted'));
      res.on('end', () => ok(`ended after ${got} bytes`));
    });
    req.on('error', () => ok('aborted'));
    req.end();
  });
  assert.equal(outcome, 'aborted');
  assert.ok(Date.now() - t0 < 3000, `the client waited ${Date.now() - t0} ms for the missing bytes`);
});

// ---------------------------------------------------------------- the supra web command

const cli = join(repo, 'dist', 'src', 'cli', 'main.js');
const supra = (...args: string[]): { status: number | null; stderr: string } => {
  const r = spawnSync(process.execPath, [cli, 'web', ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stderr: r.stderr };
};

test('supra web: a port in use and a --model that is a file say so and exit', async () => {
  const taken = createNetServer();
  await new Promise<void>((ok) => taken.listen(0, '127.0.0.1', ok));
  try {
    const a = taken.address();
    const busy = typeof a === 'object' && a ? a.port : 0;
    const r = supra('--model', teacherDir, '--teacher', teacherDir, '--port', String(busy));
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, new RegExp(`port ${busy} on 127\\.0\\.0\\.1 is in use`));
  } finally {
    taken.close();
  }
  const file = supra('--model', join(teacherDir, 'config.json'), '--port', '0');
  assert.notEqual(file.status, 0);
  assert.match(file.stderr, /--model .*config\.json: a file, not a model folder \(give the folder that holds it:/);
  const none = supra('--model', join(tmp, 'no-such-folder'), '--port', '0');
  assert.match(none.stderr, /--model .*no-such-folder: no such folder/);
});

test('installed as a dependency, with the tokenizer library hoisted beside supra, the page still gets its file', () => {
  // <app>/node_modules/supra (its dist/ copied: a link would resolve back to this clone) and
  // <app>/node_modules/@huggingface/tokenizers, as npm lays out an app that depends on supra
  const app = join(tmp, 'app'), pkg = join(app, 'node_modules', 'supra'), hoisted = join(app, 'node_modules', '@huggingface', 'tokenizers');
  mkdirSync(pkg, { recursive: true });
  cpSync(join(repo, 'dist'), join(pkg, 'dist'), { recursive: true });
  cpSync(join(repo, 'package.json'), join(pkg, 'package.json'));
  cpSync(join(repo, 'node_modules', '@huggingface', 'tokenizers'), hoisted, { recursive: true });
  const script = `const { startWebServer } = await import(${JSON.stringify(join(pkg, 'dist', 'src', 'serve', 'playground.js'))});
    const s = await startWebServer([], 0);
    const r = await fetch('http://127.0.0.1:' + s.address().port + '/node_modules/@huggingface/tokenizers/dist/tokenizers.mjs');
    console.log(r.status, (await r.text()).length);
    s.close();`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: app });
  assert.equal(r.status, 0, r.stderr);
  const [status, length] = r.stdout.trim().split(' ').map(Number);
  assert.equal(status, 200);
  assert.equal(length, readFileSync(join(hoisted, 'dist', 'tokenizers.mjs'), 'utf8').length);
});
