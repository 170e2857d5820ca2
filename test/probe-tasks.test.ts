import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { gqaDir, maxAbsDiff } from './helpers/fixture.js';
import { loadDecoder } from '../src/models/auto.js';
import { linearize } from '../src/models/linearize.js';
import { linePlotSvg } from '../src/eval/plot.js';
import {
  candidateLogLikelihoods, copyData, copyProbe, defaultTokenRange, logProb, mqarData, mqarProbe, passkeyProbe,
  passkeyTrial, probePlot, runSequences, type TextTokenizer,
} from '../src/eval/probes.js';

/** Characters as tokens: ' '…'~' → 3…97, BOS = 1 (fits the fixture's vocabulary of 256). */
const charTok: TextTokenizer = {
  encode: (text: string, options?: { add_special_tokens?: boolean }) =>
    [...(options?.add_special_tokens === false ? [] : [1]), ...Array.from(text, (c) => c.charCodeAt(0) - 29)],
  bos_token_id: 1,
};
const decode = (ids: number[]) => String.fromCharCode(...ids.map((i) => i + 29));

test('copy data: deterministic by seed, seeds differ, the second copy repeats the first', () => {
  const range = { lo: 10, hi: 200 };
  const a = copyData(5, 3, 8, 11, range), b = copyData(5, 3, 8, 11, range), c = copyData(6, 3, 8, 11, range);
  assert.deepEqual(a, b);
  assert.notDeepEqual(Array.from(a.ids), Array.from(c.ids));
  assert.equal(a.T, 27);
  assert.equal(a.secondStart, 19);
  for (let s = 0; s < 3; s++) {
    const row = a.ids.subarray(s * 27, (s + 1) * 27);
    assert.deepEqual(Array.from(row.subarray(19)), Array.from(row.subarray(0, 8)));
    for (const id of row) assert.ok(id >= 10 && id < 200);
  }
  assert.throws(() => copyData(0, 1, 1, 0, range), /span must be an integer ≥ 2/);
});

test('MQAR data: deterministic by seed, distinct keys, each query followed by its value', () => {
  const range = { lo: 0, hi: 256 };
  const a = mqarData(1, 4, 16, 10, range), b = mqarData(1, 4, 16, 10, range), c = mqarData(2, 4, 16, 10, range);
  assert.deepEqual(a, b);
  assert.notDeepEqual(Array.from(a.ids), Array.from(c.ids));
  assert.equal(a.T, 2 * 16 + 2 * 10);
  for (let s = 0; s < 4; s++) {
    const row = Array.from(a.ids.subarray(s * a.T, (s + 1) * a.T));
    const keys = row.filter((_, i) => i < 32 && i % 2 === 0);
    assert.equal(new Set(keys).size, 16);
    for (const k of keys) assert.ok(k < 128);
    for (let q = 0; q < 10; q++) {
      const t = a.queryPos[s * 10 + q]!;
      const i = keys.indexOf(row[t]!);
      assert.ok(i >= 0, 'the query is one of the keys');
      assert.equal(a.answers[s * 10 + q], row[2 * i + 1]);
      assert.equal(row[t + 1], row[2 * i + 1]);
      assert.ok(row[t + 1]! >= 128);
    }
  }
  assert.throws(() => mqarData(0, 1, 200, 1, range), /need that many distinct keys/);
});

test('passkey trials: deterministic by seed, exact length, key at the asked depth, candidates are the keys', () => {
  const a = passkeyTrial(charTok, 3, 400, 0.5, 4), b = passkeyTrial(charTok, 3, 400, 0.5, 4), c = passkeyTrial(charTok, 4, 400, 0.5, 4);
  assert.deepEqual(a, b);
  assert.notEqual(a.key, c.key);
  assert.equal(a.prompt.length, 400);
  assert.equal(a.prompt[0], 1);
  const text = decode(a.prompt.slice(1));
  assert.ok(text.includes(`The pass key is ${a.key}. Remember it.`));
  assert.ok(text.endsWith('What is the pass key? The pass key is'));
  assert.equal(a.candidates.length, 5);
  assert.equal(decode(a.candidates[0]!), ` ${a.key}`);
  assert.deepEqual(a.candidates.slice(1).map(decode), a.distractorKeys.map((k) => ` ${k}`));
  assert.equal(new Set([a.key, ...a.distractorKeys]).size, 5);
  for (const k of [a.key, ...a.distractorKeys]) assert.ok(k >= 10000 && k < 100000);
  const at = (depth: number) => decode(passkeyTrial(charTok, 3, 400, depth, 4).prompt).indexOf('The pass key is');
  assert.ok(at(0) < at(0.5) && at(0.5) < at(1));
  assert.throws(() => passkeyTrial(charTok, 3, 100, 0.5, 4), /too short/);
});

