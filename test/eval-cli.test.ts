// `supra eval` end to end: a teacher and a SUPRA folder (fixture weights + the character tokenizer),
// perplexity and tasks; the table on stdout, plain progress lines on stderr (not a TTY), the --json
// report equal to the library's values; usage and file errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { loadDecoder } from '../src/models/auto.js';
import { linearizeFolder } from '../src/models/linearize.js';
import { documentNll } from '../src/eval/perplexity.js';
import { Progress, formatTable, fixed } from '../src/eval/report.js';
import { evaluateTask, loadTask, makeScorer } from '../src/eval/tasks.js';
import { freshDir, sampleDir, teacherFolder } from './helpers/eval.js';

const cli = resolve(dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');
const supra = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });

const teacherDir = teacherFolder();
const text = join(sampleDir, 'sample.txt');

interface Report {
  architecture: string;
  recurrent: boolean;
  perplexity: { method: string; max_length?: number; stride?: number; chunk?: number; files: Array<{ file: string; tokens: number; mean_nll: number; perplexity: number }>; overall: { tokens: number; mean_nll: number } };
  tasks: Array<{ name: string; layout: string; n: number; num_fewshot: number; acc: number; acc_norm: number | null; items: Array<{ loglikelihoods: number[]; fewshot: number[] }> }>;
}

test('supra eval on a teacher: sliding-window perplexity and tasks, table, progress and --json', () => {
  const out = join(freshDir(), 'report.json');
  const r = supra('eval', '--model', teacherDir, '--text', text, text, '--max-length', '64', '--stride', '24',
    '--task', `piqa=${join(sampleDir, 'piqa.jsonl')}`, `winogrande=${join(sampleDir, 'winogrande.jsonl')}`,
    '--task', `hellaswag=${join(sampleDir, 'hellaswag.jsonl')}`, '--num-fewshot', '1', '--seed', '5', '--json', out);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /perplexity \(sliding window 64, stride 24\)/);
  assert.match(r.stdout, /file\s+tokens\s+mean NLL\s+perplexity/);
  assert.match(r.stdout, /overall/);
  assert.match(r.stdout, /task\s+layout\s+n\s+shots\s+acc/);
  assert.match(r.stdout, /winogrande\s+winogrande\s+3\s+1\s+\d\.\d{4}\s+\d\.\d{4}\s+-\s+-/);
  assert.match(r.stderr, /perplexity .*sample\.txt: 100% \d+\/\d+ tok/);
  assert.match(r.stderr, /piqa: 100% 3\/3 items/);
  assert.ok(existsSync(out) && !existsSync(`${out}.tmp-${r.pid}`));
  const report = JSON.parse(readFileSync(out, 'utf8')) as Report;
  assert.equal(report.architecture, 'LlamaForCausalLM');
  assert.equal(report.recurrent, false);
  assert.equal(report.perplexity.method, 'sliding_window');
  assert.equal(report.perplexity.max_length, 64);

  // the same numbers through the library
  const { model } = loadDecoder(teacherDir);
  const tok = loadTokenizer(teacherDir);
  const ids = tok.encode(readFileSync(text, 'utf8'));
  const want = documentNll(model, ids, { maxLength: 64, stride: 24 });
  const f = report.perplexity.files[0]!;
  assert.equal(f.tokens, want.tokens);
  assert.equal(f.tokens, ids.length - 1);
  assert.ok(Math.abs(f.mean_nll - want.nll / want.tokens) < 1e-6);
  assert.ok(Math.abs(f.perplexity - Math.exp(want.nll / want.tokens)) < 1e-6 * f.perplexity);
  assert.equal(report.perplexity.overall.tokens, 2 * want.tokens);
  assert.ok(Math.abs(report.perplexity.overall.mean_nll - f.mean_nll) < 1e-9);

  assert.deepEqual(report.tasks.map((t) => [t.name, t.layout, t.n, t.num_fewshot]), [
    ['piqa', 'piqa', 3, 1], ['winogrande', 'winogrande', 3, 1], ['hellaswag', 'hellaswag', 3, 1],
  ]);
  const score = makeScorer(model, tok, { maxLength: 64 });
  const piqa = evaluateTask(loadTask('piqa', join(sampleDir, 'piqa.jsonl')), score, { numFewshot: 1, seed: 5 });
  assert.equal(report.tasks[0]!.acc, piqa.acc);
  assert.equal(report.tasks[0]!.acc_norm, piqa.accNorm);
  assert.deepEqual(report.tasks[0]!.items.map((it) => it.fewshot), piqa.items.map((it) => it.fewshot));
  report.tasks[0]!.items.forEach((it, i) => it.loglikelihoods.forEach((ll, c) => assert.ok(Math.abs(ll - piqa.items[i]!.logLikelihoods[c]!) < 1e-9)));
  assert.equal(report.tasks[1]!.acc_norm, null);
  model.free();
});

