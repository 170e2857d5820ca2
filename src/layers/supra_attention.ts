// The SUPRA token mixer: the teacher's q/k/v/o projections around linear attention.
//
//   q, k, v = q_proj(x), k_proj(x), v_proj(x)
//   q̃ = relu(kernel_q(q)),  k̃ = relu(kernel_k(k))      (kernel_k is kernel_q itself when Hkv = H)
//   k̃, v = repeat_kv(k̃), repeat_kv(v)                   (query head h reads kv head ⌊h / (H/Hkv)⌋)
//   [qk-norm] q̃ = q_norm(q̃), k̃ = k_norm(k̃)             (over all H·Dk channels; 'rms' or gain-only 'layernorm')
//   q̃, k̃ = RoPE(q̃), RoPE(k̃)
//   o = linear_attention(q̃, k̃, v)                        (decay γ_h per head, scale 1/√Dk, no denominator)
//   out = o_proj(GroupNorm(o))                           (one group per head, no affine)
//
// normalization 'sum' (the paper's T2R-style ablation) replaces the GroupNorm by the classic denominator:
// o_t = N_t / (z_t + eps), z_t = Σ_{j≤t} γ^(t−j) (u_q,t·u_k,j)/√Dk over the un-rotated features u (≥ 0).
//
// Forward and backward side by side. Rows are tokens: [B·T, features] ("token-major"); the attention
// itself runs head-major [B, H, T, D] (see linear_attention.ts).
import * as ops from '../core/ops.js';
import type { StepProjection } from '../core/ops.js';
import { allocF32, free } from '../core/memory.js';
import { weightBytes } from '../core/weights.js';
import type { ModelConfig, SupraSettings } from '../io/config.js';
import { composeLinears, Linear, type ReadParam } from './linear.js';
import { LinearAttention, decaySlopes } from './linear_attention.js';
import { gradIfTrained, type ParamStore } from './params.js';
import { AttentionProjections, type GetParam } from './projections.js';
import { ropeTable, type RopeTable } from './rope.js';
import type { ActivationBytes, LinearAttentionInternals, MixerState, Param, StateTensor, TokenMixer } from './types.js';
import { Workspace } from './workspace.js';

export type AttentionForm = 'chunked' | 'parallel' | 'recurrent';

export interface SupraMixerOptions {
  /**
   * How a whole sequence is computed (default 'chunked'). With a state: 'recurrent' steps token by
   * token; 'chunked' and 'parallel' run the chunked form from the state.
   */
  form?: AttentionForm;
  /** Tokens per chunk of the chunked form (default 64). */
  chunkSize?: number;
  /**
   * Scratch buffers shared with the other layers (MixerContext.scratch), for values that live within
   * one call: decoding steps and backward temporaries. Default: the mixer's own.
   */
  scratch?: Workspace;
}

/**
 * The recurrent state of one SUPRA layer for B sequences: [B, H, Dk, Dv], already multiplied by γ. With
 * normalization 'sum' also the denominator's state [B, H, Dk] (its Dv = 1), already × γ as well.
 */
export class SupraState implements MixerState {
  position = 0;
  readonly data: Float32Array;
  /** The 'sum' denominator's state [B, H, Dk]; null under GroupNorm. */
  readonly normalizer: Float32Array | null;

  constructor(
    readonly batch: number,
    readonly heads: number,
    readonly dk: number,
    readonly dv: number,
    withNormalizer = false,
  ) {
    this.data = allocF32(batch * heads * dk * dv);
    this.normalizer = withNormalizer ? allocF32(batch * heads * dk) : null;
  }

  bytes(): number {
    return this.data.byteLength + (this.normalizer?.byteLength ?? 0);
  }

  /** A step's memory does not depend on the position: nothing grows with the context. */
  prefillBytes(): number {
    return 0;
  }

  /** The state, and under normalization 'sum' its denominator's state, as supra-state/2 stores them. */
  snapshot(): StateTensor[] {
    const { batch, heads, dk, dv } = this;
    return [
      { name: '', shape: [batch, heads, dk, dv], data: this.data },
      ...(this.normalizer ? [{ name: 'normalizer', shape: [batch, heads, dk], data: this.normalizer }] : []),
    ];
  }

  restore(tensors: ReadonlyMap<string, Float32Array>, position: number): void {
    for (const t of this.snapshot()) {
      const from = tensors.get(t.name);
      if (!from || from.length !== t.data.length) throw new Error(`supra: restoring a SUPRA state: tensor "${t.name}" is missing or has ${from?.length ?? 0} values, expected ${t.data.length}`);
      t.data.set(from);
    }
    this.position = position;
  }

  reset(): void {
    this.data.fill(0);
    this.normalizer?.fill(0);
    this.position = 0;
  }

  /** A new state with the same shape, contents and position. */
  clone(): SupraState {
    const c = new SupraState(this.batch, this.heads, this.dk, this.dv, this.normalizer !== null);
    c.data.set(this.data);
    if (this.normalizer) c.normalizer!.set(this.normalizer);
    c.position = this.position;
    return c;
  }

