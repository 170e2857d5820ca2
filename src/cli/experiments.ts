// supra experiments (npm run experiments): the small-scale reproduction of the paper's findings. Plans
// the runs (src/experiments/plan.ts), runs the missing ones as child processes (`--jobs` at a time,
// longest first), then writes docs/results.md from every run's result.json. Interrupt it at any time:
// finished runs are kept (cached by their settings) and an interrupted run resumes from its checkpoint.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, mkdirSync, createWriteStream } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../io/config.js';
import { parameterShapes } from '../models/decoder.js';
import { intOption, optionsHelp, parse, UsageError, type OptionSpecs } from './args.js';
import { getBackend } from '../core/select.js';
import { hasMatmulPrecision } from '../core/ops.js';
import { EMBEDDED_TEACHER_DIR, teacherPretrainingTokens } from '../models/embedded.js';
import { embeddedCorpusVersion } from '../train/data/corpus.js';
import { openTokenBatches } from '../train/data/index.js';
import { EVAL_DEFAULTS, STUDY_DEFAULTS, runCost, runKey, studyPlan, type RunSpec, type StudyOptions } from '../experiments/plan.js';
import { executeRun, RESULT_FILE, type RunResult } from '../experiments/run.js';
import { writeReport, type TeacherSummary } from '../experiments/report.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));
const DATA_INPUTS = ['@embedded'];
const SPLIT_SEED = 0; // the teacher's own split: its validation documents were held out from its pretraining

const OPTIONS = {
  out: { type: 'string', value: 'DIR', help: 'where each run keeps its folder <run>-<key> (default runs/experiments)' },
  report: { type: 'string', value: 'FILE', help: 'the results page to write once every run has a result (default docs/results.md;\nfigures go beside it)' },
  jobs: { type: 'string', value: 'N', help: 'runs at a time (default 2, or 1 on one core); the cores are shared out as threads' },
  seeds: { type: 'string', value: 'LIST', help: 'the seeds to run (default 0,1): a seed sets the initialisation and data order,\nnever the split' },
  only: { type: 'string', value: 'TEXT', help: 'run just the runs whose name contains TEXT (the page is written only when all are done)' },
  list: { type: 'boolean', help: 'print every run, done or pending, with its folder, and stop' },
  'report-only': { type: 'boolean', help: 'train nothing: write the page from the results already there (exit 1 if any is missing)' },
  'keep-models': { type: 'boolean', help: "keep each run's trained model (<run folder>/train) instead of deleting it after measuring" },
} satisfies OptionSpecs;

/** The parent's own flag for a child process (not for users, so not in --help). */
const WORKER_OPTION = { worker: { type: 'string' } } as const;

const usage = `supra experiments [options]\n\n${optionsHelp(OPTIONS)}`;

/** "native (1 thread, OpenBLAS Haswell)", or "... BF16 products: rounded)" for a BF16 run, for the results page. */
function describeBackend(f: Record<string, string | number>): string {
  const threads = f.threads === undefined ? '' : `${f.threads} thread${f.threads === 1 ? '' : 's'}`;
  const details = [threads, f.openblas === undefined ? '' : `OpenBLAS ${f.openblas}`, f.bf16Products === undefined ? '' : `BF16 products: ${f.bf16Products}`]
    .filter(Boolean).join(', ');
  return details ? `${f.backend} (${details})` : String(f.backend);
}

/** The teacher's size for the results page, from its config (the model's own parameter shapes; no weights read). */
function describeTeacher(dir: string): TeacherSummary {
  const c = loadConfig(dir);
  let n = 0;
  for (const shape of parameterShapes(c).values()) n += shape.reduce((a, b) => a * b, 1);
  return { parameters: n, layers: c.num_hidden_layers, heads: c.num_attention_heads, kvHeads: c.num_key_value_heads, headDim: c.head_dim };
}

function parseSeeds(value: string | undefined): number[] {
  if (value === undefined) return STUDY_DEFAULTS.seeds;
  const seeds = value.split(',').map((s) => Number(s.trim()));
  if (seeds.length === 0 || seeds.some((s) => !Number.isInteger(s) || s < 0)) throw new UsageError(`--seeds must be non-negative integers separated by commas, got "${value}"`);
  return seeds;
}