test('probes score the fixture teacher and its SUPRA model through their decoding paths', () => {
  const teacher = loadDecoder(join(gqaDir, 'teacher')).model;
  const model = linearize(teacher, { seed: 1000 });
  try {
    const V = 256;
    assert.deepEqual(defaultTokenRange(V), { lo: 0, hi: 256 });
    assert.deepEqual(defaultTokenRange(32000), { lo: 1600, hi: 30400 });
    // the decoding path (KV-cache prefill, SUPRA chunked from a state) gives the full-forward logits
    const d = copyData(9, 3, 6, 20, { lo: 0, hi: V });
    for (const m of [teacher, model]) {
      const full = Float32Array.from(m.forward(d.ids, d.B, d.T));
      runSequences(m, d.ids, d.B, d.T, (b, logits) => {
        assert.ok(maxAbsDiff(logits, full.subarray(b * d.T * V, (b + 1) * d.T * V)) < 1e-4);
      });
    }
    // candidate scoring from a cloned state equals scoring the whole sequence at once
    const prompt = Array.from(d.ids.subarray(0, 25));
    const cands = [[5, 6, 7], [8], [9, 10]];
    for (const m of [teacher, model]) {
      const ll = candidateLogLikelihoods(m, prompt, cands);
      cands.forEach((c, i) => {
        const seq = Int32Array.from([...prompt, ...c]);
        const logits = m.forward(seq, 1, seq.length);
        let ref = 0;
        c.forEach((id, j) => (ref += logProb(logits.subarray((prompt.length - 1 + j) * V, (prompt.length + j) * V), id)));
        assert.ok(Math.abs(ll[i]! - ref) < 1e-3, `candidate ${i}: ${ll[i]} vs ${ref}`);
      });
    }

    const copy = copyProbe(teacher, model, { seed: 1, samples: 2, span: 6, gaps: [0, 5, 40] });
    assert.deepEqual(copy.x, [0, 5, 40]);
    for (const r of [copy.teacher, copy.model]) {
      assert.equal(r.secondCopyLoss!.length, 3);
      for (const v of [...r.secondCopyLoss!, ...r.firstCopyLoss!]) assert.ok(Number.isFinite(v) && v > 0);
    }
    assert.deepEqual(copyProbe(teacher, model, { seed: 1, samples: 2, span: 6, gaps: [0, 5, 40] }).teacher, copy.teacher);

    const mqar = mqarProbe(teacher, model, { seed: 2, samples: 3, pairs: [2, 8] });
    for (const r of [mqar.teacher, mqar.model]) {
      assert.equal(r.accuracy!.length, 2);
      for (const v of r.accuracy!) assert.ok(v >= 0 && v <= 1);
      for (const v of r.logProb!) assert.ok(Number.isFinite(v) && v < 0);
    }
    assert.ok(Math.abs(mqar.chance! - 1 / 128) < 1e-12);

    const pk = passkeyProbe(teacher, model, charTok, { seed: 3, samples: 1, lengths: [260, 300], depths: [0, 1], distractors: 2 });
    assert.deepEqual(pk.x, [260, 300]);
    for (const r of [pk.teacher, pk.model]) {
      assert.equal(r.accuracy!.length, 2);
      for (const v of r.accuracy!) assert.ok([0, 0.5, 1].includes(v));
      for (const v of r.meanMargin!) assert.ok(Number.isFinite(v));
    }
    const svg = linePlotSvg(probePlot(pk));
    assert.ok(svg.includes('>teacher (softmax)</text>') && svg.includes('>SUPRA</text>') && svg.includes('>chance, 1/3</text>'));
  } finally {
    teacher.free();
    model.free();
  }
});
