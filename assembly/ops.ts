// The elementwise and row kernels of src/core/ops.ts on f32x4. Every kernel works on a range
// [lo, hi) of elements, rows or columns, so the thread pool can split it; ranges never overlap in
// what they write, and reductions return a float64 partial that the caller sums in a fixed order.
// Pointers are byte offsets in the shared memory.
import { exp4, exp1, hsum64, addWide, addWideProduct, log64 } from './vmath';

// @ts-ignore: decorator
@inline function at(p: usize, i: i32): usize {
  return p + (<usize>i << 2);
}

// ---------------------------------------------------------------- elementwise

export function add(a: usize, b: usize, out: usize, lo: i32, hi: i32): void {
  let i = lo;
  for (; i + 4 <= hi; i += 4) v128.store(at(out, i), f32x4.add(v128.load(at(a, i)), v128.load(at(b, i))));
  for (; i < hi; i++) store<f32>(at(out, i), load<f32>(at(a, i)) + load<f32>(at(b, i)));
}

export function axpy(alpha: f32, x: usize, y: usize, lo: i32, hi: i32): void {
  const va = f32x4.splat(alpha);
  let i = lo;
  for (; i + 4 <= hi; i += 4) v128.store(at(y, i), f32x4.add(v128.load(at(y, i)), f32x4.mul(va, v128.load(at(x, i)))));
  for (; i < hi; i++) store<f32>(at(y, i), load<f32>(at(y, i)) + alpha * load<f32>(at(x, i)));
}

export function scale(x: usize, s: f32, lo: i32, hi: i32): void {
  const vs = f32x4.splat(s);
  let i = lo;
  for (; i + 4 <= hi; i += 4) v128.store(at(x, i), f32x4.mul(v128.load(at(x, i)), vs));
  for (; i < hi; i++) store<f32>(at(x, i), load<f32>(at(x, i)) * s);
}

export function mul(a: usize, b: usize, out: usize, lo: i32, hi: i32): void {
  let i = lo;
  for (; i + 4 <= hi; i += 4) v128.store(at(out, i), f32x4.mul(v128.load(at(a, i)), v128.load(at(b, i))));
  for (; i < hi; i++) store<f32>(at(out, i), load<f32>(at(a, i)) * load<f32>(at(b, i)));
}

export function relu(x: usize, y: usize, lo: i32, hi: i32): void {
  // pmax(0, x) = 0 < x ? x : 0, which also maps NaN to 0 like the reference
  const zero = f32x4.splat(0);
  let i = lo;
  for (; i + 4 <= hi; i += 4) v128.store(at(y, i), f32x4.pmax(zero, v128.load(at(x, i))));
  for (; i < hi; i++) {
    const v = load<f32>(at(x, i));
    store<f32>(at(y, i), v > 0 ? v : 0);
  }
}

export function reluBackward(dy: usize, y: usize, dx: usize, lo: i32, hi: i32): void {
  const zero = f32x4.splat(0);
  let i = lo;
  for (; i + 4 <= hi; i += 4) v128.store(at(dx, i), v128.and(v128.load(at(dy, i)), f32x4.gt(v128.load(at(y, i)), zero)));
  for (; i < hi; i++) store<f32>(at(dx, i), load<f32>(at(y, i)) > 0 ? load<f32>(at(dy, i)) : 0);
}

// @ts-ignore: decorator
@inline function sigmoid4(g: v128): v128 {
  return f32x4.div(f32x4.splat(1), f32x4.add(f32x4.splat(1), exp4(f32x4.neg(g))));
}

export function swiglu(gate: usize, up: usize, out: usize, lo: i32, hi: i32): void {
  let i = lo;
  for (; i + 4 <= hi; i += 4) {
    const g = v128.load(at(gate, i));
    v128.store(at(out, i), f32x4.mul(f32x4.mul(g, sigmoid4(g)), v128.load(at(up, i))));
  }
  for (; i < hi; i++) {
    const g = load<f32>(at(gate, i));
    store<f32>(at(out, i), (g / (1 + exp1(-g))) * load<f32>(at(up, i)));
  }
}

/**
 * The gradients of out = silu(gate)·up. With act ≠ 0 it also writes act = silu(gate)·up, the forward
 * product, from the same sigmoid: backward recomputes it there instead of keeping it from the forward.
 */
export function swigluBackward(dout: usize, gate: usize, up: usize, dgate: usize, dup: usize, act: usize, lo: i32, hi: i32): void {
  const one = f32x4.splat(1);
  let i = lo;
  for (; i + 4 <= hi; i += 4) {
    const g = v128.load(at(gate, i));
    const d = v128.load(at(dout, i));
    const s = sigmoid4(g);
    const u = v128.load(at(up, i));
    // act as swiglu computes it, to the bit
    if (act != 0) v128.store(at(act, i), f32x4.mul(f32x4.mul(g, s), u));
    v128.store(at(dup, i), f32x4.mul(f32x4.mul(d, g), s));
    // d·up·s·(1 + g·(1 − s))
    const ds = f32x4.add(one, f32x4.mul(g, f32x4.sub(one, s)));
    v128.store(at(dgate, i), f32x4.mul(f32x4.mul(f32x4.mul(d, u), s), ds));
  }
  for (; i < hi; i++) {
    const g = load<f32>(at(gate, i));
    const d = load<f32>(at(dout, i));
    const s: f32 = 1 / (1 + exp1(-g));
    const u = load<f32>(at(up, i));
    if (act != 0) store<f32>(at(act, i), (g / (1 + exp1(-g))) * u);
    store<f32>(at(dup, i), d * g * s);
    store<f32>(at(dgate, i), d * u * s * (1 + g * (1 - s)));
  }
}

