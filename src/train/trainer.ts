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
// The scaling happens inside AdamW's pass (the same float32 products), which also zeroes each gradient it
// reads: the next step zeroes only the gradients that step did not update (none under the full recipe).
//
// The pieces: recipe.ts (the options, their defaults and rules), settings.ts (a run's resolved settings),
// param-groups.ts (the AdamW groups), evaluate.ts (validation loss), checkpoint.ts (saving and reading
// checkpoints), stop-signals.ts (Ctrl-C, abort), metrics.ts (progress line, metrics.jsonl); the model is
// built by models/build.ts; attention-transfer.ts adds the attention-transfer recipe's stage 1 and LoRA
// adapters. This file: the Trainer, which starts or resumes a run and steps it.
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { allocI32, free } from '../core/memory.js';
import { bf16ProductsText, hasMatmulPrecision, scale, sumSquares, withMatmulPrecision } from '../core/ops.js';
import { getBackend } from '../core/select.js';
import { buildModel, modelFromCheckpoint } from '../models/build.js';
import { DecoderLM } from '../models/decoder.js';
import type { LinearizeOptions } from '../models/linearize.js';
import type { Param } from '../layers/types.js';
import type { TokenBatches } from './batches.js';
import { RecipeParts } from './attention-transfer.js';
import {
  ADAPTER_DIR,
  loadOptimizerState,
  readLatest,
  removeUncommitted,
  saveFinalFolder,
  saveFinalModel,
  saveTrainingCheckpoint,
  type SaveHook,
  type TrainerState,
} from './checkpoint.js';
import { evaluate, splitRows } from './evaluate.js';
import { formatNumber as num, MetricsLog, ProgressLine, Throughput, type MetricsRecord } from './metrics.js';
import { buildOptimizer, type TrainedParams } from './param-groups.js';
import { TRAIN_DEFAULTS } from './recipe.js';
import { lrAt, scaledSchedule, type LrSchedule } from './schedule.js';
import { epochsText, mergeResumed, repeatWarning, resolveSettings, scheduleOf, type SettingsOptions, type TrainSettings } from './settings.js';
import { StopSignals } from './stop-signals.js';
import { checkMemoryPlan, memoryPlanText, trainingMemoryPlan, type TrainingMemoryPlan } from './memory-plan.js';

// ---------------------------------------------------------------- options

