// The decoder-only language model of the Llama family (Llama, Mistral, Qwen2) and of SUPRA models:
// embeddings → layers (norm → token mixer → residual, norm → SwiGLU MLP → residual) → final norm →
// lm_head (its own matrix, or the embedding matrix when tied). llm.c style: parameters and gradients
// are arena buffers allocated once; the activations of a (B, T) are allocated on the first forward at
// that size and reused; every forward has its backward beside it.
import { ARENA_MAX_BYTES, arenaFreeBytes } from '../core/memory.js';
import { countTargets, crossEntropy, embeddingBackward, embeddingOf } from '../core/ops.js';
import { defaultWeightPlace, getBackend } from '../core/select.js';
import { bytesRatioText, weightBytes, type WeightPlace, type WeightType } from '../core/weights.js';
import type { ModelConfig } from '../io/config.js';
import { DecoderLayer } from '../layers/block.js';
import { Linear, widenParam, type ReadParam } from '../layers/linear.js';
import { weightsFingerprint } from './fingerprint.js';
import { mixerFactoryFor } from '../layers/mixers.js';
import { RMSNorm, type NextNorm } from '../layers/norm.js';
import { gradIfTrained, ParamStore, storedWeight } from '../layers/params.js';
import type { ActivationBytes, MixerFactory, MixerState, Param } from '../layers/types.js';
import { Workspace } from '../layers/workspace.js';

export interface DecoderOptions {
  /** Builds each layer's token mixer; default: the one registered for config.architecture. */
  mixerFactory?: MixerFactory;
  /**
   * How the matrices (projections, MLP, embeddings, lm_head) are stored: 'f32' (the default; trainable) or
   * 'bf16' (inference only: half the memory and half the bytes read per decoded token). Vectors stay f32.
   */
  dtype?: WeightType;
  /**
   * Where the matrices live (core/weights.ts WeightPlace); default: outside the arena on a backend whose
   * products read them there (native), else in the arena (select.ts defaultWeightPlace).
   */
  place?: WeightPlace;
  /**
   * Compose each mixer's linear maps that run one after the other into one weight as the model loads
   * (TokenMixer.foldForInference: SUPRA's kernels into q_proj and k_proj), so a decoded token reads the
   * teacher's attention bytes; the model is then for inference only. Default: on for the inference-only
   * weight types (bf16, int8), off for f32 (the model as trained, trainable). See foldsFeatureMaps.
   */
  foldFeatureMaps?: boolean;
}

/** Why a model with folded feature maps cannot train or be saved, and what to do instead. */
export const FOLDED_REASON =
  'its feature maps are folded into q_proj and k_proj for inference (load it with foldFeatureMaps: false, or --feature-maps separate, to train, save or adapt it)';

/** Whether loading with these options folds the feature maps (DecoderOptions.foldFeatureMaps; its default in one place). */
export function foldsFeatureMaps(options: DecoderOptions): boolean {
  return options.foldFeatureMaps ?? (options.dtype !== undefined && options.dtype !== 'f32');
}

export interface LossOptions {
  /** Adds zLoss · mean(logsumexp²) (the paper's recipe uses 1e-4). Default 0. */
  zLoss?: number;
  /**
   * Targets [B·T] for each position (−100 = ignored). Default: next-token targets ids[:, 1:] with the
   * last position of every row ignored.
   */
  targets?: Int32Array;
}

export interface StepOptions {
  /** Compute logits for the last new token of each sequence only: step returns [B, V]. Default false. */
  lastOnly?: boolean;
}

/**
 * Most bytes of context-dependent working memory (MixerState.prefillBytes) one prefill step may take:
 * a softmax teacher's [B, H, piece, context] scores grow with the context, so its pieces shrink.
 */
