// supra serve --model <dir>: an OpenAI-compatible HTTP server (see src/serve/server.ts).
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { floatOption, intOption, parse, UsageError, type Options } from './args.js';
import { getBackend } from '../core/select.js';
import { loadTokenizer } from '../io/tokenizer.js';
import { loadDecoder } from '../models/auto.js';
import { DEFAULT_CHAT_TEMPLATE_LIMITS } from '../serve/chat.js';
import { createSupraServer, ENDPOINTS } from '../serve/server.js';

/** The flags; HELP must describe each (the type says so), and --help and the README list them. */
export const SERVE_OPTIONS = {
  model: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  'api-key': { type: 'string' },
  'model-name': { type: 'string' },
  'model-alias': { type: 'string', multiple: true },
  concurrency: { type: 'string' },
  queue: { type: 'string' },
  timeout: { type: 'string' },
  'max-tokens': { type: 'string' },
  'max-prompt-tokens': { type: 'string' },
  'max-context': { type: 'string' },
  'max-batch': { type: 'string' },
  'max-body-bytes': { type: 'string' },
  'prefill-chunk': { type: 'string' },
  quiet: { type: 'boolean' },
} as const satisfies Options;

const T = DEFAULT_CHAT_TEMPLATE_LIMITS;
/** [argument, description lines] of each flag. */
const HELP: { [K in keyof typeof SERVE_OPTIONS]: [string, string] } = {
  model: ['DIR', 'model folder (config.json + safetensors; tokenizer.json for text prompts and chat)'],
  host: ['HOST', 'address to listen on (default 127.0.0.1)'],
  port: ['N', 'port to listen on (default 8080; 0 picks a free port)'],
  'api-key': ['KEY', 'require "Authorization: Bearer KEY" on every endpoint but GET /health\n(or set SUPRA_API_KEY)'],
  'model-name': ['NAME', "the model's id: /v1/models lists it, responses carry it (default: the folder's name)"],
  'model-alias': ['NAME', "another name a request's \"model\" may give (repeat for more); any other name is\na 404 model_not_found, and a request without \"model\" gets the one served model"],
  concurrency: ['N', 'requests computing at once, interleaved token by token (default 4)'],
  queue: ['N', 'requests waiting for a slot; beyond that 503 (default 64)'],
  timeout: ['S', 'deadline per request in seconds, queueing included; then 504 (default 300)'],
  'max-tokens': ['N', 'largest max_tokens a request may ask (default 2048)'],
  'max-prompt-tokens': ['N', 'longest prompt (default: max_position_embeddings)'],
  'max-context': ['N', 'longest prompt + max_tokens (default: max_position_embeddings for softmax\nmodels, no limit for SUPRA models)'],
  'max-batch': ['N', 'prompts per /v1/completions request (default 64)'],
  'max-body-bytes': ['N', 'largest request body; larger gets 413 (default 1 MiB)'],
  'prefill-chunk': ['N', 'prompt tokens per model step (default 256)'],
  quiet: ['', 'no per-request log lines'],
};

function serveUsage(): string {
  const flags = Object.entries(HELP).map(([name, [arg, text]]) => [`--${name}${arg ? ` ${arg}` : ''}`, text.split('\n')] as const);
  const width = Math.max(...flags.map(([f]) => f.length)) + 2;
  const lines = flags.flatMap(([f, text]) => text.map((t, i) => `  ${(i === 0 ? f : '').padEnd(width)}${t}`));
  const routeWidth = Math.max(...ENDPOINTS.map((e) => e.method.length + e.path.length + 1)) + 2;
  const routes = ENDPOINTS.map((e) => `  ${`${e.method} ${e.path}`.padEnd(routeWidth)}${e.about}`);
  return [
    'supra serve --model <dir> [options]',
    '',
    ...lines,
    '',
    'Endpoints:',
    ...routes,
    '',
    `The chat template renders in a child process: more than ${T.timeoutMs / 1000} s, ${T.maxHeapMb} MB of heap or`,
    `${T.maxOutputChars / 2 ** 20} Mi characters of output fails that request with a 500 (the server keeps answering).`,
  ].join('\n');
}

export const command = {
  summary: 'serve a model over HTTP with an OpenAI-compatible API (completions, chat, scoring)',
  usage: serveUsage(),
  async run(argv: string[]): Promise<void> {
    const { values, positionals } = parse(argv, SERVE_OPTIONS, 'serve');
    if (positionals.length > 0) throw new UsageError(`serve takes no positional arguments (got "${positionals[0]}"); give the folder with --model`);
    if (!values.model) throw new UsageError('serve needs --model <dir>');
    const dir = resolve(values.model);
    const port = intOption(values.port, 'port', 8080, 0);
    if (port > 65535) throw new UsageError(`--port must be at most 65535, got ${port}`);
    const timeout = floatOption(values.timeout, 'timeout', 300);
    if (!(timeout > 0)) throw new UsageError(`--timeout must be > 0 seconds, got ${timeout}`);
    const apiKey = values['api-key'] ?? process.env.SUPRA_API_KEY ?? null;
    if (apiKey !== null && apiKey.length === 0) throw new UsageError('--api-key must not be empty');
    const opt = (name: string, v: string | undefined) => (v === undefined ? undefined : intOption(v, name, 0, 1));

    const { model } = loadDecoder(dir);
    const tokenizer = existsSync(join(dir, 'tokenizer.json')) ? loadTokenizer(dir) : null;
    const modelId = values['model-name'] ?? basename(dir);
    const aliases = values['model-alias'] ?? [];
    for (const name of [modelId, ...aliases]) if (name.length === 0) throw new UsageError('--model-name and --model-alias must not be empty');
    if (new Set([modelId, ...aliases]).size !== aliases.length + 1) throw new UsageError(`--model-alias names must differ from each other and from the model's id "${modelId}"`);
    const quiet = values.quiet ?? false;
    const supra = createSupraServer({
      model,
      tokenizer,
      modelId,
      modelAliases: aliases,
      apiKey,
      concurrency: opt('concurrency', values.concurrency),
      queueSize: values.queue === undefined ? undefined : intOption(values.queue, 'queue', 0, 0),
      timeoutMs: timeout * 1000,
      maxTokens: opt('max-tokens', values['max-tokens']),
      maxPromptTokens: opt('max-prompt-tokens', values['max-prompt-tokens']),
      maxContext: opt('max-context', values['max-context']),
      maxBatch: opt('max-batch', values['max-batch']),
      maxBodyBytes: opt('max-body-bytes', values['max-body-bytes']),
      prefillChunk: opt('prefill-chunk', values['prefill-chunk']),
      log: quiet ? null : (line) => console.error(line),
    });
    const { url } = await supra.listen(port, values.host ?? '127.0.0.1');
    const c = model.config;
    const b = getBackend();
    console.log(`supra serve: ${modelId}${aliases.length ? ` (aliases: ${aliases.join(', ')})` : ''} (${c.architecture}, ${c.num_hidden_layers} layers, vocab ${c.vocab_size}) on ${url}`);
    console.log(`  tokenizer: ${tokenizer ? (tokenizer.chat_template ? 'yes, with chat template' : 'yes, no chat template') : 'none (token-id prompts only)'}; auth: ${apiKey ? 'API key required' : 'none'}; backend: ${b.name} (${b.threads} thread${b.threads > 1 ? 's' : ''})`);
    await new Promise<void>((done) => {
      const stop = (sig: string) => {
        console.error(`supra serve: ${sig}, shutting down`);
        supra.close().then(() => {
          model.free();
          done();
        }, done);
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
  },
};
