// Choosing the next token from a row of logits, as Hugging Face's generate does: the repetition penalty
// first (a logits processor), then greedy argmax, or the sampling warpers in HF's order (temperature,
// top-k, top-p) and one draw from a seeded generator.
import { Mt19937 } from '../core/random.js';

export interface SamplingOptions {
  /** Sample instead of taking the argmax. Default false (greedy). */
  do_sample?: boolean;
  /** Divide the logits by this before sampling. Default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens (ties with the k-th kept); 0 = no limit. Default 50, as HF. */
  top_k?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches top_p. Default 1 (off). */
  top_p?: number;
  /** HF's repetition penalty: > 1 discourages tokens already in the context. Default 1 (off). */
  repetition_penalty?: number;
}

export interface ResolvedSampling {
  doSample: boolean;
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
}

/** The defaults of every sampling option (HF's). */
export const SAMPLING_DEFAULTS: Readonly<Required<SamplingOptions>> = Object.freeze({
  do_sample: false, temperature: 1, top_k: 50, top_p: 1, repetition_penalty: 1,
});

/** Defaults filled in and every value checked (errors name the option). */
export function resolveSampling(o: SamplingOptions): ResolvedSampling {
  const doSample = o.do_sample ?? SAMPLING_DEFAULTS.do_sample;
  const temperature = o.temperature ?? SAMPLING_DEFAULTS.temperature;
  const topK = o.top_k ?? SAMPLING_DEFAULTS.top_k;
  const topP = o.top_p ?? SAMPLING_DEFAULTS.top_p;
  const repetitionPenalty = o.repetition_penalty ?? SAMPLING_DEFAULTS.repetition_penalty;
  if (typeof doSample !== 'boolean') throw new TypeError(`supra: do_sample must be true or false, got ${JSON.stringify(doSample)}`);
  if (!(typeof temperature === 'number' && Number.isFinite(temperature) && temperature > 0 && Number.isFinite(1 / temperature))) {
    throw new RangeError(`supra: temperature must be a number > 0 whose inverse is finite, got ${temperature}`);
  }
  if (!(Number.isInteger(topK) && topK >= 0)) throw new RangeError(`supra: top_k must be an integer ≥ 0, got ${topK}`);
  if (!(typeof topP === 'number' && topP > 0 && topP <= 1)) throw new RangeError(`supra: top_p must be in (0, 1], got ${topP}`);
  if (!(typeof repetitionPenalty === 'number' && Number.isFinite(repetitionPenalty) && repetitionPenalty > 0)) throw new RangeError(`supra: repetition_penalty must be a number > 0, got ${repetitionPenalty}`);
  return { doSample, temperature, topK, topP, repetitionPenalty };
}

/** Resolved settings as options (the option names: what a snapshot stores and the CLI reports). */
export function samplingOptionsOf(s: ResolvedSampling): Required<SamplingOptions> {
  return { do_sample: s.doSample, temperature: s.temperature, top_k: s.topK, top_p: s.topP, repetition_penalty: s.repetitionPenalty };
}

/**
 * HF's RepetitionPenaltyLogitsProcessor, in place: for every token id in `present` (each once), a positive
 * logit is divided by the penalty and a negative one multiplied by it.
 */
export function applyRepetitionPenalty(logits: Float32Array, present: ArrayLike<number>, penalty: number): void {
  if (penalty === 1) return;
  for (let i = 0; i < present.length; i++) {
    const id = present[i]!;
    const x = logits[id]!;
    logits[id] = x < 0 ? x * penalty : x / penalty;
  }
}

/** Index of the largest value (the first one on ties, as torch.argmax). */
export function argmax(x: Float32Array): number {
  let best = 0;
  let bestValue = x[0]!;
  for (let i = 1; i < x.length; i++) {
    if (x[i]! > bestValue) {
      bestValue = x[i]!;
      best = i;
    }
  }
  return best;
}

/**
 * A seeded Mt19937 that counts its draws. A snapshot stores the generator's full state (getState), so a
 * restored one continues exactly where the saved one was without replaying its draws; the seed and the
 * draw count are kept to say where the sample came from.
 */
export class SeededRandom {
  private rng: Mt19937;
  private count: number;

  constructor(readonly seed: number, state?: { draws: number; words: ArrayLike<number> }) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new RangeError(`supra: seed must be an integer in [0, 2^32), got ${seed}`);
    const draws = state?.draws ?? 0;
    if (!Number.isSafeInteger(draws) || draws < 0) throw new RangeError(`supra: bad generator draw count ${draws}`);
    this.rng = state ? Mt19937.fromState(state.words) : new Mt19937(seed);
    this.count = draws;
  }

  /**
   * The generator after `draws` draws from `seed`, by taking them one at a time (for snapshots that stored
   * only seed and draw count, supra-state/1). The caller bounds `draws`: this costs ~25 ns per draw.
   */
  static replay(seed: number, draws: number): SeededRandom {
    if (!Number.isSafeInteger(draws) || draws < 0) throw new RangeError(`supra: bad generator draw count ${draws}`);
    const r = new SeededRandom(seed);
    for (let i = 0; i < draws; i++) r.next();
    return r;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.count++;
    return this.rng.random();
  }

  /** Draws taken since seeding. */
  get draws(): number {
    return this.count;
  }

  /** The generator's full state (Mt19937 words and index), for new SeededRandom(seed, { draws, words }). */
  getState(): Uint32Array {
    return this.rng.getState();
  }
}

