// SIMD math shared by the kernels: exp on f32x4, f64 accumulation helpers, and a float64 log.
// No tables and no static data: every thread instantiates this module on the same shared memory.

// exp(x) = 2^n · e^r with n = round(x·log2 e) and |r| <= ln2/2. ln2 is split in a part with few
// mantissa bits (n·LN2_HI is exact for |n| <= 128) and the rest, so r keeps full precision.
const LOG2E: f32 = 1.44269504088896341;
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.12194440e-4;
// Adding 1.5·2^23 rounds to the nearest integer (ties to even) and leaves that integer in the low
// mantissa bits, so bits(t) << 23 is n << 23 (the high bits shift out).
const ROUND_MAGIC: f32 = 12582912.0;
// Inputs are clamped to where 2^n stays a normal float; below EXP_LO the result is flushed to 0
// (so -inf, the mask value, gives exactly 0).
const EXP_HI: f32 = 88.0;
const EXP_LO: f32 = -87.33654;
// Minimax polynomial for (e^r − 1 − r)/r² on [−ln2/2, ln2/2] (the classic single-precision set).
const P0: f32 = 5.0000001201e-1;
const P1: f32 = 1.6666665459e-1;
const P2: f32 = 4.1665795894e-2;
const P3: f32 = 8.3334519073e-3;
const P4: f32 = 1.3981999507e-3;
const P5: f32 = 1.9875691500e-4;

/** e^x on four lanes, within ~1 ulp for x in [−87.3, 88]; NaN stays NaN. */
// @ts-ignore: decorator
@inline export function exp4(x: v128): v128 {
  // pmin/pmax are one compare-and-select each (pmin(a, b) = b < a ? b : a), one minps/maxps, where min/max
  // take ~8 instructions for their NaN and ±0 rules: the same clamp for every number, and a NaN x passes
  // through both unchanged. Measured, one core: swiglu 2.4 → 1.7 ns per element, crossEntropy 3.3 → 2.6.
  const xc = f32x4.pmax(f32x4.pmin(x, f32x4.splat(EXP_HI)), f32x4.splat(EXP_LO));
  const t = f32x4.add(f32x4.mul(xc, f32x4.splat(LOG2E)), f32x4.splat(ROUND_MAGIC));
  const n = f32x4.sub(t, f32x4.splat(ROUND_MAGIC));
  let r = f32x4.sub(xc, f32x4.mul(n, f32x4.splat(LN2_HI)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(LN2_LO)));
  let p = f32x4.add(f32x4.mul(f32x4.splat(P5), r), f32x4.splat(P4));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(P3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(P2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(P1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(P0));
  const r2 = f32x4.mul(r, r);
  const er = f32x4.add(f32x4.add(f32x4.mul(p, r2), r), f32x4.splat(1));
  const scale = i32x4.add(i32x4.shl(t, 23), i32x4.splat(127 << 23));
  const y = f32x4.mul(er, scale);
  // below the clamp the true value is under FLT_MIN: flush to zero (x < EXP_LO is false for NaN)
  return v128.andnot(y, f32x4.lt(x, f32x4.splat(EXP_LO)));
}

/** e^x for one value, through the vector path so scalar tails round exactly like the body. */
// @ts-ignore: decorator
@inline export function exp1(x: f32): f32 {
  return f32x4.extract_lane(exp4(f32x4.splat(x)), 0);
}

/** Sum of the four lanes of v, in float64. */
// @ts-ignore: decorator
@inline export function hsum64(v: v128): f64 {
  return f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1);
}

/** acc (f64x2) += the four f32 lanes of v, widened. */
// @ts-ignore: decorator
@inline export function addWide(acc: v128, v: v128): v128 {
  const lo = f64x2.promote_low_f32x4(v);
  const hi = f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3));
  return f64x2.add(acc, f64x2.add(lo, hi));
}

/** acc (f64x2) += products of the four lanes of a and b, each widened to f64 first. */
// @ts-ignore: decorator
@inline export function addWideProduct(acc: v128, a: v128, b: v128): v128 {
  const alo = f64x2.promote_low_f32x4(a);
  const ahi = f64x2.promote_low_f32x4(v128.shuffle<f32>(a, a, 2, 3, 2, 3));
  const blo = f64x2.promote_low_f32x4(b);
  const bhi = f64x2.promote_low_f32x4(v128.shuffle<f32>(b, b, 2, 3, 2, 3));
  return f64x2.add(acc, f64x2.add(f64x2.mul(alo, blo), f64x2.mul(ahi, bhi)));
}

const LN2_F64: f64 = 0.6931471805599453;
const SQRT2_F64: f64 = 1.4142135623730951;

/** Natural log in float64 for x > 0 (finite): x = m·2^e with m in [√½, √2), ln m by the atanh series. */
export function log64(x: f64): f64 {
  if (!(x > 0)) return x == 0 ? -Infinity : NaN;
  if (x == Infinity) return x;
  let bits = reinterpret<u64>(x);
  let e = <i32>((bits >> 52) & 0x7ff);
  if (e == 0) {
    // subnormal: scale up by 2^54 first
    x *= 18014398509481984.0;
    bits = reinterpret<u64>(x);
    e = <i32>((bits >> 52) & 0x7ff) - 54;
  }
  e -= 1023;
  let m = reinterpret<f64>((bits & 0x000fffffffffffff) | 0x3ff0000000000000); // [1, 2)
  if (m > SQRT2_F64) {
    m *= 0.5;
    e += 1;
  }
  const s = (m - 1) / (m + 1); // |s| <= 0.1716
  const s2 = s * s;
  // 2·atanh(s) = 2(s + s³/3 + s⁵/5 + ...); s2^11 < 1e-17, so 11 terms reach double precision
  let term = s2;
  let sum: f64 = 1;
  for (let i = 3; i <= 23; i += 2) {
    sum += term / <f64>i;
    term *= s2;
  }
  return 2 * s * sum + <f64>e * LN2_F64;
}
