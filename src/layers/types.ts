// The seams between layers and models. A decoder layer is: h += mixer(input_layernorm(h)); h += mlp(...).
// The token mixer is softmax attention in the teacher and SUPRA linear attention in the linearized model;
// everything else is shared.

import type { Weight } from '../core/weights.js';
import type { ModelConfig } from '../io/config.js';
import type { ReadParam } from './linear.js';
import type { ParamStore } from './params.js';
import type { Workspace } from './workspace.js';

/** A parameter and its gradient, both arena buffers. Names are the HF / safetensors names. */
export interface Param {
  readonly name: string;
  readonly shape: number[];
  /** The values as float32; reading it throws (naming the parameter) when they are stored in another type. */
  readonly data: Float32Array;
  /**
   * The values as stored: a matrix may be BF16 (core/weights.ts) in a model loaded for inference so.
   * Absent means float32, the array in data (storedWeight in params.ts reads either).
   */
  readonly stored?: Weight;
  /** Accumulated by backward passes; null when the model was built for inference only, or frozen. */
  grad: Float32Array | null;
  /**
   * Left out of training (ParamStore.enableGrads with a set that omits it): no gradient buffer, and
   * backward passes only carry gradients through it. Absent means trained.
   */
  readonly frozen?: boolean;
}

/** One tensor of a mixer state as a snapshot stores it: a view of the state's own memory. */
export interface StateTensor {
  /** '' for the state's main tensor, else a suffix (the snapshot file names it state.layer.N.<name>). */
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/**
 * Decoding state of one mixer for a batch of sequences: the KV cache of softmax attention, or the
 * fixed-size [heads, d_k, d_v] state of SUPRA. `position` counts the tokens already seen. Callers above
 * models/ use only these operations, never the concrete class.
 */
export interface MixerState {
  position: number;
  /** Bytes this state holds now (the KV cache grows with the context; a SUPRA state does not). */
  bytes(): number;
  /**
   * Bytes of working memory a step of `piece` tokens from `position` needs that grow with the context
   * (softmax attention's scores [B, H, piece, position + piece]); 0 when a step costs the same at any
   * position (a fixed-size state). Prefill pieces are sized on it (DecoderState.prefillPiece).
   */
  prefillBytes(piece: number, position: number): number;
  /** A new state with the same shape, contents and position (several continuations of one prefill). */
  clone(): MixerState;
  /**
   * The tensors a state snapshot stores, in file order, as views of this state's memory. Absent on a
   * state that is not snapshotted (the KV cache, which grows with the context).
   */
  snapshot?(): StateTensor[];
  /**
   * Set this state from tensors named and shaped as snapshot() gives them (the caller has checked the
   * shapes), at `position`. Present exactly when snapshot() is.
   */
  restore?(tensors: ReadonlyMap<string, Float32Array>, position: number): void;
  free(): void;
}

/**
 * Softmax attention as its last training forward (no state) computed it, for analysis: q [B, T, H, D] and
 * k [B, T, Hkv, D] after RoPE; the weights are softmax_j(q_t·k_j / √D) over j ≤ t, query head h reading
 * kv head ⌊h / (H/Hkv)⌋.
 */
export interface SoftmaxAttentionInternals {
  readonly kind: 'softmax';
  readonly B: number;
  readonly T: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly q: Float32Array;
  readonly k: Float32Array;
}

/**
 * Decayed linear attention (SUPRA) as its last forward computed it, for analysis: q̃ and k̃ head-major
 * [B, H, T, Dk] (after the feature map, qk-norm and RoPE; k̃ repeated to H heads); the scores are
 * exp(−slopes[h](t − j)) · q̃_t·k̃_j / √Dk over j ≤ t. With a denominator (normalization 'sum') they are
 * divided by denominator[t, h] + denominatorEps (denominator [B, T, H]); null when there is none.
 */
export interface LinearAttentionInternals {
  readonly kind: 'linear';
  readonly B: number;
  readonly T: number;
  readonly heads: number;
  readonly kernelDim: number;
  readonly slopes: ArrayLike<number>;
  readonly q: Float32Array;
  readonly k: Float32Array;
  readonly denominator: Float32Array | null;
  readonly denominatorEps: number;
}

/** What a mixer shows of its attention for analysis (eval/analyze.ts), by kind. */
export type AttentionInternals = SoftmaxAttentionInternals | LinearAttentionInternals;

/** Bytes of a training step's activations: kept from forward to backward, and temporaries within one call. */
export interface ActivationBytes {
  kept: number;
  scratch: number;
  /** Of `kept`, the bytes that live outside the arena (absent: none). */
  keptHeap?: number;
}

export interface TokenMixer {
  /**
   * Its decoding state has a fixed size (linear attention): a context of any length, at constant memory
   * per token. False for softmax attention, whose KV cache grows and whose context ends at
   * max_position_embeddings. Callers ask the model (DecoderLM.recurrent), never the config.
   */
  readonly recurrent: boolean;
  /**
   * x: [B, T, hidden] (after input_layernorm) → out: [B, T, hidden] (after o_proj), overwritten.
   * Without a state the T tokens are a whole sequence from position 0, and activations are kept for
   * backward. With a state they continue it (positions state.position …) and the state advances.
   */
  forward(x: Float32Array, out: Float32Array, B: number, T: number, state?: MixerState | null): void;
  /** dout [B, T, hidden] → dx [B, T, hidden] (overwritten); parameter gradients are accumulated. */
  backward(dout: Float32Array, dx: Float32Array): void;
  newState(B: number): MixerState;
  params(): Param[];
  /** Release activation buffers kept for backward. */
  freeActivations(): void;
  /**
   * The memory a training forward and backward of B sequences of T tokens takes (for the memory plan
   * before training): what is kept for backward, and the most the call's temporaries take at once.
   */
  activationBytes(B: number, T: number): ActivationBytes;
  /**
   * Make the mixer inference-only by composing linear maps its forward applies one after the other into
   * one weight each (SUPRA: kernel_q after q_proj, kernel_k after k_proj), so a token reads fewer bytes.
   * The composed weights are new parameters of `store` (from read's values, rounded once to the store's
   * type); the parts are removed from it. Absent on a mixer with nothing to compose.
   */
  foldForInference?(store: ParamStore, read: ReadParam): void;
  /**
   * The most memory foldForInference takes at once beyond the parameters, in the arena and outside it: its
   * float32 temporaries and a composed weight not yet traded for its parts (for the memory check before loading).
   */
  foldingBytes?(store: ParamStore): { arena: number; heap: number };
  /**
   * Its attention in the last forward, for analysis; absent on a mixer that shows none. Valid until the
   * next call of this mixer (or of a layer sharing its scratch).
   */
  attentionInternals?(): AttentionInternals;
}

// ---------------------------------------------------------------- building mixers (added by the decoder)

/** What a mixer factory gets for one layer. */
export interface MixerContext {
  readonly config: ModelConfig;
  /** Layer index, 0-based. */
  readonly layer: number;
  /** Name prefix of the mixer's parameters: `model.layers.${layer}.self_attn`. */
  readonly prefix: string;
  /**
   * Where the mixer declares its parameters (`store.add(`${prefix}.q_proj.weight`, [out, in])`). The
   * decoder loads them by name afterwards; gradient buffers may be attached later, so read `param.grad`
   * at backward time (see gradOf in params.ts), never cache it at construction.
   */
  readonly store: ParamStore;
  /**
   * Scratch buffers shared by every layer of the model: for values needed only within one forward or
   * backward call (decode steps, backward temporaries). Activations kept for backward must go in the
   * mixer's own buffers. Prefix names with the mixer's kind ('attn.', 'supra.') to avoid clashes.
   */
  readonly scratch: Workspace;
}

/** Builds the token mixer of one layer. Registered per architecture in mixers.ts. */
export type MixerFactory = (ctx: MixerContext) => TokenMixer;