export interface TrainHooks {
  /** Called after the gradients of a step are complete, before the finite check and the update (tests). */
  afterBackward?: (step: number, model: DecoderLM) => void;
  /** Called with the final (averaged, clipped) gradients just before the optimizer step (tests). */
  beforeUpdate?: (step: number, model: DecoderLM, info: { gradNorm: number; clipCoef: number; lr: number }) => void;
  /** Called at each phase of every checkpoint and final save; a throw fails the save (tests: kills, full disks). */
  duringSave?: SaveHook;
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
  /** Parameter values the optimizer updates (the only ones with gradients and AdamW moments). */
  trainedParameters: number;
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

// ---------------------------------------------------------------- starting a run

type LatestCheckpoint = NonNullable<ReturnType<typeof readLatest>>;

/** The model and settings a run starts with, fresh or resumed. */
interface RunStart {
  model: DecoderLM;
  /** Whether the run frees the model at its end (not a caller's model in memory). */
  owned: boolean;
  /** The folder whose tokenizer files go into checkpoints (null: none). */
  tokenizerDir: string | null;
  settings: TrainSettings;
}

/** A fresh run: the model the options name, and the settings from the options and the defaults. */
function startFresh(o: TrainOptions, seqLen: number): RunStart {
  const given = [o.model !== undefined, o.init !== undefined].filter(Boolean).length;
  if (given !== 1) throw new Error('supra: train: give exactly one of model (a folder or a DecoderLM) and init (a config)');
  if (o.init !== undefined && o.linearize) throw new Error('supra: train: linearize needs a teacher model, not init');
  const { model, owned, source } = buildModel(o, o.seed ?? TRAIN_DEFAULTS.seed);
  const tokenizerDir = o.tokenizerDir ?? (typeof o.model === 'string' ? o.model : null);
  try {
    return { model, owned, tokenizerDir, settings: resolveSettings(o, seqLen, source, tokenizerDir, model.store.numel()) };
  } catch (e) {
    if (owned) model.free();
    throw e;
  }
}

/**
 * Resume from a checkpoint folder: its settings (options given again must agree), its weights (into the
 * caller's model when one is given in memory) and the data stream's position.
 */
function resumeFrom(latest: LatestCheckpoint, o: TrainOptions, data: TokenBatches): RunStart {
  const settings = mergeResumed(latest.state.settings as unknown as TrainSettings, o);
  if (settings.seqLen !== data.seqLen) throw new Error(`supra: train --resume: the checkpoint's run used sequences of ${settings.seqLen} tokens, the data gives ${data.seqLen}`);
  const { model, owned } = modelFromCheckpoint(latest.dir, o.model instanceof DecoderLM ? o.model : undefined);
  try {
    data.restore(latest.state.data);
  } catch (e) {
    if (owned) model.free();
    throw e;
  }
  // the checkpoint holds copies of the tokenizer files, if the run had any
  return { model, owned, tokenizerDir: latest.dir, settings };
}

// ---------------------------------------------------------------- the trainer

const yieldToEventLoop = () => new Promise<void>((r) => setImmediate(r));

/**
 * One training run in an output folder. open() starts it (fresh, or resuming <out>/latest); step() does
 * one optimizer step with its bookkeeping (validation when due, the metrics line, the progress line, a
 * checkpoint when due); run() steps until the budget is spent or a stop, then finishes: the last
 * checkpoint and, when complete, the final model. train() is open() then run(). By hand, run() is:
 *
 *   const trainer = Trainer.open(options);
 *   try {
 *     trainer.start();
 *     while (trainer.stepsDone < trainer.settings.totalSteps) trainer.step();
 *     result = trainer.finish('completed');
 *   } finally {
 *     trainer.close();
 *   }
 */
export class Trainer {
  readonly model: DecoderLM;
  readonly settings: TrainSettings;
  /** Whether the run frees the model at its end (not a caller's model in memory). */
  private readonly owned: boolean;

  // what the run has done, across resumes (restored from and saved to trainer_state.json)
  private stepCount: number;
  private tokens: number;
  private readonly losses: number[];
  private readonly evals: { step: number; valLoss: number }[];
  private skippedSteps: number;
  private consecutiveSkips: number;
  private readonly elapsedBefore: number;
  // this call's training time and tokens (evaluation and saving excluded), for tokens/s
  private trainSeconds = 0;
  private runTokens = 0;
  /** How long the last evaluation took (for the ETA). */
  private evalSeconds = 0;

  private lastCheckpoint: string | null;
  private lastSavedStep: number;
  private tokenizerDir: string | null;

  private readonly schedule: LrSchedule;
  private readonly kernelSchedule: LrSchedule;
  private readonly inputs: Int32Array;
  private readonly targets: Int32Array;
  private readonly throughput = new Throughput();
  /**
   * The gradients the last step's AdamW pass zeroed as it read them (null: none known zero, as before the
   * first step or after a skipped one); the next step zeroes the others.
   */
  private clearedGrads: ReadonlySet<Param> | null = null;
  private readonly advice: { continueWith: string };
  private closed = false;

