// Tokenized, packed training data served from a binary cache (implements src/train/batches.ts).
//
// Building the cache (once per inputs + tokenizer + settings):
//   documents are streamed one at a time (readers.ts), each encoded without special tokens and followed
//   by EOS, and appended to one of two token files: the validation split (a seeded choice of whole
//   documents) or the training split. A document longer than TOKENIZE_PIECE_CHARS is encoded in pieces
//   cut where a word starts (pieceCut), so neither its text nor its tokenizer state is ever held whole. Ids are buffered 1M at a time and written as uint16 when every id
//   fits (vocab_size <= 65536), else uint32, in the host's byte order (part of the cache key). A small JSON index records the
//   counts and the hash of everything that went in. All three files are written under temporary names,
//   fsynced and renamed (io/atomic.ts); the index is renamed last, so an index on disk always describes
//   complete token files, even after a power cut.
//   SIGINT/SIGTERM while tokenizing removes the temporary files; those of a process that died anyway
//   (SIGKILL, power loss) are removed by the next run.
//
// Packing (at read time, so one cache serves any seqLen): a split's T tokens give
//   count = floor((T - 1) / seqLen) sequences; sequence i is tokens [i*seqLen, i*seqLen + seqLen + 1).
//   Inputs are its first seqLen tokens, targets its last seqLen (the same shifted by one). Consecutive
//   sequences share one token, so every token at positions 1..count*seqLen is a target exactly once;
//   the last < seqLen tokens are dropped. Sequences run across document boundaries, marked by EOS.
//
// Order: epoch e visits the training sequences in a Fisher–Yates permutation drawn from
//   Mt19937(seed + e). Validation sequences are served in file order.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync } from 'node:fs';
import { endianness, homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { Mt19937 } from '../../core/random.js';
import { AtomicFile, writeFileAtomic } from '../../io/atomic.js';
import { loadTokenizer, type LoadedTokenizer } from '../../io/tokenizer.js';
import type { DataPosition, TokenBatches } from '../batches.js';
import { embeddedCorpusVersion } from './corpus.js';
import { expandInputs } from './files.js';
import { RecallMixture, checkKindWeights, type KindWeights } from './recall-mixture.js';
import { newReadStats, readDocuments, resolveTxtSplit, type ReadStats, type SettingName, type TxtSplit } from './readers.js';

/** Bumped whenever the cache layout or the tokenization rules change, so old caches are not reused. */
const CACHE_VERSION = 2;
const WRITE_CHUNK_TOKENS = 1 << 20;

/** The defaults of TokenDataOptions, also shown by the CLI's --help. */
export const DATA_DEFAULTS = { validationFraction: 0.02, textField: 'text', txtSplit: 'auto' as TxtSplit };

/** Documents longer than this many UTF-16 code units are tokenized in pieces (see pieceCut). */
export const TOKENIZE_PIECE_CHARS = 1 << 20;

export interface TokenDataOptions {
  /** Files, folders, globs, or `@embedded` (the built-in corpus). */
  data: readonly string[];
  /** A Hugging Face tokenizer folder (tokenizer.json, tokenizer_config.json); the model's tokenizer. */
  tokenizerDir: string;
  /** Tokens per training example (the model sees seqLen inputs and seqLen targets). */
  seqLen: number;
  /** Chooses the validation documents and the shuffling. */
  seed: number;
  /**
   * Shuffles the training sequences instead of `seed` (which then only picks the validation split), so
   * runs can vary their data order while keeping one held-out set. Default: seed.
   */
  shuffleSeed?: number;
  /**
   * Share of training sequences that carry a synthetic in-context episode (copy, MQAR, passkey:
   * recall-mixture.ts), in [0, 1]. Default 0: natural text only. Validation is never mixed.
   */
  recallMix?: number;
  /** Training tokens at the start over which the mixture's share falls linearly from 1 to recallMix. Default 0. */
  recallWarmup?: number;
  /** How often each episode kind is drawn (relative weights; recall-mixture.ts). Default DEFAULT_KIND_WEIGHTS. */
  recallKinds?: Partial<KindWeights>;
  /** Fraction of documents held out for validation, in [0, 1). Default 0.02; when > 0, at least one document. */
  validationFraction?: number;
  /** Text field of .jsonl records / column of .parquet files. Default "text". */
  textField?: string;
  /**
   * .txt files: one document per file ('file') or per blank-line-separated paragraph ('paragraph');
   * 'auto' (default): 'paragraph' when the data is a single .txt file, else 'file'.
   */
  txtSplit?: TxtSplit;
  /** Where token caches live. Default $SUPRA_CACHE_DIR, else $XDG_CACHE_HOME/supra/tokens, else ~/.cache/supra/tokens. */
  cacheDir?: string;
  /** Progress messages (cache reuse, tokenization progress). */
  log?: (message: string) => void;
  /** How error messages name the settings; default the names above (the CLI passes its flags). */
  settingName?: SettingName;
}

export interface SplitIndex {
  /** File name of the split's tokens, relative to the index. */
  file: string;
  documents: number;
  tokens: number;
}

/** The JSON index beside the token files. */
export interface TokenCacheIndex {
  format: 'supra-token-cache';
  version: number;
  hash: string;
  dtype: 'uint16' | 'uint32';
  eosId: number;
  vocabSize: number;
  inputs: string[];
  files: number;
  embedded: boolean;
  settings: { textField: string; txtSplit: 'file' | 'paragraph'; validationFraction: number; seed: number };
  train: SplitIndex;
  validation: SplitIndex;
  read: ReadStats;
}

export interface TokenCache {
  dir: string;
  indexPath: string;
  index: TokenCacheIndex;
  /** True when an existing cache matched the hash and nothing was tokenized. */
  reused: boolean;
}

export function defaultCacheDir(): string {
  if (process.env.SUPRA_CACHE_DIR) return resolve(process.env.SUPRA_CACHE_DIR);
  const base = process.env.XDG_CACHE_HOME ? resolve(process.env.XDG_CACHE_HOME) : join(homedir(), '.cache');
  return join(base, 'supra', 'tokens');
}

const nameOf = (o: { settingName?: SettingName }): SettingName => o.settingName ?? ((setting) => setting);

function checkOptions(o: TokenDataOptions): { validationFraction: number; seed: number } {
  const name = nameOf(o);
  const validationFraction = o.validationFraction ?? DATA_DEFAULTS.validationFraction;
  if (!(validationFraction >= 0 && validationFraction < 1)) throw new Error(`supra: ${name('validationFraction')} must be in [0, 1), got ${validationFraction}`);
  if (!Number.isInteger(o.seqLen) || o.seqLen < 1) throw new Error(`supra: ${name('seqLen')} must be a positive integer, got ${o.seqLen}`);
  if (!Number.isSafeInteger(o.seed)) throw new Error(`supra: ${name('seed')} must be an integer, got ${o.seed}`);
  return { validationFraction, seed: o.seed };
}

function sha256(parts: Array<string | Uint8Array>): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/** The tokenizer as loadTokenizer sees it: tokenizer.json plus the configs its special ids come from. */
function tokenizerHash(dir: string): string {
  const parts: Array<string | Uint8Array> = [];
  for (const name of ['tokenizer.json', 'tokenizer_config.json', 'config.json', 'generation_config.json', 'chat_template.jinja']) {
    const path = join(dir, name);
    parts.push(name, existsSync(path) ? readFileSync(path) : '<absent>');
  }
  return sha256(parts);
}

/**
 * The cache key: every data file by path, size and modification time (content is not re-read; touching a
 * file invalidates), the embedded corpus version, the tokenizer files' content, and the settings that
 * change the token files. seqLen is not part of it: packing happens at read time.
 */
function cacheKey(o: TokenDataOptions, files: string[], embedded: boolean, settings: TokenCacheIndex['settings']): string {
  const fileKeys = files.map((f) => {
    const s = statSync(f);
    return [f, s.size, s.mtimeMs];
  });
  return sha256([
    JSON.stringify({
      version: CACHE_VERSION,
      endianness: endianness(),
      files: fileKeys,
      embedded: embedded ? embeddedCorpusVersion() : null,
      tokenizer: tokenizerHash(o.tokenizerDir),
      settings,
    }),
  ]);
}

/**
 * Appends token ids to a temporary file (an AtomicFile) in fixed-size chunks; `commit` renames it into
 * place. A document is written as it is tokenized (startDocument, append..., endDocument), never held whole.
 */
class TokenFileWriter {
  private readonly file: AtomicFile;
  private readonly buffer: Uint16Array | Uint32Array;
  private used = 0;
  /** Tokens already in the file (the rest of `tokens` is in the buffer). */
  private written = 0;
  /** Where the latest document starts, in tokens. */
  private documentStart = 0;
  tokens = 0;
  documents = 0;

  constructor(path: string, tempTag: string, dtype: 'uint16' | 'uint32') {
    this.file = AtomicFile.create(path, { tempTag });
    this.buffer = dtype === 'uint16' ? new Uint16Array(WRITE_CHUNK_TOKENS) : new Uint32Array(WRITE_CHUNK_TOKENS);
  }

  startDocument(): void {
    this.documentStart = this.tokens;
  }

  append(ids: readonly number[]): void {
    for (const id of ids) this.push(id);
  }

  /** Ends the document with EOS. */
  endDocument(eos: number): void {
    this.push(eos);
    this.documents++;
  }

  /** Moves the latest document (startDocument..endDocument) to the end of `other`, in chunks. */
  moveLastDocumentTo(other: TokenFileWriter): void {
    this.flush();
    other.flush();
    const width = this.buffer.BYTES_PER_ELEMENT;
    const chunk = Buffer.alloc(WRITE_CHUNK_TOKENS * width);
    for (let at = this.documentStart * width; at < this.tokens * width; ) {
      const n = readSync(this.file.fd, chunk, 0, Math.min(chunk.length, this.tokens * width - at), at);
      if (n === 0) throw new Error(`supra: ${this.file.tempPath}: ended early while moving a document`);
      other.writeBytes(chunk.subarray(0, n));
      at += n;
    }
    other.tokens += this.tokens - this.documentStart;
    other.documents++;
    ftruncateSync(this.file.fd, this.documentStart * width);
    this.tokens = this.written = this.documentStart;
    this.documents--;
  }

  private push(id: number): void {
    if (this.used === this.buffer.length) this.flush();
    this.buffer[this.used++] = id;
    this.tokens++;
  }

  private writeBytes(bytes: Uint8Array): void {
    const width = this.buffer.BYTES_PER_ELEMENT;
    this.file.write(bytes, this.written * width);
    this.written += bytes.length / width;
  }

  private flush(): void {
    this.writeBytes(new Uint8Array(this.buffer.buffer, 0, this.used * this.buffer.BYTES_PER_ELEMENT));
    this.used = 0;
  }

  commit(): void {
    this.flush();
    this.file.commit();
  }

  /** Removes the temporary file; also from a signal handler, and after commit (then it does nothing). */
  abort(): void {
    this.file.abort();
  }
}

const WHITESPACE = /\s/;
const LETTER = /\p{L}/u;

/**
 * Where to cut `text` for piecewise tokenization, at most `pieceChars` in: before the last space that
 * follows a non-space and precedes a letter ("word| word"). The pre-tokenizers of byte-level BPE (the
 * GPT-2 and Llama 3 regexes) and Metaspace start a pre-token there and never let one run across it, so
 * the pieces give exactly the ids of the whole text. Text without such a space (scripts written without
 * spaces, long runs of symbols) is cut after its last whitespace, else anywhere outside a surrogate pair;
 * there the ids near the cut may differ from whole-text tokenization.
 */
export function pieceCut(text: string, pieceChars: number): number {
  const limit = Math.min(pieceChars, text.length - 1);
  let lastWhitespace = -1;
  for (let i = limit; i >= 1; i--) {
    if (text.charCodeAt(i) !== 0x20) {
      if (lastWhitespace < 0 && WHITESPACE.test(text[i]!)) lastWhitespace = i;
      continue;
    }
    if (lastWhitespace < 0) lastWhitespace = i;
    if (!WHITESPACE.test(text[i - 1]!) && LETTER.test(text[i + 1]!)) return i;
  }
  if (lastWhitespace >= 0 && lastWhitespace + 1 < text.length) return lastWhitespace + 1;
  const code = text.charCodeAt(limit - 1);
  return code >= 0xd800 && code < 0xdc00 ? limit - 1 : limit; // do not separate a surrogate pair
}

/**
 * Tokenizes one document given in parts: a document of up to `pieceChars` code units is encoded whole
 * (as it always was); a longer one in pieces cut by pieceCut, each handed to `emit` as soon as it is encoded.
 */
export class DocumentEncoder {
  private pending = '';

  constructor(
    private readonly tokenizer: Pick<LoadedTokenizer, 'encode'>,
    private readonly emit: (ids: number[]) => void,
    private readonly pieceChars = TOKENIZE_PIECE_CHARS,
  ) {}

  /** The next part of the document. */
  add(text: string): void {
    this.pending = this.pending.length === 0 ? text : this.pending + text;
    while (this.pending.length > this.pieceChars) {
      const cut = pieceCut(this.pending, this.pieceChars);
      this.emit(this.encode(this.pending.slice(0, cut)));
      this.pending = this.pending.slice(cut);
    }
  }

  /** The document ended: encode what is left. */
  finish(): void {
    if (this.pending.length > 0) this.emit(this.encode(this.pending));
    this.pending = '';
  }

  private encode(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false });
  }
}

