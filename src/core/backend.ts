// One backend interface, two implementations: `wasm` (SIMD kernels on a worker pool, runs everywhere)
// and `native` (OpenBLAS through a Node add-on, the default where it is built; see select.ts). Backends differ in how they multiply
// matrices; every other kernel runs in the shared wasm module (see ops.ts), except the few a backend runs
// itself with exactly the same arithmetic (BackendKernels: the same bits, faster).

export type BackendName = 'wasm' | 'native';

/**
 * C = alpha · op(A) · op(B) + beta · C, row-major, for `batch` independent products.
 * op(A) is m×k, op(B) is k×n, C is m×n. With transA, A is stored k×m (so dB = Aᵀ·dC is the same call).
 * Leading dimensions default to the packed ones; strides (in floats) step between batch entries.
 */
export interface GemmArgs {
  transA: boolean;
  transB: boolean;
  m: number;
  n: number;
  k: number;
  alpha?: number; // default 1
  beta?: number; // default 0: C is overwritten; 1 accumulates
  a: Float32Array;
  b: Float32Array;
  c: Float32Array;
  lda?: number;
  ldb?: number;
  ldc?: number;
  batch?: number; // default 1
  strideA?: number;
  strideB?: number;
  strideC?: number;
}

/**
 * y[m, n] = x[m, k] · Wᵀ (y overwritten) with W a weight stored [n, k] as bfloat16 (core/weights.ts): each
 * BF16 value widened to float32 (exact) and the products summed in float32. x and y are packed float32.
 */
export interface Bf16GemmArgs {
  m: number;
  n: number;
  k: number;
  x: Float32Array;
  w: Uint16Array;
  y: Float32Array;
}

/**
 * Elementwise kernels a backend may run itself, bit for bit what the shared wasm kernels compute (same
 * arguments as assembly/ops.ts; `grain` is the wasm runtime's chunkGrain, whose chunks fix the order of
 * the loss sum and where the scalar tails fall). ops.ts calls them when the backend has them.
 */
export interface BackendKernels {
  /** The loss summed over the rows not ignored (targets checked by the caller). */
  crossEntropy(
    logits: Float32Array, targets: Int32Array, vocab: number, dlogits: Float32Array | null, zLoss: number, inv: number,
    rows: number, grain: number,
  ): number;
  swiglu(gate: Float32Array, up: Float32Array, out: Float32Array, n: number, grain: number): void;
  swigluBackward(
    dout: Float32Array, gate: Float32Array, up: Float32Array, dgate: Float32Array, dup: Float32Array,
    act: Float32Array | null, n: number, grain: number,
  ): void;
  /**
   * The linear attention's recurrent step over U = B·H units (ops.linearAttentionStep's arguments, checked by
   * the caller). Optional: a backend may have the others without it.
   */
  linearAttentionStep?(
    q: Float32Array, k: Float32Array, v: Float32Array, o: Float32Array, state: Float32Array, H: number, T: number,
    Dk: number, Dv: number, scale: number, powers: Float64Array, powStride: number, U: number,
  ): void;
}

export interface Backend {
  readonly name: BackendName;
  /** Threads the backend computes with. */
  readonly threads: number;
  sgemm(args: GemmArgs): void;
  /** The product by a BF16 weight (Bf16GemmArgs). */
  gemmBf16(args: Bf16GemmArgs): void;
  /** The backend's own elementwise kernels, when it has them (see BackendKernels). */
  readonly kernels?: BackendKernels;
  /**
   * What besides its inputs decides the bits of a computation run on `threads` threads: equal fingerprints,
   * equal results (a cache of results keys on it). The thread count is in it only where it changes bits.
   */
  fingerprint(threads: number): Record<string, string | number>;
}

/** Packed leading dimensions for a GemmArgs, as BLAS would infer them. */
export function leadingDims(g: GemmArgs): { lda: number; ldb: number; ldc: number } {
  return {
    lda: g.lda ?? (g.transA ? g.m : g.k),
    ldb: g.ldb ?? (g.transB ? g.k : g.n),
    ldc: g.ldc ?? g.n,
  };
}
