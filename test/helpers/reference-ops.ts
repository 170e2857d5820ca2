// The plain-JS reference kernels: the bodies src/core/ops.ts had before the wasm module replaced them,
// kept to test the SIMD kernels against. Float64 accumulation where the original had it; no SIMD, no
// threads. (ropeTables is not here: ops.ts still computes the tables in JS.)
import { leadingDims, type GemmArgs } from '../../src/core/backend.js';

/** The reference runs on float32 (to compare with the kernels) or float64 (for gradient checks). */
export type Arr = Float32Array | Float64Array;

/** C = alpha·op(A)·op(B) + beta·C in float64 per output row, then rounded (the old TEMPORARY sgemm). */
export function sgemmRef(g: GemmArgs): void {
  const { lda, ldb, ldc } = leadingDims(g);
  const alpha = g.alpha ?? 1;
  const beta = g.beta ?? 0;
  const batch = g.batch ?? 1;
  const row = new Float64Array(g.n);
  for (let bi = 0; bi < batch; bi++) {
    const oa = bi * (g.strideA ?? 0);
    const ob = bi * (g.strideB ?? 0);
    const oc = bi * (g.strideC ?? 0);
    for (let i = 0; i < g.m; i++) {
      row.fill(0);
      for (let p = 0; p < g.k; p++) {
        const av = g.transA ? g.a[oa + p * lda + i]! : g.a[oa + i * lda + p]!;
        if (av === 0) continue;
        if (g.transB) for (let j = 0; j < g.n; j++) row[j]! += av * g.b[ob + j * ldb + p]!;
        else for (let j = 0; j < g.n; j++) row[j]! += av * g.b[ob + p * ldb + j]!;
      }
      const c = g.c;
      for (let j = 0; j < g.n; j++) {
        const idx = oc + i * ldc + j;
        c[idx] = beta === 0 ? alpha * row[j]! : alpha * row[j]! + beta * c[idx]!;
      }
    }
  }
}

// ---------------------------------------------------------------- matmul

/** C = alpha·op(A)·op(B) + beta·C (row-major, optionally batched). See GemmArgs. */
export function matmul(args: GemmArgs): void {
  sgemmRef(args);
}

/**
 * y[rows, out] = x[rows, in] · Wᵀ (+ b), W stored [out, in] as in PyTorch/HF.
 * Backward: dx = dy·W (overwrite, or accumulate with accumulateDx), dW += dyᵀ·x, db += Σ_rows dy.
 */
export function linear(
  x: Arr, w: Arr, b: Arr | null, y: Arr,
  rows: number, inF: number, outF: number,
): void {
  matmul({ transA: false, transB: true, m: rows, n: outF, k: inF, a: x as Float32Array, b: w as Float32Array, c: y as Float32Array });
  if (b) addBias(y, b, rows, outF);
}

export function linearBackward(
  dy: Arr, x: Arr, w: Arr,
  dx: Arr | null, dw: Arr, db: Arr | null,
  rows: number, inF: number, outF: number, accumulateDx = false,
): void {
  if (dx) matmul({ transA: false, transB: false, m: rows, n: inF, k: outF, a: dy as Float32Array, b: w as Float32Array, c: dx as Float32Array, beta: accumulateDx ? 1 : 0 });
  matmul({ transA: true, transB: false, m: outF, n: inF, k: rows, a: dy as Float32Array, b: x as Float32Array, c: dw as Float32Array, beta: 1 });
  if (db) sumRowsInto(db, dy, rows, outF);
}

// ---------------------------------------------------------------- elementwise

/** out = a + b */
export function add(a: Arr, b: Arr, out: Arr, n = out.length): void {
  for (let i = 0; i < n; i++) out[i] = a[i]! + b[i]!;
}

/** y += alpha·x */
export function axpy(alpha: number, x: Arr, y: Arr, n = y.length): void {
  for (let i = 0; i < n; i++) y[i]! += alpha * x[i]!;
}

