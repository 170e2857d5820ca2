// One decoder layer of the Llama family:
//   h_mid = h_in + mixer(input_layernorm(h_in));  h_out = h_mid + mlp(post_attention_layernorm(h_mid)).
// The mixer is any TokenMixer (softmax attention, SUPRA); the rest is shared.
import { add } from '../core/ops.js';
import { MLP } from './mlp.js';
import { RMSNorm, type NextNorm } from './norm.js';
import type { ActivationBytes, MixerContext, MixerFactory, MixerState, Param, TokenMixer } from './types.js';
import { Workspace } from './workspace.js';

// The normed inputs' buffers: the layer's own (kept for backward), or the shared scratch's (a decoding step).
const KEPT = { norm1: 'norm1', rstd1: 'rstd1', norm2: 'norm2', rstd2: 'rstd2' };
const SCRATCH = { norm1: 'block.norm1', rstd1: 'block.rstd1', norm2: 'block.norm2', rstd2: 'block.rstd2' };

export class DecoderLayer {
  readonly inputNorm: RMSNorm;
  readonly mixer: TokenMixer;
  readonly postNorm: RMSNorm;
  readonly mlp: MLP;
  private readonly hidden: number;
  private readonly scratch: Workspace;
  // Kept for backward: the normed inputs of mixer and MLP (which keep references to them), the two
  // rstd vectors, the mid residual, and h_in (a buffer of the caller).
  private readonly acts = new Workspace();
  private hIn: Float32Array | null = null;
  private rows = 0;

  constructor(ctx: MixerContext, mixerFactory: MixerFactory) {
    const c = ctx.config;
    const p = `model.layers.${ctx.layer}`;
    this.hidden = c.hidden_size;
    this.scratch = ctx.scratch;
    this.inputNorm = new RMSNorm(ctx.store, `${p}.input_layernorm`, c.hidden_size, c.rms_norm_eps);
    this.mixer = mixerFactory(ctx);
    this.postNorm = new RMSNorm(ctx.store, `${p}.post_attention_layernorm`, c.hidden_size, c.rms_norm_eps);
    this.mlp = new MLP(ctx.store, `${p}.mlp`, c.hidden_size, c.intermediate_size, c.raw.mlp_bias === true, ctx.scratch);
  }

  /**
   * hIn [B, T, hidden] → hOut. Without a state this is a training forward over whole sequences: hIn must
   * stay untouched until backward and hOut must be another buffer. With a state (decoding) nothing is
   * kept and hOut may be hIn; there, `inputNormed` says that inputNormStep's buffers already hold this layer's
   * normed input (the layer before applied its norm), and `next` is the norm that reads hOut next: returns
   * whether it applied that one too (else the caller does).
   */
  forward(
    hIn: Float32Array, hOut: Float32Array, B: number, T: number, state: MixerState | null = null, inputNormed = false,
    next: NextNorm | null = null,
  ): boolean {
    const rows = B * T;
    const n = rows * this.hidden;
    const keep = state === null;
    if (keep && hIn === hOut) throw new Error('supra: a training forward of a decoder layer needs separate input and output buffers');
    const ws = keep ? this.acts : this.scratch;
    const names = keep ? KEPT : SCRATCH;
    const n1 = ws.get(names.norm1, n);
    const rstd1 = ws.get(names.rstd1, rows);
    const hMid = keep ? this.acts.get('mid', n) : hOut;
    const n2 = ws.get(names.norm2, n);
    const rstd2 = ws.get(names.rstd2, rows);
    const branch = this.scratch.get('block.branch', n);

    if (keep && inputNormed) throw new Error('supra: a training forward of a decoder layer norms its own input');
    if (!inputNormed) this.inputNorm.forward(hIn, n1, rstd1, rows);
    this.mixer.forward(n1, branch, B, T, state);
    // a decoding step's second half, and the norm after it, in one backend call where it has one (the same bits
    // as the calls below)
    if (!keep && this.mlp.forwardResidualStep(hIn, branch, hOut, this.postNorm, n2, rstd2, rows, next)) {
      this.hIn = null;
      return next !== null;
    }
    add(hIn, branch, hMid, n);
    this.postNorm.forward(hMid, n2, rstd2, rows);
    this.mlp.forward(n2, branch, rows, keep);
    add(hMid, branch, hOut, n);
    if (keep) {
      this.hIn = hIn;
      this.rows = rows;
    } else {
      this.hIn = null;
    }
    return false;
  }

  /**
   * This layer's input norm as the `next` of the layer before it: the norm, and the buffers a decoding step of
   * `rows` rows reads its normed input and rstd from (forward's inputNormed).
   */
  inputNormStep(rows: number): NextNorm {
    return { norm: this.inputNorm, out: this.scratch.get(SCRATCH.norm1, rows * this.hidden), rstd: this.scratch.get(SCRATCH.rstd1, rows) };
  }

  /** dh: d loss/d h_out on entry, d loss/d h_in on return (in place). Parameter gradients accumulate. */
  backward(dh: Float32Array): void {
    const hIn = this.hIn;
    if (!hIn) throw new Error('supra: decoder layer backward without a training forward before it');
    const rows = this.rows;
    const n = rows * this.hidden;
    const rstd1 = this.acts.get('rstd1', rows);
    const hMid = this.acts.get('mid', n);
    const rstd2 = this.acts.get('rstd2', rows);
    const dnorm = this.scratch.get('block.dnorm', n);
    // MLP branch: dh_mid = dh + postNorm'ᵀ(mlp'ᵀ(dh))
    this.mlp.backward(dh, dnorm);
    this.postNorm.backward(dnorm, hMid, rstd2, dh, rows, true);
    // mixer branch: dh_in = dh_mid + inputNorm'ᵀ(mixer'ᵀ(dh_mid))
    this.mixer.backward(dh, dnorm);
    this.inputNorm.backward(dnorm, hIn, rstd1, dh, rows, true);
  }

  params(): Param[] {
    return [this.inputNorm.weight, ...this.mixer.params(), this.postNorm.weight, ...this.mlp.params()];
  }

  /**
   * A training step's activations of this layer for B sequences of T tokens: what it keeps for backward
   * (its norms' inputs and statistics, the mid residual, the mixer's and the MLP's), and the temporaries of
   * one call (shared by every layer: the branch and its gradient, the mixer's and the MLP's).
   */
  activationBytes(B: number, T: number): ActivationBytes {
    const rows = B * T;
    const mixer = this.mixer.activationBytes(B, T);
    const mlp = this.mlp.activationBytes(rows);
    return {
      kept: 4 * (3 * rows * this.hidden + 2 * rows) + mixer.kept + mlp.kept,
      scratch: 4 * 2 * rows * this.hidden + mixer.scratch + mlp.scratch,
      keptHeap: (mixer.keptHeap ?? 0) + (mlp.keptHeap ?? 0),
    };
  }

  freeActivations(): void {
    this.acts.free();
    this.mixer.freeActivations();
    this.mlp.freeActivations();
    this.hIn = null;
  }
}
