// Checkpoints you can trust: exact resume, SIGKILL during a save, SIGINT, keeping the last K.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../src/io/safetensors.js';
import { loadDecoder } from '../src/models/auto.js';
import { listCheckpoints, readLatest } from '../src/train/checkpoint.js';
import { MetricsLog } from '../src/train/metrics.js';
import { train, type TrainOptions } from '../src/train/trainer.js';
import { failSaveAt } from './helpers/save-faults.js';
import { MemoryBatches, repeatedText, tinyConfig } from './helpers/train-data.js';

const tmp = (tag: string) => mkdtempSync(join(tmpdir(), `supra-ckpt-${tag}-`));
const childScript = join(dirname(fileURLToPath(import.meta.url)), 'helpers', 'train-child.js');
const data = () => new MemoryBatches(repeatedText(4000, 23, 32), repeatedText(600, 23, 32), 16, 0);
/** Same settings as helpers/train-child.ts. */
const base = (out: string, extra: Partial<TrainOptions> = {}): TrainOptions => ({
  init: tinyConfig(), data: data(), out, steps: 6, batchSize: 2, lr: 1e-2, evalSequences: 0, quiet: true, ...extra,
});

function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

test('resume is exact: 3 steps + 3 resumed steps give bit-identical losses and weights to 6 steps (SUPRA, kernel lr, accum, eval)', async () => {
  const whole = tmp('whole');
  const split = tmp('split');
  try {
    const recipe = { init: tinyConfig({ supra: true }), kernelLr: 3e-2, gradAccum: 2, warmupSteps: 2, evalSequences: 4, evalEvery: 2 };
    const a = await train(base(whole, recipe));
    const b1 = await train(base(split, { ...recipe, stopAt: 3 }));
    assert.equal(b1.status, 'stopped');
    assert.equal(b1.step, 3);
    assert.equal(readLatest(split)!.name, 'checkpoint-3');
    assert.ok(!existsSync(join(split, 'final')));
    const b2 = await train(base(split, { ...recipe, resume: true }));
    assert.equal(b2.status, 'completed');
    assert.equal(a.losses.length, 6);
    assert.deepEqual(b2.losses, a.losses, 'losses step for step');
    assert.equal(b2.finalValLoss, a.finalValLoss);
    const wa = readSafetensors(join(whole, 'final', 'model.safetensors'));
    const wb = readSafetensors(join(split, 'final', 'model.safetensors'));
    for (const [name, t] of wa) assert.ok(bitsEqual(t.data as Float32Array, wb.get(name)!.data as Float32Array), `${name} differs`);
    const oa = readSafetensors(join(whole, 'checkpoint-6', 'optimizer.safetensors'));
    const ob = readSafetensors(join(split, 'checkpoint-6', 'optimizer.safetensors'));
    for (const [name, t] of oa) assert.ok(bitsEqual(t.data as Float32Array, ob.get(name)!.data as Float32Array), `optimizer ${name} differs`);
    // the metrics log reads as one run
    const la = MetricsLog.read(join(whole, 'metrics.jsonl')).map(({ tokens_per_s: _, ...r }) => r);
    const lb = MetricsLog.read(join(split, 'metrics.jsonl')).map(({ tokens_per_s: _, ...r }) => r);
    assert.deepEqual(lb, la);
    // resuming with a different recipe is refused
    await assert.rejects(train(base(split, { ...recipe, lr: 5e-3, resume: true })), /lr is 0.005, the checkpoint's run used 0.01/);
  } finally {
    rmSync(whole, { recursive: true, force: true });
    rmSync(split, { recursive: true, force: true });
  }
});

test('checkpoints: every --save-every steps, the newest --keep kept, latest names the newest; a fresh run refuses a used folder', async () => {
  const out = tmp('keep');
  try {
    const r = await train(base(out, { steps: 10, saveEvery: 2, keep: 2 }));
    assert.deepEqual(listCheckpoints(out).map((c) => c.name), ['checkpoint-8', 'checkpoint-10']);
    assert.equal(readFileSync(join(out, 'latest'), 'utf8'), 'checkpoint-10\n');
    assert.equal(r.checkpoint, join(out, 'checkpoint-10'));
    const dir = join(out, 'checkpoint-8');
    assert.deepEqual(readdirSync(dir).sort(), ['config.json', 'model.safetensors', 'optimizer.safetensors', 'trainer_state.json']);
    const state = readLatest(out)!.state;
    assert.equal(state.step, 10);
    assert.equal(state.tokens, 10 * 2 * 16);
    assert.equal(state.metrics.losses.length, 10);
    assert.deepEqual(state.data, { epoch: 0, cursor: 20, seed: 0 });
    assert.equal(state.settings.lr, 1e-2);
    // a checkpoint is also a model folder
    loadDecoder(dir, { strict: true }).model.free();
    await assert.rejects(train(base(out)), /already holds a training run \(latest: checkpoint-10\)/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

interface Child {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run the child trainer; `onOutput` sees stdout/stderr as they grow and may signal the child. */
function runChild(args: Record<string, unknown>, onOutput?: (text: string, kill: (s: NodeJS.Signals) => void) => void): Promise<Child> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [childScript, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    const look = () => onOutput?.(stdout + stderr, (s) => child.kill(s));
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      look();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      look();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

function resultOf(c: Child): { status: string; step: number; losses: number[] } {
  const line = c.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  assert.ok(line, `child printed no result; stderr:\n${c.stderr}`);
  return JSON.parse(line.slice(7));
}

test('SIGKILL during a save never leaves a broken latest checkpoint, and the run resumes exactly', async () => {
  const reference = tmp('ref');
  const expected = (await train(base(reference, { saveEvery: 2 }))).losses;
  rmSync(reference, { recursive: true, force: true });
  for (const phase of ['files', 'latest']) {
    const out = tmp(`kill-${phase}`);
    try {
      let killed = false;
      const c = await runChild({ out, saveEvery: 2, quiet: true, pauseSave: `${phase}@4` }, (text, kill) => {
        if (!killed && text.includes(`save of checkpoint-4 paused at ${phase}`)) {
          killed = true;
          kill('SIGKILL');
        }
      });
      assert.equal(c.signal, 'SIGKILL', `the child should have been killed mid-save; stderr:\n${c.stderr}`);
      // what the kill left: a temp folder (files) or an uncommitted checkpoint-4 (latest)
      const names = readdirSync(out);
      if (phase === 'files') assert.ok(names.some((n) => n.startsWith('.tmp-checkpoint-4-')), names.join(', '));
      else assert.ok(names.includes('checkpoint-4'), names.join(', '));
      const latest = readLatest(out)!;
      assert.equal(latest.name, 'checkpoint-2', 'latest still names the previous complete checkpoint');
      assert.equal(latest.state.step, 2);
      loadDecoder(latest.dir, { strict: true }).model.free();
      // resume (in a child too) and finish: the losses are those of the uninterrupted run
      const r = await runChild({ out, saveEvery: 2, quiet: true, resume: true });
      assert.equal(r.code, 0, r.stderr);
      const result = resultOf(r);
      assert.equal(result.status, 'completed');
      assert.deepEqual(result.losses, expected);
      assert.ok(!readdirSync(out).some((n) => n.startsWith('.tmp-')), 'stale temp folders are cleaned');
      assert.deepEqual(listCheckpoints(out).map((x) => x.step), [2, 4, 6]);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }
});

test('SIGINT saves a checkpoint at the current step and exits 130; --resume continues', async () => {
  const out = tmp('sigint');
  try {
    let sent = false;
    const c = await runChild({ out, steps: 100000, saveEvery: 0, logEvery: 1, quiet: false }, (text, kill) => {
      if (!sent && /step +3\/100000/.test(text)) {
        sent = true;
        kill('SIGINT');
      }
    });
    assert.equal(c.code, 130, `exit ${c.code} ${c.signal}; stderr:\n${c.stderr}`);
    assert.match(c.stderr, /interrupt: saving a checkpoint/);
    const result = resultOf(c);
    assert.equal(result.status, 'interrupted');
    assert.ok(result.step >= 3);
    const latest = readLatest(out)!;
    assert.equal(latest.name, `checkpoint-${result.step}`);
    assert.equal(latest.state.metrics.losses.length, result.step);
    assert.equal(MetricsLog.read(join(out, 'metrics.jsonl')).length, result.step);
    const r = await runChild({ out, steps: 100000, resume: true, quiet: true, stopAt: result.step + 2 });
    assert.equal(r.code, 0, r.stderr);
    const resumed = resultOf(r);
    assert.equal(resumed.status, 'stopped');
    assert.equal(resumed.step, result.step + 2);
    assert.deepEqual(resumed.losses.slice(0, result.step), result.losses);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('an aborted signal saves a checkpoint at the current step and returns "interrupted"', async () => {
  const out = tmp('abort');
  try {
    const controller = new AbortController();
    const r = await train(base(out, { signal: controller.signal, hooks: { afterBackward: (step) => void (step === 2 && controller.abort()) } }));
    assert.equal(r.status, 'interrupted');
    assert.equal(r.step, 3, 'the step under way finishes');
    assert.equal(r.finalDir, null);
    assert.equal(readLatest(out)!.name, 'checkpoint-3');
    const rest = await train(base(out, { resume: true }));
    assert.equal(rest.status, 'completed');
    assert.equal(rest.losses.length, 6);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('a save that fails (full disk) removes its partial files, names the path and what is intact; --resume continues', async () => {
  const reference = tmp('ref-full');
  const expected = (await train(base(reference, { saveEvery: 2 }))).losses;
  rmSync(reference, { recursive: true, force: true });
  const cases: [string, RegExp][] = [
    ['files@4', /^supra: could not save checkpoint to (\S+)\/checkpoint-4: no space left on device; removed the partial save; \1\/latest \(checkpoint-2, step 2\) is intact; free space and rerun with --resume$/],
    ['latest@4', /^supra: could not save checkpoint to (\S+)\/checkpoint-4: no space left on device; removed the partial save; \1\/latest \(checkpoint-2, step 2\) is intact; free space and rerun with --resume$/],
    ['final', /^supra: could not save the final model to (\S+)\/final: no space left on device; removed the partial save; \1\/latest \(checkpoint-6, step 6\) is intact; free space and rerun with --resume$/],
  ];
  for (const [spec, message] of cases) {
    const out = tmp('full');
    try {
      await assert.rejects(train(base(out, { saveEvery: 2, hooks: { duringSave: failSaveAt(spec) } })), (e: Error) => {
        assert.match(e.message, message);
        assert.equal((e as Error & { cause?: { code?: string } }).cause?.code, 'ENOSPC');
        return true;
      });
      const names = readdirSync(out);
      assert.ok(!names.some((n) => n.includes('.tmp-') || n.startsWith('.trash-')), `partial files left: ${names.join(', ')}`);
      if (spec !== 'final') assert.ok(!names.includes('checkpoint-4'), 'the uncommitted checkpoint-4 is removed');
      assert.ok(!names.includes('final'));
      const r = await train(base(out, { saveEvery: 2, resume: true }));
      assert.equal(r.status, 'completed');
      assert.deepEqual(r.losses, expected);
      assert.ok(existsSync(join(out, 'final', 'model.safetensors')));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }
  // a first save that fails says that no checkpoint exists yet
  const out = tmp('full-first');
  try {
    await assert.rejects(
      train(base(out, { saveEvery: 2, hooks: { duringSave: failSaveAt('files@2') } })),
      /checkpoint-2: no space left on device; removed the partial save; no earlier checkpoint was saved; free space and rerun$/,
    );
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('starting or resuming a run removes temp files a killed run left (temp folders, latest.tmp-<pid>)', async () => {
  const out = tmp('stale');
  try {
    await train(base(out, { stopAt: 2, saveEvery: 2 }));
    mkdirSync(join(out, '.tmp-checkpoint-4-99999'));
    writeFileSync(join(out, '.tmp-checkpoint-4-99999', 'model.safetensors'), Buffer.alloc(1024));
    writeFileSync(join(out, 'latest.tmp-99999'), 'checkpoint-4\n');
    writeFileSync(join(out, 'metrics.jsonl.tmp-99999'), '');
    await train(base(out, { resume: true, stopAt: 3 }));
    assert.deepEqual(readdirSync(out).filter((n) => n.includes('tmp')), []);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
