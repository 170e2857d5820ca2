// Packing, validation split, shuffling, resume and the token cache of src/train/data/dataset.ts, on tiny
// corpora written here and the embedded tokenizer (assets/teacher).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { DocumentEncoder, epochPermutation, openTokenBatches, pieceCut, prepareTokenCache, sequenceCount, TokenDataset, type TokenCache, type TokenDataOptions } from '../src/train/data/dataset.js';
import { tempRoot, freshDirs } from './helpers/tmp.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..'); // dist-*/test -> repo
const TOKENIZER = join(repoRoot, 'assets', 'teacher');
const tokenizer = loadTokenizer(TOKENIZER);
const EOS = tokenizer.eos_token_id!;

const root = tempRoot('supra-data-batches-');
const freshDir = freshDirs(root, 'case');

/** A .jsonl corpus of `n` distinct documents of varying length. */
function writeCorpus(dir: string, n: number, name = 'corpus.jsonl'): { path: string; docs: string[] } {
  const words = ['river', 'stone', 'light', 'quiet', 'market', 'winter', 'garden', 'letter', 'engine', 'orange'];
  const docs: string[] = [];
  for (let i = 0; i < n; i++) {
    const len = 3 + ((i * 7) % 11);
    const parts = [`Document ${i}:`];
    for (let j = 0; j < len; j++) parts.push(words[(i * 3 + j * j) % words.length]!);
    docs.push(parts.join(' ') + '.');
  }
  const path = join(dir, name);
  writeFileSync(path, docs.map((text) => JSON.stringify({ text })).join('\n') + '\n');
  return { path, docs };
}

function options(data: string[], cacheDir: string, extra: Partial<TokenDataOptions> = {}): TokenDataOptions {
  return { data, tokenizerDir: TOKENIZER, seqLen: 8, seed: 1234, validationFraction: 0.1, cacheDir, ...extra };
}

/** A split's whole token stream, read back from the cache file. */
function splitTokens(cache: TokenCache, split: 'train' | 'validation'): number[] {
  const bytes = readFileSync(join(cache.dir, cache.index[split].file));
  const view = cache.index.dtype === 'uint16' ? new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2) : new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  return Array.from(view);
}

/** Documents of a token stream: decoded text between EOS ids. */
function documentsOf(stream: number[]): string[] {
  const docs: string[] = [];
  let start = 0;
  for (let i = 0; i < stream.length; i++) {
    if (stream[i] === EOS) {
      docs.push(tokenizer.decode(stream.slice(start, i)));
      start = i + 1;
    }
  }
  assert.equal(start, stream.length, 'a split ends with EOS');
  return docs;
}

function rows(batch: Int32Array, width: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < batch.length; i += width) out.push(Array.from(batch.subarray(i, i + width)));
  return out;
}