  free(): void {
    free(this.data);
    if (this.normalizer) free(this.normalizer);
  }
}

// ---------------------------------------------------------------- the mixer

// Scratch names are this mixer's names under "supra.", made once (a decoding step asks for ~10 a layer).
const scratchNames = new Map<string, string>();
function scratchName(name: string): string {
  let full = scratchNames.get(name);
  if (full === undefined) scratchNames.set(name, (full = `supra.${name}`));
  return full;
}

export class SupraAttention implements TokenMixer {
  readonly recurrent = true;
  readonly layer: number;
  readonly hidden: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number; // D = Dv
  readonly kernelDim: number; // Dk
  readonly settings: SupraSettings;
  readonly ropeTheta: number;
  readonly attention: LinearAttention;
  /** normalization 'sum': the denominator, the same operator with v ≡ 1 (Dv = 1); null under GroupNorm. */
  readonly normalizer: LinearAttention | null;
  form: AttentionForm;
  /**
   * No qk-norm and GroupNorm: the features need nothing token-major between the kernels and RoPE, so
   * forward and backward turn them in head-major layout (fewer passes over the activations).
   */
  private readonly plainFeatures: boolean;

  /** The teacher's q/k/v/o projections. */
  readonly proj: AttentionProjections;
  // SUPRA parameters
  readonly kernelQ: Linear;
  /** The key kernel: its own layer under GQA, the kernelQ object itself (shared) when Hkv = H. */
  readonly kernelK: Linear;
  readonly qNorm: Param | null;
  readonly kNorm: Param | null;
  /**
   * After foldForInference: kernel_q∘q_proj and kernel_k∘k_proj as one linear layer each (q̃ = relu(q(x))
   * before qk-norm and RoPE); q_proj, k_proj and the kernels are then gone. Null: the layers as trained.
   */
  private folded: { q: Linear; k: Linear } | null = null;

  private readonly rope: RopeTable;
  // activations kept from a training forward to its backward, and scratch for one call
  private readonly acts = new Workspace();
  private readonly scratch: Workspace;
  private x: Float32Array | null = null; // the training forward's input (the caller keeps it intact)
  // the (B, T) of the activations kept for backward, or null
  private saved: { B: number; T: number } | null = null;
  // the (B, T) and buffers of the last forward, for internals()
  private last: {
    B: number; T: number; q: Float32Array; k: Float32Array; v: Float32Array;
    attnRaw: Float32Array; attnGn: Float32Array; denominator: Float32Array | null;
  } | null = null;

  constructor(config: ModelConfig, getParam: GetParam, layer: number, options: SupraMixerOptions = {}) {
    if (!config.supra) throw new Error(`supra: layer ${layer}: a SUPRA mixer needs config.supra (architecture SupraForCausalLM)`);
    this.layer = layer;
    this.settings = config.supra;
    this.hidden = config.hidden_size;
    this.heads = config.num_attention_heads;
    this.kvHeads = config.num_key_value_heads;
    this.headDim = config.head_dim;
    this.kernelDim = config.head_dim; // the kernels are square (Dk = D), as in the reference
    this.ropeTheta = config.rope_theta;
    if (this.heads % this.kvHeads !== 0) throw new Error(`supra: layer ${layer}: ${this.heads} heads is not a multiple of ${this.kvHeads} kv heads`);
    if (this.kernelDim % 2 !== 0) throw new Error(`supra: layer ${layer}: kernel dim ${this.kernelDim} must be even for RoPE`);
    const { heads: H, kvHeads: Hkv, headDim: D, kernelDim: Dk } = this;
    const p = `model.layers.${layer}.self_attn`;
    this.proj = new AttentionProjections(config, getParam, p, 'weights-first');
    this.kernelQ = Linear.declare(getParam, `${p}.kernel_q`, H * D, H * Dk, true);
    this.kernelK = Hkv !== H ? Linear.declare(getParam, `${p}.kernel_k`, Hkv * D, Hkv * Dk, true) : this.kernelQ;
    const norm = this.settings.normalization;
    if (norm !== 'group_norm' && norm !== 'sum') throw new Error(`supra: layer ${layer}: unknown normalization "${String(norm)}" (expected group_norm or sum)`);
    if (norm === 'sum' && !(Number.isFinite(this.settings.normalizer_eps) && this.settings.normalizer_eps > 0)) {
      throw new Error(`supra: layer ${layer}: normalizer_eps must be a finite number > 0, got ${this.settings.normalizer_eps}`);
    }
    const qk = this.settings.qk_norm;
    this.qNorm = qk !== 'none' ? getParam(`${p}.q_norm.weight`, [H * Dk]) : null;
    this.kNorm = qk !== 'none' ? getParam(`${p}.k_norm.weight`, [H * Dk]) : null;
    this.scratch = options.scratch ?? this.acts;
    const slopes = decaySlopes(H, this.settings.decay);
    const chunkSize = options.chunkSize ?? 64;
    this.attention = new LinearAttention({ heads: H, dk: Dk, dv: D, slopes, chunkSize, scratch: this.scratch });
    this.normalizer = norm === 'sum' ? new LinearAttention({ heads: H, dk: Dk, dv: 1, slopes, chunkSize, scratch: this.scratch }) : null;
    this.form = options.form ?? 'chunked';
    this.plainFeatures = qk === 'none' && norm === 'group_norm';
    this.rope = ropeTable(this.ropeTheta, Dk);
  }

