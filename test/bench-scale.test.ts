// The scale benchmark's logic on the tiny shape only (the real shapes belong to npm run bench:scale): its
// options, a whole run with its report files and the cache reused, and a model the memory check refuses
// reported as "does not fit" with the estimate instead of a crash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { freshDirs, tempRoot } from './helpers/tmp.js';
import { hasMatmulPrecision } from '../src/core/ops.js';
import { UsageError } from '../src/cli/args.js';
import { saveCheckpoint } from '../src/io/checkpoint.js';
import { writeJsonAtomic } from '../src/io/atomic.js';
import { PAIRED_ROUNDS, runScaleJob, scaleMarkdown, type ScaleCase, type ScaleReport } from '../src/bench/scale.js';
import { parseScaleArgs, SCALE_OPTIONS } from '../src/cli/bench-scale.js';

const here = dirname(fileURLToPath(import.meta.url)); // dist/test
const scaleScript = resolve(here, '../bench/scale.js');
const randomModelScript = resolve(here, '../../scripts/random-model.mjs');
const fresh = freshDirs(tempRoot('supra-bench-scale-'));
const SHAPES = ['tiny', 'smollm-135m', 'qwen2.5-0.5b', 'tinyllama-1.1b', 'mistral-7b'];

test('bench:scale options: defaults, lists, and bad values named', () => {
  const d = parseScaleArgs([], SHAPES);
  assert.deepEqual(d.shapes, ['smollm-135m', 'qwen2.5-0.5b', 'tinyllama-1.1b']);
  assert.deepEqual(d.dtypes, ['f32', 'bf16', 'int8']);
  assert.deepEqual(d.kinds, ['teacher', 'supra']);
  assert.equal(d.bandwidthBytes, 2 ** 30);
  const s = parseScaleArgs(['--shapes', 'tiny,smollm-135m', '--dtypes', 'bf16', '--kinds', 'supra', '--decode', '4', '--prefill', '8', '--bandwidth-size', '64MiB'], SHAPES);
  assert.deepEqual([s.shapes, s.dtypes, s.kinds, s.decodeTokens, s.prefillTokens, s.bandwidthBytes], [['tiny', 'smollm-135m'], ['bf16'], ['supra'], 4, 8, 64 * 2 ** 20]);
  assert.throws(() => parseScaleArgs(['--shapes', 'gpt-5'], SHAPES), (e: Error) => e instanceof UsageError && /--shapes: unknown "gpt-5"/.test(e.message));
  assert.throws(() => parseScaleArgs(['--dtypes', 'f8'], SHAPES), /--dtypes: unknown "f8"/);
  assert.throws(() => parseScaleArgs(['--decode', '0'], SHAPES), /--decode must be an integer ≥ 1/);
  assert.throws(() => parseScaleArgs(['--bandwidth-size', '4GiB'], SHAPES), /under 4GiB/);
  assert.throws(() => parseScaleArgs(['--fast'], SHAPES), UsageError);
  // every option is documented in the README beside the command
  const readme = readFileSync(resolve(here, '../../README.md'), 'utf8');
  for (const name of Object.keys(SCALE_OPTIONS)) assert.ok(readme.includes(`--${name}`), `README.md lacks bench:scale's --${name}`);
});

