// The scale benchmark (npm run bench:scale, bench/scale.ts): random-weight teacher folders with the shapes of
// real models, linearized with `supra linearize`'s streaming path, then for the teacher and its SUPRA model
// at each weight type, in a child process per case (so peak RSS is that case's alone): load seconds, peak
// RSS, prefill tokens/s, batch-1 decode tokens/s, and decode against the bound the machine's read
// bandwidth sets (bytes of weights read per token ÷ bandwidth). This file holds the settings, the report
// and its markdown, and what one child measures (its options: src/cli/bench-scale.ts); bench/scale.ts
// writes the folders and runs the children.
import type { BackendName } from '../core/backend.js';
import type { CpuTuning, NativeBackend } from '../core/native/backend.js';
import { formatBytes } from '../core/memory.js';
import { getBackend, setBackend } from '../core/select.js';
import type { WeightType } from '../core/weights.js';
import { openModel } from '../io/checkpoint.js';
import { checkParametersFit, parameterMemory } from '../models/decoder.js';
import { loadDecoder } from '../models/auto.js';
import { linearizeFolder } from '../models/linearize.js';
import { nativeReader, type BandwidthResult } from './bandwidth.js';
import { recordProducts, replayProducts } from './products.js';
import type { MachineInfo } from './report.js';
import { runTrainJob, type TrainJob } from './train-step.js';
import { weightBytesPerToken } from './weights.js';

export const SCALE_KINDS = ['teacher', 'supra'] as const;
export type ScaleKind = (typeof SCALE_KINDS)[number];
/** Weight types the table has a row for: every type of core/weights.ts. */
export const SCALE_DTYPES = ['f32', 'bf16', 'int8'] as const satisfies readonly WeightType[];
export type ScaleDType = (typeof SCALE_DTYPES)[number];

export interface ScaleSettings {
  shapes: string[];
  dtypes: ScaleDType[];
  kinds: ScaleKind[];
  prefillTokens: number;
  decodeTokens: number;
  backend?: BackendName;
  cacheDir: string;
  outDir: string;
  bandwidthBytes: number;
  bandwidthPasses: number;
  seed: number;
  /** Run `supra eval` and `supra serve` on each folder (CommandCheck). */
  commands: boolean;
  help: boolean;
}

/** Rounds, and decoded tokens a round, of the decode measured beside the read bandwidth (ScaleCase.paired). */
export const PAIRED_ROUNDS = 5;
export const PAIRED_TOKENS = 8;
const PAIRED_PASSES = 3;

/** Where a recurrent model's decode is measured a second time: 32k tokens into the context. */
export const FAR_POSITION = 32768;
/** Tokens decoded in a state of their own before any measure (see runScaleJob). */
export const WARM_UP_TOKENS = 64;
/**
 * After any pause in decoding (the prompt's prefill, a bandwidth read), tokens decoded untimed before decode is
 * timed again: SETTLE_TOKENS, or fewer once SETTLE_MS have passed. On the 2-core Xeon VM (2026-12-08, SmolLM-135M's
 * SUPRA model at int8, 12 rounds averaged) the first tokens after a pause of 100 ms ran 13-20% slower, the next ones
 * less, settling within ~16 tokens; a pause spent spinning in JS, asleep, or prefilling a prompt did it alike, so it
 * is the machine (caches shared with its neighbours, clocks), not decoding's own work. Steady decoding is what
 * llama-bench's tg figures time as well; the tokens right after the prompt are reported apart (firstTokensPerS).
 */
export const SETTLE_TOKENS = 16;
const SETTLE_MS = 250;
/** Tokens right after the prompt that firstTokensPerS times. */
const FIRST_TOKENS = 4;

/** What a child process is asked to do: one load-and-run case, or the linearization of a teacher. */
export type ScaleJob =
  | {
      op: 'case'; dir: string; kind: ScaleKind; dtype: WeightType; prefillTokens: number; decodeTokens: number; backend?: BackendName;
      /** Bytes of each read-bandwidth pass measured beside the decode (PAIRED_ROUNDS rounds; native only). */
      pairedBandwidthBytes?: number;
    }
  | { op: 'linearize'; teacher: string; out: string }
  /** A training case of bench:train (src/bench/train-step.ts). */
  | ({ op: 'train' } & TrainJob);