test('packing: hand-checked sequences of seqLen + 1 overlapping by one token; every token a target once', () => {
  // a hand-made cache: training tokens 10..19 (T = 10), validation 100..106 (T = 7)
  const dir = freshDir();
  writeFileSync(join(dir, 't.bin'), new Uint8Array(Uint16Array.from([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]).buffer));
  writeFileSync(join(dir, 'v.bin'), new Uint8Array(Uint16Array.from([100, 101, 102, 103, 104, 105, 106]).buffer));
  const cache = {
    dir,
    indexPath: join(dir, 'index.json'),
    reused: false,
    index: { dtype: 'uint16', train: { file: 't.bin', documents: 1, tokens: 10 }, validation: { file: 'v.bin', documents: 1, tokens: 7 } },
  } as unknown as TokenCache;

  // seqLen 3: floor((10 - 1) / 3) = 3 training sequences, floor((7 - 1) / 3) = 2 validation sequences
  const ds = new TokenDataset(cache, 3, 7);
  assert.equal(ds.trainSequences, 3);
  assert.equal(ds.validationSequences, 2);
  const epoch = rows(ds.nextTrain(3), 4);
  const sorted = [...epoch].sort((a, b) => a[0]! - b[0]!);
  assert.deepEqual(sorted, [
    [10, 11, 12, 13],
    [13, 14, 15, 16],
    [16, 17, 18, 19],
  ]);
  // inputs are row[0..3), targets row[1..4): targets 11..19, each exactly once
  const targets = sorted.flatMap((r) => r.slice(1)).sort((a, b) => a - b);
  assert.deepEqual(targets, [11, 12, 13, 14, 15, 16, 17, 18, 19]);
  // the order is the epoch-0 permutation of seed 7
  assert.deepEqual(epoch.map((r) => (r[0]! - 10) / 3), Array.from(epochPermutation(3, 7, 0)));
  assert.deepEqual(rows(ds.validation().ids, 4), [
    [100, 101, 102, 103],
    [103, 104, 105, 106],
  ]);
  assert.deepEqual(ds.validation(1), { ids: Int32Array.from([100, 101, 102, 103]), count: 1 });
  ds.close();

  // seqLen 4: floor(9 / 4) = 2 sequences, token 19 is dropped
  const ds4 = new TokenDataset(cache, 4, 7);
  assert.deepEqual(rows(ds4.nextTrain(2), 5).sort((a, b) => a[0]! - b[0]!), [
    [10, 11, 12, 13, 14],
    [14, 15, 16, 17, 18],
  ]);
  ds4.close();
  assert.equal(sequenceCount(9, 3), 2, 'T = 9: tokens [0, 4) and [3, 7); [6, 10) would run past the end');
  assert.equal(sequenceCount(13, 4), 3);
  assert.equal(sequenceCount(10, 9), 1);
  assert.equal(sequenceCount(10, 10), 0);
  assert.throws(() => new TokenDataset(cache, 10, 7), /training split has 10 tokens, fewer than seqLen \+ 1 = 11/);
});

test('tokenizing: documents encoded without special tokens, each followed by EOS, in order', async () => {
  const dir = freshDir();
  const docs = ['Hello world.', 'A second document\nwith two lines.', 'Third!'];
  writeFileSync(join(dir, 'd.jsonl'), docs.map((text) => JSON.stringify({ text })).join('\n'));
  const ds = await openTokenBatches(options([join(dir, 'd.jsonl')], join(dir, 'cache'), { validationFraction: 0, seqLen: 4 }));
  const expected = docs.flatMap((d) => [...tokenizer.encode(d, { add_special_tokens: false }), EOS]);
  assert.deepEqual(splitTokens(ds.cache, 'train'), expected);
  assert.equal(ds.trainTokens, expected.length);
  assert.equal(ds.validationTokens, 0);
  assert.equal(ds.validation().count, 0);
  assert.equal(ds.cache.index.dtype, 'uint16');
  assert.equal(ds.cache.index.train.documents, 3);
  // one epoch serves sequence i = tokens [4i, 4i + 5) for every i, in some order
  assert.equal(ds.trainSequences, Math.floor((expected.length - 1) / 4));
  const served = rows(ds.nextTrain(ds.trainSequences), 5).map((r) => r.join(',')).sort();
  const wanted = Array.from({ length: ds.trainSequences }, (_, i) => expected.slice(i * 4, i * 4 + 5).join(',')).sort();
  assert.deepEqual(served, wanted);
  ds.close();
});

