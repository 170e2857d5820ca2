// A linear layer y = x·Wᵀ + b over arena parameters (W stored [out, in] as in PyTorch/HF).
// It keeps no activations: the caller passes the input again to backward (llm.c style).
//
// Every projection of the model (attention q/k/v/o and SUPRA's kernels, the MLP, lm_head) goes through
// this class, so it is the one place that reads a projection weight's storage, forward and backward:
// a weight of any type of core/weights.ts (float32, or BF16 for inference), in the arena. Int8 weights,
// weights outside the arena and an optional LoRA adapter belong here too, not in the layers.
import { linear, linearBackward, linearBackwardInput, linearBackwardParams } from '../core/ops.js';
import { WEIGHT_TYPES } from '../core/weights.js';
import { gradOf, storedWeight, untrainable, type ParamStore } from './params.js';
import type { GetParam } from './projections.js';
import type { Param } from './types.js';

export class Linear {
  constructor(
    readonly weight: Param,
    readonly bias: Param | null,
    readonly inFeatures: number,
    readonly outFeatures: number,
  ) {
    if (weight.shape[0] !== outFeatures || weight.shape[1] !== inFeatures) {
      throw new Error(`supra: ${weight.name} is [${weight.shape.join(', ')}], a linear layer ${inFeatures}→${outFeatures} needs [${outFeatures}, ${inFeatures}]`);
    }
  }

  /** Declare `${name}.weight` [out, in] (and `${name}.bias` [out]) in the store. */
  static create(store: ParamStore, name: string, inFeatures: number, outFeatures: number, bias: boolean): Linear {
    return Linear.declare((n, shape) => store.add(n, shape), name, inFeatures, outFeatures, bias);
  }

  /** `${name}.weight` [out, in], then `${name}.bias` [out], from getParam (which may return shared ones). */
  static declare(getParam: GetParam, name: string, inFeatures: number, outFeatures: number, bias: boolean): Linear {
    const w = getParam(`${name}.weight`, [outFeatures, inFeatures]);
    const b = bias ? getParam(`${name}.bias`, [outFeatures]) : null;
    return new Linear(w, b, inFeatures, outFeatures);
  }

  /** y[rows, out] = x[rows, in]·Wᵀ + b (y overwritten), summed in float32 whatever the weight's type. */
  forward(x: Float32Array, y: Float32Array, rows: number): void {
    linear(x, storedWeight(this.weight), this.bias ? this.bias.data : null, y, rows, this.inFeatures, this.outFeatures);
  }

  /** Backward needs a float32 weight: the others are for inference (a clear error, before any work). */
  private checkTrainable(): void {
    if (!WEIGHT_TYPES[storedWeight(this.weight).type].trainable) throw untrainable(this.weight);
  }

  /** dx = dy·W (overwritten, or added with accumulateDx; skipped when dx is null); dW, db accumulate. */
  backward(dy: Float32Array, x: Float32Array, dx: Float32Array | null, rows: number, accumulateDx = false): void {
    this.checkTrainable();
    linearBackward(
      dy, x, this.weight.data, dx, gradOf(this.weight), this.bias ? gradOf(this.bias) : null,
      rows, this.inFeatures, this.outFeatures, accumulateDx,
    );
  }

  /** backward in two halves, for a caller that has x only after dx: first dx = dy·W ... */
  backwardInput(dy: Float32Array, dx: Float32Array, rows: number, accumulateDx = false): void {
    this.checkTrainable();
    linearBackwardInput(dy, this.weight.data, dx, rows, this.inFeatures, this.outFeatures, accumulateDx);
  }

  /** ... then dW, db accumulate (the same products as backward, in the same order). */
  backwardParams(dy: Float32Array, x: Float32Array, rows: number): void {
    this.checkTrainable();
    linearBackwardParams(dy, x, gradOf(this.weight), this.bias ? gradOf(this.bias) : null, rows, this.inFeatures, this.outFeatures);
  }

  params(): Param[] {
    return this.bias ? [this.weight, this.bias] : [this.weight];
  }
}
