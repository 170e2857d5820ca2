// The OpenAI-compatible server over real HTTP on loopback, on the fixture teacher: scoring (echo +
// logprobs) against a direct forward, greedy generation against the reference continuation, streaming,
// seeded sampling, stop strings, batches, concurrency, chat, model names and aliases, and the CLI (its
// help and the README list every flag and endpoint).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gqaDir } from './helpers/fixture.js';
import { call, parseEvents, TEMPLATE, writeModelFolder, writeTinyTokenizer } from './helpers/serve.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { loadTokenizer, type LoadedTokenizer } from '../src/io/tokenizer.js';
import { loadDecoder } from '../src/models/auto.js';
import { linearize } from '../src/models/linearize.js';
import type { DecoderLM } from '../src/models/decoder.js';
import { createSupraServer, ENDPOINTS, type SupraServer } from '../src/serve/server.js';
import { command as serveCommand, SERVE_OPTIONS } from '../src/cli/serve.js';
import { DEFAULT_CHAT_TEMPLATE_LIMITS } from '../src/serve/chat.js';

const root = mkdtempSync(join(tmpdir(), 'supra-serve-api-'));
let model: DecoderLM;
let tokenizer: LoadedTokenizer;
let withTok: SupraServer; // tokenizer with chat template
let bare: SupraServer; // no tokenizer: token ids in, "token_id:N" names out
let base = '';
let bareBase = '';

const inputs = JSON.parse(readFileSync(join(gqaDir, 'inputs.json'), 'utf8')) as {
  input_ids: number[][];
  prompt_for_greedy: number[][];
};
const expected = readSafetensors(join(gqaDir, 'expected.safetensors'));

before(async () => {
  model = loadDecoder(join(gqaDir, 'teacher')).model;
  writeTinyTokenizer(join(root, 'tok'));
  tokenizer = loadTokenizer(join(root, 'tok'));
  withTok = createSupraServer({ model, tokenizer, modelId: 'tiny', concurrency: 3 });
  bare = createSupraServer({ model, modelId: 'bare' });
  base = (await withTok.listen(0)).url;
  bareBase = (await bare.listen(0)).url;
});

after(async () => {
  await withTok?.close();
  await bare?.close();
  model?.free();
  rmSync(root, { recursive: true, force: true });
});

/** float64 log-softmax of every row of the direct (training) forward of one sequence. */
function referenceLogprobs(ids: number[]): Float64Array[] {
  const V = model.config.vocab_size;
  const logits = model.forward(ids, 1, ids.length);
  const rows: Float64Array[] = [];
  for (let t = 0; t < ids.length; t++) {
    const row = new Float64Array(V);
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits[t * V + v]!);
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(logits[t * V + v]! - max);
    const lse = max + Math.log(sum);
    for (let v = 0; v < V; v++) row[v] = logits[t * V + v]! - lse;
    rows.push(row);
  }
  model.freeActivations();
  return rows;
}

test('GET /health and /v1/models', async () => {
  const h = await call(base, 'GET', '/health');
  assert.equal(h.status, 200);
  assert.equal(h.json.status, 'ok');
  const m = await call(base, 'GET', '/v1/models');
  assert.equal(m.status, 200);
  assert.equal(m.json.object, 'list');
  assert.deepEqual(m.json.data.map((d: { id: string; object: string }) => [d.id, d.object]), [['tiny', 'model']]);
  assert.equal(m.json.data[0].max_model_len, 2048);
});