test('validation split: whole documents, disjoint, deterministic by seed, at least one', async () => {
  const dir = freshDir();
  const { path, docs } = writeCorpus(dir, 300);
  const a = await prepareTokenCache(options([path], join(dir, 'cache-a')));
  const again = await prepareTokenCache(options([path], join(dir, 'cache-b')));
  const other = await prepareTokenCache(options([path], join(dir, 'cache-c'), { seed: 99 }));

  const train = documentsOf(splitTokens(a, 'train'));
  const validation = documentsOf(splitTokens(a, 'validation'));
  assert.equal(train.length + validation.length, docs.length);
  assert.equal(a.index.validation.documents, validation.length);
  assert.ok(validation.length >= 10 && validation.length <= 60, `about 10% of 300 held out, got ${validation.length}`);
  const trainSet = new Set(train);
  for (const v of validation) assert.ok(!trainSet.has(v), `document in both splits: ${v}`);
  assert.deepEqual([...train, ...validation].sort(), [...docs].sort());
  // both splits keep corpus order
  assert.deepEqual(train, docs.filter((d) => trainSet.has(d)));

  assert.deepEqual(documentsOf(splitTokens(again, 'validation')), validation, 'same seed, same split');
  assert.notDeepEqual(documentsOf(splitTokens(other, 'validation')), validation, 'another seed, another split');

  // tiny corpus, tiny fraction: still one validation document (and the rest for training)
  const small = writeCorpus(freshDir(), 3);
  const s = await prepareTokenCache(options([small.path], join(dir, 'cache-small'), { validationFraction: 0.02 }));
  assert.equal(s.index.validation.documents, 1);
  assert.equal(s.index.train.documents, 2);
  // one document cannot be split
  const one = writeCorpus(freshDir(), 1);
  await assert.rejects(prepareTokenCache(options([one.path], join(dir, 'cache-one'))), /the data is one document, and it went to validation, leaving none to train on: add data, or set validationFraction 0/);
  await assert.rejects(prepareTokenCache(options([one.path], join(dir, 'cache-one'), { validationFraction: 1 })), /validationFraction must be in \[0, 1\)/);
});

test('shuffling: deterministic by seed, a new permutation each epoch, each epoch visits every sequence once', async () => {
  const p0 = epochPermutation(50, 5, 0);
  assert.deepEqual(p0, epochPermutation(50, 5, 0));
  assert.notDeepEqual(p0, epochPermutation(50, 5, 1));
  assert.notDeepEqual(p0, epochPermutation(50, 6, 0));
  assert.deepEqual([...p0].sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i));

  const dir = freshDir();
  const { path } = writeCorpus(dir, 60);
  const ds = await openTokenBatches(options([path], join(dir, 'cache')));
  const n = ds.trainSequences;
  assert.ok(n >= 20, `enough sequences to shuffle (${n})`);
  const width = ds.seqLen + 1;
  const epoch0 = rows(ds.nextTrain(n), width);
  assert.deepEqual(ds.position(), { epoch: 0, cursor: n, seed: 1234 });
  const epoch1 = rows(ds.nextTrain(n), width);
  assert.deepEqual(ds.position(), { epoch: 1, cursor: n, seed: 1234 });
  const key = (r: number[]) => r.join(',');
  assert.deepEqual(epoch0.map(key).sort(), epoch1.map(key).sort(), 'same sequences');
  assert.notDeepEqual(epoch0, epoch1, 'different order');
  const stream = splitTokens(ds.cache, 'train');
  const everySequence = Array.from({ length: n }, (_, i) => key(stream.slice(i * ds.seqLen, i * ds.seqLen + width)));
  assert.deepEqual(epoch0.map(key).sort(), everySequence.sort(), 'each sequence exactly once');
  ds.close();

  const same = await openTokenBatches(options([path], join(dir, 'cache')));
  assert.deepEqual(rows(same.nextTrain(n), width), epoch0, 'same seed, same order');
  same.close();
});