  /** A buffer of n floats: kept for backward (the mixer's own) or for this call only (shared scratch). */
  private buf(name: string, n: number, keep: boolean): Float32Array {
    return keep ? this.acts.get(name, n) : this.scratch.get(scratchName(name), n);
  }

  get chunkSize(): number {
    return this.attention.chunkSize;
  }

  setChunkSize(chunk: number): void {
    this.attention.setChunkSize(chunk);
    this.normalizer?.setChunkSize(chunk);
  }

  params(): Param[] {
    const list = this.folded
      ? [...this.folded.q.params(), ...this.folded.k.params(), ...this.proj.v.params(), ...this.proj.o.params(), this.qNorm, this.kNorm]
      : [...this.proj.params(), ...this.kernelQ.params(), ...this.kernelK.params(), this.qNorm, this.kNorm];
    return [...new Set(list.filter((p): p is Param => p !== null))];
  }

  /**
   * The feature maps' linear layers composed with the projections before them (TokenMixer.foldForInference):
   * φ(q) = relu(W_φ·(W_q·x + b_q) + b_φ) = relu((W_φW_q)·x + W_φb_q + b_φ), exactly, as RoPE and qk-norm
   * come after φ. W_φW_q has W_q's shape, so a token reads the teacher's attention bytes: the kernels'
   * H·Dk × H·D (and Hkv·Dk × Hkv·D) weights, 8–10% of the SUPRA model's at the sizes of the scale benchmark,
   * are no longer read, and prefill does one product where it did two.
   */
  foldForInference(store: ParamStore, read: ReadParam): void {
    if (this.folded) return;
    const p = `model.layers.${this.layer}.self_attn`;
    const q = composeLinears(store, `${p}.q_feature_map`, this.kernelQ, this.proj.q, read);
    let k: Linear;
    try {
      k = composeLinears(store, `${p}.k_feature_map`, this.kernelK, this.proj.k, read);
    } catch (e) {
      store.remove(q.params());
      throw e;
    }
    store.remove([...this.proj.q.params(), ...this.proj.k.params(), ...this.kernelQ.params(), ...this.kernelK.params()]);
    this.folded = { q, k };
  }

  foldingBytes(store: ParamStore): { arena: number; heap: number } {
    // composing [m, k] after [k, n]: composeLinears' float32 copies (arena) while it runs, and the composed
    // weight and bias it keeps; the query's is kept while the key's is made, the parts go after both
    const composition = (m: number, k: number, n: number) => {
      const matrix = weightBytes(store.typeFor([m, n]), m, n);
      const inArena = store.placeFor([m, n]) === 'arena';
      return { temporaries: 4 * (m * k + k * n + m * n), arena: 4 * m + (inArena ? matrix : 0), heap: inArena ? 0 : matrix };
    };
    const q = composition(this.heads * this.kernelDim, this.heads * this.headDim, this.hidden);
    const k = composition(this.kvHeads * this.kernelDim, this.kvHeads * this.headDim, this.hidden);
    const duringQuery = { arena: q.temporaries + q.arena, heap: q.heap };
    const duringKey = { arena: q.arena + k.temporaries + k.arena, heap: q.heap + k.heap };
    return duringQuery.arena + duringQuery.heap >= duringKey.arena + duringKey.heap ? duringQuery : duringKey;
  }

  newState(B: number): SupraState {
    return new SupraState(B, this.heads, this.kernelDim, this.headDim, this.normalizer !== null);
  }

  /**
   * The layer-internal values of the last forward, for inspection: q̃, k̃ (after relu, qk-norm, RoPE;
   * k̃ repeated) and v (repeated) [B, H, T, D], attnRaw [B, H, T, Dv] before GroupNorm, attnGn
   * [B, T, H·Dv] after it (the o_proj input). Under normalization 'sum' attnRaw is the numerator N,
   * attnGn = N / (z + eps), and denominator the z [B, T, H] (null under GroupNorm). Valid until the
   * next call of this mixer (after a decoding step, until the next call of any layer sharing its scratch).
   */
  internals(): {
    q: Float32Array; k: Float32Array; v: Float32Array; attnRaw: Float32Array; attnGn: Float32Array;
    denominator: Float32Array | null; B: number; T: number;
  } {
    if (!this.last) throw new Error('supra: no forward has run yet');
    return { ...this.last };
  }

