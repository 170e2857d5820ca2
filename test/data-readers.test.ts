// Readers (.txt, .jsonl, .parquet), input expansion (folders, globs) and the bad-input rules of
// src/train/data/readers.ts, on tiny files written here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expandInputs, globToRegExp } from '../src/train/data/files.js';
import { fileText, newReadStats, readDocuments, type ReadOptions, type ReadStats } from '../src/train/data/readers.js';
import { tempRoot, freshDirs } from './helpers/tmp.js';

const root = tempRoot('supra-data-readers-');
const freshDir = freshDirs(root, 'case');

async function readAll(inputs: string[], options: ReadOptions = {}): Promise<{ texts: string[]; sources: string[]; stats: ReadStats }> {
  const stats = newReadStats();
  const texts: string[] = [];
  const sources: string[] = [];
  for await (const d of readDocuments(inputs, options, stats)) {
    texts.push(d.text);
    sources.push(d.source);
  }
  return { texts, sources, stats };
}

// ---- a minimal parquet writer (uncompressed, PLAIN, one optional UTF8 column per file), for the tests ----

/** Thrift compact protocol: just the parts parquet's footer and page headers need. */
type ThriftValue =
  | { t: 'i32'; v: number }
  | { t: 'i64'; v: number }
  | { t: 'bin'; v: Uint8Array | string }
  | { t: 'struct'; v: Array<[number, ThriftValue]> }
  | { t: 'list'; elem: 'i32' | 'bin' | 'struct'; v: ThriftValue[] };

const TYPE_ID = { i32: 5, i64: 6, bin: 8, list: 9, struct: 12 } as const;

function varint(out: number[], n: number): void {
  let v = BigInt(n);
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) byte |= 0x80;
    out.push(byte);
  } while (v !== 0n);
}

function zigzag(n: number): number {
  return n >= 0 ? 2 * n : -2 * n - 1;
}

function writeThrift(out: number[], value: ThriftValue): void {
  switch (value.t) {
    case 'i32':
    case 'i64':
      varint(out, zigzag(value.v));
      return;
    case 'bin': {
      const bytes = typeof value.v === 'string' ? new TextEncoder().encode(value.v) : value.v;
      varint(out, bytes.length);
      out.push(...bytes);
      return;
    }
    case 'list': {
      const n = value.v.length;
      if (n < 15) out.push((n << 4) | TYPE_ID[value.elem]);
      else {
        out.push(0xf0 | TYPE_ID[value.elem]);
        varint(out, n);
      }
      for (const item of value.v) writeThrift(out, item);
      return;
    }
    case 'struct': {
      let last = 0;
      for (const [id, field] of value.v) {
        const delta = id - last;
        if (delta > 0 && delta <= 15) out.push((delta << 4) | TYPE_ID[field.t]);
        else {
          out.push(TYPE_ID[field.t]);
          varint(out, zigzag(id));
        }
        writeThrift(out, field);
        last = id;
      }
      out.push(0);
      return;
    }
  }
}

const i32 = (v: number): ThriftValue => ({ t: 'i32', v });
const i64 = (v: number): ThriftValue => ({ t: 'i64', v });
const bin = (v: Uint8Array | string): ThriftValue => ({ t: 'bin', v });
const struct = (...v: Array<[number, ThriftValue]>): ThriftValue => ({ t: 'struct', v });

/**
 * A parquet file with one OPTIONAL BYTE_ARRAY (UTF8) column `column`; each inner array of `rowGroups` is
 * one row group (one data page). Values: string, raw bytes, or null. `codec` is only declared (0 =
 * uncompressed; the pages are never compressed), to test codecs the reader lacks.
 */