export const PREFILL_STEP_BYTES = 256 * 2 ** 20;
/**
 * Most bytes of logits loss() and evaluateLoss() hold at once: above, [B·T, V] is computed in equal blocks of
 * rows (256 MiB: 2 blocks of 256 rows for 1 × 512 tokens of a 150k vocabulary; the embedded teacher's whole
 * batch, whose numbers are then those of one block). Each block reads the LM head's weight and its gradient
 * through memory: blocks of 110 rows (64 MiB) made the head's products run at half the speed of 256-row
 * ones with AMX (Qwen2.5-0.5B, 1 × 512: 0.9 s of a 3.3 s step against 0.5 s whole).
 */
export const LOGITS_CHUNK_BYTES = 256 * 2 ** 20;
/** Prefill pieces are not shrunk below this many tokens. */
const MIN_PREFILL_PIECE = 16;

/**
 * What the layers keep for backward, and the part of it outside the arena: every layer's, or with
 * activation checkpointing one layer's at a time (the largest).
 */
function keptByLayers(perLayer: ActivationBytes[], checkpointing: boolean): { kept: number; heap: number } {
  if (perLayer.length === 0) return { kept: 0, heap: 0 };
  if (checkpointing) {
    const largest = perLayer.reduce((a, b) => (b.kept > a.kept ? b : a));
    return { kept: largest.kept, heap: largest.keptHeap ?? 0 };
  }
  return perLayer.reduce((sum, a) => ({ kept: sum.kept + a.kept, heap: sum.heap + (a.keptHeap ?? 0) }), { kept: 0, heap: 0 });
}

/** Decoding state of a whole model for B sequences: one MixerState per layer. */
export class DecoderState {
  position = 0;
  constructor(readonly batch: number, readonly layers: MixerState[]) {}

  bytes(): number {
    return this.layers.reduce((s, l) => s + l.bytes(), 0);
  }

  /**
   * Tokens for the prefill step at `start`: `piece`, halved (down to 16) while a layer's step would need
   * more than PREFILL_STEP_BYTES of context-dependent memory (the layers share one scratch, so the
   * largest counts). A fixed-size state keeps `piece` at any position.
   */
  prefillPiece(start: number, piece: number): number {
    const cost = (n: number): number => Math.max(...this.layers.map((l) => l.prefillBytes(n, start)));
    while (piece > MIN_PREFILL_PIECE && cost(piece) > PREFILL_STEP_BYTES) piece >>= 1;
    return piece;
  }

  /** A copy with the same contents and positions, so several continuations can share one prefill. */
  clone(): DecoderState {
    const layers: MixerState[] = [];
    try {
      for (const l of this.layers) layers.push(l.clone());
    } catch (e) {
      for (const l of layers) l.free();
      throw e;
    }
    const out = new DecoderState(this.batch, layers);
    out.position = this.position;
    return out;
  }

  free(): void {
    for (const l of this.layers) l.free();
  }
}

export class DecoderLM {
  readonly config: ModelConfig;
  readonly store: ParamStore;
  readonly embedTokens: Param;
  readonly layers: DecoderLayer[] = [];
  readonly norm: RMSNorm;
  readonly lmHead: Linear;
  private readonly scratch = new Workspace(); // shared by all layers, contents live within one call
  private readonly acts = new Workspace(); // kept from a training forward to its backward
  private B = 0;
  private T = 0;
  private haveActs = false;
  private haveLossGrad = false;
  /** loss() chunked its logits: lm_head's gradients are done and d loss/d normed waits in acts 'dnorm'. */
  private headGradDone = false;
  private checkpointing = false;
  /** Most bytes of logits loss() and evaluateLoss() hold at once (LOGITS_CHUNK_BYTES; lower it to save memory). */
  logitsChunkBytes = LOGITS_CHUNK_BYTES;
  /** foldForInference has folded some mixer's maps: the model is for inference only. */
  foldedForInference = false;