  /** The scores' parts (see internals()) with the per-head decay and the 'sum' denominator's eps. */
  attentionInternals(): LinearAttentionInternals {
    const { B, T, q, k, denominator } = this.internals();
    return {
      kind: 'linear', B, T, heads: this.heads, kernelDim: this.kernelDim, slopes: this.attention.slopes,
      q, k, denominator, denominatorEps: this.settings.normalizer_eps,
    };
  }

  /**
   * One linear attention (the numerator, or the 'sum' denominator) over the call's tokens, in the mixer's
   * form. carried: the state to continue (advanced in place), or null for a whole sequence from 0, whose
   * chunk states are kept for backward.
   */
  private attend(att: LinearAttention, q: Float32Array, k: Float32Array, v: Float32Array, o: Float32Array, B: number, T: number, carried: Float32Array | null): void {
    if (carried) {
      // single tokens always step recurrently (the same math, no chunk workspace)
      if (this.form === 'recurrent' || T === 1) att.forwardRecurrent(q, k, v, o, B, T, carried);
      else att.forwardChunked(q, k, v, o, B, T, carried, false);
    } else if (this.form === 'parallel') att.forwardParallel(q, k, v, o, B, T);
    else if (this.form === 'recurrent') att.forwardRecurrent(q, k, v, o, B, T, null);
    else att.forwardChunked(q, k, v, o, B, T, null, true);
  }

  /**
   * A decoding step of folded plain features from x to o_proj's output in one backend call where it has one
   * (LinearAttention.stepFusedLayer); false, having done nothing, otherwise.
   */
  private stepFusedLayer(x: Float32Array, out: Float32Array, v: Float32Array, B: number, state: SupraState, cos: Float32Array, sin: Float32Array): boolean {
    const { heads: H, kvHeads: Hkv, headDim: D, kernelDim: Dk } = this;
    const projections = [this.folded!.q, this.folded!.k, this.proj.v, this.proj.o].map((l) => l.asProjection());
    if (projections.some((p) => p === null)) return false;
    const [qp, kp, vp, op] = projections as StepProjection[];
    const rep = H / Hkv;
    const qf = this.buf('qf', B * H * Dk, false), kf = this.buf('kf', B * Hkv * Dk, false);
    const kr = rep > 1 ? this.buf('kr', B * H * Dk, false) : null;
    const vt = rep > 1 ? this.buf('vt', B * H * D, false) : null;
    const oRaw = this.buf('oRaw', B * H * D, false);
    const gn = this.buf('gn', B * H * D, false);
    if (!this.attention.stepFusedLayer(x, this.hidden, qp!, kp!, vp!, op!, out, qf, kf, v, kr, vt, oRaw, gn, this.buf('gnRstd', B * H, false), B, Hkv,
      state.data, cos, sin, state.position, this.settings.group_norm_eps)) {
      return false;
    }
    state.position += 1;
    this.last = { B, T: 1, q: qf, k: kr ?? kf, v: vt ?? v, attnRaw: oRaw, attnGn: gn, denominator: null };
    return true;
  }

