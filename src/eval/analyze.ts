// The paper's Appendix A comparison: how close is each SUPRA head's attention to the teacher head it
// replaced? For every layer and head, on the same tokens:
//
//   teacher  P[t, j] = softmax_j(q_t·k_j / √D) over j ≤ t            (q, k after RoPE; GQA: kv head ⌊h/(H/Hkv)⌋)
//   SUPRA    A[t, j] = exp(−slope_h (t − j)) · q̃_t·k̃_j / √Dk, j ≤ t   (q̃, k̃ after relu, qk-norm, RoPE;
//                                                                    no denominator, 0 above the diagonal)
//
// compared raw and after dividing each row by the absolute value of its sum, by
//
//   cosine      ⟨P, A⟩_F / (‖P‖_F ‖A‖_F), the two matrices flattened
//   svDistance  ‖σ(P)/‖σ(P)‖₂ − σ(A)/‖σ(A)‖₂‖₂ with σ the singular values in descending order
//               (Householder bidiagonalization, then bisection; see singularValues)
//               (‖σ(M)‖₂ = ‖M‖_F, so each spectrum is scale-free; the distance lies in [0, √2])
//
// plus the drift of the q/k/v/o projection weights between teacher and model. Everything is computed
// in float64 from each model's own float32 activations (its own forward of the tokens).
import type { DecoderLM } from '../models/decoder.js';

// ---------------------------------------------------------------- metrics on small dense matrices

/** ⟨a, b⟩ / (‖a‖ ‖b‖); NaN when either is all zeros. */
export function cosineSimilarity(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`supra: cosineSimilarity: lengths ${a.length} and ${b.length} differ`);
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!, y = b[i]!;
    ab += x * y;
    aa += x * x;
    bb += y * y;
  }
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : NaN;
}

/** Each row of the rows × cols matrix divided by |its sum|; a row summing to exactly 0 is left as it is. */
export function rowNormalize(m: Float64Array, rows: number, cols: number): Float64Array {
  if (m.length !== rows * cols) throw new Error(`supra: rowNormalize: ${m.length} values for ${rows}×${cols}`);
  const out = new Float64Array(m.length);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += m[r * cols + c]!;
    const d = s !== 0 ? Math.abs(s) : 1;
    for (let c = 0; c < cols; c++) out[r * cols + c] = m[r * cols + c]! / d;
  }
  return out;
}

/**
 * Singular values (descending) of a rows × cols row-major matrix, in float64, in two steps:
 *
 * 1. Householder bidiagonalization (Golub–Kahan): A = U·B·Vᵀ with B upper bidiagonal (diagonal d,
 *    superdiagonal e). Orthogonal transformations keep the singular values.
 * 2. The 2n × 2n symmetric tridiagonal matrix with zero diagonal and off-diagonal (d₀, e₀, d₁, e₁, …, d₋₁)
 *    has eigenvalues ±σᵢ(B). Each σᵢ is found by bisection with Sturm counts, to an absolute accuracy of
 *    1e-14·‖B‖ (no squaring, so small singular values are not lost as they would be in AᵀA).
 *
 * O(n³) for the bidiagonalization plus O(n²·50) for the bisection: ~0.05 s for 128 × 128, ~0.2 s for 256 × 256.
 */
export function singularValues(m: ArrayLike<number>, rows: number, cols: number): Float64Array {
  if (m.length !== rows * cols) throw new Error(`supra: singularValues: ${m.length} values for ${rows}×${cols}`);
  // work on an R × C copy with R ≥ C (the transpose has the same singular values)
  const R = Math.max(rows, cols), C = Math.min(rows, cols);
  const a = new Float64Array(R * C);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) a[rows >= cols ? r * C + c : c * C + r] = m[r * cols + c]!;
  }
  const { d, e } = bidiagonalize(a, R, C);
  return bidiagonalSingularValues(d, e);
}

