// The training benchmark's measure (bench/train.ts runs each case in a process of its own): full uptraining
// steps of a SUPRA folder at real shapes through the Trainer itself (forward, loss, backward, clipping,
// AdamW), on random tokens, with the time spent in matrix products counted by wrapping the backend's.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Mt19937 } from '../core/random.js';
import { getBackend, setBackend } from '../core/select.js';
import type { BackendName, MatmulPrecision } from '../core/backend.js';
import { formatBytes } from '../core/memory.js';
import { loadDecoder } from '../models/auto.js';
import type { DataPosition, TokenBatches } from '../train/batches.js';
import { Trainer } from '../train/trainer.js';
import { timeProducts } from './products.js';
import type { PytorchStep } from './pytorch.js';

export interface TrainJob {
  dir: string;
  batchSize: number;
  seqLen: number;
  /** Steps timed, after one warm-up step. */
  steps: number;
  checkpointActivations: boolean;
  backend?: BackendName;
  /**
   * The paper's full uptraining (default), or attention transfer: its stage 1 (the kernels against the
   * softmax outputs) is the warm-up step, the timed steps are stage 2 (LoRA adapters and kernels).
   */
  recipe?: 'full' | 'attention-transfer';
  /** The steps' products (--matmul-precision; default f32). */
  matmulPrecision?: MatmulPrecision;
}

export interface TrainCase {
  shape: string;
  batchSize: number;
  seqLen: number;
  checkpointActivations: boolean;
  recipe?: 'full' | 'attention-transfer';
  matmulPrecision?: MatmulPrecision;
  /** The kernel of a bf16 case's products (Bf16Kernel: 'rounded' is no faster than float32). */
  bf16Products?: string;
  status: 'ok' | 'error';
  message?: string;
  /** Training tokens per second of the timed steps (their mean time). */
  tokensPerS?: number;
  secondsPerStep?: number;
  /** Share of the step time spent in the backend's matrix products. */
  gemmShare?: number;
  maxRssBytes?: number;
  /** The trainer's memory plan, its estimate of the peak. */
  plannedBytes?: number;
  parameters?: number;
  /** PyTorch's step (no checkpointing) on the same shape and batch, timed in the same run (bench/pytorch-step.py), when a torch was found. */
  pytorch?: PytorchStep;
}

/** Uniform random token ids packed as the trainer reads them: nothing to learn, only shapes matter. */
class RandomTokenBatches implements TokenBatches {
  readonly trainSequences = 1 << 20;
  readonly trainTokens: number;
  readonly validationTokens = 0;
  private readonly rng: Mt19937;
  private drawn = 0;

  constructor(readonly seqLen: number, private readonly vocab: number, private readonly seed = 0) {
    this.trainTokens = this.trainSequences * seqLen;
    this.rng = new Mt19937(seed);
  }

  nextTrain(batch: number): Int32Array {
    this.drawn += batch;
    return Int32Array.from({ length: batch * (this.seqLen + 1) }, () => this.rng.nextU32() % this.vocab);
  }

  position(): DataPosition {
    return { epoch: 0, cursor: this.drawn, seed: this.seed };
  }

  restore(): void {
    throw new Error('supra: random benchmark data cannot be resumed');
  }

  validation(): { ids: Int32Array; count: number } {
    return { ids: new Int32Array(0), count: 0 };
  }

  close(): void {}
}