/** y[r, :] += bias for rows [lo, hi). */
export function addBias(y: usize, bias: usize, cols: i32, lo: i32, hi: i32): void {
  for (let r = lo; r < hi; r++) add(y + <usize>r * <usize>cols * 4, bias, y + <usize>r * <usize>cols * 4, 0, cols);
}

/** db[c] += Σ_r dy[r, c] for columns [lo, hi) (columns split across threads, rows summed in order). */
export function sumRows(db: usize, dy: usize, rows: i32, cols: i32, lo: i32, hi: i32): void {
  const rowBytes = <usize>cols << 2;
  let c = lo;
  for (; c + 16 <= hi; c += 16) {
    let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
    let p = at(dy, c);
    for (let r = 0; r < rows; r++) {
      s0 = f32x4.add(s0, v128.load(p));
      s1 = f32x4.add(s1, v128.load(p, 16));
      s2 = f32x4.add(s2, v128.load(p, 32));
      s3 = f32x4.add(s3, v128.load(p, 48));
      p += rowBytes;
    }
    const q = at(db, c);
    v128.store(q, f32x4.add(v128.load(q), s0));
    v128.store(q, f32x4.add(v128.load(q, 16), s1), 16);
    v128.store(q, f32x4.add(v128.load(q, 32), s2), 32);
    v128.store(q, f32x4.add(v128.load(q, 48), s3), 48);
  }
  for (; c < hi; c++) {
    let s: f32 = 0;
    let p = at(dy, c);
    for (let r = 0; r < rows; r++) {
      s += load<f32>(p);
      p += rowBytes;
    }
    store<f32>(at(db, c), load<f32>(at(db, c)) + s);
  }
}

// ---------------------------------------------------------------- norms

/** Σ x² of n floats at x, squares and sum in float64. */
function sumSquares64(x: usize, n: i32): f64 {
  let acc0 = f64x2.splat(0), acc1 = f64x2.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const v0 = v128.load(at(x, i));
    const v1 = v128.load(at(x, i + 4));
    acc0 = addWideProduct(acc0, v0, v0);
    acc1 = addWideProduct(acc1, v1, v1);
  }
  for (; i + 4 <= n; i += 4) {
    const v = v128.load(at(x, i));
    acc0 = addWideProduct(acc0, v, v);
  }
  let s = hsum64(f64x2.add(acc0, acc1));
  for (; i < n; i++) {
    const v = <f64>load<f32>(at(x, i));
    s += v * v;
  }
  return s;
}

/** Σ x of n floats, in float64. */
function sum64(x: usize, n: i32): f64 {
  let acc = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) acc = addWide(acc, v128.load(at(x, i)));
  let s = hsum64(acc);
  for (; i < n; i++) s += <f64>load<f32>(at(x, i));
  return s;
}

/** Σ a·b of n floats, products and sum in float64. */
function dot64(a: usize, b: usize, n: i32): f64 {
  let acc = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) acc = addWideProduct(acc, v128.load(at(a, i)), v128.load(at(b, i)));
  let s = hsum64(acc);
  for (; i < n; i++) s += <f64>load<f32>(at(a, i)) * <f64>load<f32>(at(b, i));
  return s;
}

/** rows [lo, hi): out = x·rstd (·w when w != 0), rstd = 1/sqrt(mean(x²) + eps). */
export function rmsnorm(x: usize, w: usize, out: usize, rstd: usize, dim: i32, eps: f32, lo: i32, hi: i32): void {
  for (let r = lo; r < hi; r++) {
    const xr = x + <usize>r * <usize>dim * 4;
    const or = out + <usize>r * <usize>dim * 4;
    const s = <f32>(1 / Math.sqrt(sumSquares64(xr, dim) / <f64>dim + <f64>eps));
    store<f32>(at(rstd, r), s);
    const vs = f32x4.splat(s);
    let i = 0;
    if (w != 0) {
      for (; i + 4 <= dim; i += 4) v128.store(at(or, i), f32x4.mul(f32x4.mul(v128.load(at(xr, i)), vs), v128.load(at(w, i))));
      for (; i < dim; i++) store<f32>(at(or, i), load<f32>(at(xr, i)) * s * load<f32>(at(w, i)));
    } else {
      for (; i + 4 <= dim; i += 4) v128.store(at(or, i), f32x4.mul(v128.load(at(xr, i)), vs));
      for (; i < dim; i++) store<f32>(at(or, i), load<f32>(at(xr, i)) * s);
    }
  }
}