const TEMP_FILE = /^[0-9a-f]{24}\.(?:train\.bin|validation\.bin|json)\.tmp-(\d+)-\d+$/;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // alive, someone else's
  }
}

/** Remove the temporary files of cache builds whose process is gone (killed before it could clean up). */
function removeStaleTempFiles(dir: string): void {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    const match = TEMP_FILE.exec(name);
    if (match && !processAlive(Number(match[1]))) rmSync(join(dir, name), { force: true });
  }
}

/**
 * While the cache is built: SIGINT or SIGTERM that nothing else listens for (so it would end the process
 * and leave the temporary files) runs `cleanup`, says so on stderr and exits 130 / 143 instead. Returns
 * the function that removes the handlers.
 */
function cleanUpOnSignals(cleanup: () => void, what: string): () => void {
  const installed: Array<[NodeJS.Signals, () => void]> = [];
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    if (process.listenerCount(signal) > 0) continue; // the program handles it itself
    const handler = () => {
      cleanup();
      process.stderr.write(`\nsupra: ${signal === 'SIGINT' ? 'interrupted' : 'terminated'} while tokenizing ${what}: nothing was cached (the next run tokenizes again)\n`);
      process.exit(code);
    };
    process.on(signal, handler);
    installed.push([signal, handler]);
  }
  return () => {
    for (const [signal, handler] of installed) process.off(signal, handler);
  };
}

