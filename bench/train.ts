// npm run bench:train: full SUPRA uptraining steps at real models' shapes (src/bench/train-step.ts) on the
// random-weight folders of the scale benchmark (bench/scale-folders.ts): tokens/s, the share of the step in
// matrix products, peak RSS against the trainer's memory plan. Each case runs in a child process
// (bench/scale-case.js, as the scale benchmark's), and beside each full-uptraining case,
// when a python3 with torch is on the machine, PyTorch's step on the same shape (bench/pytorch-step.py), so the
// two are compared in the same run. Writes train.json and train.md.
//   node dist/bench/train.js [--shapes smollm-135m,qwen2.5-0.5b] [--batches 1x512,4x512] [--steps 2] [--checkpointing both] ... (--help)
import { mkdirSync } from 'node:fs';
import { availableParallelism, homedir } from 'node:os';
import { join } from 'node:path';
import { choiceOption, intOption, optionsHelp, parse, UsageError, type OptionSpecs } from '../src/cli/args.js';
import { parseBackendName } from '../src/core/select.js';
import type { MatmulPrecision } from '../src/core/backend.js';
import { writeFileAtomic, writeJsonAtomic } from '../src/io/atomic.js';
import { machineInfo } from '../src/bench/report.js';
import { envText, findPytorch, PYTORCH_ENV_TEXT, PYTORCH_LEAN_ENV, runPytorchStep, type PytorchStep } from '../src/bench/pytorch.js';
import { trainMarkdown, type TrainCase, type TrainJob } from '../src/bench/train-step.js';
import { MODEL_SHAPES, runChild, scaleFolders } from './scale-folders.js';

