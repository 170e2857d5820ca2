// The training recipe's options, declared once: for each, its command-line flag, what its value must be,
// its default and its --help text. train() fills and checks its options from this table (TRAIN_DEFAULTS,
// checkRecipeValue); `supra train` and `supra demo` build their flags and --help lines from it
// (src/cli/recipe-options.ts); the study and the demo start from EMBEDDED_TEACHER_RECIPE.
import { DEFAULT_LORA_TARGETS, LORA_TARGET_MODULES } from '../models/lora.js';
import { formatNumber } from './metrics.js';
import { MATMUL_PRECISIONS, type MatmulPrecision } from '../core/backend.js';

export type TrainOnly = 'all' | 'kernels';

/**
 * 'full': the paper's uptraining (every parameter, next-token loss). 'attention-transfer': LoLCATs' two
 * stages on a SUPRA model whose teacher weights stay frozen: the kernels alone trained to reproduce each
 * layer's softmax attention output (models/attention_transfer.ts), then LoRA adapters plus the kernels
 * with the next-token loss.
 */
export type RecipeName = 'full' | 'attention-transfer';

/**
 * The recipe (defaults in TRAIN_DEFAULTS). β, weight decay, its reach, clipping and z-loss are the paper's
 * (open_lm's); the peak lr 3e-4 with a floor of lr/10 is this project's default for small models — set
 * --lr for the model at hand (uptraining a large pretrained model wants a much smaller one).
 */
export interface Recipe {
  /** Sequences per micro-batch. */
  batchSize: number;
  /** Micro-batches per optimizer step. */
  gradAccum: number;
  /** Peak learning rate of the non-kernel parameters. */
  lr: number;
  /** The cosine's floor (default lr / 10). */
  minLr?: number;
  /** Linear warm-up steps (default min(1000, ⌊steps / 10⌋)). */
  warmupSteps?: number;
  /** Peak learning rate of the SUPRA kernel parameters (default lr). */
  kernelLr?: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  /**
   * Whether 1-D parameters (norm gains, biases) are decayed too. Default true, as open_lm (the paper's
   * code) applies weight decay to every parameter; false follows GPT-2/nanoGPT (decay matrices only).
   */
  decayNormsAndBiases: boolean;
  /** Clip the global gradient norm to this (0: no clipping). */
  gradClip: number;
  /** z-loss coefficient: adds zLoss · mean(logsumexp²). */
  zLoss: number;
  /** 'kernels': only the new SUPRA parameters (kernel_q, kernel_k, q_norm, k_norm) are updated. */
  trainOnly: TrainOnly;
  /**
   * A two-step schedule: for the first N optimizer steps only the new SUPRA parameters are updated (as
   * trainOnly 'kernels'), then every parameter. One lr schedule spans both; the teacher weights' AdamW
   * moments start when they start training. 0 (the default): no first step.
   */
  kernelsFirstSteps: number;
  /** Seed of a random initialisation or of --linearize's kernels. */
  seed: number;
  /**
   * The training steps' large products: 'f32' (the reference, default) or 'bf16' (operands rounded to BF16,
   * float32 sums; native backend, faster with AVX-512 BF16 or AMX). Parameters, gradients and AdamW stay float32,
   * and validation runs at float32.
   */
  matmulPrecision: MatmulPrecision;
  /** The recipe: the paper's full uptraining (default) or attention transfer + LoRA. */
  recipe: RecipeName;
  /**
   * Attention transfer: the first N optimizer steps of the budget are its stage 1 (kernels only, MSE to
   * the softmax attention outputs); the rest stage 2 (LoRA + kernels, next-token loss). One lr schedule
   * spans both. 0: LoRA from the first step. Default ⌊steps / 4⌋.
   */
  transferSteps?: number;
  /** LoRA rank r (attention transfer's stage 2). */
  loraRank: number;
  /** LoRA alpha: updates are scaled by alpha / r. */
  loraAlpha: number;
  /** The projections LoRA adapts in every layer, comma-separated (models/lora.ts LORA_TARGET_MODULES). */
  loraTargets: string;
}

/**
 * What a value must be. An integer has a minimum; a number with `min: 0` is a finite number ≥ 0 (one
 * without, β1 and β2, is checked by AdamW: in [0, 1)); a choice is one of its words; a list some of them.
 */
