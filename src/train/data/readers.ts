// Reading training documents from .txt, .jsonl and .parquet files, one document at a time.
//
// What counts as bad input, and what happens to it (docs/data.md says the same):
//   error (names the file, and the line or row):
//     - a byte sequence that is not UTF-8 (txt: byte offset; jsonl: line; parquet: row)
//     - a .jsonl line that is not valid JSON, not a JSON object, or has no text field (the error lists
//       the fields it does have), or whose text field is neither a string nor null
//     - a .parquet file without the text column (the error lists its columns), a column that is not
//       text, a file hyparquet cannot read (not parquet, or a compression codec it lacks)
//     - inputs that match no file (see files.ts), and an empty data set overall (see dataset.ts)
//   skipped and counted in ReadStats:
//     - an empty file: no bytes, only whitespace, only blank lines, or a parquet file with no rows
//                                                                      -> emptyFiles
//     - a .jsonl/.parquet record whose text is "", only whitespace, or null -> emptyDocuments
//   ignored silently: blank lines in .jsonl, files in a folder whose extension is not a data format.
//
// Memory: .txt files are read 1 MiB at a time and a long document comes in parts (TextDocument.continues);
// a .jsonl line and a .parquet value are held whole.
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { asyncBufferFromFile, parquetMetadataAsync, parquetRead, parquetSchema } from 'hyparquet';
import { embeddedCorpus } from './corpus.js';
import { expandInputs, formatOf, type ExpandedInputs } from './files.js';

export interface ReadOptions {
  /** The field holding the text in .jsonl objects and the column in .parquet files. Default "text". */
  textField?: string;
  /**
   * How a .txt file becomes documents: 'file', the whole file is one document; 'paragraph', each run of
   * non-blank lines is a document (blank lines separate documents); 'auto' (default), 'paragraph' when
   * the inputs are a single .txt file (one document could not be split into training and validation),
   * else 'file'.
   */
  txtSplit?: TxtSplit;
  /** How error messages name a setting; default its name here (the CLI passes its flag names). */
  settingName?: SettingName;
}

/** The settings error messages advise changing, named as the caller spells them (`--text-field` on the command line). */
export type SettingName = (setting: 'textField' | 'txtSplit' | 'validationFraction' | 'seqLen' | 'seed' | 'shuffleSeed' | 'recallMix' | 'recallWarmup' | 'recallKinds') => string;

export type TxtSplit = 'auto' | 'file' | 'paragraph';

/** What 'auto' means for these inputs: paragraphs when they are one .txt file and nothing else. */
export function resolveTxtSplit(split: TxtSplit | undefined, inputs: ExpandedInputs): 'file' | 'paragraph' {
  if (split === 'file' || split === 'paragraph') return split;
  const loneTxt = !inputs.embedded && inputs.files.length === 1 && formatOf(inputs.files[0]!) === 'txt';
  return loneTxt ? 'paragraph' : 'file';
}

export interface ReadStats {
  files: number;
  documents: number;
  characters: number;
  /** Files skipped because they hold no text. */
  emptyFiles: number;
  /** Records skipped because their text is empty, whitespace or null. */
  emptyDocuments: number;
}

export function newReadStats(): ReadStats {
  return { files: 0, documents: 0, characters: 0, emptyFiles: 0, emptyDocuments: 0 };
}

/**
 * A document, or a part of one: a long .txt document (a whole file, or a paragraph) comes in parts of
 * about 1 MiB, each but the last with `continues: true`, so it is never held whole; the document is the
 * concatenation of its parts. Other documents come whole.
 */
export interface TextDocument {
  text: string;
  /** The document goes on in the next item. */
  continues?: boolean;
  /** Where it came from, for messages: `path`, `path:line` or `path#row`. */
  source: string;
}

const READ_CHUNK = 1 << 20;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The first byte offset in `bytes` that starts an invalid UTF-8 sequence (for the error message). */
function firstBadUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    const n = b < 0x80 ? 1 : b >= 0xc2 && b < 0xe0 ? 2 : b >= 0xe0 && b < 0xf0 ? 3 : b >= 0xf0 && b < 0xf5 ? 4 : 0;
    if (n === 0 || i + n > bytes.length) return i;
    try {
      utf8.decode(bytes.subarray(i, i + n));
    } catch {
      return i;
    }
    i += n;
  }
  return -1;
}