test('model names: GET /v1/models/{model}; an unknown model is a 404 model_not_found on every endpoint; aliases; no model is the one model', async () => {
  const aliased = createSupraServer({ model, tokenizer, modelId: 'tiny', modelAliases: ['gpt-3.5-turbo', 'org/tiny-v1'] });
  try {
    const url = (await aliased.listen(0)).url;
    const list = await call(url, 'GET', '/v1/models');
    assert.deepEqual(list.json.data.map((d: { id: string }) => d.id), ['tiny', 'gpt-3.5-turbo', 'org/tiny-v1']);
    // the official client's models.retrieve: GET /v1/models/{id}, ids with a slash as they are
    for (const id of ['tiny', 'gpt-3.5-turbo', 'org/tiny-v1', 'org%2Ftiny-v1']) {
      const one = await call(url, 'GET', `/v1/models/${id}`);
      assert.equal(one.status, 200, `${id}: ${one.text}`);
      assert.equal(one.json.id, decodeURIComponent(id));
      assert.equal(one.json.object, 'model');
      assert.equal(one.json.root, 'tiny');
    }
    const notFound = {
      error: { message: "The model 'gpt-4' does not exist; this server serves 'tiny', 'gpt-3.5-turbo', 'org/tiny-v1'.", type: 'invalid_request_error', param: 'model', code: 'model_not_found' },
    };
    assert.deepEqual((await call(url, 'GET', '/v1/models/gpt-4')).json, notFound);
    assert.equal((await call(url, 'GET', '/v1/models/gpt-4')).status, 404);
    const messages = [{ role: 'user', content: 'hi' }];
    for (const [path, body] of [
      ['/v1/completions', { prompt: 'hi', max_tokens: 1 }],
      ['/v1/chat/completions', { messages, max_tokens: 1 }],
      ['/tokenize', { prompt: 'hi' }],
      ['/detokenize', { tokens: [5] }],
    ] as const) {
      const r = await call(url, 'POST', path, { ...body, model: 'gpt-4' });
      assert.equal(r.status, 404, `${path}: ${r.text}`);
      assert.deepEqual(r.json, notFound, path);
      // an alias and no model at all are served by the one model; responses carry its id
      for (const named of [{ model: 'gpt-3.5-turbo' }, {}]) {
        const ok = await call(url, 'POST', path, { ...body, ...named });
        assert.equal(ok.status, 200, `${path} ${JSON.stringify(named)}: ${ok.text}`);
        if (path.startsWith('/v1/')) assert.equal(ok.json.model, 'tiny');
      }
    }
  } finally {
    await aliased.close();
  }
  assert.throws(() => createSupraServer({ model, modelId: 'tiny', modelAliases: ['tiny'] }), /"tiny" is given twice/);
});

test('every serve flag and endpoint is in supra serve --help and the README; the 404 lists the endpoints', async () => {
  const readme = readFileSync(resolve(dirname(fileURLToPath(import.meta.url)), '../../README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### `supra serve`'), readme.indexOf('### `supra eval`'));
  for (const flag of Object.keys(SERVE_OPTIONS)) {
    assert.match(serveCommand.usage, new RegExp(`--${flag}\\b`), `--${flag} in --help`);
    assert.ok(section.includes(`--${flag}`), `--${flag} in the README's serve section`);
  }
  // the chat template's limits as chat.ts has them
  const t = DEFAULT_CHAT_TEMPLATE_LIMITS;
  for (const limit of [`${t.timeoutMs / 1000} s`, `${t.maxHeapMb} MB`, `${t.maxOutputChars / 2 ** 20} Mi characters`]) {
    assert.ok(serveCommand.usage.includes(limit) && section.includes(limit), `${limit} in --help and the README`);
  }
  const unknown = await call(base, 'GET', '/v1/nothing');
  for (const e of ENDPOINTS) {
    const name = `${e.method} ${e.path}`;
    assert.ok(serveCommand.usage.includes(name), `${name} in --help`);
    assert.ok(section.includes(name), `${name} in the README's serve section`);
    assert.ok(unknown.json.error.message.includes(name), `${name} in the 404 message`);
  }
});