  private constructor(
    private readonly options: TrainOptions,
    readonly out: string,
    /** The checkpoint this run resumed (null: a fresh run). */
    readonly resumedFrom: LatestCheckpoint | null,
    start: RunStart,
    private readonly params: TrainedParams,
    /** The memory plan the run was checked against (said in the header). */
    readonly memoryPlan: TrainingMemoryPlan,
    /** The attention-transfer recipe's LoRA adapters and stage-1 loss (none under the full recipe). */
    private readonly recipe: RecipeParts,
    private readonly progress: ProgressLine | null,
    private readonly metrics: MetricsLog,
  ) {
    this.model = start.model;
    this.owned = start.owned;
    this.settings = start.settings;
    this.tokenizerDir = start.tokenizerDir;
    const history = resumedFrom?.state;
    this.stepCount = history?.step ?? 0;
    this.tokens = history?.tokens ?? 0;
    this.losses = history ? [...history.metrics.losses] : [];
    this.skippedSteps = history?.metrics.skippedSteps ?? 0;
    this.consecutiveSkips = history?.metrics.consecutiveSkips ?? 0;
    this.evals = history ? [...history.metrics.evals] : [];
    this.elapsedBefore = history?.metrics.elapsedSeconds ?? 0;
    this.lastCheckpoint = resumedFrom?.dir ?? null;
    this.lastSavedStep = resumedFrom?.step ?? -1;
    this.schedule = scheduleOf(this.settings);
    this.kernelSchedule = scaledSchedule(this.schedule, this.settings.kernelLr);
    this.advice = { continueWith: options.continueWith ?? '--resume' };
    const { batchSize, seqLen } = this.settings;
    this.inputs = allocI32(batchSize * seqLen);
    this.targets = allocI32(batchSize * seqLen);
  }

  /** Optimizer steps done, counting those of the earlier runs of a resumed folder. */
  get stepsDone(): number {
    return this.stepCount;
  }

  /**
   * Start a run in options.out: a fresh one (the folder must not already hold a run) or, with `resume`,
   * <out>/latest exactly. Leftovers of a killed run or a failed save are removed first.
   */
  static open(o: TrainOptions): Trainer {
    const data = o.data;
    if (!data) throw new Error('supra: train: no data given');
    if (o.seqLen !== undefined && o.seqLen !== data.seqLen) throw new Error(`supra: train: seqLen ${o.seqLen} given, but the data is packed in sequences of ${data.seqLen}`);
    const out = resolve(o.out);
    mkdirSync(out, { recursive: true });
    const progress = o.quiet ? null : new ProgressLine(o.progressStream);
    const metrics = new MetricsLog(join(out, 'metrics.jsonl'));

    const latest = readLatest(out);
    if (!o.resume && latest) throw new Error(`supra: train: ${out} already holds a training run (latest: ${latest.name}); resume it (--resume) or choose a new output folder`);
    if (o.resume && !latest) throw new Error(`supra: train --resume: ${out} has no checkpoint to resume (no ${join(out, 'latest')})`);
    // a killed run or a failed save may have left temp folders (a partial checkpoint can be most of a full disk)
    removeUncommitted(out, latest?.step ?? -1);

    const start = latest ? resumeFrom(latest, o, data) : startFresh(o, data.seqLen);
    metrics.truncateAfter(latest?.step ?? -1); // a resumed run redoes the steps logged after its checkpoint
    let params: TrainedParams;
    let plan: TrainingMemoryPlan;
    let recipe: RecipeParts | null = null;
    try {
      const { model, settings } = start;
      if (!hasMatmulPrecision(settings.matmulPrecision)) {
        throw new Error(`supra: train: --matmul-precision ${settings.matmulPrecision} needs the native backend ` +
          `(this run is on ${getBackend().name}${getBackend().name === 'native' ? ', whose add-on predates BF16 products on every CPU: rebuild it with npm install' : ''}); train at f32`);
      }
      model.setActivationCheckpointing(settings.checkpointActivations);
      recipe = RecipeParts.open(model, settings, latest?.dir ?? null);
      params = buildOptimizer(model, settings, recipe.lora);
      // what the run will take, checked before gradients and moments are allocated
      plan = trainingMemoryPlan(model, params.trained, settings.batchSize, settings.seqLen);
      checkMemoryPlan(plan, settings.modelSource);
      // gradients (and so AdamW moments) for the trained parameters only; the others stay as stored
      model.enableGrads(params.trainedInModel);
      recipe.lora?.enableGrads();
      if (latest) loadOptimizerState(latest.dir, params.optimizer);
    } catch (e) {
      recipe?.free(false);
      if (start.owned) start.model.free();
      throw e;
    }
    return new Trainer(o, out, latest, start, params, plan, recipe, progress, metrics);
  }

