// The speed report behind `supra bench` and `npm run bench`: sgemm GFLOP/s (wasm on 1 and 2 threads,
// native beside OpenBLAS called directly from C), training and uptraining tokens/s, SUPRA chunked prefill
// tokens/s against length, decode ms/token and memory against context (teacher and SUPRA), and
// optionally the loopback serve load test. Each section prints as it runs (the full report takes
// minutes); runBenchReport returns every figure, writeBenchFiles saves them as JSON and line plots.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { bf16ProductsText, hasMatmulPrecision, withMatmulPrecision } from '../core/ops.js';
import type { BackendName } from '../core/backend.js';
import { createNativeBackend } from '../core/native/backend.js';
import { getBackend, setBackend } from '../core/select.js';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.js';
import { linePlotPng, linePlotSvg, type LinePlot } from '../eval/plot.js';
import { benchSgemm, type SgemmBenchResult, type SgemmShape } from './sgemm.js';
import { benchNative, type GemmShape, type NativeBenchReport } from './native.js';
import { benchPrefill, benchRecurrentDecode, benchTrainStep, benchUptrainStep, CONFIG_S, type RawConfig } from './model.js';
import { benchDecode, type DecodeRow } from './decode.js';
import { benchServe, type ServeBenchOptions, type ServeBenchResult } from './serve.js';
import { benchWeightTypes, type WeightTypesBench } from './weights.js';
import { benchBrowserDecode, type BrowserBenchResult } from './web.js';
import { findChromium, NO_CHROMIUM } from './browser.js';
import { PYTORCH_ENV_TEXT, runPytorchStep, type PytorchStep } from './pytorch.js';

/** What to measure and how long; defaultBenchSettings gives the full and the --quick report, tests shrink it. */
export interface BenchSettings {
  quick: boolean;
  /** Backends the model sections run on, in order (native is skipped with a note when the add-on is missing). */
  backends: BackendName[];
  /** The model (a config.json object) for every model section. Default configuration S. */
  config: RawConfig;
  /** wasm sgemm table; null skips it. */
  sgemm: { threadCounts: number[]; reps: number; minMs: number; shapes?: SgemmShape[] } | null;
  /** native against direct OpenBLAS; null skips it. coretypes: OPENBLAS_CORETYPE presets ([] for none). */
  native: { seconds: number; rounds: number; coretypes?: string[]; shapes?: GemmShape[] } | null;
  /** Training forward+backward and the uptraining step: batch, sequence length, best of reps. */
  train: { batch: number; seqLen: number; reps: number };
  /** SUPRA recurrent decode tokens/s over this many steps. */
  recurrentSteps: number;
  prefill: { lengths: number[]; reps: number };
  /** Decode against context, on the first backend. */
  decode: { contexts: number[]; steps: number; teacherMax?: number; interleavedRounds: number; warmupTokens: number };
  /** Loopback serve load test on the first backend; null skips it. */
  serve: Omit<ServeBenchOptions, 'print' | 'log' | 'config'> | null;
  /**
   * Batch-1 SUPRA decode with f32 and with bf16 weight matrices, on every backend (default model: the
   * SmolLM-135M shape, bench/weights.ts); null or absent skips it.
   */
  weights?: { config?: RawConfig; steps: number; rounds: number } | null;
  /** The library decoding in headless Chromium against Node's wasm backend (bench/web.ts); null or absent skips it. */
  browser?: { tokens: number; rounds: number } | null;
  /**
   * A python executable with torch: PyTorch's uptraining step on the same model and batch is timed beside
   * supra's (src/bench/pytorch.ts; best of train.reps, as supra's). Null or absent skips it.
   */
  pytorch?: string | null;
  log: (line: string) => void;
}

export function defaultBenchSettings(quick: boolean, log: (line: string) => void = (l) => console.log(l)): BenchSettings {
  return {
    quick,
    backends: ['wasm', 'native'],
    config: CONFIG_S,
    sgemm: { threadCounts: [1, 2], reps: quick ? 2 : 5, minMs: 300 },
    // the OPENBLAS_CORETYPE table spawns a process per preset and round: full report only
    native: { seconds: 0.3, rounds: quick ? 1 : 3, coretypes: quick ? [] : undefined },
    train: { batch: 8, seqLen: 256, reps: quick ? 1 : 3 },
    recurrentSteps: quick ? 64 : 256,
    prefill: { lengths: quick ? [1024, 4096] : [1024, 4096, 16384], reps: quick ? 1 : 2 },
    // the teacher's 32k prefill alone takes minutes
    decode: { contexts: quick ? [256, 2048] : [256, 2048, 8192, 32768], steps: quick ? 16 : 32, interleavedRounds: 8, warmupTokens: 256 },
    serve: null,
    weights: { steps: quick ? 8 : 16, rounds: quick ? 3 : 6 },
    log,
  };
}

