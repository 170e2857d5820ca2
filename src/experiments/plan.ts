// The study of `npm run experiments`: which runs reproduce the paper's findings at small scale, and the
// settings of each. A run is identified by its settings (a hash), so a finished run is reused until
// something that defines it changes.
//
//   teacher       the embedded softmax teacher, evaluated as it is
//   uptrain       SUPRA linearized from the teacher and uptrained for p% of its pretraining tokens
//   scratch       the same SUPRA architecture from random weights, same budgets, plus the full budget
//   ablations     at 5%: T2R-style (sum denominator, no GroupNorm, no decay), no decay, RetNet decay,
//                 only the new kernels trained, a two-step schedule (kernels first, then everything), and
//                 the method itself with its products at BF16 (where the backend has them)
//   transfer      the memory-light recipe at the uptraining budgets: attention transfer (the kernels alone
//                 matched to each layer's softmax attention output), then LoRA on q/k/v/o plus the kernels,
//                 the teacher's weights frozen (supra train --recipe attention-transfer)
//
// Every run is repeated for each seed; a seed sets the kernel (or random) initialisation and the data
// order, never the validation split, so every model is scored on the same held-out text.
import { createHash } from 'node:crypto';
import type { LinearizeOptions } from '../models/linearize.js';
import { defaultMinLr, EMBEDDED_TEACHER_RECIPE, TRAIN_DEFAULTS, type TrainOnly } from '../train/recipe.js';

/** Bump when a change to the study's code changes what a run computes, so cached runs are redone. */
export const STUDY_VERSION = 1;

export type RunKind = 'teacher' | 'uptrain' | 'scratch';

export interface RunSpec {
  /** Stable, readable name: uptrain-5pct-s0, scratch-100pct-s1, ablation-t2r-s0, teacher. */
  id: string;
  kind: RunKind;
  /** 'supra' for the method itself, else the ablation's name. */
  variant: string;
  /** Budget as a percentage of the teacher's pretraining tokens (0: evaluated right after linearizing). */
  budgetPct: number;
  tokens: number;
  seed: number;
  /** How the SUPRA layers are made (uptrain and scratch runs). */
  linearize: LinearizeOptions;
  recipe: {
    batchSize: number;
    seqLen: number;
    lr: number;
    minLr: number;
    warmupSteps: number;
    trainOnly: TrainOnly;
    kernelsFirstSteps: number;
    /** 'bf16' products (supra train --matmul-precision); absent at float32 (so earlier runs keep their keys). */
    matmulPrecision?: 'bf16';
    /** The attention-transfer recipe's settings; absent for full uptraining (so earlier runs keep their keys). */
    attentionTransfer?: { transferSteps: number; loraRank: number; loraAlpha: number; loraTargets: string };
  };
}

/** How every model is measured; part of each run's cache key. */
export interface EvalSettings {
  /** Validation sequences of seqLen tokens for perplexity (all of them when larger than the split). */
  validationSequences: number;
  /** Long-context loss: this many validation sequences of longContext tokens. */
  longContext: number;
  longSequences: number;
  /** Position buckets [from, to) of the long-context loss. */
  positionBuckets: Array<[number, number]>;
  probes: {
    copy: { samples: number; span: number; gaps: number[] };
    mqar: { samples: number; pairs: number[] };
    passkey: { samples: number; lengths: number[] };
  };
  /** Attention-similarity analysis (supra analyze) over this many windows of analyzeLength tokens. */
  analyzeWindows: number;
  analyzeLength: number;
}

