// A LoRA adapter on a linear layer (Hu et al. 2021, as PEFT implements it): the frozen weight W [out, in]
// gains a low-rank update, y = x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ with A [r, in], B [out, r] and s = alpha / r.
// A starts as PyTorch's kaiming_uniform_(a=√5), i.e. U(±1/√in) (PEFT's default), and B at zero, so the
// adapted layer starts as the layer itself. Parameters are named as PEFT names them:
// `<module>.lora_A.weight`, `<module>.lora_B.weight` (module = the weight's name less `.weight`).
//
// Forward beside backward; nothing is kept between them (the caller passes x again, as to Linear): the
// backward recomputes t = x·Aᵀ, which costs rows·in·r, a small share of the layer's own rows·in·out.
//   forward         y += s·t·Bᵀ                                  t = x·Aᵀ           [rows, r]
//   backward input  dx += u·A                                    u = s·dy·B         [rows, r]
//   backward params dB += s·dyᵀ·t,  dA += uᵀ·x
// Linear (linear.ts) calls these; a layer never sees the adapter.
import { allocF32, free } from '../core/memory.js';
import { matmul } from '../core/ops.js';
import { gradOf } from './params.js';
import type { GetParam } from './projections.js';
import type { Param } from './types.js';
import type { Workspace } from './workspace.js';

function checkLoraShape(rank: number, alpha: number): void {
  if (!(Number.isInteger(rank) && rank >= 1)) throw new RangeError(`supra: LoRA rank must be an integer ≥ 1, got ${rank}`);
  if (!(Number.isFinite(alpha) && alpha > 0)) throw new RangeError(`supra: LoRA alpha must be a finite number > 0, got ${alpha}`);
}

export class LoraAdapter {
  /** alpha / r, the factor of the update. */
  readonly scale: number;

  constructor(
    /** [r, in] */
    readonly a: Param,
    /** [out, r] */
    readonly b: Param,
    readonly rank: number,
    readonly alpha: number,
    /** Scratch for t and u (contents live within one call); shared by the adapters of one model. */
    private readonly scratch: Workspace,
  ) {
    checkLoraShape(rank, alpha);
    if (a.shape.length !== 2 || b.shape.length !== 2 || a.shape[0] !== rank || b.shape[1] !== rank) {
      throw new Error(`supra: LoRA ${a.name} is [${a.shape.join(', ')}] and ${b.name} [${b.shape.join(', ')}]; rank ${rank} needs [${rank}, in] and [out, ${rank}]`);
    }
    this.scale = alpha / rank;
  }

  /** `${module}.lora_A.weight` [r, in] and `${module}.lora_B.weight` [out, r], from getParam. */
  static declare(getParam: GetParam, module: string, inF: number, outF: number, rank: number, alpha: number, scratch: Workspace): LoraAdapter {
    checkLoraShape(rank, alpha);
    return new LoraAdapter(getParam(`${module}.lora_A.weight`, [rank, inF]), getParam(`${module}.lora_B.weight`, [outF, rank]), rank, alpha, scratch);
  }

  get inFeatures(): number {
    return this.a.shape[1]!;
  }

  get outFeatures(): number {
    return this.b.shape[0]!;
  }

  /** t[rows, r] = x·Aᵀ, in the scratch. */
  private down(x: Float32Array, rows: number): Float32Array {
    const t = this.scratch.get('lora.t', rows * this.rank);
    matmul({ transA: false, transB: true, m: rows, n: this.rank, k: this.inFeatures, a: x, b: this.a.data, c: t });
    return t;
  }

  /** u[rows, r] = s·dy·B, in the scratch. */
  private upGrad(dy: Float32Array, rows: number): Float32Array {
    const u = this.scratch.get('lora.u', rows * this.rank);
    matmul({ transA: false, transB: false, m: rows, n: this.rank, k: this.outFeatures, alpha: this.scale, a: dy, b: this.b.data, c: u });
    return u;
  }