  /**
   * Every layer keeps a fixed-size state (a SUPRA model): no context limit, memory constant per token,
   * state snapshots. False for a softmax teacher (or a model mixing in one softmax layer).
   */
  get recurrent(): boolean {
    return this.layers.every((l) => l.mixer.recurrent);
  }

  /**
   * `store`: where the parameters are declared (a declare-only store for parameterShapes); by default a
   * new one (matrices in options.dtype), once checkParametersFit has found room for them.
   */
  constructor(config: ModelConfig, options: DecoderOptions = {}, store?: ParamStore) {
    if (!store) checkParametersFit(config, options);
    this.config = config;
    this.store = store ?? new ParamStore({ dtype: options.dtype, place: options.place ?? defaultWeightPlace() });
    const factory = options.mixerFactory ?? mixerFactoryFor(config);
    const C = config.hidden_size;
    const V = config.vocab_size;
    this.embedTokens = this.store.add('model.embed_tokens.weight', [V, C]);
    for (let l = 0; l < config.num_hidden_layers; l++) {
      const ctx = { config, layer: l, prefix: `model.layers.${l}.self_attn`, store: this.store, scratch: this.scratch };
      this.layers.push(new DecoderLayer(ctx, factory));
    }
    this.norm = new RMSNorm(this.store, 'model.norm', C, config.rms_norm_eps);
    // Tied: the head is the embedding matrix itself, so its gradient sums both uses.
    this.lmHead = config.tie_word_embeddings
      ? new Linear(this.embedTokens, null, C, V)
      : Linear.create(this.store, 'lm_head', C, V, false);
  }

  /** Every parameter (a tied head is not listed twice). */
  params(): Param[] {
    return this.store.list();
  }

  /**
   * Fold every mixer's composable linear maps for inference (DecoderOptions.foldFeatureMaps), from read's
   * float32 values (default: the stored weights widened; loadDecoder reads the file's, so a quantized
   * weight is quantized once, after composing). The model can no longer train; returns whether anything folded.
   */
  foldForInference(read: ReadParam = widenParam): boolean {
    const folding = this.layers.filter((l) => l.mixer.foldForInference);
    if (folding.length === 0) return this.foldedForInference;
    if (this.store.gradsEnabled) throw new Error('supra: foldForInference: this model has gradients (it is training); fold a model loaded for inference');
    // the weights as loaded name the model in state snapshots, folded or not
    weightsFingerprint(this);
    // marked first: a fold failing half-way leaves a model that must not train or be saved either
    this.foldedForInference = true;
    this.store.inferenceOnly = FOLDED_REASON;
    for (const layer of folding) layer.mixer.foldForInference!(this.store, read);
    return true;
  }

  param(name: string): Param {
    return this.store.get(name);
  }

  /**
   * Allocate the gradient buffers (done by loss/backward on first use): of every parameter, or of
   * `trained` only, the others frozen (ParamStore.enableGrads).
   */
  enableGrads(trained?: Iterable<Param>): void {
    this.store.enableGrads(trained);
  }

  /** Zero every gradient, but those in `skip` (known to be zero already). */
  zeroGrad(skip?: ReadonlySet<Param>): void {
    this.store.zeroGrad(skip);
  }

  /** Copy ids into an arena buffer, checking their count and range. */
  private stageIds(ws: Workspace, name: string, ids: ArrayLike<number>, B: number, T: number): Int32Array {
    if (!Number.isInteger(B) || !Number.isInteger(T) || B <= 0 || T <= 0) throw new Error(`supra: bad batch shape B = ${B}, T = ${T}`);
    if (ids.length !== B * T) throw new Error(`supra: ${ids.length} token ids given for B·T = ${B}·${T} = ${B * T}`);
    const V = this.config.vocab_size;
    const out = ws.getI32(name, B * T);
    for (let i = 0; i < B * T; i++) {
      const id = ids[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`supra: token id ${id} at position ${i} is outside the vocabulary [0, ${V})`);
      out[i] = id;
    }
    return out;
  }