test('echo + logprobs + max_tokens 0 scores the prompt: the log-softmax of a direct forward', async () => {
  const ids = inputs.input_ids[0]!;
  const r = await call(bareBase, 'POST', '/v1/completions', { prompt: ids, max_tokens: 0, echo: true, logprobs: 3, temperature: 0 });
  assert.equal(r.status, 200, r.text);
  const c = r.json.choices[0];
  assert.equal(c.index, 0);
  assert.equal(c.finish_reason, 'length');
  assert.equal(r.json.object, 'text_completion');
  assert.deepEqual(r.json.usage, { prompt_tokens: ids.length, completion_tokens: 0, total_tokens: ids.length });
  const lp = c.logprobs;
  assert.deepEqual(lp.tokens, ids.map((id) => `token_id:${id}`));
  assert.equal(lp.token_logprobs.length, ids.length);
  assert.equal(lp.token_logprobs[0], null);
  assert.equal(lp.top_logprobs[0], null);
  assert.equal(lp.text_offset.length, ids.length);
  const ref = referenceLogprobs(ids);
  let worst = 0;
  for (let t = 1; t < ids.length; t++) {
    worst = Math.max(worst, Math.abs(lp.token_logprobs[t] - ref[t - 1]![ids[t]!]!));
    // the 3 best alternatives, best first, with their values
    const order = Array.from(ref[t - 1]!.keys()).sort((a, b) => ref[t - 1]![b]! - ref[t - 1]![a]!).slice(0, 3);
    const top = lp.top_logprobs[t] as Record<string, number>;
    assert.deepEqual(Object.keys(top), order.map((id) => `token_id:${id}`), `top-3 at position ${t}`);
    for (const id of order) worst = Math.max(worst, Math.abs(top[`token_id:${id}`]! - ref[t - 1]![id]!));
  }
  assert.ok(worst < 1e-4, `max |logprob − reference| = ${worst}`);
});

test('scoring and generation on a SUPRA model: prefill in odd pieces equals one forward', async () => {
  const supra = linearize(model, { seed: 1000 });
  const server = createSupraServer({ model: supra, prefillChunk: 5 });
  try {
    const { url } = await server.listen(0);
    const ids = inputs.input_ids[1]!;
    const r = await call(url, 'POST', '/v1/completions', { prompt: ids, max_tokens: 3, echo: true, logprobs: 2, temperature: 0, ignore_eos: true });
    assert.equal(r.status, 200, r.text);
    const lp = r.json.choices[0].logprobs;
    assert.equal(lp.token_logprobs.length, ids.length + 3);
    const V = supra.config.vocab_size;
    const logits = supra.forward(ids, 1, ids.length);
    let worst = 0;
    for (let t = 1; t < ids.length; t++) {
      const row = Array.from(logits.subarray((t - 1) * V, t * V));
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
      worst = Math.max(worst, Math.abs(lp.token_logprobs[t] - (row[ids[t]!]! - lse)));
    }
    assert.ok(worst < 1e-4, `SUPRA: max |logprob − forward| = ${worst}`);
    // the first generated token is the argmax of the forward's last row
    const last = Array.from(logits.subarray((ids.length - 1) * V, ids.length * V));
    assert.equal(lp.tokens[ids.length], `token_id:${last.indexOf(Math.max(...last))}`);
    assert.equal(server.stats().active, 0);
  } finally {
    await server.close();
    supra.free();
  }
});

test("lm-eval local-completions' loglikelihood request: batch of token lists, max_tokens 1, its parse_logprobs", async () => {
  // what lm_eval/models/openai_completions.py sends with tokenized_requests=True ...
  const [a, b] = inputs.input_ids as [number[], number[]];
  const ctxlens = [20, 25];
  const body = { model: 'bare', prompt: [a, b.slice(0, 30)], temperature: 0, max_tokens: 1, logprobs: 1, seed: 1234, echo: true };
  const r = await call(bareBase, 'POST', '/v1/completions', body);
  assert.equal(r.status, 200, r.text);
  // ... and how it reads the answer: sorted by index, sum(token_logprobs[ctxlen:-1]), is_greedy from top_logprobs
  const choices = [...r.json.choices].sort((x, y) => x.index - y.index);
  assert.equal(choices.length, 2);
  [a, b.slice(0, 30)].forEach((ids, i) => {
    const lp = choices[i].logprobs;
    assert.equal(lp.token_logprobs.length, ids.length + 1, 'prompt tokens and the one generated token');
    const cont = lp.token_logprobs.slice(ctxlens[i], -1) as number[];
    const tops = lp.top_logprobs.slice(ctxlens[i], -1) as Record<string, number>[];
    const sum = cont.reduce((s, x) => s + x, 0);
    const isGreedy = cont.every((x, j) => x === Math.max(...Object.values(tops[j]!)));
    const ref = referenceLogprobs(ids);
    let refSum = 0;
    let refGreedy = true;
    for (let t = ctxlens[i]!; t < ids.length; t++) {
      const row = ref[t - 1]!;
      refSum += row[ids[t]!]!;
      if (row.indexOf(Math.max(...row)) !== ids[t]) refGreedy = false;
    }
    assert.ok(Math.abs(sum - refSum) < 1e-3, `logprob sum ${sum} vs ${refSum}`);
    assert.equal(isGreedy, refGreedy);
  });
  // a continuation that is the greedy one must read as greedy: score the reference greedy continuation
  const prompt = inputs.prompt_for_greedy[0]!;
  const greedy = Array.from(expected.get('teacher.greedy_tokens')!.data, Number);
  const g = await call(bareBase, 'POST', '/v1/completions', { ...body, prompt: [[...prompt, ...greedy]] });
  const lp = g.json.choices[0].logprobs;
  const cont = lp.token_logprobs.slice(prompt.length, -1) as number[];
  const tops = lp.top_logprobs.slice(prompt.length, -1) as Record<string, number>[];
  assert.equal(cont.length, greedy.length);
  assert.ok(cont.every((x, j) => x === Math.max(...Object.values(tops[j]!))), 'is_greedy holds for the greedy continuation');
});

