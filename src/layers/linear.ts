// A linear layer y = x·Wᵀ + b over arena parameters (W stored [out, in] as in PyTorch/HF).
// It keeps no activations: the caller passes the input again to backward (llm.c style).
//
// Every projection of the model (attention q/k/v/o and SUPRA's kernels, the MLP, lm_head) goes through
// this class, so it is the one place that reads a projection weight's storage, forward and backward:
// a weight of any type of core/weights.ts (float32, or BF16 for inference), in the arena. Int8 weights,
// weights outside the arena and an optional LoRA adapter belong here too, not in the layers.
//
// A frozen weight (ParamStore.enableGrads with a set that leaves it out) gets no dW: backward only carries
// dx through it, in whatever type it is stored. A LoRA adapter (lora.ts), when attached, adds its
// low-rank update forward and its gradients backward.
import { allocF32, free } from '../core/memory.js';
import { linear, linearBackward, linearShared, matmul, linearBackwardInput, linearBackwardParams, sumRowsInto, type StepProjection } from '../core/ops.js';
import { WEIGHT_TYPES } from '../core/weights.js';
import { backwardInputBanded, type LoraAdapter } from './lora.js';
import { gradIfTrained, gradOf, storedWeight, untrainable, type ParamStore } from './params.js';
import type { GetParam } from './projections.js';
import type { Param } from './types.js';

export class Linear {
  /** A LoRA adapter on this layer (models/lora.ts attaches and detaches it), or null. */
  lora: LoraAdapter | null = null;

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

  /** y[rows, out] = x[rows, in]·Wᵀ + b (+ the LoRA update) (y overwritten), summed in float32 whatever the weight's type. */
  forward(x: Float32Array, y: Float32Array, rows: number): void {
    linear(x, storedWeight(this.weight), this.bias ? this.bias.data : null, y, rows, this.inFeatures, this.outFeatures);
    this.lora?.forwardAdd(x, y, rows);
  }

  /**
   * forward of several layers that read the same x (a layer's q/k/v, an MLP's gate and up), each into its
   * y: one backend call for all where the backend has one for decoding (ops.linearShared); the same values.
   */
  static forwardShared(x: Float32Array, rows: number, outputs: readonly (readonly [Linear, Float32Array])[]): void {
    const inF = outputs[0]![0].inFeatures;
    for (const [layer] of outputs) {
      if (layer.inFeatures !== inF) throw new Error(`supra: ${layer.weight.name} reads ${layer.inFeatures} features, not the ${inF} of the layers beside it`);
    }
    linearShared(x, outputs.map(([layer, y]) => ({ w: storedWeight(layer.weight), b: layer.bias ? layer.bias.data : null, y, outF: layer.outFeatures })), rows, inF);
    for (const [layer, y] of outputs) layer.lora?.forwardAdd(x, y, rows);
  }

  /** This layer as one projection of a fused decoding call (ops.StepProjection), or null with a LoRA adapter attached. */
  asProjection(): StepProjection | null {
    if (this.lora) return null;
    return { w: storedWeight(this.weight), b: this.bias ? this.bias.data : null, inF: this.inFeatures, outF: this.outFeatures };
  }

  /** A trained weight must be float32: the others are for inference (a clear error, before any work). */
  private checkTrainable(): void {
    if (!this.weight.frozen && !WEIGHT_TYPES[storedWeight(this.weight).type].trainable) throw untrainable(this.weight);
  }

  /** dx = dy·W (overwritten, or added with accumulateDx; skipped when dx is null); dW, db accumulate. */
  backward(dy: Float32Array, x: Float32Array, dx: Float32Array | null, rows: number, accumulateDx = false): void {
    this.checkTrainable();
    if (!this.weight.frozen) {
      linearBackward(
        dy, x, this.weight.data, dx, gradOf(this.weight), this.bias ? gradIfTrained(this.bias) : null,
        rows, this.inFeatures, this.outFeatures, accumulateDx,
      );
    } else {
      if (dx) this.inputGrad(dy, dx, rows, accumulateDx);
      this.biasGrad(dy, rows);
    }
    if (this.lora) {
      if (dx) this.lora.backwardInput(dy, dx, rows);
      this.lora.backwardParams(dy, x, rows);
    }
  }

  /** backward in two halves, for a caller that has x only after dx: first dx = dy·W ... */
  backwardInput(dy: Float32Array, dx: Float32Array, rows: number, accumulateDx = false): void {
    this.checkTrainable();
    this.inputGrad(dy, dx, rows, accumulateDx);
    this.lora?.backwardInput(dy, dx, rows);
  }

