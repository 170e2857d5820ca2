// The SwiGLU MLP of the Llama family: down(silu(gate(x)) ⊙ up(x)).
import { decodeMlpBlock, swiglu, swigluBackward } from '../core/ops.js';
import { getBackend } from '../core/select.js';
import type { WeightPlace } from '../core/weights.js';
import { Linear } from './linear.js';
import type { NextNorm, RMSNorm } from './norm.js';
import { storedWeight, type ParamStore } from './params.js';
import type { ActivationBytes, Param } from './types.js';
import { Workspace } from './workspace.js';

/**
 * Where the MLP keeps gate and up when asked to keep them outside the arena: there when the backend's
 * products read ordinary memory in place (Backend.heapWeights) and it computes swiglu with its own kernels
 * (Backend.kernels), else in the arena (a wasm kernel would copy them into it for every call).
 */
function outsidePlace(): WeightPlace {
  const backend = getBackend();
  return backend.heapWeights && backend.kernels ? 'heap' : 'arena';
}

export class MLP {
  readonly gate: Linear;
  readonly up: Linear;
  readonly down: Linear;
  // Kept for backward: the input (a buffer of the caller) and the two projections. The product
  // silu(gate)⊙up is recomputed in backward instead of kept, saving a [rows, ffn] buffer per layer; it
  // comes out of the swiglu gradient kernel, which evaluates the same sigmoid anyway. The two projections
  // are a training step's largest activations; only the products and swiglu touch them, so they live
  // outside the arena where the backend's products and its own swiglu kernels read them in place, unless
  // the model checkpoints its activations (keepOutsideArena).
  private acts = new Workspace(outsidePlace());
  private x: Float32Array | null = null;
  private rows = 0;

  /** prefix: `model.layers.N.mlp`. */
  constructor(
    store: ParamStore, prefix: string,
    readonly hidden: number, readonly ffn: number, bias: boolean,
    private readonly scratch: Workspace,
  ) {
    this.gate = Linear.create(store, `${prefix}.gate_proj`, hidden, ffn, bias);
    this.up = Linear.create(store, `${prefix}.up_proj`, hidden, ffn, bias);
    this.down = Linear.create(store, `${prefix}.down_proj`, ffn, hidden, bias);
  }

  /**
   * out[rows, hidden] = mlp(x) (overwritten). With keep (training) x must stay untouched until backward;
   * without it (decoding) nothing is kept.
   */
  forward(x: Float32Array, out: Float32Array, rows: number, keep = true): void {
    const n = rows * this.ffn;
    const g = keep ? this.acts.get('gate', n) : this.scratch.get('mlp.gate', n);
    const u = keep ? this.acts.get('up', n) : this.scratch.get('mlp.up', n);
    const a = this.scratch.get('mlp.act', n);
    Linear.forwardShared(x, rows, [[this.gate, g], [this.up, u]]);
    swiglu(g, u, a, n);
    this.down.forward(a, out, rows);
    if (keep) {
      this.x = x;
      this.rows = rows;
    } else {
      this.x = null;
    }
  }

  /**
   * A decoding step's residual block around this MLP, in one backend call where it has one (ops.decodeMlpBlock):
   * hOut = hIn + branch, then hOut += mlp(norm(hOut)) (branch overwritten; normed and rstd: norm's output), then
   * `next`'s norm of hOut. False, having done nothing, where it has none or the MLP has a bias or a LoRA adapter:
   * the caller then makes the separate calls, which give the same bits.
   */
  forwardResidualStep(
    hIn: Float32Array, branch: Float32Array, hOut: Float32Array, norm: RMSNorm, normed: Float32Array, rstd: Float32Array, rows: number,
    next: NextNorm | null = null,
  ): boolean {
    const layers = [this.gate, this.up, this.down];
    if (layers.some((l) => l.bias !== null || l.lora !== null)) return false;
    const n = rows * this.ffn;
    return decodeMlpBlock(
      hIn, branch, hOut, norm.weight.data, normed, rstd, norm.eps, storedWeight(this.gate.weight), storedWeight(this.up.weight),
      storedWeight(this.down.weight), this.scratch.get('mlp.gate', n), this.scratch.get('mlp.up', n), this.scratch.get('mlp.act', n),
      rows, this.hidden, this.ffn, next && { weight: next.norm.weight.data, out: next.out, rstd: next.rstd, eps: next.norm.eps },
    );
  }

  /** dout → dx (overwritten, or added with accumulateDx); parameter gradients accumulate. */
  backward(dout: Float32Array, dx: Float32Array, accumulateDx = false): void {
    const x = this.x;
    if (!x) throw new Error('supra: MLP.backward without a training forward before it');
    const rows = this.rows;
    const n = rows * this.ffn;
    const g = this.acts.get('gate', n);
    const u = this.acts.get('up', n);
    const a = this.scratch.get('mlp.act', n);
    const da = this.scratch.get('mlp.dact', n);
    const dg = this.scratch.get('mlp.dgate', n);
    const du = this.scratch.get('mlp.dup', n);
    this.down.backwardInput(dout, da, rows);
    swigluBackward(da, g, u, dg, du, n, a); // and a = swiglu(g, u), the down projection's input
    this.down.backwardParams(dout, a, rows);
    this.gate.backward(dg, x, dx, rows, accumulateDx);
    this.up.backward(du, x, dx, rows, true);
  }

  params(): Param[] {
    return [...this.gate.params(), ...this.up.params(), ...this.down.params()];
  }

  freeActivations(): void {
    this.acts.free();
    this.x = null;
  }

  /**
   * Keep gate and up outside the arena where the backend allows (the default), or in it. Activation
   * checkpointing asks for the arena: it frees each layer's activations after use, and the arena takes
   * them back at once, where arrays outside it would wait for the garbage collector, every layer's piling
   * up meanwhile. Frees what is kept.
   */
  keepOutsideArena(on: boolean): void {
    this.freeActivations();
    this.acts = new Workspace(on ? outsidePlace() : 'arena');
  }

  /** Kept: gate and up (outside the arena where they live there); temporaries: the activation and three gradients of [rows, ffn]. */
  activationBytes(rows: number): ActivationBytes {
    const n = 4 * rows * this.ffn;
    return { kept: 2 * n, scratch: 4 * n, keptHeap: this.acts.place === 'heap' ? 2 * n : 0 };
  }
}