/** x *= s, in place */
export function scale(x: Arr, s: number, n = x.length): void {
  for (let i = 0; i < n; i++) x[i]! *= s;
}

/** out = a ⊙ b */
export function mul(a: Arr, b: Arr, out: Arr, n = out.length): void {
  for (let i = 0; i < n; i++) out[i] = a[i]! * b[i]!;
}

/** y[r, :] += bias */
export function addBias(y: Arr, bias: Arr, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let c = 0; c < cols; c++) y[o + c]! += bias[c]!;
  }
}

/** db += Σ_r dy[r, :] */
export function sumRowsInto(db: Arr, dy: Arr, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let c = 0; c < cols; c++) db[c]! += dy[o + c]!;
  }
}

/** y = max(x, 0) (y may be x) */
export function relu(x: Arr, y: Arr, n = y.length): void {
  for (let i = 0; i < n; i++) y[i] = x[i]! > 0 ? x[i]! : 0;
}

/** dx = dy ⊙ [y > 0] (dx may be dy) */
export function reluBackward(dy: Arr, y: Arr, dx: Arr, n = dx.length): void {
  for (let i = 0; i < n; i++) dx[i] = y[i]! > 0 ? dy[i]! : 0;
}

/** out = silu(gate) ⊙ up, silu(g) = g·σ(g) */
export function swiglu(gate: Arr, up: Arr, out: Arr, n = out.length): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i]!;
    out[i] = (g / (1 + Math.exp(-g))) * up[i]!;
  }
}

/** dgate, dup (overwritten) from dout */
export function swigluBackward(
  dout: Arr, gate: Arr, up: Arr,
  dgate: Arr, dup: Arr, n = dout.length,
): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i]!;
    const s = 1 / (1 + Math.exp(-g));
    const d = dout[i]!;
    dup[i] = d * g * s;
    dgate[i] = d * up[i]! * s * (1 + g * (1 - s));
  }
}

// ---------------------------------------------------------------- norms

/** out = x / rms(x) ⊙ w per row; rstd[r] = 1/sqrt(mean(x²)+eps) is kept for the backward. */
export function rmsnorm(
  x: Arr, w: Arr | null, out: Arr, rstd: Arr,
  rows: number, dim: number, eps: number,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[o + i]! * x[o + i]!;
    const s = 1 / Math.sqrt(ss / dim + eps);
    rstd[r] = s;
    if (w) for (let i = 0; i < dim; i++) out[o + i] = x[o + i]! * s * w[i]!;
    else for (let i = 0; i < dim; i++) out[o + i] = x[o + i]! * s;
  }
}

/** dx (overwritten, or accumulated with accumulateDx) and dw (accumulated) of rmsnorm. */
export function rmsnormBackward(
  dout: Arr, x: Arr, w: Arr | null, rstd: Arr,
  dx: Arr, dw: Arr | null, rows: number, dim: number, accumulateDx = false,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    const s = rstd[r]!;
    let dot = 0; // Σ dout·w·x
    for (let i = 0; i < dim; i++) {
      const gw = w ? dout[o + i]! * w[i]! : dout[o + i]!;
      dot += gw * x[o + i]!;
      if (dw) dw[i]! += dout[o + i]! * x[o + i]! * s;
    }
    const c = (dot * s * s * s) / dim;
    for (let i = 0; i < dim; i++) {
      const gw = w ? dout[o + i]! * w[i]! : dout[o + i]!;
      const v = gw * s - c * x[o + i]!;
      dx[o + i] = accumulateDx ? dx[o + i]! + v : v;
    }
  }
}

/**
 * Per-group standardization (GroupNorm without affine): each row of `groups·size` values is split in
 * groups, each set to (x − mean)/sqrt(var + eps) with the biased variance. rstd[r·groups + g] is kept.
 */
