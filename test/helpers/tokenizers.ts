// Hand-built Hugging Face tokenizer.json files for tests: one BPE skeleton with the few switches the tests
// need (SentencePiece ▁ handling, byte fallback, GPT-2 byte-level, <s> in front), and the small
// vocabularies several tests share (character-level, byte-level).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** ▁, SentencePiece's word boundary. */
export const SPACE = '\u2581';

/** An added_tokens entry for a special token. */
export function specialToken(id: number, content: string): Record<string, unknown> {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

export interface BpeSpec {
  vocab: Record<string, number>;
  /** "a b" merge rules, highest priority first. Default none. */
  merges?: string[];
  /** Added special tokens as [id, content]. Default none. */
  specials?: Array<[number, string]>;
  /** model.unk_token. Default '<unk>'. */
  unk?: string | null;
  /** A TemplateProcessing post-processor that puts <s> (vocab['<s>']) in front. */
  bosInFront?: boolean;
  /** With bosInFront: a pair also gets <s> before its second sequence (Llama-2's template). */
  bosBeforeSecond?: boolean;
  /** SentencePiece style: a ▁ normalizer (prepend, spaces → ▁) and the decoder that undoes it. */
  sentencePiece?: boolean;
  /** model.byte_fallback (and, with sentencePiece, the ByteFallback decoder step). */
  byteFallback?: boolean;
  /** GPT-2's ByteLevel pre-tokenizer and decoder. */
  byteLevel?: boolean;
  /** model.fuse_unk. Default false. */
  fuseUnk?: boolean;
}

/** A tokenizer.json object with a BPE model. */
export function bpeTokenizerJson(spec: BpeSpec): Record<string, unknown> {
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const bos = spec.vocab['<s>'];
  const bosToken = (type_id: number) => ({ SpecialToken: { id: '<s>', type_id } });
  const postProcessor = spec.bosInFront
    ? {
        type: 'TemplateProcessing',
        single: [bosToken(0), { Sequence: { id: 'A', type_id: 0 } }],
        pair: [bosToken(0), { Sequence: { id: 'A', type_id: 0 } }, ...(spec.bosBeforeSecond ? [bosToken(1)] : []), { Sequence: { id: 'B', type_id: 1 } }],
        special_tokens: { '<s>': { id: '<s>', ids: [bos], tokens: ['<s>'] } },
      }
    : null;
  const normalizer = spec.sentencePiece
    ? {
        type: 'Sequence',
        normalizers: [
          { type: 'Prepend', prepend: SPACE },
          { type: 'Replace', pattern: { String: ' ' }, content: SPACE },
        ],
      }
    : null;
  const decoder = spec.sentencePiece
    ? {
        type: 'Sequence',
        decoders: [
          { type: 'Replace', pattern: { String: SPACE }, content: ' ' },
          ...(spec.byteFallback ? [{ type: 'ByteFallback' }] : []),
          { type: 'Fuse' },
          { type: 'Strip', content: ' ', start: 1, stop: 0 },
        ],
      }
    : spec.byteLevel ? byteLevel : null;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: (spec.specials ?? []).map(([id, content]) => specialToken(id, content)),
    normalizer,
    pre_tokenizer: spec.byteLevel ? byteLevel : null,
    post_processor: postProcessor,
    decoder,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: spec.unk === undefined ? '<unk>' : spec.unk,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: spec.fuseUnk ?? false,
      byte_fallback: spec.byteFallback ?? false,
      ignore_merges: false,
      vocab: spec.vocab,
      merges: spec.merges ?? [],
    },
  };
}

/** <unk> 0, <s> 1, </s> 2 as added special tokens. */
export const LLAMA_SPECIALS: Array<[number, string]> = [[0, '<unk>'], [1, '<s>'], [2, '</s>']];

/**
 * Character level, no merges: <unk>=0 <s>=1 </s>=2, "\n"=10, printable ASCII c = c (so token counts are
 * character counts and ids fit a 128-token model). With bosInFront, <s> is added in front.
 */
export function charTokenizerJson(options: { bosInFront?: boolean } = {}): Record<string, unknown> {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2, '\n': 10 };
  for (let c = 32; c < 127; c++) vocab[String.fromCharCode(c)] = c;
  return bpeTokenizerJson({ vocab, specials: LLAMA_SPECIALS, bosInFront: options.bosInFront });
}

/** GPT-2's byte → printable character map. */
export function byteChars(): string[] {
  const direct: number[] = [];
  for (let b = 33; b <= 126; b++) direct.push(b);
  for (let b = 161; b <= 172; b++) direct.push(b);
  for (let b = 174; b <= 255; b++) direct.push(b);
  const out: string[] = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(direct.includes(b) ? b : 256 + extra++);
  return out;
}

/** Byte-level BPE with no merges and no special tokens: token id = byte value, so ids 0..255. */
export function byteTokenizerJson(): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  byteChars().forEach((c, b) => (vocab[c] = b));
  return bpeTokenizerJson({ vocab, unk: null, byteLevel: true });
}

/** Write tokenizer.json and, when given, tokenizer_config.json into dir. */
export function writeTokenizer(dir: string, json: unknown, config?: Record<string, unknown>): void {
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
  if (config) writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
}