test('resume: position() after k batches, restore() in a new instance, the following batches are identical', async () => {
  const dir = freshDir();
  const { path } = writeCorpus(dir, 40);
  const first = await openTokenBatches(options([path], join(dir, 'cache')));
  const n = first.trainSequences;
  for (let k = 0; k < 3; k++) first.nextTrain(5);
  const saved = first.position();
  const savedJson = JSON.parse(JSON.stringify(saved)); // as a checkpoint stores it
  // read on, across at least one epoch boundary
  const expected: Int32Array[] = [];
  for (let k = 0; k < Math.ceil((2 * n) / 5) + 1; k++) expected.push(first.nextTrain(5));
  assert.ok(first.position().epoch >= 2);
  first.close();

  const second = await openTokenBatches(options([path], join(dir, 'cache')));
  assert.equal(second.cache.reused, true);
  second.restore(savedJson);
  for (const want of expected) assert.deepEqual(second.nextTrain(5), want);
  assert.deepEqual(second.position(), first.position());

  // a position inside a later epoch restores that epoch's permutation
  const third = await openTokenBatches(options([path], join(dir, 'cache')));
  third.restore({ epoch: 2, cursor: 3, seed: 1234 });
  const order2 = epochPermutation(n, 1234, 2);
  const row = Array.from(third.nextTrain(1));
  const stream = splitTokens(third.cache, 'train');
  assert.deepEqual(row, stream.slice(order2[3]! * 8, order2[3]! * 8 + 9));

  assert.throws(() => third.restore({ epoch: 0, cursor: 0, seed: 1 }), /saved with seed 1 into data opened with seed 1234/);
  assert.throws(() => third.restore({ epoch: 0, cursor: n + 1, seed: 1234 }), /cursor .* outside/);
  second.close();
  third.close();
});

test('cache: reused when nothing changed (also across seqLen), rebuilt when data, tokenizer or settings change', async () => {
  const dir = freshDir();
  const { path } = writeCorpus(dir, 30);
  const tokDir = join(dir, 'tokenizer');
  cpSync(TOKENIZER, tokDir, { recursive: true });
  const cacheDir = join(dir, 'cache');
  const base = { ...options([path], cacheDir), tokenizerDir: tokDir };

  const built = await prepareTokenCache(base);
  assert.equal(built.reused, false);
  const files = readdirSync(cacheDir).sort();
  assert.equal(files.length, 3, `index + two token files, no temporaries: ${files.join(', ')}`);
  const reused = await prepareTokenCache({ ...base, seqLen: 16 });
  assert.equal(reused.reused, true);
  assert.equal(reused.indexPath, built.indexPath);
  assert.deepEqual(reused.index, built.index);

  // settings that change the token files
  assert.equal((await prepareTokenCache({ ...base, validationFraction: 0.2 })).reused, false);
  assert.equal((await prepareTokenCache({ ...base, seed: 7 })).reused, false);
  assert.equal((await prepareTokenCache({ ...base, textField: 'text', txtSplit: 'paragraph' })).reused, false);
  // the tokenizer: any change to its files
  const configPath = join(tokDir, 'tokenizer_config.json');
  const config = JSON.parse(readFileSync(configPath, 'utf8'));
  writeFileSync(configPath, JSON.stringify({ ...config, model_max_length: 77 }));
  const afterTokenizer = await prepareTokenCache(base);
  assert.equal(afterTokenizer.reused, false);
  assert.notEqual(afterTokenizer.index.hash, built.index.hash);
  assert.equal((await prepareTokenCache(base)).reused, true);
  // the data
  writeFileSync(path, readFileSync(path, 'utf8') + JSON.stringify({ text: 'one more document' }) + '\n');
  const afterData = await prepareTokenCache(base);
  assert.equal(afterData.reused, false);
  assert.equal(afterData.index.read.documents, 31);

  // a damaged cache (token file cut short) is rebuilt, not trusted
  writeFileSync(join(cacheDir, afterData.index.train.file), new Uint8Array(4));
  const repaired = await prepareTokenCache(base);
  assert.equal(repaired.reused, false);
  assert.deepEqual(repaired.index.train, afterData.index.train);
});

