// supra serve --model <dir>: an OpenAI-compatible HTTP server (see src/serve/server.ts).
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { DTYPE_OPTION, FEATURE_MAPS_OPTION, inferenceLoadOptions, QUANTIZE_OPTION, floatOption, intOption, optionsHelp, parse, UsageError, type OptionSpecs } from './args.js';
import { getBackend } from '../core/select.js';
import { loadTokenizer } from '../io/tokenizer.js';
import { loadDecoder } from '../models/auto.js';
import { DEFAULT_CHAT_TEMPLATE_LIMITS } from '../serve/chat.js';
import { createSupraServer, ENDPOINTS } from '../serve/server.js';

/** The flags, each with its --help line (the README lists the same; a test checks both). */
export const SERVE_OPTIONS = {
  model: { type: 'string', value: 'DIR', help: 'model folder (config.json + weights (safetensors or pytorch_model.bin); tokenizer.json for text prompts and chat)' },
  dtype: DTYPE_OPTION,
  quantize: QUANTIZE_OPTION,
  'feature-maps': FEATURE_MAPS_OPTION,
  host: { type: 'string', value: 'HOST', help: 'address to listen on (default 127.0.0.1)' },
  port: { type: 'string', value: 'N', help: 'port to listen on (default 8080; 0 picks a free port)' },
  'api-key': { type: 'string', value: 'KEY', help: 'require "Authorization: Bearer KEY" on every endpoint but GET /health\n(or set SUPRA_API_KEY)' },
  'model-name': { type: 'string', value: 'NAME', help: "the model's id: /v1/models lists it, responses carry it (default: the folder's name)" },
  'model-alias': { type: 'string', multiple: true, value: 'NAME', help: "another name a request's \"model\" may give; any other name is a 404\nmodel_not_found, and a request without \"model\" gets the one served model" },
  concurrency: { type: 'string', value: 'N', help: 'requests computing at once, interleaved token by token (default 4)' },
  queue: { type: 'string', value: 'N', help: 'requests waiting for a slot; beyond that 503 (default 64)' },
  timeout: { type: 'string', value: 'S', help: 'deadline per request in seconds, queueing included; then 504 (default 300)' },
  'max-tokens': { type: 'string', value: 'N', help: 'largest max_tokens a request may ask (default 2048)' },
  'max-prompt-tokens': { type: 'string', value: 'N', help: 'longest prompt (default: max_position_embeddings)' },
  'max-context': { type: 'string', value: 'N', help: 'longest prompt + max_tokens (default: max_position_embeddings for softmax\nmodels, no limit for SUPRA models)' },
  'max-batch': { type: 'string', value: 'N', help: 'prompts per /v1/completions request (default 64)' },
  'max-body-bytes': { type: 'string', value: 'N', help: 'largest request body; larger gets 413 (default 1 MiB)' },
  'prefill-chunk': { type: 'string', value: 'N', help: 'prompt tokens per model step (default 256)' },
  quiet: { type: 'boolean', help: 'no per-request log lines' },
} as const satisfies OptionSpecs;

const T = DEFAULT_CHAT_TEMPLATE_LIMITS;

function serveUsage(): string {
  const routeWidth = Math.max(...ENDPOINTS.map((e) => e.method.length + e.path.length + 1)) + 2;
  const routes = ENDPOINTS.map((e) => `  ${`${e.method} ${e.path}`.padEnd(routeWidth)}${e.about}`);
  return [
    'supra serve --model <dir> [options]',
    '',
    optionsHelp(SERVE_OPTIONS),
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
  options: SERVE_OPTIONS,
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

    const { model } = loadDecoder(dir, inferenceLoadOptions(values));
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
    console.log(`supra serve: ${modelId}${aliases.length ? ` (aliases: ${aliases.join(', ')})` : ''} (${c.architecture}, ${c.num_hidden_layers} layers, vocab ${c.vocab_size}, ${model.store.dtype} weights${model.foldedForInference ? ', feature maps folded' : ''}) on ${url}`);
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
