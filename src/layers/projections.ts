// The q/k/v/o projections of an attention layer, one Linear each under the HF names
// `${prefix}.q_proj.weight` …, shared by softmax attention (attention.ts) and SUPRA (supra_attention.ts).
// The bias rule lives here and reads the config's fields only: q/k/v carry biases iff attention_bias,
// o_proj iff o_proj_bias (parseConfig is where each family's convention becomes those fields).
import type { ModelConfig } from '../io/config.js';
import { Linear } from './linear.js';
import type { Param } from './types.js';

/** Declares (or looks up) a parameter of the given HF name and shape. */
export type GetParam = (name: string, shape: number[]) => Param;

/**
 * The order the projections' parameters are declared in. It is the order of the model's params(),
 * which fixes the optimizer state's layout and the order of gradient-norm sums, so each mixer keeps
 * its own: softmax attention declares each projection's weight then its bias ('by-projection'); SUPRA
 * declares the four weights, then the biases ('weights-first').
 */
export type DeclarationOrder = 'by-projection' | 'weights-first';

export class AttentionProjections {
  /** [B·T, hidden] → [B·T, H·D] */
  readonly q: Linear;
  /** [B·T, hidden] → [B·T, Hkv·D] */
  readonly k: Linear;
  /** [B·T, hidden] → [B·T, Hkv·D] */
  readonly v: Linear;
  /** [B·T, H·D] → [B·T, hidden] */
  readonly o: Linear;

  /** `prefix`: the layer's attention, `model.layers.${layer}.self_attn`. */
  constructor(config: ModelConfig, getParam: GetParam, prefix: string, order: DeclarationOrder = 'by-projection') {
    const C = config.hidden_size;
    const qRows = config.num_attention_heads * config.head_dim;
    const kvRows = config.num_key_value_heads * config.head_dim;
    const specs = [
      { name: 'q_proj', inFeatures: C, outFeatures: qRows, bias: config.attention_bias },
      { name: 'k_proj', inFeatures: C, outFeatures: kvRows, bias: config.attention_bias },
      { name: 'v_proj', inFeatures: C, outFeatures: kvRows, bias: config.attention_bias },
      { name: 'o_proj', inFeatures: qRows, outFeatures: C, bias: config.o_proj_bias },
    ];
    let linears: Linear[];
    if (order === 'by-projection') {
      linears = specs.map((s) => Linear.declare(getParam, `${prefix}.${s.name}`, s.inFeatures, s.outFeatures, s.bias));
    } else {
      const weights = specs.map((s) => getParam(`${prefix}.${s.name}.weight`, [s.outFeatures, s.inFeatures]));
      const biases = specs.map((s) => (s.bias ? getParam(`${prefix}.${s.name}.bias`, [s.outFeatures]) : null));
      linears = specs.map((s, i) => new Linear(weights[i], biases[i], s.inFeatures, s.outFeatures));
    }
    this.q = linears[0];
    this.k = linears[1];
    this.v = linears[2];
    this.o = linears[3];
  }

  /** q, k, v, o, each weight then bias. */
  params(): Param[] {
    return [...this.q.params(), ...this.k.params(), ...this.v.params(), ...this.o.params()];
  }
}