test('greedy generation from token ids matches the reference continuation', async () => {
  const prompt = inputs.prompt_for_greedy[0]!;
  const greedy = Array.from(expected.get('teacher.greedy_tokens')!.data, Number);
  const r = await call(bareBase, 'POST', '/v1/completions', { prompt, max_tokens: greedy.length, temperature: 0, logprobs: 0, ignore_eos: true });
  assert.equal(r.status, 200, r.text);
  const c = r.json.choices[0];
  assert.deepEqual(c.logprobs.tokens, greedy.map((id) => `token_id:${id}`));
  assert.equal(c.text, '', 'no tokenizer: no text');
  assert.equal(c.finish_reason, 'length');
  assert.equal(r.json.usage.completion_tokens, greedy.length);
});

test('text prompts: text equals the decoded continuation; streaming gives the same text, then [DONE]', async () => {
  const body = { prompt: 'the rain in spain', max_tokens: 24, temperature: 0, ignore_eos: true, logprobs: 0 };
  const r = await call(base, 'POST', '/v1/completions', body);
  assert.equal(r.status, 200, r.text);
  const c = r.json.choices[0];
  const promptIds = tokenizer.encode('the rain in spain');
  assert.equal(r.json.usage.prompt_tokens, promptIds.length);
  // the model's greedy ids, run directly
  const state = model.newState(1);
  let logits = model.step(promptIds, 1, promptIds.length, state);
  const V = model.config.vocab_size;
  const out: number[] = [];
  for (let i = 0; i < 24; i++) {
    const row = logits.subarray((logits.length / V - 1) * V);
    let best = 0;
    for (let v = 1; v < V; v++) if (row[v]! > row[best]!) best = v;
    out.push(best);
    logits = model.step([best], 1, 1, state);
  }
  state.free();
  const all = tokenizer.decode([...promptIds, ...out], { skip_special_tokens: true });
  const head = tokenizer.decode(promptIds, { skip_special_tokens: true });
  assert.ok(all.startsWith(head));
  assert.equal(c.text, all.slice(head.length));
  assert.equal(c.logprobs.tokens.length, 24);
  assert.equal(c.logprobs.text_offset[0], 0);

  const s = await call(base, 'POST', '/v1/completions', { ...body, stream: true, stream_options: { include_usage: true } });
  assert.equal(s.status, 200);
  assert.match(String(s.headers['content-type']), /text\/event-stream/);
  const { events, done } = parseEvents(s.text);
  assert.ok(done, 'ends with data: [DONE]');
  const usage = events.pop();
  assert.deepEqual(usage.choices, []);
  assert.deepEqual(usage.usage, r.json.usage);
  assert.ok(events.every((e) => e.object === 'text_completion' && e.id === events[0].id));
  assert.equal(events.map((e) => e.choices[0].text).join(''), c.text);
  assert.equal(events[events.length - 1].choices[0].finish_reason, 'length');
  assert.deepEqual(events.flatMap((e) => e.choices[0].logprobs?.tokens ?? []), c.logprobs.tokens);

  // echo: the prompt text comes first, with its tokens (the first without a logprob)
  const e = await call(base, 'POST', '/v1/completions', { ...body, echo: true, logprobs: 1, max_tokens: 4 });
  const ec = e.json.choices[0];
  assert.ok(ec.text.startsWith('the rain in spain'), ec.text);
  assert.equal(ec.logprobs.tokens.length, promptIds.length + 4);
  assert.equal(ec.logprobs.tokens[0], '<s>');
  const offsets = ec.logprobs.text_offset as number[];
  assert.deepEqual(offsets.slice(0, 2), [0, 0], '<s> is not in the text');
  assert.ok(offsets.every((o, i) => i === 0 || o >= offsets[i - 1]!));
  assert.equal(offsets[promptIds.length], 'the rain in spain'.length, 'the first new token starts after the echoed prompt');
});