/**
 * rows [lo, hi) of the rmsnorm input gradient: g = dout⊙w, dx = g·s − x·(Σ g·x)·s³/dim
 * (accumulated onto dx when accumulate).
 */
export function rmsnormBackwardDx(
  dout: usize, x: usize, w: usize, rstd: usize, dx: usize, dim: i32, accumulate: bool, lo: i32, hi: i32,
): void {
  for (let r = lo; r < hi; r++) {
    const base = <usize>r * <usize>dim * 4;
    const dr = dout + base, xr = x + base, dxr = dx + base;
    const s = load<f32>(at(rstd, r));
    let dot: f64 = 0;
    if (w != 0) {
      let acc = f64x2.splat(0);
      let i = 0;
      for (; i + 4 <= dim; i += 4) acc = addWideProduct(acc, f32x4.mul(v128.load(at(dr, i)), v128.load(at(w, i))), v128.load(at(xr, i)));
      dot = hsum64(acc);
      for (; i < dim; i++) dot += <f64>(load<f32>(at(dr, i)) * load<f32>(at(w, i))) * <f64>load<f32>(at(xr, i));
    } else {
      dot = dot64(dr, xr, dim);
    }
    const c = <f32>((dot * <f64>s * <f64>s * <f64>s) / <f64>dim);
    const vs = f32x4.splat(s), vc = f32x4.splat(c);
    let i = 0;
    for (; i + 4 <= dim; i += 4) {
      let g = v128.load(at(dr, i));
      if (w != 0) g = f32x4.mul(g, v128.load(at(w, i)));
      let v = f32x4.sub(f32x4.mul(g, vs), f32x4.mul(vc, v128.load(at(xr, i))));
      if (accumulate) v = f32x4.add(v128.load(at(dxr, i)), v);
      v128.store(at(dxr, i), v);
    }
    for (; i < dim; i++) {
      let g = load<f32>(at(dr, i));
      if (w != 0) g *= load<f32>(at(w, i));
      let v = g * s - c * load<f32>(at(xr, i));
      if (accumulate) v += load<f32>(at(dxr, i));
      store<f32>(at(dxr, i), v);
    }
  }
}

/** columns [lo, hi) of the rmsnorm gain gradient: dw[i] += Σ_r dout[r,i]·x[r,i]·rstd[r]. */
export function rmsnormBackwardDw(dout: usize, x: usize, rstd: usize, dw: usize, rows: i32, dim: i32, lo: i32, hi: i32): void {
  const rowBytes = <usize>dim << 2;
  let i = lo;
  for (; i + 8 <= hi; i += 8) {
    let s0 = f32x4.splat(0), s1 = f32x4.splat(0);
    let pd = at(dout, i), px = at(x, i);
    for (let r = 0; r < rows; r++) {
      const vs = v128.load32_splat(at(rstd, r));
      s0 = f32x4.add(s0, f32x4.mul(f32x4.mul(v128.load(pd), v128.load(px)), vs));
      s1 = f32x4.add(s1, f32x4.mul(f32x4.mul(v128.load(pd, 16), v128.load(px, 16)), vs));
      pd += rowBytes;
      px += rowBytes;
    }
    const q = at(dw, i);
    v128.store(q, f32x4.add(v128.load(q), s0));
    v128.store(q, f32x4.add(v128.load(q, 16), s1), 16);
  }
  for (; i < hi; i++) {
    let s: f32 = 0;
    let pd = at(dout, i), px = at(x, i);
    for (let r = 0; r < rows; r++) {
      s += load<f32>(pd) * load<f32>(px) * load<f32>(at(rstd, r));
      pd += rowBytes;
      px += rowBytes;
    }
    store<f32>(at(dw, i), load<f32>(at(dw, i)) + s);
  }
}

/** groups [lo, hi) (each `size` floats): out = (x − mean)·rstd, biased variance, both in float64. */
export function groupnorm(x: usize, out: usize, rstd: usize, size: i32, eps: f32, lo: i32, hi: i32): void {
  for (let g = lo; g < hi; g++) {
    const base = <usize>g * <usize>size * 4;
    const xg = x + base, og = out + base;
    const mean = sum64(xg, size) / <f64>size;
    const vm = f64x2.splat(mean);
    let acc = f64x2.splat(0);
    let i = 0;
    for (; i + 4 <= size; i += 4) {
      const v = v128.load(at(xg, i));
      const d0 = f64x2.sub(f64x2.promote_low_f32x4(v), vm);
      const d1 = f64x2.sub(f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3)), vm);
      acc = f64x2.add(acc, f64x2.add(f64x2.mul(d0, d0), f64x2.mul(d1, d1)));
    }
    let ss = hsum64(acc);
    for (; i < size; i++) {
      const d = <f64>load<f32>(at(xg, i)) - mean;
      ss += d * d;
    }
    const s = 1 / Math.sqrt(ss / <f64>size + <f64>eps);
    store<f32>(at(rstd, g), <f32>s);
    // (x − mean)·s in float64, rounded once
    i = 0;
    const vs = f64x2.splat(s);
    for (; i + 4 <= size; i += 4) {
      const v = v128.load(at(xg, i));
      const y0 = f64x2.mul(f64x2.sub(f64x2.promote_low_f32x4(v), vm), vs);
      const y1 = f64x2.mul(f64x2.sub(f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3)), vm), vs);
      v128.store(at(og, i), v128.shuffle<f32>(f32x4.demote_f64x2_zero(y0), f32x4.demote_f64x2_zero(y1), 0, 1, 4, 5));
    }
    for (; i < size; i++) store<f32>(at(og, i), <f32>((<f64>load<f32>(at(xg, i)) - mean) * s));
  }
}

