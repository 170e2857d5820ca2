// The compute side of the server: one request's prompt through a DecoderLM (with the log-probabilities of
// its tokens when scoring), then token-by-token generation. Every request has its own DecoderState, and
// run() yields to the event loop between model steps, so several requests interleave at token granularity
// on the one model while the server keeps reading sockets (a client that went away aborts its signal and
// the run stops at its next step). The prompt goes through here (in chunks, with every position's logits
// when scoring); generation is src/generate's decodeTokens (Hugging Face's processors and sampling),
// advanced one token per turn.
import { logSoftmax } from '../core/ops.js';
import { allocF32, free } from '../core/memory.js';
import { decodeTokens } from '../generate/generate.js';
import { GenerationState } from '../generate/state.js';
import type { DecoderLM } from '../models/decoder.js';
import type { SamplingParams } from './request.js';

export interface TokenChoice {
  id: number;
  logprob: number;
}

/** A token with its log-probability and the most likely alternatives at its position (best first). */
export interface TokenLogprob extends TokenChoice {
  top: TokenChoice[];
}

export interface RunOptions extends SamplingParams {
  /** Compute the prompt tokens' logprobs with this many alternatives each; null: only prefill. */
  promptLogprobs: number | null;
  /** Alternatives reported with each generated token; null: no logprobs (logprob is NaN). */
  logprobs: number | null;
  /** Generation ends when one of these is produced (it is counted, not passed to onToken). */
  stopTokenIds: readonly number[];
}

export interface RunHooks {
  /** Prompt logprobs: entries for positions 1 … T−1 (the first token has none). */
  onPrompt?(entries: TokenLogprob[]): void | Promise<void>;
  /** Each generated token; return false to stop (a stop string matched). */
  onToken(token: TokenLogprob): boolean | Promise<boolean>;
}

export type FinishReason = 'stop' | 'length';

export interface RunResult {
  finishReason: FinishReason;
  completionTokens: number;
}

export interface EngineOptions {
  /** Prompt tokens per model step (between two steps the event loop runs). Default 256. */
  prefillChunk?: number;
}

/** Floats of logits one scoring step may produce: keeps [chunk, V] buffers small for big vocabularies. */
const SCORE_FLOATS = 1 << 22;

export class Engine {
  readonly vocabSize: number;
  readonly prefillChunk: number;
  /** Tokens generated since start, and model steps taken (for stats). */
  generatedTokens = 0;
  steps = 0;

  constructor(readonly model: DecoderLM, options: EngineOptions = {}) {
    this.vocabSize = model.config.vocab_size;
    this.prefillChunk = options.prefillChunk ?? 256;
    if (!Number.isInteger(this.prefillChunk) || this.prefillChunk < 1) throw new Error(`supra: prefillChunk must be a positive integer, got ${this.prefillChunk}`);
  }