export type ValueRule =
  | { readonly kind: 'integer'; readonly min: number }
  | { readonly kind: 'number'; readonly min?: 0 }
  | { readonly kind: 'boolean' }
  /** A boolean that is off unless its flag is given, bare (--checkpoint-activations). */
  | { readonly kind: 'switch' }
  | { readonly kind: 'choice'; readonly choices: readonly string[] }
  /** A comma-separated list of distinct words from `choices`, at least one. */
  | { readonly kind: 'list'; readonly choices: readonly string[] };

/** A default computed from other settings: what --help says it is. */
export interface DerivedDefault {
  readonly derived: string;
}

export interface RecipeOption {
  /** The command-line flag, without its dashes. */
  readonly flag: string;
  /** The value's placeholder in --help (a boolean or a choice shows its words). */
  readonly value?: string;
  readonly rule: ValueRule;
  readonly default: number | boolean | string | DerivedDefault;
  /** What it does; --help adds the default. */
  readonly help: string;
}

/**
 * Every recipe option, in --help order. Besides the recipe itself: the sequence length the commands pack
 * the data in (train() takes it from the data), and the run's checkpoints, evaluations and progress lines.
 */
export const RECIPE_OPTIONS = {
  batchSize: { flag: 'batch-size', value: 'N', rule: { kind: 'integer', min: 1 }, default: 8, help: 'sequences per micro-batch' },
  seqLen: { flag: 'seq-len', value: 'N', rule: { kind: 'integer', min: 1 }, default: 256, help: 'tokens per sequence' },
  gradAccum: { flag: 'grad-accum', value: 'N', rule: { kind: 'integer', min: 1 }, default: 1, help: 'micro-batches per optimizer step' },
  lr: { flag: 'lr', value: 'LR', rule: { kind: 'number', min: 0 }, default: 3e-4, help: 'peak learning rate' },
  minLr: { flag: 'min-lr', value: 'LR', rule: { kind: 'number', min: 0 }, default: { derived: 'lr/10' }, help: 'where the cosine ends' },
  warmupSteps: { flag: 'warmup-steps', value: 'N', rule: { kind: 'integer', min: 0 }, default: { derived: 'min(1000, steps/10)' }, help: 'linear warm-up steps' },
  kernelLr: { flag: 'kernel-lr', value: 'LR', rule: { kind: 'number', min: 0 }, default: { derived: '--lr' }, help: 'peak lr of the new SUPRA parameters' },
  beta1: { flag: 'beta1', value: 'B', rule: { kind: 'number' }, default: 0.9, help: 'AdamW β1' },
  beta2: { flag: 'beta2', value: 'B', rule: { kind: 'number' }, default: 0.95, help: 'AdamW β2' },
  eps: { flag: 'eps', value: 'EPS', rule: { kind: 'number', min: 0 }, default: 1e-8, help: 'AdamW epsilon' },
  weightDecay: { flag: 'weight-decay', value: 'W', rule: { kind: 'number', min: 0 }, default: 0.1, help: 'decoupled weight decay' },
  decayNormsAndBiases: { flag: 'decay-norms-biases', rule: { kind: 'boolean' }, default: true, help: 'also decay norm weights and biases' },
  gradClip: { flag: 'grad-clip', value: 'NORM', rule: { kind: 'number', min: 0 }, default: 1, help: "clip the gradient's global norm" },
  zLoss: { flag: 'z-loss', value: 'W', rule: { kind: 'number', min: 0 }, default: 1e-4, help: 'weight of the z-loss, log²Z' },
  trainOnly: {
    flag: 'train-only', rule: { kind: 'choice', choices: ['all', 'kernels'] }, default: 'all',
    help: 'kernels: update only the new SUPRA parameters (kernel_q, kernel_k, q_norm, k_norm)',
  },
  kernelsFirstSteps: {
    flag: 'kernels-first-steps', value: 'N', rule: { kind: 'integer', min: 0 }, default: 0,
    help: 'a two-step schedule: kernels only for the first N steps, then every parameter',
  },
  seed: { flag: 'seed', value: 'N', rule: { kind: 'integer', min: 0 }, default: 0, help: 'initialisation, validation documents and data order' },
  matmulPrecision: {
    flag: 'matmul-precision', rule: { kind: 'choice', choices: MATMUL_PRECISIONS }, default: 'f32',
    help: "bf16: the steps' large products round both operands to BF16 and sum in float32 (native\n" +
      "backend; PyTorch's \"medium\" precision); faster on AMX or AVX-512 BF16, elsewhere the same\n" +
      'numbers, no faster than float32; parameters, gradients, AdamW and validation stay float32',
  },
  recipe: {
    flag: 'recipe', rule: { kind: 'choice', choices: ['full', 'attention-transfer'] }, default: 'full',
    help: "full: the paper's uptraining, every parameter on the next-token loss. attention-\n" +
      "transfer (LoLCATs): the teacher's weights frozen; stage 1 trains the kernels alone to\n" +
      "match each layer's softmax attention output (MSE, mean over layers), stage 2 LoRA\n" +
      'adapters and the kernels on the next-token loss; only they get gradients and AdamW\n' +
      'moments. <out>/final is the merged model, <out>/adapter the adapter (supra merge)',
  },
  transferSteps: {
    flag: 'transfer-steps', value: 'N', rule: { kind: 'integer', min: 0 }, default: { derived: 'steps/4' },
    help: 'attention-transfer: stage 1 is the first N optimizer steps of the budget (one lr\n' +
      'schedule spans both stages; 0: LoRA from the first step)',
  },
  loraRank: { flag: 'lora-rank', value: 'R', rule: { kind: 'integer', min: 1 }, default: 8, help: 'attention-transfer: the rank r of the LoRA adapters' },
  loraAlpha: { flag: 'lora-alpha', value: 'A', rule: { kind: 'number', min: 0 }, default: 16, help: 'attention-transfer: LoRA updates are scaled by alpha / r' },
  loraTargets: {
    flag: 'lora-targets', value: 'LIST', rule: { kind: 'list', choices: LORA_TARGET_MODULES }, default: DEFAULT_LORA_TARGETS,
    help: `attention-transfer: the projections LoRA adapts in every layer, of\n${LORA_TARGET_MODULES.join(',')}`,
  },
  saveEvery: { flag: 'save-every', value: 'N', rule: { kind: 'integer', min: 0 }, default: 1000, help: 'a checkpoint every N steps, and one at the end' },
  keep: { flag: 'keep', value: 'N', rule: { kind: 'integer', min: 1 }, default: 3, help: 'checkpoints kept' },
  evalEvery: { flag: 'eval-every', value: 'N', rule: { kind: 'integer', min: 0 }, default: 0, help: 'validation loss every N steps; 0: at the end only' },
  evalSequences: {
    flag: 'eval-sequences', value: 'N', rule: { kind: 'integer', min: 0 }, default: { derived: '64, fewer for big models (≈1e12 FLOPs, seconds)' },
    help: 'validation sequences per evaluation',
  },
  evalAtStart: { flag: 'eval-at-start', rule: { kind: 'switch' }, default: false, help: 'also measure the validation loss before the first step (logged as step 0)' },
  checkpointActivations: {
    flag: 'checkpoint-activations', rule: { kind: 'switch' }, default: false,
    help: "keep each layer's input only and recompute the layer for its backward: the activations of one\nlayer instead of all, for one more forward per step (the same gradients, bit for bit)",
  },
  maxSkips: { flag: 'max-skips', value: 'N', rule: { kind: 'integer', min: 1 }, default: 10, help: 'steps with non-finite gradients skipped before the run stops' },
  logEvery: { flag: 'log-every', value: 'N', rule: { kind: 'integer', min: 1 }, default: 1, help: 'a progress line every N steps' },
} as const satisfies Record<string, RecipeOption>;

