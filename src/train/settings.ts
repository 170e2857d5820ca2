// A run's settings: train()'s options with the defaults filled in, the step count derived from the budget
// and every value checked (against the recipe table, src/train/recipe.ts), or on resume the settings the
// run was started with. They are stored in trainer_state.json.
import { resolve } from 'node:path';
import { parseLoraTargets } from '../models/lora.js';
import { checkRecipeValue, checkValue, defaultEvalSequences, defaultMinLr, defaultTransferSteps, defaultWarmupSteps, TRAIN_DEFAULTS, type Recipe } from './recipe.js';
import { checkSchedule, type LrSchedule } from './schedule.js';

/** What train() takes that becomes a setting (TrainOptions has these and more). */
export interface SettingsOptions extends Partial<Recipe> {
  /** Training budget in tokens: steps = ⌊tokens / (batchSize · seqLen · gradAccum)⌋. */
  tokens?: number;
  /** Or the number of optimizer steps directly. */
  steps?: number;
  /** Must equal data.seqLen when given. */
  seqLen?: number;
  /** Save a checkpoint every N steps (0: only at the end). */
  saveEvery?: number;
  /** Keep the newest K checkpoints. */
  keep?: number;
  /** Validation loss every N steps (0: only before and after training). */
  evalEvery?: number;
  /** Validation sequences per evaluation (0: no evaluation; default: defaultEvalSequences). */
  evalSequences?: number;
  /** Also evaluate before the first step (logged as step 0). */
  evalAtStart?: boolean;
  /** Recompute each layer's activations for its backward (DecoderLM.setActivationCheckpointing). */
  checkpointActivations?: boolean;
  /** Consecutive non-finite steps that stop the run. */
  maxSkips?: number;
  /** Settings of the data source, stored in trainer_state.json so a resumed run can reopen it. */
  dataSettings?: Record<string, unknown>;
}

/** The resolved settings of a run, stored in trainer_state.json. */
export interface TrainSettings extends Required<Omit<Recipe, 'minLr' | 'warmupSteps' | 'kernelLr' | 'transferSteps'>> {
  minLr: number;
  warmupSteps: number;
  kernelLr: number;
  /** Attention transfer's stage-1 steps (0 under the full recipe). */
  transferSteps: number;
  seqLen: number;
  totalSteps: number;
  tokensPerStep: number;
  saveEvery: number;
  keep: number;
  evalEvery: number;
  evalSequences: number;
  evalAtStart: boolean;
  checkpointActivations: boolean;
  maxSkips: number;
  /** Where the model came from (folder, "init:<config>", "memory"), for the record. */
  modelSource: string;
  tokenizerDir: string | null;
  data: Record<string, unknown> | null;
}

// ---------------------------------------------------------------- the budget

/** Above this many passes over the training tokens a run is warned that it mostly repeats its data. */
export const MANY_EPOCHS = 4;

/** "13.1 epochs of 19,020 training tokens": how often a budget of `tokens` reads the training split. */
export function epochsText(tokens: number, trainTokens: number): string {
  const epochs = tokens / Math.max(1, trainTokens);
  return `${epochs < 10 ? epochs.toFixed(2) : epochs.toFixed(1)} epochs of ${trainTokens.toLocaleString('en-US')} training tokens`;
}

/** A warning when a budget of `tokens` passes over the training split more than MANY_EPOCHS times, else null. */
export function repeatWarning(tokens: number, trainTokens: number): string | null {
  if (tokens <= MANY_EPOCHS * Math.max(1, trainTokens)) return null;
  return (
    `warning: ${tokens.toLocaleString('en-US')} tokens = ${epochsText(tokens, trainTokens)} (more than ${MANY_EPOCHS}): ` +
    'the model sees the same text again and again and overfits it; more data or a smaller budget (--tokens, --steps) usually gives a better model'
  );
}

// ---------------------------------------------------------------- settings

/** Settings that define the computation: a resumed run must use the same ones. */
const RECIPE_KEYS = [
  'batchSize', 'gradAccum', 'seqLen', 'totalSteps', 'lr', 'minLr', 'warmupSteps', 'kernelLr', 'betas', 'eps',
  'weightDecay', 'decayNormsAndBiases', 'gradClip', 'zLoss', 'trainOnly', 'kernelsFirstSteps', 'seed',
  'recipe', 'transferSteps', 'loraRank', 'loraAlpha', 'loraTargets', 'matmulPrecision',
] as const;

