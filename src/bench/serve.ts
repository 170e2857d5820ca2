// Loopback load test of `supra serve` with autocannon: N concurrent clients for a bounded time against
// /v1/completions on a configuration-S model with random weights (the fixture sizes are too small to
// say anything), reporting request throughput, generated tokens/s, p50/p99 latency, errors, and the
// process memory before and after. The server and the clients share this process (and its event loop),
// as a single-process deployment with a local client would.
//
//   node dist/src/bench/serve.js [--seconds 10] [--connections 8] [--kind supra|teacher] [--max-tokens 16]
//                            [--prompt-tokens 32] [--concurrency 4] [--workload generate|score]
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Mt19937 } from '../core/random.js';
import { arenaStats } from '../core/memory.js';
import { getBackend } from '../core/select.js';
import { createSupraServer } from '../serve/server.js';
import { configS, randomModel, type RawConfig } from './model.js';

/** The part of autocannon's result this bench reads (the package ships no types). */
interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  requests: { total: number; average: number };
  latency: { p50: number; p99: number; average: number; max: number };
}
type Autocannon = (opts: Record<string, unknown>, cb: (err: Error | null, result: AutocannonResult) => void) => unknown;

export interface ServeBenchOptions {
  /** Which configuration-S model: the SUPRA RNN (default) or the softmax teacher. */
  kind?: 'supra' | 'teacher';
  /** Concurrent client connections. Default 8. */
  connections?: number;
  /** Seconds of load. Default 10. */
  seconds?: number;
  /** Tokens generated per request (ignore_eos). Default 16. */
  maxTokens?: number;
  /** Prompt length in tokens (random ids). Default 32. */
  promptTokens?: number;
  /** The server's compute slots (interleaved requests). Default 4. */
  concurrency?: number;
  /** generate: greedy completions; score: echo + logprobs 1 + max_tokens 0 (lm-eval's loglikelihood). */
  workload?: 'generate' | 'score';
  /** The model's config.json object. Default: configuration S. */
  config?: RawConfig;
  /** Print the figures (default true). */
  print?: boolean;
  log?: (line: string) => void;
}

export interface ServeBenchResult {
  kind: string;
  workload: string;
  backend: string;
  connections: number;
  seconds: number;
  requests: number;
  requestsPerS: number;
  generatedTokensPerS: number;
  promptTokensPerS: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** Connection errors + timeouts + non-2xx answers. */
  errors: number;
  non2xx: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  heapBeforeMiB: number;
  heapAfterMiB: number;
  arenaLiveBeforeMiB: number;
  arenaLiveAfterMiB: number;
}

const MiB = 1024 * 1024;

export async function benchServe(options: ServeBenchOptions = {}): Promise<ServeBenchResult> {
  const kind = options.kind ?? 'supra';
  const connections = options.connections ?? 8;
  const seconds = options.seconds ?? 10;
  const maxTokens = options.maxTokens ?? 16;
  const promptTokens = options.promptTokens ?? 32;
  const workload = options.workload ?? 'generate';
  const require = createRequire(import.meta.url);
  let autocannon: Autocannon;
  try {
    autocannon = require('autocannon') as Autocannon;
  } catch (e) {
    // a development dependency: an installed package may not have it
    throw new Error(`supra: the serve load test needs the autocannon package (npm install autocannon): ${(e as Error).message.split('\n')[0]}`);
  }

  const model = randomModel(configS(kind, options.config));
  const server = createSupraServer({ model, modelId: `config-S-${kind}`, concurrency: options.concurrency ?? 4, queueSize: 256, maxTokens: Math.max(maxTokens, 1) });
  const { url } = await server.listen(0, '127.0.0.1');
  const rng = new Mt19937(1);
  const prompt = Array.from({ length: promptTokens }, () => rng.nextU32() % model.config.vocab_size);
  const body = workload === 'score'
    ? { prompt, max_tokens: 0, echo: true, logprobs: 1, temperature: 0 }
    : { prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true };

  // one warm-up request (first-call allocations), then the memory baseline
  await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) }).then((r) => r.text());
  global.gc?.();
  const m0 = process.memoryUsage();
  const a0 = arenaStats();
  const s0 = server.stats();
  let result: AutocannonResult;
  try {
    result = await new Promise<AutocannonResult>((resolve, reject) => {
      autocannon({
        url: `${url}/v1/completions`,
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
        connections,
        duration: seconds,
        timeout: 60,
      }, (err, res) => (err ? reject(err) : resolve(res)));
    });
  } finally {
    await server.close();
  }
  // requests cut off at the end unwind at their next step: wait for them before measuring
  for (let i = 0; i < 1000 && server.stats().active + server.stats().queued > 0; i++) await new Promise((r) => setTimeout(r, 10));
  const s1 = server.stats();
  global.gc?.();
  const m1 = process.memoryUsage();
  const a1 = arenaStats();
  model.free();

  const completed = result['2xx'];
  const out: ServeBenchResult = {
    kind,
    workload,
    backend: `${getBackend().name} (${getBackend().threads} threads)`,
    connections,
    seconds: result.duration,
    requests: completed,
    requestsPerS: completed / result.duration,
    generatedTokensPerS: (s1.generatedTokens - s0.generatedTokens) / result.duration,
    promptTokensPerS: (completed * promptTokens) / result.duration,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
    non2xx: result.non2xx,
    rssBeforeMiB: m0.rss / MiB,
    rssAfterMiB: m1.rss / MiB,
    heapBeforeMiB: m0.heapUsed / MiB,
    heapAfterMiB: m1.heapUsed / MiB,
    arenaLiveBeforeMiB: a0.liveBytes / MiB,
    arenaLiveAfterMiB: a1.liveBytes / MiB,
  };
  if (options.print ?? true) printServeBench(out, options.log);
  return out;
}

export function printServeBench(r: ServeBenchResult, log: (line: string) => void = (l) => console.log(l)): void {
  const what = r.workload === 'score' ? 'scoring (echo + logprobs, max_tokens 0)' : 'greedy completions';
  log(`serve, configuration S ${r.kind}, ${what}, ${r.connections} clients for ${r.seconds.toFixed(1)} s on ${r.backend}:`);
  log(`  ${r.requests} requests, ${r.requestsPerS.toFixed(1)} req/s, ${r.generatedTokensPerS.toFixed(0)} generated tokens/s, ${r.promptTokensPerS.toFixed(0)} prompt tokens/s`);
  log(`  latency p50 ${r.latencyP50Ms.toFixed(0)} ms, p99 ${r.latencyP99Ms.toFixed(0)} ms; errors ${r.errors} (non-2xx ${r.non2xx})`);
  log(`  memory: rss ${r.rssBeforeMiB.toFixed(1)} → ${r.rssAfterMiB.toFixed(1)} MiB, JS heap ${r.heapBeforeMiB.toFixed(1)} → ${r.heapAfterMiB.toFixed(1)} MiB, arena live ${r.arenaLiveBeforeMiB.toFixed(1)} → ${r.arenaLiveAfterMiB.toFixed(1)} MiB`);
}

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const num = (name: string) => (flag(name) === undefined ? undefined : Number(flag(name)));
  await benchServe({
    kind: (flag('kind') as 'supra' | 'teacher' | undefined) ?? 'supra',
    seconds: num('seconds'),
    connections: num('connections'),
    maxTokens: num('max-tokens'),
    promptTokens: num('prompt-tokens'),
    concurrency: num('concurrency'),
    workload: (flag('workload') as 'generate' | 'score' | undefined) ?? 'generate',
  });
}
