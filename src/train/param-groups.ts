// Which parameters a run trains, in which AdamW groups: the base parameters and the new SUPRA kernels may
// have their own lr (--kernel-lr), be the only ones trained (--train-only kernels) or the only ones for
// the first steps (--kernels-first-steps); 1-D parameters may be left undecayed.
import type { Param } from '../layers/types.js';
import type { DecoderLM } from '../models/decoder.js';
import { AdamW, type ParamGroup } from './adamw.js';
import type { TrainSettings } from './settings.js';

const KERNEL_PARAM_RE = /\.(kernel_q|kernel_k|q_norm|k_norm)\./;

/** The new SUPRA parameters: *.kernel_q.*, *.kernel_k.*, *.q_norm.*, *.k_norm.* */
export function isKernelParam(name: string): boolean {
  return KERNEL_PARAM_RE.test(name);
}

export interface TrainedParams {
  optimizer: AdamW;
  /** Every parameter the optimizer may update. */
  trained: Param[];
  /** The names of the kernels' groups (they follow the kernel lr). */
  kernelGroups: Set<string>;
  /** The kernels' parameters: all that the two-step schedule's first steps update. */
  kernelParams: Param[];
}

/**
 * Up to four AdamW groups: {base, kernels} × {decayed, not decayed}. With trainOnly 'kernels' the base
 * parameters are in no group, so they never change.
 */
export function buildOptimizer(model: DecoderLM, s: TrainSettings): TrainedParams {
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
  const kernelGroups = new Set(groups.filter((g) => g.name!.startsWith('kernels')).map((g) => g.name!));
  return {
    optimizer,
    trained: groups.flatMap((g) => g.params),
    kernelGroups,
    kernelParams: optimizer.groups.filter((g) => kernelGroups.has(g.name)).flatMap((g) => g.params),
  };
}