/** Fill defaults, derive the step count from the budget, check every value. */
export function resolveSettings(o: SettingsOptions, seqLen: number, modelSource: string, tokenizerDir: string | null, parameters: number): TrainSettings {
  const d = TRAIN_DEFAULTS;
  const check = checkRecipeValue;
  const batchSize = check('batchSize', o.batchSize ?? d.batchSize);
  const gradAccum = check('gradAccum', o.gradAccum ?? d.gradAccum);
  const tokensPerStep = batchSize * seqLen * gradAccum;
  let totalSteps: number;
  if (o.steps !== undefined && o.tokens !== undefined) throw new Error('supra: train: give tokens or steps, not both');
  if (o.steps !== undefined) totalSteps = checkValue(o.steps, { kind: 'integer', min: 1 }, 'steps');
  else if (o.tokens !== undefined) {
    checkValue(o.tokens, { kind: 'number', min: 0 }, 'tokens');
    totalSteps = Math.floor(o.tokens / tokensPerStep);
    if (totalSteps < 1) {
      throw new RangeError(`supra: train: a budget of ${o.tokens} tokens is less than one step (batch ${batchSize} · seq ${seqLen} · accum ${gradAccum} = ${tokensPerStep} tokens)`);
    }
  } else throw new Error('supra: train: give a budget: tokens (or steps)');
  const lr = check('lr', o.lr ?? d.lr);
  const betas = o.betas ?? d.betas;
  const recipe = check('recipe', o.recipe ?? d.recipe);
  const transfer = recipe === 'attention-transfer';
  if (!transfer) {
    const given = (['transferSteps', 'loraRank', 'loraAlpha', 'loraTargets'] as const).filter((k) => o[k] !== undefined);
    if (given.length) throw new Error(`supra: train: ${given.join(', ')} ${given.length > 1 ? 'are' : 'is'} for recipe "attention-transfer" (the full recipe trains every parameter, with no LoRA)`);
  }
  const s: TrainSettings = {
    batchSize,
    gradAccum,
    seqLen,
    totalSteps,
    tokensPerStep,
    lr,
    minLr: check('minLr', o.minLr ?? defaultMinLr(lr)),
    warmupSteps: check('warmupSteps', o.warmupSteps ?? defaultWarmupSteps(totalSteps)),
    kernelLr: check('kernelLr', o.kernelLr ?? lr),
    betas: [betas[0], betas[1]],
    eps: check('eps', o.eps ?? d.eps),
    weightDecay: check('weightDecay', o.weightDecay ?? d.weightDecay),
    decayNormsAndBiases: o.decayNormsAndBiases ?? d.decayNormsAndBiases,
    gradClip: check('gradClip', o.gradClip ?? d.gradClip),
    zLoss: check('zLoss', o.zLoss ?? d.zLoss),
    trainOnly: o.trainOnly ?? d.trainOnly,
    kernelsFirstSteps: check('kernelsFirstSteps', o.kernelsFirstSteps ?? d.kernelsFirstSteps),
    seed: check('seed', o.seed ?? d.seed),
    matmulPrecision: check('matmulPrecision', o.matmulPrecision ?? d.matmulPrecision),
    recipe,
    transferSteps: transfer ? check('transferSteps', o.transferSteps ?? defaultTransferSteps(totalSteps)) : 0,
    loraRank: check('loraRank', o.loraRank ?? d.loraRank),
    loraAlpha: check('loraAlpha', o.loraAlpha ?? d.loraAlpha),
    loraTargets: parseLoraTargets(check('loraTargets', o.loraTargets ?? d.loraTargets), 'train: loraTargets').join(','),
    saveEvery: check('saveEvery', o.saveEvery ?? d.saveEvery),
    keep: check('keep', o.keep ?? d.keep),
    evalEvery: check('evalEvery', o.evalEvery ?? d.evalEvery),
    evalSequences: check('evalSequences', o.evalSequences ?? defaultEvalSequences(parameters, seqLen)),
    evalAtStart: o.evalAtStart ?? d.evalAtStart,
    checkpointActivations: o.checkpointActivations ?? d.checkpointActivations,
    maxSkips: check('maxSkips', o.maxSkips ?? d.maxSkips),
    modelSource,
    tokenizerDir: tokenizerDir === null ? null : resolve(tokenizerDir),
    data: o.dataSettings ?? null,
  };
  check('trainOnly', s.trainOnly);
  if (s.kernelsFirstSteps > 0 && s.trainOnly !== 'all') throw new Error('supra: train: kernelsFirstSteps is a two-step schedule for trainOnly "all"; with trainOnly "kernels" every step trains only the kernels');
  if (s.kernelsFirstSteps > 0 && s.kernelsFirstSteps >= s.totalSteps) throw new RangeError(`supra: train: kernelsFirstSteps ${s.kernelsFirstSteps} leaves no step to train everything (${s.totalSteps} steps in all)`);
  if (transfer) {
    if (s.trainOnly !== 'all' || s.kernelsFirstSteps > 0) throw new Error('supra: train: recipe "attention-transfer" sets what trains when (its own two stages); leave trainOnly "all" and kernelsFirstSteps 0');
    if (s.transferSteps >= s.totalSteps) throw new RangeError(`supra: train: transferSteps ${s.transferSteps} leaves no step for stage 2 (LoRA and kernels; ${s.totalSteps} steps in all)`);
    if (!(s.loraAlpha > 0)) throw new RangeError(`supra: train: loraAlpha must be > 0, got ${s.loraAlpha}`);
  }
  if (s.minLr > s.lr) throw new RangeError(`supra: train: minLr ${s.minLr} is above lr ${s.lr}`);
  checkSchedule(scheduleOf(s));
  return s;
}