function decodeUtf8(bytes: Uint8Array, where: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new Error(`supra: ${where}: not valid UTF-8 (bad byte at offset ${firstBadUtf8(bytes)}); training text must be UTF-8`);
  }
}

/** Lines of a file as raw bytes (without '\n' or a trailing '\r'), read 1 MiB at a time. Line numbers from 1. */
export function* fileLines(path: string): Generator<{ bytes: Buffer; line: number }> {
  const fd = openSync(path, 'r');
  try {
    const chunk = Buffer.alloc(READ_CHUNK);
    let carry: Buffer = Buffer.alloc(0);
    let line = 0;
    let position = 0;
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, position);
      position += n;
      const data: Buffer = n === 0 ? carry : Buffer.concat([carry, chunk.subarray(0, n)]);
      let start = 0;
      for (;;) {
        const nl = data.indexOf(0x0a, start);
        if (nl < 0) break;
        line++;
        const end = nl > start && data[nl - 1] === 0x0d ? nl - 1 : nl;
        yield { bytes: data.subarray(start, end), line };
        start = nl + 1;
      }
      carry = Buffer.from(data.subarray(start));
      if (n === 0) {
        if (carry.length > 0) {
          line++;
          const end = carry[carry.length - 1] === 0x0d ? carry.length - 1 : carry.length;
          yield { bytes: carry.subarray(0, end), line };
        }
        return;
      }
    }
  } finally {
    closeSync(fd);
  }
}

function isBlank(s: string): boolean {
  return s.trim() === '';
}

/** Where the last complete UTF-8 character of bytes[0..length) ends: a character cut by the read is left for the next one. */
function completeUtf8End(bytes: Uint8Array, length: number): number {
  for (let i = length - 1; i >= 0 && i >= length - 4; i--) {
    const b = bytes[i]!;
    if ((b & 0xc0) === 0x80) continue; // continuation byte: look further back for the lead byte
    const n = b < 0x80 ? 1 : b >= 0xc2 && b < 0xe0 ? 2 : b >= 0xe0 && b < 0xf0 ? 3 : b >= 0xf0 && b < 0xf5 ? 4 : 1;
    return i + n > length ? i : length;
  }
  return length;
}

/**
 * A file's text in pieces of about `pieceBytes` bytes, decoded as UTF-8 without splitting a character,
 * so a file of any size (one long line included) is never held whole. Bad UTF-8 is an error naming the
 * line and the file's byte offset.
 */