test('errors: an empty data set, and a training split too short for one sequence', async () => {
  const dir = freshDir();
  writeFileSync(join(dir, 'empty.txt'), '');
  writeFileSync(join(dir, 'blank.jsonl'), '{"text": ""}\n{"text": null}\n');
  await assert.rejects(
    prepareTokenCache(options([dir], join(dir, '.cache'))),
    /empty data set: no documents in .* \(2 files read, 1 empty files and 2 empty records skipped\)/,
  );
  const short = freshDir();
  writeFileSync(join(short, 'a.txt'), 'Tiny.');
  writeFileSync(join(short, 'b.txt'), 'Also tiny.');
  await assert.rejects(openTokenBatches(options([short], join(short, '.cache'), { seqLen: 64 })), /training split has \d+ tokens, fewer than seqLen \+ 1 = 65/);
});

test('a long document is tokenized in pieces cut where a word starts, giving the ids of the whole document', () => {
  // README and docs/data.md: prose, code, tables, digits, double spaces, newlines, non-ASCII marks
  const text = (readFileSync(join(repoRoot, 'README.md'), 'utf8') + readFileSync(join(repoRoot, 'docs', 'data.md'), 'utf8')).slice(0, 60_000);
  const whole = tokenizer.encode(text, { add_special_tokens: false });
  const pieces: number[][] = [];
  const encoder = new DocumentEncoder(tokenizer, (ids) => pieces.push(ids), 1000);
  for (let i = 0; i < text.length; i += 777) encoder.add(text.slice(i, i + 777)); // parts as a reader gives them
  encoder.finish();
  assert.ok(pieces.length >= 25, `${pieces.length} pieces`);
  assert.deepEqual(pieces.flat(), whole);

  // a document up to the piece size is encoded whole, in one call
  const short: number[][] = [];
  const shortEncoder = new DocumentEncoder(tokenizer, (ids) => short.push(ids), 2000);
  shortEncoder.add(text.slice(0, 1500));
  shortEncoder.add(text.slice(1500, 2000));
  shortEncoder.finish();
  assert.deepEqual(short, [tokenizer.encode(text.slice(0, 2000), { add_special_tokens: false })]);

  // the cut: before " word" after a non-space; else after whitespace; never inside a surrogate pair
  assert.equal(pieceCut('one two three', 9), 7);
  assert.equal(pieceCut('one (two) 42', 11), 10); // no space before a letter: after the last whitespace
  assert.equal(pieceCut('😀😀😀😀', 5), 4);
  const noSpaces = 'あいう😀'.repeat(600);
  const cjk: number[][] = [];
  const cjkEncoder = new DocumentEncoder(tokenizer, (ids) => cjk.push(ids), 1001);
  cjkEncoder.add(noSpaces);
  cjkEncoder.finish();
  assert.ok(cjk.length >= 2);
  assert.equal(tokenizer.decode(cjk.flat()), noSpaces);
});

test('txtSplit auto: a lone .txt file is read as paragraphs, several files whole; one document names what to change', async () => {
  const dir = freshDir();
  const paragraphs = Array.from({ length: 40 }, (_, i) => `Paragraph ${i} about the river and the stone.`);
  writeFileSync(join(dir, 'notes.txt'), paragraphs.join('\n\n') + '\n');
  const lone = await prepareTokenCache(options([join(dir, 'notes.txt')], join(dir, 'cache')));
  assert.equal(lone.index.settings.txtSplit, 'paragraph');
  assert.equal(lone.index.train.documents + lone.index.validation.documents, 40);
  const explicit = await prepareTokenCache(options([join(dir, 'notes.txt')], join(dir, 'cache'), { txtSplit: 'paragraph' }));
  assert.ok(explicit.reused, 'auto and the mode it chose share one cache');

  const two = freshDir();
  writeFileSync(join(two, 'a.txt'), 'First file.');
  writeFileSync(join(two, 'b.txt'), 'Second file.');
  const files = await prepareTokenCache(options([two], join(two, '.cache')));
  assert.equal(files.index.settings.txtSplit, 'file');
  assert.equal(files.index.train.documents + files.index.validation.documents, 2);

  writeFileSync(join(dir, 'one.txt'), 'A single paragraph.\nStill the same one.\n');
  await assert.rejects(
    prepareTokenCache(options([join(dir, 'one.txt')], join(dir, 'cache'))),
    /one\.txt: the data is one document \(the text has no blank line, so it is one paragraph\), and it went to validation, leaving none to train on: add data or blank lines between paragraphs, or set validationFraction 0/,
  );
  await assert.rejects(
    prepareTokenCache(options([join(dir, 'one.txt')], join(dir, 'cache'), { txtSplit: 'file', settingName: (s) => `--${s}` })),
    /the data is one document, and it went to validation, leaving none to train on: add data, split \.txt files into paragraphs with --txtSplit paragraph, or set --validationFraction 0/,
  );
});

