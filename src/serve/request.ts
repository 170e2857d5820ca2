// Validation of /v1/completions and /v1/chat/completions bodies into typed parameters. Every field is
// checked for type and range; unknown fields are rejected (a typo must not be silently ignored), and the
// OpenAI fields supra does not implement are accepted only at their neutral value. null means "absent",
// as in OpenAI's API.
import { badParam } from './errors.js';

export type Body = Record<string, unknown>;

/** A prompt as sent: text to tokenize, or token ids. */
export type PromptInput = { text: string } | { ids: number[] };

/** How many tokens and how to sample them: what a request asks for and what the engine runs with. */
export interface SamplingParams {
  maxTokens: number;
  /** 0 = greedy. */
  temperature: number;
  topP: number;
  /** 0 = no limit. */
  topK: number;
  repetitionPenalty: number;
  /** Any integer (reduced mod 2^32); null = a random seed. */
  seed: number | null;
}

/** Sampling and stopping, common to both endpoints. */
export interface GenerationParams extends SamplingParams {
  stop: string[];
  ignoreEos: boolean;
  stream: boolean;
  includeUsage: boolean;
}

export interface CompletionParams extends GenerationParams {
  model: string | null;
  prompts: PromptInput[];
  echo: boolean;
  /** Alternatives per token (0 … MAX_LOGPROBS), or null for no logprobs. */
  logprobs: number | null;
}

export interface ChatMessage {
  role: string;
  content: string;
  name?: string;
}

export interface ChatParams extends GenerationParams {
  model: string | null;
  messages: ChatMessage[];
  logprobs: boolean;
  topLogprobs: number;
}

export const MAX_LOGPROBS = 20;
// OpenAI allows 4; lm-eval's generate_until sends a task's stop list plus the eos string, which can be more
export const MAX_STOP = 16;
const DEFAULT_MAX_TOKENS = 16;

// ---------------------------------------------------------------- field readers

function isAbsent(v: unknown): boolean {
  return v === undefined || v === null;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function num(body: Body, key: string, dflt: number, check: (x: number) => boolean, range: string): number {
  const v = body[key];
  if (isAbsent(v)) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw badParam(key, `'${key}' must be a number, got ${typeName(v)}`, 'invalid_type');
  if (!check(v)) throw badParam(key, `'${key}' must be ${range}, got ${v}`, 'invalid_value');
  return v;
}

function int(body: Body, key: string, dflt: number, min: number, max: number): number {
  const v = body[key];
  if (isAbsent(v)) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw badParam(key, `'${key}' must be an integer, got ${typeName(v) === 'number' ? v : typeName(v)}`, 'invalid_type');
  if (v < min || v > max) throw badParam(key, `'${key}' must be in [${min}, ${max}], got ${v}`, 'invalid_value');
  return v;
}

function bool(body: Body, key: string, dflt: boolean): boolean {
  const v = body[key];
  if (isAbsent(v)) return dflt;
  if (typeof v !== 'boolean') throw badParam(key, `'${key}' must be a boolean, got ${typeName(v)}`, 'invalid_type');
  return v;
}

function optString(body: Body, key: string): string | null {
  const v = body[key];
  if (isAbsent(v)) return null;
  if (typeof v !== 'string') throw badParam(key, `'${key}' must be a string, got ${typeName(v)}`, 'invalid_type');
  return v;
}

/** Fields OpenAI defines that supra does not implement: accepted only at their neutral value. */
function neutral(body: Body, key: string, isNeutral: (v: unknown) => boolean, what: string): void {
  const v = body[key];
  if (isAbsent(v)) return;
  if (!isNeutral(v)) throw badParam(key, `'${key}' is not supported by this server (only ${what})`, 'unsupported_parameter');
}

function rejectUnknown(body: Body, known: ReadonlySet<string>): void {
  for (const key of Object.keys(body)) {
    if (!known.has(key)) throw badParam(key, `Unrecognized request argument supplied: ${key}`, 'unknown_parameter');
  }
}

function stopList(body: Body): string[] {
  const v = body.stop;
  if (isAbsent(v)) return [];
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || !list.every((s) => typeof s === 'string')) {
    throw badParam('stop', `'stop' must be a string or an array of strings, got ${typeName(v)}`, 'invalid_type');
  }
  if (list.length > MAX_STOP) throw badParam('stop', `'stop' takes at most ${MAX_STOP} sequences, got ${list.length}`, 'invalid_value');
  if (list.some((s) => s.length === 0)) throw badParam('stop', "'stop' sequences must not be empty", 'invalid_value');
  return list as string[];
}

