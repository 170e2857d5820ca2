// An OpenAI-compatible HTTP server over one DecoderLM, on node:http alone. The endpoints are ENDPOINTS
// below (the route table, the 404 message, `supra serve --help` and the README list come from it).
//
// One model is served, under its id and any aliases: a request's `model` must be one of those names (else
// 404 model_not_found, as OpenAI answers) or absent (it is the only model). Responses carry the id.
// Limits: at most `concurrency` requests compute at once, interleaved token by token on the one model
// (engine.ts); `queueSize` more wait; beyond that 503. Request bodies over maxBodyBytes get 413; prompts
// over maxPromptTokens, max_tokens over maxTokens, or prompt + max_tokens over maxContext get 400. Each
// request has a deadline (504 when it passes); a client that disconnects cancels its generation.
// Errors have OpenAI's shape {"error": {message, type, param, code}}; a handler exception is a 500 and
// the server keeps serving.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { LoadedTokenizer } from '../io/tokenizer.js';
import type { DecoderLM } from '../models/decoder.js';
import { ChatTemplate, type ChatTemplateLimits } from './chat.js';
import { Engine, type FinishReason, type RunOptions, type TokenChoice, type TokenLogprob } from './engine.js';
import { ApiError, asApiError, badParam, ClientGone } from './errors.js';
import { parseChat, parseCompletion, parseDetokenize, parseTokenize, type Body, type GenerationParams, type PromptInput } from './request.js';
import { Scheduler } from './scheduler.js';
import { Detokenizer, StopText } from './text.js';

export interface ServeOptions {
  model: DecoderLM;
  /** Needed for text prompts, text output, stop strings and chat; token-id prompts work without. */
  tokenizer?: LoadedTokenizer | null;
  /** The id /v1/models reports and responses carry. Default "supra". */
  modelId?: string;
  /** More names a request's `model` may give (listed by /v1/models too). */
  modelAliases?: readonly string[];
  /** When set, every request but GET /health needs "Authorization: Bearer <apiKey>". */
  apiKey?: string | null;
  /** Requests computing at once, interleaved token by token. Default 4. */
  concurrency?: number;
  /** Requests waiting for a slot; more get 503. Default 64. */
  queueSize?: number;
  /** Largest request body; larger gets 413. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Longest prompt in tokens. Default the config's max_position_embeddings. */
  maxPromptTokens?: number;
  /** Largest max_tokens (and chat's default). Default 2048. */
  maxTokens?: number;
  /** Longest prompt + max_tokens. Default max_position_embeddings for softmax models; none for SUPRA (an RNN). */
  maxContext?: number;
  /** Prompts per /v1/completions request. Default 64. */
  maxBatch?: number;
  /** Deadline per request, from arrival (waiting in the queue counts). Default 300 s. */
  timeoutMs?: number;
  /** Prompt tokens per model step. Default 256. */
  prefillChunk?: number;
  /** Time, heap and output bounds for rendering the chat template (see chat.ts for the defaults). */
  chatTemplateLimits?: ChatTemplateLimits;
  /** One line per request (method, path, status, ms) and server errors. Default: none. */
  log?: ((line: string) => void) | null;
}

/**
 * Every endpoint, in the order help lists them: the server's route table binds a handler to each; the 404
 * for an unknown path, `supra serve --help` and the README list them. `{model}` matches the rest of the
 * path (model ids may hold slashes).
 */
export const ENDPOINTS = [
  { method: 'GET', path: '/health', about: 'liveness and load: {"status": "ok", model, active, queued}; never needs the API key' },
  { method: 'GET', path: '/v1/models', about: 'the served model and its aliases (OpenAI list of model objects)' },
  { method: 'GET', path: '/v1/models/{model}', about: 'one of them by name; any other name is a 404 model_not_found' },
  { method: 'POST', path: '/v1/completions', about: 'text or token-id prompts (batches too), sampling, stop, stream (SSE), echo + logprobs scoring' },
  { method: 'POST', path: '/v1/chat/completions', about: "chat through the tokenizer's chat template (404 when it has none)" },
  { method: 'GET', path: '/tokenizer_info', about: "vLLM's: special tokens, chat template, vocabulary size, context length" },
  { method: 'POST', path: '/tokenize', about: `vLLM's: {"prompt", "add_special_tokens"} to {"tokens", "count", "max_model_len"}` },
  { method: 'POST', path: '/detokenize', about: `vLLM's: {"tokens"} to {"prompt"}` },
] as const;

