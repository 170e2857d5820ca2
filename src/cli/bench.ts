// supra bench: the speed figures of this machine in one report (see src/bench/report.ts), optionally
// saved as JSON and as line plots (decode ms/token and state memory against context, prefill tokens/s
// against length).
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { intOption, optionsHelp, parse, UsageError, type OptionSpecs } from './args.js';
import { parseBackendName } from '../core/select.js';
import type { BackendName } from '../core/backend.js';
import { defaultBenchSettings, runBenchReport, writeBenchFiles, type BenchSettings } from '../bench/report.js';
import { findPytorch } from '../bench/pytorch.js';

const OPTIONS = {
  quick: { type: 'boolean', help: 'fewer repetitions, shorter contexts and lengths, no OPENBLAS_CORETYPE table' },
  serve: { type: 'boolean', help: 'also run the loopback load test of supra serve (autocannon)' },
  browser: { type: 'boolean', help: 'also decode in headless Chromium (the system\'s chromium; SUPRA_CHROMIUM names another)\nagainst Node\'s wasm backend on the same model' },
  json: { type: 'string', value: 'FILE', help: 'write every figure as JSON (atomically)' },
  out: { type: 'string', short: 'o', value: 'DIR', help: 'write the plots there: decode_ms_per_token, decode_state_memory,\nprefill_tokens_per_s (.png and .svg)' },
  backends: { type: 'string', value: 'LIST', help: 'backends for the training/prefill sections (default wasm,native; native is\nskipped with a note when the add-on is missing); decode and serve run on the first' },
  contexts: { type: 'string', value: 'LIST', help: 'decode contexts (default 256,2048,8192,32768; --quick 256,2048)' },
  'teacher-max': { type: 'string', value: 'N', help: 'longest context the teacher decodes at (its prefill is quadratic)' },
  lengths: { type: 'string', value: 'LIST', help: 'SUPRA prefill lengths (default 1024,4096,16384; --quick 1024,4096)' },
  'no-sgemm': { type: 'boolean', help: 'skip the sgemm tables (wasm and native)' },
  'serve-seconds': { type: 'string', value: 'N', help: 'seconds of load (default 10; --quick 4)' },
  'serve-connections': { type: 'string', value: 'N', help: 'concurrent clients (default 8)' },
  pytorch: { type: 'string', value: 'auto|off|PYTHON', help: 'time PyTorch\'s uptraining step on the same model and batch (bench/pytorch-step.py): auto\n(default) uses the first of python3, /usr/bin/python3 that imports torch; or a python executable' },
} satisfies OptionSpecs;

const USAGE = `supra bench [options]\n\n${optionsHelp(OPTIONS)}`;

function intList(value: string | undefined, name: string, min: number): number[] | undefined {
  if (value === undefined) return undefined;
  const list = value.split(',').filter((s) => s.trim() !== '').map((s) => intOption(s.trim(), name, 0, min));
  if (list.length === 0) throw new UsageError(`--${name} needs a comma-separated list of integers, got "${value}"`);
  return [...list].sort((a, b) => a - b);
}

/** The report settings for the command's options (exported for the tests). */
export function benchSettingsFromArgs(argv: string[], log?: (line: string) => void): { settings: BenchSettings; json?: string; out?: string } {
  const { values, positionals } = parse(argv, OPTIONS, 'bench');
  if (positionals.length > 0) throw new UsageError(`supra bench takes no positional arguments, got "${positionals.join(' ')}"`);
  const quick = values.quick ?? false;
  const settings = defaultBenchSettings(quick, log);
  if (values.backends !== undefined) {
    const names = values.backends.split(',').filter(Boolean);
    if (names.length === 0) throw new UsageError('--backends needs wasm, native or both');
    let backends: BackendName[];
    try {
      backends = names.map((n) => parseBackendName(n, '--backends'));
    } catch (e) {
      throw new UsageError((e as Error).message.replace(/^supra: /, ''));
    }
    settings.backends = [...new Set(backends)];
  }
  const contexts = intList(values.contexts, 'contexts', 1);
  if (contexts) settings.decode.contexts = contexts;
  if (values['teacher-max'] !== undefined) settings.decode.teacherMax = intOption(values['teacher-max'], 'teacher-max', 0, 1);
  const lengths = intList(values.lengths, 'lengths', 1);
  if (lengths) settings.prefill.lengths = lengths;
  if (values['no-sgemm']) {
    settings.sgemm = null;
    settings.native = null;
  }
  if (values.serve) {
    settings.serve = {
      seconds: intOption(values['serve-seconds'], 'serve-seconds', quick ? 4 : 10, 1),
      connections: intOption(values['serve-connections'], 'serve-connections', 8, 1),
    };
  } else if (values['serve-seconds'] !== undefined || values['serve-connections'] !== undefined) {
    throw new UsageError('--serve-seconds and --serve-connections go with --serve');
  }
  if (values.browser) settings.browser = { tokens: 128, rounds: quick ? 4 : 8 };
  try {
    settings.pytorch = findPytorch(values.pytorch ?? 'auto');
  } catch (e) {
    throw new UsageError(`--pytorch: ${(e as Error).message}`);
  }
  return { settings, json: values.json && resolve(values.json), out: values.out && resolve(values.out) };
}

export const command = {
  summary: 'measure speed: sgemm GFLOP/s, training and prefill tokens/s, decode ms/token and memory against context',
  usage: USAGE,
  options: OPTIONS,
  async run(argv: string[]): Promise<void> {
    const { settings, json, out } = benchSettingsFromArgs(argv);
    // make the folders now, so a bad path fails before minutes of measuring rather than after
    if (json) mkdirSync(dirname(json), { recursive: true });
    if (out) mkdirSync(out, { recursive: true });
    const report = await runBenchReport(settings);
    for (const f of writeBenchFiles(report, { json, outDir: out })) console.log(`wrote ${f}`);
  },
};
