// Which token mixer a layer gets, by config.architecture: softmax attention for the teacher
// architectures (Llama, Mistral, Qwen2) and SUPRA linear attention for SupraForCausalLM. Other mixers
// (or other SUPRA options) can be registered, which makes model folders naming their architecture in
// config.json loadable, or passed to the decoder as its mixerFactory.
import { registerArchitecture, TEACHER_ARCHITECTURES, SUPRA_ARCHITECTURE, type ModelConfig } from '../io/config.js';
import { createSoftmaxAttention } from './attention.js';
import { createSupraMixer } from './supra_attention.js';
import type { MixerContext, MixerFactory, Param } from './types.js';

/** Declare a parameter in the context's store, or return the one already there (shared layers). */
export function declareParam(ctx: MixerContext, name: string, shape: number[]): Param {
  if (!ctx.store.has(name)) return ctx.store.add(name, shape);
  const p = ctx.store.get(name);
  if (p.shape.length !== shape.length || p.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`supra: parameter ${name} declared as [${p.shape.join(', ')}] and again as [${shape.join(', ')}]`);
  }
  return p;
}

/** SUPRA attention with its default options (chunked form), its temporaries in the layers' shared scratch. */
export const createSupraAttention: MixerFactory = (ctx) =>
  createSupraMixer(ctx.config, (name, shape) => declareParam(ctx, name, shape), ctx.layer, { scratch: ctx.scratch });

const registry = new Map<string, MixerFactory>();
for (const arch of TEACHER_ARCHITECTURES) registry.set(arch, createSoftmaxAttention);
registry.set(SUPRA_ARCHITECTURE, createSupraAttention);

/**
 * Make `factory` build the mixers of every model whose config.architecture is `architecture`; from now on
 * a config.json with `"architectures": ["<architecture>"]` is read (see registerArchitecture).
 */
export function registerMixer(architecture: string, factory: MixerFactory): void {
  registerArchitecture(architecture);
  registry.set(architecture, factory);
}

/** The factory for a config; a clear error when none is registered. */
export function mixerFactoryFor(config: ModelConfig): MixerFactory {
  const f = registry.get(config.architecture);
  if (!f) throw new Error(`supra: no token mixer registered for architecture "${config.architecture}"`);
  return f;
}