type Endpoint = (typeof ENDPOINTS)[number];
/** One handler per endpoint, keyed "METHOD path". */
type HandlerTable = { [E in Endpoint as `${E['method']} ${E['path']}`]: Handler };

/** "GET /v1/models/{model}" … as one line, for messages and help. */
export function endpointList(): string {
  return ENDPOINTS.map((e) => `${e.method} ${e.path}`).join(', ');
}

/** The path parameters when `path` matches the pattern (a trailing {name} takes the rest), else null. */
function matchPath(pattern: string, path: string): Record<string, string> | null {
  const brace = pattern.indexOf('{');
  if (brace < 0) return pattern === path ? {} : null;
  const prefix = pattern.slice(0, brace);
  if (!path.startsWith(prefix) || path.length === prefix.length) return null;
  const rest = path.slice(prefix.length);
  let value = rest;
  try {
    value = decodeURIComponent(rest);
  } catch {
    // not valid percent-encoding: the name as written
  }
  return { [pattern.slice(brace + 1, pattern.indexOf('}'))]: value };
}

export interface ServerStats {
  active: number;
  queued: number;
  requests: number;
  /** 503s for a full queue. */
  rejected: number;
  /** Requests whose client went away before the answer was complete. */
  cancelled: number;
  timedOut: number;
  /** 500s. */
  serverErrors: number;
  generatedTokens: number;
  steps: number;
}

export interface SupraServer {
  readonly server: Server;
  readonly engine: Engine;
  readonly modelId: string;
  /** Start listening (default 127.0.0.1, port 8080; port 0 picks a free one). */
  listen(port?: number, host?: string): Promise<{ host: string; port: number; url: string }>;
  /** Stop accepting, drop open connections (cancelling their generations) and wait for the close. */
  close(): Promise<void>;
  stats(): ServerStats;
}

interface Limits {
  maxBodyBytes: number;
  maxPromptTokens: number;
  maxTokens: number;
  maxContext: number;
  maxBatch: number;
  timeoutMs: number;
}

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  signal: AbortSignal;
  /** Path parameters ({model}). */
  params: Record<string, string>;
}

type Handler = (ctx: Ctx) => Promise<void>;

/** OpenAI's completions logprobs. */
interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
}

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new Error(`supra: serve option ${name} must be an integer ≥ 1, got ${v}`);
  return v;
}