/** Run one case: load the folder in float32, one warm-up step, then `steps` timed steps (see TrainJob.recipe). */
export function runTrainJob(job: TrainJob): Omit<TrainCase, 'shape'> {
  if (job.backend) setBackend(job.backend);
  const products = timeProducts();
  const { model } = loadDecoder(job.dir, { dtype: 'f32' });
  const out = mkdtempSync(join(tmpdir(), 'supra-bench-train-'));
  const recipe = job.recipe ?? 'full';
  const matmulPrecision = job.matmulPrecision ?? 'f32';
  const bf16Products = matmulPrecision === 'bf16' ? getBackend().fingerprint(1, 'bf16').bf16Products : undefined;
  const base = {
    batchSize: job.batchSize, seqLen: job.seqLen, checkpointActivations: job.checkpointActivations, recipe, matmulPrecision,
    ...(typeof bf16Products === 'string' ? { bf16Products } : {}),
  };
  try {
    const trainer = Trainer.open({
      model, data: new RandomTokenBatches(job.seqLen, model.config.vocab_size), out, steps: job.steps + 1,
      batchSize: job.batchSize, evalSequences: 0, saveEvery: 0, quiet: true, checkpointActivations: job.checkpointActivations, matmulPrecision,
      ...(recipe === 'attention-transfer' ? { recipe, transferSteps: 1 } : {}),
    });
    try {
      trainer.step(); // warm-up: first-touch of every buffer
      products.reset();
      const t0 = performance.now();
      for (let s = 0; s < job.steps; s++) trainer.step();
      const seconds = (performance.now() - t0) / 1000;
      return {
        ...base, status: 'ok', tokensPerS: (job.steps * job.batchSize * job.seqLen) / seconds, secondsPerStep: seconds / job.steps,
        gemmShare: products.seconds() / seconds, maxRssBytes: process.resourceUsage().maxRSS * 1024,
        plannedBytes: trainer.memoryPlan.total, parameters: model.store.numel(),
      };
    } finally {
      trainer.close();
    }
  } finally {
    model.free();
    rmSync(out, { recursive: true, force: true });
  }
}

/**
 * PyTorch's step recorded by issue 16 on the project's earlier machine (PyTorch 1.13, 2 threads, chunked SUPRA,
 * float32), shown only where no PyTorch was timed in the same run.
 */
export const RECORDED_PYTORCH_TOKENS_PER_S: Record<string, Record<string, number>> = { 'smollm-135m': { '1x512': 85 } };

/**
 * The PyTorch cell: the same-run figure and supra's ratio to it, else why it failed, else the figure recorded
 * on another machine (no ratio: not comparable), else nothing.
 */
function pytorchCell(c: TrainCase): string {
  if (c.recipe === 'attention-transfer' || c.status !== 'ok') return '—';
  if (c.pytorch?.status === 'ok') return `${c.pytorch.tokensPerS.toFixed(1)}${c.pytorch.lean ? '*' : ''} (${(c.tokensPerS! / c.pytorch.tokensPerS).toFixed(2)}×)`;
  if (c.pytorch?.status === 'error') return `error: ${c.pytorch.message}`;
  const recorded = RECORDED_PYTORCH_TOKENS_PER_S[c.shape]?.[`${c.batchSize}x${c.seqLen}`];
  return recorded ? `${recorded} (recorded on another machine)` : '—';
}

/** The report's table. */
export function trainMarkdown(cases: TrainCase[], header: string): string {
  const rows = cases.map((c) => {
    const cells = c.status === 'ok'
      ? [
        c.tokensPerS!.toFixed(1), c.secondsPerStep!.toFixed(2), pytorchCell(c),
        `${(100 * c.gemmShare!).toFixed(0)}%`, formatBytes(c.maxRssBytes!), formatBytes(c.plannedBytes!),
      ]
      : [`${c.status}: ${c.message}`, '', '', '', '', ''];
    const recipe = c.recipe === 'attention-transfer' ? 'attention transfer + LoRA' : 'full';
    return `| ${c.shape} | ${recipe} | ${c.batchSize} × ${c.seqLen} | ${c.checkpointActivations ? 'yes' : 'no'} | ${c.matmulPrecision ?? 'f32'}${c.bf16Products ? ` (${c.bf16Products})` : ''} | ${cells.join(' | ')} |`;
  });
  return [
    header,
    '',
    '| shape | recipe | batch | checkpointing | products | tokens/s | s/step | PyTorch tokens/s (supra ×) | time in GEMM | peak RSS | planned peak |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}
