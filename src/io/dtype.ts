// Half-precision conversions: IEEE binary16 (F16) and bfloat16 (BF16) <-> float32, table-free.
// Reading widens exactly (every F16/BF16 value is a float32). Writing narrows with round-to-nearest-even,
// the rounding PyTorch and numpy use, keeps inf, turns NaN into a quiet NaN of the same sign, and for F16
// produces subnormals below 2^-14 and inf at and above 65520 (the halfway point past 65504).
// The array versions work on raw bit patterns through a Uint32Array view of the float32 data, so no
// float is ever boxed and NaN payloads are not canonicalised by the engine.

import { f32BitsToBf16Bits } from '../core/weights.js';

// The BF16 array conversions live with the weight types (core/weights.ts); the readers use them from here.
export { bf16ToF32, bf16ToF32Array, f32BitsToBf16Bits, f32ToBf16Array } from '../core/weights.js';

/** Bits of one float32 <-> the float itself, through a shared 4-byte scratch. */
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

export function f32ToBits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0]!;
}

export function bitsToF32(bits: number): number {
  scratchU32[0] = bits >>> 0;
  return scratchF32[0]!;
}

// ---- F16 -> F32 ----------------------------------------------------------------------------

/** float32 bit pattern of one binary16 bit pattern (exact). */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0; // inf, NaN (payload kept)
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0; // normal: rebias 15 -> 127
  if (mant === 0) return sign >>> 0; // +-0
  // subnormal: mant * 2^-24, normalise the mantissa so its leading 1 becomes the implicit bit
  const shift = Math.clz32(mant) - 21; // leading zeros within the 10-bit field, plus one
  const e = 113 - shift; // biased float32 exponent of mant * 2^-24
  return (sign | (e << 23) | (((mant << shift) & 0x3ff) << 13)) >>> 0;
}

export function f16ToF32(h: number): number {
  return bitsToF32(f16BitsToF32Bits(h));
}

/** dst[i] = float32(src[i]) for binary16 bit patterns; dst is float32 data seen as Uint32Array. */
export function f16ToF32Array(src: Uint16Array, dst: Uint32Array): void {
  const n = src.length;
  if (dst.length < n) throw new RangeError(`supra: f16ToF32Array: destination holds ${dst.length} < ${n}`);
  for (let i = 0; i < n; i++) {
    const h = src[i]!;
    const exp = h & 0x7c00;
    if (exp !== 0 && exp !== 0x7c00) {
      // the common case: a normal number, sign moves up 16 bits, exponent+mantissa up 13 and rebias
      dst[i] = ((h & 0x8000) << 16) | (((h & 0x7fff) << 13) + 0x38000000);
    } else {
      dst[i] = f16BitsToF32Bits(h);
    }
  }
}

// ---- F32 -> BF16 (round to nearest even) ---------------------------------------------------

export function f32ToBf16(x: number): number {
  return f32BitsToBf16Bits(f32ToBits(x));
}

// ---- F32 -> F16 (round to nearest even) ----------------------------------------------------

/** binary16 bit pattern of one float32 bit pattern. */
export function f32BitsToF16Bits(x: number): number {
  x >>>= 0;
  const sign = (x >>> 16) & 0x8000;
  const abs = x & 0x7fffffff;
  if (abs >= 0x7f800000) {
    if (abs === 0x7f800000) return sign | 0x7c00; // inf
    return sign | 0x7e00 | ((abs >>> 13) & 0x3ff); // NaN: quiet bit set, top payload bits kept
  }
  if (abs >= 0x477ff000) return sign | 0x7c00; // >= 65520 rounds to inf
  if (abs >= 0x38800000) {
    // normal in F16 (>= 2^-14): rebias 127 -> 15, then round the 13 dropped bits half to even.
    // A carry out of the mantissa bumps the exponent, which is the correctly rounded result.
    const m = abs - 0x38000000;
    return sign | ((m + 0xfff + ((m >>> 13) & 1)) >>> 13);
  }
  if (abs <= 0x33000000) return sign; // <= 2^-25: rounds to zero (2^-25 itself is a tie -> even 0)
  // subnormal in F16: the value in units of 2^-24 is mant24 * 2^(e - 126), with 14..24 bits dropped
  const e = abs >>> 23;
  const mant24 = (abs & 0x7fffff) | 0x800000;
  const shift = 126 - e;
  let r = mant24 >>> shift;
  const rem = mant24 & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rem > half || (rem === half && (r & 1) === 1)) r++; // may round up to 0x400, the smallest normal
  return sign | r;
}

export function f32ToF16(x: number): number {
  return f32BitsToF16Bits(f32ToBits(x));
}

export function f32ToF16Array(src: Uint32Array, dst: Uint16Array): void {
  const n = src.length;
  if (dst.length < n) throw new RangeError(`supra: f32ToF16Array: destination holds ${dst.length} < ${n}`);
  for (let i = 0; i < n; i++) {
    const x = src[i]!;
    const abs = x & 0x7fffffff;
    if (abs >= 0x38800000 && abs < 0x477ff000) {
      const m = abs - 0x38000000;
      dst[i] = ((x >>> 16) & 0x8000) | ((m + 0xfff + ((m >>> 13) & 1)) >>> 13);
    } else {
      dst[i] = f32BitsToF16Bits(x);
    }
  }
}

// ---- non-finite values -----------------------------------------------------------------------

/**
 * How many of the float32 bit patterns are NaN or ±Inf (exponent all ones), and the index of the first
 * (−1 when none). Works on bits, so it is one tight integer pass with no boxing.
 */
export function countNonFinite(bits: Uint32Array): { count: number; first: number } {
  let count = 0;
  let first = -1;
  for (let i = 0; i < bits.length; i++) {
    if ((bits[i]! & 0x7f800000) === 0x7f800000) {
      if (count === 0) first = i;
      count++;
    }
  }
  return { count, first };
}

/** The error for a weight tensor holding NaN/Inf values. */
export function nonFiniteError(file: string, name: string, count: number, first: number): Error {
  return new Error(`supra: ${file}: tensor ${name} has ${count} NaN/Inf value${count === 1 ? '' : 's'} (first at index ${first})`);
}

/** Throw nonFiniteError when a float32 tensor holds a NaN or an infinity. */
export function checkFinite(data: Float32Array, file: string, name: string): void {
  const { count, first } = countNonFinite(new Uint32Array(data.buffer, data.byteOffset, data.length));
  if (count > 0) throw nonFiniteError(file, name, count, first);
}