export function createSupraServer(options: ServeOptions): SupraServer {
  const model = options.model;
  const config = model.config;
  const tokenizer = options.tokenizer ?? null;
  const modelId = options.modelId ?? 'supra';
  const modelNames = [modelId, ...(options.modelAliases ?? [])];
  for (const [i, name] of modelNames.entries()) {
    if (name.length === 0) throw new Error('supra: serve model names must not be empty');
    if (modelNames.indexOf(name) !== i) throw new Error(`supra: serve model name "${name}" is given twice`);
  }
  const apiKeyDigest = options.apiKey ? digest(options.apiKey) : null;
  const log = options.log ?? null;
  const limits: Limits = {
    maxBodyBytes: positiveInt('maxBodyBytes', options.maxBodyBytes ?? 1 << 20),
    maxPromptTokens: positiveInt('maxPromptTokens', options.maxPromptTokens ?? config.max_position_embeddings),
    maxTokens: positiveInt('maxTokens', options.maxTokens ?? 2048),
    maxContext: options.maxContext ?? (model.recurrent ? Infinity : config.max_position_embeddings),
    maxBatch: positiveInt('maxBatch', options.maxBatch ?? 64),
    timeoutMs: options.timeoutMs ?? 300_000,
  };
  if (!(limits.maxContext >= 1)) throw new Error(`supra: serve option maxContext must be ≥ 1, got ${limits.maxContext}`);
  if (!(limits.timeoutMs > 0)) throw new Error(`supra: serve option timeoutMs must be > 0, got ${limits.timeoutMs}`);
  const engine = new Engine(model, { prefillChunk: options.prefillChunk });
  const scheduler = new Scheduler(options.concurrency ?? 4, options.queueSize ?? 64);
  const detok = new Detokenizer(tokenizer);
  const chat = tokenizer?.chat_template ? new ChatTemplate(tokenizer.chat_template, tokenizer, options.chatTemplateLimits) : null;
  const created = Math.floor(Date.now() / 1000);
  const eosIds = tokenizer ? tokenizer.eos_token_ids : eosOfConfig(config.eos_token_id);
  const counters = { requests: 0, rejected: 0, cancelled: 0, timedOut: 0, serverErrors: 0 };

  // ---------------------------------------------------------------- helpers

  /** A request's `model`: absent or one of the served names; any other is OpenAI's 404. */
  function checkModel(name: string | null): void {
    if (name === null || modelNames.includes(name)) return;
    const served = modelNames.map((n) => `'${n}'`).join(', ');
    throw new ApiError(404, `The model '${name}' does not exist; this server serves ${served}.`, 'invalid_request_error', 'model', 'model_not_found');
  }

  function modelObject(id: string) {
    return {
      id,
      object: 'model',
      created,
      owned_by: 'supra',
      root: modelId,
      max_model_len: Number.isFinite(limits.maxContext) ? limits.maxContext : null,
    };
  }

  function requireTokenizer(what: string, param: string | null = null): LoadedTokenizer {
    if (!tokenizer) throw new ApiError(400, `${what} needs a tokenizer, and this model folder has no tokenizer.json; send token ids`, 'invalid_request_error', param, 'tokenizer_missing');
    return tokenizer;
  }

  /** Prompt → token ids, checked against the vocabulary and the length limits. */
  function promptIds(p: PromptInput, i: number, maxTokens: number): number[] {
    const ids = 'ids' in p ? p.ids : requireTokenizer('A text prompt', 'prompt').encode(p.text);
    if (ids.length === 0) throw badParam('prompt', `prompt ${i} is empty (no tokens)`, 'invalid_value');
    const bad = ids.findIndex((id) => id >= config.vocab_size);
    if (bad >= 0) throw badParam('prompt', `token id ${ids[bad]} at position ${bad} of prompt ${i} is outside the vocabulary [0, ${config.vocab_size})`, 'invalid_value');
    if (ids.length > limits.maxPromptTokens) {
      throw badParam('prompt', `prompt ${i} has ${ids.length} tokens; this server takes at most ${limits.maxPromptTokens}`, 'context_length_exceeded');
    }
    if (ids.length + maxTokens > limits.maxContext) {
      throw badParam('max_tokens', `This model's maximum context length is ${limits.maxContext} tokens; prompt ${i} has ${ids.length} and max_tokens is ${maxTokens}`, 'context_length_exceeded');
    }
    return ids;
  }

  function runOptions(p: GenerationParams, promptLogprobs: number | null, logprobs: number | null): RunOptions {
    return {
      promptLogprobs,
      logprobs,
      maxTokens: p.maxTokens,
      temperature: p.temperature,
      topP: p.topP,
      topK: p.topK,
      repetitionPenalty: p.repetitionPenalty,
      seed: p.seed,
      stopTokenIds: p.ignoreEos ? [] : eosIds,
    };
  }

  /** The alternatives at a position as {token string: logprob}, best first; a repeated string keeps its best. */
  function topDict(top: TokenChoice[], before: readonly number[]): Record<string, number> {
    const out = Object.create(null) as Record<string, number>;
    for (const t of top) {
      const key = detok.display(t.id, detok.piece(before, t.id));
      if (!(key in out)) out[key] = t.logprob;
    }
    return out;
  }

  // ---------------------------------------------------------------- endpoints

  const health: Handler = async ({ res }) => {
    sendJson(res, 200, { status: 'ok', model: modelId, active: scheduler.activeCount, queued: scheduler.queuedCount });
  };

  const models: Handler = async ({ res }) => {
    sendJson(res, 200, { object: 'list', data: modelNames.map(modelObject) });
  };

  const model1: Handler = async ({ res, params }) => {
    checkModel(params.model!);
    sendJson(res, 200, modelObject(params.model!));
  };

  const completions: Handler = async (ctx) => {
    const p = parseCompletion(await readJson(ctx.req, limits.maxBodyBytes), { maxTokens: limits.maxTokens, maxBatch: limits.maxBatch });
    checkModel(p.model);
    if (p.stop.length > 0) requireTokenizer('stop', 'stop');
    const prompts = p.prompts.map((x, i) => promptIds(x, i, p.maxTokens));
    const release = await scheduler.acquire(ctx.signal);
    try {
      const id = `cmpl-${randomUUID().replace(/-/g, '')}`;
      const head = { id, object: 'text_completion', created: Math.floor(Date.now() / 1000), model: modelId };
      const stream = p.stream ? new EventStream(ctx.res, ctx.signal) : null;
      const choices: unknown[] = [];
      let completionTokens = 0;
      for (let index = 0; index < prompts.length; index++) {
        const ids = prompts[index]!;
        const scoring = p.echo && p.logprobs !== null;
        const lp: CompletionLogprobs | null = p.logprobs !== null ? { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] } : null;
        const promptPieces = p.echo ? detok.pieces(ids) : [];
        const promptText = promptPieces.join('');
        const base = promptText.length; // completion text offsets start after the echoed prompt
        const stopText = new StopText(p.stop);
        const context = ids.slice(-8); // ids before the next token, for its text piece
        let echoSent = !p.echo;
        const sendEcho = async () => {
          if (echoSent) return;
          echoSent = true;
          if (stream) await stream.send({ ...head, choices: [{ index, text: promptText, logprobs: lp ? sliceLogprobs(lp, 0) : null, finish_reason: null }] });
        };
        const result = await engine.run(ids, runOptions(p, scoring ? p.logprobs : null, p.logprobs), {
          onPrompt: async (entries: TokenLogprob[]) => {
            let offset = 0;
            for (let t = 0; t < ids.length; t++) {
              lp!.tokens.push(detok.display(ids[t]!, promptPieces[t]!));
              lp!.token_logprobs.push(t === 0 ? null : entries[t - 1]!.logprob);
              lp!.top_logprobs.push(t === 0 ? null : topDict(entries[t - 1]!.top, ids.slice(Math.max(0, t - 8), t)));
              lp!.text_offset.push(offset);
              offset += promptPieces[t]!.length;
            }
            await sendEcho();
          },
          onToken: async (token: TokenLogprob) => {
            await sendEcho();
            const piece = detok.piece(context, token.id);
            const from = lp ? lp.tokens.length : 0;
            if (lp) {
              lp.tokens.push(detok.display(token.id, piece));
              lp.token_logprobs.push(token.logprob);
              lp.top_logprobs.push(topDict(token.top, context));
              lp.text_offset.push(base + stopText.text.length);
            }
            context.push(token.id);
            if (context.length > 8) context.shift();
            const delta = stopText.push(piece);
            if (stream && (delta !== '' || lp)) {
              await stream.send({ ...head, choices: [{ index, text: delta, logprobs: lp ? sliceLogprobs(lp, from) : null, finish_reason: null }] });
            }
            return !stopText.stopped;
          },
        }, ctx.signal);
        await sendEcho();
        completionTokens += result.completionTokens;
        const finish: FinishReason = stopText.stopped ? 'stop' : result.finishReason;
        if (stream) {
          await stream.send({ ...head, choices: [{ index, text: stopText.flush(), logprobs: null, finish_reason: finish }] });
        } else {
          choices.push({ index, text: promptText + stopText.text, logprobs: lp, finish_reason: finish });
        }
      }
      const promptTokens = prompts.reduce((s, x) => s + x.length, 0);
      const usage = { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
      if (stream) {
        if (p.includeUsage) await stream.send({ ...head, choices: [], usage });
        stream.done();
      } else sendJson(ctx.res, 200, { ...head, choices, usage });
    } finally {
      release();
    }
  };

  const chatCompletions: Handler = async (ctx) => {
    if (!chat) {
      throw new ApiError(404, `The model ${modelId} has no chat template (no chat_template in tokenizer_config.json, no chat_template.jinja), so /v1/chat/completions is not available; use /v1/completions.`, 'invalid_request_error', null, 'chat_template_missing');
    }
    const p = parseChat(await readJson(ctx.req, limits.maxBodyBytes), { maxTokens: limits.maxTokens });
    checkModel(p.model);
    const ids = await chat.encode(p.messages, ctx.signal);
    // the request's max_tokens may default to the server limit: fit it to the context instead of failing
    const maxTokens = Math.max(1, Math.min(p.maxTokens, limits.maxContext - ids.length));
    promptIds({ ids }, 0, maxTokens);
    const release = await scheduler.acquire(ctx.signal);
    try {
      const id = `chatcmpl-${randomUUID().replace(/-/g, '')}`;
      const head = { id, object: p.stream ? 'chat.completion.chunk' : 'chat.completion', created: Math.floor(Date.now() / 1000), model: modelId };
      const stream = p.stream ? new EventStream(ctx.res, ctx.signal) : null;
      const stopText = new StopText(p.stop);
      const context = ids.slice(-8);
      const content: unknown[] = [];
      if (stream) await stream.send({ ...head, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }] });
      const result = await engine.run(ids, { ...runOptions(p, null, p.logprobs ? p.topLogprobs : null), maxTokens }, {
        onToken: async (token: TokenLogprob) => {
          const piece = detok.piece(context, token.id);
          let entry: unknown = null;
          if (p.logprobs) {
            const alt = (t: TokenChoice) => {
              const s = detok.display(t.id, detok.piece(context, t.id));
              return { token: s, logprob: t.logprob, bytes: [...Buffer.from(s, 'utf8')] };
            };
            entry = { ...alt(token), top_logprobs: token.top.map(alt) };
            content.push(entry);
          }
          context.push(token.id);
          if (context.length > 8) context.shift();
          const delta = stopText.push(piece);
          if (stream && (delta !== '' || entry)) {
            await stream.send({ ...head, choices: [{ index: 0, delta: { content: delta }, logprobs: entry ? { content: [entry] } : null, finish_reason: null }] });
          }
          return !stopText.stopped;
        },
      }, ctx.signal);
      const finish: FinishReason = stopText.stopped ? 'stop' : result.finishReason;
      const usage = { prompt_tokens: ids.length, completion_tokens: result.completionTokens, total_tokens: ids.length + result.completionTokens };
      if (stream) {
        const rest = stopText.flush();
        await stream.send({ ...head, choices: [{ index: 0, delta: rest ? { content: rest } : {}, logprobs: null, finish_reason: finish }] });
        if (p.includeUsage) await stream.send({ ...head, choices: [], usage });
        stream.done();
      } else {
        sendJson(ctx.res, 200, {
          ...head,
          choices: [{ index: 0, message: { role: 'assistant', content: stopText.text }, logprobs: p.logprobs ? { content } : null, finish_reason: finish }],
          usage,
        });
      }
    } finally {
      release();
    }
  };

  const tokenizerInfo: Handler = async ({ res }) => {
    const tok = requireTokenizerOr404();
    const name = (id: number | null) => (id === null ? null : tok.idToToken(id));
    sendJson(res, 200, {
      eos_token: name(tok.eos_token_id),
      bos_token: name(tok.bos_token_id),
      pad_token: name(tok.pad_token_id),
      unk_token: name(tok.unk_token_id),
      chat_template: tok.chat_template,
      vocab_size: tok.vocab_size,
      model_max_length: Number.isFinite(limits.maxContext) ? limits.maxContext : null,
    });
  };

  const tokenize: Handler = async ({ req, res }) => {
    const tok = requireTokenizerOr404();
    const { prompt, addSpecialTokens, model } = parseTokenize(await readJson(req, limits.maxBodyBytes));
    checkModel(model);
    const tokens = tok.encode(prompt, { add_special_tokens: addSpecialTokens });
    sendJson(res, 200, { tokens, count: tokens.length, max_model_len: Number.isFinite(limits.maxContext) ? limits.maxContext : null });
  };

  const detokenize: Handler = async ({ req, res }) => {
    const tok = requireTokenizerOr404();
    const { tokens, model } = parseDetokenize(await readJson(req, limits.maxBodyBytes));
    checkModel(model);
    const bad = tokens.find((t) => t >= tok.vocab_size);
    if (bad !== undefined) throw badParam('tokens', `token id ${bad} is outside the tokenizer's vocabulary [0, ${tok.vocab_size})`, 'invalid_value');
    sendJson(res, 200, { prompt: tok.decode(tokens) });
  };

  function requireTokenizerOr404(): LoadedTokenizer {
    if (!tokenizer) throw new ApiError(404, 'This model folder has no tokenizer.json, so the tokenizer endpoints are not available.', 'invalid_request_error', null, 'tokenizer_missing');
    return tokenizer;
  }

  const handlers: HandlerTable = {
    'GET /health': health,
    'GET /v1/models': models,
    'GET /v1/models/{model}': model1,
    'POST /v1/completions': completions,
    'POST /v1/chat/completions': chatCompletions,
    'GET /tokenizer_info': tokenizerInfo,
    'POST /tokenize': tokenize,
    'POST /detokenize': detokenize,
  };

  /** The handler for this method and path, with its path parameters; 404 / 405 otherwise. */
  function route(method: string, path: string, res: ServerResponse): { handler: Handler; params: Record<string, string> } {
    const allowed: string[] = [];
    for (const e of ENDPOINTS) {
      const params = matchPath(e.path, path);
      if (!params) continue;
      if (e.method === method) return { handler: handlers[`${e.method} ${e.path}` as keyof HandlerTable], params };
      allowed.push(e.method);
    }
    if (allowed.length === 0) throw new ApiError(404, `Unknown path ${path}. Endpoints: ${endpointList()}.`, 'not_found_error', null, 'unknown_url');
    res.setHeader('Allow', allowed.join(', '));
    throw new ApiError(405, `Method ${method} is not allowed on ${path}; use ${allowed.join(' or ')}.`, 'invalid_request_error', null, 'method_not_allowed');
  }

  // ---------------------------------------------------------------- the request cycle

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    counters.requests++;
    const t0 = performance.now();
    const controller = new AbortController();
    const ctx: Ctx = { req, res, signal: controller.signal, params: {} };
    // the response closing before it finished means the client went away: stop its generation
    res.on('close', () => {
      if (!res.writableFinished) controller.abort(new ClientGone());
    });
    const timer = setTimeout(() => {
      controller.abort(new ApiError(504, `The request did not finish within ${limits.timeoutMs / 1000} s.`, 'timeout_error', null, 'timeout'));
    }, limits.timeoutMs);
    let path = '?';
    try {
      path = new URL(req.url ?? '/', 'http://localhost').pathname.replace(/\/+$/, '') || '/';
      // the key is checked before anything else, so an unknown caller learns nothing (not even which paths exist)
      if (apiKeyDigest && path !== '/health') checkAuth(req, apiKeyDigest);
      const { handler, params } = route(req.method ?? '', path, res);
      ctx.params = params;
      await handler(ctx);
    } catch (e) {
      fail(ctx, e);
    } finally {
      clearTimeout(timer);
      log?.(`${req.method} ${path} ${res.headersSent ? res.statusCode : '-'} ${(performance.now() - t0).toFixed(0)} ms`);
    }
  }

  function fail({ req, res }: Ctx, thrown: unknown): void {
    if (thrown instanceof ClientGone) {
      counters.cancelled++;
      res.destroy();
      return;
    }
    const err = asApiError(thrown);
    if (err.status === 503) counters.rejected++;
    if (err.status === 504) counters.timedOut++;
    if (err.status >= 500 && err.status !== 503 && err.status !== 504) {
      counters.serverErrors++;
      log?.(`supra serve: ${req.method} ${req.url}: ${(thrown as Error)?.stack ?? String(thrown)}`);
    }
    if (res.destroyed) return;
    if (!res.headersSent) {
      if (err.status === 413) {
        // the client may still be sending: read and drop the rest, then close the connection
        res.setHeader('Connection', 'close');
        req.resume();
      }
      if (err.status === 503) res.setHeader('Retry-After', '1');
      if (err.status === 401) res.setHeader('WWW-Authenticate', 'Bearer');
      sendJson(res, err.status, err.body());
    } else if (!res.writableEnded) {
      // mid-stream: an error event in the stream, then the end
      res.end(`data: ${JSON.stringify(err.body())}\n\n`);
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      // handle() catches everything; this is the last line of defence
      log?.(`supra serve: unexpected: ${(e as Error)?.stack ?? String(e)}`);
      if (!res.headersSent) sendJson(res, 500, asApiError(e).body());
      else res.destroy();
    });
  });
  server.headersTimeout = 30_000;
  server.requestTimeout = Math.min(limits.timeoutMs, 120_000);

  return {
    server,
    engine,
    modelId,
    async listen(port = 8080, host = '127.0.0.1') {
      server.listen(port, host);
      await once(server, 'listening');
      const addr = server.address() as AddressInfo;
      const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      return { host: addr.address, port: addr.port, url: `http://${shown}:${addr.port}` };
    },
    async close() {
      chat?.close();
      if (!server.listening) return;
      const closed = once(server, 'close');
      server.close();
      server.closeAllConnections();
      await closed;
    },
    stats(): ServerStats {
      return { active: scheduler.activeCount, queued: scheduler.queuedCount, ...counters, generatedTokens: engine.generatedTokens, steps: engine.steps };
    },
  };
}

