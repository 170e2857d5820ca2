// Decode speed and memory against context length, batch 1, configuration S (vocab 4096, hidden 256,
// 4 layers, 4 heads, 4 kv heads, intermediate 704, random weights): the teacher with its KV cache and
// the SUPRA model with its fixed-size state.
//   node --expose-gc dist/src/bench/decode.js [--contexts 256,2048,8192,32768] [--steps 32] [--teacher-max 32768]
// For each context the state is built by prefilling (SUPRA: the chunked form; the teacher: pieces, so
// its [H, piece, context] scores stay bounded), then ~32 greedy tokens go through the real generation
// loop (decodeTokens: logits copy, argmax, bookkeeping) and, separately, bare DecoderLM.step calls.
// SUPRA's per-token cost must not depend on the context; the teacher's grows with it. Because the SUPRA
// state is small, a copy is kept at each context and the contexts are then timed interleaved, round
// after round, so other work on the machine weighs on all of them alike (the flatness ratio uses that).
// From code: `await benchDecode({ contexts, steps, teacherMax, kinds, log })` returns the rows.
import { arenaStats } from '../core/memory.js';
import { getBackend } from '../core/select.js';
import { Mt19937 } from '../core/random.js';
import { decodeTokens } from '../generate/generate.js';
import { GenerationState } from '../generate/state.js';
import type { DecoderLM } from '../models/decoder.js';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CONFIG_S, configS, randomModel, type RawConfig } from './model.js';

export interface DecodeRow {
  kind: 'teacher' | 'supra';
  context: number;
  /** Seconds the prefill up to this context took (from the previous context). */
  prefillSeconds: number;
  /** Per token through decodeTokens (the generate loop), median of the steps. */
  msPerToken: number;
  /** The fastest of those steps (closest to an unloaded machine when other work shares the cores). */
  bestMsPerToken: number;
  /** SUPRA: per token, measured interleaved with the other contexts (best round's median). */
  interleavedMsPerToken?: number;
  /** Per DecoderLM.step of one token (through GenerationState.nextLogits), median. */
  stepMsPerToken: number;
  tokensPerS: number;
  /** Bytes of the decoding state (KV caches or SUPRA states). */
  stateBytes: number;
  /** Live arena bytes (weights, state, scratch) and process RSS after the decode. */
  arenaLiveBytes: number;
  rssBytes: number;
}

export interface BenchDecodeOptions {
  contexts?: number[];
  steps?: number;
  /** Longest context the teacher is run at (its prefill is quadratic). Default: the longest context. */
  teacherMax?: number;
  kinds?: Array<'teacher' | 'supra'>;
  /** Rounds of the interleaved SUPRA timing (each 16 tokens per context). Default 8. */
  interleavedRounds?: number;
  /** Tokens generated on a throw-away state first (JIT, scratch buffers, workers). Default 256. */
  warmupTokens?: number;
  /** The model's config.json object. Default: configuration S. */
  config?: RawConfig;
  log?: (line: string) => void;
}

/** A copy of a generation state (cheap for SUPRA, whose recurrent states are small). */
function cloneGeneration(src: GenerationState): GenerationState {
  const logits = src.nextLogits();
  const copy = new GenerationState(src.model, src.batch, src.decoder.clone());
  copy.append(src.tokens);
  copy.restoreLogits(logits);
  return copy;
}