/** Householder reflector for x: returns v (x − α·e₀) and α = −sign(x₀)‖x‖, or null when x = 0. */
function reflector(x: Float64Array): { v: Float64Array; alpha: number; vv: number } | null {
  let n2 = 0;
  for (let i = 0; i < x.length; i++) n2 += x[i]! * x[i]!;
  if (n2 === 0) return null;
  const alpha = x[0]! >= 0 ? -Math.sqrt(n2) : Math.sqrt(n2);
  const v = Float64Array.from(x);
  v[0] = v[0]! - alpha;
  const vv = n2 - x[0]! * x[0]! + v[0]! * v[0]!;
  return vv > 0 ? { v, alpha, vv } : null;
}

/** Reduce the R × C (R ≥ C) row-major matrix a in place to upper bidiagonal form; returns d [C], e [C − 1]. */
function bidiagonalize(a: Float64Array, R: number, C: number): { d: Float64Array; e: Float64Array } {
  const d = new Float64Array(C), e = new Float64Array(Math.max(0, C - 1));
  const s = new Float64Array(C);
  for (let k = 0; k < C; k++) {
    // from the left: zero column k below the diagonal
    const col = new Float64Array(R - k);
    for (let i = k; i < R; i++) col[i - k] = a[i * C + k]!;
    const hl = reflector(col);
    if (hl) {
      const f = 2 / hl.vv;
      s.fill(0, k + 1);
      for (let i = k; i < R; i++) {
        const vi = hl.v[i - k]!;
        for (let j = k + 1; j < C; j++) s[j] = s[j]! + vi * a[i * C + j]!;
      }
      for (let i = k; i < R; i++) {
        const vi = f * hl.v[i - k]!;
        for (let j = k + 1; j < C; j++) a[i * C + j] = a[i * C + j]! - vi * s[j]!;
      }
      d[k] = hl.alpha;
    } else d[k] = a[k * C + k]!;
    if (k >= C - 1) continue;
    // from the right: zero row k right of the superdiagonal
    const row = a.slice(k * C + k + 1, k * C + C);
    const hr = reflector(row);
    if (hr) {
      const f = 2 / hr.vv;
      for (let i = k + 1; i < R; i++) {
        const o = i * C + k + 1;
        let dot = 0;
        for (let j = 0; j < row.length; j++) dot += hr.v[j]! * a[o + j]!;
        dot *= f;
        for (let j = 0; j < row.length; j++) a[o + j] = a[o + j]! - dot * hr.v[j]!;
      }
      e[k] = hr.alpha;
    } else e[k] = row[0]!;
  }
  return { d, e };
}

/** Singular values (descending) of the upper bidiagonal matrix (d, e), by bisection on its Golub–Kahan form. */
function bidiagonalSingularValues(d: Float64Array, e: Float64Array): Float64Array {
  const n = d.length;
  // off-diagonal of the 2n × 2n zero-diagonal tridiagonal matrix, squared for the Sturm recurrence
  const b2 = new Float64Array(2 * n - 1);
  let bound = 0;
  for (let i = 0; i < 2 * n - 1; i++) {
    const v = i % 2 === 0 ? d[i / 2]! : e[(i - 1) / 2]!;
    b2[i] = v * v;
  }
  for (let i = 0; i < 2 * n; i++) bound = Math.max(bound, (i > 0 ? Math.sqrt(b2[i - 1]!) : 0) + (i < 2 * n - 1 ? Math.sqrt(b2[i]!) : 0));
  if (bound === 0) return new Float64Array(n);
  const tiny = Number.MIN_VALUE * 1e10;
  // number of eigenvalues < x (Sturm count from the LDLᵀ pivots of T − xI)
  const below = (x: number): number => {
    let count = 0;
    let q = -x;
    if (q < 0) count++;
    for (let i = 1; i < 2 * n; i++) {
      q = -x - b2[i - 1]! / (q !== 0 ? q : tiny);
      if (q < 0) count++;
    }
    return count;
  };
  const sv = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    const j = 2 * n - 1 - k; // σ_k is the j-th smallest eigenvalue
    // σ_k ≤ σ_{k−1}: start from the bracket the previous value leaves
    let lo = 0, hi = (k > 0 ? sv[k - 1]! : bound) * (1 + 1e-12) + tiny;
    if (below(lo) > j) { sv[k] = 0; continue; }
    for (let it = 0; it < 200 && hi - lo > 1e-14 * bound; it++) {
      const mid = 0.5 * (lo + hi);
      if (below(mid) > j) hi = mid;
      else lo = mid;
    }
    sv[k] = 0.5 * (lo + hi);
  }
  return sv;
}