// ---------------------------------------------------------------- HTTP helpers

function eosOfConfig(v: number | number[] | null): number[] {
  if (v === null) return [];
  return Array.isArray(v) ? v : [v];
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** Constant-time comparison of the bearer token with the key (through digests of equal length). */
function checkAuth(req: IncomingMessage, keyDigest: Buffer): void {
  const header = req.headers.authorization ?? '';
  const m = /^Bearer\s+(.+)$/i.exec(header.trim());
  if (!m || !timingSafeEqual(digest(m[1]!), keyDigest)) {
    throw new ApiError(401, m ? 'Incorrect API key provided.' : 'Missing API key: send the header "Authorization: Bearer <key>".', 'authentication_error', null, 'invalid_api_key');
  }
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** The request body as a JSON object: 413 past the limit, 400 when it is not UTF-8, not JSON or not an object. */
async function readJson(req: IncomingMessage, limit: number): Promise<Body> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  await new Promise<void>((resolve, reject) => {
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        cleanup();
        reject(tooLarge(limit));
      } else chunks.push(c);
    };
    const onEnd = () => {
      cleanup();
      resolve();
    };
    const onGone = () => {
      cleanup();
      reject(new ClientGone());
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onGone);
      req.off('close', onClose);
    };
    const onClose = () => {
      if (!req.complete) onGone();
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onGone);
    req.on('close', onClose);
  });
  let text: string;
  try {
    // fatal: bytes that are not UTF-8 are refused (as training refuses them), not replaced by U+FFFD
    text = UTF8.decode(Buffer.concat(chunks));
  } catch {
    throw new ApiError(400, 'The request body is not valid UTF-8. Send JSON encoded as UTF-8.', 'invalid_request_error', null, 'invalid_utf8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ApiError(400, `We could not parse the JSON body of your request (${(e as Error).message}). Send a JSON object.`, 'invalid_request_error', null, 'invalid_json');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ApiError(400, `The request body must be a JSON object, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}.`, 'invalid_request_error', null, 'invalid_json');
  }
  return value as Body;
}