test('supra eval on a SUPRA folder scores the whole document in one pass', () => {
  const supraDir = join(freshDir(), 'supra');
  linearizeFolder(teacherDir, supraDir, { seed: 1000 });
  const out = join(freshDir(), 'r.json');
  const r = supra('eval', '--model', supraDir, '--text', text, '--chunk', '16', '--task', `mc=${join(sampleDir, 'mc.jsonl')}`, '--json', out);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /perplexity \(one pass with the recurrent state, 16 tokens per step\)/);
  const report = JSON.parse(readFileSync(out, 'utf8')) as Report;
  assert.equal(report.recurrent, true);
  assert.equal(report.perplexity.method, 'recurrent');
  const { model } = loadDecoder(supraDir);
  const ids = loadTokenizer(supraDir).encode(readFileSync(text, 'utf8'));
  const want = documentNll(model, ids, { method: 'window', maxLength: ids.length, stride: ids.length }); // one full forward
  assert.equal(report.perplexity.files[0]!.tokens, ids.length - 1);
  assert.ok(Math.abs(report.perplexity.files[0]!.mean_nll - want.nll / want.tokens) < 1e-5);
  assert.equal(report.tasks[0]!.n, 3);
  model.free();
});

test('supra eval errors: usage (exit 2), missing files and bad lines (exit 1, naming file and line)', () => {
  let r = supra('eval', '--text', text);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /eval needs --model <dir>/);
  r = supra('eval', '--model', teacherDir);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /needs something to evaluate/);
  r = supra('eval', '--model', teacherDir, '--task', 'piqa');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--task expects NAME=PATH/);
  r = supra('eval', '--model', teacherDir, '--text', '/no/such.txt');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /\/no\/such\.txt: text file not found/);
  const bad = join(freshDir(), 'arc.jsonl');
  writeFileSync(bad, '{"question": "q", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "A"}\n{"question": "q", "answerKey": "A"}\n');
  r = supra('eval', '--model', teacherDir, '--task', `arc_easy=${bad}`);
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`${bad}:2: missing field "choices"`));
  r = supra('eval', '--model', teacherDir, '--task', `quiz=${join(sampleDir, 'sample.txt')}`);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /sample\.txt:1: not valid JSON/);
  r = supra('eval', '--model', teacherDir, '--text', text, '--max-length', '8', '--stride', '9');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--stride 9 is larger than the window/);
  // arguments are checked before any work: no perplexity pass is thrown away
  r = supra('eval', '--model', teacherDir, '--text', text, '--task', `hellaswag=${join(sampleDir, 'hellaswag.jsonl')}`, '--num-fewshot', '5');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--num-fewshot 5 needs at least 6 items in the task file, .*hellaswag\.jsonl \(hellaswag\) has 3/);
  assert.doesNotMatch(r.stdout + r.stderr, /perplexity/);
  r = supra('eval', '--help');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /usage: supra eval --model <dir>/);
});

test('progress: plain lines every 10% off a terminal, one redrawn line on it; tables align', () => {
  const lines: string[] = [];
  const plain = new Progress('job', 20, 'items', { write: (s: string) => lines.push(s) });
  for (let i = 1; i <= 20; i++) plain.update(i);
  plain.finish();
  assert.equal(lines.length, 11, 'one line at 0-9% … 100%, each decile once'); // 1/20 = 5% → decile 0
  assert.ok(lines.every((l) => l.startsWith('job: ') && l.endsWith('\n')));
  assert.match(lines[10]!, /job: 100% 20\/20 items/);
  const tty: string[] = [];
  const bar = new Progress('job', 4, 'items', { write: (s: string) => tty.push(s), isTTY: true, columns: 100 });
  bar.update(4);
  bar.finish();
  assert.match(tty[0]!, /^\rjob \[#+\] 100% 4\/4 items/);
  assert.equal(tty[tty.length - 1], '\n');
  assert.equal(formatTable(['a', 'num'], [['xyz', '1.5'], ['b', '10.25']], ['left', 'right']), 'a      num\n---  -----\nxyz    1.5\nb    10.25');
  assert.equal(fixed(null, 2), '-');
  assert.equal(fixed(NaN, 2), 'nan');
  assert.equal(fixed(Math.PI, 3), '3.142');
});