/** A fresh random seed for sampling without one (kept with the state, so a snapshot still reproduces). */
export function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]!;
}

// top-p's histogram of probabilities: buckets of the logits' range [max − TOP_P_RANGE, max] (anything lower in
// the first; exp(−64) ≈ 1.6e-28 of the largest probability).
const TOP_P_RANGE = 64;
const TOP_P_BUCKETS = 2048;
const TOP_P_HISTOGRAM = new Float64Array(TOP_P_BUCKETS);

/**
 * The k-th largest of values[0, n) (1 ≤ k ≤ n, no NaN among them): the value an ascending sort puts at n − k.
 * A min-heap of the k largest so far in `heap` (at least k floats): each value is compared with the heap's
 * smallest, and most are dropped at once. O(n log k) at worst, about n comparisons for k ≪ n.
 */
function kthLargest(values: Float32Array, n: number, k: number, heap: Float32Array): number {
  let size = 0;
  for (let i = 0; i < n; i++) {
    const x = values[i]!;
    if (size < k) {
      // sift up
      let c = size++;
      while (c > 0) {
        const parent = (c - 1) >> 1;
        if (heap[parent]! <= x) break;
        heap[c] = heap[parent]!;
        c = parent;
      }
      heap[c] = x;
    } else if (x > heap[0]!) {
      // replace the smallest, sift down
      let c = 0;
      for (;;) {
        const l = 2 * c + 1;
        if (l >= k) break;
        const r = l + 1;
        const m = r < k && heap[r]! < heap[l]! ? r : l;
        if (heap[m]! >= x) break;
        heap[c] = heap[m]!;
        c = m;
      }
      heap[c] = x;
    }
  }
  return heap[0]!;
}

/**
 * Sample one token from `logits` (modified in place: scaled by 1/temperature, masked by top-k/top-p).
 * `sorted` is scratch of at least logits.length floats.
 */
export function sampleToken(logits: Float32Array, s: ResolvedSampling, rng: SeededRandom, sorted: Float32Array): number {
  const V = logits.length;
  if (s.temperature !== 1) {
    const inv = 1 / s.temperature;
    for (let i = 0; i < V; i++) logits[i]! *= inv;
  }
  let max = -Infinity;
  for (let i = 0; i < V; i++) {
    const x = logits[i]!;
    if (x > max) max = x;
    else if (x !== x) throw new Error(`supra: cannot sample: logit ${i} is NaN`);
  }
  if (max === -Infinity) throw new Error('supra: cannot sample: every logit is -Infinity');
  const topK = s.topK > 0 && s.topK < V;
  // Everything below `threshold` is dropped: the k-th largest value, then the top-p cut-off among what is
  // left, walked down from the largest. Only the largest values are sorted (all of them only when top-p's mass
  // needs them): a full sort of 49k logits took 4.5 ms a token, selecting the top 50 0.4, top-p 0.9 alone over
  // 49k uniform ones 2.8.
  let threshold = topK ? kthLargest(logits, V, s.topK, sorted) : -Infinity;
  if (s.topP < 1) {
    // Walk down from the most likely token; keep tokens until their cumulative probability reaches top_p
    // (HF keeps a token when the mass strictly before it is below top_p; at least one is kept). The walk
    // goes over the largest values only, sorted: those kept by top-k, else those at or above a floor where a
    // histogram of the probabilities says the mass is reached (a bucket lower, for round-off). Should that
    // walk fall short, it goes over every value. A walk over the largest values makes the sums of a walk
    // down a full sort, in the same order, so it decides as that one would.
    const hist = topK ? null : TOP_P_HISTOGRAM.fill(0);
    let total = 0;
    for (let i = 0; i < V; i++) {
      const x = logits[i]!;
      if (!(x >= threshold)) continue;
      const e = Math.exp(x - max);
      total += e;
      if (hist) hist[Math.max(0, Math.min(TOP_P_BUCKETS - 1, Math.floor((x - max + TOP_P_RANGE) * (TOP_P_BUCKETS / TOP_P_RANGE))))]! += e;
    }
    let floor = threshold;
    if (hist) {
      for (let b = TOP_P_BUCKETS - 1, mass = 0; b > 0; b--) {
        mass += hist[b]!;
        if (mass >= s.topP * total) {
          floor = max - TOP_P_RANGE + (b - 1) * (TOP_P_RANGE / TOP_P_BUCKETS);
          break;
        }
      }
    }
    for (;;) {
      let n = 0;
      for (let i = 0; i < V; i++) if (logits[i]! >= floor) sorted[n++] = logits[i]!;
      const descending = sorted.subarray(0, n).sort().reverse();
      let mass = 0;
      let reached = false;
      for (let j = 0; j < n; j++) {
        const x = descending[j]!;
        mass += Math.exp(x - max) / total;
        if (mass >= s.topP) {
          threshold = Math.max(threshold, x);
          reached = true;
          break;
        }
      }
      if (reached || floor === threshold) break;
      floor = threshold;
    }
  }
  let total = 0;
  for (let i = 0; i < V; i++) if (logits[i]! >= threshold) total += Math.exp(logits[i]! - max);
  const target = rng.next() * total;
  let acc = 0;
  let last = -1;
  for (let i = 0; i < V; i++) {
    if (logits[i]! < threshold) continue;
    acc += Math.exp(logits[i]! - max);
    last = i;
    if (acc > target) return i;
  }
  return last; // round-off: the target fell past the last kept token
}