/** Median ms per generated token over `steps` tokens of the generation loop (the first, from cached logits, left out). */
function loopMs(state: GenerationState, steps: number): number[] {
  const times: number[] = [];
  let last = performance.now();
  for (const _ of decodeTokens(state, { max_new_tokens: steps + 1, eos_token_id: null })) {
    const now = performance.now();
    times.push(now - last);
    last = now;
  }
  times.shift();
  return times;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

interface KindSettings {
  steps: number;
  interleavedRounds: number;
  warmupTokens: number;
  config: RawConfig;
  log: (line: string) => void;
}

async function benchKind(kind: 'teacher' | 'supra', contexts: number[], k: KindSettings): Promise<DecodeRow[]> {
  const { steps, log } = k;
  const model: DecoderLM = randomModel(configS(kind, k.config));
  const V = model.config.vocab_size;
  const rng = new Mt19937(9);
  // warm-up (JIT, scratch buffers, worker start) on a throw-away state
  const warm = new GenerationState(model, 1);
  warm.append([[1, 2, 3, 4, 5, 6, 7, 8]]);
  for (const _ of decodeTokens(warm, { max_new_tokens: k.warmupTokens, eos_token_id: null }));
  warm.free();
  const state = new GenerationState(model, 1);
  const rows: DecodeRow[] = [];
  const clones: GenerationState[] = [];
  try {
    for (const context of contexts) {
      // grow the context to `context` tokens: append random ids, let nextLogits prefill them
      const add = context - state.length;
      const t0 = performance.now();
      if (add > 0) {
        const ids = new Array<number>(add);
        for (let i = 0; i < add; i++) ids[i] = rng.nextU32() % V;
        state.append([ids]);
        state.nextLogits();
      }
      const prefillSeconds = (performance.now() - t0) / 1000;
      if (kind === 'supra') clones.push(cloneGeneration(state));
      // the generation loop, one token at a time (greedy)
      const times = loopMs(state, steps);
      // model steps alone: one token appended, fed by nextLogits (DecoderLM.step + a [V] copy)
      const stepTimes: number[] = [];
      state.nextLogits(); // the loop's last token
      for (let i = 0; i < steps; i++) {
        state.append([[rng.nextU32() % V]]);
        const s0 = performance.now();
        state.nextLogits();
        stepTimes.push(performance.now() - s0);
      }
      const ms = median(times);
      // collect garbage first when allowed (node --expose-gc): arena blocks of dropped views (old RoPE
      // tables) are returned by a finalizer, so without it liveBytes includes garbage
      (globalThis as { gc?: () => void }).gc?.();
      await new Promise((r) => setImmediate(r));
      const row: DecodeRow = {
        kind, context, prefillSeconds, msPerToken: ms, bestMsPerToken: Math.min(...times), stepMsPerToken: median(stepTimes), tokensPerS: 1000 / ms,
        stateBytes: state.bytes(), arenaLiveBytes: arenaStats().liveBytes, rssBytes: process.memoryUsage().rss,
      };
      rows.push(row);
      log(formatRow(row));
    }
    if (clones.length > 1) {
      // Other work on the machine comes and goes; interleave the contexts over several rounds so it hits
      // them alike, and take each context's best round (median within a round).
      const best = clones.map(() => Infinity);
      for (let round = 0; round < k.interleavedRounds; round++) {
        clones.forEach((c, i) => (best[i] = Math.min(best[i]!, median(loopMs(c, 16)))));
      }
      rows.forEach((r, i) => (r.interleavedMsPerToken = best[i]));
      log(`  ${kind} interleaved (best of ${k.interleavedRounds} rounds of 16 tokens): ` +
        rows.map((r) => `${r.context}: ${r.interleavedMsPerToken!.toFixed(3)} ms`).join(', '));
    }
  } finally {
    for (const c of clones) c.free();
    state.free();
    model.free();
  }
  return rows;
}

const MiB = 2 ** 20;

function formatRow(r: DecodeRow): string {
  return `  ${r.kind.padEnd(7)} ${String(r.context).padStart(6)}  ${r.msPerToken.toFixed(3).padStart(8)}  ${r.bestMsPerToken.toFixed(3).padStart(7)}  ${r.stepMsPerToken.toFixed(3).padStart(8)}  ` +
    `${r.tokensPerS.toFixed(0).padStart(7)}  ${(r.stateBytes / MiB).toFixed(2).padStart(9)}  ${(r.arenaLiveBytes / MiB).toFixed(1).padStart(9)}  ` +
    `${(r.rssBytes / MiB).toFixed(0).padStart(7)}  ${r.prefillSeconds.toFixed(2).padStart(8)}`;
}

/** Run the decode benchmark and print a table; returns the rows. */
export async function benchDecode(options: BenchDecodeOptions = {}): Promise<DecodeRow[]> {
  const contexts = options.contexts ?? [256, 2048, 8192, 32768];
  const steps = options.steps ?? 32;
  const log = options.log ?? ((l: string) => console.log(l));
  const teacherMax = options.teacherMax ?? Math.max(...contexts);
  const kinds = options.kinds ?? ['supra', 'teacher'];
  const settings: KindSettings = {
    steps, log, interleavedRounds: options.interleavedRounds ?? 8, warmupTokens: options.warmupTokens ?? 256, config: options.config ?? CONFIG_S,
  };
  log(`decode, batch 1, ${settings.config === CONFIG_S ? 'configuration S' : 'bench configuration'}, backend ${getBackend().name} (${getBackend().threads} threads), ${steps} tokens per context`);
  log('  model   context  ms/token  best ms   step ms  tokens/s  state MiB  arena MiB  RSS MiB  prefill s');
  const rows: DecodeRow[] = [];
  for (const kind of kinds) {
    const cs = kind === 'teacher' ? contexts.filter((c) => c <= teacherMax) : contexts;
    rows.push(...(await benchKind(kind, cs, settings)));
  }
  for (const kind of kinds) {
    const r = rows.filter((x) => x.kind === kind);
    if (r.length < 2) continue;
    const first = r[0]!, lastRow = r[r.length - 1]!;
    const ms = (x: DecodeRow) => x.interleavedMsPerToken ?? x.msPerToken;
    log(`  ${kind}: ms/token at ${lastRow.context} / at ${first.context} = ${(ms(lastRow) / ms(first)).toFixed(2)}` +
      (kind === 'supra' ? ` (interleaved; target ≤ 1.10), ${(1000 / ms(first)).toFixed(0)} tokens/s at ${first.context} (target ≥ 2000)` : ''));
  }
  return rows;
}

// run directly: node dist/src/bench/decode.js [--contexts a,b,c] [--steps n] [--teacher-max n] [--only supra|teacher]
if (process.argv[1] && pathToFileURL(resolve(process.argv[1])).href === import.meta.url) {
  const arg = (name: string): string | undefined => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? process.argv[i + 1] : undefined;
  };
  const contexts = arg('--contexts')?.split(',').map(Number);
  const only = arg('--only') as 'teacher' | 'supra' | undefined;
  await benchDecode({
    contexts,
    steps: arg('--steps') ? Number(arg('--steps')) : undefined,
    teacherMax: arg('--teacher-max') ? Number(arg('--teacher-max')) : undefined,
    kinds: only ? [only] : undefined,
  });
  process.exit(0);
}
