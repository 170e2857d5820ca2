// The public API in the shape transformers.js users know:
//   const model = await AutoModelForCausalLM.from_pretrained(dir, { backend: 'wasm' });
//   const tokenizer = await AutoTokenizer.from_pretrained(dir);
//   const { logits } = await model.forward({ input_ids });           // logits: Tensor [B, T, V]
//   const ids = await model.generate({ input_ids, max_new_tokens: 32, do_sample: true, seed: 1,
//                                      streamer: new TextStreamer(tokenizer, { skip_prompt: true }) });
//   // ids: number[][] [B][T + new], the prompt then the new tokens (transformers.js returns the same
//   // ids as an int64 Tensor; here they are plain arrays)
// It sits above models and generation (src/generate), so it lives here rather than in src/models.
import { setBackend } from './core/select.js';
import { Tensor } from './core/tensor.js';
import type { ModelConfig } from './io/config.js';
import { loadTokenizer, type LoadedTokenizer } from './io/tokenizer.js';
import { loadDecoder, toIdBatch, type FromPretrainedOptions, type InputIds } from './models/auto.js';
import type { DecoderLM } from './models/decoder.js';
import { generateFromState, type GenerateResult, type GenerationOptions } from './generate/generate.js';
import { GenerationState } from './generate/state.js';
import { existsSync, join } from './io/files.js';

export interface CausalLMInputs {
  input_ids: InputIds;
  /** Accepted for compatibility; padding (zeros) is not supported and is rejected. */
  attention_mask?: { data: ArrayLike<number | bigint> } | number[][] | number[];
  /** Also return the residual stream: L + 1 tensors [B, T, hidden] (the last one before the final norm). */
  output_hidden_states?: boolean;
}

export interface CausalLMOutput {
  logits: Tensor;
  hidden_states?: Tensor[];
}

export interface GenerateInputs extends GenerationOptions {
  /** The prompt: [B, T] or [T] ids (Tensor-like, nested arrays or a flat array). Optional when `state` has a context. */
  input_ids?: InputIds;
  /**
   * Continue this state (supra's counterpart of past_key_values): input_ids are appended to its context,
   * the new tokens too, and it stays usable (and savable with saveState) afterwards. Without it a fresh
   * state is made and freed.
   */
  state?: GenerationState;
  /** Accepted for compatibility; padding (zeros) is not supported and is rejected. */
  attention_mask?: CausalLMInputs['attention_mask'];
  /** Also return the new tokens per row and why each row stopped. Default false: only the ids. */
  return_dict_in_generate?: boolean;
}

function checkMask(mask: CausalLMInputs['attention_mask']): void {
  if (mask === undefined) return;
  const flat: ArrayLike<number | bigint> = Array.isArray(mask) ? (mask as (number | number[])[]).flat() : (mask as { data: ArrayLike<number | bigint> }).data;
  for (let i = 0; i < flat.length; i++) {
    if (Number(flat[i]) !== 1) throw new Error('supra: attention_mask with padding (zeros) is not supported; run unpadded sequences');
  }
}

/** A loaded causal LM, the counterpart of transformers.js' PreTrainedModel. */
export class CausalLM {
  private tokenizerCache: LoadedTokenizer | null | undefined;

  constructor(
    readonly model: DecoderLM,
    readonly path: string,
    /** Checkpoint tensors the model did not use. */
    readonly unexpectedTensors: string[] = [],
  ) {}

  get config(): ModelConfig {
    return this.model.config;
  }

  /** Logits of every position (copied out of the arena, so they stay valid). */
  async forward(inputs: CausalLMInputs): Promise<CausalLMOutput> {
    const { ids, B, T } = toIdBatch(inputs.input_ids);
    checkMask(inputs.attention_mask);
    const V = this.config.vocab_size;
    const logits = this.model.forward(ids, B, T);
    const out: CausalLMOutput = { logits: new Tensor(Float32Array.from(logits), [B, T, V]) };
    if (inputs.output_hidden_states) {
      out.hidden_states = this.model.hiddenStates().map((h) => new Tensor(Float32Array.from(h), [B, T, this.config.hidden_size]));
    }
    return out;
  }