/** groups [lo, hi): dx = rstd·(dout − mean(dout) − y·mean(dout·y)). */
export function groupnormBackward(dout: usize, y: usize, rstd: usize, dx: usize, size: i32, lo: i32, hi: i32): void {
  for (let g = lo; g < hi; g++) {
    const base = <usize>g * <usize>size * 4;
    const dg = dout + base, yg = y + base, xg = dx + base;
    const sd = <f32>(sum64(dg, size) / <f64>size);
    const sdy = <f32>(dot64(dg, yg, size) / <f64>size);
    const s = load<f32>(at(rstd, g));
    const vsd = f32x4.splat(sd), vsdy = f32x4.splat(sdy), vs = f32x4.splat(s);
    let i = 0;
    for (; i + 4 <= size; i += 4) {
      const v = f32x4.sub(f32x4.sub(v128.load(at(dg, i)), vsd), f32x4.mul(v128.load(at(yg, i)), vsdy));
      v128.store(at(xg, i), f32x4.mul(vs, v));
    }
    for (; i < size; i++) store<f32>(at(xg, i), s * (load<f32>(at(dg, i)) - sd - load<f32>(at(yg, i)) * sdy));
  }
}

// ---------------------------------------------------------------- rotary embeddings

/**
 * rotate_half RoPE in place for rows [lo, hi) of x viewed as [batch·tokens, heads, dim]; row r is
 * token r mod tokens at position start + r mod tokens. sign = −1 rotates back (the backward).
 */
export function rope(x: usize, cos: usize, sin: usize, tokens: i32, heads: i32, dim: i32, start: i32, sign: f32, lo: i32, hi: i32): void {
  const half = dim >> 1;
  const halfBytes = <usize>half << 2;
  const vsign = f32x4.splat(sign);
  for (let r = lo; r < hi; r++) {
    const t = r % tokens;
    const ct = cos + <usize>(start + t) * halfBytes;
    const st = sin + <usize>(start + t) * halfBytes;
    for (let h = 0; h < heads; h++) {
      const x1 = x + (<usize>r * <usize>heads + <usize>h) * <usize>dim * 4;
      const x2 = x1 + halfBytes;
      let i = 0;
      for (; i + 4 <= half; i += 4) {
        const c = v128.load(at(ct, i));
        const s = f32x4.mul(v128.load(at(st, i)), vsign);
        const a = v128.load(at(x1, i));
        const b = v128.load(at(x2, i));
        v128.store(at(x1, i), f32x4.sub(f32x4.mul(a, c), f32x4.mul(b, s)));
        v128.store(at(x2, i), f32x4.add(f32x4.mul(b, c), f32x4.mul(a, s)));
      }
      for (; i < half; i++) {
        const c = load<f32>(at(ct, i));
        const s = load<f32>(at(st, i)) * sign;
        const a = load<f32>(at(x1, i));
        const b = load<f32>(at(x2, i));
        store<f32>(at(x1, i), a * c - b * s);
        store<f32>(at(x2, i), b * c + a * s);
      }
    }
  }
}

// ---------------------------------------------------------------- softmax and losses

/** max of n floats (−inf for n = 0; NaN propagates). */
function rowMax(x: usize, n: i32): f32 {
  let vm = f32x4.splat(-Infinity);
  let i = 0;
  for (; i + 4 <= n; i += 4) vm = f32x4.max(vm, v128.load(at(x, i)));
  let m = max(max(f32x4.extract_lane(vm, 0), f32x4.extract_lane(vm, 1)), max(f32x4.extract_lane(vm, 2), f32x4.extract_lane(vm, 3)));
  for (; i < n; i++) m = max(m, load<f32>(at(x, i)));
  return m;
}

/** Σ e^(x − mx) in float64; when out != 0 the exponentials are also stored there. */
function sumExp(x: usize, n: i32, mx: f32, out: usize): f64 {
  const vm = f32x4.splat(mx);
  let acc = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const e = exp4(f32x4.sub(v128.load(at(x, i)), vm));
    if (out != 0) v128.store(at(out, i), e);
    acc = addWide(acc, e);
  }
  let s = hsum64(acc);
  for (; i < n; i++) {
    const e = exp1(load<f32>(at(x, i)) - mx);
    if (out != 0) store<f32>(at(out, i), e);
    s += <f64>e;
  }
  return s;
}

