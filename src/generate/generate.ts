// The generation loop: prefill the context, then one token at a time: repetition penalty, greedy or
// sampled choice, stop on an eos id or a stop string or max_new_tokens.
//
// Semantics follow Hugging Face / transformers.js:
//   - the result holds every token of each row: the context (a continued state's earlier tokens, then
//     input_ids), then the new tokens; a sequence that stopped keeps its eos token or the tokens of its
//     stop string, and rows that stopped early are padded with pad_token_id (else the first eos id);
//   - the streamer gets put(input_ids) first, then put([[token]]) per new token, then end().
import type { DecoderLM } from '../models/decoder.js';
import {
  applyRepetitionPenalty, argmax, randomSeed, resolveSampling, sampleToken, SeededRandom, type SamplingOptions,
} from './sampling.js';
import { GenerationState } from './state.js';
import type { BaseStreamer, DecodingTokenizer } from './streamer.js';

export interface GenerationOptions extends SamplingOptions {
  /** New tokens to produce at most. Default 20 (HF's default max_length). */
  max_new_tokens?: number;
  /** Seed of the sampling generator (Mt19937). Default: continue the state's generator, or a random seed. */
  seed?: number;
  /** Stop when a row's text ends with one of these (the stop string's tokens stay in the output). Needs a tokenizer. */
  stop_strings?: string | readonly string[];
  /** Stop a row when it produces one of these ids. Default: the config's and the tokenizer's eos ids; null: never. */
  eos_token_id?: number | readonly number[] | null;
  /** Fills rows that stopped while others go on. Default: the first eos id, else 0. */
  pad_token_id?: number | null;
  /** Receives the ids as they come (see TextStreamer). */
  streamer?: BaseStreamer;
  /** Decodes text for stop_strings (and supplies eos ids). Default: the streamer's tokenizer, if it has one. */
  tokenizer?: DecodingTokenizer & { eos_token_ids?: readonly number[] };
}

/** Why a row stopped. */
export type FinishReason = 'eos' | 'stop_string' | 'length';

interface StopString {
  text: string;
  /** Tokens decoded to test for it: each non-empty token adds at least one byte, plus slack for a split character. */
  window: number;
}

/** What each step of decodeTokens yields. */
export interface DecodedStep {
  /** The token chosen for each row (pad for rows already finished). */
  tokens: number[];
  /** Per row: why it finished at this step (or earlier), null while it goes on. */
  finished: (FinishReason | null)[];
}

function eosIds(model: DecoderLM, options: GenerationOptions): number[] {
  if (options.eos_token_id === null) return [];
  if (options.eos_token_id !== undefined) {
    const list = typeof options.eos_token_id === 'number' ? [options.eos_token_id] : [...options.eos_token_id];
    for (const id of list) if (!Number.isInteger(id) || id < 0) throw new RangeError(`supra: eos_token_id ${id} is not a token id`);
    return list;
  }
  const c = model.config.eos_token_id;
  const fromConfig = c === null ? [] : typeof c === 'number' ? [c] : c;
  return [...new Set([...fromConfig, ...(options.tokenizer?.eos_token_ids ?? [])])];
}

/**
 * The generation loop as a generator: each iteration chooses one token per row, appends it to `state`
 * (pending, fed on the next iteration) and yields it. Stops after max_new_tokens or when every row has
 * finished. Drive it yourself to interleave generation with other work (a server), or use generate().
 */
export function* decodeTokens(state: GenerationState, options: GenerationOptions = {}): Generator<DecodedStep, void, void> {
  const model = state.model;
  const B = state.batch;
  const V = model.config.vocab_size;
  const maxNew = options.max_new_tokens ?? 20;
  if (!Number.isInteger(maxNew) || maxNew < 0) throw new RangeError(`supra: max_new_tokens must be an integer ≥ 0, got ${maxNew}`);
  const sampling = resolveSampling(options);
  state.sampling = sampling;
  if (options.seed !== undefined) state.rng = new SeededRandom(options.seed);
  else if (sampling.doSample && !state.rng) state.rng = new SeededRandom(randomSeed());
  const eos = eosIds(model, options);
  const eosSet = new Set(eos);
  const pad = options.pad_token_id ?? eos[0] ?? 0;
  if (!Number.isInteger(pad) || pad < 0 || pad >= V) throw new RangeError(`supra: pad_token_id ${pad} is outside the vocabulary [0, ${V})`);
  const stops = stopStrings(options);
  const tokenizer = options.tokenizer;
  if (stops.length > 0 && !tokenizer) throw new Error('supra: stop_strings need a tokenizer (pass tokenizer, or a TextStreamer)');

  const finished: (FinishReason | null)[] = new Array<FinishReason | null>(B).fill(null);
  const row = new Float32Array(V); // the logits of one row, processed in place
  const sorted = new Float32Array(V);
  for (let step = 0; step < maxNew; step++) {
    const logits = state.nextLogits();
    const chosen: number[] = new Array<number>(B);
    for (let b = 0; b < B; b++) {
      if (finished[b] !== null) {
        chosen[b] = pad;
        continue;
      }
      row.set(logits.subarray(b * V, (b + 1) * V));
      applyRepetitionPenalty(row, state.present(b), sampling.repetitionPenalty);
      chosen[b] = sampling.doSample ? sampleToken(row, sampling, state.rng!, sorted) : argmax(row);
    }
    state.append(chosen.map((id) => [id]));
    for (let b = 0; b < B; b++) {
      if (finished[b] !== null) continue;
      if (eosSet.has(chosen[b]!)) finished[b] = 'eos';
      else if (stops.length > 0 && endsWithStop(state.tokens[b]!, stops, tokenizer!)) finished[b] = 'stop_string';
      else if (step === maxNew - 1) finished[b] = 'length';
    }
    yield { tokens: chosen, finished: [...finished] };
    if (finished.every((f) => f !== null)) return;
  }
}

