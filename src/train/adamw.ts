// AdamW (PyTorch's torch.optim.AdamW): decoupled weight decay, bias-corrected moments, one step count
// per parameter. Parameters come in groups, each with its own hyperparameters, so the new SUPRA kernels
// can train at a different learning rate from the teacher weights. The update itself is ops.adamw.
import * as ops from '../core/ops.js';
import { free, inArena } from '../core/memory.js';
import { allocF32In } from '../core/weights.js';
import type { Param } from '../layers/types.js';

export interface AdamWHyper {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
}

/** A parameter group; unset hyperparameters take the optimizer's defaults. */
export interface ParamGroup extends Partial<AdamWHyper> {
  params: Param[];
  /** A label for messages and logs (e.g. "kernels"). */
  name?: string;
}

export interface ResolvedGroup extends AdamWHyper {
  params: Param[];
  name: string;
}

/** PyTorch's defaults. */
export const ADAMW_DEFAULTS: AdamWHyper = { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2 };

interface Moments {
  m: Float32Array;
  v: Float32Array;
  step: number;
}

function checkHyper(h: AdamWHyper, where: string): void {
  const bad = (what: string, v: unknown) => {
    throw new RangeError(`supra: AdamW ${where}: ${what} ${JSON.stringify(v)}`);
  };
  if (!(h.lr >= 0) || !Number.isFinite(h.lr)) bad('lr must be a finite number ≥ 0, got', h.lr);
  if (!Array.isArray(h.betas) || h.betas.length !== 2 || !h.betas.every((b) => b >= 0 && b < 1)) bad('betas must be two numbers in [0, 1), got', h.betas);
  if (!(h.eps >= 0) || !Number.isFinite(h.eps)) bad('eps must be a finite number ≥ 0, got', h.eps);
  if (!(h.weightDecay >= 0) || !Number.isFinite(h.weightDecay)) bad('weightDecay must be a finite number ≥ 0, got', h.weightDecay);
}

export class AdamW {
  readonly groups: ResolvedGroup[];
  private readonly moments = new Map<Param, Moments>();

  /** params: one list (a single group) or groups; defaults fill what a group leaves unset. */
  constructor(params: Param[] | ParamGroup[], defaults: Partial<AdamWHyper> = {}) {
    const base: AdamWHyper = { ...ADAMW_DEFAULTS, ...defaults };
    const groups: ParamGroup[] = params.length > 0 && 'params' in params[0]! ? (params as ParamGroup[]) : [{ params: params as Param[] }];
    const seen = new Set<Param>();
    this.groups = groups.map((g, i) => {
      const name = g.name ?? `group ${i}`;
      const resolved: ResolvedGroup = {
        params: [...g.params],
        name,
        lr: g.lr ?? base.lr,
        betas: [...(g.betas ?? base.betas)] as [number, number],
        eps: g.eps ?? base.eps,
        weightDecay: g.weightDecay ?? base.weightDecay,
      };
      checkHyper(resolved, name);
      for (const p of resolved.params) {
        if (seen.has(p)) throw new Error(`supra: AdamW: parameter ${p.name} appears in more than one group`);
        seen.add(p);
      }
      return resolved;
    });
  }

  /**
   * Zero moments for those of `params` that have none, beside their parameter: in the arena, or outside
   * it with a parameter kept there. Those outside share one buffer for m and one for v, so a model's many
   * small matrices fault in as huge pages (core/weights.ts heapArray) rather than 4 KiB at a time: SmolLM-135M's
   * first AdamW step spent ~4 s faulting its moments in on the 2-core Zen 4 VM (a --cpu-prof, 2026-12-07).
   */
  private ensureMoments(params: Iterable<Param>): void {
    const outside: Param[] = [];
    for (const p of params) {
      if (this.moments.has(p)) continue;
      if (inArena(p.data)) this.moments.set(p, { m: allocF32In(p.data.length, 'arena'), v: allocF32In(p.data.length, 'arena'), step: 0 });
      else outside.push(p);
    }
    const total = outside.reduce((n, p) => n + p.data.length, 0);
    if (total === 0) return;
    const m = allocF32In(total, 'heap');
    const v = allocF32In(total, 'heap');
    let at = 0;
    for (const p of outside) {
      const n = p.data.length;
      this.moments.set(p, { m: m.subarray(at, at + n), v: v.subarray(at, at + n), step: 0 });
      at += n;
    }
  }

