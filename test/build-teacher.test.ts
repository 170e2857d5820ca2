// scripts/build-teacher.mjs (npm run build:teacher): a build stopped part-way, in either stage, and resumed
// with --resume stores the same teacher, to the bit, as one that ran straight through. Tiny budgets (a few
// optimizer steps a stage) and no probes keep it quick; the recipe is the full one otherwise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getBackend } from '../src/core/select.js';
import { freshDirs, tempRoot } from './helpers/tmp.js';

const here = dirname(fileURLToPath(import.meta.url)); // dist/test
const root = resolve(here, '../..');
const fresh = freshDirs(tempRoot('supra-build-teacher-'));

function spawnBuild(run: string, asset: string, ...extra: string[]) {
  return spawnSync(
    process.execPath,
    ['scripts/build-teacher.mjs', '--out', run, '--asset', asset, '--stage1-tokens', '8192', '--stage2a-tokens', '8192', '--stage2a-steps', '2', '--stage2-tokens', '4096', ...extra],
    // one thread: products round the same in every run (native threads split some sums)
    { cwd: root, encoding: 'utf8', env: { ...process.env, SUPRA_BACKEND: getBackend().name, SUPRA_THREADS: '1' } },
  );
}

function build(run: string, asset: string, ...extra: string[]) {
  const r = spawnBuild(run, asset, '--skip-probes', ...extra);
  assert.equal(r.status, 0, `build-teacher ${extra.join(' ')}: ${r.stderr}\n${r.stdout.slice(-2000)}`);
  return r.stdout;
}

test('build-teacher: stopped in stage 1, stage 2a and stage 2, resumed, it stores the same teacher as a build straight through', () => {
  const straight = fresh(), stopped = fresh();
  build(join(straight, 'run'), join(straight, 'asset'));
  const first = build(join(stopped, 'run'), join(stopped, 'asset'), '--stop-at', 'stage1:2');
  assert.match(first, /stage1 stopped before the end of its budget/);
  assert.ok(!existsSync(join(stopped, 'run', 'grown')) && !existsSync(join(stopped, 'asset')), 'nothing after the stop ran');
  // a second run without --resume refuses to overwrite a finished stage, but this one is unfinished: --resume
  const inStage2a = build(join(stopped, 'run'), join(stopped, 'asset'), '--resume', '--stop-at', 'stage2a:1');
  assert.match(inStage2a, /stage2a stopped before the end of its budget/);
  assert.ok(!existsSync(join(stopped, 'run', 'grown')), 'stage 2a stopped before the growth');
  const second = build(join(stopped, 'run'), join(stopped, 'asset'), '--resume', '--stop-at', 'stage2:1');
  assert.match(second, /stage2 stopped before the end of its budget/);
  build(join(stopped, 'run'), join(stopped, 'asset'), '--resume');
  const bytes = (dir: string) => readFileSync(join(dir, 'asset', 'model.safetensors'));
  assert.ok(bytes(straight).equals(bytes(stopped)), 'the resumed build stored different weights');
  const card = (dir: string) => JSON.parse(readFileSync(join(dir, 'asset', 'training.json'), 'utf8')) as Record<string, unknown>;
  const a = card(straight), b = card(stopped);
  assert.equal(b.final_val_loss, a.final_val_loss);
  assert.equal(b.pretraining_tokens, 8192 + 2 * 2048 + 4096);
  assert.equal(b.language_pretraining_tokens, 4096, 'budgets count the language stage');
  assert.equal(String(b.command).replaceAll(stopped, ''), String(a.command).replaceAll(straight, ''), 'the card records the build command without --resume and --stop-at');
  assert.equal(b.probes, null);
  // stage 1 raced two seeds on one thread each; without probes the first seed's run grows
  assert.deepEqual(b.stage1_formed, { seed: 1, candidate_seeds: [1, 2], step: 4, copy_margin: null, first_check: 1000, check_every: 250, min_copy_margin: 6 });
  const stages = b.stages as Array<{ name: string; supra_train: string; tokens: number }>;
  assert.deepEqual(stages.map((s) => [s.name, s.tokens]), [['stage1', 8192], ['stage2a', 4096], ['stage2', 4096]]);
  assert.match(stages[0]!.supra_train, /^SUPRA_THREADS=1 supra train .*--seed 1 /);
  // stage 2a stops part-way along its schedule, on the next seed's data
  assert.match(stages[1]!.supra_train, /--tokens 8192 --stop-at 2 .*--seed 2 /);
  // a stop step at or past the end of stage 2a's schedule: a usage error
  const badStop = spawnSync(process.execPath, ['scripts/build-teacher.mjs', '--out', join(fresh(), 'run'), '--stage2a-tokens', '4096', '--stage2a-steps', '2'], { cwd: root, encoding: 'utf8' });
  assert.equal(badStop.status, 2);
  assert.match(badStop.stderr, /--stage2a-steps must be a whole number ≥ 1 below the 2 steps of --stage2a-tokens 4096, got 2/);
  // bad --stop-at: a usage error before any work
  const bad = spawnSync(process.execPath, ['scripts/build-teacher.mjs', '--out', join(fresh(), 'run'), '--stop-at', 'stage3:5'], { cwd: root, encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--stop-at expects STAGE:STEP/);
  const badSeed = spawnSync(process.execPath, ['scripts/build-teacher.mjs', '--out', join(fresh(), 'run'), '--seed', '1.5'], { cwd: root, encoding: 'utf8' });
  assert.equal(badSeed.status, 2);
  assert.match(badSeed.stderr, /--seed expects a whole number, got 1\.5/);
});

test('build-teacher: a stage 1 that did not form the copying circuit stops the build before stage 2, saying what to do', () => {
  const dir = fresh();
  // four optimizer steps: far too few for the circuit
  const r = spawnBuild(join(dir, 'run'), join(dir, 'asset'));
  assert.equal(r.status, 1, r.stdout.slice(-2000));
  assert.match(r.stderr, /stage 1 \(.*stage1, seeds 1, 2\) did not form the copying circuit: the second copy of a span is at most -?\d+\.\d\d nats easier than the first \(at gaps 0 and 32\), under the 6 needed/);
  assert.match(r.stderr, /another --seed or a larger --stage1-tokens/);
  assert.ok(!existsSync(join(dir, 'run', 'grown')) && !existsSync(join(dir, 'run', 'stage2')) && !existsSync(join(dir, 'asset')), 'nothing after stage 1 ran');
});
