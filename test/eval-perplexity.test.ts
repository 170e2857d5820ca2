// Perplexity: the sliding-window plan, the teacher's windowed NLL against a hand-written HF loop, and the
// SUPRA model's one pass with its state against the full forward, all checked with an independent
// float64 log-softmax of model.forward's logits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadDecoder } from '../src/models/auto.js';
import { linearize } from '../src/models/linearize.js';
import { combine, documentNll, slidingWindows, toRow, tokenLogProbs } from '../src/eval/perplexity.js';
import { gqaDir } from './helpers/fixture.js';
import { charTokenizer, logProbRef, preferAModel, preferLogProbs } from './helpers/eval.js';

const tok = charTokenizer();
const TEXT = 'The kettle began to sing as the water boiled. She poured it over the leaves and waited.';
const ids = tok.encode(TEXT); // <s> then one token per character
const teacher = loadDecoder(join(gqaDir, 'teacher')).model;
const V = teacher.config.vocab_size;

/** Σ −log p(ids[t] | ids[begin..t)) for t in [from, end), from a forward of ids[begin, end) (float64, by hand). */
function windowNllRef(model: typeof teacher, all: number[], begin: number, end: number, from: number): number {
  const window = all.slice(begin, end);
  const logits = Float32Array.from(model.forward(window, 1, window.length));
  let nll = 0;
  for (let t = from; t < end; t++) nll -= logProbRef(logits, t - begin - 1, V, all[t]!);
  return nll;
}

test('the tokenizer gives <s> plus one token per character', () => {
  assert.equal(ids.length, TEXT.length + 1);
  assert.equal(ids[0], 1);
  assert.equal(ids[1], 'T'.charCodeAt(0));
});

test('sliding windows follow the HF recipe: each scores the tokens after the previous end', () => {
  assert.deepEqual(slidingWindows(10, 4, 2), [
    { begin: 0, end: 4, scoreFrom: 1 }, // token 0 has no context
    { begin: 2, end: 6, scoreFrom: 4 },
    { begin: 4, end: 8, scoreFrom: 6 },
    { begin: 6, end: 10, scoreFrom: 8 },
  ]);
  // stride = window: a window's first token has no context inside it and is skipped, as in the recipe
  assert.deepEqual(slidingWindows(10, 4, 4), [
    { begin: 0, end: 4, scoreFrom: 1 },
    { begin: 4, end: 8, scoreFrom: 5 },
    { begin: 8, end: 10, scoreFrom: 9 },
  ]);
  // a document shorter than the window: one window, every token after the first
  assert.deepEqual(slidingWindows(5, 16, 8), [{ begin: 0, end: 5, scoreFrom: 1 }]);
  assert.deepEqual(slidingWindows(1, 4, 2), []);
  // stride 1: every token after the first window gets the full window of context
  const w = slidingWindows(7, 3, 1);
  assert.deepEqual(w.map((x) => [x.begin, x.end, x.scoreFrom]), [[0, 3, 1], [1, 4, 3], [2, 5, 4], [3, 6, 5], [4, 7, 6]]);
  assert.throws(() => slidingWindows(10, 4, 5), /stride must be an integer in \[1, 4\]/);
  assert.throws(() => slidingWindows(10, 1, 1), /window length must be an integer ≥ 2/);
});

test('tokenLogProbs (forward) equals an independent log-softmax of the logits', () => {
  const seq = ids.slice(0, 30);
  const lp = tokenLogProbs(teacher, seq, 5);
  assert.equal(lp.length, 25);
  const logits = Float32Array.from(teacher.forward(seq.slice(0, 29), 1, 29));
  for (let t = 5; t < 30; t++) {
    const want = logProbRef(logits, t - 1, V, seq[t]!);
    assert.ok(Math.abs(lp[t - 5]! - want) < 1e-5, `token ${t}: ${lp[t - 5]} vs ${want}`);
  }
});