const OPTIONS = {
  shapes: { type: 'string', value: 'LIST', help: 'model shapes, comma-separated (default smollm-135m,qwen2.5-0.5b)' },
  batches: { type: 'string', value: 'LIST', help: 'batch × sequence length of each case, e.g. 1x512,4x512 (the default)' },
  steps: { type: 'string', value: 'N', help: 'steps timed per case, after one warm-up step (default 2)' },
  checkpointing: { type: 'string', value: 'no|yes|both', help: 'run the cases without activation checkpointing, with it, or both (default no)' },
  precision: { type: 'string', value: 'f32|bf16|both', help: "the steps' matrix products at float32 (default), at BF16 (--matmul-precision bf16), or both" },
  recipe: { type: 'string', value: 'full|attention-transfer', help: 'full uptraining (default), or attention transfer (stage 1 is the warm-up step, stage 2 with\nLoRA is timed)' },
  backend: { type: 'string', value: 'wasm|native', help: 'compute backend (default: native when the add-on loads)' },
  pytorch: { type: 'string', value: 'auto|off|PYTHON', help: 'time PyTorch\'s step (no checkpointing) beside each full case: auto (default) uses the\nfirst of python3, /usr/bin/python3 that imports torch; or a python executable; off skips it' },
  cache: { type: 'string', value: 'DIR', help: 'the scale benchmark\'s folder cache (default ~/.cache/supra/scale)' },
  out: { type: 'string', value: 'DIR', help: 'where train.json and train.md are written (default bench/results)' },
  help: { type: 'boolean', short: 'h', help: 'this help' },
} satisfies OptionSpecs;

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, OPTIONS, 'bench:train');
  if (values.help) {
    console.log(`usage: npm run bench:train -- [options]\n\n${optionsHelp(OPTIONS)}`);
    return;
  }
  if (positionals.length > 0) throw new UsageError(`bench:train takes no positional arguments, got "${positionals[0]}"`);
  const shapes = (values.shapes ?? 'smollm-135m,qwen2.5-0.5b').split(',').map((s) => s.trim());
  for (const s of shapes) if (!(s in MODEL_SHAPES)) throw new UsageError(`--shapes: unknown "${s}"; one of ${Object.keys(MODEL_SHAPES).join(', ')}`);
  const batches = (values.batches ?? '1x512,4x512').split(',').map((b) => {
    const m = /^(\d+)x(\d+)$/.exec(b.trim());
    if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new UsageError(`--batches: "${b}" is not BATCHxSEQ, e.g. 4x512`);
    return { batchSize: Number(m[1]), seqLen: Number(m[2]) };
  });
  const steps = intOption(values.steps, 'steps', 2, 1);
  const checkpointing = { no: [false], yes: [true], both: [false, true] }[choiceOption(values.checkpointing, 'checkpointing', ['no', 'yes', 'both'] as const, 'no')];
  const precisions = { f32: ['f32'], bf16: ['bf16'], both: ['f32', 'bf16'] }[choiceOption(values.precision, 'precision', ['f32', 'bf16', 'both'] as const, 'f32')] as MatmulPrecision[];
  const recipe = choiceOption(values.recipe, 'recipe', ['full', 'attention-transfer'] as const, 'full');
  const backend = values.backend === undefined ? undefined : parseBackendName(values.backend, '--backend');
  const cacheDir = values.cache ?? join(homedir(), '.cache', 'supra', 'scale');
  const outDir = values.out ?? join('bench', 'results');
  let python: string | null = null;
  try {
    python = recipe === 'full' ? findPytorch(values.pytorch ?? 'auto') : null;
  } catch (e) {
    throw new UsageError(`--pytorch: ${(e as Error).message}`);
  }
  const log = (l: string) => console.log(l);
  const start = performance.now();
  const cases: TrainCase[] = [];
  const torchSteps = new Map<string, PytorchStep>();
  // PyTorch computes on every core, as supra's backends do
  const threads = availableParallelism();
  mkdirSync(cacheDir, { recursive: true });
  for (const shape of shapes) {
    log(`\n== ${shape} ==`);
    const folders = scaleFolders(shape, cacheDir, 0, (teacher, out) => runChild({ op: 'linearize', teacher, out }), log);
    for (const checkpointActivations of checkpointing) {
      for (const { batchSize, seqLen } of batches) for (const matmulPrecision of precisions) {
        const job: TrainJob = { dir: folders.supraDir, batchSize, seqLen, steps, checkpointActivations, backend, recipe, matmulPrecision };
        const c = { shape, batchSize, seqLen, checkpointActivations, recipe, matmulPrecision, ...runChild({ op: 'train', ...job }) } as TrainCase;
        // PyTorch's step has no checkpointing: one run per shape and batch, shown beside both of supra's
        const key = `${shape} ${batchSize}x${seqLen}`;
        if (python && c.status === 'ok' && !torchSteps.has(key)) torchSteps.set(key, runPytorchStep(python, join(folders.supraDir, 'config.json'), batchSize, seqLen, steps, threads));
        if (c.status === 'ok' && torchSteps.has(key)) c.pytorch = torchSteps.get(key);
        cases.push(c);
        const torch = c.pytorch?.status === 'ok' ? `; PyTorch ${c.pytorch.tokensPerS.toFixed(1)} tokens/s` : c.pytorch ? `; PyTorch: ${c.pytorch.message}` : '';
        log(`  ${batchSize} × ${seqLen}${checkpointActivations ? ', checkpointed' : ''}, ${matmulPrecision} products: ${c.status === 'ok'
          ? `${c.tokensPerS!.toFixed(1)} tokens/s (${c.secondsPerStep!.toFixed(2)} s/step), ${(100 * c.gemmShare!).toFixed(0)}% in GEMM, peak RSS ${(c.maxRssBytes! / 2 ** 30).toFixed(2)} GiB (planned ${(c.plannedBytes! / 2 ** 30).toFixed(2)})${torch}`
          : `error: ${c.message}`}`);
      }
    }
  }
  const info = machineInfo();
  const command = `npm run bench:train${argv.length ? ` -- ${argv.join(' ')}` : ''}`;
  const report = { ...info, command, steps, cases, seconds: (performance.now() - start) / 1000 };
  const torch = cases.map((c) => c.pytorch).find((p) => p?.status === 'ok');
  const header = `SUPRA uptraining steps (float32 parameters, AdamW, clipping; products at float32, or at BF16 with --matmul-precision bf16) on random-weight folders of real shapes, measured by \`${command}\` on ${info.cpuModel} (${info.cpuCount} cores), ${info.date.slice(0, 10)}.` +
    (torch?.status === 'ok'
      ? ` PyTorch: the same step (bench/pytorch-step.py, PyTorch ${torch.torch}, ${torch.threads} threads, ${PYTORCH_ENV_TEXT}) timed in this run` +
        (cases.some((c) => c.pytorch?.status === 'ok' && c.pytorch.lean) ? `; * with ${envText(PYTORCH_LEAN_ENV)} only, the glibc settings having run out of memory.` : '.')
      : '') +
    (cases.some((c) => c.bf16Products === 'rounded') ? ' bf16 (rounded): the numbers of BF16 products on a CPU without BF16 instructions (operands rounded, float32 sgemm), not their speed.' : '');
  mkdirSync(outDir, { recursive: true });
  writeJsonAtomic(join(outDir, 'train.json'), report);
  writeFileAtomic(join(outDir, 'train.md'), trainMarkdown(cases, header));
  log(`\n${trainMarkdown(cases, header)}\nwrote ${join(outDir, 'train.json')}, ${join(outDir, 'train.md')}`);
}

try {
  await main(process.argv.slice(2));
} catch (e) {
  console.error(`npm run bench:train: ${(e as Error).message}`);
  process.exitCode = e instanceof UsageError ? 2 : 1;
}