export type RecipeKey = keyof typeof RECIPE_OPTIONS;

/** The type of an option's value: a number, a boolean, or one of a choice's words. */
export type RecipeValue<K extends RecipeKey> = (typeof RECIPE_OPTIONS)[K]['rule'] extends { kind: 'boolean' } | { kind: 'switch' }
  ? boolean
  : (typeof RECIPE_OPTIONS)[K]['rule'] extends { kind: 'choice'; choices: readonly (infer C)[] }
    ? C
    : (typeof RECIPE_OPTIONS)[K]['rule'] extends { kind: 'list' }
      ? string
      : number;

/** The options with a fixed default (the others derive theirs from other settings). */
type FixedKey = { [K in RecipeKey]: (typeof RECIPE_OPTIONS)[K]['default'] extends DerivedDefault ? never : K }[RecipeKey];

const fixed = <K extends FixedKey>(key: K): RecipeValue<K> => RECIPE_OPTIONS[key].default as RecipeValue<K>;

/** Every fixed default of train(), from the table; β1 and β2 are one setting, betas. */
export const TRAIN_DEFAULTS = {
  batchSize: fixed('batchSize'),
  seqLen: fixed('seqLen'),
  gradAccum: fixed('gradAccum'),
  lr: fixed('lr'),
  betas: [fixed('beta1'), fixed('beta2')] as [number, number],
  eps: fixed('eps'),
  weightDecay: fixed('weightDecay'),
  decayNormsAndBiases: fixed('decayNormsAndBiases'),
  gradClip: fixed('gradClip'),
  zLoss: fixed('zLoss'),
  trainOnly: fixed('trainOnly'),
  kernelsFirstSteps: fixed('kernelsFirstSteps'),
  seed: fixed('seed'),
  matmulPrecision: fixed('matmulPrecision'),
  recipe: fixed('recipe'),
  loraRank: fixed('loraRank'),
  loraAlpha: fixed('loraAlpha'),
  loraTargets: fixed('loraTargets'),
  saveEvery: fixed('saveEvery'),
  keep: fixed('keep'),
  evalEvery: fixed('evalEvery'),
  evalAtStart: fixed('evalAtStart'),
  checkpointActivations: fixed('checkpointActivations'),
  maxSkips: fixed('maxSkips'),
  logEvery: fixed('logEvery'),
};