/**
 * ‖σ(a)/‖σ(a)‖₂ − σ(b)/‖σ(b)‖₂‖₂ for two n × n matrices: the L2 distance between their singular-value
 * vectors (descending), each normalized to unit length. 0 for matrices with proportional spectra, at
 * most √2; NaN when either matrix is zero.
 */
export function singularValueDistance(a: ArrayLike<number>, b: ArrayLike<number>, n: number): number {
  const sa = singularValues(a, n, n), sb = singularValues(b, n, n);
  const na = Math.hypot(...sa), nb = Math.hypot(...sb);
  if (!(na > 0) || !(nb > 0)) return NaN;
  let d = 0;
  for (let i = 0; i < n; i++) d += (sa[i]! / na - sb[i]! / nb) ** 2;
  return Math.sqrt(d);
}

// ---------------------------------------------------------------- attention matrices

/** Per layer, per head: the T × T attention matrix (row-major, float64). */
export type AttentionMaps = Float64Array[][];

function checkIds(model: DecoderLM, ids: ArrayLike<number>): number {
  const T = ids.length;
  if (T < 2) throw new Error(`supra: analyze needs at least 2 tokens, got ${T}`);
  return T;
}

/**
 * The teacher's causal softmax attention probabilities for every layer and head on one sequence, from the
 * q and k (after RoPE) its attention layers computed in a forward of the tokens (attentionInternals()).
 */
export function teacherAttention(teacher: DecoderLM, ids: ArrayLike<number>): AttentionMaps {
  const T = checkIds(teacher, ids);
  teacher.forward(Int32Array.from(ids), 1, T);
  const maps: AttentionMaps = [];
  try {
    teacher.layers.forEach((layer, l) => {
      const att = layer.mixer.attentionInternals?.();
      if (att?.kind !== 'softmax') throw new Error(`supra: analyze: layer ${l} of the teacher is not softmax attention (is --teacher a SUPRA model?)`);
      const { q, k, heads: H, kvHeads: Hkv, headDim: D } = att;
      const group = H / Hkv, scale = 1 / Math.sqrt(D);
      const heads: Float64Array[] = [];
      const row = new Float64Array(T);
      for (let h = 0; h < H; h++) {
        const kh = Math.floor(h / group);
        const p = new Float64Array(T * T);
        for (let t = 0; t < T; t++) {
          let max = -Infinity;
          for (let j = 0; j <= t; j++) {
            let s = 0;
            for (let d = 0; d < D; d++) s += q[(t * H + h) * D + d]! * k[(j * Hkv + kh) * D + d]!;
            row[j] = s * scale;
            if (row[j]! > max) max = row[j]!;
          }
          let sum = 0;
          for (let j = 0; j <= t; j++) sum += (row[j] = Math.exp(row[j]! - max));
          for (let j = 0; j <= t; j++) p[t * T + j] = row[j]! / sum;
        }
        heads.push(p);
      }
      maps.push(heads);
    });
  } finally {
    teacher.freeActivations();
  }
  return maps;
}

/**
 * The SUPRA model's attention matrices A[t, j] = exp(−slope_h(t − j))·q̃_t·k̃_j/√Dk (j ≤ t, else 0) for
 * every layer and head on one sequence, from the q̃, k̃ each SUPRA layer computed (attentionInternals()).
 */
