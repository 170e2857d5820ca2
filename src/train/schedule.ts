// The learning-rate schedule of the paper's recipe (open_lm's cosine_lr): a linear warm-up to the peak,
// then a half cosine from the peak down to a floor. As in open_lm the cosine reaches the floor at
// step = total (one past the last update), so the last update uses a rate just above the floor.
//
//   step < warmup:   lr(step) = peak · (step + 1) / warmup
//   otherwise:       lr(step) = floor + ½ (1 + cos(π · (step − warmup) / (total − warmup))) · (peak − floor)
//
// `step` counts optimizer steps from 0 (the lr used by the first update is lr(0)). Every parameter group
// follows the same shape; a group with its own peak (the SUPRA kernels' --kernel-lr) gets a floor in
// the same proportion, floor · groupPeak / peak.

export interface LrSchedule {
  /** Peak learning rate, reached at the end of the warm-up. */
  peak: number;
  /** The floor the cosine ends at (≤ peak). */
  floor: number;
  /** Linear warm-up steps (0: start at the peak). */
  warmupSteps: number;
  /** Total optimizer steps of the run (the cosine ends at the last one). */
  totalSteps: number;
}

export function checkSchedule(s: LrSchedule): void {
  const bad = (msg: string) => {
    throw new RangeError(`supra: lr schedule: ${msg}`);
  };
  if (!(Number.isFinite(s.peak) && s.peak >= 0)) bad(`peak lr must be a finite number ≥ 0, got ${s.peak}`);
  if (!(Number.isFinite(s.floor) && s.floor >= 0)) bad(`min lr must be a finite number ≥ 0, got ${s.floor}`);
  if (s.floor > s.peak) bad(`min lr ${s.floor} is above the peak lr ${s.peak}`);
  if (!Number.isInteger(s.warmupSteps) || s.warmupSteps < 0) bad(`warm-up steps must be an integer ≥ 0, got ${s.warmupSteps}`);
  if (!Number.isInteger(s.totalSteps) || s.totalSteps < 1) bad(`total steps must be an integer ≥ 1, got ${s.totalSteps}`);
}

/** The learning rate for optimizer step `step` (0-based). */
export function lrAt(step: number, s: LrSchedule): number {
  if (!Number.isInteger(step) || step < 0) throw new RangeError(`supra: lr schedule: step must be an integer ≥ 0, got ${step}`);
  if (step < s.warmupSteps) return (s.peak * (step + 1)) / s.warmupSteps;
  const decaySteps = s.totalSteps - s.warmupSteps;
  if (decaySteps <= 0) return s.peak; // the whole run is warm-up: hold the peak
  const progress = Math.min(1, (step - s.warmupSteps) / decaySteps);
  return s.floor + 0.5 * (1 + Math.cos(Math.PI * progress)) * (s.peak - s.floor);
}

/** The same schedule for a group whose peak is `groupPeak` (floor scaled in proportion). */
export function scaledSchedule(s: LrSchedule, groupPeak: number): LrSchedule {
  const floor = s.peak > 0 ? (s.floor * groupPeak) / s.peak : 0;
  return { ...s, peak: groupPeak, floor };
}