  /** Train to the end of the budget, or until a stop (stopAt, an abort, Ctrl-C); then finish and free. */
  async run(): Promise<TrainResult> {
    const stop = new StopSignals(this.options.signal, this.options.handleSigint === true);
    try {
      this.start();
      let status: TrainStatus = 'completed';
      while (this.stepsDone < this.settings.totalSteps) {
        if (stop.requested) {
          status = 'interrupted';
          break;
        }
        if (this.options.stopAt !== undefined && this.stepsDone >= this.options.stopAt) {
          status = 'stopped';
          break;
        }
        this.step();
        await yieldToEventLoop(); // lets SIGINT and abort signals arrive
      }
      return this.finish(status);
    } finally {
      this.progress?.end();
      stop.dispose();
      this.close();
    }
  }

  /** Say the run's header; with evalAtStart a fresh run then measures (and logs as step 0) the validation loss before training. */
  start(): void {
    this.announce();
    if (!this.resumedFrom && this.settings.evalAtStart && this.settings.evalSequences > 0) {
      const v = this.validate();
      if (v !== null) this.metrics.append({ step: 0, tokens: 0, val_loss: v, val_ppl: Math.exp(v) });
    }
  }

  /**
   * One optimizer step, then its bookkeeping: the validation loss when due (every evalEvery steps and at
   * the last), the metrics.jsonl line, the progress line, a checkpoint when due. Returns the metrics line.
   * Throws TrainingDiverged after maxSkips non-finite steps in a row.
   */
  step(): MetricsRecord {
    const s = this.settings;
    if (this.stepsDone >= s.totalSteps) throw new Error(`supra: train: the run has done all of its ${s.totalSteps} steps`);
    const t0 = performance.now();
    const { loss, gradNorm, lr, ok } = this.update();
    if (ok) this.consecutiveSkips = 0;
    else {
      this.skippedSteps++;
      this.consecutiveSkips++;
    }
    const step = ++this.stepCount;
    this.tokens += s.tokensPerStep;
    this.runTokens += s.tokensPerStep;
    this.losses.push(loss);
    const seconds = (performance.now() - t0) / 1000;
    this.trainSeconds += seconds;
    this.throughput.record(seconds);

    const record: MetricsRecord = { step, loss, lr, grad_norm: gradNorm, tokens: this.tokens, tokens_per_s: s.tokensPerStep / seconds };
    // attention transfer's stage 1: `loss` is the attention-output MSE, not a next-token loss
    if (RecipeParts.isTransferStep(s, step - 1)) record.objective = 'attention_mse';
    if (!ok) this.skipped(record, loss, gradNorm);
    if (step === s.totalSteps || (s.evalEvery > 0 && step % s.evalEvery === 0)) {
      const v = this.validate();
      if (v !== null) {
        record.val_loss = v;
        record.val_ppl = Math.exp(v);
      }
    }
    this.metrics.append(record);
    if (this.progress && (step % (this.options.logEvery ?? TRAIN_DEFAULTS.logEvery) === 0 || step === s.totalSteps)) {
      this.progress.update({
        step,
        totalSteps: s.totalSteps,
        loss,
        lr,
        tokensPerSecond: this.throughput.tokensPerSecond(s.tokensPerStep),
        etaSeconds: this.throughput.etaSeconds(s.totalSteps - step) + this.evalsAfter(step) * this.evalSeconds,
        skipped: this.skippedSteps,
        memoryBytes: process.memoryUsage.rss(),
      });
    }
    if (ok && s.saveEvery > 0 && step % s.saveEvery === 0 && step < s.totalSteps) this.save();
    return record;
  }