function includeUsage(body: Body, stream: boolean): boolean {
  const v = body.stream_options;
  if (isAbsent(v)) return false;
  if (!stream) throw badParam('stream_options', "'stream_options' is only allowed when 'stream' is true", 'invalid_value');
  if (typeof v !== 'object' || Array.isArray(v)) throw badParam('stream_options', `'stream_options' must be an object, got ${typeName(v)}`, 'invalid_type');
  const o = v as Body;
  rejectUnknown(o, new Set(['include_usage']));
  return bool(o, 'include_usage', false);
}

/** Fields shared by both endpoints; max_tokens is read by the caller (the endpoints differ). */
function generationParams(body: Body, maxTokens: number): GenerationParams {
  const stream = bool(body, 'stream', false);
  const n = int(body, 'n', 1, 1, 128);
  if (n !== 1) throw badParam('n', `'n' must be 1 on this server, got ${n}`, 'unsupported_parameter');
  neutral(body, 'best_of', (v) => v === 1, 'best_of = 1');
  neutral(body, 'presence_penalty', (v) => v === 0, 'presence_penalty = 0; use repetition_penalty');
  neutral(body, 'frequency_penalty', (v) => v === 0, 'frequency_penalty = 0; use repetition_penalty');
  neutral(body, 'logit_bias', (v) => typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0, 'an empty logit_bias');
  optString(body, 'user');
  optString(body, 'model');
  return {
    maxTokens,
    temperature: num(body, 'temperature', 1, (x) => x >= 0 && x <= 2, 'in [0, 2]'),
    topP: num(body, 'top_p', 1, (x) => x > 0 && x <= 1, 'in (0, 1]'),
    // vLLM's convention: -1 (or 0) means no limit
    topK: Math.max(0, int(body, 'top_k', 0, -1, 1 << 30)),
    repetitionPenalty: num(body, 'repetition_penalty', 1, (x) => x > 0 && x <= 10, 'in (0, 10]'),
    seed: isAbsent(body.seed) ? null : int(body, 'seed', 0, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER),
    stop: stopList(body),
    ignoreEos: bool(body, 'ignore_eos', false),
    stream,
    includeUsage: includeUsage(body, stream),
  };
}

// ---------------------------------------------------------------- /v1/completions

const COMPLETION_FIELDS = new Set([
  'model', 'prompt', 'max_tokens', 'temperature', 'top_p', 'top_k', 'seed', 'repetition_penalty', 'stop', 'n',
  'stream', 'stream_options', 'echo', 'logprobs', 'ignore_eos', 'user', 'best_of', 'presence_penalty',
  'frequency_penalty', 'logit_bias', 'suffix',
]);

function isTokenList(v: unknown): v is number[] {
  return Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number');
}

/** OpenAI's prompt forms: "text", ["text", ...], [ids...], [[ids...], ...]. */
export function parsePrompts(v: unknown, maxBatch: number): PromptInput[] {
  if (isAbsent(v)) throw badParam('prompt', "'prompt' is required", 'missing_required_parameter');
  let prompts: PromptInput[];
  if (typeof v === 'string') prompts = [{ text: v }];
  else if (!Array.isArray(v) || v.length === 0) {
    throw badParam('prompt', `'prompt' must be a string, an array of strings, an array of token ids or an array of such arrays; got ${Array.isArray(v) ? 'an empty array' : typeName(v)}`, 'invalid_type');
  } else if (isTokenList(v)) prompts = [{ ids: v }];
  else {
    prompts = v.map((p, i) => {
      if (typeof p === 'string') return { text: p };
      if (isTokenList(p)) return { ids: p };
      throw badParam('prompt', `'prompt'[${i}] must be a string or a non-empty array of token ids, got ${Array.isArray(p) ? (p.length === 0 ? 'an empty array' : 'an array with non-numbers') : typeName(p)}`, 'invalid_type');
    });
  }
  if (prompts.length > maxBatch) throw badParam('prompt', `at most ${maxBatch} prompts per request, got ${prompts.length}`, 'invalid_value');
  prompts.forEach((p, i) => {
    if ('ids' in p) {
      const bad = p.ids.findIndex((x) => !Number.isInteger(x) || x < 0);
      if (bad >= 0) throw badParam('prompt', `token id ${p.ids[bad]} at position ${bad} of prompt ${i} is not a non-negative integer`, 'invalid_value');
    }
  });
  return prompts;
}

export function parseCompletion(body: Body, limits: { maxTokens: number; maxBatch: number }): CompletionParams {
  rejectUnknown(body, COMPLETION_FIELDS);
  neutral(body, 'suffix', (v) => v === '', "an empty suffix");
  const gen = generationParams(body, int(body, 'max_tokens', Math.min(DEFAULT_MAX_TOKENS, limits.maxTokens), 0, limits.maxTokens));
  return {
    ...gen,
    model: optString(body, 'model'),
    prompts: parsePrompts(body.prompt, limits.maxBatch),
    echo: bool(body, 'echo', false),
    logprobs: isAbsent(body.logprobs) ? null : int(body, 'logprobs', 0, 0, MAX_LOGPROBS),
  };
}

