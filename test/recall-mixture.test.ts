// The recall mixture (src/train/data/recall-mixture.ts): the same seed weaves the same bytes, it never
// emits a probe's held-out instance (checked against the probes' own generators at seed 0), and a tiny
// `supra train --recall-mix` run stopped half-way and resumed ends bit for bit where an uninterrupted one does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { copyData, defaultTokenRange, mixSeed, mqarData, passkeyTrial } from '../src/eval/probes.js';
import { RECALL_DEFAULTS } from '../src/eval/recall.js';
import { EVAL_DEFAULTS } from '../src/experiments/plan.js';
import { readLatest } from '../src/train/checkpoint.js';
import { openTokenBatches } from '../src/train/data/dataset.js';
import { RecallMixture, parseKindWeights, probeHeldOut, type EpisodeKind, type HeldOut } from '../src/train/data/recall-mixture.js';
import { MetricsLog } from '../src/train/metrics.js';
import { charTokenizerFiles, tinyConfig } from './helpers/train-data.js';
import { freshDirs, tempRoot } from './helpers/tmp.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..'); // dist-*/test -> repo
const TOKENIZER = join(repoRoot, 'assets', 'teacher');
const tok = loadTokenizer(TOKENIZER);
const V = tok.vocab_size;
const cli = resolve(dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');
const root = tempRoot('supra-recall-mix-');
const freshDir = freshDirs(root, 'case');

const ROW = 257;
/** Marks the natural text in a row, so the episode's tokens can be read back. */
const NATURAL = -1;

function mixture(seed: number, heldOut?: HeldOut): RecallMixture {
  return new RecallMixture({ share: 1, seed, vocab: V, rowLength: ROW, tokenizer: tok, heldOut });
}

/** `n` rows woven from natural rows of NATURAL, with the kind of each. */
function weaveMany(m: RecallMixture, n: number, epoch = 0): Array<{ row: Int32Array; kind: EpisodeKind | null }> {
  return Array.from({ length: n }, (_, i) => {
    const row = new Int32Array(ROW).fill(NATURAL);
    return { row, kind: m.weave(row, epoch, i) };
  });
}

/**
 * The probes' MQAR pairs (key·V + value) at seed 0, drawn by the probe's generator at every setting a
 * caller uses: the CLI's defaults, the study's (EVAL_DEFAULTS) and the demo's (RECALL_DEFAULTS).
 */
function probeMqarPairs(): Set<number> {
  const range = defaultTokenRange(V);
  const pairs = new Set<number>();
  const uses: Array<[number[], number]> = [
    [[4, 8, 16, 32, 64], 16],
    [EVAL_DEFAULTS.probes.mqar.pairs, EVAL_DEFAULTS.probes.mqar.samples],
    [[RECALL_DEFAULTS.mqarPairs], RECALL_DEFAULTS.samples],
  ];
  for (const [counts, samples] of uses) {
    counts.forEach((n, i) => {
      const d = mqarData(mixSeed(0, 3, i), samples, n, n, range);
      for (let b = 0; b < d.B; b++) for (let j = 0; j < n; j++) pairs.add(d.ids[b * d.T + 2 * j]! * V + d.ids[b * d.T + 2 * j + 1]!);
    });
  }
  return pairs;
}

/** The probes' passkey keys and distractors at seed 0 (default lengths and depths, the study's 4 samples), drawn by passkeyTrial. */
function probePasskeys(): Set<number> {
  const keys = new Set<number>();
  [128, 256, 512].forEach((length, li) => [0, 0.25, 0.5, 0.75, 1].forEach((depth, di) => {
    for (let s = 0; s < 4; s++) {
      const t = passkeyTrial(tok, mixSeed(0, 2, li, di, s), length, depth, 4);
      for (const k of [t.key, ...t.distractorKeys]) keys.add(k);
    }
  }));
  return keys;
}

/** The MQAR pairs of a woven row: the episode is contiguous k v k v …, starting at the first non-natural token. */
function mqarPairsOf(row: Int32Array): number[] {
  const start = row.findIndex((t) => t !== NATURAL);
  let end = start;
  while (end < row.length && row[end] !== NATURAL) end++;
  const out: number[] = [];
  for (let i = start; i + 1 < end; i += 2) out.push(row[i]! * V + row[i + 1]!);
  return out;
}

function fiveDigitNumbers(row: Int32Array): number[] {
  const text = tok.decode(Array.from(row).filter((t) => t !== NATURAL));
  return [...text.matchAll(/\d{5}/g)].map((m) => Number(m[0]));
}

test('the same seed weaves the same bytes; another seed, epoch or position weaves others; share 0 weaves nothing', () => {
  const a = weaveMany(mixture(7), 200), b = weaveMany(mixture(7), 200);
  assert.deepEqual(a.map((r) => r.kind), b.map((r) => r.kind));
  for (let i = 0; i < a.length; i++) assert.ok(Buffer.from(a[i]!.row.buffer).equals(Buffer.from(b[i]!.row.buffer)), `row ${i}`);
  const kinds = new Set(a.map((r) => r.kind));
  assert.deepEqual([...kinds].sort(), ['copy', 'mqar', 'passkey']);
  const other = weaveMany(mixture(8), 200);
  assert.ok(other.some((r, i) => !Buffer.from(r.row.buffer).equals(Buffer.from(a[i]!.row.buffer))));
  const epoch1 = weaveMany(mixture(7), 200, 1);
  assert.ok(epoch1.some((r, i) => !Buffer.from(r.row.buffer).equals(Buffer.from(a[i]!.row.buffer))));
  const none = new RecallMixture({ share: 0, seed: 7, vocab: V, rowLength: ROW, tokenizer: tok });
  const row = new Int32Array(ROW).fill(NATURAL);
  assert.equal(none.weave(row, 0, 0), null);
  assert.ok(row.every((t) => t === NATURAL));
  // the warm-up: the share falls linearly from 1 to `share` over the first warmupSequences, by the run's ordinal
  const warm = new RecallMixture({ share: 0.2, warmupSequences: 1000, seed: 7, vocab: V, rowLength: ROW, tokenizer: tok });
  assert.deepEqual([0, 500, 1000, 5000].map((n) => warm.shareAt(n)), [1, 0.6, 0.2, 0.2]);
  const mixedAt = (from: number) => Array.from({ length: 400 }, (_, i) => warm.weave(new Int32Array(ROW).fill(NATURAL), 0, i, from + i) !== null).filter(Boolean).length;
  assert.equal(mixedAt(0) > 300 && mixedAt(0) <= 400, true, `${mixedAt(0)} of the first 400 mixed`);
  assert.ok(mixedAt(5000) < 130, `${mixedAt(5000)} of 400 mixed after the warm-up`);
  assert.throws(() => new RecallMixture({ share: 1.5, seed: 0, vocab: V, rowLength: ROW, tokenizer: tok }), /share must be in \[0, 1\], got 1.5/);
});

test('short rows (64–127 tokens) get whole copy episodes: the span is at most half the row, and it comes again', () => {
  for (const length of [65, 100, 127]) {
    const m = new RecallMixture({ share: 1, seed: 3, vocab: V, rowLength: length, tokenizer: tok });
    let copies = 0;
    for (let i = 0; i < 300; i++) {
      const row = new Int32Array(length).fill(NATURAL);
      if (m.weave(row, 0, i) !== 'copy') continue;
      copies++;
      // the span starts at the first woven token; its first 8 tokens appear again after it
      const start = row.findIndex((t) => t !== NATURAL);
      assert.ok(start >= 0 && start + 16 <= length, `row ${i} of ${length}: an episode starting at ${start}`);
      const head = Array.from(row.subarray(start, start + 8)).join(',');
      let again = false;
      for (let t = start + 8; t + 8 <= length && !again; t++) again = Array.from(row.subarray(t, t + 8)).join(',') === head;
      assert.ok(again, `row ${i} of ${length}: the span does not come again`);
    }
    assert.ok(copies > 100, `${copies} copy episodes of 300 rows of ${length}`);
  }
});

test('through openTokenBatches: same options, same batches; the mixture changes training rows only, never validation', async () => {
  const dir = freshDir();
  // a small corpus (the embedded one takes minutes to tokenize on a busy machine)
  const words = ['river', 'stone', 'light', 'quiet', 'market', 'winter', 'garden', 'letter', 'engine', 'orange', 'the', 'and', 'of'];
  const docs = Array.from({ length: 400 }, (_, i) => Array.from({ length: 20 + (i % 13) }, (_, j) => words[(i * 7 + j * j) % words.length]).join(' ') + '.');
  writeFileSync(join(dir, 'corpus.jsonl'), docs.map((text) => JSON.stringify({ text })).join('\n') + '\n');
  const open = (recallMix: number) => openTokenBatches({ data: [join(dir, 'corpus.jsonl')], tokenizerDir: TOKENIZER, seqLen: 256, seed: 3, cacheDir: join(dir, 'cache'), recallMix });
  const [a, b, plain] = await Promise.all([open(0.5), open(0.5), open(0)]);
  try {
    for (let i = 0; i < 5; i++) {
      const x = a.nextTrain(8), y = b.nextTrain(8), z = plain.nextTrain(8);
      assert.ok(Buffer.from(x.buffer).equals(Buffer.from(y.buffer)), `batch ${i}`);
      let differ = 0;
      for (let r = 0; r < 8; r++) if (!Buffer.from(x.buffer, r * ROW * 4, ROW * 4).equals(Buffer.from(z.buffer, r * ROW * 4, ROW * 4))) differ++;
      assert.ok(differ > 0 && differ < 8, `batch ${i}: ${differ} of 8 rows mixed at share 0.5`);
    }
    assert.deepEqual(a.validation(4).ids, plain.validation(4).ids);
  } finally {
    for (const d of [a, b, plain]) d.close();
  }
  await assert.rejects(open(2), /recallMix must be in \[0, 1\], got 2/);
});

test('the mixture never emits a probe\'s held-out MQAR pair, passkey key, copy span or passkey template (and would, without the exclusion)', () => {
  const pairs = probeMqarPairs();
  const keys = probePasskeys();
  // the mixture's own list covers what the probes draw
  const held = probeHeldOut(V);
  for (const p of pairs) assert.ok(held.mqarPairs.has(p));
  for (const k of keys) assert.ok(held.passkeys.has(k));

  const rows = weaveMany(mixture(0), 6000);
  let mqarSeen = 0, keysSeen = 0;
  for (const { row, kind } of rows) {
    if (kind === 'mqar') {
      for (const p of mqarPairsOf(row)) {
        mqarSeen++;
        assert.ok(!pairs.has(p), `held-out MQAR pair (${Math.floor(p / V)}, ${p % V}) emitted`);
      }
    } else if (kind === 'passkey') {
      const found = fiveDigitNumbers(row);
      assert.ok(found.length >= 2);
      for (const k of found) assert.ok(!keys.has(k), `held-out passkey ${k} emitted`);
      keysSeen++;
      const text = tok.decode(Array.from(row).filter((t) => t !== NATURAL));
      assert.doesNotMatch(text, /pass key|Remember it|What is the pass key/);
    }
  }
  assert.ok(mqarSeen > 50_000 && keysSeen > 1000, `${mqarSeen} pairs, ${keysSeen} passkey episodes`);

  // the same draws without the exclusion hit held-out instances: the check above has the power to fail
  const open = weaveMany(mixture(0, { mqarPairs: new Set(), passkeys: new Set() }), 6000);
  const hitPairs = open.filter((r) => r.kind === 'mqar').flatMap((r) => mqarPairsOf(r.row)).filter((p) => pairs.has(p)).length;
  const hitKeys = open.filter((r) => r.kind === 'passkey').flatMap((r) => fiveDigitNumbers(r.row)).filter((k) => keys.has(k)).length;
  assert.ok(hitPairs > 0 && hitKeys > 0, `without the exclusion: ${hitPairs} pairs, ${hitKeys} keys`);

  // no 8-token window of a copy-probe sequence (spans and gaps, default gaps up to 128) appears in a woven row
  const repeats = weaveMany(new RecallMixture({ share: 1, seed: 0, vocab: V, rowLength: ROW, tokenizer: tok, kinds: { repeat: 1 } }), 2000);
  assertNoCopyProbeWindow([...rows, ...repeats].map((r) => r.row));
});

/** No 8-token window of a copy-probe sequence at seed 0 (spans and gaps, default gaps up to 128) in `rows`. */
function assertNoCopyProbeWindow(rows: Int32Array[]): void {
  const windows = new Set<string>();
  [0, 8, 32, 128].forEach((gap, i) => {
    const d = copyData(mixSeed(0, 1, i), 8, 16, gap, defaultTokenRange(V));
    for (let t = 0; t + 8 <= d.ids.length; t++) windows.add(Array.from(d.ids.subarray(t, t + 8)).join(','));
  });
  for (const row of rows) {
    for (let t = 0; t + 8 <= row.length; t++) {
      if (row[t] === NATURAL) continue;
      assert.ok(!windows.has(Array.from(row.subarray(t, t + 8)).join(',')), 'a copy-probe window was emitted');
    }
  }
}

test('the kinds\' weights choose the episodes; a repeat row is one span back to back over the whole row; bad weights are named', () => {
  for (const length of [65, 257]) {
    const m = new RecallMixture({ share: 1, seed: 5, vocab: V, rowLength: length, tokenizer: tok, kinds: { repeat: 1 } });
    const periods = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const row = new Int32Array(length).fill(NATURAL);
      assert.equal(m.weave(row, 0, i), 'repeat');
      assert.ok(row.every((t) => t !== NATURAL), `row ${i}: natural text left`);
      // the smallest period p with row[t] = row[t - p] for every t
      let p = 4;
      while (p <= 32 && !row.subarray(p).every((t, j) => t === row[j])) p++;
      assert.ok(p <= Math.min(32, length / 2), `row ${i}: no period of 4–32`);
      periods.add(p);
    }
    assert.ok(periods.size > 10, `${periods.size} different periods`);
  }
  // two kinds at equal weights: only they, about half each; the default never draws repeat
  const two = weaveMany(new RecallMixture({ share: 1, seed: 5, vocab: V, rowLength: ROW, tokenizer: tok, kinds: { repeat: 1, mqar: 1 } }), 400);
  const count = (k: EpisodeKind) => two.filter((r) => r.kind === k).length;
  assert.equal(count('repeat') + count('mqar'), 400);
  assert.ok(count('repeat') > 150 && count('mqar') > 150, `${count('repeat')} repeat, ${count('mqar')} mqar`);
  assert.ok(weaveMany(mixture(5), 400).every((r) => r.kind !== 'repeat'));

  assert.deepEqual(parseKindWeights('repeat=0.8, mqar=0.2'), { copy: 0, mqar: 0.2, passkey: 0, repeat: 0.8 });
  for (const [spec, err] of [
    ['repeat', /expected KIND=WEIGHT/], ['induction=1', /unknown episode kind "induction"/], ['copy=-1', /weight of copy must be a number ≥ 0/],
    ['copy=x', /weight of copy must be a number ≥ 0/], ['copy=0,mqar=0', /every weight is 0/], ['copy=1,copy=2', /"copy" is named twice/],
  ] as const) assert.throws(() => parseKindWeights(spec), err, spec);
  assert.throws(() => new RecallMixture({ share: 1, seed: 0, vocab: V, rowLength: ROW, tokenizer: tok, kinds: { copy: Number.NaN } }), /weight of copy/);
});

