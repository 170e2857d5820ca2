// Public API of supra.
export { Tensor } from './core/tensor.js';
export { getBackend, setBackend } from './core/select.js';
export type { Backend, BackendName } from './core/backend.js';
export { AutoModelForCausalLM, AutoTokenizer, CausalLM } from './api.js';
export type { CausalLMInputs, CausalLMOutput, GenerateInputs } from './api.js';
export { loadDecoder, toIdBatch } from './models/auto.js';
export type { FromPretrainedOptions, InputIds } from './models/auto.js';
export { DecoderLM, DecoderState } from './models/decoder.js';
export type { DecoderOptions, LossOptions, StepOptions } from './models/decoder.js';
export { generate, generateFromState, decodeTokens } from './generate/generate.js';
export type { GenerationOptions, GenerateResult, FinishReason, DecodedStep } from './generate/generate.js';
export { GenerationState } from './generate/state.js';
export { TextStreamer } from './generate/streamer.js';
export type { BaseStreamer, TextStreamerOptions, DecodingTokenizer } from './generate/streamer.js';
export { saveState, loadState, modelFingerprint, STATE_FORMAT } from './generate/snapshot.js';
export { samplingOptionsOf } from './generate/sampling.js';
export type { SamplingOptions, ResolvedSampling } from './generate/sampling.js';
export { registerMixer, mixerFactoryFor, declareParam } from './layers/mixers.js';
export { SoftmaxAttention, KVCache } from './layers/attention.js';
export { ParamStore } from './layers/params.js';
export type {
  Param, MixerState, StateTensor, TokenMixer, MixerContext, MixerFactory,
  AttentionInternals, SoftmaxAttentionInternals, LinearAttentionInternals,
} from './layers/types.js';
export { linearize, linearizeFolder, initSupraParams, supraConfig } from './models/linearize.js';
export type { LinearizeOptions, LinearizeFolderOptions } from './models/linearize.js';
export { LoraAdapters, loadAdapter, readAdapterFolder, mergeAdapterFolder, LORA_TARGET_MODULES } from './models/lora.js';
export type { LoraSettings, AdapterFolder } from './models/lora.js';
export { AttentionTransfer } from './models/attention_transfer.js';
export { convertCheckpoint } from './models/convert.js';
export type { ConvertOptions, ConvertResult } from './models/convert.js';
export { AdamW } from './train/adamw.js';
export { train, Trainer, TrainingDiverged } from './train/trainer.js';
export type { TrainOptions, TrainResult, TrainStatus, TrainHooks } from './train/trainer.js';
export { evaluate } from './train/evaluate.js';
export type { TrainSettings } from './train/settings.js';
export { openTokenBatches, embeddedCorpus, writeEmbeddedCorpus } from './train/data/index.js';
export type { TokenBatches, DataPosition } from './train/batches.js';
export { loadTokenizer } from './io/tokenizer.js';
export { documentNll, toRow } from './eval/perplexity.js';
export { loadTask, evaluateTask, makeScorer } from './eval/tasks.js';
export { copyProbe, passkeyProbe, mqarProbe, probePlot } from './eval/probes.js';
export type { ProbeResult } from './eval/probes.js';
export { analyzeAttention, teacherAttention, supraAttention, singularValues } from './eval/analyze.js';
export { linePlotPng, linePlotSvg, heatmapPng, heatmapSvg } from './eval/plot.js';
export { createSupraServer } from './serve/server.js';
