// SUPRA linear attention on per-head features: the math between the feature maps and the GroupNorm.
//
//   o_t = Σ_{j≤t} γ^(t−j) (q_t·k_j)/√Dk · v_j        (no softmax, no denominator; one γ per head)
//
// Three forms that compute the same thing:
//   parallel  — quadratic: scores Q·Kᵀ times the full masked decay matrix, then ·V (a check);
//   chunked   — linear in T: within a chunk the masked decayed scores, across chunks a carried state;
//   recurrent — one token at a time: S' = S + kᵀv/√Dk, o = q·S', S ← γ·S'.
// The carried state is always the reference's: already multiplied by γ (C = γ·S_t), so that the
// chunked form only ever needs decay powers γ^n with n ≥ 0, every factor ≤ 1 (no γ^(−i), no overflow).
//
// Layout: q, k [B, H, T, Dk], v and o [B, H, T, Dv] (head-major; kv heads already repeated), state
// [B, H, Dk, Dv]. Every product is one batched matmul over the B·H heads.
import type { MatmulDecay } from '../core/backend.js';
import * as ops from '../core/ops.js';
import { allocF32, free } from '../core/memory.js';
import type { Decay } from '../io/config.js';
import { Workspace } from './workspace.js';

// ---------------------------------------------------------------- decay slopes

/** ALiBi slopes for a power of two n: 2^(−8(h+1)/n). */
function powerOfTwoSlopes(n: number): number[] {
  const out: number[] = [];
  for (let h = 0; h < n; h++) out.push(Math.pow(2, (-8 * (h + 1)) / n));
  return out;
}

/**
 * Lightning-Attention / ALiBi slopes: for H a power of two, 2^(−8(h+1)/H); otherwise the p = 2^⌊log2 H⌋
 * power-of-two slopes followed by every other slope of the 2p list, H in all (not monotonic).
 */
export function lightningSlopes(heads: number): number[] {
  if (!Number.isInteger(heads) || heads < 1) throw new RangeError(`supra: bad head count ${heads}`);
  const p = 2 ** Math.floor(Math.log2(heads));
  if (p === heads) return powerOfTwoSlopes(heads);
  const extra = powerOfTwoSlopes(2 * p).filter((_, i) => i % 2 === 0);
  return [...powerOfTwoSlopes(p), ...extra.slice(0, heads - p)];
}

/**
 * Per-head decay slopes (γ_h = exp(−slope_h)) for a decay setting: 'lightning' (ALiBi slopes),
 * 'retnet' (γ_h = 1 − 2^(−5−h)), 'none' (γ = 1).
 */
export function decaySlopes(heads: number, decay: Decay): Float64Array {
  const s = new Float64Array(heads);
  if (decay === 'lightning') s.set(lightningSlopes(heads));
  else if (decay === 'retnet') for (let h = 0; h < heads; h++) s[h] = -Math.log1p(-Math.pow(2, -5 - h));
  else if (decay !== 'none') throw new Error(`supra: unknown decay "${String(decay)}"`);
  return s;
}

/** γ_h = exp(−slope_h). */
export function decayGammas(heads: number, decay: Decay): Float64Array {
  if (decay === 'retnet') {
    const g = new Float64Array(heads);
    for (let h = 0; h < heads; h++) g[h] = 1 - Math.pow(2, -5 - h);
    return g;
  }
  return decaySlopes(heads, decay).map((s) => Math.exp(-s));
}

// ---------------------------------------------------------------- the operator

export interface LinearAttentionOptions {
  heads: number;
  dk: number;
  dv: number;
  /** Per-head slopes, γ_h = exp(−slope_h) (see decaySlopes). */
  slopes: Float64Array | number[];
  /** Tokens per chunk of the chunked form (default 64). */
  chunkSize?: number;
  /**
   * Where the chunked form keeps its decayed copies of q, k, v and dO for one call ([B, H, T, D] each,
   * sharedTrainingBytes): a workspace the layers share (they run one at a time). Default: its own.
   */
  scratch?: Workspace;
}