/**
 * Row softmax in place for rows [lo, hi) of `cols` scores. Causal: row r (query t = r mod tq)
 * keeps the first min(cols, t + 1 + offset) entries, the rest become 0.
 */
export function softmax(x: usize, cols: i32, causal: bool, tq: i32, offset: i32, lo: i32, hi: i32): void {
  for (let r = lo; r < hi; r++) {
    const xr = x + <usize>r * <usize>cols * 4;
    const valid = causal ? min(cols, max(0, (r % tq) + 1 + offset)) : cols;
    if (valid > 0) {
      const mx = rowMax(xr, valid);
      const inv = <f32>(1 / sumExp(xr, valid, mx, xr));
      scale(xr, inv, 0, valid);
    }
    for (let i = valid; i < cols; i++) store<f32>(at(xr, i), 0);
  }
}

/** rows [lo, hi): dx = y ⊙ (dy − Σ dy·y). */
export function softmaxBackward(dy: usize, y: usize, dx: usize, cols: i32, lo: i32, hi: i32): void {
  for (let r = lo; r < hi; r++) {
    const base = <usize>r * <usize>cols * 4;
    const dyr = dy + base, yr = y + base, dxr = dx + base;
    const dot = <f32>dot64(dyr, yr, cols);
    const vd = f32x4.splat(dot);
    let i = 0;
    for (; i + 4 <= cols; i += 4) v128.store(at(dxr, i), f32x4.mul(v128.load(at(yr, i)), f32x4.sub(v128.load(at(dyr, i)), vd)));
    for (; i < cols; i++) store<f32>(at(dxr, i), load<f32>(at(yr, i)) * (load<f32>(at(dyr, i)) - dot));
  }
}

/** rows [lo, hi): out = x − logsumexp(x). */
export function logSoftmax(x: usize, out: usize, cols: i32, lo: i32, hi: i32): void {
  for (let r = lo; r < hi; r++) {
    const base = <usize>r * <usize>cols * 4;
    const xr = x + base, or = out + base;
    const mx = rowMax(xr, cols);
    const lse = <f32>(<f64>mx + log64(sumExp(xr, cols, mx, 0)));
    const vl = f32x4.splat(lse);
    let i = 0;
    for (; i + 4 <= cols; i += 4) v128.store(at(or, i), f32x4.sub(v128.load(at(xr, i)), vl));
    for (; i < cols; i++) store<f32>(at(or, i), load<f32>(at(xr, i)) - lse);
  }
}

/**
 * rows [lo, hi) of the cross-entropy: returns Σ (lse − x[t] + zLoss·lse²) over rows whose target is
 * not −100 (targets are checked by the caller). With dlogits != 0 it writes
 * softmax(x)·(1 + 2·zLoss·lse)·inv − inv·[i = t] (zeros for ignored rows).
 */
export function crossEntropy(
  logits: usize, targets: usize, vocab: i32, dlogits: usize, zLoss: f64, inv: f64, lo: i32, hi: i32,
): f64 {
  let total: f64 = 0;
  for (let r = lo; r < hi; r++) {
    const base = <usize>r * <usize>vocab * 4;
    const xr = logits + base;
    const t = load<i32>(at(targets, r));
    if (t == -100) {
      if (dlogits != 0) memory.fill(dlogits + base, 0, <usize>vocab << 2);
      continue;
    }
    const mx = rowMax(xr, vocab);
    const dr = dlogits != 0 ? dlogits + base : 0;
    const sum = sumExp(xr, vocab, mx, dr); // exponentials go straight into dlogits
    const lse = <f64>mx + log64(sum);
    total += lse - <f64>load<f32>(at(xr, t)) + zLoss * lse * lse;
    if (dr != 0) {
      scale(dr, <f32>(((1 + 2 * zLoss * lse) * inv) / sum), 0, vocab);
      store<f32>(at(dr, t), load<f32>(at(dr, t)) - <f32>inv);
    }
  }
  return total;
}

// ---------------------------------------------------------------- embeddings

/** rows [lo, hi): out[i, :] = table[ids[i], :] (ids are checked by the caller). */
export function embedding(ids: usize, table: usize, out: usize, dim: i32, lo: i32, hi: i32): void {
  const rowBytes = <usize>dim << 2;
  for (let i = lo; i < hi; i++) {
    const id = load<i32>(at(ids, i));
    memory.copy(out + <usize>i * rowBytes, table + <usize>id * rowBytes, rowBytes);
  }
}

/** columns [lo, hi) of the scatter-add dtable[ids[i], :] += dout[i, :], rows in order. */
export function embeddingBackward(ids: usize, dout: usize, dtable: usize, n: i32, dim: i32, lo: i32, hi: i32): void {
  const rowBytes = <usize>dim << 2;
  for (let i = 0; i < n; i++) {
    const id = load<i32>(at(ids, i));
    const src = dout + <usize>i * rowBytes;
    const dst = dtable + <usize>id * rowBytes;
    let c = lo;
    for (; c + 4 <= hi; c += 4) v128.store(at(dst, c), f32x4.add(v128.load(at(dst, c)), v128.load(at(src, c))));
    for (; c < hi; c++) store<f32>(at(dst, c), load<f32>(at(dst, c)) + load<f32>(at(src, c)));
  }
}