test('bench:scale on the tiny shape: every case in its own process, JSON and markdown written, the folders reused', async () => {
  const cache = fresh(), out = fresh();
  const args = [scaleScript, '--shapes', 'tiny', '--cache', cache, '--out', out, '--bandwidth-size', '8MiB', '--bandwidth-passes', '1', '--decode', '2', '--prefill', '4'];
  const first = spawnSync(process.execPath, args, { encoding: 'utf8' });
  assert.equal(first.status, 0, first.stderr);
  const report = JSON.parse(readFileSync(join(out, 'scale.json'), 'utf8')) as ScaleReport;
  assert.ok(report.bandwidth.bestGBPerS > 0 && report.bandwidth.runs.every((b) => b.bytes === 8 * 2 ** 20));
  // measured again before the model's cases; the bound takes the best of every measure
  assert.deepEqual(report.bandwidth.before!.map((b) => b.shape), ['tiny']);
  const measures = [...report.bandwidth.runs, ...report.bandwidth.before!].map((b) => b.bestGBPerS);
  assert.equal(report.bandwidth.bestGBPerS, Math.max(...measures));
  const [model] = report.models;
  assert.equal(model!.shape, 'tiny');
  assert.ok(model!.linearize && 'seconds' in model!.linearize && model!.linearize.maxRssBytes > 0);
  assert.deepEqual(model!.cases.map((c) => `${c.kind} ${c.dtype} ${c.status}`),
    ['teacher f32 ok', 'teacher bf16 ok', 'teacher int8 ok', 'supra f32 ok', 'supra bf16 ok', 'supra int8 ok']);
  for (const c of model!.cases.filter((x) => x.status === 'ok')) {
    assert.ok(c.loadSeconds! >= 0 && c.maxRssBytes! > 0 && c.prefillTokensPerS! > 0 && c.decodeTokensPerS! > 0 && c.firstTokensPerS! > 0, JSON.stringify(c));
    assert.ok(Math.abs(c.percentOfBound! - (100 * c.decodeTokensPerS!) / c.boundTokensPerS!) < 1e-9);
    assert.ok(Math.abs(c.boundTokensPerS! - (report.bandwidth.bestGBPerS * 1e9) / c.weightBytesPerToken!) < 1e-6);
    // on native, decode beside the bandwidth read in the case's own process: the median round's percentage
    if (c.backend === 'native') {
      const p = c.paired!;
      assert.equal(p.bandwidthGBPerS.length, PAIRED_ROUNDS);
      const rounds = p.bandwidthGBPerS.map((gbs, r) => (100 * p.decodeTokensPerS[r]! * c.weightBytesPerToken!) / (gbs * 1e9)).sort((a, b) => a - b);
      assert.ok(Math.abs(p.percentOfBound - rounds[Math.floor(PAIRED_ROUNDS / 2)]!) < 1e-9, JSON.stringify(p));
    } else assert.equal(c.paired, undefined);
  }
  // SUPRA cases load as a user loads them: feature maps folded at bf16 and int8, separate at f32; a teacher has none
  assert.deepEqual(model!.cases.map((c) => c.featureMaps ?? '-'), ['-', '-', '-', 'separate', 'folded', 'folded']);
  // a SUPRA model's decode is measured again 32k tokens in; a teacher's is not
  for (const c of model!.cases.filter((x) => x.status === 'ok')) assert.equal(c.farDecodeTokensPerS! > 0, c.kind === 'supra', JSON.stringify(c));
  // a SUPRA token's products alone: every layer's (q/k/v, o, gate/up, down, each at least one call) and lm_head's;
  // a teacher's are not split
  for (const c of model!.cases.filter((x) => x.status === 'ok')) {
    if (c.kind !== 'supra') assert.equal(c.products, undefined);
    else assert.ok(c.products!.calls >= 4 * 2 + 1 && c.products!.tokensPerS > 0 && c.products!.shareOfStep > 0, JSON.stringify(c));
  }
  // eval and serve ran on both folders at bf16, the folders' own type, as a user runs them
  assert.deepEqual(model!.commands!.map((c) => `${c.kind} ${c.dtype} ${c.command} ${c.status}`),
    ['teacher bf16 eval ok', 'teacher bf16 serve ok', 'supra bf16 eval ok', 'supra bf16 serve ok']);
  assert.match(model!.commands![0]!.detail!, /^perplexity \d+ over 255 tokens$/); // 256 words: 255 predicted
  assert.match(model!.commands![1]!.detail!, /8 tokens streamed in \d+ pieces, the first after/);
  // bf16 matrices are half the bytes per token of f32 ones, int8 ones (34 bytes per 32 values) about 0.27
  const bytes = (kind: string, dtype: string) => model!.cases.find((c) => c.kind === kind && c.dtype === dtype)!.weightBytesPerToken!;
  assert.ok(bytes('supra', 'bf16') < 0.6 * bytes('supra', 'f32'));
  assert.ok(bytes('supra', 'int8') < 0.65 * bytes('supra', 'bf16'));
  // folded, a SUPRA model reads the teacher's attention matrices (and its kernels' two bias vectors a layer)
  assert.ok(bytes('supra', 'bf16') - bytes('teacher', 'bf16') < 0.01 * bytes('teacher', 'bf16'), `${bytes('supra', 'bf16')} vs ${bytes('teacher', 'bf16')}`);
  const md = readFileSync(join(out, 'scale.md'), 'utf8');
  assert.equal(md, scaleMarkdown(report));
  assert.match(md, /\| tiny \| SUPRA \| int8 \| [\d.]+ \| /);
  assert.match(md, /--shapes tiny --cache/);
  assert.match(md, /\| tiny \| SUPRA \| bf16 \| serve \| ok: started in/);
  // the header names the loop that measured the bandwidth: the add-on's where it loads
  const { defaultBandwidthLoop } = await import('../src/bench/bandwidth.js');
  assert.match(report.bandwidth.runs[0]!.method, defaultBandwidthLoop() === 'native' ? /^native add-on, / : /^wasm SIMD/);
  assert.ok(md.includes(`Read bandwidth (${report.bandwidth.runs[0]!.method}, 8 MiB per pass`), md.split('\n')[4]);
  const second = spawnSync(process.execPath, [...args, '--no-commands'], { encoding: 'utf8' });
  assert.equal(second.status, 0, second.stderr);
  const again = JSON.parse(readFileSync(join(out, 'scale.json'), 'utf8')) as ScaleReport;
  assert.equal(again.models[0]!.linearize, null);
  assert.equal(again.models[0]!.generateSeconds, null);
  assert.deepEqual(again.models[0]!.commands, []);
});

