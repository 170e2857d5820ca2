// One trainer for a softmax teacher and for a SUPRA model, with the paper's recipe (open_lm's):
// AdamW β = (0.9, 0.95), weight decay 0.1, linear warm-up then cosine to a floor, gradient clipping by
// global norm 1, z-loss 1e-4, gradient accumulation; the new SUPRA kernel parameters may have their own
// learning rate, or be the only ones trained. Checkpoints are atomic and a resumed run continues bit for
// bit (see checkpoint.ts). Outputs in <out>: checkpoint-<step>/ folders, `latest`, metrics.jsonl, and at
// the end of a completed run the final model as a plain model folder <out>/final.
//
// One optimizer step:
//   for each of gradAccum micro-batches: forward, mean cross-entropy (+ z-loss), backward (gradients sum)
//   grad_norm = ‖Σ grads‖ / gradAccum over the trained parameters
//   loss or grad_norm not finite → skip the step (no update), count it
//   grads *= (1 / gradAccum) · min(1, clip / (grad_norm + 1e-6))        (torch.nn.utils.clip_grad_norm_)
//   every group's lr from the schedule; AdamW step
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { allocI32, free } from '../core/memory.js';
import { crossEntropy, scale, sumSquares } from '../core/ops.js';
import { buildModel, modelFromCheckpoint, type BuiltModel } from '../models/build.js';
import { DecoderLM } from '../models/decoder.js';
import type { LinearizeOptions } from '../models/linearize.js';
import type { Param } from '../layers/types.js';
import { AdamW, type ParamGroup } from './adamw.js';
import type { TokenBatches } from './batches.js';
import {
  loadOptimizerState,
  readLatest,
  removeUncommitted,
  saveFinalModel,
  saveTrainingCheckpoint,
  type TrainerState,
} from './checkpoint.js';
import { formatNumber as num, MetricsLog, ProgressLine, Throughput, type MetricsRecord } from './metrics.js';
import { TRAIN_DEFAULTS } from './recipe.js';
import { lrAt, scaledSchedule } from './schedule.js';
import { epochsText, mergeResumed, repeatWarning, resolveSettings, scheduleOf, type SettingsOptions, type TrainSettings } from './settings.js';

// ---------------------------------------------------------------- options

export interface TrainHooks {
  /** Called after the gradients of a step are complete, before the finite check and the update (tests). */
  afterBackward?: (step: number, model: DecoderLM) => void;
  /** Called with the final (averaged, clipped) gradients just before the optimizer step (tests). */
  beforeUpdate?: (step: number, model: DecoderLM, info: { gradNorm: number; clipCoef: number; lr: number }) => void;
}

/** The model, the data, the output folder and how the run is driven; the recipe and budget: SettingsOptions. */
export interface TrainOptions extends SettingsOptions {
  /**
   * The model: a teacher or SUPRA folder, or a DecoderLM in memory (trained in place; the caller keeps
   * ownership). Ignored on resume for folders (the model comes from the checkpoint); an in-memory model
   * gets the checkpoint's weights.
   */
  model?: string | DecoderLM;
  /** Start from a random initialisation of this config (a config.json path or its parsed object). */
  init?: string | Record<string, unknown>;
  /** Linearize the teacher given as `model` first (true, or linearize's options). Kernels use `seed`. */
  linearize?: boolean | LinearizeOptions;
  /** Folder whose tokenizer files go into checkpoints (default: the model folder). */
  tokenizerDir?: string;
  /** The training data. Its seqLen is the sequence length. */
  data: TokenBatches;
  /** Output folder (checkpoints, metrics.jsonl, final/). */
  out: string;
  /** Continue from <out>/latest. */
  resume?: boolean;
  /** Stop (saving a checkpoint) after this global step, e.g. to split a run. */
  stopAt?: number;
  /** No progress line or messages. */
  quiet?: boolean;
  /** Progress line every N steps. */
  logEvery?: number;
  /** Where progress goes (default process.stdout). */
  progressStream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Abort → save a checkpoint at the current step and return with status 'interrupted'. */
  signal?: AbortSignal;
  /** Treat SIGINT as `signal` while training (a second SIGINT exits at once). The CLI sets it. */
  handleSigint?: boolean;
  /** What continues an interrupted or failed run, for messages (default "--resume"; the demo gives its command). */
  continueWith?: string;
  hooks?: TrainHooks;
}

