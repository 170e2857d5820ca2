// The PyTorch baseline of the benchmarks: bench/pytorch-step.py (the same full SUPRA uptraining step in
// PyTorch, float32) run by a python3 that imports torch, when the machine has one (Debian: apt-get install
// python3-torch), so that supra's training speed is compared with PyTorch's timed in the same run.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { openblasCoretype, packageRoot } from '../core/native/backend.js';

/** What bench/pytorch-step.py prints, or why it did not run. */
export type PytorchStep =
  | {
      status: 'ok'; tokensPerS: number; secondsPerStep: number;
      /** The fastest timed step, beside the mean (benchmarks that report supra's best step compare with it). */
      bestSecondsPerStep: number; torch: string; threads: number;
      /** Run with PYTORCH_LEAN_ENV, the full settings having run out of memory. */
      lean?: boolean;
    }
  | { status: 'error'; message: string };

/**
 * PyTorch's runtime settings for the baseline, the fastest found on the 2-core VM (2026-12-06, SmolLM-135M
 * at 1 × 512, Debian's PyTorch 1.13 over OpenBLAS): OpenMP threads that sleep rather than spin while OpenBLAS's
 * own threads work (48 → 102 tokens/s), and glibc keeping freed memory instead of returning it to the system
 * for every step's large activations (→ 122 tokens/s). A baseline slowed by its settings would flatter supra.
 * The second costs memory: a step that runs out of it (killed) is run again without it (PYTORCH_LEAN_ENV).
 */
const PYTORCH_ENV: Readonly<Record<string, string>> = {
  OMP_WAIT_POLICY: 'PASSIVE', MALLOC_MMAP_THRESHOLD_: '4294967296', MALLOC_TRIM_THRESHOLD_: '17179869184',
};
export const PYTORCH_LEAN_ENV: Readonly<Record<string, string>> = { OMP_WAIT_POLICY: 'PASSIVE' };

/** Settings as the reports print them. */
export const envText = (env: Readonly<Record<string, string>>): string => Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ');
/** The PyTorch step's settings as reports print them, with the OpenBLAS kernels it is given (runPytorchStep). */
export const PYTORCH_ENV_TEXT = envText({ ...PYTORCH_ENV, ...coretypeEnv() });

/**
 * The OpenBLAS kernels supra's backend loads, for the PyTorch step (Debian's PyTorch computes on the same
 * library): on a CPU model OpenBLAS does not know, its own detection falls back to SSE3 (measured on a
 * 2-core Xeon VM: PyTorch's matmul at 63 GFLOP/s, 270 with the kernels supra picks).
 */
function coretypeEnv(): Record<string, string> {
  const set = openblasCoretype();
  return set ? { OPENBLAS_CORETYPE: set } : {};
}

/**
 * The python executable to time PyTorch with: `choice` 'auto' takes the first of python3, /usr/bin/python3
 * that imports torch (null when none does), 'off' none, anything else is that executable (an Error when it
 * cannot import torch).
 */
export function findPytorch(choice: string): string | null {
  if (choice === 'off') return null;
  const candidates = choice === 'auto' ? ['python3', '/usr/bin/python3'] : [choice];
  for (const python of candidates) {
    const r = spawnSync(python, ['-c', 'import torch; print("torch", torch.__version__)'], { encoding: 'utf8', timeout: 60_000 });
    if (r.status === 0 && /^torch \S+/m.test(r.stdout)) return python;
  }
  if (choice !== 'auto') throw new Error(`${choice} cannot import torch`);
  return null;
}

/** The longest a PyTorch step run may take (a warm-up and the timed steps of a 0.5B model are minutes). */
const PYTORCH_TIMEOUT_MS = 60 * 60 * 1000;

/**
 * PyTorch's step on a Hugging Face style config.json (a SUPRA folder's, or a teacher's: the step is SUPRA's
 * either way) at batch × seqLen, `steps` steps timed after one warm-up, on `threads` threads (for PyTorch's
 * OpenMP threads and OpenBLAS's alike: the threads supra's backend computes with, for a fair comparison).
 */
export function runPytorchStep(python: string, configPath: string, batchSize: number, seqLen: number, steps: number, threads: number): PytorchStep {
  const script = join(packageRoot(), 'bench', 'pytorch-step.py');
  if (!existsSync(script)) return { status: 'error', message: `${script} is missing (it ships with the repository)` };
  const coretype = coretypeEnv();
  const run = (env: Readonly<Record<string, string>>) =>
    spawnSync(python, [script, configPath, String(batchSize), String(seqLen), String(steps), String(threads)], {
      encoding: 'utf8', env: { ...process.env, ...env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads), ...coretype },
      maxBuffer: 16 * 2 ** 20, timeout: PYTORCH_TIMEOUT_MS,
    });
  let r = run(PYTORCH_ENV);
  const lean = r.signal === 'SIGKILL'; // the kernel's out-of-memory killer
  if (lean) r = run(PYTORCH_LEAN_ENV);
  const line = r.stdout?.trim().split('\n').at(-1) ?? '';
  if (r.status === 0) {
    try {
      const out = JSON.parse(line) as Omit<Extract<PytorchStep, { status: 'ok' }>, 'status'>;
      if (out.tokensPerS > 0 && out.bestSecondsPerStep > 0) return { status: 'ok', ...out, ...(lean ? { lean } : {}) };
    } catch {
      // reported below
    }
    return { status: 'error', message: `no result line from ${script} (last line: ${JSON.stringify(line.slice(0, 120))})` };
  }
  const why = r.error?.message ||
    (r.signal ? `killed by ${r.signal}${r.signal === 'SIGKILL' ? ' (out of memory?)' : ''}` : r.stderr?.trim().split('\n').at(-1) || `exit ${r.status}`);
  return { status: 'error', message: why };
}
