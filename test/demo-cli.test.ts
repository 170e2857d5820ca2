// supra demo (npm start) on a tiny budget: the report, and a second run that resumes instead of failing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const cli = resolve(dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');

test('supra demo reports perplexities, and run again it resumes the run in --out with the same report', () => {
  const root = mkdtempSync(join(tmpdir(), 'supra-demo-'));
  try {
    const words = ['the', 'jury', 'said', 'that', 'city', 'election', 'was', 'held', 'in', 'county', 'court', 'report'];
    const lines: string[] = [];
    for (let d = 0; d < 120; d++) {
      const text = Array.from({ length: 30 }, (_, i) => words[(d * 7 + i * 5) % words.length]).join(' ');
      lines.push(JSON.stringify({ text: `${text}.` }));
    }
    const data = join(root, 'docs.jsonl');
    writeFileSync(data, lines.join('\n') + '\n');
    const out = join(root, 'demo');
    const args = [cli, 'demo', '--data', data, '--out', out, '--tokens', '128', '--seq-len', '16', '--batch-size', '2',
      '--eval-sequences', '2', '--max-new-tokens', '3'];
    const env = { ...process.env, SUPRA_CACHE_DIR: join(root, 'cache') };
    const first = spawnSync(process.execPath, args, { encoding: 'utf8', env });
    assert.equal(first.status, 0, first.stderr);
    assert.doesNotMatch(first.stdout, /earlier demo run/);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    assert.equal(report.uptraining.steps, 4);
    for (const key of ['teacher', 'supra_linearized', 'supra_uptrained']) assert.ok(Number.isFinite(report.perplexity[key]), key);

    const second = spawnSync(process.execPath, args, { encoding: 'utf8', env });
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stdout, /holds an earlier demo run \(checkpoint-4\): resuming it/);
    const again = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    assert.deepEqual(again.perplexity, report.perplexity);
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
    assert.match(failed.stderr, /all 1 documents went to validation; .*or set --validation-fraction 0/);
    assert.doesNotMatch(failed.stderr, /validationFraction/);

    const help = spawnSync(process.execPath, [cli, 'demo', '--help'], { encoding: 'utf8' });
    for (const flag of ['--validation-fraction', '--text-field', '--txt-split', '--cache-dir']) assert.ok(help.stdout.includes(flag), flag);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
