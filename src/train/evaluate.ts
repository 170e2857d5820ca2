// The validation loss a run reports (and the demo and the study measure with).
import { allocI32, free } from '../core/memory.js';
import type { DecoderLM } from '../models/decoder.js';
import type { TokenBatches } from './batches.js';

/** Mean next-token cross-entropy (no z-loss) over the first `maxSequences` validation sequences. */
export function evaluate(model: DecoderLM, data: TokenBatches, maxSequences: number, batchSize: number): { loss: number; tokens: number } | null {
  if (maxSequences <= 0 || data.validationTokens <= 0) return null;
  const { ids, count } = data.validation(maxSequences);
  if (count === 0) return null;
  const T = data.seqLen;
  const inputs = allocI32(batchSize * T);
  const targets = allocI32(batchSize * T);
  let total = 0;
  let tokens = 0;
  try {
    for (let first = 0; first < count; first += batchSize) {
      const n = Math.min(batchSize, count - first);
      splitRows(ids, first, n, T, inputs, targets);
      const { loss, count: c } = model.evaluateLoss(inputs.subarray(0, n * T), targets, n, T);
      total += loss * c;
      tokens += c;
    }
  } finally {
    free(inputs);
    free(targets);
  }
  return { loss: total / tokens, tokens };
}

/** Rows [first, first + n) of [*, T + 1] sequences → inputs [n, T] and next-token targets [n, T]. */
export function splitRows(seqs: Int32Array, first: number, n: number, T: number, inputs: Int32Array, targets: Int32Array): void {
  for (let r = 0; r < n; r++) {
    const row = seqs.subarray((first + r) * (T + 1), (first + r + 1) * (T + 1));
    inputs.set(row.subarray(0, T), r * T);
    targets.set(row.subarray(1, T + 1), r * T);
  }
}