test('seeded sampling is reproducible and depends on the seed; stop strings cut the text', async () => {
  const body = { prompt: 'once upon a time', max_tokens: 30, temperature: 1.3, top_k: 40, top_p: 0.95, repetition_penalty: 1.2, ignore_eos: true };
  const one = await call(base, 'POST', '/v1/completions', { ...body, seed: 7 });
  const two = await call(base, 'POST', '/v1/completions', { ...body, seed: 7 });
  const other = await call(base, 'POST', '/v1/completions', { ...body, seed: 8 });
  assert.equal(one.status, 200, one.text);
  assert.equal(one.json.choices[0].text, two.json.choices[0].text);
  assert.notEqual(one.json.choices[0].text, other.json.choices[0].text);

  const text = one.json.choices[0].text as string;
  const stop = text.slice(10, 13);
  const cut = text.indexOf(stop);
  const stopped = await call(base, 'POST', '/v1/completions', { ...body, seed: 7, stop: [stop, 'never-there'] });
  assert.equal(stopped.json.choices[0].text, text.slice(0, cut));
  assert.equal(stopped.json.choices[0].finish_reason, 'stop');
  const streamed = await call(base, 'POST', '/v1/completions', { ...body, seed: 7, stop, stream: true });
  const { events } = parseEvents(streamed.text);
  assert.equal(events.map((e) => e.choices[0].text).join(''), text.slice(0, cut));
  assert.equal(events[events.length - 1].choices[0].finish_reason, 'stop');
});

test('a batch of prompts and concurrent requests give what each gives alone', async () => {
  const prompts = ['hello there', 'a b c d', 'the quick brown fox', 'one more prompt', 'zz', 'lorem ipsum dolor'];
  const req = (p: string, i: number) => ({ prompt: p, max_tokens: 20, temperature: 0.9, seed: 100 + i, ignore_eos: true, logprobs: 1 });
  const alone: string[] = [];
  for (let i = 0; i < prompts.length; i++) {
    const r = await call(base, 'POST', '/v1/completions', req(prompts[i]!, i));
    alone.push(JSON.stringify([r.json.choices[0].text, r.json.choices[0].logprobs]));
  }
  // 6 at once on 3 slots: interleaved steps, 3 queued
  const together = await Promise.all(prompts.map((p, i) => call(base, 'POST', '/v1/completions', req(p, i))));
  together.forEach((r, i) => {
    assert.equal(r.status, 200, r.text);
    assert.equal(JSON.stringify([r.json.choices[0].text, r.json.choices[0].logprobs]), alone[i], `request ${i}`);
  });
  // a batch in one request (greedy: no seed sharing question), choices in order
  const batch = await call(base, 'POST', '/v1/completions', { prompt: prompts.slice(0, 3), max_tokens: 8, temperature: 0, ignore_eos: true });
  assert.equal(batch.status, 200, batch.text);
  assert.deepEqual(batch.json.choices.map((c: { index: number }) => c.index), [0, 1, 2]);
  for (let i = 0; i < 3; i++) {
    const single = await call(base, 'POST', '/v1/completions', { prompt: prompts[i], max_tokens: 8, temperature: 0, ignore_eos: true });
    assert.equal(batch.json.choices[i].text, single.json.choices[0].text);
  }
  assert.equal(withTok.stats().active, 0);
});