  /**
   * One update of every parameter that has a gradient (a parameter without one is skipped, as PyTorch
   * skips grad None, and its step count does not advance). Non-finite gradients are an error.
   * `only` limits the update to some groups; the others keep their weights, moments and step counts.
   * `gradScale` multiplies every gradient value (in float32, in the update's own pass: the bits of scaling
   * the gradients first); `clearGrads` zeroes each updated gradient as the update reads it. Returns the
   * parameters updated (with clearGrads, those whose gradients are now zero).
   */
  step(only?: (group: ResolvedGroup) => boolean, { gradScale = 1, clearGrads = false }: { gradScale?: number; clearGrads?: boolean } = {}): Param[] {
    if (!Number.isFinite(gradScale)) throw new RangeError(`supra: AdamW: gradScale must be a finite number, got ${gradScale}`);
    const updated: Param[] = [];
    const groups = this.groups.filter((g) => !only || only(g));
    for (const g of groups) {
      checkHyper(g, g.name);
      for (const p of g.params) {
        if (p.grad && p.grad.length !== p.data.length) {
          throw new Error(`supra: AdamW: ${p.name}: gradient holds ${p.grad.length} values, the parameter ${p.data.length}`);
        }
      }
    }
    this.ensureMoments(groups.flatMap((g) => g.params.filter((p) => p.grad)));
    for (const g of groups) {
      for (const p of g.params) {
        if (!p.grad) continue;
        const st = this.moments.get(p)!;
        st.step++;
        ops.adamw(p.data, p.grad, st.m, st.v, g.lr, g.betas[0], g.betas[1], g.eps, g.weightDecay, st.step, p.data.length, gradScale, clearGrads);
        updated.push(p);
      }
    }
    return updated;
  }

  /** Zero every gradient of every group. */
  zeroGrad(): void {
    for (const g of this.groups) for (const p of g.params) p.grad?.fill(0);
  }

  /** Set the learning rate of every group (a schedule), or of one group by index or name. */
  setLr(lr: number, group?: number | string): void {
    const targets = group === undefined ? this.groups : this.groups.filter((g, i) => i === group || g.name === group);
    if (targets.length === 0) throw new Error(`supra: AdamW: no parameter group ${JSON.stringify(group)}`);
    for (const g of targets) g.lr = lr;
  }

  /** Steps taken by a parameter (0 before its first update). */
  stepCount(p: Param): number {
    return this.moments.get(p)?.step ?? 0;
  }

  /**
   * The optimizer state as named tensors (to save beside a checkpoint): `exp_avg.<name>`,
   * `exp_avg_sq.<name>` and `step.<name>` ([1]) for every parameter that has taken a step.
   */
  stateTensors(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const [p, st] of this.moments) {
      out.set(`exp_avg.${p.name}`, st.m);
      out.set(`exp_avg_sq.${p.name}`, st.v);
      out.set(`step.${p.name}`, Float32Array.of(st.step));
    }
    return out;
  }

  /** Restore a state saved by stateTensors(); parameters absent from it start fresh. */
  loadStateTensors(tensors: ReadonlyMap<string, ArrayLike<number>>, source = 'optimizer state'): void {
    const saved: { p: Param; m: ArrayLike<number>; v: ArrayLike<number>; step: number }[] = [];
    for (const g of this.groups) {
      for (const p of g.params) {
        const m = tensors.get(`exp_avg.${p.name}`);
        const v = tensors.get(`exp_avg_sq.${p.name}`);
        const step = tensors.get(`step.${p.name}`);
        if (!m && !v && !step) continue;
        if (!m || !v || !step) throw new Error(`supra: ${source}: ${p.name} lacks one of exp_avg, exp_avg_sq, step`);
        if (m.length !== p.data.length || v.length !== p.data.length) {
          throw new Error(`supra: ${source}: ${p.name}: moments hold ${m.length}/${v.length} values, the parameter ${p.data.length}`);
        }
        const n = step[0]!;
        if (!Number.isInteger(n) || n < 0) throw new Error(`supra: ${source}: ${p.name}: bad step ${n}`);
        saved.push({ p, m, v, step: n });
      }
    }
    this.ensureMoments(saved.map((s) => s.p));
    for (const { p, m, v, step } of saved) {
      const st = this.moments.get(p)!;
      st.m.set(m);
      st.v.set(v);
      st.step = step;
    }
  }

  /** Return the moment buffers to the arena. */
  free(): void {
    for (const st of this.moments.values()) {
      free(st.m);
      free(st.v);
    }
    this.moments.clear();
  }
}
