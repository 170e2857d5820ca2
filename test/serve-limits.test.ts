// The server under bad input and load, over real HTTP on loopback: malformed requests get 4xx in OpenAI's
// error shape and the server stays up; the API key; a full queue answers 503; a client that disconnects
// stops its generation; deadlines give 504; a handler exception is a 500 and serving goes on; a chat
// template that loops, eats memory or writes too much fails its request while the server keeps answering.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gqaDir } from './helpers/fixture.js';
import { call, writeTinyTokenizer } from './helpers/serve.js';
import { loadTokenizer, type LoadedTokenizer } from '../src/io/tokenizer.js';
import { loadDecoder } from '../src/models/auto.js';
import type { DecoderLM } from '../src/models/decoder.js';
import { createSupraServer, type ServeOptions, type SupraServer } from '../src/serve/server.js';

const root = mkdtempSync(join(tmpdir(), 'supra-serve-limits-'));
let model: DecoderLM;
let tokenizer: LoadedTokenizer;
const servers: SupraServer[] = [];

before(() => {
  model = loadDecoder(join(gqaDir, 'teacher')).model;
  writeTinyTokenizer(join(root, 'tok'));
  tokenizer = loadTokenizer(join(root, 'tok'));
});

after(async () => {
  for (const s of servers) await s.close();
  model?.free();
  rmSync(root, { recursive: true, force: true });
});

async function start(options: Partial<ServeOptions> = {}): Promise<{ server: SupraServer; url: string }> {
  const server = createSupraServer({ model, tokenizer, modelId: 'tiny', ...options });
  servers.push(server);
  return { server, url: (await server.listen(0)).url };
}