function writeParquet(path: string, column: string, rowGroups: Array<Array<string | Uint8Array | null>>, codec = 0): void {
  const file: number[] = [...Buffer.from('PAR1')];
  const groups: ThriftValue[] = [];
  let totalRows = 0;
  for (const rows of rowGroups) {
    // page body: 4-byte length + definition levels as RLE runs of one, then the PLAIN values
    const levels: number[] = [];
    for (const r of rows) levels.push(2, r === null ? 0 : 1); // run header (1 << 1), level byte
    const body: number[] = [];
    body.push(...new Uint8Array(new Uint32Array([levels.length]).buffer), ...levels);
    for (const r of rows) {
      if (r === null) continue;
      const bytes = typeof r === 'string' ? new TextEncoder().encode(r) : r;
      body.push(...new Uint8Array(new Uint32Array([bytes.length]).buffer), ...bytes);
    }
    const header: number[] = [];
    writeThrift(header, struct([1, i32(0)], [2, i32(body.length)], [3, i32(body.length)], [5, struct([1, i32(rows.length)], [2, i32(0)], [3, i32(3)], [4, i32(3)])]));
    const offset = file.length;
    file.push(...header, ...body);
    const size = header.length + body.length;
    const meta = struct(
      [1, i32(6)],
      [2, { t: 'list', elem: 'i32', v: [i32(0), i32(3)] }],
      [3, { t: 'list', elem: 'bin', v: [bin(column)] }],
      [4, i32(codec)],
      [5, i64(rows.length)],
      [6, i64(size)],
      [7, i64(size)],
      [9, i64(offset)],
    );
    groups.push(struct([1, { t: 'list', elem: 'struct', v: [struct([2, i64(offset)], [3, meta])] }], [2, i64(size)], [3, i64(rows.length)]));
    totalRows += rows.length;
  }
  const footer: number[] = [];
  writeThrift(
    footer,
    struct(
      [1, i32(1)],
      [2, { t: 'list', elem: 'struct', v: [struct([4, bin('schema')], [5, i32(1)]), struct([1, i32(6)], [3, i32(1)], [4, bin(column)], [6, i32(0)])] }],
      [3, i64(totalRows)],
      [4, { t: 'list', elem: 'struct', v: groups }],
    ),
  );
  file.push(...footer, ...new Uint8Array(new Uint32Array([footer.length]).buffer), ...Buffer.from('PAR1'));
  writeFileSync(path, Uint8Array.from(file));
}

// ---- .txt ----

test('txt: one document per file, verbatim; paragraphs split on blank lines when asked', async () => {
  const dir = freshDir();
  writeFileSync(join(dir, 'a.txt'), 'First line.\nSecond line.\n\nNew paragraph.\r\n  \r\nLast one');
  writeFileSync(join(dir, 'b.txt'), 'Only doc of b.\n');
  const whole = await readAll([dir]);
  assert.deepEqual(whole.texts, ['First line.\nSecond line.\n\nNew paragraph.\r\n  \r\nLast one', 'Only doc of b.\n']);
  assert.equal(whole.stats.files, 2);
  assert.equal(whole.stats.documents, 2);

  const paragraphs = await readAll([dir], { txtSplit: 'paragraph' });
  assert.deepEqual(paragraphs.texts, ['First line.\nSecond line.', 'New paragraph.', 'Last one', 'Only doc of b.']);
  assert.deepEqual(paragraphs.sources, [`${join(dir, 'a.txt')}:1`, `${join(dir, 'a.txt')}:4`, `${join(dir, 'a.txt')}:6`, `${join(dir, 'b.txt')}:1`]);
});

test('txt: empty and whitespace-only files are skipped and counted; non-UTF-8 is an error naming the file', async () => {
  const dir = freshDir();
  writeFileSync(join(dir, 'empty.txt'), '');
  writeFileSync(join(dir, 'blank.txt'), '\n  \n\t\n');
  writeFileSync(join(dir, 'good.txt'), 'text');
  const r = await readAll([dir]);
  assert.deepEqual(r.texts, ['text']);
  assert.equal(r.stats.emptyFiles, 2);
  const rp = await readAll([dir], { txtSplit: 'paragraph' });
  assert.deepEqual(rp.texts, ['text']);
  assert.equal(rp.stats.emptyFiles, 2);

  const bad = join(dir, 'latin1.txt');
  writeFileSync(bad, Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a])); // "café" in Latin-1
  await assert.rejects(readAll([bad]), (e: Error) => e.message.includes(bad) && /not valid UTF-8 \(bad byte at offset 3\)/.test(e.message));
  await assert.rejects(readAll([bad], { txtSplit: 'paragraph' }), (e: Error) => e.message.includes(`${bad}:1`) && /UTF-8/.test(e.message));
});

