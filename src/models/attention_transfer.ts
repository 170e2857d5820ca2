// Attention transfer (LoLCATs' stage 1, Zhang et al. 2024): train a SUPRA model's new kernels so that
// each layer's linear attention reproduces the softmax attention of the teacher it was made from, before
// any next-token training. The teacher is the SUPRA model's own frozen weights: every layer keeps the
// teacher's q/k/v/o projections, so its softmax attention is rebuilt here over those same parameters.
//
// For a batch, layer by layer (l = 0 … L−1):
//   x_l   = input_layernorm_l(h_l)                 h_0 = the embeddings; h_l the TEACHER's residual stream
//   y_l   = softmax_attention_l(x_l)               the target (no gradient)
//   ŷ_l   = supra_attention_l(x_l)                 the same normed input, through the SUPRA mixer
//   loss  = (1/L) Σ_l mean((ŷ_l − y_l)²)           MSE over every element, averaged over the layers
//   h_l+1 = teacher layer l's output (h_l + y_l, then its MLP block)
// Each layer's loss depends only on its own kernels (its inputs come from the teacher), so its backward
// runs right after its forward, and the next layer starts from the teacher's output: no activation is kept
// across layers beyond what each SUPRA mixer keeps for its own backward. The gradient reaches the
// parameters that are not frozen (the trainer freezes all but the kernels: kernel_q, kernel_k, qk-norm
// gains); q/k/v/o only carry it.
import { add, embeddingOf } from '../core/ops.js';
import { SoftmaxAttention } from '../layers/attention.js';
import { storedWeight } from '../layers/params.js';
import { SupraAttention } from '../layers/supra_attention.js';
import { Workspace } from '../layers/workspace.js';
import { FOLDED_REASON, type DecoderLM } from './decoder.js';

export class AttentionTransfer {
  /** Layer l's softmax attention over layer l's own q/k/v/o parameters. */
  private readonly teachers: SoftmaxAttention[];
  private readonly supra: SupraAttention[];
  private readonly ws = new Workspace();

  constructor(readonly model: DecoderLM) {
    const config = model.config;
    if (model.foldedForInference) throw new Error(`supra: attention transfer: ${FOLDED_REASON}`);
    this.supra = model.layers.map((layer, l) => {
      if (!(layer.mixer instanceof SupraAttention)) throw new Error(`supra: attention transfer needs a SUPRA model; layer ${l} of ${config.architecture} is not a SUPRA layer`);
      return layer.mixer;
    });
    this.teachers = model.layers.map((_, l) => {
      const prefix = `model.layers.${l}.self_attn`;
      const ctx = { config, layer: l, prefix, store: model.store, scratch: this.ws };
      return new SoftmaxAttention(ctx, (name, shape) => {
        const p = model.store.get(name);
        if (p.shape.length !== shape.length || p.shape.some((d, i) => d !== shape[i])) throw new Error(`supra: attention transfer: ${name} is [${p.shape.join(', ')}], softmax attention needs [${shape.join(', ')}]`);
        return p;
      });
    });
  }

  /**
   * Forward and backward of the transfer loss over B sequences of T tokens: returns the loss, and adds its
   * gradient into every trained parameter's gradient (the caller zeroes them between steps).
   */
  step(ids: ArrayLike<number>, B: number, T: number): number {
    return this.run(ids, B, T, true);
  }

  /** The transfer loss alone (no gradients). */
  loss(ids: ArrayLike<number>, B: number, T: number): number {
    return this.run(ids, B, T, false);
  }

  private run(ids: ArrayLike<number>, B: number, T: number, backward: boolean): number {
    const model = this.model;
    const C = model.config.hidden_size, V = model.config.vocab_size, L = model.layers.length;
    if (!Number.isInteger(B) || !Number.isInteger(T) || B < 1 || T < 1) throw new Error(`supra: attention transfer: bad batch shape B = ${B}, T = ${T}`);
    if (ids.length !== B * T) throw new Error(`supra: attention transfer: ${ids.length} token ids given for B·T = ${B * T}`);
    const rows = B * T, n = rows * C;
    const idBuf = this.ws.getI32('at.ids', rows);
    for (let i = 0; i < rows; i++) {
      const id = ids[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`supra: token id ${id} at position ${i} is outside the vocabulary [0, ${V})`);
      idBuf[i] = id;
    }
    const h = this.ws.get('at.h', n);
    const x = this.ws.get('at.x', n);
    const rstd = this.ws.get('at.rstd', rows);
    const target = this.ws.get('at.target', n);
    const out = this.ws.get('at.out', n);
    const dout = this.ws.get('at.dout', n);
    const dx = this.ws.get('at.dx', n);
    const branch = this.ws.get('at.branch', n);
    if (backward) model.store.enableGrads();
    embeddingOf(idBuf, storedWeight(model.embedTokens), h, rows, C);
    const coef = 2 / (n * L); // d loss / d ŷ = 2(ŷ − y) / (n·L)
    let total = 0;
    for (let l = 0; l < L; l++) {
      const layer = model.layers[l]!;
      layer.inputNorm.forward(h, x, rstd, rows);
      // the teacher's attention: a decoding-style pass from position 0 keeps no activations
      const state = this.teachers[l]!.newState(B);
      try {
        this.teachers[l]!.forward(x, target, B, T, state);
      } finally {
        state.free();
      }
      const mixer = this.supra[l]!;
      mixer.forward(x, out, B, T);
      let sum = 0;
      for (let i = 0; i < n; i++) {
        const d = out[i]! - target[i]!;
        sum += d * d;
        dout[i] = coef * d;
      }
      total += sum / n;
      if (backward) mixer.backward(dout, dx);
      if (model.activationCheckpointing) mixer.freeActivations(); // one layer's activations at a time, as the model's backward
      // the teacher's layer goes on: h += y; h += mlp(post_attention_layernorm(h))
      add(h, target, h, n);
      layer.postNorm.forward(h, x, rstd, rows);
      layer.mlp.forward(x, branch, rows, false);
      add(h, branch, h, n);
    }
    return total / L;
  }

  /** Release the buffers of this object and the SUPRA mixers' activations. */
  free(): void {
    this.ws.free();
    for (const m of this.supra) m.freeActivations();
    for (const t of this.teachers) t.freeActivations();
  }
}