test('teacher perplexity with a window shorter than the document matches a hand-written HF loop', () => {
  const maxLength = 16, stride = 6;
  const n = ids.length;
  assert.ok(n > 4 * maxLength);
  // the recipe, written out: for begin in range(0, n, stride): end = min(begin + L, n); trg = end − prev_end;
  // labels = ids[begin:end] with all but the last trg masked, shifted by one inside the window
  let nllRef = 0, tokensRef = 0, prevEnd = 0;
  for (let begin = 0; begin < n; begin += stride) {
    const end = Math.min(begin + maxLength, n);
    const trg = end - prevEnd;
    const firstLabel = Math.max(begin + 1, end - trg); // the shift drops the window's first position
    nllRef += windowNllRef(teacher, ids, begin, end, firstLabel);
    tokensRef += end - firstLabel;
    prevEnd = end;
    if (end === n) break;
  }
  assert.equal(tokensRef, n - 1, 'with stride < window every token after the first is scored once');
  const r = documentNll(teacher, ids, { maxLength, stride });
  assert.equal(r.tokens, tokensRef);
  assert.ok(Math.abs(r.nll - nllRef) < 1e-4 * nllRef, `${r.nll} vs ${nllRef}`);

  // the windows really bound the context: the full-context NLL is different
  const full = documentNll(teacher, ids, { maxLength: n, stride: n });
  const fullRef = windowNllRef(teacher, ids, 0, n, 1);
  assert.equal(full.tokens, n - 1);
  assert.ok(Math.abs(full.nll - fullRef) < 1e-4 * fullRef);
  assert.ok(Math.abs(full.nll - r.nll) > 1e-3, 'a 16-token window changes the result');
  // the default stride is half the window
  const half = documentNll(teacher, ids, { maxLength });
  const explicit = documentNll(teacher, ids, { maxLength, stride: 8 });
  assert.equal(half.nll, explicit.nll);
});

test('progress reaches the document length', () => {
  const seen: number[] = [];
  documentNll(teacher, ids, { maxLength: 16, stride: 8, onProgress: (d, total) => { assert.equal(total, ids.length); seen.push(d); } });
  assert.equal(seen[seen.length - 1], ids.length);
  assert.ok(seen.every((d, i) => i === 0 || d >= seen[i - 1]!));
});

test('SUPRA one pass with its state equals the full-forward perplexity, for any chunk size', () => {
  const supra = linearize(teacher, { seed: 1000 });
  try {
    const n = ids.length;
    const logits = Float32Array.from(supra.forward(ids.slice(0, n - 1), 1, n - 1));
    let nllRef = 0;
    for (let t = 1; t < n; t++) nllRef -= logProbRef(logits, t - 1, V, ids[t]!);
    for (const chunk of [1, 7, 32, 1024]) {
      const r = documentNll(supra, ids, { chunk });
      assert.equal(r.tokens, n - 1);
      assert.ok(Math.abs(r.nll - nllRef) < 1e-4 * nllRef, `chunk ${chunk}: ${r.nll} vs ${nllRef}`);
    }
    // SUPRA ignores the window: a max length does not cut its context
    const r = documentNll(supra, ids, { maxLength: 8, chunk: 16 });
    assert.ok(Math.abs(r.nll - nllRef) < 1e-4 * nllRef);
    // forcing the sliding window on it gives the windowed value instead
    const windowed = documentNll(supra, ids, { method: 'window', maxLength: 8, stride: 4 });
    assert.ok(Math.abs(windowed.nll - nllRef) > 1e-3);
    // recurrent tokenLogProbs from an offset equals the forward's values at those positions
    const lp = tokenLogProbs(supra, ids, 20, { mode: 'recurrent', chunk: 6 });
    for (let t = 20; t < n; t++) assert.ok(Math.abs(lp[t - 20]! + 0 - logProbRef(logits, t - 1, V, ids[t]!)) < 1e-4, `token ${t}`);
  } finally {
    supra.free();
  }
});

test('perplexity of a model with known probabilities, by hand', () => {
  const model = preferAModel();
  const { la, lo } = preferLogProbs();
  const seq = tok.encode('aab a'); // <s> a a b ' ' a: scored a, a, b, ' ', a
  const r = documentNll(model, seq, { maxLength: 64 });
  assert.equal(r.tokens, 5);
  const nll = -(3 * la + 2 * lo);
  assert.ok(Math.abs(r.nll - nll) < 1e-5, `${r.nll} vs ${nll}`);
  const row = toRow('x', r);
  assert.ok(Math.abs(row.meanNll - nll / 5) < 1e-6);
  assert.ok(Math.abs(row.perplexity - Math.exp(nll / 5)) < 1e-5 * row.perplexity);
  // overall = token-weighted: two documents
  const r2 = documentNll(model, tok.encode('bb'), { maxLength: 64 });
  assert.equal(r2.tokens, 2);
  const all = combine([r, r2]);
  assert.equal(all.tokens, 7);
  assert.ok(Math.abs(all.nll - (nll - 2 * lo)) < 1e-5);
  // nothing to score
  const empty = toRow('empty', documentNll(model, [1]));
  assert.equal(empty.tokens, 0);
  assert.ok(Number.isNaN(empty.perplexity));
  model.free();
});
