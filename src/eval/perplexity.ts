// Perplexity of token sequences under a decoder, and the per-token log-probabilities the task scorer
// shares. Two ways to see a long document:
//  - a softmax teacher cannot look further back than its maximum length, so it is scored with Hugging
//    Face's sliding-window recipe: windows of maxLength tokens starting every `stride` tokens, each
//    scoring only the tokens the previous window did not score, with the earlier tokens as context;
//  - a SUPRA model carries a fixed-size state, so the whole document goes through in one pass
//    (newState + step, `chunk` tokens at a time) and every token is scored with everything before it
//    as context, in bounded memory.
// Log-probabilities come from the logSoftmax kernel run in place on the model's logits buffer (that
// buffer is scratch until the model's next call), and are summed in float64.
import { logSoftmax } from '../core/ops.js';
import type { DecoderLM } from '../models/decoder.js';

/** 'forward': one full forward of the sequence. 'recurrent': newState + step in chunks. */
export type ScoreMode = 'forward' | 'recurrent';

export interface TokenLogProbOptions {
  /** Default: 'recurrent' for SUPRA models, 'forward' for teachers. */
  mode?: ScoreMode;
  /** Tokens per step in recurrent mode (bounds the logits buffer to chunk·vocab floats). Default 1024. */
  chunk?: number;
  /** Called after each chunk (recurrent) or the forward: tokens of input consumed so far, and in all. */
  onProgress?: (done: number, total: number) => void;
}

export const DEFAULT_CHUNK = 1024;

/**
 * Rows [firstRow, firstRow + rows) of logits [*, V] → log-softmax in place, then
 * out[outAt + i] = logp(row firstRow + i, target ids[firstTarget + i]).
 */
function gatherLogProbs(
  logits: Float32Array, V: number, firstRow: number, rows: number,
  ids: ArrayLike<number>, firstTarget: number, out: Float64Array, outAt: number,
): void {
  if (rows <= 0) return;
  const block = logits.subarray(firstRow * V, (firstRow + rows) * V);
  logSoftmax(block, block, rows, V);
  for (let i = 0; i < rows; i++) out[outAt + i] = block[i * V + ids[firstTarget + i]!]!;
}

/**
 * log p(ids[t] | ids[0..t)) for t = from … n−1 (n − from values, float64). Token 0 has no context, so
 * from ≥ 1. The model sees ids[0..n−1); the last token is only a target.
 */
export function tokenLogProbs(model: DecoderLM, ids: ArrayLike<number>, from: number, options: TokenLogProbOptions = {}): Float64Array {
  const n = ids.length;
  if (!Number.isInteger(from) || from < 1 || from > n) throw new RangeError(`supra: tokenLogProbs: from = ${from} must be in [1, ${n}] for ${n} tokens`);
  const out = new Float64Array(n - from);
  if (from === n) return out;
  const V = model.config.vocab_size;
  const inputs = n - 1;
  const mode = options.mode ?? (model.recurrent ? 'recurrent' : 'forward');
  if (mode === 'forward') {
    const logits = model.forward(Array.prototype.slice.call(ids, 0, inputs) as number[], 1, inputs);
    gatherLogProbs(logits, V, from - 1, inputs - (from - 1), ids, from, out, 0);
    options.onProgress?.(inputs, inputs);
    return out;
  }
  const chunk = options.chunk ?? DEFAULT_CHUNK;
  if (!Number.isInteger(chunk) || chunk < 1) throw new RangeError(`supra: tokenLogProbs: chunk must be a positive integer, got ${chunk}`);
  const state = model.newState(1);
  try {
    for (let start = 0; start < inputs; start += chunk) {
      const len = Math.min(chunk, inputs - start);
      const piece: number[] = new Array<number>(len);
      for (let i = 0; i < len; i++) piece[i] = ids[start + i]!;
      const logits = model.step(piece, 1, len, state);
      // row r of this chunk is input position start + r and predicts ids[start + r + 1]
      const firstRow = Math.max(0, from - 1 - start);
      gatherLogProbs(logits, V, firstRow, len - firstRow, ids, start + firstRow + 1, out, start + firstRow + 1 - from);
      options.onProgress?.(start + len, inputs);
    }
  } finally {
    state.free();
  }
  return out;
}

/** One window of the sliding-window recipe: the model sees ids[begin, end) and scores ids[scoreFrom, end). */
export interface Window {
  begin: number;
  end: number;
  scoreFrom: number;
}

