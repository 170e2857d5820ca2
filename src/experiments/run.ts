// One run of the study: build the model (the teacher, a linearized teacher, or a random SUPRA model),
// train it for its budget (resuming a checkpoint left by an interrupted run), then measure it the same
// way as every other run, and write <dir>/result.json (atomically: a result exists only when complete).
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomic } from '../io/atomic.js';
import { loadTokenizer } from '../io/tokenizer.js';
import { analyzeAttention } from '../eval/analyze.js';
import { tokenLogProbs } from '../eval/perplexity.js';
import { copyProbe, mqarProbe, passkeyProbe } from '../eval/probes.js';
import { loadDecoder } from '../models/auto.js';
import { initRandom } from '../models/build.js';
import type { DecoderLM } from '../models/decoder.js';
import { linearize, supraConfig } from '../models/linearize.js';
import { readLatest } from '../train/checkpoint.js';
import type { TokenBatches } from '../train/batches.js';
import { openTokenBatches } from '../train/data/index.js';
import { evaluate } from '../train/evaluate.js';
import { train, TrainingDiverged, type TrainHooks } from '../train/trainer.js';
import type { EvalSettings, RunSpec } from './plan.js';

export const RESULT_FILE = 'result.json';

export interface RunResult {
  id: string;
  key: string;
  spec: RunSpec;
  /** Mean validation loss (nats/token) and perplexity over `validationTokens` tokens. */
  valLoss: number;
  valPpl: number;
  validationTokens: number;
  /** Training: steps done, tokens seen, mean throughput, whether it diverged (stopped on non-finite steps). */
  training: {
    steps: number;
    tokens: number;
    tokensPerSecond: number;
    seconds: number;
    skippedSteps: number;
    diverged: boolean;
    /** Training loss per step (null for skipped steps; attention transfer's stage 1: its attention MSE). */
    losses: Array<number | null>;
    /** Parameters the optimizer updated (gradients and AdamW moments exist for these only). */
    trainedParameters: number;
  } | null;
  /** Mean loss per position bucket on sequences of evalSettings.longContext tokens. */
  longContext: { buckets: Array<[number, number]>; loss: number[]; sequences: number };
  probes: {
    copy: { gaps: number[]; secondCopyLoss: number[]; firstCopyLoss: number[]; uniform: number };
    mqar: { pairs: number[]; accuracy: number[]; chance: number };
    passkey: { lengths: number[]; accuracy: number[]; chance: number };
  };
  /** Attention similarity to the teacher (supra analyze), means over layers and heads; null for the teacher. */
  attention: { cosineRaw: number; cosineRownorm: number; svDistanceRaw: number; svDistanceRownorm: number; perLayerCosineRownorm: number[] } | null;
  seconds: number;
  backend: string;
  finishedAt: string;
}

export interface RunContext {
  teacherDir: string;
  /** The run's folder (train/ checkpoints, result.json). */
  dir: string;
  key: string;
  evalSettings: EvalSettings;
  /** Data options shared by every run (the inputs and the split seed). */
  data: { inputs: string[]; splitSeed: number; cacheDir?: string };
  backend: string;
  log: (message: string) => void;
  /** Keep the final model folder after measuring (default: removed, the result is what the study keeps). */
  keepModel?: boolean;
  /** Stops training like SIGINT does (the step under way finishes and is saved); executeRun returns null. */
  signal?: AbortSignal;
  /** The trainer's hooks (tests: interrupt at a given step). */
  trainHooks?: TrainHooks;
  /** No progress lines (they go to stdout otherwise). */
  quiet?: boolean;
}

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function buildModel(spec: RunSpec, teacher: DecoderLM): DecoderLM {
  if (spec.kind === 'teacher') return teacher;
  if (spec.kind === 'uptrain') return linearize(teacher, { ...spec.linearize, seed: spec.seed });
  return initRandom(supraConfig(teacher.config, spec.linearize), spec.seed);
}

/** Mean next-token loss per position bucket over `count` validation sequences of `length` tokens. */
function lossByPosition(model: DecoderLM, data: TokenBatches, count: number, buckets: Array<[number, number]>): { loss: number[]; sequences: number } {
  const { ids, count: n } = data.validation(count);
  if (n === 0) throw new Error('supra: experiments: no validation sequences for the long-context loss');
  const L = data.seqLen + 1;
  const sums = buckets.map(() => 0);
  const counts = buckets.map(() => 0);
  for (let s = 0; s < n; s++) {
    // logp[i] scores token i + 1 given tokens 0..i, i.e. the prediction made at position i
    const logp = tokenLogProbs(model, ids.subarray(s * L, (s + 1) * L), 1);
    buckets.forEach(([from, to], b) => {
      for (let i = from; i < Math.min(to, logp.length); i++) {
        sums[b]! -= logp[i]!;
        counts[b]!++;
      }
    });
  }
  return { loss: sums.map((v, b) => v / counts[b]!), sequences: n };
}

/**
 * Train (or resume), measure and write result.json; returns the result, or null when training was
 * interrupted (its checkpoint is saved; running again resumes it).
 */