  /**
   * Training forward of B whole sequences of T tokens (positions 0 … T−1): logits [B, T, V]. The
   * returned view and every activation stay valid until the next forward of this model.
   */
  forward(ids: ArrayLike<number>, B: number, T: number): Float32Array {
    const V = this.config.vocab_size;
    const rows = B * T;
    const normed = this.forwardTrunk(ids, B, T);
    const logits = this.acts.get('logits', rows * V);
    this.lmHead.forward(normed, logits, rows);
    return logits;
  }

  /**
   * Keep only each layer's input (the residual stream) in the training forward, and recompute a layer's
   * activations just before its backward: activation memory of one layer instead of all of them, for one
   * more forward of the layers per step. The gradients are bit for bit those of the plain backward.
   */
  setActivationCheckpointing(on: boolean): void {
    if (on !== this.checkpointing) {
      for (const l of this.layers) l.freeActivations();
      this.haveActs = false;
      this.haveLossGrad = false;
      // one layer's activations at a time, freed after each: in the arena, which takes them back at once
      for (const l of this.layers) l.mlp.keepOutsideArena(!on);
    }
    this.checkpointing = on;
  }

  get activationCheckpointing(): boolean {
    return this.checkpointing;
  }

  /** The training forward up to the final norm: its output [B·T, hidden] (kept with everything backward needs). */
  private forwardTrunk(ids: ArrayLike<number>, B: number, T: number): Float32Array {
    const C = this.config.hidden_size, L = this.layers.length;
    const rows = B * T;
    const idsBuf = this.stageIds(this.acts, 'ids', ids, B, T);
    const residual = this.residuals(rows);
    embeddingOf(idsBuf, storedWeight(this.embedTokens), residual[0]!, rows, C);
    for (let l = 0; l < L; l++) {
      const layer = this.layers[l]!;
      layer.forward(residual[l]!, residual[l + 1]!, B, T, null);
      if (this.checkpointing) layer.freeActivations(); // recomputed from residual[l] by backward
    }
    const normed = this.acts.get('norm', rows * C);
    const rstd = this.acts.get('rstd', rows);
    this.norm.forward(residual[L]!, normed, rstd, rows);
    this.B = B;
    this.T = T;
    this.haveActs = true;
    this.haveLossGrad = false;
    this.headGradDone = false;
    return normed;
  }

  /**
   * The activation memory of a training step (loss and backward) of B sequences of T tokens, with or
   * without activation checkpointing (default: as the model is set), at the model's logits blocks: the
   * residual stream, every layer's kept activations (one layer's with checkpointing), the temporaries the
   * layers share, and the logits (a block of rows, or whole with their gradient).
   */
  trainingActivationBytes(B: number, T: number, checkpointing = this.checkpointing): number {
    const rows = B * T, C = this.config.hidden_size, V = this.config.vocab_size, L = this.layers.length;
    const perLayer = this.layers.map((l) => l.activationBytes(B, T));
    const scratch = Math.max(0, ...perLayer.map((a) => a.scratch));
    const chunk = this.logitRows(rows);
    const logits = chunk >= rows ? 2 * rows * V + rows * C : 2 * chunk * V + 2 * rows * C; // + d loss/d normed
    const model = (L + 2) * rows * C + 3 * rows + rows * C + logits; // residuals, norm, rstd, ids, targets, dh
    return 4 * model + keptByLayers(perLayer, checkpointing).kept + scratch;
  }

  /** Of trainingActivationBytes, the bytes outside the arena (layers' kept buffers that live there). */
  trainingActivationHeapBytes(B: number, T: number, checkpointing = this.checkpointing): number {
    return keptByLayers(this.layers.map((l) => l.activationBytes(B, T)), checkpointing).heap;
  }

