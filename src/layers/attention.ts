// Softmax attention of the Llama family as a TokenMixer: q/k/v projections (biases as the config says,
// see projections.ts), rotate_half RoPE on q and k, grouped-query attention (query head h reads kv head
// h / (H/Hkv)), causal softmax of q·k/sqrt(head_dim), o_proj. Decoding keeps a KV cache per layer.
//
// Layouts: q [B, T, H, D], k and v [B, T, Hkv, D] (rows of the projections, untouched); the scores
// and probabilities [B, H, Tq, Tk]. Per-head products are batched GEMMs over the batch, one call per
// query head, reading the heads in place through leading dimensions and strides.
import { allocF32, free } from '../core/memory.js';
import { matmul, rope, softmax, softmaxBackward } from '../core/ops.js';
import { AttentionProjections, type GetParam } from './projections.js';
import { Linear } from './linear.js';
import { ropeTable, type RopeTable } from './rope.js';
import type { ActivationBytes, MixerContext, MixerState, Param, SoftmaxAttentionInternals, TokenMixer } from './types.js';
import { Workspace } from './workspace.js';

/**
 * The KV cache of one attention layer for B sequences: k and v [B, capacity, Hkv, D], grown by doubling.
 * queryHeads (H) sizes the attention scores of a step, which prefillBytes reports.
 */
export class KVCache implements MixerState {
  position = 0;
  k: Float32Array;
  v: Float32Array;
  capacity: number;

  constructor(readonly batch: number, readonly rowSize: number, readonly queryHeads: number, capacity = 64) {
    this.capacity = capacity;
    this.k = allocF32(batch * capacity * rowSize);
    this.v = allocF32(batch * capacity * rowSize);
  }

  /** Make room for `needed` positions, keeping what is cached. */
  reserve(needed: number): void {
    if (needed <= this.capacity) return;
    const cap = Math.max(needed, 2 * this.capacity);
    const k = allocF32(this.batch * cap * this.rowSize);
    const v = allocF32(this.batch * cap * this.rowSize);
    const used = this.position * this.rowSize;
    for (let b = 0; b < this.batch; b++) {
      const from = b * this.capacity * this.rowSize;
      k.set(this.k.subarray(from, from + used), b * cap * this.rowSize);
      v.set(this.v.subarray(from, from + used), b * cap * this.rowSize);
    }
    free(this.k);
    free(this.v);
    this.k = k;
    this.v = v;
    this.capacity = cap;
  }

  /** Copy T new rows of k and v ([B, T, Hkv, D]) to positions position … position+T−1. */
  append(kNew: Float32Array, vNew: Float32Array, T: number): void {
    this.reserve(this.position + T);
    const n = T * this.rowSize;
    for (let b = 0; b < this.batch; b++) {
      const to = (b * this.capacity + this.position) * this.rowSize;
      this.k.set(kNew.subarray(b * n, b * n + n), to);
      this.v.set(vNew.subarray(b * n, b * n + n), to);
    }
  }

  bytes(): number {
    return this.k.byteLength + this.v.byteLength;
  }

  /** The step's float32 scores [B, H, piece, position + piece] (attn.probs), which grow with the context. */
  prefillBytes(piece: number, position: number): number {
    return this.batch * this.queryHeads * piece * (position + piece) * 4;
  }

  clone(): KVCache {
    const c = new KVCache(this.batch, this.rowSize, this.queryHeads, this.capacity);
    c.k.set(this.k);
    c.v.set(this.v);
    c.position = this.position;
    return c;
  }

  free(): void {
    free(this.k);
    free(this.v);
    this.k = new Float32Array(0);
    this.v = new Float32Array(0);
    this.capacity = 0;
  }
}

export class SoftmaxAttention implements TokenMixer {
  readonly recurrent = false;
  readonly proj: AttentionProjections;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly hidden: number;
  private readonly group: number; // query heads per kv head
  private readonly scale: number;
  private readonly rope: RopeTable;
  private readonly slidingWindow: number | null;
  private readonly scratch: Workspace;
  // Kept for backward after a training forward.
  private readonly acts = new Workspace();
  private x: Float32Array | null = null;
  private B = 0;
  private T = 0;

  /** getParam: where the projections come from (default: declared in ctx.store; attention transfer shares a SUPRA layer's). */
  constructor(ctx: MixerContext, getParam?: GetParam) {
    const c = ctx.config;
    this.heads = c.num_attention_heads;
    this.kvHeads = c.num_key_value_heads;
    this.headDim = c.head_dim;
    this.hidden = c.hidden_size;
    this.group = this.heads / this.kvHeads;
    if (!Number.isInteger(this.group)) throw new Error(`supra: ${this.heads} heads are not a multiple of ${this.kvHeads} kv heads`);
    this.scale = 1 / Math.sqrt(this.headDim);
    this.rope = ropeTable(c.rope_theta, this.headDim);
    this.scratch = ctx.scratch;
    this.proj = new AttentionProjections(c, getParam ?? ((name, shape) => ctx.store.add(name, shape)), ctx.prefix);
    // Mistral's sliding window changes nothing while every sequence fits in it; beyond, we refuse.
    const sw = c.raw.sliding_window;
    const useSw = c.raw.use_sliding_window !== false;
    this.slidingWindow = useSw && typeof sw === 'number' && sw > 0 ? sw : null;
  }