const yieldToEventLoop = () => new Promise<void>((r) => setImmediate(r));

function readIndex(path: string): TokenCacheIndex | null {
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as TokenCacheIndex;
  } catch {
    return null; // a damaged index is rebuilt, not trusted
  }
}

function tokenFileMatches(dir: string, split: SplitIndex, bytesPerToken: number): boolean {
  const path = join(dir, split.file);
  return existsSync(path) && statSync(path).size === split.tokens * bytesPerToken;
}

/**
 * Tokenize the inputs into the cache, or find an existing cache built from the same inputs, tokenizer
 * and settings. Streams: one document (or 1 MiB part of a long .txt document, tokenized in pieces) at a time
 * in memory, plus a 1M-token write buffer per split. SIGINT/SIGTERM while tokenizing: see cleanUpOnSignals.
 * Errors: an empty data set (no non-empty document), an empty training split, a tokenizer without EOS.
 */
export async function prepareTokenCache(options: TokenDataOptions): Promise<TokenCache> {
  const { validationFraction, seed } = checkOptions(options);
  const log = options.log ?? (() => {});
  const name = nameOf(options);
  const expanded = expandInputs(options.data);
  const { files, embedded } = expanded;
  const settings: TokenCacheIndex['settings'] = {
    textField: options.textField ?? DATA_DEFAULTS.textField,
    txtSplit: resolveTxtSplit(options.txtSplit ?? DATA_DEFAULTS.txtSplit, expanded),
    validationFraction,
    seed,
  };
  const tokenizer = loadTokenizer(options.tokenizerDir);
  const eos = tokenizer.eos_token_id;
  if (eos === null) throw new Error(`supra: ${options.tokenizerDir}: the tokenizer has no eos token (needed to separate documents)`);
  const dtype = tokenizer.vocab_size <= 65536 ? 'uint16' : 'uint32';
  const bytesPerToken = dtype === 'uint16' ? 2 : 4;

  const hash = cacheKey(options, files, embedded, settings);
  const dir = resolve(options.cacheDir ?? defaultCacheDir());
  removeStaleTempFiles(dir);
  const key = hash.slice(0, 24);
  const indexPath = join(dir, `${key}.json`);
  const existing = readIndex(indexPath);
  if (
    existing !== null &&
    existing.hash === hash &&
    existing.version === CACHE_VERSION &&
    tokenFileMatches(dir, existing.train, bytesPerToken) &&
    tokenFileMatches(dir, existing.validation, bytesPerToken)
  ) {
    log(`data: reusing token cache ${indexPath} (${existing.train.tokens} training, ${existing.validation.tokens} validation tokens)`);
    return { dir, indexPath, index: existing, reused: true };
  }

  mkdirSync(dir, { recursive: true });
  const tempTag = `tmp-${process.pid}-${Date.now()}`; // the pid is what removeStaleTempFiles checks (TEMP_FILE)
  const trainFile = `${key}.train.bin`;
  const validationFile = `${key}.validation.bin`;
  const train = new TokenFileWriter(join(dir, trainFile), tempTag, dtype);
  const validation = new TokenFileWriter(join(dir, validationFile), tempTag, dtype);
  const abort = () => {
    train.abort();
    validation.abort();
  };
  const removeSignalHandlers = cleanUpOnSignals(abort, options.data.join(', '));
  const stats = newReadStats();
  try {
    // Each document draws one number: below validationFraction it is held out. If no draw selected any
    // document, the last training document becomes the (required) validation document at the end.
    const splitRng = new Mt19937((seed ^ 0x5bd1e995) >>> 0);
    let split: TokenFileWriter | null = null; // where the document being read goes
    // vocab_size is one more than the largest id, so uint16 always fits
    const encoder = new DocumentEncoder(tokenizer, (ids) => split!.append(ids));
    let lastLog = Date.now();
    let lastYield = Date.now();
    const readOptions = { textField: settings.textField, txtSplit: settings.txtSplit, settingName: options.settingName };
    for await (const part of readDocuments(options.data, readOptions, stats)) {
      if (split === null) {
        split = splitRng.random() < validationFraction ? validation : train;
        split.startDocument();
      }
      encoder.add(part.text);
      if (!part.continues) {
        encoder.finish();
        split.endDocument(eos);
        split = null;
      }
      if (Date.now() - lastYield > 50) {
        await yieldToEventLoop(); // lets SIGINT and SIGTERM arrive
        lastYield = Date.now();
      }
      if (Date.now() - lastLog > 10_000) {
        lastLog = Date.now();
        log(`data: tokenized ${stats.documents} documents, ${train.tokens + validation.tokens} tokens`);
      }
    }
    if (stats.documents === 0) {
      throw new Error(
        `supra: empty data set: no documents in ${options.data.join(', ')} ` +
          `(${stats.files} files read, ${stats.emptyFiles} empty files and ${stats.emptyDocuments} empty records skipped)`,
      );
    }
    if (validationFraction > 0 && validation.documents === 0) train.moveLastDocumentTo(validation);
    if (train.documents === 0) {
      if (stats.documents > 1) {
        throw new Error(`supra: ${options.data.join(', ')}: all ${stats.documents} documents went to validation; need at least one training document (lower ${name('validationFraction')} or add data)`);
      }
      const txt = files.some((f) => f.toLowerCase().endsWith('.txt'));
      // a lone .txt read as paragraphs with no blank line in it: say so, it is the usual first try
      const why = txt && settings.txtSplit === 'paragraph' ? ' (the text has no blank line, so it is one paragraph)' : '';
      const split = txt && settings.txtSplit === 'file' ? `, split .txt files into paragraphs with ${name('txtSplit')} paragraph` : '';
      throw new Error(
        `supra: ${options.data.join(', ')}: the data is one document${why}, and it went to validation, leaving none to train on: ` +
          `add data${why ? ' or blank lines between paragraphs' : ''}${split}, or set ${name('validationFraction')} 0 to train without a validation set`,
      );
    }
    train.commit();
    validation.commit();
  } catch (e) {
    abort();
    throw e;
  } finally {
    removeSignalHandlers();
  }

  const index: TokenCacheIndex = {
    format: 'supra-token-cache',
    version: CACHE_VERSION,
    hash,
    dtype,
    eosId: eos,
    vocabSize: tokenizer.vocab_size,
    inputs: [...options.data],
    files: files.length,
    embedded,
    settings,
    train: { file: trainFile, documents: train.documents, tokens: train.tokens },
    validation: { file: validationFile, documents: validation.documents, tokens: validation.tokens },
    read: stats,
  };
  writeFileAtomic(indexPath, JSON.stringify(index, null, 2) + '\n', { tempTag });
  log(
    `data: tokenized ${stats.documents} documents (${stats.characters} characters) into ${train.tokens} training and ` +
      `${validation.tokens} validation tokens (${validation.documents} validation documents); cache ${indexPath}`,
  );
  return { dir, indexPath, index, reused: false };
}