  /**
   * Rows of logits computed at once for B·T rows: all of them while [rows, V] fits LOGITS_CHUNK_BYTES, else
   * the fewest blocks that fit, of equal rows (the last one fewer).
   */
  private logitRows(rows: number): number {
    const perRow = 4 * this.config.vocab_size;
    if (rows * perRow <= this.logitsChunkBytes) return rows;
    const most = Math.max(1, Math.floor(this.logitsChunkBytes / perRow));
    return Math.ceil(rows / Math.ceil(rows / most));
  }

  private residuals(rows: number): Float32Array[] {
    const n = rows * this.config.hidden_size;
    return Array.from({ length: this.layers.length + 1 }, (_, l) => this.acts.get(`h${l}`, n));
  }

  /**
   * The residual stream of the last forward: [L + 1] views of [B, T, hidden]; i = 0 the embeddings,
   * i = l + 1 the output of layer l (the last one before the final norm).
   */
  hiddenStates(): Float32Array[] {
    if (!this.haveActs) throw new Error('supra: hiddenStates() needs a forward first');
    return this.residuals(this.B * this.T);
  }

  /** Targets [B·T] for a loss: the given ones (checked), or next-token targets with each row's last ignored. */
  private lossTargets(B: number, T: number, given: Int32Array | undefined): Int32Array {
    const rows = B * T;
    if (given) {
      if (given.length !== rows) throw new Error(`supra: ${given.length} targets given for B·T = ${rows}`);
      return given;
    }
    const idsBuf = this.acts.getI32('ids', rows);
    const targets = this.acts.getI32('targets', rows);
    for (let b = 0; b < B; b++) {
      targets.set(idsBuf.subarray(b * T + 1, b * T + T), b * T);
      targets[b * T + T - 1] = -100;
    }
    return targets;
  }

  /**
   * Forward, then the mean cross-entropy (next-token by default) and its gradient, kept for backward().
   * Returns the loss (including the z-loss term when asked). While the logits [B·T, V] fit in
   * LOGITS_CHUNK_BYTES they are computed whole and d loss/d logits is kept; above, they are computed a
   * block of rows at a time and each block goes back through lm_head at once (its weight gradient
   * accumulates here, the rest in backward()), so a 150k-token vocabulary's logits never exist whole.
   */
  loss(ids: ArrayLike<number>, B: number, T: number, options: LossOptions = {}): number {
    const rows = B * T, V = this.config.vocab_size, C = this.config.hidden_size;
    const chunk = this.logitRows(rows);
    if (chunk >= rows) {
      const logits = this.forward(ids, B, T);
      const targets = this.lossTargets(B, T, options.targets);
      const dlogits = this.acts.get('dlogits', rows * V);
      const { loss } = crossEntropy(logits, targets, rows, V, dlogits, options.zLoss ?? 0);
      this.haveLossGrad = true;
      return loss;
    }
    const normed = this.forwardTrunk(ids, B, T);
    const targets = this.lossTargets(B, T, options.targets);
    this.store.enableGrads();
    const count = countTargets(targets, rows, V);
    const logits = this.scratch.get('dec.logits', chunk * V);
    const dlogits = this.scratch.get('dec.dlogits', chunk * V);
    const dnormed = this.acts.get('dnorm', rows * C);
    let loss = 0;
    for (let r = 0; r < rows; r += chunk) {
      const n = Math.min(chunk, rows - r);
      const x = normed.subarray(r * C, (r + n) * C);
      this.lmHead.forward(x, logits, n);
      loss += crossEntropy(logits, targets.subarray(r, r + n), n, V, dlogits, options.zLoss ?? 0, count).loss;
      this.lmHead.backward(dlogits, x, dnormed.subarray(r * C, (r + n) * C), n);
    }
    this.haveLossGrad = true;
    this.headGradDone = true;
    return loss;
  }

