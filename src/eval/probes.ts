// Probes of what linearization costs: the same synthetic task is run through the softmax teacher and
// the SUPRA model, and a score is measured against a difficulty knob.
//
//   copy     a span of random tokens, a gap of random tokens, the span again: mean loss on the second
//            copy against the gap (induction heads find the first copy at any distance; a decaying
//            linear state forgets it).
//   passkey  a 5-digit key hidden at several depths of filler text: accuracy of ranking the true key
//            above distractors by log-likelihood, against the context length.
//   mqar     multi-query associative recall: key-value pairs as tokens, then the keys again; accuracy of
//            predicting each key's value, against the number of pairs.
//
// Every data generator is deterministic by seed (Mt19937). Both models read the sequences through
// their decoding path (DecoderLM.step with a fresh state): the teacher prefills a KV cache (full causal
// softmax attention), the SUPRA model runs the chunked form from a zero state. Nothing is kept for
// backward.
import { Mt19937 } from '../core/random.js';
import type { DecoderLM } from '../models/decoder.js';
import type { LinePlot } from './plot.js';

// ---------------------------------------------------------------- shared helpers

/** Token ids [lo, hi) the token-level probes draw from. */
export interface TokenRange {
  lo: number;
  hi: number;
}

/**
 * Default range for random tokens: the middle 90% of the vocabulary, which skips the special and byte
 * tokens real tokenizers put first and the added tokens they put last. Tiny vocabularies (≤ 512) use
 * every id.
 */
export function defaultTokenRange(vocab: number): TokenRange {
  if (vocab <= 512) return { lo: 0, hi: vocab };
  return { lo: Math.floor(vocab * 0.05), hi: Math.floor(vocab * 0.95) };
}

function checkRange(r: TokenRange, vocab: number, need: number, what: string): void {
  if (!Number.isInteger(r.lo) || !Number.isInteger(r.hi) || r.lo < 0 || r.hi > vocab || r.hi - r.lo < need) {
    throw new Error(`supra: ${what}: token range [${r.lo}, ${r.hi}) must lie in the vocabulary [0, ${vocab}) and hold at least ${need} ids`);
  }
}

/** A per-setting seed: the user's seed mixed with the setting's index, so settings draw independent data. */
export function mixSeed(seed: number, ...parts: number[]): number {
  let h = (seed >>> 0) ^ 0x9e3779b9;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x85ebca6b) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
    h = Math.imul(h, 0xc2b2ae35) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
  }
  return h >>> 0;
}

/** Uniform integer in [0, n). */
function randInt(rng: Mt19937, n: number): number {
  return Math.min(n - 1, Math.floor(rng.random() * n));
}

/** k distinct integers of [lo, hi), in random order (partial Fisher–Yates on a lazily built permutation). */
function distinct(rng: Mt19937, lo: number, hi: number, k: number): number[] {
  const n = hi - lo;
  if (k > n) throw new Error(`supra: cannot draw ${k} distinct ids from ${n}`);
  const swapped = new Map<number, number>();
  const out: number[] = [];
  for (let i = 0; i < k; i++) {
    const j = i + randInt(rng, n - i);
    const vi = swapped.get(i) ?? i, vj = swapped.get(j) ?? j;
    swapped.set(j, vi);
    swapped.set(i, vj);
    out.push(lo + vj);
  }
  return out;
}

/** log softmax(row)[target], in float64. */
export function logProb(row: Float32Array, target: number): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i]! > max) max = row[i]!;
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i]! - max);
  return row[target]! - max - Math.log(sum);
}

export function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

/** Most logits held at once when running sequences (floats): micro-batches are sized under it. */
const MAX_LOGIT_FLOATS = 1 << 25;

/**
 * Run B sequences of T tokens (ids [B·T]) through `model` by its decoding path, in micro-batches, and
 * call visit(b, logits) with each sequence's logits [T, V] (a view valid during the call only).
 */
