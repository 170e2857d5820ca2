// supra train end to end: text → token cache → a tiny model trained from --init → final/ folder; SIGINT
// and --resume through the command line.
import { test } from 'node:test';
import { interruptWhen } from './helpers/interrupt.js';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadDecoder } from '../src/models/auto.js';
import { readLatest } from '../src/train/checkpoint.js';
import { MetricsLog } from '../src/train/metrics.js';
import { charTokenizerFiles, tinyConfig } from './helpers/train-data.js';

const cli = resolve(dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');

/** A workspace: tokenizer folder, tiny config (vocab 128), a text file of repeated sentences. */
function workspace(): { root: string; args: string[] } {
  const root = mkdtempSync(join(tmpdir(), 'supra-train-cli-'));
  const tok = join(root, 'tok');
  mkdirSync(tok);
  for (const [name, text] of Object.entries(charTokenizerFiles())) writeFileSync(join(tok, name), text);
  writeFileSync(join(root, 'config.json'), JSON.stringify(tinyConfig({ vocab: 128 })));
  const paragraphs = Array.from({ length: 60 }, (_, i) => `the cat sat on the mat ${i % 3}. the dog ate the log.`);
  writeFileSync(join(root, 'text.txt'), paragraphs.join('\n\n'));
  const args = [
    '--init', join(root, 'config.json'), '--tokenizer', tok, '--data', join(root, 'text.txt'), '--txt-split', 'paragraph',
    '--validation-fraction', '0.1', '--cache-dir', join(root, 'cache'), '--seq-len', '16', '--batch-size', '4', '--lr', '1e-2',
  ];
  return { root, args };
}

test('supra train on one .txt file with default data settings reads it as paragraphs; data errors name the flags', () => {
  const { root } = workspace();
  try {
    const base = ['--init', join(root, 'config.json'), '--tokenizer', join(root, 'tok'), '--cache-dir', join(root, 'cache'), '--seq-len', '16', '--batch-size', '4'];
    const r = spawnSync(process.execPath, [cli, 'train', ...base, '--data', join(root, 'text.txt'), '--out', join(root, 'out'), '--steps', '2'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /data: tokenized 60 documents/);
    assert.doesNotMatch(r.stderr, /warning: the validation split/);
    // a validation split shorter than one sequence: training runs, and says why there is no validation loss
    const short = spawnSync(process.execPath, [cli, 'train', ...base, '--seq-len', '200', '--data', join(root, 'text.txt'), '--out', join(root, 'o5'), '--steps', '1'], { encoding: 'utf8' });
    assert.equal(short.status, 0, short.stderr + short.stdout);
    assert.match(short.stderr, /warning: the validation split has \d+ tokens, fewer than --seq-len \+ 1 = 201, so no validation loss can be measured/);

    writeFileSync(join(root, 'one.txt'), 'one paragraph only, no blank line in it.\nthe same paragraph.\n');
    const one = spawnSync(process.execPath, [cli, 'train', ...base, '--data', join(root, 'one.txt'), '--out', join(root, 'o1'), '--steps', '2'], { encoding: 'utf8' });
    assert.equal(one.status, 1);
    assert.match(one.stderr, /the data is one document \(the text has no blank line, so it is one paragraph\).*or set --validation-fraction 0 to train without a validation set/);
    const whole = spawnSync(process.execPath, [cli, 'train', ...base, '--data', join(root, 'one.txt'), '--txt-split', 'file', '--out', join(root, 'o2'), '--steps', '2'], { encoding: 'utf8' });
    assert.match(whole.stderr, /split \.txt files into paragraphs with --txt-split paragraph/);
    const fraction = spawnSync(process.execPath, [cli, 'train', ...base, '--data', join(root, 'text.txt'), '--validation-fraction', '1.5', '--out', join(root, 'o3'), '--steps', '2'], { encoding: 'utf8' });
    assert.match(fraction.stderr, /--validation-fraction must be in \[0, 1\), got 1\.5/);
    const seqLen = spawnSync(process.execPath, [cli, 'train', ...base, '--data', join(root, 'one.txt'), '--validation-fraction', '0', '--seq-len', '4000', '--out', join(root, 'o4'), '--steps', '2'], { encoding: 'utf8' });
    assert.match(seqLen.stderr, /fewer than --seq-len \+ 1 = 4001; add data or lower --seq-len/);
    for (const e of [one.stderr, whole.stderr, fraction.stderr, seqLen.stderr]) assert.doesNotMatch(e, /validationFraction|txtSplit|seqLen/);
    const help = spawnSync(process.execPath, [cli, 'train', '--help'], { encoding: 'utf8' });
    assert.match(help.stdout, /--validation-fraction F +share of the documents held out for validation \(default 0\.02\)/);
    assert.match(help.stdout, /--txt-split auto\|file\|paragraph\n +a .txt file is one document/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('supra train --init: trains, evaluates, checkpoints and writes a final folder from_pretrained loads', () => {
  const { root, args } = workspace();
  try {
    const out = join(root, 'out');
    const r = spawnSync(process.execPath, [cli, 'train', ...args, '--out', out, '--steps', '30', '--warmup-steps', '3', '--save-every', '10', '--eval-every', '10', '--eval-sequences', '4', '--eval-at-start'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /step 30\/30 \| loss \d\.\d{4} \| lr \d\.\d\de-\d+ \| .* tok\/s \| ETA \d+s \| mem \d+\.\d\d GiB/);
    assert.match(r.stdout, /\n  memory: weights [\d.]+ MiB( \([^)]*\))?, gradients [\d.]+ MiB( \([^)]*\))?, AdamW moments [\d.]+ MiB( \([^)]*\))?, activations [\d.]+ MiB( \([^)]*\))?; peak ≈ [\d.]+ MiB\n/);
    assert.match(r.stdout, /completed: step 30\/30, 1,920 tokens, val_loss \d\.\d{4} → \d\.\d{4}/);
    const log = MetricsLog.read(join(out, 'metrics.jsonl'));
    const vals = log.filter((l) => l.val_loss !== undefined);
    assert.deepEqual(vals.map((l) => l.step), [0, 10, 20, 30]);
    assert.ok(vals[3]!.val_loss! < 0.6 * vals[0]!.val_loss!, `val loss ${vals[0]!.val_loss} → ${vals[3]!.val_loss}`);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) assert.ok(existsSync(join(out, 'final', f)), f);
    loadDecoder(join(out, 'final'), { strict: true }).model.free();
    assert.equal(readLatest(out)!.name, 'checkpoint-30');
    assert.ok(existsSync(join(out, 'checkpoint-30', 'tokenizer.json')));
    // resuming the finished run trains nothing: the rate shown is the one measured, not 0
    const again = spawnSync(process.execPath, [cli, 'train', '--out', out, '--resume'], { encoding: 'utf8' });
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /completed: step 30\/30, 1,920 tokens, val_loss \d\.\d{4} → \d\.\d{4}, [1-9]\d* tok\/s \(measured earlier\)/);
    // usage errors
    const bad = spawnSync(process.execPath, [cli, 'train', ...args, '--out', join(root, 'o2')], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /needs a budget: --tokens N/);
    const used = spawnSync(process.execPath, [cli, 'train', ...args, '--out', out, '--steps', '5'], { encoding: 'utf8' });
    assert.equal(used.status, 1);
    assert.match(used.stderr, /already holds a training run/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('supra train: Ctrl-C saves and exits 130; --resume continues from the checkpoint', async () => {
  const { root, args } = workspace();
  try {
    const out = join(root, 'out');
    const { code, stdout, stderr } = await interruptWhen([cli, 'train', ...args, '--out', out, '--steps', '100000', '--save-every', '0', '--eval-sequences', '0'], /step +3\/100000/);
    assert.equal(code, 130, stderr);
    assert.match(stdout, /interrupted at step \d+\/100000; continue with --resume/);
    const step = readLatest(out)!.step;
    assert.ok(step >= 3);
    const r = spawnSync(process.execPath, [cli, 'train', '--out', out, '--resume', '--stop-at', String(step + 2), '--quiet'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readLatest(out)!.step, step + 2);
    assert.equal(MetricsLog.read(join(out, 'metrics.jsonl')).length, step + 2);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