// ---------------------------------------------------------------- reductions and optimizer

/** Σ x² over [lo, hi) in float64. */
export function sumSquares(x: usize, lo: i32, hi: i32): f64 {
  return sumSquares64(at(x, lo), hi - lo);
}

/** 1 when some value in [lo, hi) is NaN or ±inf, else 0 (x − x is 0 for finite x, NaN otherwise). */
export function anyNonFinite(x: usize, lo: i32, hi: i32): i32 {
  let acc = f32x4.splat(0);
  let i = lo;
  for (; i + 4 <= hi; i += 4) {
    const v = v128.load(at(x, i));
    acc = f32x4.add(acc, f32x4.sub(v, v));
  }
  let s = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
  for (; i < hi; i++) {
    const v = load<f32>(at(x, i));
    s += v - v;
  }
  return s == 0 ? 0 : 1;
}

/**
 * AdamW on [lo, hi) (PyTorch's order) of the gradient g·gs (gs: the clipping and averaging factor, one
 * float32 product per value, as scale() then adamw would round it): p −= lr·wd·p; m = b1·m + (1−b1)·g;
 * v = b2·v + (1−b2)·g²; p −= lr·(m/bc1)/(sqrt(v/bc2) + eps) with bc1 = 1 − b1^t, bc2 = 1 − b2^t.
 * clear ≠ 0: g is zeroed as it is read (the next step's gradients start from zero without a pass of their own).
 */
export function adamw(
  p: usize, g: usize, m: usize, v: usize,
  lr: f32, b1: f32, b2: f32, eps: f32, wd: f32, bc1: f32, bc2: f32, gs: f32, clear: i32, lo: i32, hi: i32,
): void {
  const decay: f32 = 1 - lr * wd;
  const vdecay = f32x4.splat(decay);
  const vb1 = f32x4.splat(b1), vb1c = f32x4.splat(1 - b1);
  const vb2 = f32x4.splat(b2), vb2c = f32x4.splat(1 - b2);
  const vstep = f32x4.splat(lr / bc1);
  const vbc2 = f32x4.splat(bc2), veps = f32x4.splat(eps);
  const vgs = f32x4.splat(gs), zero = f32x4.splat(0);
  let i = lo;
  for (; i + 4 <= hi; i += 4) {
    const gi = f32x4.mul(v128.load(at(g, i)), vgs);
    if (clear) v128.store(at(g, i), zero);
    const mi = f32x4.add(f32x4.mul(vb1, v128.load(at(m, i))), f32x4.mul(vb1c, gi));
    const vi = f32x4.add(f32x4.mul(vb2, v128.load(at(v, i))), f32x4.mul(vb2c, f32x4.mul(gi, gi)));
    v128.store(at(m, i), mi);
    v128.store(at(v, i), vi);
    const denom = f32x4.add(f32x4.sqrt(f32x4.div(vi, vbc2)), veps);
    const pi = f32x4.mul(v128.load(at(p, i)), vdecay);
    v128.store(at(p, i), f32x4.sub(pi, f32x4.div(f32x4.mul(vstep, mi), denom)));
  }
  for (; i < hi; i++) {
    const gi = load<f32>(at(g, i)) * gs;
    if (clear) store<f32>(at(g, i), 0);
    const mi = b1 * load<f32>(at(m, i)) + (1 - b1) * gi;
    const vi = b2 * load<f32>(at(v, i)) + (1 - b2) * (gi * gi);
    store<f32>(at(m, i), mi);
    store<f32>(at(v, i), vi);
    const pi = load<f32>(at(p, i)) * decay;
    store<f32>(at(p, i), pi - ((lr / bc1) * mi) / (Mathf.sqrt(vi / bc2) + eps));
  }
}

// ---------------------------------------------------------------- layouts and linear attention

/** Copies n floats (regions do not overlap). */
// @ts-ignore: decorator
@inline function copyRow(src: usize, dst: usize, n: i32): void {
  memory.copy(dst, src, <usize>n << 2);
}

/**
 * Head-major from token-major with repeated heads: dst[b, h, t, :] = src[b, t, ⌊h/rep⌋, :] for the
 * (b, h) pairs u = b·heads + h in [lo, hi). src is [B, T, heads/rep, D], dst [B, heads, T, D].
 */
export function toHeadMajor(src: usize, dst: usize, tokens: i32, heads: i32, rep: i32, dim: i32, lo: i32, hi: i32): void {
  const hs = heads / rep;
  const rowBytes = <usize>dim << 2;
  for (let u = lo; u < hi; u++) {
    const b = u / heads;
    const h = u - b * heads;
    let s = src + (<usize>(b * tokens) * <usize>hs + <usize>(h / rep)) * rowBytes;
    let d = dst + <usize>u * <usize>tokens * rowBytes;
    const step = <usize>hs * rowBytes;
    for (let t = 0; t < tokens; t++) {
      copyRow(s, d, dim);
      s += step;
      d += rowBytes;
    }
  }
}