  forward(x: Float32Array, out: Float32Array, B: number, T: number, state?: MixerState | null): void {
    const { hidden, heads: H, kvHeads: Hkv, headDim: D, kernelDim: Dk } = this;
    const N = B * T;
    const rep = H / Hkv;
    if (!Number.isInteger(B) || !Number.isInteger(T) || B < 1 || T < 1) throw new RangeError(`supra: layer ${this.layer}: bad batch shape B = ${B}, T = ${T}`);
    if (x.length < N * hidden || out.length < N * hidden) {
      throw new RangeError(`supra: layer ${this.layer}: x/out hold ${x.length}/${out.length} values, expected ${N * hidden} for [${B}, ${T}, ${hidden}]`);
    }
    let supraState: SupraState | null = null;
    if (state) {
      if (!(state instanceof SupraState) || state.batch !== B || state.heads !== H || state.dk !== Dk || state.dv !== D ||
        (state.normalizer !== null) !== (this.normalizer !== null)) {
        throw new Error(`supra: layer ${this.layer}: the state was not made by this layer's newState(${B})`);
      }
      supraState = state;
    }
    // A training forward (no state) keeps what backward needs; a decoding step keeps nothing.
    const keep = supraState === null;
    const start = supraState ? supraState.position : 0;
    const { cos, sin } = this.rope.get(start + T);

    // Decoding with a shared kernel: q and k sit in one buffer, so the kernel runs once on their 2N rows
    // and its weights stream once per token (a training forward keeps the separate products).
    const stacked = !keep && this.kernelK === this.kernelQ && !this.folded;
    // A decoding step of plain features goes from the raw features to GroupNorm in one fused call (ReLU included).
    const fused = this.plainFeatures && supraState !== null && T === 1;

    // projections, then the kernel feature maps: one linear layer over all heads, then ReLU (kept: relu
    // backward reads it); folded, one product each from x
    const v = this.buf('v', N * Hkv * D, keep);
    let qf: Float32Array, kf: Float32Array;
    if (fused && this.folded && this.stepFusedLayer(x, out, v, B, supraState!, cos, sin)) return;
    if (this.folded) {
      qf = this.buf('qf', N * H * Dk, keep);
      kf = this.buf('kf', N * Hkv * Dk, keep);
      Linear.forwardShared(x, N, [[this.folded.q, qf], [this.folded.k, kf], [this.proj.v, v]]);
      if (!fused) {
        ops.relu(qf, qf);
        ops.relu(kf, kf);
      }
    } else if (stacked) {
      const qk = this.buf('qkStack', 2 * N * H * D, false);
      Linear.forwardShared(x, N, [[this.proj.q, qk.subarray(0, N * H * D)], [this.proj.k, qk.subarray(N * H * D)], [this.proj.v, v]]);
      const qkf = this.buf('qkfStack', 2 * N * H * Dk, false);
      this.kernelQ.forward(qk, qkf, 2 * N);
      if (!fused) ops.relu(qkf, qkf);
      qf = qkf.subarray(0, N * H * Dk);
      kf = qkf.subarray(N * H * Dk);
    } else {
      const q = this.buf('q', N * H * D, keep);
      const k = this.buf('k', N * Hkv * D, keep);
      Linear.forwardShared(x, N, [[this.proj.q, q], [this.proj.k, k], [this.proj.v, v]]);
      qf = this.buf('qf', N * H * Dk, keep);
      kf = this.buf('kf', N * Hkv * Dk, keep);
      this.kernelQ.forward(q, qf, N);
      this.kernelK.forward(k, kf, N);
      if (!fused) {
        ops.relu(qf, qf);
        ops.relu(kf, kf);
      }
    }

    if (fused) {
      const kr = rep > 1 ? this.buf('kr', N * H * Dk, false) : null;
      const vt = rep > 1 ? this.buf('vt', N * H * D, false) : null;
      const oRaw = this.buf('oRaw', N * H * D, false);
      const gn = this.buf('gn', N * H * D, false);
      this.attention.stepFused(qf, kf, v, kr, vt, oRaw, gn, this.buf('gnRstd', N * H, false), B, Hkv, supraState!.data, cos, sin, start,
        this.settings.group_norm_eps);
      supraState!.position += T;
      this.proj.o.forward(gn, out, N);
      this.last = { B, T, q: qf, k: kr ?? kf, v: vt ?? v, attnRaw: oRaw, attnGn: gn, denominator: null };
      return;
    }

    // Plain features (no qk-norm, GroupNorm): φ(q), φ(k) go to head-major (repeat_kv included) and RoPE
    // turns them there, with no token-major copies (the same values: RoPE acts per token and channel).
    if (this.plainFeatures && !(T === 1 && !keep)) {
      const qt = this.buf('qt', N * H * Dk, keep);
      const kt = this.buf('kt', N * H * Dk, keep);
      ops.toHeadMajor(qf, qt, B, T, H, 1, Dk);
      ops.toHeadMajor(kf, kt, B, T, H, rep, Dk);
      ops.rope(qt, cos, sin, B * H, T, 1, Dk, start);
      ops.rope(kt, cos, sin, B * H, T, 1, Dk, start);
      this.attendAndProject(x, out, qt, kt, v, null, null, B, T, supraState, keep);
      return;
    }

    // repeat_kv on the key features (before qk-norm, which spans all H·Dk channels)
    let kr = kf;
    if (rep > 1) {
      kr = this.buf('kr', N * H * Dk, keep);
      ops.toHeadMajor(kf, kr, N, 1, H, rep, Dk); // repeat_kv on rows
    }

    // qk-norm, then RoPE (in place on the normed copies; without qk-norm a decoding step turns the features
    // themselves, which it keeps for nothing else)
    const turnInPlace = !keep && this.settings.qk_norm === 'none';
    const qrot = turnInPlace ? qf : this.buf('qrot', N * H * Dk, false);
    const krot = turnInPlace ? kr : this.buf('krot', N * H * Dk, false);
    if (!turnInPlace) {
      this.qkNormForward(qf, this.qNorm, qrot, 'q', N, keep);
      this.qkNormForward(kr, this.kNorm, krot, 'k', N, keep);
    }
    // 'sum': the denominator reads the features before RoPE (u ≥ 0, so z ≥ 0), head-major
    const uq = this.normalizer ? this.buf('uq', N * H * Dk, keep) : null;
    const uk = this.normalizer ? this.buf('uk', N * H * Dk, keep) : null;
    if (uq && uk) {
      ops.toHeadMajor(qrot, uq, B, T, H, 1, Dk);
      ops.toHeadMajor(krot, uk, B, T, H, 1, Dk);
    }
    ops.rope(qrot, cos, sin, B, T, H, Dk, start);
    ops.rope(krot, cos, sin, B, T, H, Dk, start);

    // head-major for the attention; one token per sequence is already in that layout (a decoding step)
    const single = T === 1 && !keep;
    const qt = single ? qrot : this.buf('qt', N * H * Dk, keep);
    const kt = single ? krot : this.buf('kt', N * H * Dk, keep);
    if (qt !== qrot) ops.toHeadMajor(qrot, qt, B, T, H, 1, Dk);
    if (kt !== krot) ops.toHeadMajor(krot, kt, B, T, H, 1, Dk);
    this.attendAndProject(x, out, qt, kt, v, uq, uk, B, T, supraState, keep);
  }