interface Planned {
  spec: RunSpec;
  key: string;
  dir: string;
}

function readResult(p: Planned): RunResult | null {
  const path = join(p.dir, RESULT_FILE);
  if (!existsSync(path)) return null;
  try {
    const r = JSON.parse(readFileSync(path, 'utf8')) as RunResult;
    return r.key === p.key ? r : null;
  } catch (e) {
    throw new Error(`supra: ${path}: unreadable result (${(e as Error).message}); delete it to redo the run`);
  }
}

/** Run one planned run in a child process; its output lines are prefixed with the run's id. */
function runChild(p: Planned, argv: string[], threads: number): Promise<number> {
  return new Promise((resolveExit, reject) => {
    mkdirSync(p.dir, { recursive: true });
    const log = createWriteStream(join(p.dir, 'log.txt'), { flags: 'a' });
    const child = spawn(process.execPath, [MAIN, 'experiments', '--worker', p.spec.id, '--backend', getBackend().name, ...argv], {
      env: { ...process.env, SUPRA_THREADS: String(threads) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const pipe = (stream: NodeJS.ReadableStream, out: NodeJS.WritableStream) => {
      let buffered = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        log.write(chunk);
        buffered += chunk.replace(/\r/g, '\n');
        const lines = buffered.split('\n');
        buffered = lines.pop()!;
        for (const line of lines) if (line.trim()) out.write(`[${p.spec.id}] ${line}\n`);
      });
    };
    pipe(child.stdout!, process.stdout);
    pipe(child.stderr!, process.stderr);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      log.end();
      resolveExit(code ?? (signal ? 130 : 1));
    });
  });
}