  /**
   * The step's arithmetic (see the file header): forward and backward over gradAccum micro-batches, the
   * gradient norm, and when loss and norm are finite the clipped AdamW update at the schedule's lr.
   */
  private update(): { loss: number; gradNorm: number; lr: number; ok: boolean } {
    const s = this.settings;
    const { model, options: o } = this;
    const { optimizer, trained, kernelGroups, kernelParams } = this.params;
    const step = this.stepsDone;
    const B = s.batchSize, T = s.seqLen, accum = s.gradAccum;
    // attention transfer's stage 1: the kernels' MSE to the softmax attention outputs (attention-transfer.ts)
    const transfer = RecipeParts.isTransferStep(s, step) ? this.recipe.transfer : null;
    model.zeroGrad(this.clearedGrads ?? undefined);
    this.recipe.zeroGrad(this.clearedGrads ?? undefined);
    this.clearedGrads = null;
    let lossSum = 0;
    withMatmulPrecision(s.matmulPrecision, () => {
      for (let micro = 0; micro < accum; micro++) {
        const seqs = o.data.nextTrain(B);
        if (seqs.length !== B * (T + 1)) throw new Error(`supra: train: the data gave ${seqs.length} token ids for a batch of ${B} × ${T + 1}`);
        splitRows(seqs, 0, B, T, this.inputs, this.targets);
        if (transfer) lossSum += transfer.step(this.inputs, B, T);
        else {
          lossSum += model.loss(this.inputs, B, T, { zLoss: s.zLoss, targets: this.targets });
          model.backward();
        }
      }
    });
    const loss = lossSum / accum;
    o.hooks?.afterBackward?.(step, model);
    // the two-step schedule's first steps, and attention transfer's stage 1, clip and update the kernels alone
    const updated = step < s.kernelsFirstSteps || transfer ? kernelParams : trained;
    let sumSq = 0;
    for (const p of updated) sumSq += sumSquares(p.grad!);
    const gradNorm = Math.sqrt(sumSq) / accum;
    const lr = lrAt(step, this.schedule);
    const ok = Number.isFinite(loss) && Number.isFinite(gradNorm);
    if (ok) {
      const clipCoef = s.gradClip > 0 ? Math.min(1, s.gradClip / (gradNorm + 1e-6)) : 1;
      let factor = clipCoef / accum;
      // the hook sees the final gradients: scaled here, not in AdamW's pass (the same bits either way)
      if (o.hooks?.beforeUpdate) {
        if (factor !== 1) for (const p of updated) scale(p.grad!, factor);
        factor = 1;
        o.hooks.beforeUpdate(step, model, { gradNorm, clipCoef, lr });
      }
      const kernelLr = lrAt(step, this.kernelSchedule);
      for (const g of optimizer.groups) g.lr = kernelGroups.has(g.name) ? kernelLr : lr;
      const only = updated === trained ? undefined : (g: { name: string }) => kernelGroups.has(g.name);
      this.clearedGrads = new Set(optimizer.step(only, { gradScale: factor, clearGrads: true }));
    }
    return { loss, gradNorm, lr, ok };
  }

  /** A skipped step: say so, and stop the run (logging the step) after maxSkips in a row. */
  private skipped(record: MetricsRecord, loss: number, gradNorm: number): void {
    const step = record.step;
    record.skipped = true;
    this.say(`step ${step}: non-finite ${Number.isFinite(loss) ? 'gradient' : 'loss'} (loss ${loss}, grad norm ${gradNorm}): step skipped (${this.consecutiveSkips} in a row, ${this.skippedSteps} in all)`);
    if (this.consecutiveSkips >= this.settings.maxSkips) {
      this.metrics.append(record);
      throw new TrainingDiverged(
        `supra: train: ${this.consecutiveSkips} consecutive steps with a non-finite loss or gradient (up to step ${step}); stopping. ` +
          (this.lastCheckpoint ? `The last good checkpoint is ${this.lastCheckpoint}.` : 'No checkpoint was saved.') +
          ' Try a lower --lr, or check the data.',
        step,
        this.lastCheckpoint,
      );
    }
  }

  /** Evaluations the run will do after `step` (every evalEvery steps, and at the last). */
  private evalsAfter(step: number): number {
    const s = this.settings;
    if (s.evalSequences === 0 || step >= s.totalSteps) return 0;
    const every = s.evalEvery > 0 ? Math.floor(s.totalSteps / s.evalEvery) - Math.floor(step / s.evalEvery) : 0;
    return every + (s.evalEvery > 0 && s.totalSteps % s.evalEvery === 0 ? 0 : 1);
  }