/** The derived defaults, as the table's --help words say. */
export const defaultMinLr = (lr: number): number => lr / 10;
export const defaultWarmupSteps = (totalSteps: number): number => Math.min(1000, Math.floor(totalSteps / 10));
/** The forward FLOPs a default evaluation may take: 1e12 is some 10–20 s on 2 cores. */
export const EVAL_FLOPS = 1e12;
/**
 * Validation sequences per evaluation by default: 64, or as many as EVAL_FLOPS of forward passes
 * (2 · parameters per token) allow for a big model, at least 4.
 */
export const defaultEvalSequences = (parameters: number, seqLen: number): number =>
  Math.max(4, Math.min(64, Math.floor(EVAL_FLOPS / (2 * parameters * seqLen))));
export const defaultTransferSteps = (totalSteps: number): number => Math.floor(totalSteps / 4);

/**
 * The recipe `supra demo` and the study (`npm run experiments`) uptrain the embedded 7M teacher with: the
 * defaults, but at the peak lr the teacher was pretrained at (1e-3, assets/teacher/training.json, with the
 * same batch of 8 × 256 tokens) rather than the general 3e-4, so it keeps learning at its own pace.
 */
export const EMBEDDED_TEACHER_RECIPE = { ...TRAIN_DEFAULTS, lr: 1e-3 };

/** A default as --help prints it: "3e-4", "0.95", "true", "all", or a derived one's words ("lr/10"). */
export function defaultText(value: number | boolean | string | DerivedDefault): string {
  if (typeof value === 'object') return value.derived;
  return typeof value === 'number' ? formatNumber(value) : String(value);
}

/** Check a value against its rule (the one check of each recipe value); `name` is how messages call it. */
export function checkValue<T>(value: T, rule: ValueRule, name: string): T {
  const v = value as unknown;
  if (rule.kind === 'integer') {
    if (!Number.isInteger(v) || (v as number) < rule.min) throw new RangeError(`supra: train: ${name} must be an integer ≥ ${rule.min}, got ${v}`);
  } else if (rule.kind === 'number') {
    if (rule.min === 0 && !(Number.isFinite(v) && (v as number) >= 0)) throw new RangeError(`supra: train: ${name} must be a finite number ≥ 0, got ${v}`);
  } else if (rule.kind === 'choice') {
    if (!rule.choices.includes(v as string)) throw new Error(`supra: train: ${name} must be ${rule.choices.map((c) => `"${c}"`).join(' or ')}, got ${JSON.stringify(v)}`);
  } else if (rule.kind === 'list') {
    const words = typeof v === 'string' ? v.split(',').map((w) => w.trim()) : [];
    const ok = words.length > 0 && words.every((w) => rule.choices.includes(w)) && new Set(words).size === words.length;
    if (!ok) throw new Error(`supra: train: ${name} must be a comma-separated list of distinct names from ${rule.choices.join(', ')}, got ${JSON.stringify(v)}`);
  }
  return value;
}

/** Check a recipe value against the table (messages name it as train()'s options do: batchSize). */
export function checkRecipeValue<K extends RecipeKey>(key: K, value: RecipeValue<K>): RecipeValue<K> {
  return checkValue(value, RECIPE_OPTIONS[key].rule, key);
}
