import { isNode } from '../core/host.js';

// Streamers in the shape transformers.js has: generate() calls put() once with the prompt ids, then once
// per new token, then end(). TextStreamer turns the ids into text as they come.

/** What generate() calls: put(ids) with [B][n] token ids, end() when generation stops. */
export interface BaseStreamer {
  put(value: ReadonlyArray<ReadonlyArray<number | bigint>>): void;
  end(): void;
}

/** The part of a tokenizer a streamer needs (LoadedTokenizer from io/tokenizer.ts has it). */
export interface DecodingTokenizer {
  decode(ids: readonly number[], options?: { skip_special_tokens?: boolean }): string;
}

export interface TextStreamerOptions {
  /** Do not emit the prompt (the first put). Default false, as transformers.js. */
  skip_prompt?: boolean;
  /** Passed to decode. Default false. */
  skip_special_tokens?: boolean;
  /** Receives each piece of text; default: process.stdout.write. */
  callback_function?: (text: string) => void;
  /** Receives the new token ids of each put (after the prompt). */
  token_callback_function?: (ids: number[]) => void;
}

/** Prompt tokens kept as decoding context when the prompt itself is skipped. */
const PROMPT_CONTEXT = 6;

/**
 * Text as soon as it is final. Byte-level BPE and byte-fallback tokens can end in the middle of a UTF-8
 * character: the decoder then gives U+FFFD, so text ending in U+FFFD is held back until a later token
 * completes the character (end() flushes whatever is left). Decoding restarts from a sliding offset (the
 * text-generation-inference scheme): the ids since the last emitted piece are decoded together with the
 * few before them, and only the difference is emitted, so SentencePiece's word-boundary spaces survive
 * and the cost per token stays constant instead of growing with the output.
 */
export class TextStreamer implements BaseStreamer {
  readonly tokenizer: DecodingTokenizer;
  readonly skipPrompt: boolean;
  readonly decodeOptions: { skip_special_tokens: boolean };
  private readonly callback: (text: string) => void;
  private readonly tokenCallback: ((ids: number[]) => void) | null;
  private ids: number[] = [];
  private prefixOffset = 0; // ids[prefixOffset, readOffset) were emitted already: decoding context only
  private readOffset = 0;
  private nextIsPrompt = true;

  constructor(tokenizer: DecodingTokenizer, options: TextStreamerOptions = {}) {
    this.tokenizer = tokenizer;
    this.skipPrompt = options.skip_prompt ?? false;
    this.decodeOptions = { skip_special_tokens: options.skip_special_tokens ?? false };
    this.callback = options.callback_function ?? ((text: string) => (isNode ? void process.stdout.write(text) : console.log(text)));
    this.tokenCallback = options.token_callback_function ?? null;
  }

  put(value: ReadonlyArray<ReadonlyArray<number | bigint>>): void {
    if (value.length > 1) throw new Error('supra: TextStreamer only supports batch size 1');
    const ids = (value[0] ?? []).map(Number);
    if (this.nextIsPrompt) {
      this.nextIsPrompt = false;
      if (this.skipPrompt) {
        // keep the prompt's tail as context for decoding what follows
        this.ids = ids.slice(-PROMPT_CONTEXT);
        this.prefixOffset = 0;
        this.readOffset = this.ids.length;
        return;
      }
    } else if (this.tokenCallback) this.tokenCallback(ids);
    for (const id of ids) this.ids.push(id);
    const done = this.decode(this.prefixOffset, this.readOffset);
    const text = this.decode(this.prefixOffset, this.ids.length);
    if (text.length > done.length && !text.endsWith('\uFFFD')) {
      this.onFinalizedText(text.slice(done.length), false);
      this.prefixOffset = this.readOffset;
      this.readOffset = this.ids.length;
      // drop ids that can no longer be context
      if (this.prefixOffset > 64) {
        this.ids = this.ids.slice(this.prefixOffset);
        this.readOffset -= this.prefixOffset;
        this.prefixOffset = 0;
      }
    }
  }

  /** Flush what is held back (an unfinished character comes out as U+FFFD) and signal the end. */
  end(): void {
    const done = this.decode(this.prefixOffset, this.readOffset);
    const text = this.decode(this.prefixOffset, this.ids.length);
    this.ids = [];
    this.prefixOffset = this.readOffset = 0;
    this.nextIsPrompt = true;
    this.onFinalizedText(text.length > done.length ? text.slice(done.length) : '', true);
  }

  /** Called with each final piece of text; stream_end on the last call (from end()). */
  onFinalizedText(text: string, streamEnd: boolean): void {
    if (text.length > 0 || !streamEnd) this.callback(text);
  }

  private decode(from: number, to: number): string {
    return to > from ? this.tokenizer.decode(this.ids.slice(from, to), this.decodeOptions) : '';
  }
}