/**
 * Linear attention over per-head q̃, k̃, v. Scratch buffers live in the arena and are allocated once per
 * (B, T, chunk size); call free() to return them.
 */
export class LinearAttention {
  readonly heads: number;
  readonly dk: number;
  readonly dv: number;
  readonly slopes: Float64Array;
  readonly scale: number;
  private chunk: number;

  // γ_h^n for n = 0..chunk (powStride = chunk + 1), in float64, in the arena (the kernels read them);
  // powersBlock is the arena block under them
  private powersBlock: Float32Array | null = null;
  private powers: Float64Array = new Float64Array(0);
  private powStride = 0;
  // workspace for (B, T, chunk)
  private wsKey = '';
  private decayFull: Float32Array | null = null; // [H, C, C]: scale·γ^(i−j) for j ≤ i, else 0
  private decayTail: Float32Array | null = null; // [H, L, L] for the last chunk when T % C ≠ 0
  private scores: Float32Array | null = null; // [BH, C, C]
  private states: Float32Array | null = null; // [nChunks + 1, BH, Dk, Dv]: carried state entering each chunk
  private dState: Float32Array | null = null; // [BH, Dk, Dv]
  private statesValid = false; // states hold the chunk states of the last whole-sequence forward
  private readonly shared: Workspace; // the decayed rows of one call
  private readonly ownsShared: boolean; // no scratch was given: free() returns it too
  // parallel form
  private parKey = '';
  private parScores: Float32Array | null = null; // [BH, T, T]
  private parDecay: Float32Array | null = null; // [H, T, T]