/** Documents as the readers give them, parts joined (a long .txt document comes in parts). */
async function readWhole(inputs: string[], options: ReadOptions = {}): Promise<{ docs: string[]; parts: number[][]; stats: ReadStats }> {
  const stats = newReadStats();
  const docs: string[] = [];
  const parts: number[][] = [];
  let open: string[] = [];
  for await (const d of readDocuments(inputs, options, stats)) {
    open.push(d.text);
    if (d.continues) continue;
    docs.push(open.join(''));
    parts.push(open.map((t) => t.length));
    open = [];
  }
  assert.equal(open.length, 0, 'the last part does not continue');
  return { docs, parts, stats };
}

/** Paragraphs as the line-by-line rule defines them: non-blank lines (trailing '\r' dropped) joined by '\n'. */
function paragraphsOf(text: string): string[] {
  const out: string[] = [];
  let current: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') {
      if (current.length > 0) out.push(current.join('\n'));
      current = [];
    } else current.push(line);
  }
  if (current.length > 0) out.push(current.join('\n'));
  return out;
}

test('txt: a long file or line is never held whole: it comes in parts of about 1 MiB, whole-file and paragraph alike', async () => {
  const dir = freshDir();
  const MiB = 1 << 20;
  // a first paragraph whose CRLF straddles the first 1 MiB read, a blank line of spaces, then one 2 MB line
  // of multi-byte characters (some cut by the reads), a blank line and a short last paragraph without newline
  const first = 'short line\n' + 'w'.repeat(MiB - 1 - 11) + '\r\n';
  const long = 'naïve café — 😀 words '.repeat(80_000);
  const content = first + '  \r\n' + long + '\n\nthe end\r';
  const path = join(dir, 'big.txt');
  writeFileSync(path, content);

  const whole = await readWhole([path], { txtSplit: 'file' });
  assert.deepEqual(whole.docs, [content]);
  assert.ok(whole.parts[0]!.length >= 3 && whole.parts[0]!.every((n) => n <= MiB), `parts ${whole.parts[0]}`);
  assert.equal(whole.stats.documents, 1);
  assert.equal(whole.stats.characters, content.length);

  for (const split of ['paragraph', 'auto'] as const) {
    const paragraphs = await readWhole([path], { txtSplit: split });
    assert.deepEqual(paragraphs.docs, paragraphsOf(content), split);
    assert.equal(paragraphs.docs[1], long);
    assert.ok(paragraphs.parts[1]!.length >= 2 && paragraphs.parts[1]!.every((n) => n <= 2 * MiB), `${split}: parts ${paragraphs.parts[1]}`);
    assert.equal(paragraphs.stats.documents, 3);
    assert.equal(paragraphs.stats.characters, paragraphsOf(content).join('').length);
  }
});

test('txt: fileText decodes across read edges without splitting a character; bad UTF-8 names the line and file offset', () => {
  const dir = freshDir();
  const text = 'aé€😀\nb\r\n'.repeat(50);
  const path = join(dir, 'chars.txt');
  writeFileSync(path, text);
  for (const size of [4, 5, 7]) {
    const pieces = [...fileText(path, size)];
    assert.equal(pieces.join(''), text, `pieces of ${size} bytes`);
    assert.ok(pieces.length > 10);
  }
  const bad = join(dir, 'bad.txt');
  writeFileSync(bad, Buffer.concat([Buffer.from('ab\ncd\nef'), Buffer.from([0xff]), Buffer.from('gh')]));
  assert.throws(() => [...fileText(bad, 4)], (e: Error) => e.message.includes(`${bad}:3: not valid UTF-8 (bad byte at offset 8)`));
  const cut = join(dir, 'cut.txt');
  writeFileSync(cut, Buffer.from([0x61, 0xe2, 0x82])); // a 3-byte character missing its last byte at the end
  assert.throws(() => [...fileText(cut, 4)], /cut\.txt:1: not valid UTF-8 \(bad byte at offset 1\)/);
});

// ---- .jsonl ----

test('jsonl: the text field per line, another field with textField, blank lines ignored', async () => {
  const dir = freshDir();
  const path = join(dir, 'd.jsonl');
  writeFileSync(path, '{"text": "one", "id": 1}\n\n{"text": "two\\nlines", "body": "b2"}\r\n{"text": "three", "body": "b3"}');
  const r = await readAll([path]);
  assert.deepEqual(r.texts, ['one', 'two\nlines', 'three']);
  assert.deepEqual(r.sources, [`${path}:1`, `${path}:3`, `${path}:4`]);

  const other = join(dir, 'e.jsonl');
  writeFileSync(other, '{"body": "alpha"}\n{"body": "beta"}\n');
  assert.deepEqual((await readAll([other], { textField: 'body' })).texts, ['alpha', 'beta']);
});