test('bench:scale: a model the memory check refuses is "does not fit" with the estimate, nothing allocated', () => {
  // a Mistral-7B config a hundred times deeper (1.4 TB at bf16, more than any arena or machine here) over
  // a one-tensor file: the check reads the config only, before any weight
  const dir = fresh();
  const r = spawnSync(process.execPath, ['-e', `import(${JSON.stringify(pathToFileURL(randomModelScript).href)}).then((m) => console.log(JSON.stringify(m.randomModelConfig('mistral-7b'))))`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  writeJsonAtomic(join(dir, 'config.json'), { ...JSON.parse(r.stdout), num_hidden_layers: 3200 });
  saveCheckpoint(dir, [{ name: 'model.norm.weight', shape: [4096], data: new Float32Array(4096) }]);
  const result = runScaleJob({ op: 'case', dir, kind: 'teacher', dtype: 'bf16', prefillTokens: 4, decodeTokens: 2 });
  assert.equal(result.status, 'does-not-fit');
  assert.ok((result.needBytes as number) > 1.3e12 && (result.needBytes as number) < 1.5e12, String(result.needBytes));
  assert.match(String(result.message), /parameters need 1[23]\d\d\.\d\d GiB/);
  const report = { command: 'x', date: '2026-01-01', cpuModel: 'cpu', cpuCount: 1, node: 'v20', platform: 'linux', arch: 'x64', seconds: 1,
    settings: { shapes: ['mistral-7b'], dtypes: ['bf16'], kinds: ['teacher'], prefillTokens: 4, decodeTokens: 2, bandwidthBytes: 1, bandwidthPasses: 1, seed: 0, commands: false },
    bandwidth: { runs: [], bestGBPerS: 1 },
    models: [{ shape: 'mistral-7b', params: 7.2e9, teacherDir: dir, supraDir: dir, teacherBytes: 0, generateSeconds: null, linearize: null, cases: [{ kind: 'teacher', dtype: 'bf16', ...result } as ScaleCase] }],
  } as ScaleReport;
  assert.match(scaleMarkdown(report), /\| mistral-7b \| teacher \| bf16 \| does not fit: needs 1[23]\d\d\.\d\d GiB/);
});

test('bench:train on the tiny shape: a case per batch (and checkpointed), its report, bad options refused', () => {
  const trainScript = resolve(here, '../bench/train.js');
  const root = fresh();
  const r = spawnSync(process.execPath, [trainScript, '--shapes', 'tiny', '--batches', '1x16,2x8', '--steps', '1', '--checkpointing', 'both', '--pytorch', 'off', '--cache', join(root, 'cache'), '--out', join(root, 'out')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const report = JSON.parse(readFileSync(join(root, 'out', 'train.json'), 'utf8')) as { cases: Record<string, unknown>[] };
  assert.deepEqual(report.cases.map((c) => [c.batchSize, c.seqLen, c.checkpointActivations, c.status]), [[1, 16, false, 'ok'], [2, 8, false, 'ok'], [1, 16, true, 'ok'], [2, 8, true, 'ok']]);
  for (const c of report.cases) {
    assert.ok((c.tokensPerS as number) > 0 && (c.gemmShare as number) > 0 && (c.gemmShare as number) < 1, JSON.stringify(c));
    assert.ok((c.maxRssBytes as number) > (c.plannedBytes as number), 'the process holds at least the planned bytes');
  }
  const md = readFileSync(join(root, 'out', 'train.md'), 'utf8');
  assert.match(md, /\| tiny \| full \| 1 × 16 \| yes \| f32 \| [\d.]+ \| [\d.]+ \| — \| \d+% \| [\d.]+ MiB \| [\d.]+ MiB \|/);
  // BF16 products: a case where the backend has them, else the trainer's refusal as the case's error
  const bf16 = spawnSync(process.execPath, [trainScript, '--shapes', 'tiny', '--batches', '1x16', '--steps', '1', '--precision', 'bf16', '--pytorch', 'off', '--cache', join(root, 'cache'), '--out', join(root, 'bf16')], { encoding: 'utf8' });
  assert.equal(bf16.status, 0, bf16.stderr + bf16.stdout);
  const bf16Md = readFileSync(join(root, 'bf16', 'train.md'), 'utf8');
  // the child runs on this test's backend (SUPRA_BACKEND)
  if (hasMatmulPrecision('bf16')) assert.match(bf16Md, /\| tiny \| full \| 1 × 16 \| no \| bf16 \((amx|avx512bf16|rounded)\) \| [\d.]+ \| [\d.]+ \| — \| \d+% \|/);
  else assert.match(bf16Md, /\| tiny \| full \| 1 × 16 \| no \| bf16 \| error: supra: train: --matmul-precision bf16 needs the native backend/);
  // the memory-light recipe: stage 1 warms up, a stage-2 step (LoRA and kernels) is timed
  const lora = spawnSync(process.execPath, [trainScript, '--shapes', 'tiny', '--batches', '1x16', '--steps', '1', '--recipe', 'attention-transfer', '--cache', join(root, 'cache'), '--out', join(root, 'lora')], { encoding: 'utf8' });
  assert.equal(lora.status, 0, lora.stderr + lora.stdout);
  assert.match(readFileSync(join(root, 'lora', 'train.md'), 'utf8'), /\| tiny \| attention transfer \+ LoRA \| 1 × 16 \| no \| f32 \| [\d.]+ \| [\d.]+ \| — \| \d+% \| [\d.]+ MiB \| [\d.]+ MiB \|/);
  const badRecipe = spawnSync(process.execPath, [trainScript, '--recipe', 'lora'], { encoding: 'utf8' });
  assert.equal(badRecipe.status, 2);
  assert.match(badRecipe.stderr, /--recipe/);
  const bad = spawnSync(process.execPath, [trainScript, '--batches', '4by512'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--batches: "4by512" is not BATCHxSEQ/);
  const readme = readFileSync(resolve(here, '../../README.md'), 'utf8');
  assert.ok(readme.includes('npm run bench:train'), 'README.md shows bench:train');
});