  forward(x: Float32Array, out: Float32Array, B: number, T: number, state?: MixerState | null): void {
    const H = this.heads, K = this.kvHeads, D = this.headDim;
    const rows = B * T;
    if (!state) {
      this.checkWindow(T);
      const q = this.acts.get('q', rows * H * D);
      const k = this.acts.get('k', rows * K * D);
      const v = this.acts.get('v', rows * K * D);
      const probs = this.acts.get('probs', B * H * T * T);
      const y = this.acts.get('y', rows * H * D);
      this.project(x, q, k, v, B, T, 0);
      this.attend(q, k, v, T, B, T, T, probs, y);
      this.proj.o.forward(y, out, rows);
      this.x = x;
      this.B = B;
      this.T = T;
      return;
    }
    if (!(state instanceof KVCache)) throw new Error('supra: softmax attention was given a state it did not make (use its newState)');
    if (state.batch !== B) throw new Error(`supra: KV cache was made for batch ${state.batch}, step called with B = ${B}`);
    const start = state.position;
    const Tk = start + T;
    this.checkWindow(Tk);
    const q = this.scratch.get('attn.q', rows * H * D);
    const k = this.scratch.get('attn.k', rows * K * D);
    const v = this.scratch.get('attn.v', rows * K * D);
    const probs = this.scratch.get('attn.probs', B * H * T * Tk);
    const y = this.scratch.get('attn.y', rows * H * D);
    this.project(x, q, k, v, B, T, start);
    state.append(k, v, T);
    this.attend(q, state.k, state.v, state.capacity, B, T, Tk, probs, y);
    this.proj.o.forward(y, out, rows);
    state.position = Tk;
  }

  private checkWindow(positions: number): void {
    if (this.slidingWindow !== null && positions > this.slidingWindow) {
      throw new Error(
        `supra: ${positions} positions exceed the config's sliding_window ${this.slidingWindow}; sliding-window attention is not implemented`,
      );
    }
  }

  /** q, k, v of T tokens at positions start … start+T−1, with RoPE applied to q and k. */
  private project(x: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, B: number, T: number, start: number): void {
    const rows = B * T;
    Linear.forwardShared(x, rows, [[this.proj.q, q], [this.proj.k, k], [this.proj.v, v]]);
    const { cos, sin } = this.rope.get(start + T);
    rope(q, cos, sin, B, T, this.heads, this.headDim, start);
    rope(k, cos, sin, B, T, this.kvHeads, this.headDim, start);
  }

  /**
   * y [B, Tq, H, D] = softmax(q·kᵀ/sqrt(D), causal) · v for Tq queries at the end of Tk keys. k and v
   * are [B, kvStride, Hkv, D] (kvStride positions per sequence: T for training, the cache capacity).
   * probs [B, H, Tq, Tk] receives the attention probabilities.
   */
  private attend(
    q: Float32Array, k: Float32Array, v: Float32Array, kvStride: number,
    B: number, Tq: number, Tk: number, probs: Float32Array, y: Float32Array,
  ): void {
    const H = this.heads, K = this.kvHeads, D = this.headDim;
    for (let h = 0; h < H; h++) {
      const j = Math.floor(h / this.group);
      matmul({
        transA: false, transB: true, m: Tq, n: Tk, k: D, alpha: this.scale,
        a: q.subarray(h * D), lda: H * D, strideA: Tq * H * D,
        b: k.subarray(j * D), ldb: K * D, strideB: kvStride * K * D,
        c: probs.subarray(h * Tq * Tk), ldc: Tk, strideC: H * Tq * Tk,
        batch: B,
      });
    }
    softmax(probs, B * H * Tq, Tk, true, Tq, Tk - Tq);
    for (let h = 0; h < H; h++) {
      const j = Math.floor(h / this.group);
      matmul({
        transA: false, transB: false, m: Tq, n: D, k: Tk,
        a: probs.subarray(h * Tq * Tk), lda: Tk, strideA: H * Tq * Tk,
        b: v.subarray(j * D), ldb: K * D, strideB: kvStride * K * D,
        c: y.subarray(h * D), ldc: H * D, strideC: Tq * H * D,
        batch: B,
      });
    }
  }

