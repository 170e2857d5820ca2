// The commands a user runs on a model, run on the scale benchmark's folders: `supra eval` (a perplexity
// pass over a text file) and `supra serve` (one streamed completion), each in its own process, with its
// exit, seconds and peak RSS. The random folders' tokenizer (scripts/random-model.mjs) makes word w<i>
// token i, so the text is any sequence of ids.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BackendName } from '../src/core/backend.js';
import type { WeightType } from '../src/core/weights.js';
import type { CommandCheck, ScaleKind } from '../src/bench/scale.js';

const EVAL_TOKENS = 256;
const SERVE_TOKENS = 8;

/** Peak resident set of a live process (Linux VmHWM), bytes; undefined elsewhere or once it has exited. */
function peakRss(pid: number | undefined): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

const words = (n: number, from: number, vocab: number): string =>
  Array.from({ length: n }, (_, i) => `w${3 + ((from + i * 7919) % (vocab - 3))}`).join(' ');

/** The last few lines of a process's output, for a failed check's message. */
const tail = (text: string): string => text.trim().split('\n').slice(-3).join(' / ');

function runEval(cli: string, dir: string, kind: ScaleKind, dtype: WeightType, env: NodeJS.ProcessEnv, work: string, vocab: number): Promise<CommandCheck> {
  const text = join(work, 'text.txt');
  const json = join(work, 'eval.json');
  writeFileSync(text, words(EVAL_TOKENS, 11, vocab));
  const t0 = performance.now();
  const child = spawn(process.execPath, [cli, 'eval', '--model', dir, '--dtype', dtype, '--text', text, '--json', json], { env });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  let rss: number | undefined;
  const poll = setInterval(() => (rss = peakRss(child.pid) ?? rss), 100); // VmHWM only grows: the last sample is near the peak
  return new Promise((done) => {
    child.on('exit', (code) => {
      clearInterval(poll);
      const seconds = (performance.now() - t0) / 1000;
      if (code !== 0) return done({ command: 'eval', kind, dtype, status: 'error', seconds, maxRssBytes: rss, message: `exit ${code}: ${tail(output)}` });
      const report = JSON.parse(readFileSync(json, 'utf8')) as { perplexity: { overall: { tokens: number; perplexity: number } } };
      const { tokens, perplexity } = report.perplexity.overall;
      done({ command: 'eval', kind, dtype, status: 'ok', seconds, maxRssBytes: rss, detail: `perplexity ${perplexity.toFixed(0)} over ${tokens} tokens` });
    });
  });
}

async function runServe(cli: string, dir: string, kind: ScaleKind, dtype: WeightType, env: NodeJS.ProcessEnv, vocab: number): Promise<CommandCheck> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [cli, 'serve', '--model', dir, '--dtype', dtype, '--port', '0', '--quiet'], { env });
  let output = '';
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  const url = await new Promise<string | null>((done) => {
    const look = (d: Buffer) => {
      output += d.toString();
      const m = / on (http:\/\/\S+)/.exec(output);
      if (m) done(m[1]!);
    };
    child.stdout.on('data', look);
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    void exited.then(() => done(null));
  });
  const fail = (message: string): CommandCheck => ({ command: 'serve', kind, dtype, status: 'error', seconds: (performance.now() - t0) / 1000, message });
  if (!url) return fail(`exit ${await exited}: ${tail(output)}`);
  try {
    const startSeconds = (performance.now() - t0) / 1000;
    const r0 = performance.now();
    const res = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: words(16, 5, vocab), max_tokens: SERVE_TOKENS, temperature: 0, stream: true }),
    });
    if (!res.ok || !res.body) return fail(`HTTP ${res.status}: ${await res.text()}`);
    let pieces = 0, finish: string | null = null, firstMs: number | undefined, body = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      body += Buffer.from(chunk).toString();
      const lines = body.split('\n');
      body = lines.pop()!;
      for (const line of lines) {
        if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
        const choice = (JSON.parse(line.slice(6)) as { choices: Array<{ text: string; finish_reason: string | null }> }).choices[0];
        if (choice?.text) {
          pieces++;
          firstMs ??= performance.now() - r0;
        }
        finish = choice?.finish_reason ?? finish;
      }
    }
    const requestSeconds = (performance.now() - r0) / 1000;
    const check: CommandCheck = {
      command: 'serve', kind, dtype, status: finish === 'length' && pieces > 0 ? 'ok' : 'error', seconds: (performance.now() - t0) / 1000, maxRssBytes: peakRss(child.pid),
      detail: `started in ${startSeconds.toFixed(1)} s; ${SERVE_TOKENS} tokens streamed in ${pieces} pieces, the first after ${((firstMs ?? 0) / 1000).toFixed(2)} s, all in ${requestSeconds.toFixed(2)} s`,
    };
    if (check.status === 'error') check.message = `the stream ended with finish_reason ${finish} after ${pieces} pieces of text`;
    return check;
  } catch (e) {
    return fail((e as Error).message);
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

/** `supra eval` and `supra serve` on one folder at one dtype. */
export async function checkCommands(
  cli: string, dir: string, kind: ScaleKind, dtype: WeightType, vocab: number, backend?: BackendName,
): Promise<CommandCheck[]> {
  const env = { ...process.env, ...(backend ? { SUPRA_BACKEND: backend } : {}) };
  const work = mkdtempSync(join(tmpdir(), 'supra-scale-commands-'));
  try {
    return [await runEval(cli, dir, kind, dtype, env, work, vocab), await runServe(cli, dir, kind, dtype, env, vocab)];
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