function tooLarge(limit: number): ApiError {
  return new ApiError(413, `The request body is larger than ${limit} bytes.`, 'invalid_request_error', null, 'request_too_large');
}

/** Server-sent events in OpenAI's format: "data: <json>\n\n" per chunk, "data: [DONE]" at the end. */
class EventStream {
  constructor(private readonly res: ServerResponse, private readonly signal: AbortSignal) {
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.flushHeaders();
  }

  /** Write one event; waits while the client is slow to read (aborts with the request). */
  async send(value: unknown): Promise<void> {
    if (this.res.write(`data: ${JSON.stringify(value)}\n\n`)) return;
    try {
      await once(this.res, 'drain', { signal: this.signal });
    } catch (e) {
      throw this.signal.aborted ? this.signal.reason : e;
    }
  }

  done(): void {
    this.res.end('data: [DONE]\n\n');
  }
}

/** The entries of one token (from index `from` on), as a streamed chunk carries them. */
function sliceLogprobs(lp: CompletionLogprobs, from: number): CompletionLogprobs {
  return {
    tokens: lp.tokens.slice(from),
    token_logprobs: lp.token_logprobs.slice(from),
    top_logprobs: lp.top_logprobs.slice(from),
    text_offset: lp.text_offset.slice(from),
  };
}