/**
 * Hugging Face's perplexity recipe for n tokens: windows start at 0, stride, 2·stride, … and span
 * maxLength tokens (the last stops at n, and no window starts after one that reached n). Each scores the
 * tokens after the previous window's end; a window's first token is never scored (nothing precedes it
 * inside the window), which with stride = maxLength drops one token per window, as the recipe does.
 */
export function slidingWindows(n: number, maxLength: number, stride: number): Window[] {
  if (!Number.isInteger(maxLength) || maxLength < 2) throw new RangeError(`supra: the window length must be an integer ≥ 2, got ${maxLength}`);
  if (!Number.isInteger(stride) || stride < 1 || stride > maxLength) {
    throw new RangeError(`supra: the stride must be an integer in [1, ${maxLength}] (the window length), got ${stride}`);
  }
  const windows: Window[] = [];
  let prevEnd = 0;
  for (let begin = 0; begin < n; begin += stride) {
    const end = Math.min(begin + maxLength, n);
    const scoreFrom = Math.max(prevEnd, begin + 1);
    if (end > scoreFrom) windows.push({ begin, end, scoreFrom });
    prevEnd = end;
    if (end === n) break;
  }
  return windows;
}

export interface NllResult {
  /** Tokens scored. */
  tokens: number;
  /** Sum of −log p over the scored tokens. */
  nll: number;
}

export interface DocumentOptions {
  /** Window length of the sliding window (teachers). Default: config.max_position_embeddings. */
  maxLength?: number;
  /** Window start step (teachers). Default: maxLength / 2, rounded up. */
  stride?: number;
  /** Tokens per step for a SUPRA model. Default 1024. */
  chunk?: number;
  /** Default: 'recurrent' for SUPRA (one pass with state), 'window' for teachers. */
  method?: 'window' | 'recurrent';
  /** Tokens of the document handled so far, and in all. */
  onProgress?: (done: number, total: number) => void;
}

/** The window length a model is scored with: the option, else config.max_position_embeddings. */
export function defaultMaxLength(model: DecoderLM, maxLength?: number): number {
  return maxLength ?? model.config.max_position_embeddings;
}

/** Sum of −log p(ids[t] | context) over the tokens of one document, and how many were scored. */
export function documentNll(model: DecoderLM, ids: ArrayLike<number>, options: DocumentOptions = {}): NllResult {
  const n = ids.length;
  const method = options.method ?? (model.recurrent ? 'recurrent' : 'window');
  if (n < 2) {
    options.onProgress?.(n, n);
    return { tokens: 0, nll: 0 };
  }
  if (method === 'recurrent') {
    const lp = tokenLogProbs(model, ids, 1, { mode: 'recurrent', chunk: options.chunk, onProgress: options.onProgress ? (d) => options.onProgress!(d + 1, n) : undefined });
    return { tokens: lp.length, nll: -sum(lp) };
  }
  const maxLength = defaultMaxLength(model, options.maxLength);
  const stride = options.stride ?? Math.ceil(maxLength / 2);
  let nll = 0, tokens = 0;
  for (const w of slidingWindows(n, maxLength, stride)) {
    const windowIds = Array.prototype.slice.call(ids, w.begin, w.end) as number[];
    const lp = tokenLogProbs(model, windowIds, w.scoreFrom - w.begin, { mode: 'forward' });
    nll -= sum(lp);
    tokens += lp.length;
    options.onProgress?.(w.end, n);
  }
  return { tokens, nll };
}

function sum(a: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]!;
  return s;
}

export interface PerplexityRow {
  name: string;
  tokens: number;
  /** Mean negative log-likelihood per scored token (nats); NaN when no token was scored. */
  meanNll: number;
  perplexity: number;
}

/** exp(mean NLL) for one result. */
export function toRow(name: string, r: NllResult): PerplexityRow {
  const meanNll = r.tokens > 0 ? r.nll / r.tokens : NaN;
  return { name, tokens: r.tokens, meanNll, perplexity: Math.exp(meanNll) };
}

/** Token-weighted total over several documents. */
export function combine(results: NllResult[]): NllResult {
  return results.reduce((a, r) => ({ tokens: a.tokens + r.tokens, nll: a.nll + r.nll }), { tokens: 0, nll: 0 });
}