  /**
   * The mean next-token cross-entropy (no z-loss) of B sequences of T tokens against targets [B·T]
   * (−100 = ignored) and the count of targets, with no gradient: logits a block of rows at a time as
   * loss() computes them. For validation.
   */
  evaluateLoss(ids: ArrayLike<number>, targets: Int32Array, B: number, T: number): { loss: number; count: number } {
    const rows = B * T, V = this.config.vocab_size, C = this.config.hidden_size;
    if (targets.length < rows) throw new Error(`supra: ${targets.length} targets given for B·T = ${rows}`);
    const chunk = this.logitRows(rows);
    if (chunk >= rows) return crossEntropy(this.forward(ids, B, T), targets, rows, V, null, 0);
    const normed = this.forwardTrunk(ids, B, T);
    const count = countTargets(targets, rows, V);
    const logits = this.scratch.get('dec.logits', chunk * V);
    let loss = 0;
    for (let r = 0; r < rows; r += chunk) {
      const n = Math.min(chunk, rows - r);
      this.lmHead.forward(normed.subarray(r * C, (r + n) * C), logits, n);
      loss += crossEntropy(logits, targets.subarray(r, r + n), n, V, null, 0, count).loss;
    }
    return { loss, count };
  }

  /**
   * Backward of the last forward from d loss/d logits [B, T, V] (default: the one loss() wrote).
   * Every parameter's gradient accumulates (call zeroGrad() between steps).
   */
  backward(dlogits?: Float32Array): void {
    if (!this.haveActs) throw new Error('supra: backward() needs a forward (or loss) first');
    const c = this.config;
    const C = c.hidden_size, V = c.vocab_size, L = this.layers.length;
    const rows = this.B * this.T;
    let dl: Float32Array | null = null;
    if (dlogits) {
      if (dlogits.length !== rows * V) throw new Error(`supra: dlogits has ${dlogits.length} values, expected B·T·V = ${rows * V}`);
      if (this.headGradDone) throw new Error('supra: backward(dlogits) needs forward(), not a loss() that chunked its logits');
      dl = dlogits;
    } else {
      if (!this.haveLossGrad) throw new Error('supra: backward() without dlogits needs loss() first');
      if (!this.headGradDone) dl = this.acts.get('dlogits', rows * V);
    }
    this.store.enableGrads();
    const residual = this.residuals(rows);
    const normed = this.acts.get('norm', rows * C);
    const rstd = this.acts.get('rstd', rows);
    const dh = this.scratch.get('dec.dh', rows * C);
    if (this.headGradDone && !dlogits) {
      // the chunked loss sent each block of logits back through lm_head already
      this.norm.backward(this.acts.get('dnorm', rows * C), residual[L]!, rstd, dh, rows);
    } else {
      const dnormed = this.scratch.get('dec.dnorm', rows * C);
      this.lmHead.backward(dl!, normed, dnormed, rows);
      this.norm.backward(dnormed, residual[L]!, rstd, dh, rows);
    }
    for (let l = L - 1; l >= 0; l--) {
      const layer = this.layers[l]!;
      if (this.checkpointing) layer.forward(residual[l]!, residual[l + 1]!, this.B, this.T, null); // the same values again
      layer.backward(dh);
      if (this.checkpointing) layer.freeActivations();
    }
    const dEmbed = gradIfTrained(this.embedTokens);
    if (dEmbed) embeddingBackward(this.acts.getI32('ids', rows), dh, dEmbed, rows, C);
  }

  /** A fresh decoding state for B sequences. */
  newState(B: number): DecoderState {
    return new DecoderState(B, this.layers.map((l) => l.mixer.newState(B)));
  }