export function groupnorm(
  x: Arr, out: Arr, rstd: Arr,
  rows: number, groups: number, size: number, eps: number,
): void {
  for (let r = 0; r < rows * groups; r++) {
    const o = r * size;
    let mean = 0;
    for (let i = 0; i < size; i++) mean += x[o + i]!;
    mean /= size;
    let v = 0;
    for (let i = 0; i < size; i++) v += (x[o + i]! - mean) ** 2;
    const s = 1 / Math.sqrt(v / size + eps);
    rstd[r] = s;
    for (let i = 0; i < size; i++) out[o + i] = (x[o + i]! - mean) * s;
  }
}

/** dx (overwritten) of groupnorm, from its output y and rstd. */
export function groupnormBackward(
  dout: Arr, y: Arr, rstd: Arr, dx: Arr,
  rows: number, groups: number, size: number,
): void {
  for (let r = 0; r < rows * groups; r++) {
    const o = r * size;
    let sd = 0;
    let sdy = 0;
    for (let i = 0; i < size; i++) {
      sd += dout[o + i]!;
      sdy += dout[o + i]! * y[o + i]!;
    }
    sd /= size;
    sdy /= size;
    const s = rstd[r]!;
    for (let i = 0; i < size; i++) dx[o + i] = s * (dout[o + i]! - sd - y[o + i]! * sdy);
  }
}

// ---------------------------------------------------------------- rotary embeddings

/**
 * rotate_half RoPE in place on x laid out [batch, tokens, heads, dim]; token t has position start + t.
 * out_i = x_i·cos − x_{i+half}·sin, out_{i+half} = x_{i+half}·cos + x_i·sin.
 * The backward is the same rotation by −angle: pass inverse = true.
 */
export function rope(
  x: Arr, cos: Arr, sin: Arr,
  batch: number, tokens: number, heads: number, dim: number, start: number, inverse = false,
): void {
  const half = dim / 2;
  const sgn = inverse ? -1 : 1;
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < tokens; t++) {
      const tab = (start + t) * half;
      for (let h = 0; h < heads; h++) {
        const o = ((b * tokens + t) * heads + h) * dim;
        for (let i = 0; i < half; i++) {
          const c = cos[tab + i]!;
          const s = sgn * sin[tab + i]!;
          const x1 = x[o + i]!;
          const x2 = x[o + i + half]!;
          x[o + i] = x1 * c - x2 * s;
          x[o + i + half] = x2 * c + x1 * s;
        }
      }
    }
  }
}

// ---------------------------------------------------------------- softmax and losses

/**
 * Row softmax of `rows` rows of `cols` scores in place, causal: in row r (query t = r mod tq) only the
 * first min(cols, t + 1 + offset) entries count, the rest become 0. offset = cols − tq for a query block
 * at the end of the keys (KV cache); pass causal = false for a plain softmax.
 */
export function softmax(
  x: Arr, rows: number, cols: number, causal = false, tq = rows, offset = 0,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const valid = causal ? Math.min(cols, (r % tq) + 1 + offset) : cols;
    let mx = -Infinity;
    for (let i = 0; i < valid; i++) if (x[o + i]! > mx) mx = x[o + i]!;
    let sum = 0;
    for (let i = 0; i < valid; i++) {
      const e = Math.exp(x[o + i]! - mx);
      x[o + i] = e;
      sum += e;
    }
    const inv = 1 / sum;
    for (let i = 0; i < valid; i++) x[o + i]! *= inv;
    for (let i = valid; i < cols; i++) x[o + i] = 0;
  }
}

/** dx = y ⊙ (dy − Σ dy·y) per row (dx may be dy). */
export function softmaxBackward(dy: Arr, y: Arr, dx: Arr, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let dot = 0;
    for (let i = 0; i < cols; i++) dot += dy[o + i]! * y[o + i]!;
    for (let i = 0; i < cols; i++) dx[o + i] = y[o + i]! * (dy[o + i]! - dot);
  }
}

/** out = log_softmax(x) per row. */
export function logSoftmax(x: Arr, out: Arr, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let mx = -Infinity;
    for (let i = 0; i < cols; i++) if (x[o + i]! > mx) mx = x[o + i]!;
    let sum = 0;
    for (let i = 0; i < cols; i++) sum += Math.exp(x[o + i]! - mx);
    const lse = mx + Math.log(sum);
    for (let i = 0; i < cols; i++) out[o + i] = x[o + i]! - lse;
  }
}

