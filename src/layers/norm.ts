// RMSNorm with a gain (Llama's input_layernorm / post_attention_layernorm / model.norm).
import { rmsnorm, rmsnormBackward } from '../core/ops.js';
import { gradIfTrained, type ParamStore } from './params.js';
import type { Param } from './types.js';

/**
 * The norm that reads a decoding step's output next (the next layer's input norm, or the model's last), with the
 * buffers it writes: a layer that ends in one backend call applies it there (DecoderLayer.forward).
 */
export interface NextNorm {
  norm: RMSNorm;
  out: Float32Array;
  rstd: Float32Array;
}

export class RMSNorm {
  readonly weight: Param;

  constructor(store: ParamStore, name: string, readonly dim: number, readonly eps: number) {
    this.weight = store.add(`${name}.weight`, [dim]);
    this.weight.data.fill(1);
  }

  /** out = x / rms(x) ⊙ w per row; rstd[rows] is kept for backward. */
  forward(x: Float32Array, out: Float32Array, rstd: Float32Array, rows: number): void {
    rmsnorm(x, this.weight.data, out, rstd, rows, this.dim, this.eps);
  }

  /** dx overwritten (or added with accumulateDx, e.g. into the residual gradient); dw accumulates (unless frozen). */
  backward(dout: Float32Array, x: Float32Array, rstd: Float32Array, dx: Float32Array, rows: number, accumulateDx = false): void {
    rmsnormBackward(dout, x, this.weight.data, rstd, dx, gradIfTrained(this.weight), rows, this.dim, accumulateDx);
  }
}