export interface ModelBench {
  backend: BackendName;
  threads: number;
  batch: number;
  seqLen: number;
  /** Forward + loss + backward tokens/s. */
  trainTeacherTokensPerS: number;
  trainSupraTokensPerS: number;
  /** SUPRA forward + backward + AdamW tokens/s. */
  uptrainTokensPerS: number;
  /** The same step with BF16 products (--matmul-precision bf16), where the backend has them. */
  uptrainBf16TokensPerS?: number;
  recurrentDecodeTokensPerS: number;
  prefill: Array<{ length: number; tokensPerS: number }>;
  /** Prefill tokens/s at the longest length over that at the shortest (1 = cost linear in length). */
  prefillFlatness: number;
}

/** When and on what a report was made. */
export interface MachineInfo {
  date: string;
  node: string;
  platform: string;
  arch: string;
  cpuModel: string;
  cpuCount: number;
}

/** The machine and the moment, for a report's header. */
export function machineInfo(): MachineInfo {
  return { date: new Date().toISOString(), node: process.version, platform: process.platform, arch: process.arch, cpuModel: cpus()[0]?.model ?? 'unknown', cpuCount: cpus().length };
}

export interface BenchReport extends MachineInfo {
  quick: boolean;
  config: RawConfig;
  sgemm: { wasm: SgemmBenchResult | null; native: NativeBenchReport | null; nativeSkipped?: string };
  models: ModelBench[];
  decode: {
    backend: string;
    threads: number;
    rows: DecodeRow[];
    /** ms/token at the longest context over that at the shortest, per kind (SUPRA: interleaved timing). */
    growth: { teacher?: number; supra?: number };
  };
  serve: ServeBenchResult | null;
  /** Decode with f32, bf16 and int8 weights, one entry per backend. */
  weights: WeightTypesBench[];
  browser: BrowserBenchResult | null;
  /** PyTorch's uptraining step on the model sections' model and batch (BenchSettings.pytorch), or null. */
  pytorchUptrain: PytorchStep | null;
  /** Sections skipped and why. */
  notes: string[];
  seconds: number;
}

/** ms/token of a decode row: SUPRA's interleaved timing when there is one (least disturbed by other work). */
export const decodeMs = (r: DecodeRow): number => r.interleavedMsPerToken ?? r.msPerToken;

function growth(rows: DecodeRow[], kind: 'teacher' | 'supra'): number | undefined {
  const r = rows.filter((x) => x.kind === kind);
  return r.length < 2 ? undefined : decodeMs(r[r.length - 1]!) / decodeMs(r[0]!);
}