  /** The validation loss now, recorded for this step and said; null when the run does not evaluate. */
  validate(): number | null {
    const t0 = performance.now();
    const r = evaluate(this.model, this.options.data, this.settings.evalSequences, this.settings.batchSize);
    if (!r) return null;
    this.evalSeconds = (performance.now() - t0) / 1000;
    this.evals.push({ step: this.stepsDone, valLoss: r.loss });
    this.say(`step ${this.stepsDone}: val_loss ${r.loss.toFixed(4)} | val_ppl ${Math.exp(r.loss).toFixed(2)} (${r.tokens} tokens)`);
    return r.loss;
  }

  /** Save a checkpoint of the run as it stands (see checkpoint.ts); returns its folder. */
  save(): string {
    const t0 = performance.now();
    const { model, settings: s } = this;
    const dir = saveTrainingCheckpoint(this.out, {
      model, optimizer: this.params.optimizer, state: this.trainerState(), tokenizerDir: this.tokenizerDir, keep: s.keep,
      onPhase: this.options.hooks?.duringSave, writeExtra: this.adapterWriter() ?? undefined,
    }, this.advice);
    this.lastCheckpoint = dir;
    this.tokenizerDir = dir; // earlier folders may be pruned; the newest holds the copies
    this.lastSavedStep = this.stepsDone;
    this.say(`saved ${dir} (${((performance.now() - t0) / 1000).toFixed(1)}s)`);
    return dir;
  }

  /** Everything besides weights and optimizer moments that resuming needs (trainer_state.json). */
  private trainerState(): TrainerState {
    const s = this.settings;
    return {
      format: 'supra-trainer-state',
      version: 1,
      step: this.stepsDone,
      totalSteps: s.totalSteps,
      tokens: this.tokens,
      schedule: { lr: s.lr, minLr: s.minLr, warmupSteps: s.warmupSteps, totalSteps: s.totalSteps, kernelLr: s.kernelLr },
      data: this.options.data.position(),
      rng: { seed: s.seed, drawsDuringTraining: 0 },
      metrics: {
        losses: this.losses,
        skippedSteps: this.skippedSteps,
        consecutiveSkips: this.consecutiveSkips,
        evals: this.evals,
        elapsedSeconds: this.elapsedBefore + this.trainSeconds,
      },
      settings: s as unknown as Record<string, unknown>,
      savedAt: new Date().toISOString(),
    };
  }

  /**
   * End the run: a completed one gets its last validation loss (unless this step has one), and every run
   * a checkpoint of its last step; a completed one also the final model folder <out>/final.
   */
  finish(status: TrainStatus): TrainResult {
    this.progress?.end();
    const s = this.settings;
    const step = this.stepsDone;
    let finalDir: string | null = null;
    if (status === 'completed' && !this.evals.some((e) => e.step === step)) this.validate();
    if (step > this.lastSavedStep) this.save();
    if (status === 'completed') {
      const adapter = this.adapterWriter();
      if (adapter) {
        // a LoRA run: the adapter alone, then the final model with it merged in (plain, as any other)
        const dir = saveFinalFolder(this.out, ADAPTER_DIR, 'the final adapter', adapter, this.advice, this.options.hooks?.duringSave);
        this.say(`adapter: ${dir}`);
        this.recipe.merge();
      }
      finalDir = saveFinalModel(this.out, this.model, this.tokenizerDir, this.advice, this.options.hooks?.duringSave);
      this.say(`final model: ${finalDir}${adapter ? ' (LoRA merged)' : ''}`);
    } else {
      this.say(`${status} at step ${step}/${s.totalSteps}; continue with ${this.advice.continueWith} (${this.lastCheckpoint})`);
    }
    const initial = this.evals.find((e) => e.step === 0);
    const last = this.evals.length > 0 ? this.evals[this.evals.length - 1]! : null;
    const earlierTokens = this.resumedFrom?.state.tokens ?? 0;
    return {
      status,
      step,
      totalSteps: s.totalSteps,
      tokens: this.tokens,
      losses: this.losses,
      initialValLoss: initial ? initial.valLoss : null,
      finalValLoss: last && last.step === step ? last.valLoss : null,
      skippedSteps: this.skippedSteps,
      checkpoint: this.lastCheckpoint,
      finalDir,
      tokensPerSecond: this.trainSeconds > 0 ? this.runTokens / this.trainSeconds : this.elapsedBefore > 0 ? earlierTokens / this.elapsedBefore : 0,
      stepsThisRun: step - (this.resumedFrom?.step ?? 0),
      trainedParameters: this.params.trained.reduce((n, p) => n + p.data.length, 0),
      settings: s,
    };
  }

