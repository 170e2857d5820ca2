// Batch-1 decode of a SUPRA model with its weight matrices held as f32, bf16 and int8 (core/weights.ts):
// tokens/s of each, their ratios, and the bytes of weights each decoded token reads (every matrix once; of the
// embedding table one row, unless it is the tied lm_head) with the rate that makes (effective GB/s), to set
// against the machine's read bandwidth: decode is memory-bound, so its bound is bandwidth ÷ bytes per token.
// Default model: SmolLM-135M's shape (vocab 49152, hidden 576, intermediate 1536, 30 layers, 9 heads, 3 kv
// heads, tied), random weights. The models decode interleaved, round after round, so other work on the
// machine weighs on both alike; each takes its best round's median. bf16 and int8 decode with the feature
// maps folded into q_proj and k_proj (as loading them does by default) and, beside them, kept separate.
//   From code: `benchWeightTypes({ config, steps, rounds, log })`.
import { weightBytes, type WeightType } from '../core/weights.js';
import { getBackend } from '../core/select.js';
import { foldsFeatureMaps, type DecoderLM } from '../models/decoder.js';
import { configS, randomModel, type RawConfig } from './model.js';

/** SmolLM-135M's config.json shape (HuggingFaceTB/SmolLM-135M). */
export const SMOLLM_135M: RawConfig = {
  architectures: ['LlamaForCausalLM'],
  vocab_size: 49152,
  hidden_size: 576,
  intermediate_size: 1536,
  num_hidden_layers: 30,
  num_attention_heads: 9,
  num_key_value_heads: 3,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  max_position_embeddings: 2048,
  tie_word_embeddings: true,
};

export interface WeightTypeRow {
  dtype: WeightType;
  /** SUPRA's kernels folded into q_proj and k_proj (DecoderLM.foldForInference), or kept as trained. */
  featureMaps: 'folded' | 'separate';
  /** Per decoded token: the best round's median. */
  msPerToken: number;
  tokensPerS: number;
  /** Bytes of weights one decoded token reads. */
  weightBytesPerToken: number;
  /** weightBytesPerToken × tokensPerS, in GB/s (10^9 bytes). */
  effectiveGBPerS: number;
}

export interface WeightTypesBench {
  backend: string;
  threads: number;
  /** The model's parameter count. */
  params: number;
  rows: WeightTypeRow[];
  /** bf16 tokens/s over f32 tokens/s. */
  ratio: number;
  /** int8 tokens/s over bf16 tokens/s. */
  int8OverBf16: number;
  /** Tokens/s with the feature maps folded over kept separate, at bf16 and int8. */
  foldedOverSeparate: { bf16: number; int8: number };
}

export interface BenchWeightTypesOptions {
  /** The teacher's config.json object, linearized to a SUPRA model. Default SMOLLM_135M. */
  config?: RawConfig;
  /** Tokens per round and model. Default 16. */
  steps?: number;
  /** Interleaved rounds. Default 6. */
  rounds?: number;
  log?: (line: string) => void;
}

/** Bytes of weights a decoding step of one token reads from `model`. */
export function weightBytesPerToken(model: DecoderLM): number {
  const table = model.embedTokens;
  let bytes = 0;
  for (const p of model.params()) {
    const type = p.stored?.type ?? 'f32';
    const [rows, cols] = p.shape.length === 2 ? [p.shape[0]!, p.shape[1]!] : [1, p.shape[0]!];
    // the embedding table: one row, unless it is also lm_head (tied), which reads all of it
    bytes += p === table && !model.config.tie_word_embeddings ? weightBytes(type, 1, cols) : weightBytes(type, rows, cols);
  }
  return bytes;
}

/** Tokens/s of the folded row of a type over its separate row. */
function speedOfFolded(rows: WeightTypeRow[], dtype: WeightType): number {
  const of = (maps: WeightTypeRow['featureMaps']) => rows.find((r) => r.dtype === dtype && r.featureMaps === maps)!.tokensPerS;
  return of('folded') / of('separate');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export function benchWeightTypes(options: BenchWeightTypesOptions = {}): WeightTypesBench {
  const log = options.log ?? ((l: string) => console.log(l));
  const steps = options.steps ?? 16;
  const rounds = options.rounds ?? 6;
  const config = configS('supra', options.config ?? SMOLLM_135M);
  // rows 0–2 as a user loads each type; then bf16 and int8 the other way round
  const variants: { dtype: WeightType; fold: boolean }[] = (['f32', 'bf16', 'int8'] as const).map((dtype) => ({ dtype, fold: foldsFeatureMaps({ dtype }) }));
  variants.push(...variants.slice(1).map((v) => ({ ...v, fold: !v.fold })));
  const dtypes = variants.map((v) => v.dtype);
  const models: DecoderLM[] = [];
  try {
    for (const { dtype, fold } of variants) {
      models.push(randomModel(config, 0, dtype));
      if (fold) models.at(-1)!.foldForInference();
    }
    const states = models.map((m) => m.newState(1));
    // warm-up: JIT, scratch buffers, helper threads
    models.forEach((m, i) => {
      m.step([1, 2, 3, 4, 5, 6, 7, 8], 1, 8, states[i]!, { lastOnly: true });
      for (let t = 0; t < 4; t++) m.step([t], 1, 1, states[i]!);
    });
    const best = dtypes.map(() => Infinity);
    for (let round = 0; round < rounds; round++) {
      models.forEach((m, i) => {
        const times: number[] = [];
        for (let t = 0; t < steps; t++) {
          const t0 = performance.now();
          m.step([(round * steps + t) % config.vocab_size], 1, 1, states[i]!);
          times.push(performance.now() - t0);
        }
        best[i] = Math.min(best[i]!, median(times));
      });
    }
    states.forEach((s) => s.free());
    const rows = dtypes.map((dtype, i): WeightTypeRow => {
      const bytes = weightBytesPerToken(models[i]!);
      const tokensPerS = 1000 / best[i]!;
      return { dtype, featureMaps: models[i]!.foldedForInference ? 'folded' : 'separate', msPerToken: best[i]!, tokensPerS, weightBytesPerToken: bytes, effectiveGBPerS: (bytes * tokensPerS) / 1e9 };
    });
    const be = getBackend();
    const result: WeightTypesBench = {
      backend: be.name, threads: be.threads, params: models[0]!.store.numel(), rows, ratio: rows[1]!.tokensPerS / rows[0]!.tokensPerS,
      int8OverBf16: rows[2]!.tokensPerS / rows[1]!.tokensPerS,
      foldedOverSeparate: { bf16: speedOfFolded(rows, 'bf16'), int8: speedOfFolded(rows, 'int8') },
    };
    for (const r of rows) {
      log(`  ${r.dtype.padEnd(4)} ${r.featureMaps.padEnd(8)}: ${r.tokensPerS.toFixed(1)} tokens/s (${r.msPerToken.toFixed(2)} ms/token), ` +
        `${(r.weightBytesPerToken / 1e6).toFixed(0)} MB of weights per token, ${r.effectiveGBPerS.toFixed(1)} GB/s`);
    }
    log(`  bf16 / f32: ${result.ratio.toFixed(2)}×, int8 / bf16: ${result.int8OverBf16.toFixed(2)}× the tokens/s (bound by memory bandwidth: at B GB/s, at most B / bytes per token tokens/s)`);
    log(`  feature maps folded / separate: ${result.foldedOverSeparate.bf16.toFixed(2)}× at bf16, ${result.foldedOverSeparate.int8.toFixed(2)}× at int8`);
    return result;
  } finally {
    for (const m of models) m.free();
  }
}
