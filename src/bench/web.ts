// Batch-1 greedy decode in the browser (the playground in headless Chromium) against Node's wasm backend,
// on the same model folders and the same wasm kernels: the embedded teacher and its linearization.
// The comparison times the library alone on both sides: a tight decode loop from a fresh state, no eos
// stop, best of several rounds (in the page's model Worker; in this process). Beside it, the rate the
// playground streams at, with its token messages, text decoding and chart drawing sharing the cores.
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { getBackend, setBackend } from '../core/select.js';
import { EMBEDDED_TEACHER_DIR } from '../models/embedded.js';
import { linearizeFolder } from '../models/linearize.js';
import { loadDecoder } from '../models/auto.js';
import { loadTokenizer } from '../io/tokenizer.js';
import { GenerationState } from '../generate/state.js';
import { decodeTokens } from '../generate/generate.js';
import type { DecoderLM } from '../models/decoder.js';
import { findChromium, NO_CHROMIUM, openPlayground } from './browser.js';

export interface BrowserDecodeRow {
  model: 'supra' | 'teacher';
  tokens: number;
  nodeTokensPerS: number;
  browserTokensPerS: number;
  /** browser / Node. */
  ratio: number;
  /** The playground streaming the same number of tokens, page included (steps' time only). */
  pageTokensPerS: number;
}

export interface BrowserBenchResult {
  nodeThreads: number;
  browserThreads: number;
  rows: BrowserDecodeRow[];
}

export interface BrowserBenchOptions {
  /** Tokens decoded per round (after the prompt). Default 64. */
  tokens?: number;
  /** Rounds per side; the best counts. Default 5. */
  rounds?: number;
  log?: (line: string) => void;
}

const PROMPT = 'The jury said that';

/** One round of Node's decode on the wasm backend: tokens/s of a tight loop from a fresh state. */
function nodeRound(model: DecoderLM, prompt: number[], tokens: number): number {
  const state = new GenerationState(model, 1);
  try {
    state.append([prompt]);
    const steps = decodeTokens(state, { max_new_tokens: tokens, do_sample: false, eos_token_id: null });
    const t0 = performance.now();
    let n = 0;
    while (!steps.next().done) n++;
    return n / ((performance.now() - t0) / 1000);
  } finally {
    state.free();
  }
}

/** The part of the page's window.playground (web/app.js) the benchmark drives. */
type Api = {
  load(s: unknown): Promise<{ runtime: { threads: number } }>;
  generate(p: string, n: number): Promise<unknown>;
  tokensPerSecond(): Record<string, number>;
  benchDecode(slot: string, p: string, n: number, rounds: number): Promise<number>;
};

/** Browser and Node decode, side by side. Throws (with what to install) when no Chromium is found. */
export async function benchBrowserDecode(options: BrowserBenchOptions = {}): Promise<BrowserBenchResult> {
  const tokens = options.tokens ?? 64, rounds = options.rounds ?? 5;
  const log = options.log ?? ((l: string) => console.log(l));
  if (!findChromium()) throw new Error(`supra: ${NO_CHROMIUM}`);
  const tmp = mkdtempSync(join(tmpdir(), 'supra-bench-web-'));
  const original = getBackend().name;
  try {
    const supraDir = join(tmp, 'supra');
    linearizeFolder(EMBEDDED_TEACHER_DIR, supraDir, { seed: 0 });
    const dirs = { supra: supraDir, teacher: EMBEDDED_TEACHER_DIR };
    setBackend('wasm');
    const nodeThreads = getBackend().threads;
    const pg = await openPlayground([
      { name: 'supra', dir: supraDir, role: 'supra', note: 'the embedded teacher, linearized' },
      { name: 'teacher', dir: EMBEDDED_TEACHER_DIR, role: 'teacher', note: 'the embedded teacher' },
    ]);
    const rows: BrowserDecodeRow[] = [];
    let browserThreads = 0;
    try {
      for (const model of ['supra', 'teacher'] as const) {
        const page = pg.page;
        const loaded = await page.evaluate((url) => (window as unknown as { playground: Api }).playground.load({ model: url, teacher: null }), `/models/${model}`);
        browserThreads = loaded.runtime.threads;
        // rounds alternate between the browser and Node, so a neighbour's load falls on both alike
        const nodeModel = loadDecoder(dirs[model]).model;
        let browser = 0, node = 0;
        try {
          const prompt = loadTokenizer(dirs[model]).encode(PROMPT);
          for (let r = 0; r < rounds; r++) {
            browser = Math.max(browser, await page.evaluate(
              ([p, n]) => (window as unknown as { playground: Api }).playground.benchDecode('model', p as string, n as number, 1),
              [PROMPT, tokens] as const,
            ));
            node = Math.max(node, nodeRound(nodeModel, prompt, tokens));
          }
        } finally {
          nodeModel.free();
        }
        let streamed = 0;
        for (let r = 0; r < Math.min(rounds, 3); r++) {
          const tps = await page.evaluate(
            async ([p, n]) => {
              const api = (window as unknown as { playground: Api }).playground;
              // every round streams all its tokens, as the tight loops do: no stop at the end of text
              (document.getElementById('stop-at-eos') as HTMLInputElement).checked = false;
              await api.generate(p as string, n as number);
              return api.tokensPerSecond().model ?? 0;
            },
            [PROMPT, tokens] as const,
          );
          streamed = Math.max(streamed, tps);
        }
        rows.push({ model, tokens, nodeTokensPerS: node, browserTokensPerS: browser, ratio: browser / node, pageTokensPerS: streamed });
        log(
          `${model}: browser ${browser.toFixed(1)} tokens/s, Node (wasm) ${node.toFixed(1)} tokens/s: ${((100 * browser) / node).toFixed(0)}% of Node's; ` +
            `the playground streams at ${streamed.toFixed(1)} tokens/s`,
        );
      }
      if (pg.log.errors.length > 0) throw new Error(`supra: the playground logged errors: ${pg.log.errors.join('; ')}`);
    } finally {
      await pg.close();
    }
    return { nodeThreads, browserThreads, rows };
  } finally {
    setBackend(original);
    rmSync(tmp, { recursive: true, force: true });
  }
}