  /** A LoRA run's adapter files as the run stands (the kernels as modules_to_save); null for a full run. */
  private adapterWriter(): ((dir: string) => string[]) | null {
    return this.recipe.adapterWriter(this.params.kernelParams, this.settings.modelSource);
  }

  /** Free the step buffers, the optimizer and (unless it is the caller's) the model; once. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.progress?.end();
    free(this.inputs);
    free(this.targets);
    this.params.optimizer.free();
    this.recipe.free(!this.owned);
    if (this.owned) this.model.free();
  }

  /** The run's header: the model, the budget and its epochs, the recipe; a warning when the budget repeats the data. */
  private announce(): void {
    const { model, settings: s, params } = this;
    const data = this.options.data;
    const nTrained = params.trained.reduce((n, p) => n + p.data.length, 0);
    this.say(
      `training ${s.modelSource} (${model.config.architecture}, ${model.store.numel().toLocaleString('en')} parameters, ${nTrained.toLocaleString('en')} trained)\n` +
        `  ${s.totalSteps} steps × ${s.tokensPerStep} tokens (batch ${s.batchSize} · seq ${s.seqLen} · accum ${s.gradAccum}) = ${(s.totalSteps * s.tokensPerStep).toLocaleString('en')} tokens; ` +
        `${epochsText(s.totalSteps * s.tokensPerStep, data.trainTokens)}\n` +
        `  lr ${num(s.lr)} → ${num(s.minLr)} (warm-up ${s.warmupSteps}, cosine)${params.kernelGroups.size ? `, kernels ${num(s.kernelLr)}` : ''}; ` +
        `AdamW β (${s.betas.map(num).join(', ')}), eps ${num(s.eps)}, wd ${num(s.weightDecay)}` +
        `${s.decayNormsAndBiases ? '' : ' (matrices only)'}; clip ${s.gradClip ? num(s.gradClip) : 'off'}; z-loss ${num(s.zLoss)}; ` +
        (s.matmulPrecision === 'bf16' ? `products at BF16 (${bf16ProductsText()}); ` : '') +
        (s.recipe === 'attention-transfer'
          ? `attention transfer: the kernels alone on the attention-output MSE for ${s.transferSteps} steps, then LoRA ` +
            `(r ${s.loraRank}, alpha ${num(s.loraAlpha)}, ${s.loraTargets}) and the kernels on the next-token loss; the rest frozen`
          : `train ${s.trainOnly}` + (s.kernelsFirstSteps > 0 ? ` (kernels only for the first ${s.kernelsFirstSteps} steps)` : '')) +
        `\n${memoryPlanText(this.memoryPlan)}${s.checkpointActivations ? ' (activations checkpointed)' : ''}` +
        (this.resumedFrom ? `\n  resuming from ${this.resumedFrom.dir} at step ${this.stepsDone}` : ''),
    );
    const repeats = repeatWarning(s.totalSteps * s.tokensPerStep, data.trainTokens);
    if (repeats) this.say(repeats);
  }

  private say(text: string): void {
    this.progress?.message(text);
  }
}

/**
 * Train (or uptrain) a model for a token budget. Fresh runs write into `out` (which must not already
 * hold a run); `resume` continues <out>/latest exactly. See TrainOptions, Trainer and the file header.
 */
export async function train(o: TrainOptions): Promise<TrainResult> {
  return Trainer.open(o).run();
}