/** Runs every section of `settings`, printing as it goes; the selected backend is restored at the end. */
export async function runBenchReport(settings: BenchSettings): Promise<BenchReport> {
  const log = settings.log;
  const section = (title: string) => log(`\n== ${title} ==`);
  const start = performance.now();
  const original = getBackend().name;
  const notes: string[] = [];
  const nativeLoad = createNativeBackend();
  const backends = settings.backends.filter((b) => {
    if (b === 'native' && !nativeLoad.ok) {
      notes.push(`native model sections skipped: ${nativeLoad.reason}`);
      return false;
    }
    return true;
  });
  if (backends.length === 0) throw new Error('supra: bench: no backend left to run the model sections on');
  const report: BenchReport = {
    ...machineInfo(), quick: settings.quick, config: settings.config,
    sgemm: { wasm: null, native: null }, models: [], decode: { backend: '', threads: 0, rows: [], growth: {} }, serve: null, weights: [], browser: null, pytorchUptrain: null, notes, seconds: 0,
  };
  try {
    if (settings.sgemm) {
      section('sgemm, wasm backend');
      setBackend('wasm');
      report.sgemm.wasm = benchSgemm({ ...settings.sgemm, log });
    }
    if (settings.native) {
      section('sgemm, native backend (OpenBLAS) against OpenBLAS called directly from C');
      if (nativeLoad.ok) report.sgemm.native = benchNative({ ...settings.native, log });
      else {
        report.sgemm.nativeSkipped = nativeLoad.reason;
        notes.push(`native sgemm skipped: ${nativeLoad.reason}`);
        log(`  skipped: ${nativeLoad.reason}`);
      }
    }
    const { batch: B, seqLen: T, reps } = settings.train;
    const cfgName = settings.config === CONFIG_S ? 'configuration S' : 'bench configuration';
    if (settings.pytorch) {
      section(`PyTorch's uptraining step on ${cfgName} (bench/pytorch-step.py, ${PYTORCH_ENV_TEXT})`);
      // on every core, as supra's backends compute
      report.pytorchUptrain = pytorchUptrain(settings.pytorch, settings.config, B, T, reps, availableParallelism());
      const p = report.pytorchUptrain;
      log(p.status === 'ok' ? `PyTorch ${p.torch} (${p.threads} threads), B=${B} T=${T}: ${pytorchTokensPerS(p, B * T)!.toFixed(0)} tokens/s` : `PyTorch: ${p.message}`);
    }
    for (const backend of backends) {
      setBackend(backend);
      const be = getBackend();
      section(`${cfgName} on ${be.name} (${be.threads} threads)`);
      const teacher = benchTrainStep('teacher', reps, B, T, false, settings.config);
      const supra = benchTrainStep('supra', reps, B, T, false, settings.config);
      log(`training forward+backward, B=${B} T=${T}: teacher ${teacher.toFixed(0)} tokens/s, SUPRA (chunked) ${supra.toFixed(0)} tokens/s`);
      const uptrain = benchUptrainStep(reps, B, T, settings.config);
      log(`SUPRA uptraining step (forward+backward+AdamW), B=${B} T=${T}: ${uptrain.toFixed(0)} tokens/s${overPytorch(report.pytorchUptrain, B * T, uptrain)}`);
      const uptrainBf16 = hasMatmulPrecision('bf16') ? withMatmulPrecision('bf16', () => benchUptrainStep(reps, B, T, settings.config)) : undefined;
      if (uptrainBf16 !== undefined) log(`  with BF16 products (--matmul-precision bf16, ${bf16ProductsText()}): ${uptrainBf16.toFixed(0)} tokens/s${overPytorch(report.pytorchUptrain, B * T, uptrainBf16)}`);
      const recurrent = benchRecurrentDecode(settings.recurrentSteps, settings.config);
      log(`SUPRA recurrent decode, batch 1: ${recurrent.toFixed(0)} tokens/s`);
      const prefill = benchPrefill(settings.prefill.lengths, settings.prefill.reps, settings.config);
      log(`SUPRA chunked prefill, batch 1: ${prefill.map((p) => `${p.length} tokens: ${p.tokensPerS.toFixed(0)} tokens/s`).join(', ')}`);
      const flatness = prefill[prefill.length - 1]!.tokensPerS / prefill[0]!.tokensPerS;
      log(`  prefill tokens/s at ${prefill[prefill.length - 1]!.length} / at ${prefill[0]!.length}: ${flatness.toFixed(2)} (1.00 = cost linear in length)`);
      report.models.push({
        backend: be.name, threads: be.threads, batch: B, seqLen: T, trainTeacherTokensPerS: teacher, trainSupraTokensPerS: supra,
        uptrainTokensPerS: uptrain, ...(uptrainBf16 !== undefined ? { uptrainBf16TokensPerS: uptrainBf16 } : {}), recurrentDecodeTokensPerS: recurrent, prefill, prefillFlatness: flatness,
      });
    }

    // decode against context (and serve) on the backend that decoded fastest above
    const fastest = report.models.reduce((a, b) => (b.recurrentDecodeTokensPerS > a.recurrentDecodeTokensPerS ? b : a), report.models[0]!);
    setBackend(fastest.backend);
    const be = getBackend();
    section(`decode against context, batch 1, ${cfgName} (${be.name}, the faster decoder above): the teacher grows, SUPRA stays flat`);
    const rows = await benchDecode({ ...settings.decode, config: settings.config, log });
    report.decode = { backend: be.name, threads: be.threads, rows, growth: { teacher: growth(rows, 'teacher'), supra: growth(rows, 'supra') } };

    if (settings.serve) {
      section(`supra serve under load on loopback (${cfgName}, ${be.name})`);
      report.serve = await benchServe({ ...settings.serve, config: settings.config, log });
    }

    if (settings.weights) {
      const shape = settings.weights.config ? 'bench configuration' : 'the SmolLM-135M shape';
      for (const backend of backends) {
        setBackend(backend);
        const b = getBackend();
        section(`weights f32, bf16 and int8: batch-1 SUPRA decode, ${shape} (${b.name}, ${b.threads} threads)`);
        report.weights.push(benchWeightTypes({ ...settings.weights, log }));
      }
    }

    if (settings.browser) {
      section('the library in the browser (headless Chromium, wasm) against Node (wasm): batch-1 decode, the embedded teacher and its SUPRA model');
      if (!findChromium()) {
        notes.push(`browser section skipped: ${NO_CHROMIUM}`);
        log(`  skipped: ${NO_CHROMIUM}`);
      } else report.browser = await benchBrowserDecode({ ...settings.browser, log });
    }
  } finally {
    setBackend(original);
  }
  report.seconds = (performance.now() - start) / 1000;
  printSummary(report, log);
  return report;
}

