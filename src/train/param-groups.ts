// Which parameters a run trains, in which AdamW groups: the base parameters and the new SUPRA kernels may
// have their own lr (--kernel-lr), be the only ones trained (--train-only kernels) or the only ones for
// the first steps (--kernels-first-steps); 1-D parameters may be left undecayed. Under the
// attention-transfer recipe the base parameters are frozen and LoRA adapters train beside the kernels.
import type { Param } from '../layers/types.js';
import type { DecoderLM } from '../models/decoder.js';
import type { LoraAdapters } from '../models/lora.js';
import { AdamW, type ParamGroup } from './adamw.js';
import type { TrainSettings } from './settings.js';

const KERNEL_PARAM_RE = /\.(kernel_q|kernel_k|q_norm|k_norm)\./;

/** The new SUPRA parameters: *.kernel_q.*, *.kernel_k.*, *.q_norm.*, *.k_norm.* */
export function isKernelParam(name: string): boolean {
  return KERNEL_PARAM_RE.test(name);
}

export interface TrainedParams {
  optimizer: AdamW;
  /** Every parameter the optimizer may update (the model's, then the LoRA adapters'). */
  trained: Param[];
  /** Of `trained`, the model's own parameters (the others of the model are frozen: enableGrads(these)). */
  trainedInModel: Param[];
  /** The names of the kernels' groups (they follow the kernel lr). */
  kernelGroups: Set<string>;
  /** The kernels' parameters: all that the two-step schedule's first steps update. */
  kernelParams: Param[];
}

/**
 * Up to four AdamW groups: {base, kernels} × {decayed, not decayed}, plus 'lora' (the adapters, at lr,
 * decayed as matrices). With trainOnly 'kernels' or the attention-transfer recipe the base parameters are
 * in no group, so they never change.
 */
export function buildOptimizer(model: DecoderLM, s: TrainSettings, lora: LoraAdapters | null = null): TrainedParams {
  const buckets = new Map<string, Param[]>();
  const baseFrozen = s.trainOnly === 'kernels' || s.recipe === 'attention-transfer';
  let kernelCount = 0;
  for (const p of model.params()) {
    const kernel = isKernelParam(p.name);
    if (kernel) kernelCount++;
    if (baseFrozen && !kernel) continue;
    const decayed = s.decayNormsAndBiases || p.shape.length >= 2;
    const key = (kernel ? 'kernels' : 'base') + (decayed ? '' : '.no_decay');
    if (!buckets.has(key)) buckets.set(key, []);
    buckets.get(key)!.push(p);
  }
  const trainedInModel = [...buckets.values()].flat();
  if (lora) buckets.set('lora', lora.params());
  if ((baseFrozen || s.kernelsFirstSteps > 0) && kernelCount === 0) {
    const what = s.recipe === 'attention-transfer' ? 'recipe "attention-transfer"' : s.trainOnly === 'kernels' ? 'trainOnly "kernels"' : 'kernelsFirstSteps';
    throw new Error(`supra: train: ${what} needs a SUPRA model, but ${model.config.architecture} has no kernel parameters (use --linearize)`);
  }
  const groups: ParamGroup[] = [...buckets].map(([name, params]) => ({
    name,
    params,
    lr: name.startsWith('kernels') ? s.kernelLr : s.lr,
    weightDecay: name.endsWith('.no_decay') ? 0 : s.weightDecay,
  }));
  const optimizer = new AdamW(groups, { betas: s.betas, eps: s.eps });
  const kernelGroups = new Set(groups.filter((g) => g.name!.startsWith('kernels')).map((g) => g.name!));
  return {
    optimizer,
    trained: groups.flatMap((g) => g.params),
    trainedInModel,
    kernelGroups,
    kernelParams: optimizer.groups.filter((g) => kernelGroups.has(g.name)).flatMap((g) => g.params),
  };
}