/**
 * Mean cross-entropy of logits [rows, vocab] against targets (−100 = ignored), plus
 * zLoss · mean(logsumexp²) when zLoss > 0. When dlogits is given it receives d(loss)/d(logits)
 * (overwritten), scaled by 1/count so it is the gradient of the mean. Returns the loss and the count.
 */
export function crossEntropy(
  logits: Arr, targets: Int32Array, rows: number, vocab: number,
  dlogits: Arr | null = null, zLoss = 0,
): { loss: number; count: number } {
  let count = 0;
  for (let r = 0; r < rows; r++) if (targets[r] !== -100) count++;
  let total = 0;
  const inv = count > 0 ? 1 / count : 0;
  for (let r = 0; r < rows; r++) {
    const o = r * vocab;
    const t = targets[r]!;
    if (t === -100) {
      if (dlogits) dlogits.fill(0, o, o + vocab);
      continue;
    }
    if (t < 0 || t >= vocab) throw new RangeError(`supra: target ${t} outside vocab ${vocab}`);
    let mx = -Infinity;
    for (let i = 0; i < vocab; i++) if (logits[o + i]! > mx) mx = logits[o + i]!;
    let sum = 0;
    for (let i = 0; i < vocab; i++) sum += Math.exp(logits[o + i]! - mx);
    const lse = mx + Math.log(sum);
    total += lse - logits[o + t]! + zLoss * lse * lse;
    if (dlogits) {
      const zg = 1 + 2 * zLoss * lse;
      for (let i = 0; i < vocab; i++) dlogits[o + i] = Math.exp(logits[o + i]! - lse) * zg * inv;
      dlogits[o + t]! -= inv;
    }
  }
  return { loss: total * inv, count };
}

// ---------------------------------------------------------------- embeddings

/** out[i, :] = table[ids[i], :] */
export function embedding(ids: Int32Array, table: Arr, out: Arr, n: number, dim: number): void {
  for (let i = 0; i < n; i++) {
    const id = ids[i]!;
    out.set(table.subarray(id * dim, id * dim + dim), i * dim);
  }
}

/** dtable[ids[i], :] += dout[i, :] (scatter-add, accumulates). */
export function embeddingBackward(ids: Int32Array, dout: Arr, dtable: Arr, n: number, dim: number): void {
  for (let i = 0; i < n; i++) {
    const o = ids[i]! * dim;
    for (let j = 0; j < dim; j++) dtable[o + j]! += dout[i * dim + j]!;
  }
}

// ---------------------------------------------------------------- reductions and optimizer

/** Σ x² */
export function sumSquares(x: Arr, n = x.length): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += x[i]! * x[i]!;
  return s;
}

/** True when every value is finite. */
export function allFinite(x: Arr, n = x.length): boolean {
  for (let i = 0; i < n; i++) if (!Number.isFinite(x[i]!)) return false;
  return true;
}

/**
 * One AdamW step (PyTorch's): p −= lr·wd·p; m = b1·m + (1−b1)·g; v = b2·v + (1−b2)·g²;
 * p −= lr · (m / (1 − b1^t)) / (sqrt(v / (1 − b2^t)) + eps). `step` is t, counted from 1.
 */
export function adamw(
  p: Arr, g: Arr, m: Arr, v: Arr,
  lr: number, b1: number, b2: number, eps: number, wd: number, step: number, n = p.length,
): void {
  const bc1 = 1 - Math.pow(b1, step);
  const bc2 = 1 - Math.pow(b2, step);
  for (let i = 0; i < n; i++) {
    let pi = p[i]! * (1 - lr * wd);
    const gi = g[i]!;
    const mi = b1 * m[i]! + (1 - b1) * gi;
    const vi = b2 * v[i]! + (1 - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    pi -= (lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + eps);
    p[i] = pi;
  }
}
