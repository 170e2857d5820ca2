// Shared RoPE tables (HF float32 angle convention, see ops.ropeTables), grown on demand and shared by
// every layer and model with the same (theta, dim), as arena buffers the rope kernel reads in place.
import { ropeTables } from '../core/ops.js';
import { toArena } from '../core/memory.js';

export class RopeTable {
  private cosBuf: Float32Array = new Float32Array(0);
  private sinBuf: Float32Array = new Float32Array(0);
  private positions = 0;

  constructor(readonly theta: number, readonly dim: number) {
    if (dim % 2 !== 0) throw new Error(`supra: RoPE needs an even head dim, got ${dim}`);
  }

  /** cos/sin [positions, dim/2] covering positions 0 … n−1 at least. Take afresh on each call. */
  get(n: number): { cos: Float32Array; sin: Float32Array } {
    if (n > this.positions) {
      // Each entry depends only on its position, so a longer table agrees with the shorter one.
      const cap = Math.max(n, 2 * this.positions, 256);
      const t = ropeTables(cap, this.dim, this.theta);
      this.cosBuf = toArena(t.cos); // old tables are left to the arena's finalizer (views may be in use)
      this.sinBuf = toArena(t.sin);
      this.positions = cap;
    }
    return { cos: this.cosBuf, sin: this.sinBuf };
  }
}

const tables = new Map<string, RopeTable>();

/** The shared table for (theta, dim). */
export function ropeTable(theta: number, dim: number): RopeTable {
  const key = `${theta}/${dim}`;
  let t = tables.get(key);
  if (!t) {
    t = new RopeTable(theta, dim);
    tables.set(key, t);
  }
  return t;
}