  /**
   * Incremental decoding: T new tokens per sequence (a prefill, then single tokens) continuing `state`.
   * Returns their logits [B, T, V], valid until the next step of this model. With `lastOnly` only the
   * last new token of each sequence goes through the final norm and lm_head, and the result is [B, V]:
   * what generation needs after a prefill (for a long prompt lm_head over every token would dominate).
   */
  step(ids: ArrayLike<number>, B: number, T: number, state: DecoderState, options: StepOptions = {}): Float32Array {
    if (state.batch !== B) throw new Error(`supra: decoding state was made for batch ${state.batch}, step called with B = ${B}`);
    const c = this.config;
    const C = c.hidden_size, V = c.vocab_size;
    const rows = B * T;
    const idsBuf = this.stageIds(this.scratch, 'dec.ids', ids, B, T);
    const h = this.scratch.get('dec.h', rows * C);
    embeddingOf(idsBuf, storedWeight(this.embedTokens), h, rows, C);
    const gather = options.lastOnly === true && T > 1;
    const outRows = gather ? B : rows;
    const normed = this.scratch.get('dec.norm', outRows * C);
    const rstd = this.scratch.get('dec.rstd', outRows);
    // Each layer may end with the norm that reads its output next (the next layer's, then this model's last),
    // in the same backend call (DecoderLayer.forward's `next`).
    let normedNext = false;
    for (let l = 0; l < this.layers.length; l++) {
      const following = this.layers[l + 1];
      const next: NextNorm | null = following ? following.inputNormStep(rows) : gather ? null : { norm: this.norm, out: normed, rstd };
      normedNext = this.layers[l]!.forward(h, h, B, T, state.layers[l]!, normedNext, next);
    }
    let last = h;
    if (gather) {
      // gather h[b, T−1, :] of every sequence into B contiguous rows
      last = this.scratch.get('dec.hlast', B * C);
      for (let b = 0; b < B; b++) last.set(h.subarray((b * T + T - 1) * C, (b * T + T) * C), b * C);
    }
    if (!normedNext) this.norm.forward(last, normed, rstd, outRows);
    const logits = this.scratch.get('dec.logits', outRows * V);
    this.lmHead.forward(normed, logits, outRows);
    state.position += T;
    return logits;
  }

  /** Release the activations kept for backward (they come back on the next forward). */
  freeActivations(): void {
    this.acts.free();
    for (const l of this.layers) l.freeActivations();
    this.haveActs = false;
    this.haveLossGrad = false;
  }

  /** Release every buffer: parameters, gradients, activations. The model is unusable afterwards. */
  free(): void {
    this.freeActivations();
    this.scratch.free();
    this.store.free();
  }
}

/**
 * Name → shape of every parameter a model of `config` has (a tied head is not listed), as the layers
 * declare them, without allocating any weights: what a checkpoint for this config must hold.
 */
export function parameterShapes(config: ModelConfig, options: DecoderOptions = {}): Map<string, number[]> {
  const model = new DecoderLM(config, options, new ParamStore({ declareOnly: true }));
  try {
    return new Map(model.params().map((p) => [p.name, [...p.shape]]));
  } finally {
    model.free();
  }
}

export interface ParameterMemory {
  /** Parameter values (a tied head counted once). */
  count: number;
  /** The memory they take as stored: matrices in options.dtype, the rest float32 (ParamStore.typeFor). */
  bytes: number;
  /** Of bytes, those in the wasm arena and those outside it (ParamStore.placeFor). */
  arenaBytes: number;
  heapBytes: number;
  dtype: WeightType;
  /** What folding the feature maps as the model loads takes beyond them at once (TokenMixer.foldingBytes); 0 when it does not fold. */
  foldingArenaBytes: number;
  foldingHeapBytes: number;
}

/**
 * The memory a model of `config` needs for its parameters, and what folding its feature maps takes beyond
 * them at once, from a declare-only model: no weights read.
 */