const MiB = 2 ** 20;

/** Bytes briefly: KiB below a MiB (a SUPRA state of a small model), MiB above. */
function formatBytes(bytes: number): string {
  return bytes < MiB ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / MiB).toFixed(2)} MiB`;
}

/** PyTorch's best uptraining step in tokens/s (a step of batchTokens tokens), or null. */
function pytorchTokensPerS(p: PytorchStep | null, batchTokens: number): number | null {
  return p?.status === 'ok' ? batchTokens / p.bestSecondsPerStep : null;
}

/** ' (N× PyTorch's)' after an uptraining figure, when PyTorch was timed. */
function overPytorch(p: PytorchStep | null, batchTokens: number, tokensPerS: number): string {
  const torch = pytorchTokensPerS(p, batchTokens);
  return torch ? ` (${(tokensPerS / torch).toFixed(2)}× PyTorch's)` : '';
}

/** PyTorch's step on `config` (written to a temporary config.json for the script). */
function pytorchUptrain(python: string, config: RawConfig, B: number, T: number, reps: number, threads: number): PytorchStep {
  const dir = mkdtempSync(join(tmpdir(), 'supra-bench-pytorch-'));
  try {
    writeFileAtomic(join(dir, 'config.json'), JSON.stringify(config));
    return runPytorchStep(python, join(dir, 'config.json'), B, T, reps, threads);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The headline figures, one line each, after the detailed sections. */
export function printSummary(r: BenchReport, log: (line: string) => void): void {
  log('\n== summary ==');
  log(`${r.cpuModel} × ${r.cpuCount}, node ${r.node}, ${r.platform}/${r.arch}${r.quick ? ', --quick' : ''}, ${r.seconds.toFixed(0)} s`);
  if (r.sgemm.wasm) {
    const best = r.sgemm.wasm.threads.map((t, i) => `${t} thread${t > 1 ? 's' : ''} ${Math.max(...r.sgemm.wasm!.rows.map((x) => x.gflops[i]!)).toFixed(1)}`);
    log(`sgemm wasm, best GFLOP/s: ${best.join(', ')}`);
  }
  if (r.sgemm.native) {
    const rows = r.sgemm.native.shapes;
    const best = Math.max(...rows.map((x) => x.nativeGflops));
    const direct = rows.some((x) => x.directGflops !== undefined) ? `, direct OpenBLAS ${Math.max(...rows.map((x) => x.directGflops ?? 0)).toFixed(1)}` : '';
    log(`sgemm native (${r.sgemm.native.corename}, ${r.sgemm.native.threads} threads), best GFLOP/s: ${best.toFixed(1)}${direct}`);
  }
  for (const m of r.models) {
    log(`${m.backend} (${m.threads} threads), B=${m.batch} T=${m.seqLen}: train teacher ${m.trainTeacherTokensPerS.toFixed(0)}, SUPRA ${m.trainSupraTokensPerS.toFixed(0)}, ` +
      `uptrain step ${m.uptrainTokensPerS.toFixed(0)} tokens/s${overPytorch(r.pytorchUptrain, m.batch * m.seqLen, m.uptrainTokensPerS)}` +
      `${m.uptrainBf16TokensPerS !== undefined ? ` (BF16 products ${m.uptrainBf16TokensPerS.toFixed(0)}${overPytorch(r.pytorchUptrain, m.batch * m.seqLen, m.uptrainBf16TokensPerS)})` : ''}; recurrent decode ${m.recurrentDecodeTokensPerS.toFixed(0)} tokens/s; ` +
      `prefill ${m.prefill.map((p) => `${p.length}: ${p.tokensPerS.toFixed(0)}`).join(', ')} tokens/s (flatness ${m.prefillFlatness.toFixed(2)})`);
  }
  for (const kind of ['teacher', 'supra'] as const) {
    const rows = r.decode.rows.filter((x) => x.kind === kind);
    if (rows.length === 0) continue;
    const cells = rows.map((x) => `${x.context}: ${decodeMs(x).toFixed(3)} ms, ${formatBytes(x.stateBytes)}`);
    const g = r.decode.growth[kind];
    log(`decode ${kind} (${r.decode.backend}): ${cells.join('; ')}${g === undefined ? '' : `; growth ${g.toFixed(2)}×`}`);
  }
  for (const w of r.weights) {
    const [f32, bf16, int8] = w.rows;
    log(`decode weights ${w.backend} (${(w.params / 1e6).toFixed(0)} M parameters): f32 ${f32!.tokensPerS.toFixed(1)}, bf16 ${bf16!.tokensPerS.toFixed(1)} tokens/s, ` +
      `${w.ratio.toFixed(2)}× (${(bf16!.weightBytesPerToken / 1e6).toFixed(0)} MB per token at ${bf16!.effectiveGBPerS.toFixed(1)} GB/s), ` +
      `int8 ${int8!.tokensPerS.toFixed(1)} tokens/s, ${w.int8OverBf16.toFixed(2)}× bf16's (${(int8!.weightBytesPerToken / 1e6).toFixed(0)} MB per token at ${int8!.effectiveGBPerS.toFixed(1)} GB/s); ` +
      `feature maps folded ${w.foldedOverSeparate.bf16.toFixed(2)}× (bf16) and ${w.foldedOverSeparate.int8.toFixed(2)}× (int8) the separate ones' speed`);
  }
  if (r.serve) {
    const s = r.serve;
    log(`serve (${s.kind}, ${s.connections} clients): ${s.requestsPerS.toFixed(1)} req/s, ${s.generatedTokensPerS.toFixed(0)} generated tokens/s, p50 ${s.latencyP50Ms.toFixed(0)} ms, p99 ${s.latencyP99Ms.toFixed(0)} ms, errors ${s.errors}`);
  }
  if (r.browser) {
    const cells = r.browser.rows.map((x) => `${x.model} ${x.browserTokensPerS.toFixed(0)} vs ${x.nodeTokensPerS.toFixed(0)} tokens/s (${(100 * x.ratio).toFixed(0)}%)`);
    log(`browser decode (${r.browser.browserThreads} threads) vs Node wasm (${r.browser.nodeThreads}): ${cells.join(', ')}`);
  }
  for (const n of r.notes) log(`note: ${n}`);
}

/** The report's line plots, by file stem. */
export function benchPlots(r: BenchReport): Record<string, LinePlot> {
  const plots: Record<string, LinePlot> = {};
  const kinds = [['teacher', 'teacher (KV cache)'], ['supra', 'SUPRA (recurrent)']] as const;
  const decodeSeries = (y: (x: DecodeRow) => number) =>
    kinds
      .map(([kind, name]) => {
        const rows = r.decode.rows.filter((x) => x.kind === kind);
        return { name, x: rows.map((x) => x.context), y: rows.map(y) };
      })
      .filter((s) => s.x.length > 0);
  if (r.decode.rows.length > 0) {
    plots.decode_ms_per_token = {
      title: `Decode time per token against context, batch 1 (${r.decode.backend})`, xLabel: 'context (tokens)', yLabel: 'ms / token',
      series: decodeSeries(decodeMs), yMin: 0,
    };
    plots.decode_state_memory = {
      title: 'Decoding state memory against context, batch 1', xLabel: 'context (tokens)', yLabel: 'state MiB',
      series: decodeSeries((x) => x.stateBytes / MiB), yMin: 0,
    };
  }
  if (r.models.length > 0) {
    plots.prefill_tokens_per_s = {
      title: 'SUPRA chunked prefill throughput against length, batch 1', xLabel: 'prompt length (tokens)', yLabel: 'tokens / s',
      series: r.models.map((m) => ({ name: `${m.backend} (${m.threads} threads)`, x: m.prefill.map((p) => p.length), y: m.prefill.map((p) => p.tokensPerS) })),
      yMin: 0,
    };
  }
  return plots;
}

/** Writes the report as JSON (atomically) and its plots as PNG and SVG under `outDir`; returns the paths written. */
export function writeBenchFiles(r: BenchReport, where: { json?: string; outDir?: string }): string[] {
  const written: string[] = [];
  if (where.json) {
    mkdirSync(dirname(where.json), { recursive: true });
    writeJsonAtomic(where.json, r);
    written.push(where.json);
  }
  if (where.outDir) {
    mkdirSync(where.outDir, { recursive: true });
    for (const [stem, plot] of Object.entries(benchPlots(r))) {
      const png = join(where.outDir, `${stem}.png`), svg = join(where.outDir, `${stem}.svg`);
      writeFileAtomic(png, linePlotPng(plot));
      writeFileAtomic(svg, linePlotSvg(plot));
      written.push(png, svg);
    }
  }
  return written;
}