  /** ... then dW, db accumulate (the same products as backward, in the same order). */
  backwardParams(dy: Float32Array, x: Float32Array, rows: number): void {
    this.checkTrainable();
    if (!this.weight.frozen) {
      linearBackwardParams(dy, x, gradOf(this.weight), this.bias ? gradIfTrained(this.bias) : null, rows, this.inFeatures, this.outFeatures);
    } else this.biasGrad(dy, rows);
    this.lora?.backwardParams(dy, x, rows);
  }

  /** dx = dy·W: sgemm over a float32 weight, band by band widened for a frozen one of another type. */
  private inputGrad(dy: Float32Array, dx: Float32Array, rows: number, accumulateDx: boolean): void {
    const w = storedWeight(this.weight);
    if (w.type === 'f32') {
      linearBackwardInput(dy, w.data, dx, rows, this.inFeatures, this.outFeatures, accumulateDx);
    } else {
      const traits = WEIGHT_TYPES[w.type];
      backwardInputBanded(dy, (from, count, out) => traits.toFloat(w, from, count, out), dx, rows, this.inFeatures, this.outFeatures, accumulateDx);
    }
  }

  /** db += Σ_rows dy, for a trained bias beside a frozen weight. */
  private biasGrad(dy: Float32Array, rows: number): void {
    const db = this.bias ? gradIfTrained(this.bias) : null;
    if (db) sumRowsInto(db, dy, rows, this.outFeatures);
  }

  params(): Param[] {
    return this.bias ? [this.weight, this.bias] : [this.weight];
  }
}

/** Fills dest with a parameter's values as float32 (widened from its storage, or read from its file). */
export type ReadParam = (p: Param, dest: Float32Array) => void;

/** A parameter's values as stored, widened to float32 (exact for every type but a quantized one). */
export const widenParam: ReadParam = (p, dest) => {
  const w = storedWeight(p);
  WEIGHT_TYPES[w.type].toFloat(w, 0, w.data.length, dest);
};

/**
 * outer(inner(x)) as one linear layer `${name}` in `store`, for inference: W = W_outer·W_inner and
 * b = W_outer·b_inner + b_outer, summed in float32 from read's values and stored as the store stores a
 * new matrix (so rounded once to its type). A model reading it instead of both reads
 * outer.inFeatures × outer.outFeatures fewer weights per token.
 */
export function composeLinears(store: ParamStore, name: string, outer: Linear, inner: Linear, read: ReadParam = widenParam): Linear {
  if (outer.inFeatures !== inner.outFeatures) {
    throw new Error(`supra: ${name}: cannot compose ${outer.weight.name} (${outer.inFeatures} inputs) after ${inner.weight.name} (${inner.outFeatures} outputs)`);
  }
  if (outer.lora || inner.lora) throw new Error(`supra: ${name}: merge the LoRA adapters before composing ${outer.weight.name} and ${inner.weight.name}`);
  const m = outer.outFeatures, k = outer.inFeatures, n = inner.inFeatures;
  const wo = allocF32(m * k), wi = allocF32(k * n), w = allocF32(m * n);
  try {
    read(outer.weight, wo);
    read(inner.weight, wi);
    matmul({ transA: false, transB: false, m, n, k, a: wo, b: wi, c: w });
    let weight: Param;
    try {
      weight = store.addFrom(`${name}.weight`, [m, n], w);
    } catch (e) {
      // a value the type cannot hold (int8: ±Infinity where the product overflows float32)
      if (!(e instanceof RangeError)) throw e;
      throw new Error(`supra: ${name}.weight, ${outer.weight.name} · ${inner.weight.name}: ${e.message.replace(/^supra: /, '')}`);
    }
    let bias: Param | null = null;
    if (inner.bias || outer.bias) {
      const b = new Float32Array(m);
      if (outer.bias) read(outer.bias, b);
      if (inner.bias) {
        const bi = allocF32(k), y = allocF32(m);
        try {
          read(inner.bias, bi);
          linear(bi, { type: 'f32', data: wo }, null, y, 1, k, m);
          for (let i = 0; i < m; i++) b[i] = b[i]! + y[i]!;
        } finally {
          free(bi);
          free(y);
        }
      }
      try {
        bias = store.addFrom(`${name}.bias`, [m], b);
      } catch (e) {
        store.remove([weight]);
        throw e;
      }
    }
    return new Linear(weight, bias, n, m);
  } finally {
    free(wo);
    free(wi);
    free(w);
  }
}