export function runSequences(model: DecoderLM, ids: Int32Array, B: number, T: number, visit: (b: number, logits: Float32Array) => void): void {
  const V = model.config.vocab_size;
  if (ids.length !== B * T) throw new Error(`supra: runSequences: ${ids.length} ids for B·T = ${B}·${T}`);
  const mb = Math.max(1, Math.min(B, Math.floor(MAX_LOGIT_FLOATS / (T * V))));
  for (let b0 = 0; b0 < B; b0 += mb) {
    const n = Math.min(mb, B - b0);
    const state = model.newState(n);
    try {
      const logits = model.step(ids.subarray(b0 * T, (b0 + n) * T), n, T, state);
      for (let i = 0; i < n; i++) visit(b0 + i, logits.subarray(i * T * V, (i + 1) * T * V));
    } finally {
      state.free();
    }
  }
}

/** What every probe returns: the knob, one or more metrics per model, and the settings that made them. */
export interface ProbeResult {
  probe: 'copy' | 'passkey' | 'mqar';
  /** What the plotted metric means. */
  description: string;
  settings: Record<string, unknown>;
  xName: string;
  x: number[];
  /** The plotted metric's name (a key of teacher/model). */
  metric: string;
  teacher: Record<string, number[]>;
  model: Record<string, number[]>;
  /** Chance level of the plotted metric (uniform guessing), when it has one. */
  chance?: number;
  /** What `chance` is, in words (plot legend and CLI table). */
  chanceLabel?: string;
  /** Seconds spent per model. */
  seconds: { teacher: number; model: number };
}

/** The line plot of a probe result: the metric of both models against the knob (and extra series for copy). */
export function probePlot(r: ProbeResult, names = { teacher: 'teacher (softmax)', model: 'SUPRA' }): LinePlot {
  const series = [
    { name: names.teacher, x: r.x, y: r.teacher[r.metric]! },
    { name: names.model, x: r.x, y: r.model[r.metric]! },
  ];
  const titles = {
    copy: 'Copying: loss on the second copy vs gap',
    passkey: 'Passkey retrieval: accuracy vs context length',
    mqar: 'Multi-query associative recall: accuracy vs pairs',
  };
  const yLabels = { copy: 'mean loss on the second copy (nats)', passkey: 'accuracy', mqar: 'accuracy' };
  const xLabels = { copy: 'gap (tokens)', passkey: 'context length (tokens)', mqar: 'key-value pairs' };
  if (r.probe === 'copy') {
    series.push({ name: `${names.teacher}, 1st copy`, x: r.x, y: r.teacher.firstCopyLoss! });
    series.push({ name: `${names.model}, 1st copy`, x: r.x, y: r.model.firstCopyLoss! });
  }
  const plot: LinePlot = { title: titles[r.probe], xLabel: xLabels[r.probe], yLabel: yLabels[r.probe], series };
  if (r.probe !== 'copy') {
    plot.yMin = 0;
    plot.yMax = 1;
  }
  if (r.chance !== undefined) plot.hline = { y: r.chance, label: r.chanceLabel ?? 'chance' };
  return plot;
}

/** Which models a probe runs: both, or only the model when no teacher is given (its series stay empty). */
function whoRuns(teacher: DecoderLM | null): ('teacher' | 'model')[] {
  return teacher ? ['teacher', 'model'] : ['model'];
}