function stopStrings(options: GenerationOptions): StopString[] {
  const s = options.stop_strings;
  if (s === undefined) return [];
  const list = typeof s === 'string' ? [s] : [...s];
  return list.map((text) => {
    if (typeof text !== 'string' || text.length === 0) throw new Error(`supra: stop_strings must be non-empty strings, got ${JSON.stringify(text)}`);
    return { text, window: new TextEncoder().encode(text).length + 3 };
  });
}

/** The row's text has just come to end with a stop string: it ends with one, and did not before its last token. */
function endsWithStop(tokens: readonly number[], stops: readonly StopString[], tokenizer: DecodingTokenizer): boolean {
  for (const stop of stops) {
    const from = Math.max(0, tokens.length - stop.window);
    const text = tokenizer.decode(tokens.slice(from));
    if (!text.endsWith(stop.text)) continue;
    const before = tokens.length - 1 > from ? tokenizer.decode(tokens.slice(from, tokens.length - 1)) : '';
    if (!before.endsWith(stop.text)) return true;
  }
  return false;
}

export interface GenerateResult {
  /** Every token of each row: the context, then the new tokens (padded to one length). */
  sequences: number[][];
  /** New tokens per row, up to and including its eos / stop string. */
  newTokens: number[][];
  finishReasons: FinishReason[];
}

/**
 * Generate from `state` after appending `inputIds` (rows of one length; may be empty rows when the state
 * already holds a context). The streamer gets put(inputIds), a put per token, then end().
 */
export function generateFromState(state: GenerationState, inputIds: ReadonlyArray<ArrayLike<number>>, options: GenerationOptions = {}): GenerateResult {
  const B = state.batch;
  if (inputIds.length !== B) throw new Error(`supra: ${inputIds.length} rows of input_ids for a state of batch ${B}`);
  state.append(inputIds);
  const streamer = options.streamer;
  if (streamer) streamer.put(inputIds.map((r) => Array.from(r)));
  const tokenizer = options.tokenizer ?? tokenizerOf(streamer);
  const newTokens: number[][] = Array.from({ length: B }, () => []);
  const reasons: (FinishReason | null)[] = new Array<FinishReason | null>(B).fill(null);
  try {
    for (const step of decodeTokens(state, { ...options, tokenizer })) {
      for (let b = 0; b < B; b++) {
        if (reasons[b] === null) newTokens[b]!.push(step.tokens[b]!);
        reasons[b] = step.finished[b] ?? null;
      }
      if (streamer) streamer.put(step.tokens.map((t) => [t]));
    }
  } finally {
    if (streamer) streamer.end();
  }
  return {
    sequences: state.tokens.map((r) => r.slice()),
    newTokens,
    finishReasons: reasons.map((r) => r ?? 'length'),
  };
}

function tokenizerOf(streamer: BaseStreamer | undefined): GenerationOptions['tokenizer'] {
  const t = (streamer as { tokenizer?: unknown } | undefined)?.tokenizer;
  return t && typeof (t as DecodingTokenizer).decode === 'function' ? (t as GenerationOptions['tokenizer']) : undefined;
}

/** One-shot generation on a DecoderLM: rows of prompt ids in, rows of prompt + new ids out. */
export function generate(model: DecoderLM, inputIds: ReadonlyArray<ArrayLike<number>>, options: GenerationOptions = {}): GenerateResult {
  const state = new GenerationState(model, inputIds.length);
  try {
    return generateFromState(state, inputIds, options);
  } finally {
    state.free();
  }
}
