// supra web's server without a browser: the isolation headers on every response, model files streamed
// whole, and hostile requests (a path out of a mount, a malformed escape, other methods) answered with
// an error status while the server keeps serving.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request, type Server } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startWebServer } from '../src/serve/playground.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const teacherDir = join(repo, 'assets', 'teacher');

let server: Server | null = null;
after(() => server?.close());

async function port(): Promise<number> {
  server ??= await startWebServer([{ name: 'teacher', dir: teacherDir, role: 'teacher', note: 'the embedded teacher' }], 0);
  const a = server.address();
  return typeof a === 'object' && a ? a.port : 0;
}

/** A raw request (the path is sent as written, unlike fetch, which normalizes "..") */
async function get(path: string, method = 'GET'): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  const p = await port();
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port: p, path, method }, (res) => {
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
  assert.deepEqual(JSON.parse((await get('/api/models')).body.toString()), [{ name: 'teacher', role: 'teacher', note: 'the embedded teacher', url: '/models/teacher' }]);
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