function timed(f: () => void): number {
  const t0 = performance.now();
  f();
  return (performance.now() - t0) / 1000;
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

// ---------------------------------------------------------------- copying / induction

export interface CopyOptions {
  seed?: number;
  /** Sequences per gap. Default 8. */
  samples?: number;
  /** Tokens in the span that is copied. Default 16. */
  span?: number;
  /** Gap lengths (random tokens between the two copies). Default [0, 8, 32, 128, 512]. */
  gaps?: number[];
  range?: TokenRange;
}

export interface CopyData {
  ids: Int32Array;
  B: number;
  T: number;
  /** The first copy occupies [0, span), the second [secondStart, secondStart + span). */
  secondStart: number;
}

/** Tokens of a copy sequence: the span, the gap, the span again. */
export function copyTokens(span: number, gap: number): number {
  return 2 * span + gap;
}

/** B sequences: span random tokens, gap random tokens, the same span again (T = copyTokens). */
export function copyData(seed: number, samples: number, span: number, gap: number, range: TokenRange): CopyData {
  if (!Number.isInteger(span) || span < 2) throw new Error(`supra: copy probe: span must be an integer ≥ 2, got ${span}`);
  if (!Number.isInteger(gap) || gap < 0) throw new Error(`supra: copy probe: gap must be an integer ≥ 0, got ${gap}`);
  const rng = new Mt19937(seed);
  const T = copyTokens(span, gap);
  const ids = new Int32Array(samples * T);
  const n = range.hi - range.lo;
  for (let b = 0; b < samples; b++) {
    const row = ids.subarray(b * T, (b + 1) * T);
    for (let t = 0; t < span + gap; t++) row[t] = range.lo + randInt(rng, n);
    row.copyWithin(span + gap, 0, span);
  }
  return { ids, B: samples, T, secondStart: span + gap };
}

function copyScores(model: DecoderLM, d: CopyData, span: number): { second: number; first: number } {
  const V = model.config.vocab_size;
  const second: number[] = [], first: number[] = [];
  runSequences(model, d.ids, d.B, d.T, (b, logits) => {
    const row = d.ids.subarray(b * d.T, (b + 1) * d.T);
    // Token i of a copy (i ≥ 1) is predicted at the position before it. The first token of the second
    // copy is not predictable from the first copy alone (nothing marks where the repeat starts).
    for (let i = 1; i < span; i++) {
      first.push(-logProb(logits.subarray((i - 1) * V, i * V), row[i]!));
      const t = d.secondStart + i;
      second.push(-logProb(logits.subarray((t - 1) * V, t * V), row[t]!));
    }
  });
  return { second: mean(second), first: mean(first) };
}

export function copyProbe(teacher: DecoderLM | null, model: DecoderLM, options: CopyOptions = {}): ProbeResult {
  const V = model.config.vocab_size;
  const seed = options.seed ?? 0, samples = options.samples ?? 8, span = options.span ?? 16;
  const gaps = options.gaps ?? [0, 8, 32, 128, 512];
  const range = options.range ?? defaultTokenRange(V);
  checkRange(range, V, 2, 'copy probe');
  const result = {
    teacher: { secondCopyLoss: [] as number[], firstCopyLoss: [] as number[] },
    model: { secondCopyLoss: [] as number[], firstCopyLoss: [] as number[] },
  };
  const seconds = { teacher: 0, model: 0 };
  gaps.forEach((gap, i) => {
    const d = copyData(mixSeed(seed, 1, i), samples, span, gap, range);
    for (const who of whoRuns(teacher)) {
      seconds[who] += timed(() => {
        const s = copyScores(who === 'teacher' ? teacher! : model, d, span);
        result[who].secondCopyLoss.push(s.second);
        result[who].firstCopyLoss.push(s.first);
      });
    }
  });
  return {
    probe: 'copy',
    description: 'mean next-token cross-entropy (nats) over tokens 2…span of the second copy; firstCopyLoss is the same over the first copy (random tokens, the no-memory baseline)',
    settings: { seed, samples, span, gaps, range },
    xName: 'gap', x: gaps, metric: 'secondCopyLoss', teacher: result.teacher, model: result.model,
    // a model of text gives random tokens less than uniform probability, so its first-copy loss (the
    // real no-memory baseline) can sit above this line
    chance: Math.log(range.hi - range.lo), chanceLabel: `uniform guess, ln ${range.hi - range.lo}`, seconds,
  };
}

// ---------------------------------------------------------------- multi-query associative recall

export interface MqarOptions {
  seed?: number;
  /** Sequences per setting. Default 16. */
  samples?: number;
  /** Numbers of key-value pairs. Default [4, 8, 16, 32, 64]. */
  pairs?: number[];
  /** Queries per sequence (at most the number of pairs). Default: every key once. */
  queries?: number;
  /** Keys come from the lower half of the range, values from the upper half. */
  range?: TokenRange;
}

export interface MqarData {
  ids: Int32Array;
  B: number;
  T: number;
  /** Positions of the query keys: the value must be predicted there. [B, queries]. */
  queryPos: Int32Array;
  /** The value each query must produce. [B, queries]. */
  answers: Int32Array;
  queries: number;
}

/** Tokens of an MQAR sequence: the pairs, then each query key and its value. */
export function mqarTokens(pairs: number, queries: number): number {
  return 2 * pairs + 2 * queries;
}

/**
 * B sequences: k₁ v₁ k₂ v₂ … k_N v_N, then `queries` of the keys again in random order, each followed by
 * its value (so later queries see the earlier answers, as in Zoology's MQAR). Keys are distinct.
 */
export function mqarData(seed: number, samples: number, pairs: number, queries: number, range: TokenRange): MqarData {
  const mid = range.lo + Math.floor((range.hi - range.lo) / 2);
  if (pairs < 1 || pairs > mid - range.lo) throw new Error(`supra: mqar probe: ${pairs} pairs need that many distinct keys; the key range holds ${mid - range.lo}`);
  if (queries < 1 || queries > pairs) throw new Error(`supra: mqar probe: queries must be in [1, ${pairs}], got ${queries}`);
  const rng = new Mt19937(seed);
  const T = mqarTokens(pairs, queries);
  const ids = new Int32Array(samples * T);
  const queryPos = new Int32Array(samples * queries);
  const answers = new Int32Array(samples * queries);
  for (let b = 0; b < samples; b++) {
    const keys = distinct(rng, range.lo, mid, pairs);
    const values = keys.map(() => mid + randInt(rng, range.hi - mid));
    const row = ids.subarray(b * T, (b + 1) * T);
    for (let i = 0; i < pairs; i++) {
      row[2 * i] = keys[i]!;
      row[2 * i + 1] = values[i]!;
    }
    const order = distinct(rng, 0, pairs, queries);
    order.forEach((i, q) => {
      const t = 2 * pairs + 2 * q;
      row[t] = keys[i]!;
      row[t + 1] = values[i]!;
      queryPos[b * queries + q] = t;
      answers[b * queries + q] = values[i]!;
    });
  }
  return { ids, B: samples, T, queryPos, answers, queries };
}

function mqarScores(model: DecoderLM, d: MqarData): { accuracy: number; logProb: number } {
  const V = model.config.vocab_size;
  let correct = 0, lp = 0;
  runSequences(model, d.ids, d.B, d.T, (b, logits) => {
    for (let q = 0; q < d.queries; q++) {
      const t = d.queryPos[b * d.queries + q]!;
      const row = logits.subarray(t * V, (t + 1) * V);
      const answer = d.answers[b * d.queries + q]!;
      if (argmax(row) === answer) correct++;
      lp += logProb(row, answer);
    }
  });
  const n = d.B * d.queries;
  return { accuracy: correct / n, logProb: lp / n };
}

export function mqarProbe(teacher: DecoderLM | null, model: DecoderLM, options: MqarOptions = {}): ProbeResult {
  const V = model.config.vocab_size;
  const seed = options.seed ?? 0, samples = options.samples ?? 16;
  const pairs = options.pairs ?? [4, 8, 16, 32, 64];
  const range = options.range ?? defaultTokenRange(V);
  checkRange(range, V, 4, 'mqar probe');
  const result = { teacher: { accuracy: [] as number[], logProb: [] as number[] }, model: { accuracy: [] as number[], logProb: [] as number[] } };
  const seconds = { teacher: 0, model: 0 };
  pairs.forEach((n, i) => {
    const d = mqarData(mixSeed(seed, 3, i), samples, n, Math.min(options.queries ?? n, n), range);
    for (const who of whoRuns(teacher)) {
      seconds[who] += timed(() => {
        const s = mqarScores(who === 'teacher' ? teacher! : model, d);
        result[who].accuracy.push(s.accuracy);
        result[who].logProb.push(s.logProb);
      });
    }
  });
  const valueCount = range.hi - (range.lo + Math.floor((range.hi - range.lo) / 2));
  return {
    probe: 'mqar',
    description: 'fraction of queries whose value is the argmax of the full-vocabulary logits at the query key; logProb is the mean log-probability of the value',
    settings: { seed, samples, pairs, queries: options.queries ?? 'all', range },
    xName: 'pairs', x: pairs, metric: 'accuracy', teacher: result.teacher, model: result.model,
    chance: 1 / valueCount, chanceLabel: `chance, 1/${valueCount}`, seconds,
  };
}

// ---------------------------------------------------------------- passkey retrieval

/** The part of a tokenizer the text probes use (LoadedTokenizer from src/io/tokenizer.ts fits). */
export interface TextTokenizer {
  encode(text: string, options?: { add_special_tokens?: boolean }): number[];
  bos_token_id: number | null;
}

export interface PasskeyOptions {
  seed?: number;
  /** Trials per (length, depth). Default 2. */
  samples?: number;
  /** Context lengths in tokens (prompt up to the answer). Default [128, 256, 512]. */
  lengths?: number[];
  /** Depths of the key in the filler, 0 = start, 1 = end. Default [0, 0.25, 0.5, 0.75, 1]. */
  depths?: number[];
  /** Wrong keys the true key is ranked against. Default 4 (chance 1/5). */
  distractors?: number;
}

export interface PasskeyTrial {
  /** The prompt tokens: [bos] intro, filler with the key sentence at the depth, the question. */
  prompt: number[];
  /** Candidate answer tokens; candidates[0] is the true key. */
  candidates: number[][];
  key: number;
  distractorKeys: number[];
}

const INTRO = 'There is important information hidden inside a lot of irrelevant text. Find it and remember it.';
const FILLER = [
  'The grass is green.', 'The sky is blue.', 'The sun is yellow.', 'Here we go.', 'There and back again.',
  'The river runs to the sea.', 'Birds sing in the morning.', 'The road is long and quiet.',
];
const QUESTION = 'What is the pass key? The pass key is';
const needle = (key: number) => `The pass key is ${key}. Remember it. ${key} is the pass key.`;

/**
 * The tokens of " <key>" after the question: the tail of encode(question + ' ' + key) when encode(question)
 * is its prefix (tokenizers merge across the space differently), else encode(' ' + key).
 */
function answerTokens(tok: TextTokenizer, questionIds: number[], key: number): number[] {
  const full = tok.encode(`${QUESTION} ${key}`, { add_special_tokens: false });
  if (full.length > questionIds.length && questionIds.every((id, i) => full[i] === id)) return full.slice(questionIds.length);
  return tok.encode(` ${key}`, { add_special_tokens: false });
}

/** The keys of passkeyTrial(…, seed, …, distractors): the true key first, then the distractors (the trial's first draws). */
export function passkeyKeys(seed: number, distractors: number): number[] {
  return distinct(new Mt19937(seed), 10000, 100000, distractors + 1);
}

/**
 * One passkey trial of `length` prompt tokens with the key sentence at `depth` of the filler (snapped to
 * a sentence boundary). Filler sentences are picked at random; the key and distractors are distinct
 * 5-digit numbers.
 */
export function passkeyTrial(tok: TextTokenizer, seed: number, length: number, depth: number, distractors: number): PasskeyTrial {
  if (!(depth >= 0 && depth <= 1)) throw new Error(`supra: passkey probe: depth must be in [0, 1], got ${depth}`);
  const rng = new Mt19937(seed);
  const enc = (s: string) => tok.encode(s, { add_special_tokens: false });
  const keys = distinct(rng, 10000, 100000, distractors + 1);
  const key = keys[0]!;
  const head = [...(tok.bos_token_id !== null ? [tok.bos_token_id] : []), ...enc(INTRO)];
  const needleIds = enc(needle(key));
  const questionIds = enc(QUESTION);
  const budget = length - head.length - needleIds.length - questionIds.length;
  if (budget < 0) {
    throw new Error(`supra: passkey probe: length ${length} is too short; the intro, key sentence and question alone take ${length - budget} tokens`);
  }
  const fillerIds = FILLER.map(enc);
  const pieces: number[][] = [];
  let used = 0;
  while (used < budget) {
    const p = fillerIds[randInt(rng, FILLER.length)]!.slice(0, budget - used);
    pieces.push(p);
    used += p.length;
  }
  // the sentence boundary closest to depth·budget
  let at = 0, best = Infinity, pos = 0;
  for (let i = 0; i <= pieces.length; i++) {
    const dist = Math.abs(pos - depth * budget);
    if (dist < best) { best = dist; at = i; }
    if (i < pieces.length) pos += pieces[i]!.length;
  }
  const prompt = [...head, ...pieces.slice(0, at).flat(), ...needleIds, ...pieces.slice(at).flat(), ...questionIds];
  const candidates = keys.map((k) => answerTokens(tok, questionIds, k));
  return { prompt, candidates, key, distractorKeys: keys.slice(1) };
}

/** Sum of log p(candidate tokens | prompt) for each candidate: one prefill, then each candidate from a copy of the state. */
export function candidateLogLikelihoods(model: DecoderLM, prompt: number[], candidates: number[][]): number[] {
  const V = model.config.vocab_size;
  const state = model.newState(1);
  try {
    const logits = model.step(Int32Array.from(prompt), 1, prompt.length, state);
    const last = Float32Array.from(logits.subarray((prompt.length - 1) * V, prompt.length * V));
    return candidates.map((c) => {
      if (c.length === 0) throw new Error('supra: passkey probe: a candidate answer has no tokens');
      let lp = logProb(last, c[0]!);
      if (c.length > 1) {
        const s = state.clone();
        try {
          const out = model.step(Int32Array.from(c.slice(0, -1)), 1, c.length - 1, s);
          for (let i = 1; i < c.length; i++) lp += logProb(out.subarray((i - 1) * V, i * V), c[i]!);
        } finally {
          s.free();
        }
      }
      return lp;
    });
  } finally {
    state.free();
  }
}

export function passkeyProbe(teacher: DecoderLM | null, model: DecoderLM, tok: TextTokenizer, options: PasskeyOptions = {}): ProbeResult {
  const seed = options.seed ?? 0, samples = options.samples ?? 2, distractors = options.distractors ?? 4;
  const lengths = options.lengths ?? [128, 256, 512];
  const depths = options.depths ?? [0, 0.25, 0.5, 0.75, 1];
  const out = {
    teacher: { accuracy: [] as number[], meanMargin: [] as number[] },
    model: { accuracy: [] as number[], meanMargin: [] as number[] },
  };
  const byDepth = { teacher: [] as number[][], model: [] as number[][] };
  const seconds = { teacher: 0, model: 0 };
  const V = model.config.vocab_size;
  lengths.forEach((length, li) => {
    const trials: PasskeyTrial[][] = depths.map((depth, di) =>
      Array.from({ length: samples }, (_, s) => passkeyTrial(tok, mixSeed(seed, 2, li, di, s), length, depth, distractors)));
    for (const t of trials.flat()) {
      for (const id of [...t.prompt, ...t.candidates.flat()]) {
        if (id >= V) throw new Error(`supra: passkey probe: the tokenizer produced id ${id}, outside the model's vocabulary of ${V}`);
      }
    }
    for (const who of whoRuns(teacher)) {
      const m = who === 'teacher' ? teacher! : model;
      seconds[who] += timed(() => {
        const perDepth: number[] = [];
        const margins: number[] = [];
        for (const row of trials) {
          let correct = 0;
          for (const t of row) {
            const ll = candidateLogLikelihoods(m, t.prompt, t.candidates);
            const bestWrong = Math.max(...ll.slice(1));
            if (ll[0]! > bestWrong) correct++;
            margins.push(ll[0]! - bestWrong);
          }
          perDepth.push(correct / row.length);
        }
        byDepth[who].push(perDepth);
        out[who].accuracy.push(mean(perDepth));
        out[who].meanMargin.push(mean(margins));
      });
    }
  });
  return {
    probe: 'passkey',
    description: 'fraction of trials where the true 5-digit key has a higher log-likelihood after the question than every distractor key (averaged over depths); meanMargin is log p(true) − max log p(distractor)',
    settings: { seed, samples, lengths, depths, distractors, accuracyByDepth: byDepth },
    xName: 'length', x: lengths, metric: 'accuracy', teacher: out.teacher, model: out.model,
    chance: 1 / (distractors + 1), chanceLabel: `chance, 1/${distractors + 1}`, seconds,
  };
}