export async function executeRun(spec: RunSpec, ctx: RunContext): Promise<RunResult | null> {
  const started = performance.now();
  const ev = ctx.evalSettings;
  const { model: teacher } = loadDecoder(ctx.teacherDir);
  const model = buildModel(spec, teacher);
  const openData = (seqLen: number, shuffleSeed: number) =>
    openTokenBatches({ data: ctx.data.inputs, tokenizerDir: ctx.teacherDir, seqLen, seed: ctx.data.splitSeed, shuffleSeed, cacheDir: ctx.data.cacheDir });
  const data = await openData(spec.recipe.seqLen, spec.seed);
  const longData = await openData(ev.longContext, spec.seed);
  try {
    // ---- training
    let training: RunResult['training'] = null;
    if (spec.tokens > 0) {
      const out = join(ctx.dir, 'train');
      const resume = readLatest(out) !== null;
      ctx.log(resume ? `resuming ${out}` : `training ${spec.id}: ${spec.tokens.toLocaleString('en-US')} tokens`);
      const r = spec.recipe;
      let diverged = false;
      let summary: { step: number; tokens: number; tokensPerSecond: number; skippedSteps: number; losses: number[]; trainedParameters: number };
      const t0 = performance.now();
      try {
        const result = await train({
          model, data, out, resume, tokens: spec.tokens, batchSize: r.batchSize, lr: r.lr, minLr: r.minLr,
          warmupSteps: r.warmupSteps, trainOnly: r.trainOnly, kernelsFirstSteps: r.kernelsFirstSteps, seed: spec.seed,
          ...(r.attentionTransfer ? { recipe: 'attention-transfer' as const, ...r.attentionTransfer } : {}),
          ...(r.matmulPrecision ? { matmulPrecision: r.matmulPrecision } : {}),
          tokenizerDir: ctx.teacherDir, evalSequences: 0, saveEvery: 50, keep: 1, logEvery: 10,
          handleSigint: true, signal: ctx.signal, hooks: ctx.trainHooks, quiet: ctx.quiet, progressStream: process.stdout,
          dataSettings: { inputs: ctx.data.inputs, splitSeed: ctx.data.splitSeed, shuffleSeed: spec.seed },
        });
        if (result.status === 'interrupted') {
          ctx.log(`interrupted at step ${result.step}; the checkpoint is saved, rerun to resume`);
          return null;
        }
        summary = result;
      } catch (e) {
        if (!(e instanceof TrainingDiverged)) throw e;
        // a finding, not a failure: the run is scored as it stood at its last good step
        ctx.log(`diverged at step ${e.step}: ${e.message}`);
        diverged = true;
        summary = { step: e.step, tokens: e.step * r.batchSize * r.seqLen, tokensPerSecond: NaN, skippedSteps: NaN, losses: [], trainedParameters: NaN };
      }
      training = {
        steps: summary.step, tokens: summary.tokens, tokensPerSecond: summary.tokensPerSecond,
        seconds: (performance.now() - t0) / 1000, skippedSteps: summary.skippedSteps, diverged,
        losses: summary.losses.map((l) => (Number.isFinite(l) ? l : null)),
        trainedParameters: summary.trainedParameters,
      };
    }

    // ---- measurements
    const timings: string[] = [];
    const timed = <R>(name: string, f: () => R): R => {
      const t = performance.now();
      const r = f();
      timings.push(`${name} ${((performance.now() - t) / 1000).toFixed(1)}s`);
      return r;
    };
    const val = timed('validation', () => evaluate(model, data, ev.validationSequences, spec.recipe.batchSize));
    if (!val) throw new Error('supra: experiments: the data has no validation split');
    const long = timed('long context', () => lossByPosition(model, longData, ev.longSequences, ev.positionBuckets));
    const tok = loadTokenizer(ctx.teacherDir);
    const copy = timed('copy', () => copyProbe(null, model, { seed: 0, ...ev.probes.copy }));
    const mqar = timed('mqar', () => mqarProbe(null, model, { seed: 0, ...ev.probes.mqar }));
    const passkey = timed('passkey', () => passkeyProbe(null, model, tok, { seed: 0, ...ev.probes.passkey }));
    let attention: RunResult['attention'] = null;
    if (spec.kind !== 'teacher') {
      const { ids } = data.validation(Math.ceil((ev.analyzeWindows * ev.analyzeLength) / spec.recipe.seqLen));
      const a = timed('analyze', () => analyzeAttention(teacher, model, ids, ev.analyzeLength, ev.analyzeWindows));
      const all = (m: number[][]) => mean(m.flat());
      attention = {
        cosineRaw: all(a.cosine.raw), cosineRownorm: all(a.cosine.rownorm),
        svDistanceRaw: all(a.svDistance.raw), svDistanceRownorm: all(a.svDistance.rownorm),
        perLayerCosineRownorm: a.cosine.rownorm.map(mean),
      };
    }
    ctx.log(`measured ${spec.id}: val ppl ${Math.exp(val.loss).toFixed(2)} (${timings.join(', ')})`);
    const result: RunResult = {
      id: spec.id, key: ctx.key, spec,
      valLoss: val.loss, valPpl: Math.exp(val.loss), validationTokens: val.tokens,
      training,
      longContext: { buckets: ev.positionBuckets, loss: long.loss, sequences: long.sequences },
      probes: {
        copy: { gaps: copy.x, secondCopyLoss: copy.model.secondCopyLoss!, firstCopyLoss: copy.model.firstCopyLoss!, uniform: copy.chance! },
        mqar: { pairs: mqar.x, accuracy: mqar.model.accuracy!, chance: mqar.chance! },
        passkey: { lengths: passkey.x, accuracy: passkey.model.accuracy!, chance: passkey.chance! },
      },
      attention,
      seconds: (performance.now() - started) / 1000,
      backend: ctx.backend,
      finishedAt: new Date().toISOString(),
    };
    writeJsonAtomic(join(ctx.dir, RESULT_FILE), result);
    // the checkpoints are only for resuming; the final model is kept on request
    if (!ctx.keepModel && existsSync(join(ctx.dir, 'train'))) rmSync(join(ctx.dir, 'train'), { recursive: true, force: true });
    return result;
  } finally {
    data.close();
    longData.close();
    if (model !== teacher) model.free();
    teacher.free();
  }
}
