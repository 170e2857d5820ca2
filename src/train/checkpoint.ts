// Training checkpoints you can trust. Each is a folder <out>/checkpoint-<step> holding
//   config.json, model.safetensors, tokenizer files   — a plain model folder from_pretrained loads
//   optimizer.safetensors                            — AdamW exp_avg / exp_avg_sq / step per parameter
//   trainer_state.json                               — step, schedule, data position, metrics, settings
//   adapter_config.json, adapter_model.safetensors   — a LoRA run's adapters (models/lora.ts); the model
//                                                      files then hold the base model they apply to
// written under a temporary name (<out>/.tmp-checkpoint-<step>-<pid>), every file fsynced, then renamed
// into place; only then is <out>/latest (one line: the folder's name) replaced, itself through a temp
// file and a rename. A crash at any moment therefore leaves `latest` naming a complete checkpoint (the
// new one or the previous one). Old checkpoints beyond the newest K are removed after `latest` moves.
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { emptyTempFolder, renameFolderIntoPlace, syncFile, writeFileAtomic } from '../io/atomic.js';
import { saveCheckpoint } from '../io/checkpoint.js';
import { saveConfig } from '../io/config.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import { copyTokenizerFiles } from '../models/convert.js';
import type { DecoderLM } from '../models/decoder.js';
import type { AdamW } from './adamw.js';
import type { DataPosition } from './batches.js';

export const LATEST_FILE = 'latest';
export const TRAINER_STATE_FILE = 'trainer_state.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const FINAL_DIR = 'final';
/** A LoRA run's final adapter folder (PEFT layout), beside the merged final model. */
export const ADAPTER_DIR = 'adapter';
const CHECKPOINT_RE = /^checkpoint-(\d+)$/;
// temp folders of a save (.tmp-checkpoint-<step>-<pid>, .trash-…) and temp files of an atomic write (latest.tmp-<pid>)
const TEMP_RE = /^\.(tmp|trash)-|\.tmp-\d+$/;

/** Everything besides weights and optimizer moments that a resumed run needs (trainer_state.json). */
export interface TrainerState {
  format: 'supra-trainer-state';
  version: 1;
  /** Optimizer steps completed (skipped steps included: they consumed their batches). */
  step: number;
  totalSteps: number;
  /** Training tokens consumed. */
  tokens: number;
  schedule: { lr: number; minLr: number; warmupSteps: number; totalSteps: number; kernelLr: number };
  /** Where the training stream stands (TokenBatches.position()). */
  data: DataPosition;
  /**
   * Random state. Training itself draws no random numbers (no dropout; the data order is the data
   * pipeline's, saved in `data`), so the seed that initialised the run determines everything.
   */
  rng: { seed: number; drawsDuringTraining: 0 };
  metrics: {
    /** Training loss of every step so far (a non-finite loss is written as null, read back as NaN). */
    losses: number[];
    skippedSteps: number;
    consecutiveSkips: number;
    evals: { step: number; valLoss: number }[];
    /** Seconds spent training so far (all runs of this output folder). */
    elapsedSeconds: number;
  };
  /** The resolved settings of the run (see trainer.ts TrainSettings). */
  settings: Record<string, unknown>;
  savedAt: string;
}

export interface CheckpointRef {
  step: number;
  name: string;
  dir: string;
}

/**
 * Where a save stands when its hook is called: "files" (the weights are written into the temporary
 * folder, the optimizer and trainer state are not), "latest" (the checkpoint folder is in place, `latest`
 * still names the previous one), "final" (the final model's files are written, the folder not yet renamed).
 */
export type SavePhase = 'files' | 'latest' | 'final';

/**
 * Called as a save reaches each phase, with the folder being saved (<out>/checkpoint-<step> or
 * <out>/final). A throw fails the save as a write error would (its partial files are removed). Tests use
 * it to stop a save where a kill or a full disk would hurt most.
 */
export type SaveHook = (phase: SavePhase, dest: string) => void;

/** The model's parameters as tensors to write (arena views, written in place). */
function modelTensors(model: DecoderLM): Map<string, { shape: number[]; data: Float32Array }> {
  if (model.store.inferenceOnly) throw new Error(`supra: cannot save this model as a model folder: ${model.store.inferenceOnly}`);
  return new Map(model.params().map((p) => [p.name, { shape: p.shape, data: p.data }]));
}

/** Write a plain model folder's files (config.json, model.safetensors, tokenizer files) into `dir`. */
export function writeModelFiles(dir: string, model: DecoderLM, tokenizerDir: string | null): void {
  saveCheckpoint(dir, modelTensors(model), { dtype: 'F32' });
  saveConfig(dir, model.config, { torch_dtype: 'float32' });
  if (tokenizerDir) for (const f of copyTokenizerFiles(tokenizerDir, dir)) syncFile(f);
}