  backward(dout: Float32Array, dx: Float32Array): void {
    const x = this.x;
    if (!x) throw new Error('supra: attention backward without a training forward before it');
    const H = this.heads, K = this.kvHeads, D = this.headDim, G = this.group;
    const B = this.B, T = this.T, rows = B * T;
    const q = this.acts.get('q', rows * H * D);
    const k = this.acts.get('k', rows * K * D);
    const v = this.acts.get('v', rows * K * D);
    const probs = this.acts.get('probs', B * H * T * T);
    const y = this.acts.get('y', rows * H * D);
    const dy = this.scratch.get('attn.dy', rows * H * D);
    const dprobs = this.scratch.get('attn.dprobs', B * H * T * T);
    const dq = this.scratch.get('attn.dq', rows * H * D);
    const dk = this.scratch.get('attn.dk', rows * K * D);
    const dv = this.scratch.get('attn.dv', rows * K * D);

    this.proj.o.backward(dout, y, dy, rows);
    for (let h = 0; h < H; h++) {
      const j = Math.floor(h / G);
      const first = h % G === 0; // the first query head of a group overwrites dk/dv, the others add
      // dP_h = dy_h · v_jᵀ
      matmul({
        transA: false, transB: true, m: T, n: T, k: D,
        a: dy.subarray(h * D), lda: H * D, strideA: T * H * D,
        b: v.subarray(j * D), ldb: K * D, strideB: T * K * D,
        c: dprobs.subarray(h * T * T), ldc: T, strideC: H * T * T,
        batch: B,
      });
      // dv_j += P_hᵀ · dy_h
      matmul({
        transA: true, transB: false, m: T, n: D, k: T, beta: first ? 0 : 1,
        a: probs.subarray(h * T * T), lda: T, strideA: H * T * T,
        b: dy.subarray(h * D), ldb: H * D, strideB: T * H * D,
        c: dv.subarray(j * D), ldc: K * D, strideC: T * K * D,
        batch: B,
      });
    }
    // through the softmax (masked entries have P = 0, so their gradient is 0)
    softmaxBackward(dprobs, probs, dprobs, B * H * T, T);
    for (let h = 0; h < H; h++) {
      const j = Math.floor(h / G);
      const first = h % G === 0;
      // dq_h = scale · dS_h · k_j
      matmul({
        transA: false, transB: false, m: T, n: D, k: T, alpha: this.scale,
        a: dprobs.subarray(h * T * T), lda: T, strideA: H * T * T,
        b: k.subarray(j * D), ldb: K * D, strideB: T * K * D,
        c: dq.subarray(h * D), ldc: H * D, strideC: T * H * D,
        batch: B,
      });
      // dk_j += scale · dS_hᵀ · q_h
      matmul({
        transA: true, transB: false, m: T, n: D, k: T, alpha: this.scale, beta: first ? 0 : 1,
        a: dprobs.subarray(h * T * T), lda: T, strideA: H * T * T,
        b: q.subarray(h * D), ldb: H * D, strideB: T * H * D,
        c: dk.subarray(j * D), ldc: K * D, strideC: T * K * D,
        batch: B,
      });
    }
    // RoPE is a rotation: its backward rotates back.
    const { cos, sin } = this.rope.get(T);
    rope(dq, cos, sin, B, T, H, D, 0, true);
    rope(dk, cos, sin, B, T, K, D, 0, true);
    this.proj.q.backward(dq, x, dx, rows);
    this.proj.k.backward(dk, x, dx, rows, true);
    this.proj.v.backward(dv, x, dx, rows, true);
  }

  newState(B: number): KVCache {
    return new KVCache(B, this.kvHeads * this.headDim, this.heads);
  }

  params(): Param[] {
    return this.proj.params();
  }

  /** Kept: q, k, v, the probabilities [B, H, T, T] and the output; temporaries: their gradients. */
  activationBytes(B: number, T: number): ActivationBytes {
    const H = this.heads, K = this.kvHeads, D = this.headDim, N = B * T;
    const per = N * (H * D + 2 * K * D) + B * H * T * T;
    return { kept: 4 * (per + N * H * D), scratch: 4 * (per + N * H * D) };
  }

  freeActivations(): void {
    this.acts.free();
    this.x = null;
  }

  /** q and k (after RoPE) kept by the last training forward. */
  attentionInternals(): SoftmaxAttentionInternals {
    if (!this.x) throw new Error('supra: attention internals need a training forward (no state) first');
    const { B, T, heads, kvHeads, headDim } = this;
    const rows = B * T;
    return {
      kind: 'softmax', B, T, heads, kvHeads, headDim,
      q: this.acts.get('q', rows * heads * headDim),
      k: this.acts.get('k', rows * kvHeads * headDim),
    };
  }
}

/** The MixerFactory of softmax attention (Llama, Mistral, Qwen2). */
export function createSoftmaxAttention(ctx: MixerContext): SoftmaxAttention {
  return new SoftmaxAttention(ctx);
}