/** Poll until cond() holds (at most `ms`). */
async function until(cond: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

function assertErrorShape(json: unknown, what: string): void {
  const e = (json as { error?: Record<string, unknown> })?.error;
  assert.ok(e, `${what}: no error object in ${JSON.stringify(json)}`);
  assert.equal(typeof e.message, 'string', what);
  assert.ok((e.message as string).length > 0, what);
  assert.equal(typeof e.type, 'string', what);
  assert.ok('param' in e && 'code' in e, `${what}: error has param and code`);
}

test('malformed requests: each gets its 4xx in OpenAI error shape, and the server stays up', async () => {
  const { url, server } = await start({ maxPromptTokens: 64, maxTokens: 100, maxBodyBytes: 4096, maxBatch: 4 });
  const ok = { prompt: 'hi', max_tokens: 2 };
  const long = Array.from({ length: 65 }, (_, i) => i % 200);
  const cases: Array<[string, string, string, unknown, number, string | null]> = [
    // [what, method, path, body, status, param]
    ['bad JSON', 'POST', '/v1/completions', '{"prompt": "hi", ', 400, null],
    ['empty body', 'POST', '/v1/completions', '', 400, null],
    ['JSON array body', 'POST', '/v1/completions', '[1, 2]', 400, null],
    ['JSON string body', 'POST', '/v1/completions', '"hello"', 400, null],
    ['missing prompt', 'POST', '/v1/completions', { max_tokens: 2 }, 400, 'prompt'],
    ['prompt is a number', 'POST', '/v1/completions', { prompt: 42 }, 400, 'prompt'],
    ['prompt mixes ids and text', 'POST', '/v1/completions', { prompt: [1, 'a'] }, 400, 'prompt'],
    ['prompt has a fractional id', 'POST', '/v1/completions', { prompt: [1, 2.5] }, 400, 'prompt'],
    ['prompt id outside the vocabulary', 'POST', '/v1/completions', { prompt: [1, 256] }, 400, 'prompt'],
    ['prompt with a negative id', 'POST', '/v1/completions', { prompt: [[1, -3]] }, 400, 'prompt'],
    ['empty prompt list', 'POST', '/v1/completions', { prompt: [] }, 400, 'prompt'],
    ['too many prompts', 'POST', '/v1/completions', { prompt: ['a', 'b', 'c', 'd', 'e'] }, 400, 'prompt'],
    ['prompt too long', 'POST', '/v1/completions', { prompt: long }, 400, 'prompt'],
    ['max_tokens is a string', 'POST', '/v1/completions', { ...ok, max_tokens: '5' }, 400, 'max_tokens'],
    ['max_tokens negative', 'POST', '/v1/completions', { ...ok, max_tokens: -1 }, 400, 'max_tokens'],
    ['max_tokens over the limit', 'POST', '/v1/completions', { ...ok, max_tokens: 101 }, 400, 'max_tokens'],
    ['max_tokens fractional', 'POST', '/v1/completions', { ...ok, max_tokens: 2.5 }, 400, 'max_tokens'],
    ['temperature above 2', 'POST', '/v1/completions', { ...ok, temperature: 3 }, 400, 'temperature'],
    ['temperature negative', 'POST', '/v1/completions', { ...ok, temperature: -0.5 }, 400, 'temperature'],
    ['temperature is a string', 'POST', '/v1/completions', { ...ok, temperature: 'hot' }, 400, 'temperature'],
    ['top_p 0', 'POST', '/v1/completions', { ...ok, top_p: 0 }, 400, 'top_p'],
    ['top_p above 1', 'POST', '/v1/completions', { ...ok, top_p: 1.5 }, 400, 'top_p'],
    ['top_k fractional', 'POST', '/v1/completions', { ...ok, top_k: 1.5 }, 400, 'top_k'],
    ['repetition_penalty 0', 'POST', '/v1/completions', { ...ok, repetition_penalty: 0 }, 400, 'repetition_penalty'],
    ['seed is a string', 'POST', '/v1/completions', { ...ok, seed: 'x' }, 400, 'seed'],
    ['logprobs too many', 'POST', '/v1/completions', { ...ok, logprobs: 21 }, 400, 'logprobs'],
    ['logprobs is a boolean', 'POST', '/v1/completions', { ...ok, logprobs: true }, 400, 'logprobs'],
    ['echo is a string', 'POST', '/v1/completions', { ...ok, echo: 'yes' }, 400, 'echo'],
    ['stream is a number', 'POST', '/v1/completions', { ...ok, stream: 1 }, 400, 'stream'],
    ['n = 2', 'POST', '/v1/completions', { ...ok, n: 2 }, 400, 'n'],
    ['best_of = 3', 'POST', '/v1/completions', { ...ok, best_of: 3 }, 400, 'best_of'],
    ['presence_penalty', 'POST', '/v1/completions', { ...ok, presence_penalty: 0.5 }, 400, 'presence_penalty'],
    ['seventeen stop strings', 'POST', '/v1/completions', { ...ok, stop: Array.from({ length: 17 }, (_, i) => `s${i}`) }, 400, 'stop'],
    ['empty stop string', 'POST', '/v1/completions', { ...ok, stop: '' }, 400, 'stop'],
    ['stop is a number', 'POST', '/v1/completions', { ...ok, stop: 3 }, 400, 'stop'],
    ['stream_options without stream', 'POST', '/v1/completions', { ...ok, stream_options: { include_usage: true } }, 400, 'stream_options'],
    ['unknown field', 'POST', '/v1/completions', { ...ok, temprature: 0.5 }, 400, 'temprature'],
    ['model is a number', 'POST', '/v1/completions', { ...ok, model: 7 }, 400, 'model'],
    ['invalid UTF-8 in a string', 'POST', '/v1/completions', Buffer.concat([Buffer.from('{"prompt": "caf'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]), 400, null],
    ['a lone continuation byte', 'POST', '/tokenize', Buffer.concat([Buffer.from('{"prompt": "'), Buffer.from([0x80]), Buffer.from('"}')]), 400, null],
    ['chat: no messages', 'POST', '/v1/chat/completions', { max_tokens: 2 }, 400, 'messages'],
    ['chat: empty messages', 'POST', '/v1/chat/completions', { messages: [] }, 400, 'messages'],
    ['chat: bad role', 'POST', '/v1/chat/completions', { messages: [{ role: 'wizard', content: 'x' }] }, 400, 'messages[0].role'],
    ['chat: content is a number', 'POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 5 }] }, 400, 'messages[0].content'],
    ['chat: unknown field', 'POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], tools: [] }, 400, 'tools'],
    ['chat: top_logprobs without logprobs', 'POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], top_logprobs: 2 }, 400, 'top_logprobs'],
    ['tokenize: no prompt', 'POST', '/tokenize', {}, 400, 'prompt'],
    ['detokenize: ids out of range', 'POST', '/detokenize', { tokens: [999] }, 400, 'tokens'],
    ['body over the limit', 'POST', '/v1/completions', { prompt: 'x'.repeat(5000) }, 413, null],
    ['GET on a POST endpoint', 'GET', '/v1/completions', undefined, 405, null],
    ['POST on a GET endpoint', 'POST', '/v1/models', {}, 405, null],
    ['DELETE', 'DELETE', '/health', undefined, 405, null],
    ['unknown path', 'GET', '/v2/everything', undefined, 404, null],
    ['unknown path with a body', 'POST', '/v1/embeddings', { input: 'x' }, 404, null],
  ];
  for (const [what, method, path, body, status, param] of cases) {
    const r = await call(url, method, path, body);
    assert.equal(r.status, status, `${what}: ${r.text}`);
    assertErrorShape(r.json, what);
    if (param !== null) assert.equal(r.json.error.param, param, `${what}: param`);
    if (status === 405) assert.ok(r.headers.allow, `${what}: Allow header`);
    if (Buffer.isBuffer(body)) assert.equal(r.json.error.code, 'invalid_utf8', what);
  }
  // a body over the limit without Content-Length (chunked) is refused as well
  const chunked = await new Promise<number>((resolve, reject) => {
    const req = httpRequest(new URL('/v1/completions', url), { method: 'POST', headers: { 'Content-Type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    for (let i = 0; i < 10; i++) req.write(`{"prompt": "${'y'.repeat(1000)}"`);
    req.end();
  });
  assert.equal(chunked, 413);
  // still serving, nothing counted as a server error
  const h = await call(url, 'GET', '/health');
  assert.equal(h.status, 200);
  const good = await call(url, 'POST', '/v1/completions', ok);
  assert.equal(good.status, 200, good.text);
  assert.equal(server.stats().serverErrors, 0);
  assert.equal(server.stats().active, 0);
});

test('--api-key: 401 without or with a wrong key, /health open', async () => {
  const { url } = await start({ apiKey: 'k3y' });
  const missing = await call(url, 'GET', '/v1/models');
  assert.equal(missing.status, 401);
  assertErrorShape(missing.json, 'missing key');
  assert.equal(missing.json.error.code, 'invalid_api_key');
  assert.equal(missing.headers['www-authenticate'], 'Bearer');
  assert.equal((await call(url, 'GET', '/v1/models', undefined, { Authorization: 'Bearer k3yy' })).status, 401);
  assert.equal((await call(url, 'GET', '/v1/models', undefined, { Authorization: 'k3y' })).status, 401);
  assert.equal((await call(url, 'POST', '/v1/completions', { prompt: 'hi' }, { Authorization: 'Bearer wrong' })).status, 401);
  // a bad body with a bad key: the key is checked first (nothing is parsed for an unknown caller)
  assert.equal((await call(url, 'POST', '/v1/completions', '{bad', {})).status, 401);
  assert.equal((await call(url, 'GET', '/no/such/path')).status, 401);
  assert.equal((await call(url, 'GET', '/no/such/path', undefined, { Authorization: 'Bearer k3y' })).status, 404);
  assert.equal((await call(url, 'GET', '/v1/models', undefined, { Authorization: 'Bearer k3y' })).status, 200);
  assert.equal((await call(url, 'POST', '/v1/completions', { prompt: 'hi', max_tokens: 1 }, { Authorization: 'bearer k3y' })).status, 200);
  assert.equal((await call(url, 'GET', '/health')).status, 200);
});

test('a full queue answers 503 with Retry-After; the others complete', async () => {
  const { url, server } = await start({ concurrency: 1, queueSize: 1 });
  const body = { prompt: [1, 2, 3], max_tokens: 400, temperature: 0, ignore_eos: true };
  const replies = await Promise.all([0, 1, 2].map(() => call(url, 'POST', '/v1/completions', body)));
  const statuses = replies.map((r) => r.status).sort();
  assert.deepEqual(statuses, [200, 200, 503]);
  const busy = replies.find((r) => r.status === 503)!;
  assertErrorShape(busy.json, '503');
  assert.equal(busy.json.error.code, 'server_overloaded');
  assert.equal(busy.headers['retry-after'], '1');
  assert.equal(server.stats().rejected, 1);
  assert.equal(server.stats().active, 0);
});

test('a client that disconnects stops its generation (streaming and not)', async () => {
  const { url, server } = await start({ concurrency: 2 });
  for (const stream of [true, false]) {
    const before = server.stats();
    const body = JSON.stringify({ prompt: [5, 6, 7], max_tokens: 2000, temperature: 0, ignore_eos: true, stream });
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(new URL('/v1/completions', url), { method: 'POST', headers: { 'Content-Type': 'application/json' } }, (res) => {
        // streaming: leave after the first event
        res.once('data', () => req.destroy());
        res.on('error', () => resolve());
        res.on('close', () => resolve());
      });
      req.on('error', () => resolve());
      req.setTimeout(10_000, () => reject(new Error('no first event')));
      req.end(body);
      // not streaming: leave once the generation is under way
      if (!stream) void until(() => server.stats().generatedTokens > before.generatedTokens + 10).then(() => req.destroy());
    });
    assert.ok(await until(() => server.stats().active === 0), 'the slot is released');
    const after = server.stats();
    assert.equal(after.cancelled, before.cancelled + 1, `stream ${stream}: counted as cancelled`);
    const made = after.generatedTokens - before.generatedTokens;
    assert.ok(made < 2000, `stream ${stream}: stopped early (${made} tokens generated of 2000)`);
    // and the model is not stepping any more
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(server.stats().steps, after.steps);
  }
  assert.equal((await call(url, 'GET', '/health')).status, 200);
});

test('the per-request deadline: 504 while computing or waiting; the server goes on', async () => {
  // 50 000 tokens take seconds on any machine: the 40 ms deadline always comes first
  const { url, server } = await start({ timeoutMs: 40, concurrency: 1, queueSize: 4, maxTokens: 50_000, maxContext: 60_000 });
  const body = { prompt: [1, 2], max_tokens: 50_000, temperature: 0, ignore_eos: true };
  const [a, b] = await Promise.all([call(url, 'POST', '/v1/completions', body), call(url, 'POST', '/v1/completions', body)]);
  for (const r of [a, b]) {
    assert.equal(r.status, 504, r.text);
    assertErrorShape(r.json, '504');
    assert.equal(r.json.error.type, 'timeout_error');
  }
  assert.equal(server.stats().timedOut, 2);
  assert.equal(server.stats().active, 0);
  // a streamed request past its deadline ends with an error event
  const s = await call(url, 'POST', '/v1/completions', { ...body, stream: true });
  assert.equal(s.status, 200);
  assert.match(s.text, /"type":"timeout_error"/);
  assert.doesNotMatch(s.text, /\[DONE\]/);
  // quick requests still fit in the deadline
  assert.equal((await call(url, 'POST', '/v1/completions', { prompt: [1, 2], max_tokens: 1 })).status, 200);
});

test('an exception in a handler is a 500 without internals, and serving goes on', async () => {
  const broken: LoadedTokenizer = {
    ...tokenizer,
    encode(text, options) {
      if (text === 'boom') throw new Error('internal detail that must not leak');
      return tokenizer.encode(text, options);
    },
  };
  const logged: string[] = [];
  const { url, server } = await start({ tokenizer: broken, log: (line) => logged.push(line) });
  const r = await call(url, 'POST', '/v1/completions', { prompt: 'boom' });
  assert.equal(r.status, 500);
  assertErrorShape(r.json, '500');
  assert.equal(r.json.error.type, 'server_error');
  assert.doesNotMatch(r.text, /internal detail/);
  assert.ok(logged.some((l) => l.includes('internal detail')), 'the stack goes to the log');
  assert.equal(server.stats().serverErrors, 1);
  assert.equal((await call(url, 'POST', '/v1/completions', { prompt: 'fine', max_tokens: 2 })).status, 200);
  assert.equal((await call(url, 'GET', '/health')).status, 200);
});

test('a hostile chat template: its request fails with a 500 naming the limit; /health answers meanwhile; the renderer restarts', async () => {
  // the message content picks what the template does
  const hostile =
    "{% set c = messages[0]['content'] %}" +
    "{% if c == 'spin' %}{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}" +
    "{% elif c == 'grow' %}{% for i in range(100000000) %}x{% endfor %}" +
    "{% elif c == 'long' %}{% for i in range(1000) %}0123456789{% endfor %}" +
    "{% elif c == 'raise' %}{{ raise_exception('no ' + c) }}" +
    "{% elif c == 'broken' %}{{ messages() }}" +
    "{% else %}{{ bos_token }}user: {{ c }}{{ eos_token }}assistant:{% endif %}";
  const tok: LoadedTokenizer = { ...tokenizer, chat_template: hostile };
  const chat = (content: string) => ({ messages: [{ role: 'user', content }], max_tokens: 2, temperature: 0 });
  const [a, b, c] = await Promise.all([
    start({ tokenizer: tok, chatTemplateLimits: { timeoutMs: 1000, maxOutputChars: 5000 } }),
    // memory: no time limit to speak of, a small heap
    start({ tokenizer: tok, chatTemplateLimits: { timeoutMs: 60_000, maxHeapMb: 32 } }),
    // the request's deadline stops a rendering too
    start({ tokenizer: tok, timeoutMs: 300, chatTemplateLimits: { timeoutMs: 60_000 } }),
  ]);

  // the three servers' stories run side by side (each renderer starts in its own process)
  await Promise.all([
    (async () => {
      // a template that never ends: /health answers while it renders, then the request fails after the limit
      let spinDone = 0;
      const spinning = call(a.url, 'POST', '/v1/chat/completions', chat('spin')).then((r) => ((spinDone = Date.now()), r));
      await new Promise((r) => setTimeout(r, 50));
      const health = await call(a.url, 'GET', '/health', undefined, {}, 2000);
      assert.equal(health.status, 200);
      assert.equal(spinDone, 0, '/health answered before the rendering was stopped');
      const spin = await spinning;
      assert.equal(spin.status, 500, spin.text);
      assertErrorShape(spin.json, 'spin');
      assert.equal(spin.json.error.code, 'chat_template_timeout');
      assert.match(spin.json.error.message, /chat template.*1000 ms/);

      const long = await call(a.url, 'POST', '/v1/chat/completions', chat('long'));
      assert.equal(long.status, 500, long.text);
      assert.equal(long.json.error.code, 'chat_template_output_too_large');
      assert.match(long.json.error.message, /10000 characters, more than the limit of 5000/);
      const raised = await call(a.url, 'POST', '/v1/chat/completions', chat('raise'));
      assert.equal(raised.status, 400, raised.text);
      assert.equal(raised.json.error.code, 'chat_template_error');
      assert.match(raised.json.error.message, /rejected these messages: no raise/);
      // a template that fails on its own is the model's fault, not the client's: 500
      const broken = await call(a.url, 'POST', '/v1/chat/completions', chat('broken'));
      assert.equal(broken.status, 500, broken.text);
      assert.equal(broken.json.error.type, 'server_error');
      assert.match(broken.json.error.message, /chat template .*failed while rendering/);
      // the renderer that was killed is replaced: an ordinary request renders as before
      const fine = await call(a.url, 'POST', '/v1/chat/completions', chat('hello'));
      assert.equal(fine.status, 200, fine.text);
      assert.equal(fine.json.usage.prompt_tokens, tokenizer.encode('<s>user: hello</s>assistant:', { add_special_tokens: false }).length);
    })(),
    (async () => {
      const grow = await call(b.url, 'POST', '/v1/chat/completions', chat('grow'));
      assert.equal(grow.status, 500, grow.text);
      assertErrorShape(grow.json, 'grow');
      assert.equal(grow.json.error.code, 'chat_template_out_of_memory');
      assert.match(grow.json.error.message, /more than 32 MB/);
      assert.equal((await call(b.url, 'POST', '/v1/chat/completions', chat('hello'))).status, 200);
    })(),
    (async () => {
      const late = await call(c.url, 'POST', '/v1/chat/completions', chat('spin'));
      assert.equal(late.status, 504, late.text);
      assert.equal(late.json.error.type, 'timeout_error');
    })(),
  ]);
  for (const s of [a, b, c]) assert.equal(s.server.stats().active, 0);
});
