// A model's fingerprint, for state snapshots (generate/snapshot.ts model_fingerprint): sha256 over the
// config fields that shape the computation, every parameter's name and shape, and a sample of each
// parameter's values (up to 4096 evenly strided elements plus the first and last 64). It tells another
// model or other weights (any fine-tune moves every sample) from this model without hashing gigabytes; an
// edit confined to unsampled elements goes unseen. A model holding its weights as BF16 fingerprints as the
// float32 model of the same values.
import { createSha256 } from '../core/sha256.js';
import { WEIGHT_TYPES } from '../core/weights.js';
import type { Param } from '../layers/types.js';
import type { DecoderLM } from './decoder.js';

/**
 * A parameter's values as float32, whatever type it is stored in: a model holding its weights as BF16
 * fingerprints as the float32 model of the same values (the two compute the same numbers).
 */
function valuesOf(p: Param): { n: number; at: (i: number) => number } {
  const stored = p.stored;
  if (!stored || stored.type === 'f32') {
    const data = p.data;
    return { n: data.length, at: (i) => data[i]! };
  }
  const traits = WEIGHT_TYPES[stored.type];
  const one = new Float32Array(1);
  return {
    n: stored.data.length,
    at: (i) => {
      traits.toFloat(stored, i, 1, one);
      return one[0]!;
    },
  };
}

const SAMPLE = 4096;
const EDGE = 64;
const fingerprints = new WeakMap<DecoderLM, string>();

/**
 * The model's fingerprint (see the file comment), cached per model object: call with `fresh` after changing
 * the weights in place (training) to recompute it. DecoderLM.foldForInference takes it before folding, so a
 * model with folded feature maps fingerprints as the same weights loaded separate.
 */
export function weightsFingerprint(m: DecoderLM, fresh = false): string {
  const cached = fingerprints.get(m);
  // a folded model (inference only) keeps the fingerprint of its weights as loaded
  if (cached && (!fresh || m.foldedForInference)) return cached;
  const c = m.config;
  const h = createSha256();
  // GroupNorm models hash their settings as before the normalization option existed: their snapshots stay valid
  const s = c.supra;
  const supra = s && s.normalization === 'group_norm'
    ? { qk_norm: s.qk_norm, qk_norm_eps: s.qk_norm_eps, decay: s.decay, group_norm_eps: s.group_norm_eps }
    : s ?? null;
  h.update(JSON.stringify({
    architecture: c.architecture, vocab_size: c.vocab_size, hidden_size: c.hidden_size, layers: c.num_hidden_layers,
    heads: c.num_attention_heads, kv_heads: c.num_key_value_heads, head_dim: c.head_dim, ffn: c.intermediate_size,
    rope_theta: c.rope_theta, rms_norm_eps: c.rms_norm_eps, tie: c.tie_word_embeddings, supra,
  }));
  const sample = new Float32Array(SAMPLE + 2 * EDGE);
  for (const p of m.params()) {
    h.update(`${p.name}[${p.shape.join(',')}]`);
    const { n, at } = valuesOf(p);
    let k = 0;
    for (let i = 0; i < Math.min(EDGE, n); i++) sample[k++] = at(i);
    for (let i = Math.max(0, n - EDGE); i < n; i++) sample[k++] = at(i);
    const stride = Math.max(1, Math.floor(n / SAMPLE));
    for (let i = 0; i < n && k < sample.length; i += stride) sample[k++] = at(i);
    h.update(new Uint8Array(sample.buffer, 0, k * 4));
  }
  const fp = h.digest('hex');
  fingerprints.set(m, fp);
  return fp;
}

