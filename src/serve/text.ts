// Token ids → text for the API: the piece of text each token adds (for streaming deltas, logprobs'
// token strings and text offsets), and stop strings matched on the growing completion text.
import type { LoadedTokenizer } from '../io/tokenizer.js';

/** Tokens of context decoded before a token to find its piece (keeps SentencePiece spaces and merges right). */
const CONTEXT = 6;

/** Decodes with skip_special_tokens (as vLLM: BOS/EOS do not show in the text). */
export class Detokenizer {
  constructor(readonly tokenizer: LoadedTokenizer | null) {}

  /**
   * The text token `id` adds after `before` (the ids preceding it; only the last few are read). A piece
   * that ends inside a UTF-8 character (U+FFFD from a byte token) gives "" and the next token's piece
   * carries the whole character. Without a tokenizer every piece is "".
   */
  piece(before: readonly number[], id: number): string {
    const tok = this.tokenizer;
    if (!tok) return '';
    const ctx = before.slice(Math.max(0, before.length - CONTEXT));
    const opts = { skip_special_tokens: true };
    const a = stripIncomplete(tok.decode(ctx, opts));
    const b = stripIncomplete(tok.decode([...ctx, id], opts));
    if (b.startsWith(a)) return b.slice(a.length);
    // a decoder rewrote the context (cleanup of spaces, normalization): keep what differs
    let i = 0;
    while (i < a.length && i < b.length && a[i] === b[i]) i++;
    return b.slice(i);
  }

  /** Pieces of every token of `ids` in order (their concatenation is the text). */
  pieces(ids: readonly number[], before: readonly number[] = []): string[] {
    const ctx = before.slice(Math.max(0, before.length - CONTEXT));
    const out: string[] = [];
    for (const id of ids) {
      out.push(this.piece(ctx, id));
      ctx.push(id);
      if (ctx.length > CONTEXT) ctx.shift();
    }
    return out;
  }

  /** How a token is named in logprobs: its piece, else its vocabulary entry, else "token_id:N". */
  display(id: number, piece: string): string {
    if (piece !== '') return piece;
    return this.tokenizer?.idToToken(id) ?? `token_id:${id}`;
  }

  /** The whole text of ids (the text a client sent comes back as decode would give it). */
  decode(ids: readonly number[]): string {
    return this.tokenizer ? this.tokenizer.decode(ids, { skip_special_tokens: true }) : '';
  }
}

function stripIncomplete(s: string): string {
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 0xfffd) end--;
  return s.slice(0, end);
}

/**
 * The completion text as it grows, with stop strings: once one appears the text is cut before it and
 * generation stops. Text that could be the start of a stop string is held back from streaming until it
 * is known not to be one.
 */
export class StopText {
  text = '';
  private emitted = 0;
  stopped = false;

  constructor(readonly stops: readonly string[]) {}

  /** Append a piece; returns the text that is now final (to stream). */
  push(piece: string): string {
    if (this.stopped) return '';
    const from = this.text.length;
    this.text += piece;
    let cut = -1;
    for (const s of this.stops) {
      const at = this.text.indexOf(s, Math.max(0, from - s.length + 1));
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.text = this.text.slice(0, cut);
      this.stopped = true;
      return this.flush();
    }
    const safe = this.text.length - this.heldBack();
    if (safe <= this.emitted) return '';
    const out = this.text.slice(this.emitted, safe);
    this.emitted = safe;
    return out;
  }

  /** Everything not streamed yet (at the end of generation). */
  flush(): string {
    const out = this.text.slice(this.emitted);
    this.emitted = this.text.length;
    return out;
  }

  /** Length of the longest end of the text that is a proper prefix of a stop string. */
  private heldBack(): number {
    let held = 0;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, this.text.length); k > held; k--) {
        if (this.text.endsWith(s.slice(0, k))) {
          held = k;
          break;
        }
      }
    }
    return held;
  }
}
