// A token mixer added from outside src/, as a new linear-attention variant would be: SUPRA attention with
// the 'sum' normalization (T2R-style denominator, no GroupNorm) as an architecture of its own. One file,
// one registerMixer line; nothing else in supra is edited. Importing this file registers it.
//
// Its config.json names the architecture and has no "supra" block (a registered architecture keeps any
// settings of its own under a key of its own); the settings are SUPRA's defaults with normalization 'sum'.
import { declareParam, registerMixer } from '../../src/layers/mixers.js';
import { createSupraMixer } from '../../src/layers/supra_attention.js';
import type { MixerFactory } from '../../src/layers/types.js';
import { supraSettings } from '../../src/models/linearize.js';

export const SUM_ARCHITECTURE = 'SupraSumForCausalLM';

const settings = supraSettings({ normalization: 'sum' });

export const createSumAttention: MixerFactory = (ctx) =>
  createSupraMixer({ ...ctx.config, supra: settings }, (name, shape) => declareParam(ctx, name, shape), ctx.layer, { scratch: ctx.scratch });

registerMixer(SUM_ARCHITECTURE, createSumAttention);
