// Seeded random numbers for tests: mulberry32, so every run draws the same values.
import { allocF32 } from '../../src/core/memory.js';

/** Uniform numbers in [0, 1) from a 32-bit seed. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform numbers in [-1, 1) from a 32-bit seed by a linear congruential step (the kernel tests' values). */
export function signedRng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
}

/** n values of `next` in a fresh float32 array: in the arena (where kernels work in place) or on the JS heap. */
export function randomF32(n: number, next: () => number, arena = true): Float32Array {
  const a = arena ? allocF32(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = next();
  return a;
}