export interface ScaleCase {
  kind: ScaleKind;
  dtype: ScaleDType;
  status: 'ok' | 'does-not-fit' | 'error';
  /** Why the case did not run (the arena estimate's message, the error). */
  message?: string;
  /** The parameters' memory at this dtype (parameterMemory), the estimate a model that does not fit is refused by. */
  needBytes?: number;
  loadSeconds?: number;
  /** SUPRA only: its feature maps as loaded (the default of its dtype: folded into q_proj and k_proj at bf16 and int8). */
  featureMaps?: 'folded' | 'separate';
  /** Peak resident set of the child process, bytes. */
  maxRssBytes?: number;
  prefillTokensPerS?: number;
  /** Steady decoding: the median token once SETTLE_TOKENS were decoded untimed after the prompt. */
  decodeMsPerToken?: number;
  decodeTokensPerS?: number;
  /** The first FIRST_TOKENS tokens right after the prompt, as tokens/s (their mean). */
  firstTokensPerS?: number;
  /** SUPRA only: decode tokens/s at position FAR_POSITION (the same figure means decoding is flat in context). */
  farDecodeTokensPerS?: number;
  /**
   * SUPRA only: the matrix products of a decoded token alone (its `calls` recorded, then replayed back to back),
   * as tokens/s, and their median time over the whole step's (measured alternating with it): the rest of the
   * step is the work between the products.
   */
  products?: { calls: number; tokensPerS: number; shareOfStep: number };
  weightBytesPerToken?: number;
  /** bandwidth ÷ weightBytesPerToken, and decodeTokensPerS as a percentage of it. */
  boundTokensPerS?: number;
  percentOfBound?: number;
  /**
   * Decode against the bandwidth read beside it: PAIRED_ROUNDS rounds of a bandwidth measure then
   * PAIRED_TOKENS decoded tokens, in the case's process after its peak RSS is taken; the median round's
   * percentage. The neighbours of a shared machine move both figures, and adjacent measures move together.
   */
  paired?: { percentOfBound: number; bandwidthGBPerS: number[]; decodeTokensPerS: number[] };
  backend?: string;
  threads?: number;
  /** Native: the add-on's settings for this CPU's maker. */
  cpuTuning?: CpuTuning;
}

export interface ScaleModel {
  shape: string;
  params: number;
  teacherDir: string;
  supraDir: string;
  /** Bytes of the teacher folder's weights on disk. */
  teacherBytes: number;
  /** Seconds to write the random teacher; null when it was in the cache. */
  generateSeconds: number | null;
  /** The linearization's seconds and peak RSS; null when the SUPRA folder was in the cache. */
  linearize: { seconds: number; maxRssBytes: number } | { error: string } | null;
  cases: ScaleCase[];
  /** `supra eval` and `supra serve` run on the folders (bench/scale-commands.ts); absent when not run. */
  commands?: CommandCheck[];
}

/** One command run on a model folder as a user would: its outcome, seconds, peak RSS and what it printed. */
export interface CommandCheck {
  command: 'eval' | 'serve';
  kind: ScaleKind;
  dtype: WeightType;
  status: 'ok' | 'error';
  seconds: number;
  maxRssBytes?: number;
  /** What it measured (a perplexity, the streamed events). */
  detail?: string;
  message?: string;
}