/** The lr schedule of the non-kernel parameters. */
export function scheduleOf(s: TrainSettings): LrSchedule {
  return { peak: s.lr, floor: s.minLr, warmupSteps: s.warmupSteps, totalSteps: s.totalSteps };
}

/** On resume: the saved settings win; recipe values given again must agree with them. */
export function mergeResumed(saved: TrainSettings, o: SettingsOptions): TrainSettings {
  const batchSize = o.batchSize ?? saved.batchSize;
  const gradAccum = o.gradAccum ?? saved.gradAccum;
  const tokensPerStep = batchSize * saved.seqLen * gradAccum;
  const explicit: Partial<Record<(typeof RECIPE_KEYS)[number], unknown>> = {
    batchSize: o.batchSize, gradAccum: o.gradAccum, seqLen: o.seqLen,
    totalSteps: o.steps ?? (o.tokens !== undefined ? Math.floor(o.tokens / tokensPerStep) : undefined),
    lr: o.lr, minLr: o.minLr, warmupSteps: o.warmupSteps, kernelLr: o.kernelLr, betas: o.betas, eps: o.eps, weightDecay: o.weightDecay,
    decayNormsAndBiases: o.decayNormsAndBiases, gradClip: o.gradClip, zLoss: o.zLoss, trainOnly: o.trainOnly,
    kernelsFirstSteps: o.kernelsFirstSteps, seed: o.seed, recipe: o.recipe, transferSteps: o.transferSteps, loraRank: o.loraRank,
    loraAlpha: o.loraAlpha, matmulPrecision: o.matmulPrecision,
    loraTargets: o.loraTargets === undefined ? undefined : parseLoraTargets(o.loraTargets, 'train --resume: loraTargets').join(','),
  };
  // runs saved before the recipe options existed were full uptraining
  const d = TRAIN_DEFAULTS;
  saved = {
    ...saved, recipe: saved.recipe ?? 'full', transferSteps: saved.transferSteps ?? 0, loraRank: saved.loraRank ?? d.loraRank,
    loraAlpha: saved.loraAlpha ?? d.loraAlpha, loraTargets: saved.loraTargets ?? d.loraTargets,
    matmulPrecision: saved.matmulPrecision ?? 'f32', // runs saved before the option existed
  };
  for (const key of RECIPE_KEYS) {
    const v = explicit[key];
    if (v !== undefined && JSON.stringify(v) !== JSON.stringify(saved[key])) {
      throw new Error(`supra: train --resume: ${key} is ${JSON.stringify(v)}, the checkpoint's run used ${JSON.stringify(saved[key])} (resume with the same settings, or start a new output folder)`);
    }
  }
  const check = checkRecipeValue;
  return {
    ...saved,
    kernelsFirstSteps: saved.kernelsFirstSteps ?? 0, // runs saved before the option existed
    saveEvery: check('saveEvery', o.saveEvery ?? saved.saveEvery),
    keep: check('keep', o.keep ?? saved.keep),
    evalEvery: check('evalEvery', o.evalEvery ?? saved.evalEvery),
    evalSequences: check('evalSequences', o.evalSequences ?? saved.evalSequences),
    evalAtStart: o.evalAtStart ?? saved.evalAtStart ?? false,
    checkpointActivations: o.checkpointActivations ?? saved.checkpointActivations ?? false,
    maxSkips: check('maxSkips', o.maxSkips ?? saved.maxSkips),
  };
}