/**
 * The backward of toHeadMajor (overwrites): dst[b, t, g, :] = Σ_{r < rep} src[b, g·rep + r, t, :] for
 * the (b, g) pairs u = b·(heads/rep) + g in [lo, hi), summed in order of r.
 */
export function toTokenMajor(src: usize, dst: usize, tokens: i32, heads: i32, rep: i32, dim: i32, lo: i32, hi: i32): void {
  const hs = heads / rep;
  const rowBytes = <usize>dim << 2;
  const headBytes = <usize>tokens * rowBytes;
  for (let u = lo; u < hi; u++) {
    const b = u / hs;
    const g = u - b * hs;
    const s0 = src + <usize>(b * heads + g * rep) * headBytes;
    let d = dst + (<usize>(b * tokens) * <usize>hs + <usize>g) * rowBytes;
    const step = <usize>hs * rowBytes;
    for (let t = 0; t < tokens; t++) {
      const st = s0 + <usize>t * rowBytes;
      copyRow(st, d, dim);
      for (let r = 1; r < rep; r++) add(d, st + <usize>r * headBytes, d, 0, dim);
      d += step;
    }
  }
}

/** x[u·size : (u+1)·size] ⊙= pattern for blocks u in [lo, hi) (a per-head pattern repeated over the batch). */
export function mulBlocks(x: usize, pattern: usize, size: i32, lo: i32, hi: i32): void {
  for (let u = lo; u < hi; u++) {
    const xb = x + <usize>u * <usize>size * 4;
    mul(xb, pattern, xb, 0, size);
  }
}

/** y[r, :] = x[r, :] ⊙ w for rows [lo, hi) (y may be x). */
export function mulRows(x: usize, w: usize, y: usize, cols: i32, lo: i32, hi: i32): void {
  for (let r = lo; r < hi; r++) {
    const o = <usize>r * <usize>cols * 4;
    mul(x + o, w, y + o, 0, cols);
  }
}

/** dw[c] += Σ_r dy[r, c]·x[r, c] for columns [lo, hi), rows summed in order. */
export function gainGrad(dy: usize, x: usize, dw: usize, rows: i32, cols: i32, lo: i32, hi: i32): void {
  const rowBytes = <usize>cols << 2;
  let c = lo;
  for (; c + 4 <= hi; c += 4) {
    let s = f32x4.splat(0);
    let pd = at(dy, c), px = at(x, c);
    for (let r = 0; r < rows; r++) {
      s = f32x4.add(s, f32x4.mul(v128.load(pd), v128.load(px)));
      pd += rowBytes;
      px += rowBytes;
    }
    v128.store(at(dw, c), f32x4.add(v128.load(at(dw, c)), s));
  }
  for (; c < hi; c++) {
    let s: f32 = 0;
    let pd = at(dy, c), px = at(x, c);
    for (let r = 0; r < rows; r++) {
      s += load<f32>(pd) * load<f32>(px);
      pd += rowBytes;
      px += rowBytes;
    }
    store<f32>(at(dw, c), load<f32>(at(dw, c)) + s);
  }
}

/**
 * Per-head decay of rows: dst[u, i, :] = src[u·srcStride + i·cols + :] · f_h(i) for heads u in [lo, hi),
 * rows i < rows, f_h(i) = mult·powers[h·powStride + e(i)] (powers float64; e(i) = i, or from − i when
 * from ≥ 0), h = u mod heads. dst is packed [U, rows, cols].
 */
export function scaleRowsByDecay(
  src: usize, srcStride: i32, dst: usize, heads: i32, rows: i32, cols: i32,
  powers: usize, powStride: i32, mult: f64, from: i32, lo: i32, hi: i32,
): void {
  for (let u = lo; u < hi; u++) {
    const pw = powers + <usize>((u % heads) * powStride) * 8;
    const so = src + <usize>u * <usize>srcStride * 4;
    const d0 = dst + <usize>u * <usize>rows * <usize>cols * 4;
    for (let i = 0; i < rows; i++) {
      const f = <f32>(mult * load<f64>(pw + <usize>(from >= 0 ? from - i : i) * 8));
      const o = <usize>i * <usize>cols * 4;
      scaleInto(so + o, d0 + o, f, cols);
    }
  }
}

// @ts-ignore: decorator
@inline function scaleInto(src: usize, dst: usize, f: f32, n: i32): void {
  const vf = f32x4.splat(f);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(at(dst, i), f32x4.mul(v128.load(at(src, i)), vf));
  for (; i < n; i++) store<f32>(at(dst, i), load<f32>(at(src, i)) * f);
}

/**
 * Per-head decay of every chunk's rows, in place of a scaleRowsByDecay call per chunk: for rows r in [lo, hi)
 * of [U, tokens, cols], u = r / tokens, t = r mod tokens in chunk c = t / chunk at i = t − c·chunk,
 * dst[r, :] = src[r, :] · f, f = mult·powers[(u mod heads)·powStride + e] (float64, applied as f32), with
 * e = i, or len − i when fromEnd (len = min(chunk, tokens − c·chunk), the chunk's length): the factor
 * scaleRowsByDecay gives the same row of the same chunk (from = len).
 */
