// The memory a training run will take, worked out before it allocates any of it: the weights as stored,
// a float32 gradient and AdamW's two float32 moments per trained parameter (frozen ones have neither), and a step's
// activations (DecoderLM.trainingActivationBytes), each where it will live (the 4 GiB wasm arena, or
// ordinary memory for what the backend keeps outside it). The trainer prints it and refuses a run that
// cannot fit, with what would make it fit.
import { arenaFreeBytes, formatBytes } from '../core/memory.js';
import { getBackend } from '../core/select.js';
import type { Param } from '../layers/types.js';
import type { DecoderLM } from '../models/decoder.js';

export interface MemoryPart {
  /** Bytes in the wasm arena. */
  arena: number;
  /** Bytes outside it (ordinary memory). */
  heap: number;
}

export interface TrainingMemoryPlan {
  weights: MemoryPart;
  gradients: MemoryPart;
  moments: MemoryPart;
  activations: MemoryPart;
  /** Every part together: about the process's peak, less the runtime's own few hundred MiB. */
  total: number;
  /** What the arena must still give (the weights already there are not counted again), and what it can. */
  arenaNeeded: number;
  arenaFree: number;
  /** What ordinary memory must still give, and what the machine has available (undefined: not known). */
  heapNeeded: number;
  heapAvailable: number | undefined;
  /** Whether the model checkpoints its activations; the activations with and without, for the advice. */
  checkpointed: boolean;
  activationsCheckpointed: number;
  activationsPlain: number;
}

const numel = (p: Param): number => p.shape.reduce((a, b) => a * b, 1);

/**
 * The plan of a run that trains `trained` (a gradient and AdamW moments each; the model's other parameters
 * are frozen, staying where and as they are) at B sequences of T tokens, as the model is set (activation
 * checkpointing, logits blocks). Gradients and moments live where their parameter lives once gradients are
 * on (ParamStore.trainingPlace). Trained parameters outside the model's store (LoRA adapters) are in the
 * arena already; their gradients and moments go there too.
 */
export function trainingMemoryPlan(model: DecoderLM, trained: readonly Param[], B: number, T: number): TrainingMemoryPlan {
  const weights: MemoryPart = { arena: 0, heap: 0 };
  const gradients: MemoryPart = { arena: 0, heap: 0 };
  const moments: MemoryPart = { arena: 0, heap: 0 };
  let moving = 0; // weights that enableGrads moves into the arena
  const isTrained = new Set(trained);
  const own = new Set(model.params());
  for (const p of model.params()) {
    const now = model.store.storage(p);
    if (!isTrained.has(p)) {
      weights[now.place] += now.bytes; // frozen: stays where and as it is, with no gradient
      continue;
    }
    const place = model.store.trainingPlace(p.shape);
    weights[place] += now.bytes;
    if (place === 'arena' && now.place === 'heap') moving += now.bytes;
    if (!p.grad) gradients[place] += 4 * numel(p);
    moments[place] += 8 * numel(p);
  }
  for (const p of trained) {
    if (own.has(p)) continue; // an adapter's parameters (LoRA), in the arena
    weights.arena += model.store.storage(p).bytes;
    if (!p.grad) gradients.arena += 4 * numel(p);
    moments.arena += 8 * numel(p);
  }
  const activationsPlain = model.trainingActivationBytes(B, T, false);
  const activationsCheckpointed = model.trainingActivationBytes(B, T, true);
  const checkpointed = model.activationCheckpointing;
  const activationsHeap = model.trainingActivationHeapBytes(B, T, checkpointed);
  const activations: MemoryPart = { arena: (checkpointed ? activationsCheckpointed : activationsPlain) - activationsHeap, heap: activationsHeap };
  const sum = (m: MemoryPart) => m.arena + m.heap;
  return {
    weights, gradients, moments, activations,
    total: sum(weights) + sum(gradients) + sum(moments) + sum(activations),
    arenaNeeded: moving + gradients.arena + moments.arena + activations.arena,
    arenaFree: arenaFreeBytes(),
    heapNeeded: gradients.heap + moments.heap + activations.heap,
    heapAvailable: getBackend().heapBytesAvailable?.(),
    checkpointed,
    activationsCheckpointed,
    activationsPlain,
  };
}

/** The plan as the run's header shows it. */
export function memoryPlanText(plan: TrainingMemoryPlan): string {
  const part = (m: MemoryPart) => formatBytes(m.arena + m.heap) + (m.heap > 0 && m.arena > 0 ? ` (${formatBytes(m.heap)} outside the arena)` : m.heap > 0 ? ' (outside the arena)' : '');
  return (
    `  memory: weights ${part(plan.weights)}, gradients ${part(plan.gradients)}, AdamW moments ${part(plan.moments)}, ` +
    `activations ${part(plan.activations)}; peak ≈ ${formatBytes(plan.total)}`
  );
}

/**
 * Refuse a plan that cannot fit, before anything is allocated: the arena's share above what it has free,
 * or the rest above the machine's available memory. The message gives the plan and what would help.
 */
export function checkMemoryPlan(plan: TrainingMemoryPlan, where: string): void {
  const arenaShort = plan.arenaNeeded > plan.arenaFree;
  const heapShort = plan.heapAvailable !== undefined && plan.heapNeeded > plan.heapAvailable;
  if (!arenaShort && !heapShort) return;
  const advice: string[] = [];
  if (!plan.checkpointed && plan.activationsCheckpointed < plan.activationsPlain) {
    advice.push(`--checkpoint-activations (activations ${formatBytes(plan.activationsCheckpointed)} instead of ${formatBytes(plan.activationsPlain)})`);
  }
  advice.push('a smaller --batch-size or --seq-len (with --grad-accum to keep the tokens per step)');
  if (plan.moments.arena + plan.moments.heap > 0) {
    advice.push('--recipe attention-transfer (the teacher\'s weights frozen: gradients and AdamW moments for the kernels and LoRA adapters only) or --train-only kernels (for the kernels only)');
  }
  if (arenaShort && !getBackend().heapWeights) advice.push('the native backend (--backend native), which keeps weights, gradients and moments outside the arena');
  const short = arenaShort
    ? `needs ${formatBytes(plan.arenaNeeded)} more in the 4 GiB wasm arena, which has ${formatBytes(plan.arenaFree)} free`
    : `needs ${formatBytes(plan.heapNeeded)} more memory, and the machine has ${formatBytes(plan.heapAvailable!)} available`;
  throw new Error(`supra: train: ${where}: the run ${short}.\n${memoryPlanText(plan)}\n  To fit, try: ${advice.join('; ')}.`);
}