function stateJson(state: TrainerState): string {
  // JSON has no NaN: skipped steps' losses become null
  return JSON.stringify(state, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n';
}

export interface SaveTrainingOptions {
  model: DecoderLM;
  optimizer: AdamW;
  state: TrainerState;
  /** Folder whose tokenizer files are copied in (null: none). */
  tokenizerDir: string | null;
  /** Keep this many newest checkpoints (≥ 1). */
  keep: number;
  /** Writes more files into the checkpoint folder after the model's (a LoRA run's adapter); returns them. */
  writeExtra?: (dir: string) => string[];
  /** Called at each phase of the save (see SaveHook). */
  onPhase?: SaveHook;
}

/** The cause of a failed write in words ("no space left on device"), without fs's code prefix. */
function failureReason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const known: Record<string, string> = {
    ENOSPC: 'no space left on device',
    EDQUOT: 'disk quota exceeded',
    EROFS: 'read-only file system',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EIO: 'input/output error',
  };
  if (err && typeof err.code === 'string' && known[err.code]) return known[err.code]!;
  return String(err?.message ?? e).replace(/^supra: /, '');
}

/** How to carry on after a failed save, for the error message. */
export interface SaveFailureAdvice {
  /** What continues the run from `latest`: "--resume" (train), or the demo's command line. */
  continueWith: string;
}

/**
 * A save that failed: remove what it wrote (the temp folder, and the new folder when `latest` does not
 * name it yet) and throw an error that names the path, the cause and what is still safe.
 */
function saveFailed(out: string, what: string, dest: string, partial: string[], e: unknown, advice: SaveFailureAdvice): never {
  const removed: string[] = [];
  for (const p of partial) {
    try {
      if (existsSync(p)) {
        rmSync(p, { recursive: true, force: true });
        removed.push(p);
      }
    } catch {
      // leave it to the next start (removeUncommitted); the error below matters more
    }
  }
  let intact: string;
  try {
    const latest = readLatest(out);
    intact = latest ? `${join(out, LATEST_FILE)} (${latest.name}, step ${latest.step}) is intact` : 'no earlier checkpoint was saved';
  } catch {
    intact = `${join(out, LATEST_FILE)} is unchanged`;
  }
  const code = (e as NodeJS.ErrnoException)?.code;
  const fix = code === 'ENOSPC' || code === 'EDQUOT' ? 'free space and ' : 'fix that and ';
  const next = intact.startsWith('no earlier') ? 'rerun' : `rerun with ${advice.continueWith}`;
  const cleanup = removed.length > 0 ? '; removed the partial save' : '';
  const error = new Error(`supra: could not save ${what} to ${dest}: ${failureReason(e)}${cleanup}; ${intact}; ${fix}${next}`);
  (error as Error & { cause?: unknown }).cause = e;
  throw error;
}

/** By default a failed save advises the train command's way to continue. */
const DEFAULT_ADVICE: SaveFailureAdvice = { continueWith: '--resume' };

/**
 * Save <out>/checkpoint-<state.step> atomically, point `latest` at it, prune old ones. Returns its folder.
 * A failed save (a full disk) removes its partial files and throws an error saying what is intact.
 */
export function saveTrainingCheckpoint(out: string, o: SaveTrainingOptions, advice: SaveFailureAdvice = DEFAULT_ADVICE): string {
  const step = o.state.step;
  const name = `checkpoint-${step}`;
  const dest = join(out, name);
  const tmp = join(out, `.tmp-${name}-${process.pid}`);
  let renamed = false;
  try {
    emptyTempFolder(tmp);
    writeModelFiles(tmp, o.model, o.tokenizerDir);
    o.writeExtra?.(tmp);
    o.onPhase?.('files', dest);
    const moments = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [k, v] of o.optimizer.stateTensors()) moments.set(k, { shape: [v.length], data: v });
    // a model trained with no optimizer state yet (every step skipped) still gets a valid file
    if (moments.size === 0) moments.set('__empty__', { shape: [0], data: new Float32Array(0) });
    writeSafetensors(join(tmp, OPTIMIZER_FILE), moments, { format: 'supra-adamw' });
    // trainer_state.json last: its presence marks a complete folder
    writeFileAtomic(join(tmp, TRAINER_STATE_FILE), stateJson(o.state));
    renameFolderIntoPlace(tmp, dest);
    renamed = true;
    o.onPhase?.('latest', dest);
    writeFileAtomic(join(out, LATEST_FILE), name + '\n');
  } catch (e) {
    // before `latest` names it, the new folder is uncommitted: remove it too
    saveFailed(out, 'checkpoint', dest, renamed ? [tmp, dest] : [tmp], e, advice);
  }
  pruneCheckpoints(out, o.keep, step);
  return dest;
}

/** Write the final model as a plain folder <out>/final (temp folder + rename, like checkpoints). */
export function saveFinalModel(
  out: string,
  model: DecoderLM,
  tokenizerDir: string | null,
  advice: SaveFailureAdvice = DEFAULT_ADVICE,
  onPhase?: SaveHook,
): string {
  return saveFinalFolder(out, FINAL_DIR, 'the final model', (tmp) => writeModelFiles(tmp, model, tokenizerDir), advice, onPhase);
}

/**
 * Write the folder <out>/<name> (the final model, a LoRA run's final adapter) with what `write` puts in
 * it: a temp folder renamed into place, replacing an earlier one. `onPhase` is called with 'final' before
 * the rename; a failure removes the temp folder and says what is intact (`what` names the folder).
 */