export interface StudyOptions {
  /** The teacher's pretraining tokens (the 100% budget). */
  teacherTokens: number;
  seeds: number[];
  /** Budgets (% of teacherTokens) of the uptraining and from-scratch curves. */
  budgets: number[];
  /** Budget of the ablations (%). */
  ablationBudget: number;
  /** Extra from-scratch budgets (the teacher's full budget). */
  scratchBudgets: number[];
  /**
   * Seeds of the extra from-scratch budgets: the first n of `seeds` (default: all of them, so the
   * comparison with the full budget rests on more than one run; each costs about as much as every
   * other run of its seed together).
   */
  scratchBudgetSeeds: number;
  batchSize: number;
  seqLen: number;
  lr: number;
  /** Fraction of the steps that the two-step schedule trains the kernels alone. */
  twoStepFraction: number;
  /** Budgets (%) of the attention-transfer + LoRA runs, beside full uptraining's. */
  transferBudgets: number[];
  /** Fraction of their steps that are attention transfer's stage 1. */
  transferFraction: number;
  /** Their LoRA adapters. */
  lora: { rank: number; alpha: number; targets: string };
  /** Whether the backend has BF16 products: the ablation that uses them is planned only then. */
  bf16Products: boolean;
}

export const STUDY_DEFAULTS: Omit<StudyOptions, 'teacherTokens'> = {
  seeds: [0, 1],
  budgets: [1, 2, 5, 10, 20],
  ablationBudget: 5,
  scratchBudgets: [100],
  scratchBudgetSeeds: 2,
  batchSize: EMBEDDED_TEACHER_RECIPE.batchSize,
  seqLen: EMBEDDED_TEACHER_RECIPE.seqLen,
  lr: EMBEDDED_TEACHER_RECIPE.lr,
  twoStepFraction: 0.25,
  transferBudgets: [1, 2, 5, 10, 20],
  transferFraction: 0.25,
  lora: { rank: TRAIN_DEFAULTS.loraRank, alpha: TRAIN_DEFAULTS.loraAlpha, targets: TRAIN_DEFAULTS.loraTargets },
  bf16Products: true,
};

export const EVAL_DEFAULTS: EvalSettings = {
  validationSequences: 1 << 20,
  longContext: 1024,
  longSequences: 32,
  positionBuckets: [[0, 64], [64, 256], [256, 512], [512, 1024]],
  // inside the 256-token training length and past it, up to the teacher's 1024 positions: copy sequences of
  // 32–992 tokens, MQAR 16–512 (4 tokens a pair), passkey prompts of 128–1000 (the answer stays under 1024).
  // They hold supra demo's three scores (eval/recall.ts: gap 128, 16 pairs, 256 tokens). On the embedded
  // teacher they take 33 s of CPU for the teacher's run and 16 s for a SUPRA run (native; wasm 42 s and
  // 32 s), about twice the earlier settings' cost; passkey is half of it, and 256 MQAR pairs would add 10 s
  // to the teacher's run alone (its attention is quadratic).
  probes: {
    copy: { samples: 8, span: 16, gaps: [0, 8, 32, 128, 512, 960] },
    mqar: { samples: 16, pairs: [4, 8, 16, 32, 64, 128] },
    passkey: { samples: 4, lengths: [128, 256, 512, 1000] },
  },
  analyzeWindows: 2,
  // the singular values cost O(T³) per head in float64; 128-token windows keep a run's analysis to seconds
  analyzeLength: 128,
};

/** The ablations: each is a setting of linearize or train, never a separate code path. */
export const ABLATIONS: Array<{ variant: string; label: string; linearize?: LinearizeOptions; trainOnly?: TrainOnly; twoStep?: boolean; bf16?: boolean }> = [
  { variant: 't2r', label: 'T2R-style: sum denominator, no GroupNorm, no decay', linearize: { normalization: 'sum', decay: 'none' } },
  { variant: 'no-decay', label: 'no decay (γ = 1)', linearize: { decay: 'none' } },
  { variant: 'retnet', label: 'RetNet decay (γ_h = 1 − 2^(−5−h))', linearize: { decay: 'retnet' } },
  { variant: 'kernels-only', label: 'only the new kernels trained', trainOnly: 'kernels' },
  { variant: 'two-step', label: 'two steps: kernels only, then everything', twoStep: true },
  { variant: 'bf16-products', label: 'SUPRA with its products at BF16 (float32 sums and parameters)', bf16: true },
];