  /** Let other requests and socket events run, then stop here if this request was aborted. */
  private async turn(signal: AbortSignal): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    signal.throwIfAborted();
  }

  async run(prompt: readonly number[], o: RunOptions, hooks: RunHooks, signal: AbortSignal): Promise<RunResult> {
    const V = this.vocabSize;
    const T = prompt.length;
    if (T === 0) throw new Error('supra: empty prompt');
    for (let i = 0; i < T; i++) {
      const id = prompt[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new RangeError(`supra: token id ${id} at position ${i} is outside the vocabulary [0, ${V})`);
    }
    const wantPrompt = o.promptLogprobs !== null;
    if (o.maxTokens === 0 && !wantPrompt) return { finishReason: 'length', completionTokens: 0 };

    signal.throwIfAborted();
    const model = this.model;
    const state = model.newState(1);
    // Per-request arena buffers: model.step's logits live in the model's scratch, which the next step of
    // any request overwrites, so what must survive a turn is copied here.
    const next = allocF32(V); // logits of the next token
    const lp = allocF32(V); // its log-softmax
    const scoreRows = wantPrompt ? Math.max(1, Math.min(this.prefillChunk, Math.floor(SCORE_FLOATS / V))) : 0;
    const promptLp = wantPrompt ? allocF32(scoreRows * V) : null;
    let gen: GenerationState | null = null;
    try {
      // ---- prompt
      const chunk = wantPrompt ? scoreRows : this.prefillChunk;
      const entries: TokenLogprob[] = [];
      // a softmax teacher's pieces shrink as its scores over the context grow (DecoderState.prefillPiece),
      // so the next piece starts where this one ended, not `chunk` further
      for (let start = 0, n = 0; start < T; start += n) {
        if (start > 0) await this.turn(signal);
        n = Math.min(state.prefillPiece(start, chunk), T - start);
        const ids = prompt.slice(start, start + n);
        this.steps++;
        if (promptLp) {
          const logits = model.step(ids, 1, n, state);
          const rows = promptLp.subarray(0, n * V);
          logSoftmax(logits, rows, n, V);
          for (let r = 0; r < n; r++) {
            const pos = start + r;
            if (pos + 1 < T) entries.push(choiceAt(rows.subarray(r * V, (r + 1) * V), prompt[pos + 1]!, o.promptLogprobs!));
          }
          if (start + n === T) next.set(logits.subarray((n - 1) * V, n * V));
        } else {
          // only the last position's logits are needed: skip lm_head on the others
          const logits = model.step(ids, 1, n, state, { lastOnly: true });
          next.set(logits.subarray(0, V));
        }
      }
      if (wantPrompt && hooks.onPrompt) await hooks.onPrompt(entries);

      // ---- generation: src/generate's loop, driven one step per turn
      if (o.maxTokens === 0) return { finishReason: 'length', completionTokens: 0 };
      gen = new GenerationState(model, 1, state);
      gen.append([prompt]);
      gen.restoreLogits(next);
      const sampled = o.temperature > 0;
      const steps = decodeTokens(gen, {
        do_sample: sampled,
        temperature: sampled ? o.temperature : 1,
        top_k: o.topK,
        top_p: o.topP,
        repetition_penalty: o.repetitionPenalty,
        seed: o.seed === null ? undefined : ((o.seed % 2 ** 32) + 2 ** 32) % 2 ** 32,
        max_new_tokens: o.maxTokens,
        eos_token_id: o.stopTokenIds,
      });
      let generated = 0;
      try {
        for (;;) {
          if (generated > 0) {
            await this.turn(signal);
            this.steps++; // the next() below feeds the previous token through the model
          }
          const step = steps.next();
          if (step.done) return { finishReason: 'length', completionTokens: generated };
          const id = step.value.tokens[0]!;
          const finished = step.value.finished[0];
          generated++;
          this.generatedTokens++;
          if (finished === 'eos') return { finishReason: 'stop', completionTokens: generated };
          const token: TokenLogprob = { id, logprob: NaN, top: [] };
          if (o.logprobs !== null) {
            // logprobs of the model's distribution, before penalties and temperature (as vLLM reports them);
            // gen.logits still holds the logits this token was chosen from
            next.set(gen.logits.subarray(0, V));
            logSoftmax(next, lp, 1, V);
            Object.assign(token, choiceAt(lp, id, o.logprobs));
          }
          if (!(await hooks.onToken(token))) return { finishReason: 'stop', completionTokens: generated };
          if (finished === 'length') return { finishReason: 'length', completionTokens: generated };
        }
      } finally {
        steps.return();
      }
    } finally {
      if (gen) gen.free(); // frees `state` too
      else state.free();
      free(next);
      free(lp);
      if (promptLp) free(promptLp);
    }
  }
}

/** logprob of `id` in the row and the k most likely tokens (ties: the lower id first). */
function choiceAt(row: Float32Array, id: number, k: number): TokenLogprob {
  const top: TokenChoice[] = [];
  if (k > 0) {
    // insertion into a sorted list of k: O(V·k) with k ≤ 20
    for (let i = 0; i < row.length; i++) {
      const v = row[i]!;
      if (top.length === k && v <= top[k - 1]!.logprob) continue;
      let j = top.length < k ? top.length : k - 1;
      if (top.length < k) top.push({ id: i, logprob: v });
      while (j > 0 && top[j - 1]!.logprob < v) {
        top[j] = top[j - 1]!;
        j--;
      }
      top[j] = { id: i, logprob: v };
    }
  }
  return { id, logprob: row[id]!, top };
}