export function saveFinalFolder(
  out: string,
  name: string,
  what: string,
  write: (dir: string) => void,
  advice: SaveFailureAdvice = DEFAULT_ADVICE,
  onPhase?: SaveHook,
): string {
  const dest = join(out, name);
  const tmp = join(out, `.tmp-${name}-${process.pid}`);
  try {
    emptyTempFolder(tmp);
    write(tmp);
    onPhase?.('final', dest);
    renameFolderIntoPlace(tmp, dest);
  } catch (e) {
    saveFailed(out, what, dest, [tmp], e, advice);
  }
  return dest;
}

/** Complete checkpoints in `out`, oldest first. */
export function listCheckpoints(out: string): CheckpointRef[] {
  if (!existsSync(out)) return [];
  const refs: CheckpointRef[] = [];
  for (const e of readdirSync(out, { withFileTypes: true })) {
    const m = CHECKPOINT_RE.exec(e.name);
    if (!m || !e.isDirectory()) continue;
    const dir = join(out, e.name);
    if (existsSync(join(dir, TRAINER_STATE_FILE))) refs.push({ step: Number(m[1]), name: e.name, dir });
  }
  return refs.sort((a, b) => a.step - b.step);
}

/** Remove checkpoints beyond the newest `keep` (never the one `latest` names). */
export function pruneCheckpoints(out: string, keep: number, latestStep: number): void {
  const all = listCheckpoints(out).filter((c) => c.step <= latestStep);
  const doomed = all.slice(0, Math.max(0, all.length - keep)).filter((c) => c.step !== latestStep);
  for (const c of doomed) rmSync(c.dir, { recursive: true, force: true });
}

/**
 * Before resuming from `latestStep`: remove temp folders left by a killed save, and checkpoints newer
 * than `latest` (a save killed between its rename and the move of `latest`: never committed, and the
 * resumed run will redo those steps).
 */
export function removeUncommitted(out: string, latestStep: number): void {
  for (const e of readdirSync(out, { withFileTypes: true })) {
    const m = CHECKPOINT_RE.exec(e.name);
    if (TEMP_RE.test(e.name) || (m && Number(m[1]) > latestStep)) rmSync(join(out, e.name), { recursive: true, force: true });
  }
}

/** Read and check trainer_state.json of a checkpoint folder. */
export function readTrainerState(dir: string): TrainerState {
  const path = join(dir, TRAINER_STATE_FILE);
  if (!existsSync(path)) throw new Error(`supra: ${dir}: not a complete training checkpoint (no ${TRAINER_STATE_FILE})`);
  let state: TrainerState;
  try {
    state = JSON.parse(readFileSync(path, 'utf8')) as TrainerState;
  } catch (e) {
    throw new Error(`supra: ${path}: not valid JSON (${(e as Error).message})`);
  }
  if (state.format !== 'supra-trainer-state' || state.version !== 1) {
    throw new Error(`supra: ${path}: not a supra trainer state (format ${JSON.stringify(state.format)}, version ${JSON.stringify(state.version)})`);
  }
  for (const key of ['step', 'totalSteps', 'tokens'] as const) {
    if (!Number.isInteger(state[key]) || state[key] < 0) throw new Error(`supra: ${path}: field "${key}" must be an integer ≥ 0, got ${JSON.stringify(state[key])}`);
  }
  if (!state.data || typeof state.data.cursor !== 'number') throw new Error(`supra: ${path}: missing the data position`);
  if (!state.settings || typeof state.settings !== 'object') throw new Error(`supra: ${path}: missing the run settings`);
  state.metrics.losses = (state.metrics.losses as (number | null)[]).map((l) => (l === null ? NaN : l));
  return state;
}

/** The checkpoint `<out>/latest` names, with its state; null when the folder has none. */
export function readLatest(out: string): (CheckpointRef & { state: TrainerState }) | null {
  const path = join(out, LATEST_FILE);
  if (!existsSync(path)) return null;
  const name = readFileSync(path, 'utf8').trim();
  const m = CHECKPOINT_RE.exec(name);
  if (!m) throw new Error(`supra: ${path}: expected a checkpoint folder name like checkpoint-100, got ${JSON.stringify(name)}`);
  const dir = join(out, name);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`supra: ${path} names ${name}, but ${dir} does not exist`);
  return { step: Number(m[1]), name, dir, state: readTrainerState(dir) };
}

/** Load optimizer.safetensors of a checkpoint into `optimizer`. */
export function loadOptimizerState(dir: string, optimizer: AdamW): void {
  const path = join(dir, OPTIMIZER_FILE);
  if (!existsSync(path)) throw new Error(`supra: ${dir}: no ${OPTIMIZER_FILE} (not a training checkpoint)`);
  const tensors = new Map<string, Float32Array>();
  for (const [name, t] of readSafetensors(path)) {
    if (name === '__empty__') continue;
    if (!(t.data instanceof Float32Array)) throw new Error(`supra: ${path}: tensor ${name} is not float`);
    tensors.set(name, t.data);
  }
  optimizer.loadStateTensors(tensors, path);
}
