// Multiple-choice tasks: each layout's prompt construction (lm-eval's), file errors naming file:line,
// lm-eval's context/continuation encoding, scoring against hand-computed log-likelihoods, acc vs acc_norm,
// and the seeded few-shot choice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadDecoder } from '../src/models/auto.js';
import { linearize } from '../src/models/linearize.js';
import {
  argmax, encodePair, evaluateTask, FewshotSampler, hellaswagPreprocess, layoutFromFields, loadTask, makeScorer,
  parseTaskSpec, requestsFor, type McDoc, type Task,
} from '../src/eval/tasks.js';
import { gqaDir } from './helpers/fixture.js';
import { BOS, sampleDir, charTokenizer, chars, freshDir, logProbRef, preferAModel, preferLogProbs } from './helpers/eval.js';
import { errorOf } from './helpers/errors.js';

const tok = charTokenizer();

function jsonl(name: string, records: unknown[]): string {
  const path = join(freshDir(), name);
  writeFileSync(path, records.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n');
  return path;
}

/** The requests of a doc without few-shot examples. */
function pairs(doc: McDoc): Array<[string, string]> {
  return doc.contexts.map((c, i) => [c, doc.continuations[i]!]);
}

test('hellaswag: lm-eval preprocessing (capitalize ctx_b, strip [title]/[step] artifacts)', () => {
  // as in lm-eval, the strip comes before the brackets go, so a leading "[step] " leaves a space
  assert.equal(hellaswagPreprocess(' [header] How to water [title] Check the soil.  Push '), ' How to water. Check the soil. Push');
  const path = jsonl('hellaswag.jsonl', [
    { activity_label: 'Making tea', ctx_a: 'A woman fills a kettle.', ctx_b: 'SHE then', endings: ['pours it.', 'drops it.', 'paints it.', 'reads.'], label: 0 },
    { activity_label: 'Home and Garden', ctx_a: '[header] How to water a plant [title] Check the soil.', ctx_b: 'push a finger in', endings: ['[step] If it is dry, water it.', ' and sing.', 'x', 'y'], label: '1' },
  ]);
  const task = loadTask('hellaswag', path);
  assert.equal(task.layout, 'hellaswag');
  assert.equal(task.docs.length, 2);
  const [a, b] = task.docs as [McDoc, McDoc];
  // ctx = ctx_a + " " + ctx_b.capitalize() (Python lower-cases the rest); query = label + ": " + ctx
  assert.deepEqual(pairs(a), [
    ['Making tea: A woman fills a kettle. She then', ' pours it.'],
    ['Making tea: A woman fills a kettle. She then', ' drops it.'],
    ['Making tea: A woman fills a kettle. She then', ' paints it.'],
    ['Making tea: A woman fills a kettle. She then', ' reads.'],
  ]);
  assert.equal(a.gold, 0);
  assert.deepEqual(a.normTexts, ['pours it.', 'drops it.', 'paints it.', 'reads.']);
  assert.equal(a.solved, 'Making tea: A woman fills a kettle. She then pours it.');
  assert.equal(a.source, `${path}:1`);
  assert.equal(b.contexts[0], 'Home and Garden: How to water a plant. Check the soil. Push a finger in');
  assert.deepEqual(b.continuations, ['  If it is dry, water it.', ' and sing.', ' x', ' y']);
  assert.equal(b.gold, 1, 'a string label is read as an index');
});

test('piqa, arc (HF and AI2 layouts), winogrande (partial evaluation) and the generic layout', () => {
  const piqa = loadTask('piqa', jsonl('piqa.jsonl', [{ goal: 'Cool a drink', sol1: 'heat it', sol2: 'add ice', label: 1 }]));
  assert.deepEqual(pairs(piqa.docs[0]!), [['Question: Cool a drink\nAnswer:', ' heat it'], ['Question: Cool a drink\nAnswer:', ' add ice']]);
  assert.equal(piqa.docs[0]!.gold, 1);

  const arc = loadTask('arc_easy', jsonl('arc.jsonl', [
    { id: 'q1', question: 'Which gives light?', choices: { text: ['the Sun', 'a rock', 'a shadow'], label: ['A', 'B', 'C'] }, answerKey: 'A' },
    { id: 'q2', question: 'Plants need', choices: { text: ['sand', 'sunlight'], label: [1, 2] }, answerKey: '2' },
    { question: { stem: 'Ice is', choices: [{ text: 'hot', label: 'A' }, { text: 'cold', label: 'B' }] }, answerKey: 'B' },
  ]));
  assert.equal(arc.layout, 'arc');
  assert.deepEqual(pairs(arc.docs[0]!)[1], ['Question: Which gives light?\nAnswer:', ' a rock']);
  assert.equal(arc.docs[0]!.gold, 0);
  assert.equal(arc.docs[1]!.gold, 1, 'numeric labels compare as strings');
  assert.deepEqual(pairs(arc.docs[2]!), [['Question: Ice is\nAnswer:', ' hot'], ['Question: Ice is\nAnswer:', ' cold']]);
  assert.equal(arc.docs[2]!.gold, 1);

  const wino = loadTask('winogrande', jsonl('wino.jsonl', [{ sentence: 'The cup fell off the table because the _ was tilted.', option1: 'cup', option2: 'table', answer: '2' }]));
  const w = wino.docs[0]!;
  // the option goes into the context; the continuation after the blank is the same for both
  assert.deepEqual(pairs(w), [
    ['The cup fell off the table because the cup', ' was tilted.'],
    ['The cup fell off the table because the table', ' was tilted.'],
  ]);
  assert.equal(w.gold, 1);
  assert.equal(w.normTexts, null, 'acc_norm is not reported for Winogrande');
  assert.equal(w.solved, 'The cup fell off the table because the table was tilted.');

  const mc = loadTask('mc', jsonl('mc.jsonl', [{ context: 'The capital of France is', choices: ['Paris', 'Berlin'], label: 0 }]));
  assert.deepEqual(pairs(mc.docs[0]!), [['The capital of France is', ' Paris'], ['The capital of France is', ' Berlin']]);

  // a name that is not a layout: the layout comes from the fields
  const detected = loadTask('my_quiz', jsonl('quiz.jsonl', [{ goal: 'g', sol1: 'a', sol2: 'b', label: 0 }]));
  assert.equal(detected.layout, 'piqa');
  assert.equal(layoutFromFields({ sentence: 's _', option1: 'a', option2: 'b', answer: '1' }), 'winogrande');
  assert.equal(layoutFromFields({ foo: 1 }), null);
});

test('the project sample files in test/fixtures-eval parse', () => {
  const dir = sampleDir;
  for (const name of ['hellaswag', 'piqa', 'arc_easy', 'winogrande', 'mc']) {
    const task = loadTask(name, join(dir, `${name}.jsonl`));
    assert.equal(task.docs.length, 3, name);
  }
  const h = loadTask('hellaswag', join(dir, 'hellaswag.jsonl')).docs[1]!;
  assert.equal(h.contexts[0], 'Home and Garden: How to water a houseplant. Check the soil first. Push a finger into the soil');
  assert.equal(h.continuations[1], '  If it feels dry an inch down, the plant needs water.');
});

test('bad task files: errors name the file and line', () => {
  const missing = jsonl('piqa.jsonl', [{ goal: 'g', sol1: 'a', sol2: 'b', label: 0 }, { goal: 'g', sol1: 'a', label: 1 }]);
  assert.equal(errorOf(() => loadTask('piqa', missing)), `supra: ${missing}:2: missing field "sol2"`);
  const badJson = jsonl('mc.jsonl', [{ context: 'c', choices: ['a', 'b'], label: 0 }, '', '{"context": "c", "choices": ']);
  assert.match(errorOf(() => loadTask('mc', badJson)), new RegExp(`${badJson}:3: not valid JSON`));
  const unknown = jsonl('x.jsonl', [{ prompt: 'p', answer: 'a' }]);
  assert.match(errorOf(() => loadTask('mystery', unknown)), new RegExp(`${unknown}:1: unknown task layout for task "mystery": fields \\["prompt","answer"\\]`));
  assert.equal(errorOf(() => loadTask('piqa', '/no/such/file.jsonl')), 'supra: /no/such/file.jsonl: task file not found (task "piqa")');
  const badKey = jsonl('arc.jsonl', [{ question: 'q', choices: { text: ['a', 'b'], label: ['A', 'B'] }, answerKey: 'E' }]);
  assert.equal(errorOf(() => loadTask('arc_challenge', badKey)), `supra: ${badKey}:1: answerKey "E" is not one of the choice labels [A, B]`);
  const badLabel = jsonl('hs.jsonl', [{ activity_label: 'a', ctx_a: 'b', ctx_b: 'c', endings: ['x', 'y'], label: '' }]);
  assert.match(errorOf(() => loadTask('hellaswag', badLabel)), new RegExp(`${badLabel}:1: field "label" must be a choice index in \\[0, 2\\), got ""`));
  const noBlank = jsonl('w.jsonl', [{ sentence: 'no blank', option1: 'a', option2: 'b', answer: '1' }]);
  assert.equal(errorOf(() => loadTask('winogrande', noBlank)), `supra: ${noBlank}:1: field "sentence" has no "_" blank`);
  const empty = jsonl('e.jsonl', ['']);
  assert.match(errorOf(() => loadTask('mc', empty)), /no items/);
  assert.deepEqual(parseTaskSpec('piqa=data/piqa.jsonl'), { name: 'piqa', path: 'data/piqa.jsonl' });
  assert.match(errorOf(() => parseTaskSpec('piqa')), /--task expects NAME=PATH/);
});

test('encodePair: trailing context whitespace moves to the continuation; an empty context starts from BOS', () => {
  assert.deepEqual(encodePair(tok, 'Q: x\nA:', ' yes'), { contextIds: chars('Q: x\nA:'), continuationIds: chars(' yes') });
  assert.deepEqual(encodePair(tok, 'Answer: ', 'no'), { contextIds: chars('Answer:'), continuationIds: chars(' no') });
  assert.deepEqual(encodePair(tok, '', 'hi'), { contextIds: [BOS], continuationIds: chars('hi') });
  assert.deepEqual(encodePair(tok, 'ab', ' c', { addBos: true }), { contextIds: [BOS, ...chars('ab')], continuationIds: chars(' c') });
});

test('a model that prefers "a": known answer, hand-computed log-likelihoods, acc vs acc_norm', () => {
  const model = preferAModel();
  const { la, lo } = preferLogProbs();
  const score = makeScorer(model, tok);
  // continuation " aaaa" = space (other) + 4 × "a"
  const r = score('Say:', ' aaaa');
  assert.equal(r.tokens, 5);
  assert.ok(Math.abs(r.logLikelihood - (lo + 4 * la)) < 1e-5, `${r.logLikelihood} vs ${lo + 4 * la}`);

  const path = jsonl('mc.jsonl', [
    // known answer: " aaa" beats " bcd" in both metrics
    { context: 'Pick:', choices: ['bcd', 'aaa'], label: 1 },
    // acc and acc_norm disagree: the short " a" has the larger log-likelihood (lo + la > lo + 4la),
    // but per character "aaaa" wins: (lo + 4la)/4 > (lo + la)/1
    { context: 'Say:', choices: ['aaaa', 'a'], label: 0 },
  ]);
  const task = loadTask('mc', path);
  const res = evaluateTask(task, score);
  assert.equal(res.n, 2);
  const [k, d] = res.items as [typeof res.items[0], typeof res.items[0]];
  assert.ok(Math.abs(k.logLikelihoods[0]! - 4 * lo) < 1e-5);
  assert.ok(Math.abs(k.logLikelihoods[1]! - (lo + 3 * la)) < 1e-5);
  assert.equal(k.pred, 1);
  assert.equal(k.predNorm, 1);
  assert.ok((lo + la) > (lo + 4 * la) && (lo + 4 * la) / 4 > (lo + la) / 1, 'the constructed case separates the metrics');
  assert.equal(d.pred, 1, 'acc picks the shorter choice');
  assert.equal(d.predNorm, 0, 'acc_norm picks the longer one');
  assert.equal(res.acc, 0.5);
  assert.equal(res.accNorm, 1);
  assert.ok(Math.abs(res.accStderr! - Math.sqrt(0.25 / 1)) < 1e-12);
  assert.equal(res.accNormStderr, 0);
  // --limit
  assert.equal(evaluateTask(task, score, { limit: 1 }).n, 1);
  model.free();
});

test('scoring with the fixture teacher equals an independent sum of log-probs; long requests lose tokens on the left', () => {
  const teacher = loadDecoder(join(gqaDir, 'teacher')).model;
  const V = teacher.config.vocab_size;
  const context = 'The trophy did not fit in the case because the trophy';
  const continuation = ' was too big.';
  const all = [...chars(context), ...chars(continuation)];
  const ref = (ids: number[], nCont: number) => {
    const logits = Float32Array.from(teacher.forward(ids.slice(0, -1), 1, ids.length - 1));
    let s = 0;
    for (let t = ids.length - nCont; t < ids.length; t++) s += logProbRef(logits, t - 1, V, ids[t]!);
    return s;
  };
  const full = makeScorer(teacher, tok)(context, continuation);
  assert.equal(full.tokens, continuation.length);
  assert.ok(Math.abs(full.logLikelihood - ref(all, continuation.length)) < 1e-4);
  // max length 20: the model sees the last 21 tokens minus the final one, as lm-eval truncates
  const cut = makeScorer(teacher, tok, { maxLength: 20 })(context, continuation);
  assert.ok(Math.abs(cut.logLikelihood - ref(all.slice(all.length - 21), continuation.length)) < 1e-4);
  assert.ok(Math.abs(cut.logLikelihood - full.logLikelihood) > 1e-4, 'truncation changes the context');
  assert.match(errorOf(() => makeScorer(teacher, tok, { maxLength: 5 })(context, continuation)), /continuation of 13 tokens is longer than the model input limit 5/);

  // a SUPRA model scores through its recurrent state; it equals the forward
  const supra = linearize(teacher, { seed: 1000 });
  const viaState = makeScorer(supra, tok, { chunk: 8 })(context, continuation);
  const logits = Float32Array.from(supra.forward(all.slice(0, -1), 1, all.length - 1));
  let s = 0;
  for (let t = context.length; t < all.length; t++) s += logProbRef(logits, t - 1, V, all[t]!);
  assert.ok(Math.abs(viaState.logLikelihood - s) < 1e-4, `${viaState.logLikelihood} vs ${s}`);
  supra.free();
  teacher.free();
});

test('few-shot: seeded, deterministic, distinct, never the item itself; "\\n\\n" between examples', () => {
  const a = new FewshotSampler(7), b = new FewshotSampler(7), c = new FewshotSampler(8);
  const draws = (s: FewshotSampler) => Array.from({ length: 20 }, (_, i) => s.sample(20, 3, i));
  const da = draws(a), db = draws(b), dc = draws(c);
  assert.deepEqual(da, db, 'same seed, same examples');
  assert.notDeepEqual(da, dc, 'another seed, other examples');
  da.forEach((shots, i) => {
    assert.equal(shots.length, 3);
    assert.equal(new Set(shots).size, 3);
    assert.ok(!shots.includes(i));
    assert.ok(shots.every((j) => j >= 0 && j < 20));
  });
  assert.deepEqual(new FewshotSampler(1).sample(2, 1, 0), [1]);
  assert.match(errorOf(() => new FewshotSampler(1).sample(3, 3, 0)), /--num-fewshot 3 needs at least 4 items/);

  const task: Task = loadTask('mc', jsonl('mc.jsonl', Array.from({ length: 6 }, (_, i) => ({ context: `Q${i}:`, choices: [`a${i}`, `b${i}`], label: i % 2 }))));
  const reqs = requestsFor(task.docs, 0, [3, 5]);
  assert.deepEqual(reqs[1], { context: 'Q3: b3\n\nQ5: b5\n\nQ0:', continuation: ' b0' });
  const wino = loadTask('winogrande', jsonl('w.jsonl', [
    { sentence: 'A _ b.', option1: 'x', option2: 'y', answer: '1' },
    { sentence: 'C _ d.', option1: 'u', option2: 'v', answer: '2' },
  ]));
  assert.deepEqual(requestsFor(wino.docs, 0, [1]), [
    { context: 'C v d.\n\nA x', continuation: ' b.' },
    { context: 'C v d.\n\nA y', continuation: ' b.' },
  ]);

  // through evaluateTask: the same seed gives the same examples and results
  const model = preferAModel();
  const score = makeScorer(model, tok);
  const r1 = evaluateTask(task, score, { numFewshot: 2, seed: 3 });
  const r2 = evaluateTask(task, score, { numFewshot: 2, seed: 3 });
  assert.deepEqual(r1.items.map((it) => it.fewshot), r2.items.map((it) => it.fewshot));
  assert.deepEqual(r1.items.map((it) => it.logLikelihoods), r2.items.map((it) => it.logLikelihoods));
  r1.items.forEach((it, i) => assert.ok(it.fewshot.length === 2 && !it.fewshot.includes(i)));
  model.free();
});

test('argmax takes the first of equal values, as numpy', () => {
  assert.equal(argmax([1, 3, 3, 2]), 1);
  assert.equal(argmax([-1]), 0);
});
