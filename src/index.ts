// Public API of supra.
export { Tensor } from './core/tensor.js';
export { getBackend, setBackend } from './core/select.js';
export type { Backend, BackendName } from './core/backend.js';
export { AutoModelForCausalLM, AutoTokenizer, CausalLM, loadDecoder } from './models/auto.js';
export type { FromPretrainedOptions, CausalLMInputs, CausalLMOutput, InputIds } from './models/auto.js';
export { DecoderLM, DecoderState } from './models/decoder.js';
export type { DecoderOptions, LossOptions } from './models/decoder.js';
export { registerMixer, mixerFactoryFor } from './layers/mixers.js';
export { SoftmaxAttention, KVCache } from './layers/attention.js';
export { ParamStore } from './layers/params.js';
export type { Param, MixerState, TokenMixer, MixerContext, MixerFactory } from './layers/types.js';