export function supraAttention(model: DecoderLM, ids: ArrayLike<number>): AttentionMaps {
  const T = checkIds(model, ids);
  model.forward(Int32Array.from(ids), 1, T);
  const maps: AttentionMaps = [];
  try {
    model.layers.forEach((layer, l) => {
      const att = layer.mixer.attentionInternals?.();
      if (att?.kind !== 'linear') throw new Error(`supra: analyze: layer ${l} of --model is not SUPRA attention (is --model a SUPRA folder?)`);
      const { q, k, denominator } = att;
      const heads = decayedScores(q, k, att.slopes, att.heads, T, att.kernelDim);
      // normalization 'sum' (T2R-style): the weights are the scores over the layer's own denominator z[t, h]
      if (denominator) {
        const eps = att.denominatorEps;
        heads.forEach((a, h) => {
          for (let t = 0; t < T; t++) {
            const z = denominator[t * att.heads + h]! + eps;
            for (let j = 0; j <= t; j++) a[t * T + j]! /= z;
          }
        });
      }
      maps.push(heads);
    });
  } finally {
    model.freeActivations();
  }
  return maps;
}

/** A[h][t, j] = exp(−slopes[h](t − j)) · q[h, t]·k[h, j] / √Dk for j ≤ t; q, k head-major [H, T, Dk]. */
export function decayedScores(q: ArrayLike<number>, k: ArrayLike<number>, slopes: ArrayLike<number>, H: number, T: number, Dk: number): Float64Array[] {
  const scale = 1 / Math.sqrt(Dk);
  const heads: Float64Array[] = [];
  for (let h = 0; h < H; h++) {
    const a = new Float64Array(T * T);
    const o = h * T * Dk;
    for (let t = 0; t < T; t++) {
      for (let j = 0; j <= t; j++) {
        let s = 0;
        for (let d = 0; d < Dk; d++) s += q[o + t * Dk + d]! * k[o + j * Dk + d]!;
        a[t * T + j] = Math.exp(-slopes[h]! * (t - j)) * s * scale;
      }
    }
    heads.push(a);
  }
  return heads;
}

// ---------------------------------------------------------------- the analysis

export interface HeadMetrics {
  /** [layer][head] */
  cosine: { raw: number[][]; rownorm: number[][] };
  svDistance: { raw: number[][]; rownorm: number[][] };
}

/** Cosine and singular-value distance of every head, raw and row-normalized. */
export function compareAttention(teacher: AttentionMaps, model: AttentionMaps, T: number): HeadMetrics {
  if (teacher.length !== model.length) throw new Error(`supra: analyze: the teacher has ${teacher.length} layers, the model ${model.length}`);
  const out: HeadMetrics = { cosine: { raw: [], rownorm: [] }, svDistance: { raw: [], rownorm: [] } };
  teacher.forEach((heads, l) => {
    if (heads.length !== model[l]!.length) throw new Error(`supra: analyze: layer ${l}: ${heads.length} teacher heads vs ${model[l]!.length} model heads`);
    const row = { cr: [] as number[], cn: [] as number[], sr: [] as number[], sn: [] as number[] };
    heads.forEach((p, h) => {
      const a = model[l]![h]!;
      const pn = rowNormalize(p, T, T), an = rowNormalize(a, T, T);
      row.cr.push(cosineSimilarity(p, a));
      row.cn.push(cosineSimilarity(pn, an));
      row.sr.push(singularValueDistance(p, a, T));
      row.sn.push(singularValueDistance(pn, an, T));
    });
    out.cosine.raw.push(row.cr);
    out.cosine.rownorm.push(row.cn);
    out.svDistance.raw.push(row.sr);
    out.svDistance.rownorm.push(row.sn);
  });
  return out;
}

export const PROJECTIONS = ['q_proj', 'k_proj', 'v_proj', 'o_proj'] as const;

