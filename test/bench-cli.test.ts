// `supra bench` on tiny settings: every section runs (sgemm, native when the add-on loads, training,
// prefill, decode against context, a one-second serve load test), the JSON holds the figures, the plots
// are written as PNG and SVG; option parsing and usage errors of the command.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getBackend } from '../src/core/select.js';
import { createNativeBackend } from '../src/core/native/backend.js';
import { benchPlots, defaultBenchSettings, runBenchReport, writeBenchFiles, type BenchReport, type BenchSettings } from '../src/bench/report.js';
import { benchSettingsFromArgs } from '../src/cli/bench.js';
import { findPytorch } from '../src/bench/pytorch.js';
import { UsageError } from '../src/cli/args.js';
import { freshDirs, tempRoot } from './helpers/tmp.js';

const freshDir = freshDirs(tempRoot('supra-bench-test-'));
const cli = resolve(dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');

// 2 layers, GQA (4 query heads on 2 kv heads), head size 8: milliseconds per section
const TINY = {
  architectures: ['LlamaForCausalLM'], vocab_size: 64, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2,
  num_attention_heads: 4, num_key_value_heads: 2, rms_norm_eps: 1e-5, rope_theta: 10000, max_position_embeddings: 512,
  tie_word_embeddings: false,
};

function tinySettings(log: (line: string) => void): BenchSettings {
  return {
    quick: true,
    backends: [getBackend().name],
    config: TINY,
    sgemm: { threadCounts: [1, 2], reps: 1, minMs: 0, shapes: [{ name: 'n=32', m: 32, n: 32, k: 32, transA: false, transB: false }] },
    native: { seconds: 0.001, rounds: 1, coretypes: [], shapes: [{ label: 'n=32', m: 32, n: 32, k: 32, transA: false, transB: false }] },
    train: { batch: 2, seqLen: 16, reps: 1 },
    recurrentSteps: 4,
    prefill: { lengths: [16, 48], reps: 1 },
    decode: { contexts: [8, 100], steps: 3, interleavedRounds: 1, warmupTokens: 4 },
    serve: { seconds: 1, connections: 2, maxTokens: 2, promptTokens: 4, concurrency: 2 },
    weights: { config: TINY, steps: 2, rounds: 1 },
    // PyTorch's step beside supra's where this machine has torch (src/bench/pytorch.ts)
    pytorch: findPytorch('auto'),
    log,
  };
}

test('the bench report on tiny settings: every section, the JSON fields and the PNG/SVG plots', async () => {
  const lines: string[] = [];
  const before = getBackend().name;
  const report = await runBenchReport(tinySettings((l) => lines.push(l)));
  assert.equal(getBackend().name, before, 'the selected backend is restored');
  const dir = freshDir();
  const json = join(dir, 'sub', 'bench.json');
  const written = writeBenchFiles(report, { json, outDir: join(dir, 'plots') });
  assert.ok(written.includes(json));
  const r = JSON.parse(readFileSync(json, 'utf8')) as BenchReport;
  const positive = (x: unknown, what: string) => assert.ok(typeof x === 'number' && Number.isFinite(x) && x > 0, `${what}: ${String(x)}`);

  // sgemm: wasm on 1 and 2 threads; native beside direct when the add-on loads, else a reason
  assert.equal(r.sgemm.wasm!.backend, 'wasm');
  assert.deepEqual(r.sgemm.wasm!.threads, [1, 2]);
  assert.equal(r.sgemm.wasm!.rows.length, 1);
  r.sgemm.wasm!.rows[0]!.gflops.forEach((g, i) => positive(g, `wasm gflops[${i}]`));
  if (createNativeBackend().ok) {
    assert.equal(r.sgemm.native!.shapes.length, 1);
    positive(r.sgemm.native!.shapes[0]!.nativeGflops, 'native gflops');
    if (r.sgemm.native!.directSkipped === undefined) positive(r.sgemm.native!.shapes[0]!.directGflops, 'direct gflops');
  } else {
    assert.equal(r.sgemm.native, null);
    assert.ok(r.sgemm.nativeSkipped && r.notes.some((n) => n.includes('native')));
  }

  if (findPytorch('auto')) {
    assert.equal(r.pytorchUptrain?.status, 'ok', JSON.stringify(r.pytorchUptrain));
    assert.ok(lines.some((l) => /uptraining step .* tokens\/s \(\d+\.\d\d× PyTorch's\)/.test(l)), lines.join('\n'));
  } else assert.equal(r.pytorchUptrain, null);

  // training, uptraining, recurrent decode and prefill on the selected backend
  assert.equal(r.models.length, 1);
  const m = r.models[0]!;
  assert.equal(m.backend, before);
  assert.deepEqual([m.batch, m.seqLen], [2, 16]);
  for (const k of ['trainTeacherTokensPerS', 'trainSupraTokensPerS', 'uptrainTokensPerS', 'recurrentDecodeTokensPerS', 'prefillFlatness'] as const) positive(m[k], k);
  assert.deepEqual(m.prefill.map((p) => p.length), [16, 48]);
  m.prefill.forEach((p) => positive(p.tokensPerS, `prefill ${p.length}`));
  assert.ok(Math.abs(m.prefillFlatness - m.prefill[1]!.tokensPerS / m.prefill[0]!.tokensPerS) < 1e-9);

  // decode against context: both kinds at both contexts; the teacher's KV cache grows, SUPRA's state does not
  const rows = (kind: string) => r.decode.rows.filter((x) => x.kind === kind);
  assert.deepEqual(rows('teacher').map((x) => x.context), [8, 100]);
  assert.deepEqual(rows('supra').map((x) => x.context), [8, 100]);
  for (const x of r.decode.rows) {
    positive(x.msPerToken, 'ms/token');
    positive(x.stateBytes, 'state bytes');
    positive(x.rssBytes, 'rss');
  }
  assert.ok(rows('teacher')[1]!.stateBytes > rows('teacher')[0]!.stateBytes, 'the KV cache grows with the context (past its first 64 positions)');
  assert.equal(rows('supra')[1]!.stateBytes, rows('supra')[0]!.stateBytes, 'the SUPRA state does not');
  positive(rows('supra')[0]!.interleavedMsPerToken, 'interleaved ms/token');
  positive(r.decode.growth.teacher, 'teacher growth');
  positive(r.decode.growth.supra, 'supra growth');

  // the serve load test answered requests without errors
  assert.ok(r.serve && r.serve.requests > 0, 'serve completed requests');
  assert.equal(r.serve!.errors, 0);
  // decode with f32, bf16 and int8 weights: the tokens/s, their ratios, bf16 half the bytes, int8 about a quarter
  assert.equal(r.weights.length, 1);
  const w = r.weights[0]!;
  // as loaded by default (f32 separate, bf16 and int8 folded), then bf16 and int8 the other way round
  assert.deepEqual(w.rows.map((x) => `${x.dtype} ${x.featureMaps}`), ['f32 separate', 'bf16 folded', 'int8 folded', 'bf16 separate', 'int8 separate']);
  assert.ok(Math.abs(w.foldedOverSeparate.bf16 - w.rows[1]!.tokensPerS / w.rows[3]!.tokensPerS) < 1e-9);
  assert.ok(Math.abs(w.foldedOverSeparate.int8 - w.rows[2]!.tokensPerS / w.rows[4]!.tokensPerS) < 1e-9);
  // folding reads the teacher's attention bytes: the kernels' square matrices fewer
  const kernels = TINY.num_hidden_layers * ((TINY.hidden_size) ** 2 + (TINY.num_key_value_heads * TINY.hidden_size / TINY.num_attention_heads) ** 2);
  assert.equal(w.rows[3]!.weightBytesPerToken - w.rows[1]!.weightBytesPerToken, 2 * kernels);
  w.rows.forEach((x) => positive(x.tokensPerS, `${x.dtype} tokens/s`));
  assert.ok(Math.abs(w.ratio - w.rows[1]!.tokensPerS / w.rows[0]!.tokensPerS) < 1e-9);
  assert.ok(Math.abs(w.int8OverBf16 - w.rows[2]!.tokensPerS / w.rows[1]!.tokensPerS) < 1e-9);
  assert.ok(w.rows[1]!.weightBytesPerToken < 0.6 * w.rows[0]!.weightBytesPerToken, 'vectors stay f32; matrices halve');
  assert.ok(w.rows[2]!.weightBytesPerToken < 0.35 * w.rows[0]!.weightBytesPerToken, 'int8 matrices: 34 bytes per 32 values');
  assert.deepEqual(r.config, TINY);
  assert.equal(r.quick, true);
  positive(r.seconds, 'seconds');

  // the plots: three line plots, each as PNG (signature) and SVG
  assert.deepEqual(Object.keys(benchPlots(report)).sort(), ['decode_ms_per_token', 'decode_state_memory', 'prefill_tokens_per_s']);
  for (const stem of ['decode_ms_per_token', 'decode_state_memory', 'prefill_tokens_per_s']) {
    const png = join(dir, 'plots', `${stem}.png`), svg = join(dir, 'plots', `${stem}.svg`);
    assert.ok(existsSync(png) && existsSync(svg), stem);
    assert.deepEqual([...readFileSync(png).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    assert.match(readFileSync(svg, 'utf8'), /<svg[\s\S]*<\/svg>\s*$/);
  }
  const decodeSvg = readFileSync(join(dir, 'plots', 'decode_ms_per_token.svg'), 'utf8');
  assert.ok(decodeSvg.includes('SUPRA (recurrent)') && decodeSvg.includes('teacher (KV cache)'), 'both series in the legend');

  // the printed report: section headers and the summary
  const text = lines.join('\n');
  for (const s of ['== sgemm, wasm backend ==', '== decode against context', '== supra serve under load', '== weights f32, bf16 and int8', '== summary ==', 'decode supra', 'decode teacher', 'decode weights']) {
    assert.ok(text.includes(s), `report lacks "${s}"`);
  }
});

test('supra bench options: --quick, lists, --serve, --no-sgemm; usage errors', () => {
  const { settings, json, out } = benchSettingsFromArgs(['--quick', '--contexts', '2048,256', '--lengths', '512', '--serve', '--no-sgemm', '--json', 'b.json', '--out', 'plots', '--backends', 'native', '--pytorch', 'off']);
  assert.equal(settings.pytorch, null);
  assert.throws(() => benchSettingsFromArgs(['--pytorch', join(freshDir(), 'no-python')]), /--pytorch: .*no-python cannot import torch/);
  assert.equal(settings.quick, true);
  assert.deepEqual(settings.decode.contexts, [256, 2048]);
  assert.deepEqual(settings.prefill.lengths, [512]);
  assert.deepEqual(settings.backends, ['native']);
  assert.equal(settings.sgemm, null);
  assert.equal(settings.native, null);
  assert.deepEqual(settings.serve, { seconds: 4, connections: 8 });
  assert.equal(json, resolve('b.json'));
  assert.equal(out, resolve('plots'));
  const full = benchSettingsFromArgs([]).settings;
  const quick = defaultBenchSettings(true);
  assert.deepEqual(full.decode.contexts, [256, 2048, 8192, 32768]);
  assert.deepEqual(quick.decode.contexts, [256, 2048]);
  assert.equal(full.serve, null);
  assert.deepEqual(full.native!.coretypes, undefined, 'the full report measures the OPENBLAS_CORETYPE presets');
  assert.deepEqual(quick.native!.coretypes, []);
  assert.throws(() => benchSettingsFromArgs(['--backends', 'cuda']), UsageError);
  assert.throws(() => benchSettingsFromArgs(['--contexts', '0,256']), UsageError);
  assert.throws(() => benchSettingsFromArgs(['--serve-seconds', '3']), /go with --serve/);
  assert.throws(() => benchSettingsFromArgs(['extra']), UsageError);

  const help = spawnSync(process.execPath, [cli, 'bench', '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /supra bench \[options\]\n\n  --quick  /);
  const bad = spawnSync(process.execPath, [cli, 'bench', '--frobnicate'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /supra bench: Unknown option '--frobnicate'/);
});