test('jsonl: bad lines are errors naming file and line; empty texts and files are skipped and counted', async () => {
  const dir = freshDir();
  const invalid = join(dir, 'invalid.jsonl');
  writeFileSync(invalid, '{"text": "ok"}\n{"text": "broken\n');
  await assert.rejects(readAll([invalid]), (e: Error) => e.message.includes(`${invalid}:2`) && /not valid JSON/.test(e.message));

  const missing = join(dir, 'missing.jsonl');
  writeFileSync(missing, '{"text": "ok"}\n{"content": "x", "id": 3}\n');
  await assert.rejects(readAll([missing]), (e: Error) => e.message.includes(`${missing}:2`) && /no "text" field \(fields: content, id\)/.test(e.message));

  const notObject = join(dir, 'array.jsonl');
  writeFileSync(notObject, '["text"]\n');
  await assert.rejects(readAll([notObject]), /array\.jsonl:1: expected a JSON object/);

  const wrongType = join(dir, 'number.jsonl');
  writeFileSync(wrongType, '{"text": 42}\n');
  await assert.rejects(readAll([wrongType]), /number\.jsonl:1: field "text" is number, expected a string/);

  const badBytes = join(dir, 'bytes.jsonl');
  writeFileSync(badBytes, Buffer.concat([Buffer.from('{"text": "fine"}\n{"text": "'), Buffer.from([0xff, 0xfe]), Buffer.from('"}\n')]));
  await assert.rejects(readAll([badBytes]), (e: Error) => e.message.includes(`${badBytes}:2`) && /not valid UTF-8/.test(e.message));

  const empties = join(dir, 'empties.jsonl');
  writeFileSync(empties, '{"text": ""}\n{"text": null}\n{"text": "  \\n "}\n{"text": "kept"}\n');
  writeFileSync(join(dir, 'zero.jsonl'), '');
  writeFileSync(join(dir, 'blank-lines.jsonl'), '\n\n');
  const r = await readAll([empties, join(dir, 'zero.jsonl'), join(dir, 'blank-lines.jsonl')]);
  assert.deepEqual(r.texts, ['kept']);
  assert.equal(r.stats.emptyDocuments, 3);
  assert.equal(r.stats.emptyFiles, 2);
});

test('jsonl: lines longer than the 1 MiB read chunk, and many lines across chunk edges', async () => {
  const dir = freshDir();
  const path = join(dir, 'big.jsonl');
  const long = 'x'.repeat((1 << 20) + 12345);
  const lines = [JSON.stringify({ text: long })];
  for (let i = 0; i < 30000; i++) lines.push(JSON.stringify({ text: `line ${i} é` }));
  writeFileSync(path, lines.join('\n') + '\n');
  const r = await readAll([path]);
  assert.equal(r.texts.length, 30001);
  assert.equal(r.texts[0], long);
  assert.equal(r.texts[30000], 'line 29999 é');
  assert.equal(r.sources[30000], `${path}:30001`);
});

// ---- .parquet ----

test('parquet: the text column, row group by row group; nulls and empty strings skipped and counted', async () => {
  const dir = freshDir();
  const path = join(dir, 'train-00000.parquet');
  writeParquet(path, 'text', [
    ['first row', 'second row', null],
    ['', 'fourth row – ünïcödé'],
  ]);
  const r = await readAll([path]);
  assert.deepEqual(r.texts, ['first row', 'second row', 'fourth row – ünïcödé']);
  assert.deepEqual(r.sources, [`${path}#0`, `${path}#1`, `${path}#4`]);
  assert.equal(r.stats.emptyDocuments, 2);

  const content = join(dir, 'content.parquet');
  writeParquet(content, 'content', [['via textField']]);
  assert.deepEqual((await readAll([content], { textField: 'content' })).texts, ['via textField']);
});

