// supra demo (npm start) on a tiny budget: the report, and a second run that resumes instead of failing.
import { test } from 'node:test';
import { interruptWhen } from './helpers/interrupt.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const cli = resolve(dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');
const teacher = resolve(dirname(fileURLToPath(import.meta.url)), '../../assets/teacher');

/** A small JSONL corpus of 120 short documents. */
function writeDocs(path: string): void {
  const words = ['the', 'jury', 'said', 'that', 'city', 'election', 'was', 'held', 'in', 'county', 'court', 'report'];
  const lines: string[] = [];
  for (let d = 0; d < 120; d++) {
    const text = Array.from({ length: 30 }, (_, i) => words[(d * 7 + i * 5) % words.length]).join(' ');
    lines.push(JSON.stringify({ text: `${text}.` }));
  }
  writeFileSync(path, lines.join('\n') + '\n');
}

test('supra demo reports perplexities, and run again it resumes the run in --out with the same report', () => {
  const root = mkdtempSync(join(tmpdir(), 'supra-demo-'));
  try {
    const data = join(root, 'docs.jsonl');
    writeDocs(data);
    const out = join(root, 'demo');
    const args = [cli, 'demo', '--data', data, '--out', out, '--tokens', '128', '--seq-len', '16', '--batch-size', '2',
      '--eval-sequences', '2', '--max-new-tokens', '3', '--probe-samples', '2'];
    const env = { ...process.env, SUPRA_CACHE_DIR: join(root, 'cache') };
    const first = spawnSync(process.execPath, args, { encoding: 'utf8', env });
    assert.equal(first.status, 0, first.stderr);
    assert.doesNotMatch(first.stdout, /earlier demo run/);
    assert.match(first.stdout, /training on 128 tokens \(--tokens\) = 0\.\d\d epochs of [\d,]+ training tokens/);
    assert.doesNotMatch(first.stdout, /warning/);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    assert.equal(report.uptraining.steps, 4);
    for (const key of ['teacher', 'supra_linearized', 'supra_uptrained']) assert.ok(Number.isFinite(report.perplexity[key]), key);
    // the recall scores of both models beside the perplexities, in the report and in the table
    assert.equal(report.recall.settings.samples, 2);
    for (const who of ['teacher', 'model']) {
      for (const key of ['copyFirstLoss', 'copySecondLoss', 'copySaved']) assert.ok(Number.isFinite(report.recall[who][key]), `${who} ${key}`);
      for (const key of ['mqarAccuracy', 'passkeyAccuracy']) assert.ok(report.recall[who][key] >= 0 && report.recall[who][key] <= 1, `${who} ${key}`);
    }
    assert.match(first.stdout, /\| model \| validation perplexity \| copy, gap 128 \| MQAR, 16 pairs \| passkey, 256 tokens \|/);
    assert.match(first.stdout, /\| teacher \(softmax attention\) \| [\d.]+ \| -?[\d.]+ nats \| [\d.]+ \| [\d.]+ \|/);

    const second = spawnSync(process.execPath, args, { encoding: 'utf8', env });
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stdout, /holds an earlier demo run \(checkpoint-4\): resuming it/);
    const again = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    assert.deepEqual(again.perplexity, report.perplexity);
    assert.deepEqual(again.recall, report.recall);
    // nothing was trained the second time: the report keeps the measured throughput
    assert.ok(report.uptraining.tokens_per_s > 0);
    assert.equal(again.uptraining.tokens_per_s, report.uptraining.tokens_per_s);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('supra demo: the default budget is said with its epochs and a warning; Ctrl-C writes no report, says the command that continues, exits 130', async () => {
  const root = mkdtempSync(join(tmpdir(), 'supra-demo-int-'));
  try {
    // a teacher folder without training.json: the demo falls back to its default budget
    const bare = join(root, 'teacher');
    mkdirSync(bare);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(teacher, f), join(bare, f));
    const data = join(root, 'docs.jsonl');
    writeDocs(data);
    const out = join(root, 'demo');
    const args = ['demo', '--teacher', bare, '--data', data, '--out', out, '--seq-len', '16', '--batch-size', '2', '--eval-sequences', '2'];
    const { code, stdout, stderr } = await interruptWhen([cli, ...args], /step +20\//, { ...process.env, SUPRA_CACHE_DIR: join(root, 'cache') });
    assert.equal(code, 130, stderr + stdout);
    assert.match(stdout, /training on 250,000 tokens \(default budget: the teacher has no training\.json; --tokens sets it\) = [\d.]+ epochs of [\d,]+ training tokens/);
    assert.match(stdout, /warning: 249,984 tokens = [\d.]+ epochs of [\d,]+ training tokens \(more than 4\)/);
    const command = `supra demo --teacher ${bare} --data ${data} --out ${out} --seq-len 16 --batch-size 2 --eval-sequences 2`;
    assert.ok(stdout.includes(`no report written; continue with: ${command}`), stdout);
    assert.doesNotMatch(stdout, /\| model \||SUPRA after uptraining/);
    assert.ok(!existsSync(join(out, 'report.json')));
    assert.match(readFileSync(join(out, 'latest'), 'utf8'), /^checkpoint-\d+\n$/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('supra demo: a validation split shorter than one sequence is named with the flags that fix it, before any work', () => {
  const root = mkdtempSync(join(tmpdir(), 'supra-demo-shortval-'));
  try {
    const paragraphs = Array.from({ length: 60 }, (_, i) => `The jury said that the city election ${i} was held in the county court.`);
    const notes = join(root, 'notes.txt');
    writeFileSync(notes, paragraphs.join('\n\n') + '\n');
    const args = ['--data', notes, '--out', join(root, 'demo'), '--tokens', '32', '--batch-size', '2', '--eval-sequences', '2', '--cache-dir', join(root, 'cache')];
    // about 15 validation tokens: not one sequence of 64 + 1
    const short = spawnSync(process.execPath, [cli, 'demo', ...args, '--seq-len', '64'], { encoding: 'utf8' });
    assert.equal(short.status, 1, short.stderr);
    assert.match(short.stderr, /validation split has \d+ tokens, fewer than --seq-len \+ 1 = 65/);
    assert.match(short.stderr, /--validation-fraction/);
    const none = spawnSync(process.execPath, [cli, 'demo', ...args, '--seq-len', '16', '--validation-fraction', '0'], { encoding: 'utf8' });
    assert.equal(none.status, 1, none.stderr);
    assert.match(none.stderr, /--validation-fraction 0 holds no validation split; the demo measures perplexity on one/);
    assert.doesNotMatch(short.stdout + none.stdout, /teacher validation perplexity/);
    assert.equal(existsSync(join(root, 'demo')), false, 'nothing written');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('supra demo on one .txt file reads it as paragraphs; it takes the data flags of train, and errors name them', () => {
  const root = mkdtempSync(join(tmpdir(), 'supra-demo-txt-'));
  try {
    const paragraphs = Array.from({ length: 40 }, (_, i) => `The jury said that the city election ${i} was held in the county court.`);
    const notes = join(root, 'notes.txt');
    writeFileSync(notes, paragraphs.join('\n\n') + '\n');
    const args = ['--out', join(root, 'demo'), '--tokens', '32', '--seq-len', '16', '--batch-size', '2', '--eval-sequences', '2', '--max-new-tokens', '3', '--cache-dir', join(root, 'cache')];
    const r = spawnSync(process.execPath, [cli, 'demo', '--data', notes, ...args], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /data: tokenized 40 documents/);

    const one = join(root, 'one.txt');
    writeFileSync(one, 'A single paragraph of notes.\n');
    const failed = spawnSync(process.execPath, [cli, 'demo', '--data', one, ...args], { encoding: 'utf8' });
    assert.equal(failed.status, 1);
    assert.match(failed.stderr, /the data is one document.*or set --validation-fraction 0/);
    assert.doesNotMatch(failed.stderr, /validationFraction/);

    const help = spawnSync(process.execPath, [cli, 'demo', '--help'], { encoding: 'utf8' });
    for (const flag of ['--validation-fraction', '--text-field', '--txt-split', '--cache-dir']) assert.ok(help.stdout.includes(flag), flag);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