export interface ScaleReport extends MachineInfo {
  /** The command that made the report. */
  command: string;
  settings: Omit<ScaleSettings, 'help' | 'cacheDir' | 'outDir'>;
  /**
   * Read bandwidth on 1 and on every thread at the start, then on every thread again before each model's cases
   * (`before`); bestGBPerS, the bound's, is the best of them all.
   */
  bandwidth: { runs: BandwidthResult[]; before?: Array<{ shape: string; bestGBPerS: number }>; bestGBPerS: number };
  models: ScaleModel[];
  seconds: number;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Runs one job in this process (a child of the benchmark) and returns its figures. */
export function runScaleJob(job: ScaleJob): Record<string, unknown> {
  if (job.op === 'linearize') {
    const t0 = performance.now();
    linearizeFolder(job.teacher, job.out, {});
    return { seconds: (performance.now() - t0) / 1000, maxRssBytes: process.resourceUsage().maxRSS * 1024 };
  }
  if (job.op === 'train') return runTrainJob(job);
  if (job.backend) setBackend(job.backend);
  const { config, checkpoint } = openModel(job.dir);
  checkpoint.close();
  const needBytes = parameterMemory(config, { dtype: job.dtype }).bytes;
  try {
    checkParametersFit(config, { dtype: job.dtype }, job.dir);
  } catch (e) {
    return { status: 'does-not-fit', message: (e as Error).message, needBytes };
  }
  const t0 = performance.now();
  const { model } = loadDecoder(job.dir, { dtype: job.dtype });
  const loadSeconds = (performance.now() - t0) / 1000;
  try {
    const vocab = config.vocab_size;
    const ids = (n: number, from: number) => Array.from({ length: n }, (_, i) => (from + i * 7919) % vocab);
    // JIT, scratch buffers, helper threads. Decoding's own code reaches its speed only after tens of tokens
    // (SmolLM-135M's shape on the 2-core Zen 4 VM, 2026-12-07: the first 40 tokens 15-25% slower than the
    // next 200), so a whole warm-up generation precedes the measures, as in a long-running server.
    const warm = model.newState(1);
    model.step(ids(8, 1), 1, 8, warm, { lastOnly: true });
    for (let t = 0; t < WARM_UP_TOKENS; t++) model.step(ids(1, t), 1, 1, warm);
    warm.free();
    const state = model.newState(1);
    const p0 = performance.now();
    model.step(ids(job.prefillTokens, 3), 1, job.prefillTokens, state, { lastOnly: true });
    const prefillTokensPerS = job.prefillTokens / ((performance.now() - p0) / 1000);
    const first: number[] = [];
    for (let t = 0; t < FIRST_TOKENS; t++) {
      const s0 = performance.now();
      model.step(ids(1, t), 1, 1, state);
      first.push(performance.now() - s0);
    }
    // untimed tokens after a pause in decoding (SETTLE_TOKENS says why), the first ones above counted among them
    const settle = (already = 0) => {
      const until = performance.now() + SETTLE_MS;
      for (let t = already; t < SETTLE_TOKENS && performance.now() < until; t++) model.step(ids(1, t), 1, 1, state);
    };
    settle(FIRST_TOKENS);
    const times: number[] = [];
    for (let t = 0; t < job.decodeTokens; t++) {
      const s0 = performance.now();
      model.step(ids(1, t), 1, 1, state);
      times.push(performance.now() - s0);
    }
    // A recurrent model's token split in two: the products of one step, recorded and replayed back to back on
    // the same buffers, against whole steps, alternating so that the machine's moves weigh on both alike.
    // (Not a teacher's: its cache, and the buffers the recorded calls hold, grow as it decodes.)
    let products: ScaleCase['products'];
    if (model.recurrent) {
      const calls = recordProducts(() => model.step(ids(1, 0), 1, 1, state));
      const whole: number[] = [], alone: number[] = [];
      for (let t = 0; t < job.decodeTokens; t++) {
        let s0 = performance.now();
        model.step(ids(1, t), 1, 1, state);
        whole.push(performance.now() - s0);
        s0 = performance.now();
        replayProducts(calls);
        alone.push(performance.now() - s0);
      }
      products = { calls: calls.length, tokensPerS: 1000 / median(alone), shareOfStep: median(alone) / median(whole) };
    }
    // A recurrent model's step costs the same at any position (its state has a fixed size): measured far
    // out by moving the state's position there, as a 32k-token prefill would, without its minutes.
    let farDecodeTokensPerS: number | undefined;
    if (model.recurrent) {
      state.position = FAR_POSITION;
      for (const layer of state.layers) layer.position = FAR_POSITION;
      const far: number[] = [];
      settle();
      for (let t = 0; t < job.decodeTokens; t++) {
        const s0 = performance.now();
        model.step(ids(1, t), 1, 1, state);
        far.push(performance.now() - s0);
      }
      farDecodeTokensPerS = 1000 / median(far);
    }
    const ms = median(times);
    const be = getBackend();
    const maxRssBytes = process.resourceUsage().maxRSS * 1024; // before the bandwidth buffer below
    const bytesPerToken = weightBytesPerToken(model);
    let paired: ScaleCase['paired'];
    const read = job.pairedBandwidthBytes && be.name === 'native' ? nativeReader() : undefined;
    if (read) {
      const bandwidthGBPerS: number[] = [], decodeTokensPerS: number[] = [], percents: number[] = [];
      for (let r = 0; r < PAIRED_ROUNDS; r++) {
        // best of PAIRED_PASSES: a buffer's first pass reads at half speed or less (its pages just committed)
        const gbs = Math.max(...read(job.pairedBandwidthBytes!, be.threads === 1 ? 1 : 2, PAIRED_PASSES).passes);
        const round: number[] = [];
        settle();
        for (let t = 0; t < PAIRED_TOKENS; t++) {
          const s0 = performance.now();
          model.step(ids(1, t), 1, 1, state);
          round.push(performance.now() - s0);
        }
        const tps = 1000 / median(round);
        bandwidthGBPerS.push(gbs);
        decodeTokensPerS.push(tps);
        percents.push((100 * tps * bytesPerToken) / (gbs * 1e9));
      }
      paired = { percentOfBound: median(percents), bandwidthGBPerS, decodeTokensPerS };
    }
    state.free();
    return {
      status: 'ok', needBytes, loadSeconds, ...(model.recurrent ? { featureMaps: model.foldedForInference ? 'folded' as const : 'separate' as const } : {}), prefillTokensPerS, decodeMsPerToken: ms, decodeTokensPerS: 1000 / ms,
      firstTokensPerS: (1000 * first.length) / first.reduce((a, b) => a + b, 0), farDecodeTokensPerS, products,
      weightBytesPerToken: bytesPerToken, backend: be.name, threads: be.threads, maxRssBytes, paired,
      cpuTuning: be.name === 'native' ? (be as NativeBackend).info().cpuTuning : undefined,
    };
  } finally {
    model.free();
  }
}

/** The best read bandwidth of a run: its first measures and those before each model. */
export function bestBandwidth(runs: BandwidthResult[], before: Array<{ bestGBPerS: number }>): number {
  return Math.max(...runs.map((b) => b.bestGBPerS), ...before.map((b) => b.bestGBPerS));
}

/** Adds the bandwidth bound to a measured case. */
export function withBound(c: ScaleCase, bandwidthGBPerS: number): ScaleCase {
  if (c.status !== 'ok' || !c.weightBytesPerToken || !c.decodeTokensPerS) return c;
  const boundTokensPerS = (bandwidthGBPerS * 1e9) / c.weightBytesPerToken;
  return { ...c, boundTokensPerS, percentOfBound: (100 * c.decodeTokensPerS) / boundTokensPerS };
}

const fmt = (x: number | undefined, digits = 1): string => (x === undefined ? '—' : x.toFixed(digits));
const gib = (bytes: number | undefined): string => (bytes === undefined ? '—' : formatBytes(bytes));
const paramCount = (n: number): string => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} B` : n >= 1e6 ? `${(n / 1e6).toFixed(0)} M` : `${(n / 1e3).toFixed(1)} k`);

function caseCells(c: ScaleCase): string[] {
  if (c.status === 'ok') {
    return [
      fmt(c.loadSeconds, 2), gib(c.maxRssBytes), fmt(c.prefillTokensPerS), fmt(c.decodeTokensPerS), fmt(c.farDecodeTokensPerS),
      c.products ? `${c.products.tokensPerS.toFixed(1)} (${(100 * c.products.shareOfStep).toFixed(0)}%)` : '—',
      fmt(c.boundTokensPerS), c.percentOfBound === undefined ? '—' : `${c.percentOfBound.toFixed(0)}%`,
      c.paired ? `${c.paired.percentOfBound.toFixed(0)}%` : '—',
    ];
  }
  const why = c.status === 'does-not-fit' ? `does not fit: needs ${gib(c.needBytes)} for its parameters (the memory check refuses it before allocating)`
    : `error: ${(c.message ?? '').split('\n')[0]}`;
  return [why, '', '', '', '', '', '', '', ''];
}

/** The report as markdown: the machine, the bandwidth, a table of linearizations and one of the cases. */
export function scaleMarkdown(r: ScaleReport): string {
  const lines: string[] = [];
  lines.push('# supra scale benchmark', '');
  lines.push(`\`${r.command}\` — ${r.date.slice(0, 10)}, ${r.cpuModel} × ${r.cpuCount}, node ${r.node}, ${r.platform}/${r.arch}, ${r.seconds.toFixed(0)} s.`, '');
  const bw = r.bandwidth.runs.map((b) => `${b.threads} thread${b.threads > 1 ? 's' : ''} ${b.bestGBPerS.toFixed(1)} GB/s`).join(', ');
  const method = r.bandwidth.runs[0]?.method ?? '';
  const again = (r.bandwidth.before ?? []).map((b) => `${b.shape} ${b.bestGBPerS.toFixed(1)}`).join(', ');
  lines.push(`Read bandwidth (${method}, ${gib(r.bandwidth.runs[0]?.bytes)} per pass, best of ${r.settings.bandwidthPasses}): ${bw}` +
    (again ? `; again before each model's cases (it moves with the machine's neighbours): ${again} GB/s` : '') +
    `; the bound uses the best, ${r.bandwidth.bestGBPerS.toFixed(1)} GB/s.`);
  lines.push(`Random-weight BF16 teacher folders (scripts/random-model.mjs, seed ${r.settings.seed}), linearized by \`supra linearize\`; each case runs in its own process. ` +
    `Prefill: ${r.settings.prefillTokens} tokens, batch 1. Decode: batch 1, steady, the median of ${r.settings.decodeTokens} tokens after the prompt once ${SETTLE_TOKENS} more were decoded untimed ` +
    `(at most ${SETTLE_MS} ms of them; after a pause the machine decodes slower for a few tokens, see SETTLE_TOKENS in src/bench/scale.ts; the first ${FIRST_TOKENS} after the prompt are in scale.json as firstTokensPerS), ` +
    `once ${WARM_UP_TOKENS} tokens were decoded in a state of their own. ` +
    `Decode at ${FAR_POSITION / 1024}k: SUPRA models only, the same measure with the state moved to position ${FAR_POSITION} (a fixed-size state costs the same anywhere; a teacher's cache would not). ` +
    'SUPRA models load as a user loads them: at bf16 and int8 their feature maps folded into q_proj and k_proj (the default), at f32 separate. ' +
    'Products alone: SUPRA models only, the matrix products of one decoded token recorded and replayed back to back, timed alternating with whole steps; the rest of a step is the work between them. ' +
    'Bound: bandwidth ÷ bytes of weights read per token (every matrix once, one embedding row unless tied). ' +
    `Beside it (native): in the case's process, ${PAIRED_ROUNDS} rounds of a bandwidth measure (best of ${PAIRED_PASSES} passes) then ${PAIRED_TOKENS} decoded tokens (after the settling ones), the median round's decode against that round's bound; ` +
    "the machine's neighbours move both measures, and adjacent ones move together.", '');
  lines.push('| model | parameters | teacher weights | linearize s | linearize peak RSS |', '|---|---:|---:|---:|---:|');
  for (const m of r.models) {
    const lin = m.linearize === null ? ['(cached)', ''] : 'error' in m.linearize ? [`error: ${m.linearize.error.split('\n')[0]}`, ''] : [fmt(m.linearize.seconds, 1), gib(m.linearize.maxRssBytes)];
    lines.push(`| ${m.shape} | ${paramCount(m.params)} | ${gib(m.teacherBytes)} | ${lin.join(' | ')} |`);
  }
  lines.push('', `| model | kind | weights | load s | peak RSS | prefill tokens/s | decode tokens/s | decode at ${FAR_POSITION / 1024}k tokens/s | products alone tokens/s (their share of a step) | bound tokens/s | % of bound | % of the bound read beside it |`, '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const m of r.models) {
    for (const c of m.cases) lines.push(`| ${m.shape} | ${c.kind === 'supra' ? 'SUPRA' : 'teacher'} | ${c.dtype} | ${caseCells(c).join(' | ')} |`);
  }
  const checks = r.models.flatMap((m) => (m.commands ?? []).map((c) => ({ shape: m.shape, ...c })));
  if (checks.length > 0) {
    lines.push('', 'Commands on the same folders, each in its own process as a user runs them: `supra eval --text` (a perplexity pass) and `supra serve` with one streamed `/v1/completions` request.', '');
    lines.push('| model | kind | weights | command | result | seconds | peak RSS |', '|---|---|---|---|---|---:|---:|');
    for (const c of checks) {
      const result = c.status === 'ok' ? `ok: ${c.detail ?? ''}` : `error: ${(c.message ?? '').split('\n')[0]}`;
      lines.push(`| ${c.shape} | ${c.kind === 'supra' ? 'SUPRA' : 'teacher'} | ${c.dtype} | ${c.command} | ${result} | ${fmt(c.seconds, 1)} | ${gib(c.maxRssBytes)} |`);
    }
  }
  const tuningText = (t: CpuTuning) => `, tuned for ${t.vendor === 'amd' ? 'AMD' : 'other CPUs'}: BF16 decoding prefetch ${t.bf16DecodePrefetch}, one-token states up to ${t.stepAloneFloats} floats on one thread`;
  const backendText = (c: ScaleCase) => `${c.backend} (${c.threads} threads${c.cpuTuning ? tuningText(c.cpuTuning) : ''})`;
  const backends = [...new Set(r.models.flatMap((m) => m.cases.filter((c) => c.backend).map(backendText)))];
  if (backends.length > 0) lines.push('', `Backend: ${backends.join(', ')}.`);
  return lines.join('\n') + '\n';
}