test('parquet: missing column, bad UTF-8, not parquet, empty file', async () => {
  const dir = freshDir();
  const other = join(dir, 'other.parquet');
  writeParquet(other, 'content', [['x']]);
  await assert.rejects(readAll([other]), (e: Error) => e.message.includes(other) && /no column "text" \(columns: content\)/.test(e.message));

  const badBytes = join(dir, 'bytes.parquet');
  writeParquet(badBytes, 'text', [['ok', Uint8Array.from([0x61, 0xc3, 0x28])]]);
  await assert.rejects(readAll([badBytes]), (e: Error) => e.message.includes(`${badBytes}#1`) && /not valid UTF-8/.test(e.message));

  const notParquet = join(dir, 'fake.parquet');
  writeFileSync(notParquet, 'this is not a parquet file at all');
  await assert.rejects(readAll([notParquet]), (e: Error) => e.message.includes(notParquet) && /not a readable parquet file/.test(e.message));

  const zstd = join(dir, 'zstd.parquet');
  writeParquet(zstd, 'text', [['x']], 6); // ZSTD: hyparquet alone reads uncompressed and snappy only
  await assert.rejects(readAll([zstd]), (e: Error) => e.message.includes(zstd) && /cannot read rows 0\.\.0 of column "text"/.test(e.message) && /ZSTD/i.test(e.message));

  const empty = join(dir, 'empty.parquet');
  writeFileSync(empty, '');
  const ok = join(dir, 'ok.parquet');
  writeParquet(ok, 'text', [['kept']]);
  const r = await readAll([empty, ok]);
  assert.deepEqual(r.texts, ['kept']);
  assert.equal(r.stats.emptyFiles, 1);
});

// ---- inputs: folders, globs, errors ----

test('inputs: folders recurse (known extensions, hidden skipped), globs match, order is sorted and stable', async () => {
  const dir = freshDir();
  mkdirSync(join(dir, 'sub', 'deeper'), { recursive: true });
  mkdirSync(join(dir, '.cache'));
  writeFileSync(join(dir, 'b.txt'), 'b');
  writeFileSync(join(dir, 'a.jsonl'), '{"text": "a"}\n');
  writeFileSync(join(dir, 'notes.md'), 'ignored in a folder');
  writeFileSync(join(dir, 'sub', 'c.txt'), 'c');
  writeFileSync(join(dir, 'sub', 'deeper', 'd.txt'), 'd');
  writeFileSync(join(dir, '.cache', 'e.txt'), 'hidden');
  assert.deepEqual((await readAll([dir])).texts, ['a', 'b', 'c', 'd']);
  assert.deepEqual((await readAll([join(dir, '*.txt')])).texts, ['b']);
  assert.deepEqual((await readAll([join(dir, '**/*.txt')])).texts, ['b', 'c', 'd']);
  assert.deepEqual((await readAll([join(dir, 'sub/*/?.txt')])).texts, ['d']);
  assert.deepEqual((await readAll([join(dir, '[ab].*')])).texts, ['a', 'b']);
  // a file named twice is read once; inputs keep their given order
  assert.deepEqual((await readAll([join(dir, 'sub', 'c.txt'), dir])).texts, ['c', 'a', 'b', 'd']);

  assert.ok(globToRegExp('**/*.txt').test('x/y/z.txt'));
  assert.ok(globToRegExp('**/*.txt').test('z.txt'));
  assert.ok(!globToRegExp('*.txt').test('x/z.txt'));
  assert.ok(globToRegExp('data-[!0-4].jsonl').test('data-7.jsonl'));
  assert.ok(!globToRegExp('data-[!0-4].jsonl').test('data-3.jsonl'));
  assert.ok(globToRegExp('a.b+c(1).txt').test('a.b+c(1).txt'));
});

test('inputs: nothing given, missing paths, empty folders, unknown formats, unmatched globs are errors', () => {
  const dir = freshDir();
  writeFileSync(join(dir, 'notes.md'), 'x');
  assert.throws(() => expandInputs([]), /no training data given/);
  assert.throws(() => expandInputs([join(dir, 'nope.jsonl')]), /nope\.jsonl: no such file or folder/);
  assert.throws(() => expandInputs([dir]), /folder has no \.txt, \.jsonl, \.parquet files/);
  assert.throws(() => expandInputs([join(dir, 'notes.md')]), /notes\.md: unknown data format/);
  assert.throws(() => expandInputs([join(dir, '*.md')]), /notes\.md \(from '.*\*\.md'\): unknown data format/);
  assert.throws(() => expandInputs([join(dir, '*.jsonl')]), /pattern matches no files/);
  assert.deepEqual(expandInputs(['@embedded']), { files: [], embedded: true });
});