export function* fileText(path: string, pieceBytes = READ_CHUNK): Generator<string> {
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.alloc(pieceBytes + 4);
    let carried = 0; // bytes of a character cut by the previous read, now at buffer[0..carried)
    let position = 0; // file offset of buffer[0]
    let line = 1; // line number at buffer[0]
    for (;;) {
      const n = readSync(fd, buffer, carried, pieceBytes, position + carried);
      const length = carried + n;
      const end = n === 0 ? length : completeUtf8End(buffer, length);
      if (end === 0 && n === 0) return;
      const bytes = buffer.subarray(0, end);
      let text: string;
      try {
        text = utf8.decode(bytes);
      } catch {
        const bad = firstBadUtf8(bytes);
        let badLine = line;
        for (let i = bytes.indexOf(0x0a); i >= 0 && i < bad; i = bytes.indexOf(0x0a, i + 1)) badLine++;
        throw new Error(`supra: ${path}:${badLine}: not valid UTF-8 (bad byte at offset ${position + bad}); training text must be UTF-8`);
      }
      for (let i = bytes.indexOf(0x0a); i >= 0; i = bytes.indexOf(0x0a, i + 1)) line++;
      if (text.length > 0) yield text;
      if (n === 0) return;
      buffer.copy(buffer, 0, end, length);
      carried = length - end;
      position += end;
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * One .txt file as a single document, verbatim, in parts of about 1 MiB (`continues` on all but the
 * last), so a long file is never held whole. A file of whitespace only is skipped.
 */
function* readTxtWhole(path: string, stats: ReadStats): Generator<TextDocument> {
  let previous: string | null = null;
  let blankStart = ''; // leading whitespace, held until some text shows the file is not blank
  for (let text of fileText(path)) {
    if (previous === null) {
      blankStart += text;
      if (isBlank(blankStart)) continue;
      text = blankStart;
      blankStart = '';
    } else {
      yield { text: previous, source: path, continues: true };
    }
    previous = text;
  }
  if (previous === null) stats.emptyFiles++;
  else yield { text: previous, source: path };
}

/**
 * Paragraphs of a .txt file: runs of non-blank lines joined with '\n' (a line's trailing '\r' dropped),
 * separated by blank lines (empty or whitespace only). Streamed: a paragraph longer than about 1 MiB
 * comes in parts (`continues`), so even one huge line is never held whole.
 */
function* readTxtParagraphs(path: string, stats: ReadStats): Generator<TextDocument> {
  let out = ''; // text of the open paragraph not yet yielded
  let open = false; // a paragraph has started
  let source = path;
  let any = false;
  let line = 1;
  let held = ''; // the current line while it is blank so far, or a trailing '\r' that may end it
  let lineIsText = false; // the current line has non-whitespace, so it belongs to the paragraph
  const addToLine = (segment: string) => {
    let s = held + segment;
    held = '';
    if (!lineIsText) {
      if (isBlank(s)) {
        held = s;
        return;
      }
      lineIsText = true;
      if (open) out += '\n';
      else {
        open = true;
        any = true;
        source = `${path}:${line}`;
      }
    }
    if (s.endsWith('\r')) {
      held = '\r';
      s = s.slice(0, -1);
    }
    out += s;
  };
  /** The current line ended; returns the finished paragraph when the line was blank. */
  const endLine = (): TextDocument | null => {
    const blank = !lineIsText;
    held = '';
    lineIsText = false;
    line++;
    if (!blank || !open) return null;
    const paragraph = { text: out, source };
    out = '';
    open = false;
    return paragraph;
  };
  for (const text of fileText(path)) {
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      addToLine(text.slice(start, nl));
      const paragraph = endLine();
      if (paragraph) yield paragraph;
      start = nl + 1;
    }
    addToLine(text.slice(start));
    if (out.length >= READ_CHUNK) {
      yield { text: out, source, continues: true };
      out = '';
    }
  }
  if (lineIsText) endLine();
  if (open) yield { text: out, source };
  if (!any) stats.emptyFiles++;
}

function* readJsonl(path: string, field: string, fieldSetting: string, stats: ReadStats): Generator<TextDocument> {
  let any = false;
  for (const { bytes, line } of fileLines(path)) {
    const where = `${path}:${line}`;
    const raw = decodeUtf8(bytes, where);
    if (isBlank(raw)) continue;
    any = true;
    let record: unknown;
    try {
      record = JSON.parse(raw);
    } catch (e) {
      throw new Error(`supra: ${where}: not valid JSON (${(e as Error).message})`);
    }
    if (typeof record !== 'object' || record === null || Array.isArray(record)) {
      throw new Error(`supra: ${where}: expected a JSON object with a "${field}" field, got ${Array.isArray(record) ? 'an array' : typeof record}`);
    }
    if (!(field in record)) {
      const keys = Object.keys(record);
      throw new Error(`supra: ${where}: no "${field}" field (fields: ${keys.length ? keys.join(', ') : 'none'}); choose the text field with ${fieldSetting}`);
    }
    const text = (record as Record<string, unknown>)[field];
    if (text === null || (typeof text === 'string' && isBlank(text))) {
      stats.emptyDocuments++;
      continue;
    }
    if (typeof text !== 'string') throw new Error(`supra: ${where}: field "${field}" is ${typeof text}, expected a string`);
    yield { text, source: where };
  }
  if (!any) stats.emptyFiles++;
}

/**
 * A .parquet file's text column, one row group at a time (a big file is never held whole). Strings are
 * taken as raw bytes from hyparquet and decoded here, so bad UTF-8 is an error instead of U+FFFD.
 */
async function* readParquet(path: string, column: string, columnSetting: string, stats: ReadStats): AsyncGenerator<TextDocument> {
  if (statSync(path).size === 0) {
    stats.emptyFiles++;
    return;
  }
  const file = await asyncBufferFromFile(path);
  let metadata;
  try {
    metadata = await parquetMetadataAsync(file);
  } catch (e) {
    throw new Error(`supra: ${path}: not a readable parquet file (${(e as Error).message})`);
  }
  const columns = parquetSchema(metadata).children.map((c) => c.element.name);
  if (!columns.includes(column)) {
    throw new Error(`supra: ${path}: no column "${column}" (columns: ${columns.join(', ') || 'none'}); choose the text column with ${columnSetting}`);
  }
  const element = parquetSchema(metadata).children.find((c) => c.element.name === column)!.element;
  if (element.type !== 'BYTE_ARRAY') {
    throw new Error(`supra: ${path}: column "${column}" holds ${element.type ?? 'nested values'}, expected text (BYTE_ARRAY)`);
  }
  let rowStart = 0;
  let any = false;
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    let rows: unknown[][] = [];
    try {
      await parquetRead({
        file,
        metadata,
        columns: [column],
        rowStart,
        rowEnd,
        utf8: false,
        parsers: { stringFromBytes: (bytes: Uint8Array) => bytes },
        onComplete: (r: unknown[][]) => {
          rows = r;
        },
      });
    } catch (e) {
      throw new Error(`supra: ${path}: cannot read rows ${rowStart}..${rowEnd - 1} of column "${column}" (${(e as Error).message})`);
    }
    for (let i = 0; i < rows.length; i++) {
      const row = rowStart + i;
      const value = rows[i]![0];
      any = true;
      if (value === null || value === undefined) {
        stats.emptyDocuments++;
        continue;
      }
      if (!(value instanceof Uint8Array)) throw new Error(`supra: ${path}#${row}: column "${column}" value is ${typeof value}, expected text`);
      const text = decodeUtf8(value, `${path}#${row} (row ${row}, column "${column}")`);
      if (isBlank(text)) {
        stats.emptyDocuments++;
        continue;
      }
      yield { text, source: `${path}#${row}` };
    }
    rowStart = rowEnd;
  }
  if (!any) stats.emptyFiles++;
}