  /** The rest of forward from q̃, k̃ head-major: v to head-major, the attention, its normalization, o_proj. */
  private attendAndProject(
    x: Float32Array, out: Float32Array, qt: Float32Array, kt: Float32Array, v: Float32Array, uq: Float32Array | null, uk: Float32Array | null,
    B: number, T: number, supraState: SupraState | null, keep: boolean,
  ): void {
    const { heads: H, kvHeads: Hkv, headDim: D } = this;
    const N = B * T;
    const rep = H / Hkv;
    const single = T === 1 && !keep;
    const vt = single && rep === 1 ? v : this.buf('vt', N * H * D, keep);
    if (vt !== v) ops.toHeadMajor(v, vt, B, T, H, rep, D);

    const oRaw = this.buf('oRaw', N * H * D, keep);
    this.attend(this.attention, qt, kt, vt, oRaw, B, T, supraState ? supraState.data : null);

    // per-head normalization (token-major), then o_proj
    const oTok = single ? oRaw : this.buf('oTok', N * H * D, false);
    const gn = this.buf('gn', N * H * D, keep); // the o_proj input
    if (oTok !== oRaw) ops.toTokenMajor(oRaw, oTok, B, T, H, 1, D);
    let zTok: Float32Array | null = null;
    if (this.normalizer && uq && uk) {
      // z = the same operator on the un-rotated features with v ≡ 1; o = N / (z + eps), no GroupNorm
      const ones = this.buf('ones', N * H, false).fill(1);
      const z = this.buf('z', N * H, false);
      zTok = this.buf('zTok', N * H, keep);
      this.attend(this.normalizer, uq, uk, ones, z, B, T, supraState ? supraState.normalizer : null);
      ops.toTokenMajor(z, zTok, B, T, H, 1, 1);
      ops.divideRows(oTok, zTok, this.settings.normalizer_eps, gn, N * H, D);
    } else {
      const gnRstd = this.buf('gnRstd', N * H, keep);
      ops.groupnorm(oTok, gn, gnRstd, N, H, D, this.settings.group_norm_eps);
    }
    if (supraState) supraState.position += T;
    this.proj.o.forward(gn, out, N);

    this.last = { B, T, q: qt, k: kt, v: vt, attnRaw: oRaw, attnGn: gn, denominator: zTok };
    // a decoding step uses only scratch, so the activations of an earlier training forward stay valid
    if (keep) {
      this.saved = { B, T };
      this.x = x;
    }
  }

  private qkNormForward(x: Float32Array, gain: Param | null, y: Float32Array, which: 'q' | 'k', N: number, keep: boolean): void {
    const C = this.heads * this.kernelDim;
    const kind = this.settings.qk_norm;
    if (kind === 'none' || !gain) {
      y.set(x.subarray(0, N * C));
      return;
    }
    const rstd = this.buf(`${which}NormRstd`, N, keep);
    if (kind === 'rms') ops.rmsnorm(x, gain.data, y, rstd, N, C, this.settings.qk_norm_eps);
    else {
      // gain-only LayerNorm: standardize over all H·Dk channels (one group), then the gain
      const hat = this.buf(`${which}NormHat`, N * C, keep);
      ops.groupnorm(x, hat, rstd, N, 1, C, this.settings.qk_norm_eps);
      ops.mulRows(hat, gain.data, y, N, C);
    }
  }

  /** dx (overwritten) of the qk-norm from dy; the gain's gradient is accumulated (unless frozen). */
  private qkNormBackward(dy: Float32Array, x: Float32Array, gain: Param | null, dx: Float32Array, which: 'q' | 'k', N: number): void {
    const C = this.heads * this.kernelDim;
    const kind = this.settings.qk_norm;
    if (kind === 'none' || !gain) {
      dx.set(dy.subarray(0, N * C));
      return;
    }
    const rstd = this.buf(`${which}NormRstd`, N, true);
    if (kind === 'rms') ops.rmsnormBackward(dy, x, gain.data, rstd, dx, gradIfTrained(gain), N, C);
    else {
      const hat = this.buf(`${which}NormHat`, N * C, true);
      const dhat = this.buf('dNormHat', N * C, false);
      const dgain = gradIfTrained(gain);
      if (dgain) ops.gainGrad(dy, hat, dgain, N, C);
      ops.mulRows(dy, gain.data, dhat, N, C);
      ops.groupnormBackward(dhat, hat, rstd, dx, N, 1, C);
    }
  }