export function decayChunkRows(
  src: usize, dst: usize, heads: i32, tokens: i32, cols: i32, chunk: i32, powers: usize, powStride: i32, mult: f64,
  fromEnd: i32, lo: i32, hi: i32,
): void {
  for (let r = lo; r < hi; r++) {
    const u = r / tokens, t = r % tokens;
    const c = t / chunk, i = t - c * chunk;
    const len = min(chunk, tokens - c * chunk);
    const f = <f32>(mult * load<f64>(powers + <usize>((u % heads) * powStride + (fromEnd ? len - i : i)) * 8));
    const o = <usize>r * <usize>cols * 4;
    scaleInto(src + o, dst + o, f, cols);
  }
}

/** x[u] *= powers[(u mod heads)·powStride + n] (float64, applied as f32) for blocks u of `size` floats in [lo, hi). */
export function decayBlocks(x: usize, size: i32, heads: i32, powers: usize, powStride: i32, n: i32, lo: i32, hi: i32): void {
  for (let u = lo; u < hi; u++) {
    const f = <f32>load<f64>(powers + <usize>((u % heads) * powStride + n) * 8);
    const xb = x + <usize>u * <usize>size * 4;
    scaleInto(xb, xb, f, size);
  }
}

/**
 * Recurrent linear attention for heads u in [lo, hi) over `tokens` steps, as the reference's
 * recurrent_forward: S' = S + scale·k_tᵀ v_t; o_t = q_t·S'; S ← γ·S'. q, k are [U, tokens, dk], v, o
 * [U, tokens, dv], state [U, dk, dv]; γ = powers[(u mod heads)·powStride + 1] (float64, applied as f32).
 * One pass over the state per token, 16 columns at a time.
 */
export function linearAttentionStep(
  q: usize, k: usize, v: usize, o: usize, state: usize, heads: i32, tokens: i32, dk: i32, dv: i32, scale: f32,
  powers: usize, powStride: i32, lo: i32, hi: i32,
): void {
  const dvb = <usize>dv << 2;
  const vscale = f32x4.splat(scale);
  for (let u = lo; u < hi; u++) {
    const g = <f32>load<f64>(powers + <usize>((u % heads) * powStride + 1) * 8);
    const vg = f32x4.splat(g);
    const S = state + <usize>u * <usize>dk * dvb;
    for (let t = 0; t < tokens; t++) {
      const row = <usize>u * <usize>tokens + <usize>t;
      const qt = q + row * (<usize>dk << 2);
      const kt = k + row * (<usize>dk << 2);
      const vt = v + row * dvb;
      const ot = o + row * dvb;
      let j = 0;
      for (; j + 16 <= dv; j += 16) {
        const jo = <usize>j << 2;
        const v0 = v128.load(vt + jo), v1 = v128.load(vt + jo, 16), v2 = v128.load(vt + jo, 32), v3 = v128.load(vt + jo, 48);
        let o0 = f32x4.splat(0), o1 = f32x4.splat(0), o2 = f32x4.splat(0), o3 = f32x4.splat(0);
        let sp = S + jo;
        for (let p = 0; p < dk; p++) {
          const kp = f32x4.mul(v128.load32_splat(kt + (<usize>p << 2)), vscale);
          const qp = v128.load32_splat(qt + (<usize>p << 2));
          const s0 = f32x4.add(v128.load(sp), f32x4.mul(kp, v0));
          const s1 = f32x4.add(v128.load(sp, 16), f32x4.mul(kp, v1));
          const s2 = f32x4.add(v128.load(sp, 32), f32x4.mul(kp, v2));
          const s3 = f32x4.add(v128.load(sp, 48), f32x4.mul(kp, v3));
          o0 = f32x4.add(o0, f32x4.mul(qp, s0));
          o1 = f32x4.add(o1, f32x4.mul(qp, s1));
          o2 = f32x4.add(o2, f32x4.mul(qp, s2));
          o3 = f32x4.add(o3, f32x4.mul(qp, s3));
          v128.store(sp, f32x4.mul(s0, vg));
          v128.store(sp, f32x4.mul(s1, vg), 16);
          v128.store(sp, f32x4.mul(s2, vg), 32);
          v128.store(sp, f32x4.mul(s3, vg), 48);
          sp += dvb;
        }
        v128.store(ot + jo, o0);
        v128.store(ot + jo, o1, 16);
        v128.store(ot + jo, o2, 32);
        v128.store(ot + jo, o3, 48);
      }
      for (; j < dv; j++) {
        const vj = load<f32>(vt + (<usize>j << 2));
        let acc: f32 = 0;
        let sp = S + (<usize>j << 2);
        for (let p = 0; p < dk; p++) {
          const s = load<f32>(sp) + load<f32>(kt + (<usize>p << 2)) * scale * vj;
          acc += load<f32>(qt + (<usize>p << 2)) * s;
          store<f32>(sp, s * g);
          sp += dvb;
        }
        store<f32>(ot + (<usize>j << 2), acc);
      }
    }
  }
}