/** The variant name of the attention-transfer + LoRA runs (ids transfer-<budget>pct-s<seed>). */
export const TRANSFER_VARIANT = 'attention-transfer';

function stepsOf(tokens: number, o: StudyOptions): number {
  return Math.floor(tokens / (o.batchSize * o.seqLen));
}

/** Every run of the study, the teacher first. */
export function studyPlan(options: StudyOptions): RunSpec[] {
  const o = options;
  const runs: RunSpec[] = [];
  const make = (kind: RunKind, variant: string, budgetPct: number, seed: number, extra: { linearize?: LinearizeOptions; trainOnly?: TrainOnly; twoStep?: boolean; transfer?: boolean; bf16?: boolean } = {}): RunSpec => {
    const tokens = Math.round((budgetPct / 100) * o.teacherTokens);
    const steps = stepsOf(tokens, o);
    if (budgetPct > 0 && steps < 2) throw new Error(`supra: experiments: a budget of ${budgetPct}% (${tokens} tokens) is less than two steps of ${o.batchSize * o.seqLen} tokens`);
    const pct = String(budgetPct).replace('.', '_');
    const id = kind === 'teacher' ? 'teacher'
      : variant === 'supra' ? `${kind}-${pct}pct-s${seed}`
      : extra.transfer ? `transfer-${pct}pct-s${seed}`
      : `ablation-${variant}-s${seed}`;
    const spec: RunSpec = {
      id, kind, variant, budgetPct, tokens, seed,
      linearize: extra.linearize ?? {},
      recipe: {
        batchSize: o.batchSize,
        seqLen: o.seqLen,
        lr: o.lr,
        minLr: defaultMinLr(o.lr),
        // the teacher's own recipe warms up for 100 steps; short budgets warm up for a tenth of theirs
        warmupSteps: Math.min(100, Math.floor(steps / 10)),
        trainOnly: extra.trainOnly ?? 'all',
        kernelsFirstSteps: extra.twoStep ? Math.max(1, Math.round(steps * o.twoStepFraction)) : 0,
      },
    };
    if (extra.bf16) spec.recipe.matmulPrecision = 'bf16';
    if (extra.transfer) {
      spec.recipe.attentionTransfer = {
        transferSteps: Math.max(1, Math.round(steps * o.transferFraction)), loraRank: o.lora.rank, loraAlpha: o.lora.alpha, loraTargets: o.lora.targets,
      };
    }
    return spec;
  };
  runs.push(make('teacher', 'teacher', 0, 0));
  for (const seed of o.seeds) {
    runs.push(make('uptrain', 'supra', 0, seed));
    for (const b of o.budgets) runs.push(make('uptrain', 'supra', b, seed));
    for (const b of o.budgets) runs.push(make('scratch', 'supra', b, seed));
    if (o.seeds.indexOf(seed) < o.scratchBudgetSeeds) for (const b of o.scratchBudgets) runs.push(make('scratch', 'supra', b, seed));
    for (const a of ABLATIONS) if (!a.bf16 || o.bf16Products) runs.push(make('uptrain', a.variant, o.ablationBudget, seed, a));
    for (const b of o.transferBudgets) runs.push(make('uptrain', TRANSFER_VARIANT, b, seed, { transfer: true }));
  }
  const ids = new Set<string>();
  for (const r of runs) {
    if (ids.has(r.id)) throw new Error(`supra: experiments: two runs are named ${r.id}`);
    ids.add(r.id);
  }
  return runs;
}

/** The cache key of a run: everything that defines its result. */
export function runKey(spec: RunSpec, evalSettings: EvalSettings, context: Record<string, unknown>): string {
  const text = JSON.stringify({ version: STUDY_VERSION, spec: { ...spec, id: undefined }, eval: evalSettings, context });
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}

/** Rough cost in token-passes, to start the longest runs first. */
export function runCost(spec: RunSpec): number {
  return spec.tokens * 3 + 150_000;
}