/** Drift of the attention projections: W₀ the teacher's, W₁ the model's (same names). */
export function weightDrift(teacher: DecoderLM, model: DecoderLM): Array<{ layer: number; drift: Record<string, { relChange: number; cosine: number }> }> {
  const L = teacher.config.num_hidden_layers;
  if (model.config.num_hidden_layers !== L) throw new Error(`supra: analyze: the teacher has ${L} layers, the model ${model.config.num_hidden_layers}`);
  const out = [];
  for (let l = 0; l < L; l++) {
    const drift: Record<string, { relChange: number; cosine: number }> = {};
    for (const p of PROJECTIONS) {
      const name = `model.layers.${l}.self_attn.${p}.weight`;
      const w0 = teacher.param(name).data, w1 = model.param(name).data;
      if (w0.length !== w1.length) throw new Error(`supra: analyze: ${name} has ${w0.length} values in the teacher, ${w1.length} in the model`);
      let d2 = 0, n0 = 0;
      for (let i = 0; i < w0.length; i++) {
        d2 += (w1[i]! - w0[i]!) ** 2;
        n0 += w0[i]! * w0[i]!;
      }
      drift[p] = { relChange: Math.sqrt(d2 / n0), cosine: cosineSimilarity(w1, w0) };
    }
    out.push({ layer: l, drift });
  }
  return out;
}

export interface AnalysisResult {
  definitions: Record<string, string>;
  tokens: number;
  windows: number;
  layers: number;
  heads: number;
  /** Means over the windows, [layer][head]. */
  cosine: { raw: number[][]; rownorm: number[][] };
  svDistance: { raw: number[][]; rownorm: number[][] };
  weightDrift: Array<{ layer: number; drift: Record<string, { relChange: number; cosine: number }> }>;
  seconds: number;
}

export const DEFINITIONS: Record<string, string> = {
  teacher: 'P[t,j] = softmax_j(q_t.k_j/sqrt(D)) over j <= t (q, k after RoPE; GQA heads share kv head floor(h/(H/Hkv)))',
  model: 'A[t,j] = exp(-slope_h (t-j)) q~_t.k~_j / sqrt(Dk) for j <= t, 0 above the diagonal (q~, k~ after relu, qk-norm, RoPE); no denominator (normalization "sum": divided by the layer\'s denominator z_t + eps)',
  rownorm: 'each row divided by |sum of the row| (rows summing to 0 left unchanged); for the teacher this changes nothing',
  cosine: '<P, A>_F / (||P||_F ||A||_F) over the flattened T x T matrices',
  svDistance: '|| s(P)/||s(P)||_2 - s(A)/||s(A)||_2 ||_2 with s(M) the singular values of M in descending order (Householder bidiagonalization + Golub-Kahan bisection, float64); 0 = proportional spectra, max sqrt(2)',
  weightDrift: 'relChange = ||W_model - W_teacher||_F / ||W_teacher||_F; cosine = <W_model, W_teacher> / (||W_model|| ||W_teacher||), per q/k/v/o projection',
  averaging: 'metrics are computed per window of T tokens and averaged over the windows',
};

/** The whole analysis over consecutive windows of `T` tokens of `ids` (at most `windows` of them). */
export function analyzeAttention(teacher: DecoderLM, model: DecoderLM, ids: ArrayLike<number>, T: number, windows = 1): AnalysisResult {
  const t0 = performance.now();
  const n = Math.min(windows, Math.floor(ids.length / T));
  if (n < 1) throw new Error(`supra: analyze: ${ids.length} tokens do not fill one window of ${T}`);
  const sums: HeadMetrics[] = [];
  for (let w = 0; w < n; w++) {
    const win = Array.from({ length: T }, (_, i) => ids[w * T + i]!);
    sums.push(compareAttention(teacherAttention(teacher, win), supraAttention(model, win), T));
  }
  const avg = (pick: (m: HeadMetrics) => number[][]) =>
    pick(sums[0]!).map((row, l) => row.map((_, h) => sums.reduce((s, m) => s + pick(m)[l]![h]!, 0) / n));
  return {
    definitions: DEFINITIONS,
    tokens: T, windows: n,
    layers: teacher.config.num_hidden_layers, heads: teacher.config.num_attention_heads,
    cosine: { raw: avg((m) => m.cosine.raw), rownorm: avg((m) => m.cosine.rownorm) },
    svDistance: { raw: avg((m) => m.svDistance.raw), rownorm: avg((m) => m.svDistance.rownorm) },
    weightDrift: weightDrift(teacher, model),
    seconds: (performance.now() - t0) / 1000,
  };
}
