// Everything needed to continue a generation: the model's decoding state (SUPRA recurrent states or KV
// caches), every token of the context, the next-token logits, the sampling generator and settings.
//
// Tokens are appended "pending" and fed through the model lazily, when logits are needed: a prompt goes
// in as one prefill (in pieces, with lm_head on the last token only), each sampled token as one step.
// A SUPRA mixer computes a multi-token step with the chunked form from its state and a single token
// with the recurrence (layers/supra_attention.ts), so this is "chunked prefill, then recurrent steps".
import type { DecoderLM, DecoderState } from '../models/decoder.js';
import type { ResolvedSampling, SeededRandom } from './sampling.js';

/**
 * Tokens per prefill piece; a softmax teacher shrinks it so its [H, piece, context] scores stay bounded
 * (DecoderState.prefillPiece).
 */
export const PREFILL_PIECE = 512;

export class GenerationState {
  readonly model: DecoderLM;
  readonly decoder: DecoderState;
  readonly batch: number;
  /** Every token of each row's context: the consumed ones, then the pending ones. Rows have one length. */
  readonly tokens: number[][];
  /** Next-token logits [B, V] after the consumed tokens (valid when nothing is pending). */
  readonly logits: Float32Array;
  /** The sampling generator; null until a sampling run needs one. */
  rng: SeededRandom | null = null;
  /** The sampling settings of the last generation from this state (a snapshot keeps them); null before one. */
  sampling: ResolvedSampling | null = null;
  /** Per row: 1 for each token id present in the context (for the repetition penalty), and their list. */
  private readonly seenMark: Uint8Array[];
  private readonly seenList: number[][];
  private haveLogits = false;

  constructor(model: DecoderLM, batch = 1, decoder?: DecoderState) {
    if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`supra: batch must be an integer ≥ 1, got ${batch}`);
    this.model = model;
    this.batch = batch;
    this.decoder = decoder ?? model.newState(batch);
    if (this.decoder.batch !== batch) throw new Error(`supra: decoding state for batch ${this.decoder.batch}, expected ${batch}`);
    const V = model.config.vocab_size;
    this.tokens = Array.from({ length: batch }, () => []);
    this.logits = new Float32Array(batch * V);
    this.seenMark = Array.from({ length: batch }, () => new Uint8Array(V));
    this.seenList = Array.from({ length: batch }, () => []);
  }

  /** Tokens already through the model. */
  get position(): number {
    return this.decoder.position;
  }

  /** Tokens per row (consumed + pending). */
  get length(): number {
    return this.tokens[0]!.length;
  }

  get pending(): number {
    return this.length - this.position;
  }

  /** Bytes the model's decoding state holds (constant for SUPRA, growing for a KV cache). */
  bytes(): number {
    return this.decoder.bytes();
  }

  /** Append n tokens to every row (rows[b] has the same length for each b); they are fed on demand. */
  append(rows: ReadonlyArray<ArrayLike<number>>): void {
    if (rows.length !== this.batch) throw new Error(`supra: ${rows.length} rows of tokens for a state of batch ${this.batch}`);
    const n = rows[0]!.length;
    const V = this.model.config.vocab_size;
    rows.forEach((r, b) => {
      if (r.length !== n) throw new Error(`supra: row ${b} has ${r.length} tokens, row 0 has ${n}`);
      for (let i = 0; i < n; i++) {
        const id = r[i]!;
        if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`supra: token id ${id} is outside the vocabulary [0, ${V})`);
        this.tokens[b]!.push(id);
        if (!this.seenMark[b]![id]) {
          this.seenMark[b]![id] = 1;
          this.seenList[b]!.push(id);
        }
      }
    });
    if (n > 0) this.haveLogits = false;
  }

  /** Token ids present in row b's context, each once. */
  present(b: number): readonly number[] {
    return this.seenList[b]!;
  }

  /** Feed the pending tokens through the model; returns the next-token logits [B, V] (owned by the state). */
  nextLogits(): Float32Array {
    if (this.haveLogits) return this.logits;
    const B = this.batch;
    if (this.length === 0) throw new Error('supra: generation needs at least one token of context (empty input_ids)');
    const V = this.model.config.vocab_size;
    while (this.position < this.length) {
      const start = this.position;
      const n = Math.min(this.decoder.prefillPiece(start, PREFILL_PIECE), this.length - start);
      const ids = new Int32Array(B * n);
      for (let b = 0; b < B; b++) {
        const row = this.tokens[b]!;
        for (let t = 0; t < n; t++) ids[b * n + t] = row[start + t]!;
      }
      const out = this.model.step(ids, B, n, this.decoder, { lastOnly: true });
      // step advanced the position; out is [B, V] (the model's scratch: copy the last piece's)
      if (this.position === this.length) this.logits.set(out.subarray(0, B * V));
    }
    this.haveLogits = true;
    return this.logits;
  }

  /** Use logits restored from a snapshot (nothing pending). */
  restoreLogits(logits: Float32Array): void {
    if (this.pending !== 0) throw new Error('supra: restoreLogits with tokens pending');
    if (logits.length !== this.logits.length) throw new Error(`supra: ${logits.length} logits for a state expecting ${this.logits.length}`);
    this.logits.set(logits);
    this.haveLogits = true;
  }

  /** Whether nextLogits() would compute nothing. */
  get ready(): boolean {
    return this.haveLogits;
  }

  /** Release the decoding state's arena memory. */
  free(): void {
    this.decoder.free();
  }
}