/** Documents of one file, by its extension ('auto' txtSplit reads a .txt file whole: see readDocuments). */
export async function* readFile(path: string, options: ReadOptions, stats: ReadStats): AsyncGenerator<TextDocument> {
  const field = options.textField ?? 'text';
  const format = formatOf(path);
  stats.files++;
  if (format !== 'parquet' && statSync(path).size === 0) {
    stats.emptyFiles++;
    return;
  }
  let docs: Iterable<TextDocument> | AsyncIterable<TextDocument>;
  const fieldSetting = (options.settingName ?? ((s) => s))('textField');
  if (format === 'txt') docs = options.txtSplit === 'paragraph' ? readTxtParagraphs(path, stats) : readTxtWhole(path, stats);
  else if (format === 'jsonl') docs = readJsonl(path, field, fieldSetting, stats);
  else if (format === 'parquet') docs = readParquet(path, field, fieldSetting, stats);
  else throw new Error(`supra: ${path}: unknown data format`);
  for await (const d of docs) {
    if (!d.continues) stats.documents++;
    stats.characters += d.text.length;
    yield d;
  }
}

/**
 * Every document of the inputs (files, folders, globs, `@embedded`), in a fixed order: inputs in the
 * order given, files within a folder or glob sorted by path, the embedded corpus last. Only one document
 * (a part of a long .txt document; for .parquet one row group) is in memory at a time. Counts go to `stats`
 * (`documents` counts whole documents, not parts).
 */
export async function* readDocuments(inputs: readonly string[], options: ReadOptions = {}, stats: ReadStats = newReadStats()): AsyncGenerator<TextDocument> {
  const expanded = expandInputs(inputs);
  const { files, embedded } = expanded;
  const fileOptions = { ...options, txtSplit: resolveTxtSplit(options.txtSplit, expanded) };
  for (const path of files) yield* readFile(path, fileOptions, stats);
  if (embedded) {
    let i = 0;
    for (const text of embeddedCorpus()) {
      stats.documents++;
      stats.characters += text.length;
      yield { text, source: `@embedded#${i++}` };
    }
  }
}
