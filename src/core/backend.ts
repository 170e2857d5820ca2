// One backend interface, two implementations: `wasm` (SIMD kernels on a worker pool, the default
// everywhere) and `native` (OpenBLAS through a Node add-on). Backends differ only in how they multiply
// matrices; every other kernel runs in the shared wasm module (see ops.ts).

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

export interface Backend {
  readonly name: BackendName;
  /** Threads the backend computes with. */
  readonly threads: number;
  sgemm(args: GemmArgs): void;
}

/** Packed leading dimensions for a GemmArgs, as BLAS would infer them. */
export function leadingDims(g: GemmArgs): { lda: number; ldb: number; ldc: number } {
  return {
    lda: g.lda ?? (g.transA ? g.m : g.k),
    ldb: g.ldb ?? (g.transB ? g.k : g.n),
    ldc: g.ldc ?? g.n,
  };
}