  /** y[rows, out] += s·(x·Aᵀ)·Bᵀ */
  forwardAdd(x: Float32Array, y: Float32Array, rows: number): void {
    const t = this.down(x, rows);
    matmul({ transA: false, transB: true, m: rows, n: this.outFeatures, k: this.rank, alpha: this.scale, beta: 1, a: t, b: this.b.data, c: y });
  }

  /** dx[rows, in] += s·(dy·B)·A */
  backwardInput(dy: Float32Array, dx: Float32Array, rows: number): void {
    const u = this.upGrad(dy, rows);
    matmul({ transA: false, transB: false, m: rows, n: this.inFeatures, k: this.rank, beta: 1, a: u, b: this.a.data, c: dx });
  }

  /** dB += s·dyᵀ·(x·Aᵀ), dA += (s·dy·B)ᵀ·x (accumulated; frozen ones skipped). */
  backwardParams(dy: Float32Array, x: Float32Array, rows: number): void {
    if (!this.b.frozen) {
      const t = this.down(x, rows);
      matmul({ transA: true, transB: false, m: this.outFeatures, n: this.rank, k: rows, alpha: this.scale, beta: 1, a: dy, b: t, c: gradOf(this.b) });
    }
    if (!this.a.frozen) {
      const u = this.upGrad(dy, rows);
      matmul({ transA: true, transB: false, m: this.rank, n: this.inFeatures, k: rows, beta: 1, a: u, b: x, c: gradOf(this.a) });
    }
  }

  params(): Param[] {
    return [this.a, this.b];
  }
}

/**
 * W[out, in] += s·B·A in place, each entry summed in float64 and rounded once to float32 (the same bits
 * on every backend, for `supra merge` and a trainer's final model alike).
 */
export function mergeLoraInto(w: Float32Array, a: Float32Array, b: Float32Array, rank: number, scale: number, outF: number, inF: number): void {
  if (w.length !== outF * inF || a.length !== rank * inF || b.length !== outF * rank) {
    throw new RangeError(`supra: merging LoRA: W holds ${w.length}, A ${a.length}, B ${b.length} values; [${outF}, ${inF}] at rank ${rank} needs ${outF * inF}, ${rank * inF}, ${outF * rank}`);
  }
  const acc = new Float64Array(inF);
  for (let o = 0; o < outF; o++) {
    acc.fill(0);
    for (let r = 0; r < rank; r++) {
      const c = scale * b[o * rank + r]!;
      if (c === 0) continue;
      const row = r * inF;
      for (let i = 0; i < inF; i++) acc[i] += c * a[row + i]!;
    }
    const row = o * inF;
    for (let i = 0; i < inF; i++) w[row + i] = w[row + i]! + acc[i]!;
  }
}

/** Rows of a frozen weight widened per band for dx = dy·W (about this many values a band). */
const BAND_VALUES = 1 << 20;

/**
 * dx[rows, in] = dy[rows, out]·W (overwritten, or added with accumulate) for a weight W [out, in] stored in
 * any type: band by band of W's rows, each widened to float32 (toFloat) into one temporary, then sgemm.
 * For a frozen weight kept in an inference type (BF16, int8): its product backward without a float32 copy.
 */
export function backwardInputBanded(
  dy: Float32Array, toFloat: (from: number, count: number, out: Float32Array) => void,
  dx: Float32Array, rows: number, inF: number, outF: number, accumulate: boolean,
): void {
  const bandRows = Math.max(1, Math.min(outF, Math.floor(BAND_VALUES / inF)));
  const band = allocF32(bandRows * inF);
  try {
    for (let o0 = 0; o0 < outF; o0 += bandRows) {
      const k = Math.min(bandRows, outF - o0);
      toFloat(o0 * inF, k * inF, band);
      matmul({
        transA: false, transB: false, m: rows, n: inF, k,
        a: dy.subarray(o0), lda: outF, b: band, ldb: inF, c: dx,
        beta: o0 === 0 && !accumulate ? 0 : 1,
      });
    }
  } finally {
    free(band);
  }
}