/** A workspace for supra train: character tokenizer (vocab 128), tiny config, a text file. */
function workspace(): string[] {
  const dir = freshDir();
  const tokDir = join(dir, 'tok');
  mkdirSync(tokDir);
  for (const [name, text] of Object.entries(charTokenizerFiles())) writeFileSync(join(tokDir, name), text);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(tinyConfig({ vocab: 128 })));
  const paragraphs = Array.from({ length: 80 }, (_, i) => `the cat sat on the mat ${i % 7}. the dog ate the log ${i % 5}.`);
  writeFileSync(join(dir, 'text.txt'), paragraphs.join('\n\n'));
  return [
    'train', '--init', join(dir, 'config.json'), '--tokenizer', tokDir, '--data', join(dir, 'text.txt'), '--txt-split', 'paragraph',
    '--validation-fraction', '0.1', '--cache-dir', join(dir, 'cache'), '--seq-len', '64', '--batch-size', '4', '--lr', '1e-2',
    '--steps', '6', '--warmup-steps', '2', '--eval-every', '2', '--eval-sequences', '2', '--save-every', '0', '--quiet',
  ];
}

function supra(args: string[]): void {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr + r.stdout);
}

test('supra train --recall-mix: stopped at step 3 and resumed, the losses and final weights are those of one run; the share is kept in the run', () => {
  const args = workspace();
  const whole = join(freshDir(), 'out'), split = join(freshDir(), 'out'), plain = join(freshDir(), 'out');
  const mix = ['--recall-mix', '0.5', '--recall-warmup', '1024', '--recall-kinds', 'copy=1,repeat=1'];
  supra([...args, ...mix, '--out', whole]);
  supra([...args, ...mix, '--out', split, '--stop-at', '3']);
  assert.equal(readLatest(split)!.step, 3);
  const saved = readLatest(split)!.state.settings.data as { recallMix: number; recallWarmup: number; recallKinds: object };
  assert.deepEqual([saved.recallMix, saved.recallWarmup, saved.recallKinds], [0.5, 1024, { copy: 1, mqar: 0, passkey: 0, repeat: 1 }]);
  // a resume asking for another share or other kinds is refused; without the flags it continues with the saved ones
  const refused = spawnSync(process.execPath, [cli, 'train', '--out', split, '--resume', '--recall-mix', '0.2'], { encoding: 'utf8' });
  assert.match(refused.stderr, /--recall-mix 0.2 differs from the checkpoint's run \(0.5\)/);
  const otherKinds = spawnSync(process.execPath, [cli, 'train', '--out', split, '--resume', '--recall-kinds', 'repeat=1'], { encoding: 'utf8' });
  assert.match(otherKinds.stderr, /--recall-kinds repeat=1 differs from the checkpoint's run \(copy=1,mqar=0,passkey=0,repeat=1\)/);
  assert.equal(otherKinds.status, 2);
  const badKinds = spawnSync(process.execPath, [cli, ...args, '--recall-mix', '1', '--recall-kinds', 'induction=1', '--out', join(freshDir(), 'out')], { encoding: 'utf8' });
  assert.equal(badKinds.status, 2);
  assert.match(badKinds.stderr, /--recall-kinds: unknown episode kind "induction"/);
  supra(['train', '--out', split, '--resume', '--quiet']);
  const losses = (dir: string) => MetricsLog.read(join(dir, 'metrics.jsonl')).map(({ tokens_per_s: _, ...r }) => r);
  assert.deepEqual(losses(split), losses(whole));
  assert.ok(readFileSync(join(split, 'final', 'model.safetensors')).equals(readFileSync(join(whole, 'final', 'model.safetensors'))));
  // and the mixture did change the data: the run without it trains on other batches
  supra([...args, '--out', plain]);
  assert.notDeepEqual(losses(plain).map((r) => r.loss), losses(whole).map((r) => r.loss));
});