test('chat completions render the template; without one the endpoint is a 404', async () => {
  const messages = [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi there' }];
  const r = await call(base, 'POST', '/v1/chat/completions', { model: 'tiny', messages, max_tokens: 6, temperature: 0, ignore_eos: true });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.object, 'chat.completion');
  assert.equal(r.json.choices[0].message.role, 'assistant');
  assert.equal(typeof r.json.choices[0].message.content, 'string');
  const rendered = '<s>system: be brief</s>user: hi there</s>assistant:';
  assert.equal(r.json.usage.prompt_tokens, tokenizer.encode(rendered, { add_special_tokens: false }).length);
  // the same prompt through /v1/completions as token ids gives the same text
  const ids = tokenizer.encode(rendered, { add_special_tokens: false });
  const same = await call(base, 'POST', '/v1/completions', { prompt: ids, max_tokens: 6, temperature: 0, ignore_eos: true });
  assert.equal(r.json.choices[0].message.content, same.json.choices[0].text);
  // streaming: role first, then content deltas, finish, [DONE]
  const s = await call(base, 'POST', '/v1/chat/completions', { messages, max_tokens: 6, temperature: 0, ignore_eos: true, stream: true, logprobs: true, top_logprobs: 2 });
  const { events, done } = parseEvents(s.text);
  assert.ok(done);
  assert.equal(events[0].choices[0].delta.role, 'assistant');
  assert.ok(events.every((e) => e.object === 'chat.completion.chunk'));
  assert.equal(events.map((e) => e.choices[0].delta.content ?? '').join(''), r.json.choices[0].message.content);
  assert.equal(events.filter((e) => e.choices[0].logprobs).length, 6);
  assert.equal(events[1].choices[0].logprobs.content[0].top_logprobs.length, 2);

  const none = await call(bareBase, 'POST', '/v1/chat/completions', { messages });
  assert.equal(none.status, 404);
  assert.equal(none.json.error.code, 'chat_template_missing');
  assert.match(none.json.error.message, /no chat template/);
});

test("vLLM's tokenizer endpoints (lm-eval's remote tokenizer)", async () => {
  const info = await call(base, 'GET', '/tokenizer_info');
  assert.equal(info.status, 200);
  assert.equal(info.json.eos_token, '</s>');
  assert.equal(info.json.bos_token, '<s>');
  assert.equal(info.json.chat_template, TEMPLATE);
  const t = await call(base, 'POST', '/tokenize', { prompt: 'hello world', add_special_tokens: false });
  assert.deepEqual(t.json.tokens, tokenizer.encode('hello world', { add_special_tokens: false }));
  const d = await call(base, 'POST', '/detokenize', { tokens: t.json.tokens });
  assert.equal(d.json.prompt, 'hello world');
  assert.equal((await call(bareBase, 'GET', '/tokenizer_info')).status, 404);
  const text = await call(bareBase, 'POST', '/v1/completions', { prompt: 'needs a tokenizer' });
  assert.equal(text.status, 400);
  assert.equal(text.json.error.code, 'tokenizer_missing');
});

test('supra serve: the CLI listens on loopback, answers, and shuts down on SIGTERM', async () => {
  const dir = join(root, 'model');
  writeModelFolder(dir);
  const cli = resolve(dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');
  const child = spawn(process.execPath, [cli, 'serve', '--model', dir, '--port', '0', '--quiet', '--api-key', 'sekrit', '--model-alias', 'a1', '--model-alias', 'a2'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const url = await new Promise<string>((res, rej) => {
      let out = '';
      let err = '';
      const timer = setTimeout(() => rej(new Error(`no listening line within 30 s: ${out} ${err}`)), 30_000);
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          res(m[1]!);
        }
      });
      child.stderr.on('data', (c: Buffer) => (err += c.toString()));
      child.on('exit', (code) => rej(new Error(`exited with ${code}: ${err}`)));
    });
    assert.equal((await call(url, 'GET', '/health')).status, 200);
    assert.equal((await call(url, 'GET', '/v1/models')).status, 401);
    const r = await call(url, 'POST', '/v1/completions', { prompt: 'hi', max_tokens: 3, model: 'a2' }, { Authorization: 'Bearer sekrit' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.model, 'model');
    const names = await call(url, 'GET', '/v1/models', undefined, { Authorization: 'Bearer sekrit' });
    assert.deepEqual(names.json.data.map((d: { id: string }) => d.id), ['model', 'a1', 'a2']);
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([exited, new Promise<string>((res) => (timer = setTimeout(() => res('timeout'), 10_000)))]);
    clearTimeout(timer);
    assert.equal(code, 0);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