/** Sequences of seqLen + 1 tokens, overlapping by one, in a split of `tokens` tokens. */
export function sequenceCount(tokens: number, seqLen: number): number {
  return tokens < seqLen + 1 ? 0 : Math.floor((tokens - 1) / seqLen);
}

/** The order of the training sequences in one epoch: a Fisher–Yates shuffle from Mt19937(seed + epoch). */
export function epochPermutation(count: number, seed: number, epoch: number): Uint32Array {
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  const rng = new Mt19937((seed + epoch) >>> 0);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(rng.random() * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}

/**
 * TokenBatches over a token cache. Reads each sequence from disk at its offset (fs.readSync), so memory
 * stays at one batch plus the epoch's permutation (4 bytes per training sequence).
 */
export class TokenDataset implements TokenBatches {
  readonly seqLen: number;
  readonly trainSequences: number;
  readonly trainTokens: number;
  readonly validationTokens: number;
  readonly validationSequences: number;
  readonly cache: TokenCache;
  private readonly seed: number;
  private readonly bytesPerToken: number;
  private trainFd: number | null;
  private validationFd: number | null;
  /** One sequence as read from disk, viewed in the token width (host byte order, as written). */
  private readonly scratch: Uint8Array;
  private readonly scratchTokens: Uint16Array | Uint32Array;
  private epoch = 0;
  private cursor = 0;
  private order: Uint32Array;
  /** Weaves synthetic episodes into training sequences, by their (epoch, cursor): resume stays exact. */
  readonly recall: RecallMixture | null;

  constructor(cache: TokenCache, seqLen: number, seed: number, settingName: SettingName = (setting) => setting, recall: RecallMixture | null = null) {
    if (!Number.isInteger(seqLen) || seqLen < 1) throw new Error(`supra: ${settingName('seqLen')} must be a positive integer, got ${seqLen}`);
    const { index, dir } = cache;
    this.cache = cache;
    this.seqLen = seqLen;
    this.seed = seed;
    this.bytesPerToken = index.dtype === 'uint16' ? 2 : 4;
    this.trainTokens = index.train.tokens;
    this.validationTokens = index.validation.tokens;
    this.trainSequences = sequenceCount(index.train.tokens, seqLen);
    this.validationSequences = sequenceCount(index.validation.tokens, seqLen);
    if (this.trainSequences === 0) {
      throw new Error(`supra: the training split has ${index.train.tokens} tokens, fewer than ${settingName('seqLen')} + 1 = ${seqLen + 1}; add data or lower ${settingName('seqLen')} (cache ${cache.indexPath})`);
    }
    this.trainFd = openSync(join(dir, index.train.file), 'r');
    this.validationFd = openSync(join(dir, index.validation.file), 'r');
    const expected = index.train.tokens * this.bytesPerToken;
    if (fstatSync(this.trainFd).size !== expected) throw new Error(`supra: ${join(dir, index.train.file)}: size does not match its index ${cache.indexPath}`);
    this.scratch = new Uint8Array((seqLen + 1) * this.bytesPerToken);
    this.scratchTokens = this.bytesPerToken === 2 ? new Uint16Array(this.scratch.buffer) : new Uint32Array(this.scratch.buffer);
    this.order = epochPermutation(this.trainSequences, seed, 0);
    this.recall = recall;
  }

  /** Copy sequence `index` of a split into out[offset .. offset + seqLen + 1). */
  private readSequence(fd: number | null, index: number, out: Int32Array, offset: number): void {
    if (fd === null) throw new Error('supra: the token dataset is closed');
    const n = this.seqLen + 1;
    const want = n * this.bytesPerToken;
    let done = 0;
    while (done < want) {
      const got = readSync(fd, this.scratch, done, want - done, index * this.seqLen * this.bytesPerToken + done);
      if (got === 0) throw new Error(`supra: token cache ${this.cache.indexPath}: file ended early (truncated?)`);
      done += got;
    }
    out.set(this.scratchTokens, offset);
  }

  nextTrain(batch: number): Int32Array {
    if (!Number.isInteger(batch) || batch < 1) throw new Error(`supra: batch must be a positive integer, got ${batch}`);
    const n = this.seqLen + 1;
    const out = new Int32Array(batch * n);
    for (let b = 0; b < batch; b++) {
      if (this.cursor === this.trainSequences) {
        this.epoch++;
        this.cursor = 0;
        this.order = epochPermutation(this.trainSequences, this.seed, this.epoch);
      }
      this.readSequence(this.trainFd, this.order[this.cursor]!, out, b * n);
      this.recall?.weave(out.subarray(b * n, (b + 1) * n), this.epoch, this.cursor, this.epoch * this.trainSequences + this.cursor);
      this.cursor++;
    }
    return out;
  }

  position(): DataPosition {
    return { epoch: this.epoch, cursor: this.cursor, seed: this.seed };
  }

  restore(p: DataPosition): void {
    if (p.seed !== this.seed) throw new Error(`supra: cannot restore a data position saved with seed ${p.seed} into data opened with seed ${this.seed}`);
    if (!Number.isInteger(p.epoch) || p.epoch < 0) throw new Error(`supra: bad data position: epoch ${p.epoch}`);
    if (!Number.isInteger(p.cursor) || p.cursor < 0 || p.cursor > this.trainSequences) {
      throw new Error(`supra: bad data position: cursor ${p.cursor} outside 0..${this.trainSequences} (was the data or seqLen changed?)`);
    }
    if (p.epoch !== this.epoch) this.order = epochPermutation(this.trainSequences, this.seed, p.epoch);
    this.epoch = p.epoch;
    this.cursor = p.cursor;
  }

  validation(maxSequences?: number): { ids: Int32Array; count: number } {
    const count = Math.min(this.validationSequences, maxSequences ?? Infinity);
    const n = this.seqLen + 1;
    const ids = new Int32Array(count * n);
    for (let i = 0; i < count; i++) this.readSequence(this.validationFd, i, ids, i * n);
    return { ids, count };
  }

  close(): void {
    if (this.trainFd !== null) closeSync(this.trainFd);
    if (this.validationFd !== null) closeSync(this.validationFd);
    this.trainFd = null;
    this.validationFd = null;
  }
}

/** Build or reuse the token cache for `options`, then serve it: the pipeline's entry point. */
export async function openTokenBatches(options: TokenDataOptions): Promise<TokenDataset> {
  const cache = await prepareTokenCache(options);
  const shuffleSeed = options.shuffleSeed ?? options.seed;
  if (!Number.isSafeInteger(shuffleSeed)) throw new Error(`supra: ${nameOf(options)('shuffleSeed')} must be an integer, got ${shuffleSeed}`);
  const share = options.recallMix ?? 0;
  if (!(share >= 0 && share <= 1)) throw new Error(`supra: ${nameOf(options)('recallMix')} must be in [0, 1], got ${share}`);
  const warmup = options.recallWarmup ?? 0;
  if (!(Number.isInteger(warmup) && warmup >= 0)) throw new Error(`supra: ${nameOf(options)('recallWarmup')} must be a whole number of tokens ≥ 0, got ${warmup}`);
  const kinds = options.recallKinds === undefined ? undefined : checkKindWeights(options.recallKinds, nameOf(options)('recallKinds'));
  const recall = share > 0
    ? new RecallMixture({ share, warmupSequences: Math.ceil(warmup / options.seqLen), seed: options.seed, vocab: cache.index.vocabSize, rowLength: options.seqLen + 1, tokenizer: loadTokenizer(options.tokenizerDir), kinds })
    : null;
  return new TokenDataset(cache, options.seqLen, shuffleSeed, nameOf(options), recall);
}