export function parameterMemory(config: ModelConfig, options: DecoderOptions = {}): ParameterMemory {
  const store = new ParamStore({ dtype: options.dtype, place: options.place ?? defaultWeightPlace(), declareOnly: true });
  const model = new DecoderLM(config, options, new ParamStore({ declareOnly: true }));
  let count = 0, arenaBytes = 0, heapBytes = 0, foldingArenaBytes = 0, foldingHeapBytes = 0;
  try {
    for (const p of model.params()) {
      const n = p.shape.reduce((a, b) => a * b, 1);
      const cols = p.shape[p.shape.length - 1]!;
      const bytes = weightBytes(store.typeFor(p.shape), n / cols, cols);
      count += n;
      if (store.placeFor(p.shape) === 'arena') arenaBytes += bytes;
      else heapBytes += bytes;
    }
    if (foldsFeatureMaps(options)) {
      for (const layer of model.layers) {
        const f = layer.mixer.foldingBytes?.(store);
        if (f && f.arena + f.heap > foldingArenaBytes + foldingHeapBytes) ({ arena: foldingArenaBytes, heap: foldingHeapBytes } = f);
      }
    }
  } finally {
    model.free();
  }
  return { count, bytes: arenaBytes + heapBytes, arenaBytes, heapBytes, dtype: store.dtype, foldingArenaBytes, foldingHeapBytes };
}

const GiB = 2 ** 30;
const gib = (bytes: number): string => `${(bytes / GiB).toFixed(2)} GiB`;
const parameterCount = (n: number): string => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} B` : `${(n / 1e6).toFixed(1)} M`);

/**
 * Refuse a model whose parameters cannot fit where they would be allocated before any of them is: the
 * wasm arena (4 GiB, the wasm32 limit) for what lives there, the machine's available memory for matrices
 * kept outside it (native). Every way of making a model (a folder, an init config, linearize) passes
 * here, and the message gives the estimate and what to do instead of failing half-way through
 * allocating. `source` (a folder, a config file) starts the message.
 */
export function checkParametersFit(config: ModelConfig, options: DecoderOptions = {}, source?: string): void {
  const need = parameterMemory(config, options);
  const dtypeName = { f32: 'float32', bf16: 'bfloat16', int8: 'int8' }[need.dtype];
  const what = `${source ?? config.architecture}: the model's ${parameterCount(need.count)} parameters need ${gib(need.bytes)} with matrices in ${dtypeName}`;
  const narrower = need.dtype === 'f32'
    ? `load it with dtype bf16 (--dtype bf16; inference only), which halves its matrices, or int8 (--quantize int8), which takes ${bytesRatioText('int8', 'f32')} of them, or `
    : need.dtype === 'bf16'
      ? `load it with dtype int8 (--quantize int8; inference only), which takes ${bytesRatioText('int8', 'bf16')} of its bf16 matrices, or `
      : '';
  const arenaFree = arenaFreeBytes();
  const folding = (bytes: number) => (bytes > 0 ? `, and ${gib(bytes)} more while folding its feature maps (--feature-maps separate, or foldFeatureMaps: false, skips that)` : '');
  if (need.arenaBytes + need.foldingArenaBytes > arenaFree) {
    const backend = getBackend();
    const native = backend.heapWeights
      ? ''
      : 'use the native backend (--backend native, or SUPRA_BACKEND=native), which keeps the matrices outside the arena; or ';
    throw new Error(
      `supra: ${what}${folding(need.foldingArenaBytes)}, more than the ${gib(arenaFree)} free in the ${(ARENA_MAX_BYTES / GiB).toFixed(0)} GiB wasm32 arena ` +
        `that holds the weights on the ${backend.name} backend. To run it, ${native}${narrower}use a smaller model: ` +
        `the arena holds about ${parameterCount(Math.max(0, arenaFree - need.foldingArenaBytes) / (need.bytes / need.count))} parameters this way.`,
    );
  }
  const available = need.heapBytes > 0 ? getBackend().heapBytesAvailable?.() : undefined;
  if (available !== undefined && need.heapBytes + need.foldingHeapBytes > available) {
    throw new Error(
      `supra: ${what}${folding(need.foldingHeapBytes)}, more than the ${gib(available)} of memory this machine has available. ` +
        `To run it, ${narrower}use a smaller model, or free memory.`,
    );
  }
}
