// The seams between layers and models. A decoder layer is: h += mixer(input_layernorm(h)); h += mlp(...).
// The token mixer is softmax attention in the teacher and SUPRA linear attention in the linearized model;
// everything else is shared.

/** A parameter and its gradient, both arena buffers. Names are the HF / safetensors names. */
export interface Param {
  readonly name: string;
  readonly shape: number[];
  readonly data: Float32Array;
  /** Accumulated by backward passes; null when the model was built for inference only. */
  grad: Float32Array | null;
}

/**
 * Decoding state of one mixer for a batch of sequences: the KV cache of softmax attention, or the
 * fixed-size [heads, d_k, d_v] state of SUPRA. `position` counts the tokens already seen.
 */
export interface MixerState {
  position: number;
  /** Bytes this state holds now (the KV cache grows with the context; a SUPRA state does not). */
  bytes(): number;
  free(): void;
}

export interface TokenMixer {
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
}