// ---------------------------------------------------------------- /v1/chat/completions

const CHAT_FIELDS = new Set([
  'model', 'messages', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'top_k', 'seed',
  'repetition_penalty', 'stop', 'n', 'stream', 'stream_options', 'logprobs', 'top_logprobs', 'ignore_eos', 'user',
  'presence_penalty', 'frequency_penalty', 'logit_bias',
]);

function messageContent(v: unknown, i: number): string {
  if (typeof v === 'string') return v;
  // [{type: "text", text}] parts; other part types (images, audio) cannot be served by a text model
  if (Array.isArray(v)) {
    return v.map((part, j) => {
      const p = part as Body;
      if (typeof part !== 'object' || part === null || p.type !== 'text' || typeof p.text !== 'string') {
        throw badParam(`messages[${i}].content`, `messages[${i}].content[${j}] must be a {"type": "text", "text": string} part`, 'invalid_value');
      }
      return p.text;
    }).join('');
  }
  throw badParam(`messages[${i}].content`, `messages[${i}].content must be a string or an array of text parts, got ${typeName(v)}`, 'invalid_type');
}

export function parseChat(body: Body, limits: { maxTokens: number }): ChatParams {
  rejectUnknown(body, CHAT_FIELDS);
  const raw = body.messages;
  if (isAbsent(raw)) throw badParam('messages', "'messages' is required", 'missing_required_parameter');
  if (!Array.isArray(raw) || raw.length === 0) throw badParam('messages', `'messages' must be a non-empty array, got ${Array.isArray(raw) ? 'an empty array' : typeName(raw)}`, 'invalid_type');
  const messages = raw.map((m, i): ChatMessage => {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw badParam(`messages[${i}]`, `messages[${i}] must be an object`, 'invalid_type');
    const o = m as Body;
    rejectUnknown(o, new Set(['role', 'content', 'name']));
    if (typeof o.role !== 'string' || !['system', 'developer', 'user', 'assistant'].includes(o.role)) {
      throw badParam(`messages[${i}].role`, `messages[${i}].role must be one of system, developer, user, assistant`, 'invalid_value');
    }
    const msg: ChatMessage = { role: o.role, content: messageContent(o.content, i) };
    if (!isAbsent(o.name)) {
      if (typeof o.name !== 'string') throw badParam(`messages[${i}].name`, `messages[${i}].name must be a string`, 'invalid_type');
      msg.name = o.name;
    }
    return msg;
  });
  if (!isAbsent(body.max_tokens) && !isAbsent(body.max_completion_tokens)) {
    throw badParam('max_tokens', "give either 'max_tokens' or 'max_completion_tokens', not both", 'invalid_value');
  }
  // chat has no 16-token default: up to the server's limit (stopped by eos or stop strings)
  const key = isAbsent(body.max_completion_tokens) ? 'max_tokens' : 'max_completion_tokens';
  const gen = generationParams(body, int(body, key, limits.maxTokens, 1, limits.maxTokens));
  const logprobs = bool(body, 'logprobs', false);
  const topLogprobs = int(body, 'top_logprobs', 0, 0, MAX_LOGPROBS);
  if (!isAbsent(body.top_logprobs) && !logprobs) throw badParam('top_logprobs', "'top_logprobs' needs 'logprobs': true", 'invalid_value');
  return { ...gen, model: optString(body, 'model'), messages, logprobs, topLogprobs };
}

// ---------------------------------------------------------------- /tokenize, /detokenize (vLLM's, used by lm-eval's remote tokenizer)

export function parseTokenize(body: Body): { prompt: string; addSpecialTokens: boolean; model: string | null } {
  rejectUnknown(body, new Set(['prompt', 'add_special_tokens', 'model']));
  const model = optString(body, 'model');
  const prompt = optString(body, 'prompt');
  if (prompt === null) throw badParam('prompt', "'prompt' is required (a string)", 'missing_required_parameter');
  return { prompt, addSpecialTokens: bool(body, 'add_special_tokens', true), model };
}

export function parseDetokenize(body: Body): { tokens: number[]; model: string | null } {
  rejectUnknown(body, new Set(['tokens', 'model']));
  const model = optString(body, 'model');
  const t = body.tokens;
  if (!Array.isArray(t) || !t.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0)) {
    throw badParam('tokens', "'tokens' must be an array of token ids", 'invalid_type');
  }
  return { tokens: t as number[], model };
}
