// Model-level throughput on configuration S (vocab 4096, hidden 256, 4 layers, 4 heads, 4 kv heads,
// intermediate 704): training forward+backward tokens/s for the teacher and the SUPRA model (chunked), and
// SUPRA chunked prefill tokens/s against length, which must be flat (cost linear in length).
import { Mt19937 } from '../core/random.js';
import { WEIGHT_TYPES, type WeightType } from '../core/weights.js';
import { parseConfig, type ModelConfig } from '../io/config.js';
import { DecoderLM } from '../models/decoder.js';
import { supraConfig } from '../models/linearize.js';
import { AdamW } from '../train/adamw.js';

export const CONFIG_S = {
  architectures: ['LlamaForCausalLM'],
  vocab_size: 4096,
  hidden_size: 256,
  intermediate_size: 704,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 4,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  max_position_embeddings: 65536,
  tie_word_embeddings: false,
};

/** A Hugging Face style config.json object; the benches default to CONFIG_S, tests pass tiny ones. */
export type RawConfig = Record<string, unknown>;

export function configS(kind: 'teacher' | 'supra', raw: RawConfig = CONFIG_S): ModelConfig {
  const teacher = parseConfig({ ...raw }, raw === CONFIG_S ? 'configuration S' : 'bench configuration');
  return kind === 'teacher' ? teacher : supraConfig(teacher);
}

/**
 * A model of configuration S with small random weights (speed does not depend on their values), its
 * matrices stored as `dtype` (the same draws, rounded, for bf16).
 */
export function randomModel(config: ModelConfig, seed = 0, dtype: WeightType = 'f32'): DecoderLM {
  const model = new DecoderLM(config, { dtype });
  const rng = new Mt19937(seed);
  const chunk = new Float32Array(1 << 16);
  for (const p of model.params()) {
    const stored = p.stored ?? { type: 'f32' as const, data: p.data };
    if (stored.type === 'f32') {
      if (p.shape.length === 1) p.data.fill(1);
      else rng.fillUniform(p.data, -0.05, 0.05);
      continue;
    }
    // whole rows at a time (an int8 weight is quantized by blocks of its rows)
    const step = Math.max(1, Math.floor(chunk.length / p.shape[p.shape.length - 1]!)) * p.shape[p.shape.length - 1]!;
    const part0 = step <= chunk.length ? chunk : new Float32Array(step);
    for (let i = 0; i < stored.data.length; i += step) {
      const part = part0.subarray(0, Math.min(step, stored.data.length - i));
      rng.fillUniform(part, -0.05, 0.05);
      WEIGHT_TYPES[stored.type].fromFloat(part, stored, i);
    }
  }
  return model;
}

function randomIds(n: number, vocab: number, seed: number): Int32Array {
  const rng = new Mt19937(seed);
  const ids = new Int32Array(n);
  for (let i = 0; i < n; i++) ids[i] = rng.nextU32() % vocab;
  return ids;
}

/** Best-of-reps seconds of fn after one warm-up call. */
export function bestSeconds(fn: () => void, reps: number): number {
  fn();
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    fn();
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return best;
}

/**
 * Training tokens/s (B = 8, T = 256): forward + loss + backward, and with `optimizer` an AdamW update of
 * every parameter as well (the full uptraining step).
 */
export function benchTrainStep(kind: 'teacher' | 'supra', reps = 3, B = 8, T = 256, optimizer = false, raw: RawConfig = CONFIG_S): number {
  const model = randomModel(configS(kind, raw));
  model.enableGrads();
  const adamw = optimizer ? new AdamW(model.params(), { lr: 1e-5 }) : null;
  const ids = randomIds(B * T, model.config.vocab_size, 1);
  const s = bestSeconds(() => {
    model.zeroGrad();
    model.loss(ids, B, T);
    model.backward();
    adamw?.step();
  }, reps);
  adamw?.free();
  model.free();
  return (B * T) / s;
}

/** The SUPRA uptraining step (forward + backward + AdamW) tokens/s at B = 8, T = 256. */
export function benchUptrainStep(reps = 3, B = 8, T = 256, raw: RawConfig = CONFIG_S): number {
  return benchTrainStep('supra', reps, B, T, true, raw);
}

/** SUPRA chunked prefill tokens/s (batch 1) at each length. */
export function benchPrefill(lengths = [1024, 4096, 16384], reps = 2, raw: RawConfig = CONFIG_S): Array<{ length: number; tokensPerS: number }> {
  const model = randomModel(configS('supra', raw));
  const out = lengths.map((length) => {
    const ids = randomIds(length, model.config.vocab_size, 2);
    const s = bestSeconds(() => {
      const state = model.newState(1);
      model.step(ids, 1, length, state);
      state.free();
    }, reps);
    return { length, tokensPerS: length / s };
  });
  model.free();
  return out;
}

/** Recurrent decode tokens/s at batch 1 after a short prompt. */
export function benchRecurrentDecode(steps = 256, raw: RawConfig = CONFIG_S): number {
  const model = randomModel(configS('supra', raw));
  const state = model.newState(1);
  model.step(randomIds(16, model.config.vocab_size, 3), 1, 16, state);
  const one = new Int32Array(1);
  const s = bestSeconds(() => {
    for (let i = 0; i < steps; i++) {
      one[0] = i % model.config.vocab_size;
      model.step(one, 1, 1, state);
    }
  }, 2);
  state.free();
  model.free();
  return steps / s;
}