/** A corpus big enough that tokenizing it takes seconds (so a signal lands in the middle). */
function writeBigCorpus(dir: string): string {
  const words = ['river', 'stone', 'light', 'quiet', 'market', 'winter', 'garden', 'letter', 'engine', 'orange'];
  const lines = Array.from({ length: 4000 }, (_, i) => JSON.stringify({ text: Array.from({ length: 150 }, (_, j) => words[(i + j * j) % 10]).join(' ') }));
  const path = join(dir, 'big.jsonl');
  writeFileSync(path, lines.join('\n'));
  return path;
}

const datasetModule = resolve(dirname(fileURLToPath(import.meta.url)), '../src/train/data/dataset.js');

test('SIGINT or SIGTERM while tokenizing removes the temporary files, says nothing was cached, exits 130 / 143', async () => {
  const dir = freshDir();
  const data = writeBigCorpus(dir);
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    const cache = join(dir, `cache-${signal}`);
    const script = `import { prepareTokenCache } from ${JSON.stringify(datasetModule)};
      await prepareTokenCache({ data: [${JSON.stringify(data)}], tokenizerDir: ${JSON.stringify(TOKENIZER)}, seqLen: 8, seed: 0, cacheDir: ${JSON.stringify(cache)} });
      console.log('finished');`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d) => (stdout += d));
    const exited = new Promise<number | null>((r) => child.on('close', (status) => r(status)));
    const started = Date.now();
    while (!(existsSync(cache) && readdirSync(cache).some((f) => f.includes('.tmp-')))) {
      assert.ok(Date.now() - started < 20_000, `no temporary files appeared: ${stderr}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    await new Promise((r) => setTimeout(r, 100)); // well into tokenizing
    child.kill(signal);
    const status = await exited;
    assert.equal(stdout, '', 'interrupted before it finished');
    assert.equal(status, code, stderr);
    assert.match(stderr, new RegExp(`${signal === 'SIGINT' ? 'interrupted' : 'terminated'} while tokenizing .*big\\.jsonl: nothing was cached`));
    assert.deepEqual(readdirSync(cache), [], 'no temporary files, no index');
  }
});

test('temporary files of a cache build whose process died are removed by the next build; a live one is kept', async () => {
  const dir = freshDir();
  const { path } = writeCorpus(dir, 20);
  const cache = join(dir, 'cache');
  const gone = spawnSync(process.execPath, ['-e', '']).pid!; // a process that has exited
  const key = '0123456789abcdef01234567';
  const stale = [`${key}.train.bin.tmp-${gone}-1`, `${key}.validation.bin.tmp-${gone}-1`, `${key}.json.tmp-${gone}-1`];
  const live = `${key}.train.bin.tmp-${process.pid}-1`;
  const unrelated = `notes.tmp-${gone}-1`;
  cpSync(path, join(cache, 'placeholder')); // creates the folder
  for (const f of [...stale, live, unrelated]) writeFileSync(join(cache, f), 'partial');
  await prepareTokenCache(options([path], cache));
  const left = readdirSync(cache);
  for (const f of stale) assert.ok(!left.includes(f), `${f} removed`);
  assert.ok(left.includes(live) && left.includes(unrelated), 'files of a live process and files not ours are kept');
});