  /** A fresh generation state for `batch` sequences (free it when done). */
  newState(batch = 1): GenerationState {
    return new GenerationState(this.model, batch);
  }

  /**
   * Generate continuations of input_ids (see GenerationOptions for every option; snake_case as HF).
   * Greedy unless do_sample; with do_sample, the same seed gives the same tokens. Returns the token ids
   * [B][prompt + new] (with `state`, the state's whole context), or with return_dict_in_generate
   * { sequences, newTokens, finishReasons }. The teacher decodes with its KV cache; a SUPRA model
   * prefills with the chunked form, then steps its recurrence. Stop strings and default eos ids use the
   * `tokenizer` option, the streamer's tokenizer, or the model folder's tokenizer.json.
   */
  async generate(inputs: GenerateInputs & { return_dict_in_generate: true }): Promise<GenerateResult>;
  async generate(inputs: GenerateInputs): Promise<number[][]>;
  async generate(inputs: GenerateInputs): Promise<number[][] | GenerateResult> {
    checkMask(inputs.attention_mask);
    let rows: number[][];
    if (inputs.input_ids !== undefined) {
      const { ids, B, T } = toIdBatch(inputs.input_ids);
      rows = Array.from({ length: B }, (_, b) => Array.from(ids.subarray(b * T, (b + 1) * T)));
    } else {
      if (!inputs.state || inputs.state.length === 0) throw new Error('supra: generate needs input_ids (or a state that already holds a context)');
      rows = Array.from({ length: inputs.state.batch }, () => []);
    }
    const state = inputs.state ?? new GenerationState(this.model, rows.length);
    if (state.model !== this.model) throw new Error('supra: generate: the state belongs to another model');
    let tokenizer = inputs.tokenizer;
    const streamerTok = (inputs.streamer as { tokenizer?: GenerationOptions['tokenizer'] } | undefined)?.tokenizer;
    tokenizer ??= streamerTok;
    if (!tokenizer && (inputs.stop_strings !== undefined || inputs.eos_token_id === undefined)) tokenizer = this.folderTokenizer() ?? undefined;
    if (!tokenizer && inputs.stop_strings !== undefined) throw new Error(`supra: stop_strings need a tokenizer, and ${this.path} has no tokenizer.json (pass tokenizer)`);
    try {
      const result = generateFromState(state, rows, { ...inputs, tokenizer });
      return inputs.return_dict_in_generate ? result : result.sequences;
    } finally {
      if (!inputs.state) state.free();
    }
  }

  /** The model folder's tokenizer, loaded once (null when the folder has none). */
  private folderTokenizer(): LoadedTokenizer | null {
    if (this.tokenizerCache === undefined) {
      this.tokenizerCache = existsSync(join(this.path, 'tokenizer.json')) ? loadTokenizer(this.path) : null;
    }
    return this.tokenizerCache;
  }

  /** Release the model's arena memory now. */
  dispose(): void {
    this.model.free();
  }
}

export const AutoModelForCausalLM = {
  /** Load a local model folder (Llama, Mistral, Qwen2, a SUPRA model saved by supra, or an open_lm folder such as the released Mistral-SUPRA). */
  async from_pretrained(dir: string, options: FromPretrainedOptions = {}): Promise<CausalLM> {
    if (options.backend) setBackend(options.backend);
    const { model, unexpected } = loadDecoder(dir, options);
    return new CausalLM(model, dir, unexpected);
  },
};

export const AutoTokenizer = {
  /** The folder's tokenizer.json (with tokenizer_config.json), see io/tokenizer.ts. */
  async from_pretrained(dir: string): Promise<LoadedTokenizer> {
    return loadTokenizer(dir);
  },
};

export { GenerationState } from './generate/state.js';
export { TextStreamer } from './generate/streamer.js';
export { saveState, loadState, modelFingerprint } from './generate/snapshot.js';
export type { GenerationOptions, GenerateResult, FinishReason } from './generate/generate.js';
export type { BaseStreamer, TextStreamerOptions } from './generate/streamer.js';
export type { FromPretrainedOptions, InputIds } from './models/auto.js';
