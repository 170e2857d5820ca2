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
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { asyncBufferFromFile, parquetMetadataAsync, parquetRead, parquetSchema } from 'hyparquet';
import { embeddedCorpus } from './corpus.js';
import { expandInputs, formatOf } from './files.js';

export interface ReadOptions {
  /** The field holding the text in .jsonl objects and the column in .parquet files. Default "text". */
  textField?: string;
  /**
   * How a .txt file becomes documents: 'file' (default), the whole file is one document; 'paragraph',
   * each run of non-blank lines is a document (blank lines separate documents).
   */
  txtSplit?: 'file' | 'paragraph';
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

export interface TextDocument {
  text: string;
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

function* readTxt(path: string, split: 'file' | 'paragraph', stats: ReadStats): Generator<TextDocument> {
  if (split === 'file') {
    const text = decodeUtf8(readFileSync(path), path); // one document per file: held whole anyway
    if (isBlank(text)) {
      stats.emptyFiles++;
      return;
    }
    yield { text, source: path };
    return;
  }
  let paragraph: string[] = [];
  let firstLine = 0;
  let any = false;
  for (const { bytes, line } of fileLines(path)) {
    const text = decodeUtf8(bytes, `${path}:${line}`);
    if (isBlank(text)) {
      if (paragraph.length > 0) {
        any = true;
        yield { text: paragraph.join('\n'), source: `${path}:${firstLine}` };
        paragraph = [];
      }
      continue;
    }
    if (paragraph.length === 0) firstLine = line;
    paragraph.push(text);
  }
  if (paragraph.length > 0) {
    any = true;
    yield { text: paragraph.join('\n'), source: `${path}:${firstLine}` };
  }
  if (!any) stats.emptyFiles++;
}

function* readJsonl(path: string, field: string, stats: ReadStats): Generator<TextDocument> {
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
      throw new Error(`supra: ${where}: no "${field}" field (fields: ${keys.length ? keys.join(', ') : 'none'}); choose the text field with textField / --text-field`);
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
async function* readParquet(path: string, column: string, stats: ReadStats): AsyncGenerator<TextDocument> {
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
    throw new Error(`supra: ${path}: no column "${column}" (columns: ${columns.join(', ') || 'none'}); choose the text column with textField / --text-field`);
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

/** Documents of one file, by its extension. */
export async function* readFile(path: string, options: ReadOptions, stats: ReadStats): AsyncGenerator<TextDocument> {
  const field = options.textField ?? 'text';
  const format = formatOf(path);
  stats.files++;
  if (format !== 'parquet' && statSync(path).size === 0) {
    stats.emptyFiles++;
    return;
  }
  let docs: Iterable<TextDocument> | AsyncIterable<TextDocument>;
  if (format === 'txt') docs = readTxt(path, options.txtSplit ?? 'file', stats);
  else if (format === 'jsonl') docs = readJsonl(path, field, stats);
  else if (format === 'parquet') docs = readParquet(path, field, stats);
  else throw new Error(`supra: ${path}: unknown data format`);
  for await (const d of docs) {
    stats.documents++;
    stats.characters += d.text.length;
    yield d;
  }
}

/**
 * Every document of the inputs (files, folders, globs, `@embedded`), in a fixed order: inputs in the
 * order given, files within a folder or glob sorted by path, the embedded corpus last. Only one document
 * (and for .parquet one row group) is in memory at a time. Counts go to `stats`.
 */
export async function* readDocuments(inputs: readonly string[], options: ReadOptions = {}, stats: ReadStats = newReadStats()): AsyncGenerator<TextDocument> {
  const { files, embedded } = expandInputs(inputs);
  for (const path of files) yield* readFile(path, options, stats);
  if (embedded) {
    let i = 0;
    for (const text of embeddedCorpus()) {
      stats.documents++;
      stats.characters += text.length;
      yield { text, source: `@embedded#${i++}` };
    }
  }
}