export type TrainStatus = 'completed' | 'stopped' | 'interrupted';

export interface TrainResult {
  status: TrainStatus;
  /** Optimizer steps completed (including those of earlier runs of a resumed folder). */
  step: number;
  totalSteps: number;
  tokens: number;
  /** Loss of every step from step 0 (NaN for skipped steps). */
  losses: number[];
  /** Validation loss before training (null when not evaluated). */
  initialValLoss: number | null;
  /** Validation loss at the end of this run (null when not evaluated). */
  finalValLoss: number | null;
  skippedSteps: number;
  /** The newest checkpoint folder. */
  checkpoint: string | null;
  /** <out>/final, when the run completed. */
  finalDir: string | null;
  /**
   * Mean training throughput (evaluation and saving excluded) of this call; when it trained no step (a
   * finished run resumed), that of the earlier runs, from the checkpoint; 0 only when nothing was ever trained.
   */
  tokensPerSecond: number;
  /** Optimizer steps this call ran (0 when a finished run is resumed). */
  stepsThisRun: number;
  settings: TrainSettings;
}

/** Thrown when --max-skips consecutive steps had a non-finite loss or gradient. */
export class TrainingDiverged extends Error {
  constructor(
    message: string,
    readonly step: number,
    readonly checkpoint: string | null,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------- models

const KERNEL_PARAM_RE = /\.(kernel_q|kernel_k|q_norm|k_norm)\./;

/** The new SUPRA parameters: *.kernel_q.*, *.kernel_k.*, *.q_norm.*, *.k_norm.* */
export function isKernelParam(name: string): boolean {
  return KERNEL_PARAM_RE.test(name);
}

/** The model of a fresh run, from the options (one of model and init), and where its tokenizer files are. */
function buildRunModel(o: TrainOptions, seed: number): BuiltModel & { tokenizerDir: string | null } {
  const given = [o.model !== undefined, o.init !== undefined].filter(Boolean).length;
  if (given !== 1) throw new Error('supra: train: give exactly one of model (a folder or a DecoderLM) and init (a config)');
  if (o.init !== undefined && o.linearize) throw new Error('supra: train: linearize needs a teacher model, not init');
  const tokenizerDir = o.tokenizerDir ?? (typeof o.model === 'string' ? o.model : null);
  return { ...buildModel(o, seed), tokenizerDir };
}

// ---------------------------------------------------------------- optimizer groups

interface Groups {
  optimizer: AdamW;
  trained: Param[];
  kernelGroups: Set<string>;
}

/**
 * Up to four AdamW groups: {base, kernels} × {decayed, not decayed}. With trainOnly 'kernels' the base
 * parameters are in no group, so they never change.
 */
function buildOptimizer(model: DecoderLM, s: TrainSettings): Groups {
  const buckets = new Map<string, Param[]>();
  let kernelCount = 0;
  for (const p of model.params()) {
    const kernel = isKernelParam(p.name);
    if (kernel) kernelCount++;
    if (s.trainOnly === 'kernels' && !kernel) continue;
    const decayed = s.decayNormsAndBiases || p.shape.length >= 2;
    const key = (kernel ? 'kernels' : 'base') + (decayed ? '' : '.no_decay');
    if (!buckets.has(key)) buckets.set(key, []);
    buckets.get(key)!.push(p);
  }
  if ((s.trainOnly === 'kernels' || s.kernelsFirstSteps > 0) && kernelCount === 0) {
    throw new Error(`supra: train: ${s.trainOnly === 'kernels' ? 'trainOnly "kernels"' : 'kernelsFirstSteps'} needs a SUPRA model, but ${model.config.architecture} has no kernel parameters (use --linearize)`);
  }
  const groups: ParamGroup[] = [...buckets].map(([name, params]) => ({
    name,
    params,
    lr: name.startsWith('kernels') ? s.kernelLr : s.lr,
    weightDecay: name.endsWith('.no_decay') ? 0 : s.weightDecay,
  }));
  const optimizer = new AdamW(groups, { betas: s.betas, eps: s.eps });
  return { optimizer, trained: groups.flatMap((g) => g.params), kernelGroups: new Set(groups.filter((g) => g.name!.startsWith('kernels')).map((g) => g.name!)) };
}

// ---------------------------------------------------------------- evaluation

/** Mean next-token cross-entropy (no z-loss) over the first `maxSequences` validation sequences. */
export function evaluate(model: DecoderLM, data: TokenBatches, maxSequences: number, batchSize: number): { loss: number; tokens: number } | null {
  if (maxSequences <= 0 || data.validationTokens <= 0) return null;
  const { ids, count } = data.validation(maxSequences);
  if (count === 0) return null;
  const T = data.seqLen;
  const V = model.config.vocab_size;
  const inputs = allocI32(batchSize * T);
  const targets = allocI32(batchSize * T);
  let total = 0;
  let tokens = 0;
  try {
    for (let first = 0; first < count; first += batchSize) {
      const n = Math.min(batchSize, count - first);
      splitRows(ids, first, n, T, inputs, targets);
      const logits = model.forward(inputs.subarray(0, n * T), n, T);
      const { loss, count: c } = crossEntropy(logits, targets, n * T, V, null, 0);
      total += loss * c;
      tokens += c;
    }
  } finally {
    free(inputs);
    free(targets);
  }
  return { loss: total / tokens, tokens };
}

/** Rows [first, first + n) of [*, T + 1] sequences → inputs [n, T] and next-token targets [n, T]. */
function splitRows(seqs: Int32Array, first: number, n: number, T: number, inputs: Int32Array, targets: Int32Array): void {
  for (let r = 0; r < n; r++) {
    const row = seqs.subarray((first + r) * (T + 1), (first + r + 1) * (T + 1));
    inputs.set(row.subarray(0, T), r * T);
    targets.set(row.subarray(1, T + 1), r * T);
  }
}

// ---------------------------------------------------------------- the loop

const yieldToEventLoop = () => new Promise<void>((r) => setImmediate(r));

/**
 * Train (or uptrain) a model for a token budget. Fresh runs write into `out` (which must not already
 * hold a run); `resume` continues <out>/latest exactly. See TrainOptions and the file header.
 */
export async function train(o: TrainOptions): Promise<TrainResult> {
  const data = o.data;
  if (!data) throw new Error('supra: train: no data given');
  const seqLen = data.seqLen;
  if (o.seqLen !== undefined && o.seqLen !== seqLen) throw new Error(`supra: train: seqLen ${o.seqLen} given, but the data is packed in sequences of ${seqLen}`);
  const out = resolve(o.out);
  mkdirSync(out, { recursive: true });
  const progress = o.quiet ? null : new ProgressLine(o.progressStream);
  const say = (text: string) => progress?.message(text);
  const metrics = new MetricsLog(join(out, 'metrics.jsonl'));

  const latest = readLatest(out);
  if (!o.resume && latest) throw new Error(`supra: train: ${out} already holds a training run (latest: ${latest.name}); resume it (--resume) or choose a new output folder`);
  if (o.resume && !latest) throw new Error(`supra: train --resume: ${out} has no checkpoint to resume (no ${join(out, 'latest')})`);

  // a killed run or a failed save may have left temp folders (a partial checkpoint can be most of a full disk)
  removeUncommitted(out, latest?.step ?? -1);

  let model: DecoderLM;
  let owned: boolean;
  let tokenizerDir: string | null;
  let s: TrainSettings;
  if (latest) {
    s = mergeResumed(latest.state.settings as unknown as TrainSettings, o);
    if (s.seqLen !== seqLen) throw new Error(`supra: train --resume: the checkpoint's run used sequences of ${s.seqLen} tokens, the data gives ${seqLen}`);
    ({ model, owned } = modelFromCheckpoint(latest.dir, o.model instanceof DecoderLM ? o.model : undefined));
    tokenizerDir = latest.dir; // holds copies of the tokenizer files, if the run had any
    try {
      data.restore(latest.state.data);
    } catch (e) {
      if (owned) model.free();
      throw e;
    }
    metrics.truncateAfter(latest.step);
  } else {
    const built = buildRunModel(o, o.seed ?? TRAIN_DEFAULTS.seed);
    ({ model, owned, tokenizerDir } = built);
    try {
      s = resolveSettings(o, seqLen, built.source, tokenizerDir);
    } catch (e) {
      if (owned) model.free();
      throw e;
    }
    metrics.truncateAfter(-1);
  }

  const B = s.batchSize, T = seqLen, accum = s.gradAccum;
  let groups: Groups;
  try {
    model.enableGrads();
    groups = buildOptimizer(model, s);
    if (latest) loadOptimizerState(latest.dir, groups.optimizer);
  } catch (e) {
    if (owned) model.free();
    throw e;
  }
  const { optimizer, trained, kernelGroups } = groups;
  const kernelParams = optimizer.groups.filter((g) => kernelGroups.has(g.name)).flatMap((g) => g.params);
  // the two-step schedule's first step clips and updates the kernels alone
  const updatedAt = (step: number) => (step < s.kernelsFirstSteps ? kernelParams : trained);
  const schedule = scheduleOf(s);
  const kernelSchedule = scaledSchedule(schedule, s.kernelLr);

  let step = latest?.step ?? 0;
  let tokens = latest?.state.tokens ?? 0;
  const losses: number[] = latest ? [...latest.state.metrics.losses] : [];
  let skipped = latest?.state.metrics.skippedSteps ?? 0;
  let consecutive = latest?.state.metrics.consecutiveSkips ?? 0;
  const evals: { step: number; valLoss: number }[] = latest ? [...latest.state.metrics.evals] : [];
  const elapsedBefore = latest?.state.metrics.elapsedSeconds ?? 0;
  let trainSeconds = 0;
  let runTokens = 0;
  let lastCheckpoint: string | null = latest?.dir ?? null;
  let lastSaved = latest?.step ?? -1;

  const trainerState = (): TrainerState => ({
    format: 'supra-trainer-state',
    version: 1,
    step,
    totalSteps: s.totalSteps,
    tokens,
    schedule: { lr: s.lr, minLr: s.minLr, warmupSteps: s.warmupSteps, totalSteps: s.totalSteps, kernelLr: s.kernelLr },
    data: data.position(),
    rng: { seed: s.seed, drawsDuringTraining: 0 },
    metrics: { losses, skippedSteps: skipped, consecutiveSkips: consecutive, evals, elapsedSeconds: elapsedBefore + trainSeconds },
    settings: s as unknown as Record<string, unknown>,
    savedAt: new Date().toISOString(),
  });
  const advice = { continueWith: o.continueWith ?? '--resume' };
  const save = () => {
    const t0 = performance.now();
    lastCheckpoint = saveTrainingCheckpoint(out, { model, optimizer, state: trainerState(), tokenizerDir, keep: s.keep }, advice);
    tokenizerDir = lastCheckpoint; // earlier folders may be pruned; the newest holds the copies
    lastSaved = step;
    say(`saved ${lastCheckpoint} (${((performance.now() - t0) / 1000).toFixed(1)}s)`);
  };
  const runEval = (): number | null => {
    const r = evaluate(model, data, s.evalSequences, B);
    if (!r) return null;
    evals.push({ step, valLoss: r.loss });
    say(`step ${step}: val_loss ${r.loss.toFixed(4)} | val_ppl ${Math.exp(r.loss).toFixed(2)} (${r.tokens} tokens)`);
    return r.loss;
  };

  let interrupted = false;
  const onSigint = () => {
    if (interrupted) {
      process.stderr.write('\nsupra: second interrupt: exiting without saving\n');
      process.exit(130);
    }
    interrupted = true;
    process.stderr.write('\nsupra: interrupt: saving a checkpoint after this step (Ctrl-C again quits without saving)\n');
  };
  if (o.handleSigint) process.on('SIGINT', onSigint);
  const inputs = allocI32(B * T);
  const targets = allocI32(B * T);
  const throughput = new Throughput();
  let status: TrainStatus = 'completed';
  try {
    const nTrained = trained.reduce((n, p) => n + p.data.length, 0);
    say(
      `training ${s.modelSource} (${model.config.architecture}, ${model.store.numel().toLocaleString('en')} parameters, ${nTrained.toLocaleString('en')} trained)\n` +
        `  ${s.totalSteps} steps × ${s.tokensPerStep} tokens (batch ${B} · seq ${T} · accum ${accum}) = ${(s.totalSteps * s.tokensPerStep).toLocaleString('en')} tokens; ` +
        `${epochsText(s.totalSteps * s.tokensPerStep, data.trainTokens)}\n` +
        `  lr ${num(s.lr)} → ${num(s.minLr)} (warm-up ${s.warmupSteps}, cosine)${kernelGroups.size ? `, kernels ${num(s.kernelLr)}` : ''}; ` +
        `AdamW β (${s.betas.map(num).join(', ')}), eps ${num(s.eps)}, wd ${num(s.weightDecay)}` +
        `${s.decayNormsAndBiases ? '' : ' (matrices only)'}; clip ${s.gradClip ? num(s.gradClip) : 'off'}; z-loss ${num(s.zLoss)}; train ${s.trainOnly}` +
        (s.kernelsFirstSteps > 0 ? ` (kernels only for the first ${s.kernelsFirstSteps} steps)` : '') +
        (latest ? `\n  resuming from ${latest.dir} at step ${step}` : ''),
    );
    const repeats = repeatWarning(s.totalSteps * s.tokensPerStep, data.trainTokens);
    if (repeats) say(repeats);
    if (!latest && s.evalSequences > 0) {
      const v = runEval();
      if (v !== null) metrics.append({ step: 0, tokens: 0, val_loss: v, val_ppl: Math.exp(v) });
    }

    while (step < s.totalSteps) {
      if (interrupted || o.signal?.aborted) {
        status = 'interrupted';
        break;
      }
      if (o.stopAt !== undefined && step >= o.stopAt) {
        status = 'stopped';
        break;
      }
      const t0 = performance.now();
      model.zeroGrad();
      let lossSum = 0;
      for (let micro = 0; micro < accum; micro++) {
        const seqs = data.nextTrain(B);
        if (seqs.length !== B * (T + 1)) throw new Error(`supra: train: the data gave ${seqs.length} token ids for a batch of ${B} × ${T + 1}`);
        splitRows(seqs, 0, B, T, inputs, targets);
        lossSum += model.loss(inputs, B, T, { zLoss: s.zLoss, targets });
        model.backward();
      }
      const loss = lossSum / accum;
      o.hooks?.afterBackward?.(step, model);
      const updated = updatedAt(step);
      let sumSq = 0;
      for (const p of updated) sumSq += sumSquares(p.grad!);
      const gradNorm = Math.sqrt(sumSq) / accum;
      const lr = lrAt(step, schedule);
      const ok = Number.isFinite(loss) && Number.isFinite(gradNorm);
      if (ok) {
        const clipCoef = s.gradClip > 0 ? Math.min(1, s.gradClip / (gradNorm + 1e-6)) : 1;
        const factor = clipCoef / accum;
        if (factor !== 1) for (const p of updated) scale(p.grad!, factor);
        o.hooks?.beforeUpdate?.(step, model, { gradNorm, clipCoef, lr });
        const kernelLr = lrAt(step, kernelSchedule);
        for (const g of optimizer.groups) g.lr = kernelGroups.has(g.name) ? kernelLr : lr;
        optimizer.step(updated === trained ? undefined : (g) => kernelGroups.has(g.name));
        consecutive = 0;
      } else {
        skipped++;
        consecutive++;
      }
      step++;
      tokens += s.tokensPerStep;
      runTokens += s.tokensPerStep;
      losses.push(loss);
      const seconds = (performance.now() - t0) / 1000;
      trainSeconds += seconds;
      throughput.record(seconds);
      const record: MetricsRecord = { step, loss, lr, grad_norm: gradNorm, tokens, tokens_per_s: s.tokensPerStep / seconds };
      if (!ok) {
        record.skipped = true;
        say(`step ${step}: non-finite ${Number.isFinite(loss) ? 'gradient' : 'loss'} (loss ${loss}, grad norm ${gradNorm}): step skipped (${consecutive} in a row, ${skipped} in all)`);
        if (consecutive >= s.maxSkips) {
          metrics.append(record);
          throw new TrainingDiverged(
            `supra: train: ${consecutive} consecutive steps with a non-finite loss or gradient (up to step ${step}); stopping. ` +
              (lastCheckpoint ? `The last good checkpoint is ${lastCheckpoint}.` : 'No checkpoint was saved.') +
              ' Try a lower --lr, or check the data.',
            step,
            lastCheckpoint,
          );
        }
      }
      if (step === s.totalSteps || (s.evalEvery > 0 && step % s.evalEvery === 0)) {
        const v = runEval();
        if (v !== null) {
          record.val_loss = v;
          record.val_ppl = Math.exp(v);
        }
      }
      metrics.append(record);
      if (progress && (step % (o.logEvery ?? TRAIN_DEFAULTS.logEvery) === 0 || step === s.totalSteps)) {
        progress.update({
          step,
          totalSteps: s.totalSteps,
          loss,
          lr,
          tokensPerSecond: throughput.tokensPerSecond(s.tokensPerStep),
          etaSeconds: throughput.etaSeconds(s.totalSteps - step),
          skipped,
        });
      }
      if (ok && s.saveEvery > 0 && step % s.saveEvery === 0 && step < s.totalSteps) save();
      await yieldToEventLoop(); // lets SIGINT and abort signals arrive
    }
    progress?.end();

    let finalDir: string | null = null;
    if (status === 'completed' && !evals.some((e) => e.step === step)) runEval();
    if (step > lastSaved) save();
    if (status === 'completed') {
      finalDir = saveFinalModel(out, model, tokenizerDir, advice);
      say(`final model: ${finalDir}`);
    } else {
      say(`${status} at step ${step}/${s.totalSteps}; continue with ${advice.continueWith} (${lastCheckpoint})`);
    }
    const initial = evals.find((e) => e.step === 0);
    const last = evals.length > 0 ? evals[evals.length - 1]! : null;
    return {
      status,
      step,
      totalSteps: s.totalSteps,
      tokens,
      losses,
      initialValLoss: initial ? initial.valLoss : null,
      finalValLoss: last && last.step === step ? last.valLoss : null,
      skippedSteps: skipped,
      checkpoint: lastCheckpoint,
      finalDir,
      tokensPerSecond: trainSeconds > 0 ? runTokens / trainSeconds : elapsedBefore > 0 ? (latest?.state.tokens ?? 0) / elapsedBefore : 0,
      stepsThisRun: step - (latest?.step ?? 0),
      settings: s,
    };
  } finally {
    progress?.end();
    if (o.handleSigint) process.off('SIGINT', onSigint);
    free(inputs);
    free(targets);
    optimizer.free();
    if (owned) model.free();
  }
}