  backward(dout: Float32Array, dx: Float32Array): void {
    const x = this.x;
    if (this.folded) throw new Error(`supra: layer ${this.layer}: the feature maps are folded into the projections (for inference); load the model unfolded to train it`);
    if (!this.saved || !x) throw new Error(`supra: layer ${this.layer}: backward needs a training forward (no state) first`);
    const { B, T } = this.saved;
    const { hidden, heads: H, kvHeads: Hkv, headDim: D, kernelDim: Dk } = this;
    const N = B * T;
    const rep = H / Hkv;
    if (dout.length < N * hidden || dx.length < N * hidden) {
      throw new RangeError(`supra: layer ${this.layer}: dout/dx hold ${dout.length}/${dx.length} values, expected ${N * hidden}`);
    }
    const { cos, sin } = this.rope.get(T);
    const tmp = (name: string, n: number) => this.buf(name, n, false);

    // o_proj and the normalization: GroupNorm, or 'sum': dN = dO/(z + eps), dz = −Σ_d dO·O/(z + eps)
    const gn = this.buf('gn', N * H * D, true);
    const dgn = tmp('dgn', N * H * D);
    this.proj.o.backward(dout, gn, dgn, N);
    const doTok = tmp('doTok', N * H * D);
    let dz: Float32Array | null = null; // head-major [B, H, T]
    if (this.normalizer) {
      const zTok = this.buf('zTok', N * H, true);
      const dzTok = tmp('dzTok', N * H);
      ops.divideRowsBackward(dgn, gn, zTok, this.settings.normalizer_eps, doTok, dzTok, N * H, D);
      dz = tmp('dz', N * H);
      ops.toHeadMajor(dzTok, dz, B, T, H, 1, 1);
    } else {
      const gnRstd = this.buf('gnRstd', N * H, true);
      ops.groupnormBackward(dgn, gn, gnRstd, doTok, N, H, D);
    }
    const doRaw = tmp('doRaw', N * H * D);
    ops.toHeadMajor(doTok, doRaw, B, T, H, 1, D);

    // linear attention
    const qt = this.buf('qt', N * H * Dk, true);
    const kt = this.buf('kt', N * H * Dk, true);
    const vt = this.buf('vt', N * H * D, true);
    const dqt = tmp('dqt', N * H * Dk);
    const dkt = tmp('dkt', N * H * Dk);
    const dvt = tmp('dvt', N * H * D);
    this.attention.backward(qt, kt, vt, doRaw, dqt, dkt, dvt, B, T);
    const dv = tmp('dv', N * Hkv * D);
    ops.toTokenMajor(dvt, dv, B, T, H, rep, D); // sums the repeated v heads

    let dqf: Float32Array, dkf: Float32Array;
    if (this.plainFeatures) {
      // RoPE backward (the rotation by −angle) in head-major layout, then token-major, summing repeated k heads
      ops.rope(dqt, cos, sin, B * H, T, 1, Dk, 0, true);
      ops.rope(dkt, cos, sin, B * H, T, 1, Dk, 0, true);
      dqf = tmp('dqf', N * H * Dk);
      dkf = tmp('dkf', N * Hkv * Dk);
      ops.toTokenMajor(dqt, dqf, B, T, H, 1, Dk);
      ops.toTokenMajor(dkt, dkf, B, T, H, rep, Dk);
    } else {
      [dqf, dkf] = this.featuresBackward(dqt, dkt, dz, B, T, cos, sin);
    }
    const qf = this.buf('qf', N * H * Dk, true);
    const kf = this.buf('kf', N * Hkv * Dk, true);
    ops.reluBackward(dqf, qf, dqf);
    ops.reluBackward(dkf, kf, dkf);
    const q = this.buf('q', N * H * D, true);
    const k = this.buf('k', N * Hkv * D, true);
    const dq = tmp('dq', N * H * D);
    const dk = tmp('dk', N * Hkv * D);
    this.kernelQ.backward(dqf, q, dq, N);
    this.kernelK.backward(dkf, k, dk, N);

    // projections: dx = dq·Wq + dk·Wk + dv·Wv
    this.proj.q.backward(dq, x, dx, N);
    this.proj.k.backward(dk, x, dx, N, true);
    this.proj.v.backward(dv, x, dx, N, true);
  }