export const command = {
  summary: 'reproduce the paper\'s findings at small scale: budget curve, from scratch, ablations, probes → docs/results.md',
  usage,
  options: OPTIONS,
  async run(argv: string[]): Promise<void> {
    const { values } = parse(argv, { ...OPTIONS, ...WORKER_OPTION }, 'experiments');
    const out = resolve(values.out ?? 'runs/experiments');
    const reportPath = resolve(values.report ?? 'docs/results.md');
    const teacherDir = EMBEDDED_TEACHER_DIR;
    const teacherTokens = teacherPretrainingTokens(teacherDir);
    if (!teacherTokens) throw new Error(`supra: ${teacherDir}/training.json does not record the teacher's pretraining tokens`);
    const study: StudyOptions = { ...STUDY_DEFAULTS, seeds: parseSeeds(values.seeds), teacherTokens, bf16Products: hasMatmulPrecision('bf16') };
    const evalSettings = EVAL_DEFAULTS;
    const cores = availableParallelism();
    const jobs = intOption(values.jobs, 'jobs', Math.max(1, Math.min(2, cores)), 1);
    // a worker computes with the threads its parent gave it (SUPRA_THREADS), and must find the same key
    const threads = values.worker ? getBackend().threads : Math.max(1, Math.floor(cores / jobs));
    // what else defines a result: the teacher's weights (its training record), the corpus, and what decides
    // the bits of the backend's arithmetic (Backend.fingerprint: its kernels, the threads where they matter, and
    // the BF16 kernel of a run with BF16 products)
    const context = {
      teacher: readFileSync(join(teacherDir, 'training.json'), 'utf8'), corpus: embeddedCorpusVersion(), inputs: DATA_INPUTS, splitSeed: SPLIT_SEED,
    };
    const planned: Planned[] = studyPlan(study).map((spec) => {
      const key = runKey(spec, evalSettings, { ...context, backend: getBackend().fingerprint(threads, spec.recipe.matmulPrecision) });
      return { spec, key, dir: join(out, `${spec.id}-${key.slice(0, 8)}`) };
    });
    const passOn = [
      ...(values.out ? ['--out', out] : []), ...(values.seeds ? ['--seeds', values.seeds] : []),
      ...(values['keep-models'] ? ['--keep-models'] : []),
    ];

    if (values.worker) {
      const p = planned.find((x) => x.spec.id === values.worker);
      if (!p) throw new UsageError(`--worker: no run named ${values.worker} in the plan`);
      const result = await executeRun(p.spec, {
        teacherDir, dir: p.dir, key: p.key, evalSettings,
        backend: describeBackend(getBackend().fingerprint(getBackend().threads, p.spec.recipe.matmulPrecision)),
        data: { inputs: DATA_INPUTS, splitSeed: SPLIT_SEED }, keepModel: values['keep-models'] === true,
        log: (m) => console.log(m),
      });
      if (!result) process.exit(130); // interrupted: the parent sees 130 and stops scheduling
      return;
    }

    const selected = values.only ? planned.filter((p) => p.spec.id.includes(values.only!)) : planned;
    if (selected.length === 0) throw new UsageError(`--only ${values.only}: no run matches`);
    const done = new Map<string, RunResult>();
    for (const p of planned) {
      const r = readResult(p);
      if (r) done.set(p.spec.id, r);
    }
    const todo = selected.filter((p) => !done.has(p.spec.id)).sort((a, b) => runCost(b.spec) - runCost(a.spec));
    if (values.list) {
      for (const p of planned) console.log(`${done.has(p.spec.id) ? 'done   ' : 'pending'}  ${p.spec.id.padEnd(24)} ${p.spec.tokens.toLocaleString('en-US').padStart(10)} tokens  ${p.dir}`);
      return;
    }
    console.log(`supra experiments: ${planned.length} runs, ${done.size} cached, ${todo.length} to run (${jobs} at a time, ${threads} thread${threads > 1 ? 's' : ''} each, ${getBackend().name}); runs in ${out}`);

    if (!values['report-only'] && todo.length > 0) {
      // build the token caches once, before parallel runs could race to build them
      for (const seqLen of [study.seqLen, evalSettings.longContext]) {
        (await openTokenBatches({ data: DATA_INPUTS, tokenizerDir: teacherDir, seqLen, seed: SPLIT_SEED, log: (m) => console.log(m) })).close();
      }
      const started = performance.now();
      let next = 0;
      const failed: string[] = [];
      let interrupted = false;
      let finished = 0;
      process.on('SIGINT', () => {
        interrupted = true; // the children got the signal too: each saves a checkpoint and exits
      });
      const worker = async () => {
        while (!interrupted && next < todo.length) {
          const p = todo[next++]!;
          const t0 = performance.now();
          const code = await runChild(p, passOn, threads);
          const r = code === 0 ? readResult(p) : null;
          if (r) {
            done.set(p.spec.id, r);
            finished++;
            console.log(`[${p.spec.id}] done in ${((performance.now() - t0) / 1000).toFixed(0)} s: val ppl ${r.valPpl.toFixed(2)} (${done.size}/${planned.length})`);
          } else if (code === 130) interrupted = true;
          else failed.push(`${p.spec.id} (exit ${code}; log: ${join(p.dir, 'log.txt')})`);
        }
      };
      await Promise.all(Array.from({ length: jobs }, worker));
      console.log(`finished ${finished} of ${todo.length} runs in ${((performance.now() - started) / 60000).toFixed(1)} min`);
      if (interrupted) {
        console.log('interrupted: finished runs are kept and an interrupted run resumes from its checkpoint; run the same command again');
        process.exit(130);
      }
      if (failed.length) {
        throw new Error(`supra: experiments: ${failed.length} run(s) failed: ${failed.join('; ')}`);
      }
    }
    const missing = planned.filter((p) => !done.has(p.spec.id));
    if (missing.length) {
      console.log(`not writing ${reportPath}: ${missing.length} runs have no result yet (${missing.slice(0, 5).map((p) => p.spec.id).join(', ')}${missing.length > 5 ? ', …' : ''})`);
      if (values.only) return;
      process.exitCode = 1;
      return;
    }
    const files = writeReport({
      study, evalSettings, results: done, reportPath,
      command: 'npm run experiments', teacher: describeTeacher(teacherDir),
      environment: `runs on the ${[...new Set([...done.values()].map((r) => r.backend))].join(' / ')} backend, ${cores} cores, Node ${process.versions.node}`,
    });
    for (const f of files) console.log(`wrote ${f}`);
  },
};