  constructor(options: LinearAttentionOptions) {
    const { heads, dk, dv } = options;
    for (const [k, v] of Object.entries({ heads, dk, dv })) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`supra: linear attention ${k} must be a positive integer, got ${v}`);
    }
    if (options.slopes.length !== heads) throw new RangeError(`supra: ${options.slopes.length} decay slopes for ${heads} heads`);
    this.heads = heads;
    this.dk = dk;
    this.dv = dv;
    this.slopes = Float64Array.from(options.slopes);
    for (const s of this.slopes) if (!(s >= 0) || !Number.isFinite(s)) throw new RangeError(`supra: decay slope ${s} must be finite and ≥ 0`);
    this.scale = 1 / Math.sqrt(dk);
    this.chunk = 0;
    this.setChunkSize(options.chunkSize ?? 64);
    this.shared = options.scratch ?? new Workspace();
    this.ownsShared = !options.scratch;
  }

  get chunkSize(): number {
    return this.chunk;
  }

  setChunkSize(chunk: number): void {
    if (!Number.isInteger(chunk) || chunk < 1) throw new RangeError(`supra: chunk size must be a positive integer, got ${chunk}`);
    if (chunk === this.chunk) return;
    this.chunk = chunk;
    this.powStride = chunk + 1;
    if (this.powersBlock) free(this.powersBlock);
    this.powersBlock = allocF32(2 * this.heads * this.powStride);
    this.powers = new Float64Array(this.powersBlock.buffer, this.powersBlock.byteOffset, this.heads * this.powStride);
    for (let h = 0; h < this.heads; h++) {
      // exp(−slope·n) directly: no repeated products, no negative exponents
      for (let n = 0; n <= chunk; n++) this.powers[h * this.powStride + n] = Math.exp(-this.slopes[h]! * n);
    }
    this.freeWorkspace();
  }

  /** γ_h = exp(−slope_h). */
  gammas(): Float64Array {
    return this.slopes.map((s) => Math.exp(-s));
  }

  private fillDecayMatrix(dst: Float32Array, L: number): void {
    const H = this.heads;
    for (let h = 0; h < H; h++) {
      const o = h * L * L;
      for (let i = 0; i < L; i++) {
        for (let j = 0; j < L; j++) {
          dst[o + i * L + j] = j <= i ? this.scale * Math.exp(-this.slopes[h]! * (i - j)) : 0;
        }
      }
    }
  }

  private ensureWorkspace(B: number, T: number, keepStates: boolean): void {
    const C = Math.min(this.chunk, T);
    const key = `${B}x${T}x${this.chunk}`;
    if (key !== this.wsKey) {
      this.freeWorkspace();
      this.wsKey = key;
      const H = this.heads;
      const BH = B * H;
      this.decayFull = allocF32(H * C * C);
      this.fillDecayMatrix(this.decayFull, C);
      const tail = T % C;
      if (tail !== 0) {
        this.decayTail = allocF32(H * tail * tail);
        this.fillDecayMatrix(this.decayTail, tail);
      }
      this.scores = allocF32(BH * C * C);
      this.dState = allocF32(BH * this.dk * this.dv);
    }
    if (keepStates && !this.states) {
      const nChunks = Math.ceil(T / this.chunk);
      this.states = allocF32((nChunks + 1) * B * this.heads * this.dk * this.dv);
    }
  }

  /** scores[bh] = (Q_c·K_cᵀ) ⊙ (scale·γ^(i−j), masked) for the chunk of L tokens at s. */
  private chunkScores(q: Float32Array, k: Float32Array, B: number, T: number, s: number, L: number): Float32Array {
    const { heads: H, dk: Dk } = this;
    const S = this.scores!;
    ops.matmul({
      transA: false, transB: true, m: L, n: L, k: Dk,
      a: q.subarray(s * Dk), lda: Dk, strideA: T * Dk,
      b: k.subarray(s * Dk), ldb: Dk, strideB: T * Dk,
      c: S, ldc: L, strideC: L * L, batch: B * H, maskC: this.decayMask(T, L),
    });
    return S;
  }

  /**
   * The mask of an L×L chunk of a T-token sequence's scores, applied by the product that makes them:
   * S[b, h] ⊙= scale·γ_h^(i−j) (masked to j ≤ i).
   */
  private decayMask(T: number, L: number): { pattern: Float32Array; period: number } {
    return { pattern: L === Math.min(this.chunk, T) ? this.decayFull! : this.decayTail!, period: this.heads };
  }

  /** The decay of a state block by γ_h^L (from `from`'s block, or its own), applied by the product that adds to it. */
  private stateDecay(L: number, from?: Float32Array): MatmulDecay {
    return { powers: this.powers, powStride: this.powStride, heads: this.heads, exponent: L, ...(from ? { from } : {}) };
  }

  /**
   * x [B, H, T, D] with every chunk's rows decayed, in shared buffer `slot`: row i of a chunk of L rows times
   * mult·γ^i, or with fromEnd mult·γ^(L−i). One pass over the sequence, not one call per chunk; the products
   * read chunk s at offset s·D with the head stride T·D, as from x itself.
   */
  private decayed(slot: 0 | 1 | 2, x: Float32Array, B: number, T: number, D: number, mult: number, fromEnd: boolean): Float32Array {
    const BH = B * this.heads;
    const out = this.shared.get(`linearAttention.decayed${slot}`, BH * T * D);
    ops.decayChunkRows(x, out, BH, this.heads, T, D, this.chunk, this.powers, this.powStride, mult, fromEnd);
    return out;
  }

  /**
   * Chunked forward. q, k: [B, H, T, Dk]; v: [B, H, T, Dv]; o (overwritten): [B, H, T, Dv].
   * state: the carried state [B, H, Dk, Dv] to start from (null: zero), advanced in place past the T tokens.
   * keepForBackward: keep every chunk's entering state for backward() (a whole sequence from state 0).
   */
  forwardChunked(
    q: Float32Array, k: Float32Array, v: Float32Array, o: Float32Array, B: number, T: number,
    state: Float32Array | null = null, keepForBackward = false,
  ): void {
    this.checkSizes(q, k, v, o, B, T, state);
    if (keepForBackward && state) throw new Error('supra: linear attention keeps activations only for a whole sequence from state 0');
    this.ensureWorkspace(B, T, keepForBackward);
    const { heads: H, dk: Dk, dv: Dv, chunk } = this;
    const BH = B * H;
    const stateSize = BH * Dk * Dv;
    // Without a state to keep for backward, the carried state is updated in place (the caller's, or scratch).
    let carried: Float32Array;
    if (keepForBackward) {
      carried = this.states!.subarray(0, stateSize);
      carried.fill(0);
    } else if (state) carried = state;
    else {
      carried = this.dState!;
      carried.fill(0);
    }
    let stateIsZero = !state;
    // γ^i·q_i for the carried state's term (no chunk reads a state when there is one chunk from zero), and
    // scale·γ^(L−j)·k_j for the state's update
    const Qd = !state && T <= chunk ? null : this.decayed(0, q, B, T, Dk, 1, false);
    const Kd = this.decayed(1, k, B, T, Dk, this.scale, true);
    for (let s = 0, n = 0; s < T; s += chunk, n++) {
      const L = Math.min(chunk, T - s);
      const Vc = v.subarray(s * Dv);
      const Oc = o.subarray(s * Dv);
      // intra-chunk: masked decayed scores · V
      const S = this.chunkScores(q, k, B, T, s, L);
      ops.matmul({
        transA: false, transB: false, m: L, n: Dv, k: L,
        a: S, lda: L, strideA: L * L, b: Vc, ldb: Dv, strideB: T * Dv, c: Oc, ldc: Dv, strideC: T * Dv, batch: BH,
      });
      // inter-chunk: o_i += γ^i · q_i · C (C already carries one γ)
      if (!stateIsZero) {
        ops.matmul({
          transA: false, transB: false, m: L, n: Dv, k: Dk,
          a: Qd!.subarray(s * Dk), lda: Dk, strideA: T * Dk, b: carried, ldb: Dv, strideB: Dk * Dv, c: Oc, ldc: Dv, strideC: T * Dv,
          batch: BH, beta: 1,
        });
      }
      // state: C ← γ^L·C + Σ_j scale·γ^(L−j) k_jᵀ v_j
      // (kept for backward, the next chunk's state is a block of its own: γ^L times this one, not a copy then a decay)
      const next = keepForBackward ? this.states!.subarray((n + 1) * stateSize, (n + 2) * stateSize) : carried;
      ops.matmul({
        transA: true, transB: false, m: Dk, n: Dv, k: L,
        a: Kd.subarray(s * Dk), lda: Dk, strideA: T * Dk, b: Vc, ldb: Dv, strideB: T * Dv, c: next, ldc: Dv, strideC: Dk * Dv,
        batch: BH, beta: 1, decayC: this.stateDecay(L, keepForBackward ? carried : undefined),
      });
      carried = next;
      stateIsZero = false;
    }
    if (keepForBackward) this.statesValid = true;
    else this.statesValid = false;
  }

  /**
   * Parallel (quadratic) forward of a whole sequence from state 0: (Q·Kᵀ ⊙ D)·V with the full T×T
   * masked decay matrix D = scale·γ^(i−j). O(T²) memory; a check for the other forms.
   */
  forwardParallel(q: Float32Array, k: Float32Array, v: Float32Array, o: Float32Array, B: number, T: number): void {
    this.checkSizes(q, k, v, o, B, T, null);
    const { heads: H, dk: Dk, dv: Dv } = this;
    const key = `${B}x${T}`;
    if (key !== this.parKey) {
      this.freeParallel();
      this.parKey = key;
      this.parScores = allocF32(B * H * T * T);
      this.parDecay = allocF32(H * T * T);
      this.fillDecayMatrix(this.parDecay, T);
    }
    const S = this.parScores!;
    ops.matmul({ transA: false, transB: true, m: T, n: T, k: Dk, a: q, b: k, c: S, batch: B * H, strideA: T * Dk, strideB: T * Dk, strideC: T * T });
    ops.mulBlocks(S, this.parDecay!, B, H * T * T);
    ops.matmul({ transA: false, transB: false, m: T, n: Dv, k: T, a: S, b: v, c: o, batch: B * H, strideA: T * T, strideB: T * Dv, strideC: T * Dv });
    this.statesValid = false;
  }

  /**
   * Recurrent forward, token by token as the reference's recurrent_forward: S' = C + kᵀv·scale,
   * o = q·S', C ← γ·S'. state [B, H, Dk, Dv] (null: start from zero) is advanced in place.
   */
  forwardRecurrent(
    q: Float32Array, k: Float32Array, v: Float32Array, o: Float32Array, B: number, T: number,
    state: Float32Array | null = null,
  ): void {
    this.checkSizes(q, k, v, o, B, T, state);
    const { heads: H, dk: Dk, dv: Dv } = this;
    const BH = B * H;
    let S = state;
    if (!S) {
      this.ensureWorkspace(B, T, false);
      S = this.dState!;
      S.fill(0);
    }
    // one kernel call: per head and token, one pass over the state (add kᵀv, read o, decay)
    ops.linearAttentionStep(q, k, v, o, S, BH, H, T, Dk, Dv, this.scale, this.powers, this.powStride);
    this.statesValid = false;
  }

  /**
   * One decoding step (one token per sequence, the state advanced in place) from a SUPRA layer's raw features
   * to its GroupNorm's output, with the work around the step in the same call where the backend has it
   * (ops.fusedRecurrentStep: ReLU, repeat_kv from Hkv heads into kRep and vRep, RoPE at `start`, GroupNorm).
   */
  stepFused(
    q: Float32Array, k: Float32Array, v: Float32Array, kRep: Float32Array | null, vRep: Float32Array | null, o: Float32Array,
    out: Float32Array, rstd: Float32Array, B: number, Hkv: number, state: Float32Array, cos: Float32Array, sin: Float32Array,
    start: number, eps: number,
  ): void {
    this.checkState(state, B);
    ops.fusedRecurrentStep(q, k, v, kRep, vRep, o, out, rstd, state, cos, sin, this.powers, B, this.heads, Hkv, this.dk, this.dv,
      start, this.scale, this.powStride, eps);
    this.statesValid = false;
  }

  /** A decoding state for B sequences: [B, H, Dk, Dv] at least. */
  private checkState(state: Float32Array, B: number): void {
    if (state.length < B * this.heads * this.dk * this.dv) {
      throw new RangeError(`supra: linear attention state holds ${state.length} values, expected ${B * this.heads * this.dk * this.dv}`);
    }
  }

  /**
   * stepFused from the layer's normed input x through its projections (ops.fusedRecurrentLayerStep: q, k, v from
   * x, o_proj's output into y) in one backend call where it has one; false, having done nothing, otherwise.
   */
  stepFusedLayer(
    x: Float32Array, hidden: number, qProj: ops.StepProjection, kProj: ops.StepProjection, vProj: ops.StepProjection,
    oProj: ops.StepProjection, y: Float32Array,
    q: Float32Array, k: Float32Array, v: Float32Array, kRep: Float32Array | null, vRep: Float32Array | null, o: Float32Array,
    out: Float32Array, rstd: Float32Array, B: number, Hkv: number, state: Float32Array, cos: Float32Array, sin: Float32Array,
    start: number, eps: number,
  ): boolean {
    this.checkState(state, B);
    const done = ops.fusedRecurrentLayerStep(x, hidden, qProj, kProj, vProj, oProj, y, q, k, v, kRep, vRep, o, out, rstd, state, cos, sin,
      this.powers, B, this.heads, Hkv, this.dk, this.dv, start, this.scale, this.powStride, eps);
    if (done) this.statesValid = false;
    return done;
  }

  /** The chunk states of a whole sequence from state 0 (the state half of forwardChunked), for backward. */
  private computeStates(k: Float32Array, v: Float32Array, B: number, T: number): void {
    this.ensureWorkspace(B, T, true);
    const { heads: H, dk: Dk, dv: Dv, chunk } = this;
    const BH = B * H;
    const stateSize = BH * Dk * Dv;
    this.states!.subarray(0, stateSize).fill(0);
    const Kd = this.decayed(1, k, B, T, Dk, this.scale, true);
    for (let s = 0, n = 0; s < T; s += chunk, n++) {
      const L = Math.min(chunk, T - s);
      const next = this.states!.subarray((n + 1) * stateSize, (n + 2) * stateSize);
      ops.matmul({
        transA: true, transB: false, m: Dk, n: Dv, k: L,
        a: Kd.subarray(s * Dk), lda: Dk, strideA: T * Dk, b: v.subarray(s * Dv), ldb: Dv, strideB: T * Dv, c: next, ldc: Dv, strideC: Dk * Dv,
        batch: BH, beta: 1, decayC: this.stateDecay(L, this.states!.subarray(n * stateSize, (n + 1) * stateSize)),
      });
    }
    this.statesValid = true;
  }

  /**
   * Backward of a whole sequence from state 0 (any form: the math is the same), chunk by chunk in
   * reverse with the gradient of the carried state. dq, dk, dv are overwritten.
   */
  backward(
    q: Float32Array, k: Float32Array, v: Float32Array, dout: Float32Array,
    dq: Float32Array, dk: Float32Array, dv: Float32Array, B: number, T: number,
  ): void {
    this.checkSizes(q, k, v, dout, B, T, null);
    this.checkSizes(dq, dk, dv, dout, B, T, null);
    if (!this.statesValid || this.wsKey !== `${B}x${T}x${this.chunk}` || !this.states) this.computeStates(k, v, B, T);
    const { heads: H, dk: Dk, dv: Dv, chunk } = this;
    const BH = B * H;
    const stateSize = BH * Dk * Dv;
    const G = this.dState!; // d loss / d (carried state leaving the current chunk)
    G.fill(0);
    const nChunks = Math.ceil(T / chunk);
    // scale·γ^(L−j)·k_j and ·v_j (the state's paths), γ^i·dO_i (the carried state's term)
    const Kd = this.decayed(1, k, B, T, Dk, this.scale, true);
    const Vd = this.decayed(2, v, B, T, Dv, this.scale, true);
    const dOd = this.decayed(0, dout, B, T, Dv, 1, false);
    for (let n = nChunks - 1; n >= 0; n--) {
      const s = n * chunk;
      const L = Math.min(chunk, T - s);
      const Qc = q.subarray(s * Dk);
      const Kc = k.subarray(s * Dk);
      const Vc = v.subarray(s * Dv);
      const dOc = dout.subarray(s * Dv);
      const dQc = dq.subarray(s * Dk);
      const dKc = dk.subarray(s * Dk);
      const dVc = dv.subarray(s * Dv);
      const Cn = this.states!.subarray(n * stateSize, (n + 1) * stateSize);
      // dV = (QKᵀ⊙D)ᵀ·dO + Kd·G, Kd = scale·γ^(L−j)·K
      const S = this.chunkScores(q, k, B, T, s, L);
      ops.matmul({
        transA: true, transB: false, m: L, n: Dv, k: L,
        a: S, lda: L, strideA: L * L, b: dOc, ldb: Dv, strideB: T * Dv, c: dVc, ldc: Dv, strideC: T * Dv, batch: BH,
      });
      ops.matmul({
        transA: false, transB: false, m: L, n: Dv, k: Dk,
        a: Kd.subarray(s * Dk), lda: Dk, strideA: T * Dk, b: G, ldb: Dv, strideB: Dk * Dv, c: dVc, ldc: Dv, strideC: T * Dv, batch: BH, beta: 1,
      });
      // dS = (dO·Vᵀ) ⊙ D; dQ = dS·K, dK = dSᵀ·Q
      ops.matmul({
        transA: false, transB: true, m: L, n: L, k: Dv,
        a: dOc, lda: Dv, strideA: T * Dv, b: Vc, ldb: Dv, strideB: T * Dv, c: S, ldc: L, strideC: L * L, batch: BH,
        maskC: this.decayMask(T, L),
      });
      ops.matmul({
        transA: false, transB: false, m: L, n: Dk, k: L,
        a: S, lda: L, strideA: L * L, b: Kc, ldb: Dk, strideB: T * Dk, c: dQc, ldc: Dk, strideC: T * Dk, batch: BH,
      });
      ops.matmul({
        transA: true, transB: false, m: L, n: Dk, k: L,
        a: S, lda: L, strideA: L * L, b: Qc, ldb: Dk, strideB: T * Dk, c: dKc, ldc: Dk, strideC: T * Dk, batch: BH,
      });
      // inter-chunk: dQ_i += γ^i·dO_i·C_nᵀ
      ops.matmul({
        transA: false, transB: true, m: L, n: Dk, k: Dv,
        a: dOd.subarray(s * Dv), lda: Dv, strideA: T * Dv, b: Cn, ldb: Dv, strideB: Dk * Dv, c: dQc, ldc: Dk, strideC: T * Dk, batch: BH, beta: 1,
      });
      // state path into k: dK_j += scale·γ^(L−j)·v_j·Gᵀ
      ops.matmul({
        transA: false, transB: true, m: L, n: Dk, k: Dv,
        a: Vd.subarray(s * Dv), lda: Dv, strideA: T * Dv, b: G, ldb: Dv, strideB: Dk * Dv, c: dKc, ldc: Dk, strideC: T * Dk, batch: BH, beta: 1,
      });
      // G for the state entering this chunk: γ^L·G + Σ_i γ^i q_iᵀ dO_i
      ops.matmul({
        transA: true, transB: false, m: Dk, n: Dv, k: L,
        a: Qc, lda: Dk, strideA: T * Dk, b: dOd.subarray(s * Dv), ldb: Dv, strideB: T * Dv, c: G, ldc: Dv, strideC: Dk * Dv, batch: BH, beta: 1,
        decayC: this.stateDecay(L),
      });
    }
  }

  private checkSizes(q: Float32Array, k: Float32Array, v: Float32Array, o: Float32Array, B: number, T: number, state: Float32Array | null): void {
    if (!Number.isInteger(B) || B < 1 || !Number.isInteger(T) || T < 1) throw new RangeError(`supra: linear attention needs B, T ≥ 1, got B=${B} T=${T}`);
    const nq = B * this.heads * T * this.dk;
    const nv = B * this.heads * T * this.dv;
    const bad = (name: string, got: number, want: number) => {
      throw new RangeError(`supra: linear attention ${name} holds ${got} values, expected ${want} for [B=${B}, H=${this.heads}, T=${T}, ·]`);
    };
    if (q.length < nq) bad('q', q.length, nq);
    if (k.length < nq) bad('k', k.length, nq);
    if (v.length < nv) bad('v', v.length, nv);
    if (o.length < nv) bad('o', o.length, nv);
    if (state && state.length < B * this.heads * this.dk * this.dv) bad('state', state.length, B * this.heads * this.dk * this.dv);
  }

  private freeParallel(): void {
    if (this.parScores) free(this.parScores);
    if (this.parDecay) free(this.parDecay);
    this.parScores = this.parDecay = null;
    this.parKey = '';
  }

  private freeWorkspace(): void {
    for (const buf of [this.decayFull, this.decayTail, this.scores, this.states, this.dState]) if (buf) free(buf);
    this.decayFull = this.decayTail = this.scores = this.states = this.dState = null;
    this.wsKey = '';
    this.statesValid = false;
  }

  /**
   * Bytes of the chunked form's buffers for a training forward and backward of [B, T]: its chunk states
   * (kept for backward) and its per-chunk workspace (ensureWorkspace allocates exactly these).
   */
  trainingBytes(B: number, T: number): { kept: number; scratch: number } {
    const C = Math.min(this.chunk, T), H = this.heads, BH = B * H, tail = T % C;
    const nChunks = Math.ceil(T / this.chunk);
    const work = H * C * C + (tail ? H * tail * tail : 0) + BH * C * C + BH * this.dk * this.dv;
    return { kept: 4 * (nChunks + 1) * BH * this.dk * this.dv, scratch: 4 * work };
  }

  /**
   * Bytes of the decayed rows (decayed()'s three buffers) a training forward and backward of [B, T] take in the
   * shared scratch, under names every linear attention sharing it reuses.
   */
  sharedTrainingBytes(B: number, T: number): number[] {
    const rows = B * this.heads * T;
    return [rows * Math.max(this.dk, this.dv), rows * this.dk, rows * this.dv].map((n) => 4 * n);
  }

  /** Return every scratch buffer to the arena. */
  free(): void {
    this.freeWorkspace();
    this.freeParallel();
    if (this.ownsShared) this.shared.free();
  }
}