  /**
   * d φ(q), d φ(k) (token-major, before ReLU's backward) from the head-major gradients of q̃, k̃: RoPE's,
   * the 'sum' denominator's and qk-norm's backwards, repeat_kv's sum.
   */
  private featuresBackward(
    dqt: Float32Array, dkt: Float32Array, dz: Float32Array | null, B: number, T: number, cos: Float32Array, sin: Float32Array,
  ): [Float32Array, Float32Array] {
    const { heads: H, kvHeads: Hkv, kernelDim: Dk } = this;
    const N = B * T;
    const rep = H / Hkv;
    const tmp = (name: string, n: number) => this.buf(name, n, false);
    // back to token-major; RoPE backward is the rotation by −angle
    const dqrot = tmp('dqrot', N * H * Dk);
    const dkrot = tmp('dkrot', N * H * Dk);
    ops.toTokenMajor(dqt, dqrot, B, T, H, 1, Dk);
    ops.toTokenMajor(dkt, dkrot, B, T, H, 1, Dk);
    ops.rope(dqrot, cos, sin, B, T, H, Dk, 0, true);
    ops.rope(dkrot, cos, sin, B, T, H, Dk, 0, true);

    // 'sum': the denominator's gradients on the un-rotated features join the numerator's after RoPE
    if (this.normalizer && dz) {
      const uq = this.buf('uq', N * H * Dk, true);
      const uk = this.buf('uk', N * H * Dk, true);
      const ones = tmp('ones', N * H).fill(1);
      const duq = tmp('duq', N * H * Dk);
      const duk = tmp('duk', N * H * Dk);
      const dones = tmp('dones', N * H); // v ≡ 1 is a constant: its gradient is dropped
      this.normalizer.backward(uq, uk, ones, dz, duq, duk, dones, B, T);
      const duTok = tmp('duTok', N * H * Dk);
      ops.toTokenMajor(duq, duTok, B, T, H, 1, Dk);
      ops.axpy(1, duTok, dqrot, N * H * Dk);
      ops.toTokenMajor(duk, duTok, B, T, H, 1, Dk);
      ops.axpy(1, duTok, dkrot, N * H * Dk);
    }

    // qk-norm
    const qf = this.buf('qf', N * H * Dk, true);
    const kf = this.buf('kf', N * Hkv * Dk, true);
    const kr = rep > 1 ? this.buf('kr', N * H * Dk, true) : kf;
    const dqf = tmp('dqf', N * H * Dk);
    const dkr = tmp('dkr', N * H * Dk);
    this.qkNormBackward(dqrot, qf, this.qNorm, dqf, 'q', N);
    this.qkNormBackward(dkrot, kr, this.kNorm, dkr, 'k', N);

    // repeat_kv backward (a shared kernel then sums both uses: its dW accumulates)
    let dkf = dkr;
    if (rep > 1) {
      dkf = tmp('dkf', N * Hkv * Dk);
      ops.toTokenMajor(dkr, dkf, N, 1, H, rep, Dk); // sums the repeated heads
    }
    return [dqf, dkf];
  }

  /**
   * What forward() keeps (with the linear attentions' own chunk buffers) and backward() takes as shared
   * temporaries for a training step of [B, T] in the chunked form: the buffer lists of forward and
   * backward, counted (test/train-memory.test.ts holds the sum to the arena's growth).
   */
  activationBytes(B: number, T: number): ActivationBytes {
    const { heads: H, kvHeads: Hkv, headDim: D, kernelDim: Dk } = this;
    const N = B * T, rep = H / Hkv;
    const qk = this.settings.qk_norm;
    const sum = this.normalizer !== null;
    const plain = this.plainFeatures;
    const kept =
      N * (H * D + 2 * Hkv * D) + N * (H * Dk + Hkv * Dk) + (rep > 1 && !plain ? N * H * Dk : 0) + // q k v, φ(q) φ(k), repeated φ(k)
      (qk === 'none' ? 0 : 2 * N + (qk === 'layernorm' ? 2 * N * H * Dk : 0)) + // qk-norm statistics
      (sum ? 2 * N * H * Dk + N * H : N * H) + // 'sum': un-rotated features and z; else GroupNorm's rstd
      2 * N * H * Dk + 3 * N * H * D; // head-major q̃ k̃ v, the attention output and its normalized form
    // token-major copies of the features and their gradients (none when plain: dq̃ dk̃ dφ(q) head-major and dφ(k))
    const featureScratch = plain ? 3 * H * Dk + Hkv * Dk : 8 * H * Dk + (rep > 1 ? Hkv * Dk : 0);
    const scratch =
      N * (featureScratch + 6 * H * D + 2 * Hkv * D) +
      (sum ? 5 * N * H + 3 * N * H * Dk : 0) + (qk === 'layernorm' ? N * H * Dk : 0);
    const att = this.attention.trainingBytes(B, T);
    const den = this.normalizer?.trainingBytes(B, T) ?? { kept: 0, scratch: 0 };
    // their decayed rows are in the shared scratch, under names both linear attentions use (the larger counts)
    const denShared = this.normalizer?.sharedTrainingBytes(B, T) ?? [];
    const shared = this.attention.sharedTrainingBytes(B, T).reduce((sum, bytes, i) => sum + Math.max(bytes, denShared[i] ?? 0), 0);
    // the linear attentions' chunk buffers are each layer's own, held between calls: counted as kept
    return { kept: 4 * kept + att.kept + att.scratch + den.kept + den.scratch, scratch: 4 * scratch + shared };
  }

  freeActivations(): void {
    this.acts.free();
    this.attention.free();
    this.normalizer?.free();
    this.saved = null;
    this.last = null;
    this.x = null;
  }
}

/** The SUPRA mixer of layer `layer`; getParam declares (or finds) each parameter by its HF name. */
export function createSupraMixer(config: ModelConfig, getParam: GetParam, layer: number, options: SupraMixerOptions = {}): SupraAttention {
  return new SupraAttention(config, getParam, layer, options);
}
