// One backend interface, two implementations: `wasm` (SIMD kernels on a worker pool, runs everywhere)
// and `native` (OpenBLAS through a Node add-on, the default where it is built; see select.ts). Backends differ in how they multiply
// matrices; every other kernel runs in the shared wasm module (see ops.ts), except the few a backend runs
// itself with exactly the same arithmetic (BackendKernels: the same bits, faster).

export type BackendName = 'wasm' | 'native';

/**
 * The precision of large matrix products: 'f32' (the reference), or 'bf16': both operands rounded to BF16
 * (nearest even), the products summed in float32 — PyTorch's "medium" float32 matmul precision. Weights,
 * gradients and optimizer state stay float32 either way.
 */
export type MatmulPrecision = 'f32' | 'bf16';
export const MATMUL_PRECISIONS: readonly MatmulPrecision[] = ['f32', 'bf16'];

/**
 * The kernels of 'bf16' products (the native backend's): AMX's tile multiply where the CPU has it (Intel
 * Sapphire Rapids and later), AVX-512 BF16's vdpbf16ps (native/gemm_bf16.cc), or, on any CPU, the operands
 * rounded to BF16 into float32 copies and multiplied by OpenBLAS's sgemm (native/addon.cc
 * GemmRoundedOperands): BF16 products' numbers without their speed. The three sum in different orders, so
 * their bits differ.
 */
export type Bf16Kernel = 'amx' | 'avx512bf16' | 'rounded';

/** What each BF16 kernel is, for logs and reports. */
export const BF16_KERNEL_DESCRIPTIONS: Record<Bf16Kernel, string> = {
  amx: "AMX's tiles",
  avx512bf16: 'vdpbf16ps',
  rounded: 'operands rounded to BF16 and multiplied in float32: the numbers of BF16 products, not their speed',
};

/**
 * C = alpha · op(A) · op(B) + beta · C, row-major, for `batch` independent products.
 * op(A) is m×k, op(B) is k×n, C is m×n. With transA, A is stored k×m (so dB = Aᵀ·dC is the same call).
 * Leading dimensions default to the packed ones; strides (in floats) step between batch entries.
 */
/** GemmArgs.decayC: a decay of each entry's C block by its head's power before the product. */
export interface MatmulDecay {
  powers: Float64Array;
  powStride: number;
  heads: number;
  exponent: number;
  from?: Float32Array;
}

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
  /**
   * Before the product (beta 1): each batch entry's C block, m·n values (ldc = n, strideC = m·n), becomes its
   * head's decay f times itself, or times the same block of `from` (C's old values then unread), f =
   * float32(powers[(entry mod heads)·powStride + exponent]): what ops.decayBlocks (or ops.scaleRowsByDecay from
   * `from`) gives before the product.
   */
  decayC?: MatmulDecay;
  /** After the product (beta 0): each entry's C block ⊙= block (entry mod period) of pattern: ops.mulBlocks after it. */
  maskC?: { pattern: Float32Array; period: number };
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
 * y[m, n] = x[m, k] · Wᵀ (y overwritten) with W an int8 weight stored [n, k] (core/weights.ts): each row of
 * W in blocks of INT8_BLOCK values along k (the last one of a row shorter when k is not a multiple), block
 * b of row j holding w[j, p] = scales[j · ceil(k / INT8_BLOCK) + b] · q[j, p]. Each block's products are
 * summed in float32 (the int8 values widened to float32, exact), scaled by the block's scale, and the
 * blocks summed in float32. x and y are packed float32.
 */
export interface Int8GemmArgs {
  m: number;
  n: number;
  k: number;
  x: Float32Array;
  w: Int8Array;
  /** bfloat16 bits, one a block. */
  scales: Uint16Array;
  y: Float32Array;
}

/** Values per scale of an int8 weight, along its rows (the kernels of both backends are built for it). */
export const INT8_BLOCK = 32;

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
  /**
   * A SUPRA layer's decoding step from its raw features to GroupNorm's output in one call
   * (ops.fusedRecurrentStep's arguments in order, kRep and vRep null when H = Hkv). Optional.
   */
  fusedRecurrentStep?(
    q: Float32Array, k: Float32Array, v: Float32Array, kRep: Float32Array | null, vRep: Float32Array | null, o: Float32Array,
    out: Float32Array, rstd: Float32Array, state: Float32Array, cos: Float32Array, sin: Float32Array, powers: Float64Array,
    B: number, H: number, Hkv: number, Dk: number, Dv: number, start: number, scale: number, powStride: number, eps: number,
  ): void;
  /**
   * The range kernels of assembly/ops.ts (RangeKernelName) the backend runs itself, and their call: the wasm
   * kernel's arrays in order (null where it takes 0), then its numbers, over units [0, total) in chunks of
   * `grain`. Optional: a backend may have the others without them.
   */
  rangeKernels?: ReadonlySet<string>;
  range?(kernel: RangeKernelName, spans: (Float32Array | Float64Array | null)[], scalars: number[], total: number, grain: number): void;
}

/** The wasm range kernels a backend may run itself (BackendKernels.range): a training step's row, layout and decay kernels. */
export type RangeKernelName =
  | 'add' | 'addBias' | 'mulBlocks' | 'sumRows' | 'relu' | 'reluBackward' | 'rmsnorm' | 'rmsnormBackwardDx' | 'rmsnormBackwardDw'
  | 'groupnorm' | 'groupnormBackward' | 'rope' | 'toHeadMajor' | 'toTokenMajor' | 'scaleRowsByDecay' | 'decayChunkRows'
  | 'decayBlocks';

/**
 * The optimizer's kernels for arrays outside the arena (parameters, gradients and moments a backend with
 * heapWeights keeps there for training): bit for bit the shared wasm kernels of the same names (their
 * arguments; `grain` is chunkGrain's, which fixes sumSquares' order of sums). The wasm kernels would copy a
 * weight-sized array into the arena and back for every call.
 */
export interface HeapKernels {
  adamw(
    p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, lr: number, b1: number, b2: number, eps: number,
    wd: number, bc1: number, bc2: number, gradScale: number, clearGrad: boolean, n: number, grain: number,
  ): void;
  sumSquares(x: Float32Array, n: number, grain: number): number;
  scale(x: Float32Array, s: number, n: number, grain: number): void;
  /** ids checked by the caller. */
  embeddingBackward(ids: Int32Array, dout: Float32Array, dtable: Float32Array, n: number, dim: number, grain: number): void;
}

/**
 * The arguments of Backend.decodeMlpBlock: a decoder layer's residual MLP block for a decoding step of `rows`
 * (≤ 4) tokens. hOut = hIn + branch; normed = rmsnorm(hOut)·normWeight (rstd per row); gate, up = normed·Wᵀ of
 * gateW and upW; act = swiglu(gate, up); branch = act·downWᵀ; hOut += branch. hOut may be hIn; the weights
 * are BF16 or int8 as gemmShared takes them (the `n`, `y` of each part name the output width and array). Then,
 * with `next`, the norm that reads hOut next.
 */
export interface MlpBlockStep {
  hIn: Float32Array;
  branch: Float32Array;
  hOut: Float32Array;
  normWeight: Float32Array;
  normed: Float32Array;
  rstd: Float32Array;
  gate: SharedInputPart;
  up: SharedInputPart;
  down: SharedInputPart;
  act: Float32Array;
  rows: number;
  hidden: number;
  ffn: number;
  eps: number;
  /** The norm that reads hOut next, applied after it (rows of `out` = rmsnorm(hOut)·weight, `rstd` per row), or null. */
  next: { weight: Float32Array; out: Float32Array; rstd: Float32Array; eps: number } | null;
}

/** A projection of Backend.fusedRecurrentLayerStep: its weight as gemmShared takes it (y its output) and its bias or null. */
export interface LayerStepProjection {
  part: SharedInputPart;
  bias: Float32Array | null;
}

/**
 * The arguments of Backend.fusedRecurrentLayerStep: a SUPRA layer's decoding step (feature maps folded into q_proj
 * and k_proj) from its normed input x [B, hidden] to o_proj's output y [B, hidden]. q, k, v (the step's arrays,
 * the projections' outputs) = x·Wᵀ + b; then fusedRecurrentStep (`step`: its arguments after q, k, v, in order);
 * then y = out·W_oᵀ + b_o.
 */
export interface RecurrentLayerStep {
  x: Float32Array;
  hidden: number;
  q: LayerStepProjection;
  k: LayerStepProjection;
  v: LayerStepProjection;
  o: LayerStepProjection;
  step: Parameters<NonNullable<BackendKernels['fusedRecurrentStep']>>;
}

/** One part of Backend.gemmShared: y[m, n] = x·Wᵀ, W stored [n, k] as BF16 bits (scales null) or int8 with its scales. */
export interface SharedInputPart {
  w: Uint16Array | Int8Array;
  scales: Uint16Array | null;
  n: number;
  y: Float32Array;
}

export interface Backend {
  readonly name: BackendName;
  /** Threads the backend computes with. */
  readonly threads: number;
  sgemm(args: GemmArgs): void;
  /** The product by a BF16 weight (Bf16GemmArgs). */
  gemmBf16(args: Bf16GemmArgs): void;
  /** The product by an int8 weight (Int8GemmArgs). */
  gemmInt8(args: Int8GemmArgs): void;
  /**
   * Decoding products (m ≤ 4 rows) that read one input x[m, k], made in one call: the native add-on streams
   * every part's weight in one shared work (a layer's q/k/v, an MLP's gate and up), without coming back to
   * JS between them. Each y is what gemmBf16/gemmInt8 would give, bit for bit. Returns false, having done
   * nothing, where it has no such path (the caller then makes the products one by one).
   */
  gemmShared?(m: number, k: number, x: Float32Array, parts: readonly SharedInputPart[]): boolean;
  /**
   * A decoder layer's residual MLP block for a decoding step in one call (MlpBlockStep): the native add-on runs
   * the separate calls' kernels in their order, with no return to JS between them, so the bits are theirs.
   * Returns false, having done nothing, where it has no such path (the caller then makes the separate calls).
   */
  decodeMlpBlock?(args: MlpBlockStep): boolean;
  /**
   * A SUPRA layer's decoding step from its normed input to o_proj's output in one call (RecurrentLayerStep), the
   * separate calls' kernels in their order, so their bits. Returns false, having done nothing, where it has no
   * such path.
   */
  fusedRecurrentLayerStep?(args: RecurrentLayerStep): boolean;
  /**
   * A batched product with its decayC and maskC applied entry by entry where the entry is computed (the same
   * bits as the separate passes ops.matmul makes around sgemm otherwise). Returns false, having done nothing,
   * where it has no such path for these shapes. The native add-on's batched small products run half their
   * entries on the other core: a separate pass on this thread afterwards moved half the blocks between the
   * cores' caches (ops.decayBlocks after the state's product: 6.5-7 µs against 1.8-2.9 alone, 9 heads of 64×64).
   */
  sgemmFused?(args: GemmArgs): boolean;
  /**
   * Its weight products (sgemm, gemmBf16, gemmInt8) read weights in ordinary memory in place, so models keep their
   * matrices outside the 4 GiB arena (core/weights.ts WeightPlace 'heap'): native. The wasm kernels would
   * copy such a weight into the arena for every product, so the wasm backend keeps them in the arena.
   */
  readonly heapWeights: boolean;
  /** Bytes of ordinary memory the machine can still give (heapWeights backends; MemAvailable on Linux). */
  heapBytesAvailable?(): number;
  /**
   * Asks the OS to map a large buffer outside the arena, not yet touched, in huge pages (Linux: 2 MiB, as
   * it is first touched); returns the bytes it asked for (0: not done). Only speed changes (core/weights.ts).
   */
  adviseHugePages?(view: Float32Array | Uint16Array | Int8Array): number;
  /**
   * Values [from, from + src.length) of an int8 weight (q, its scales, rows of `cols` values) quantized from
   * src, whole blocks only: core/weights.ts's int8 rule, bit for bit, faster (loading an int8 model is mostly
   * this). Returns the index in src of its first NaN or infinite value (the blocks before it written), or -1.
   */
  quantizeInt8?(src: Float32Array, from: number, cols: number, q: Int8Array, scales: Uint16Array): number;
  /**
   * Sets the precision of its later large products (decoding-size ones stay float32); returns whether that
   * precision is now in effect ('f32' always is). Absent: float32 only. Native has 'bf16' (see Bf16Kernel).
   */
  setMatmulPrecision?(precision: MatmulPrecision): boolean;
  /** Its optimizer kernels for arrays outside the arena (a heapWeights backend that trains there). */
  readonly heapKernels?: HeapKernels;
  /** The backend's own elementwise kernels, when it has them (see BackendKernels). */
  readonly kernels?: BackendKernels;
  /**
   * What besides its inputs decides the bits of a computation run on `threads` threads, with its large
   * products at `precision` (default 'f32'): equal fingerprints, equal results (a cache of results keys on
   * it). The thread count is in it only where it changes bits; the BF16 kernel only at 'bf16'.
   */
  fingerprint(threads: number, precision?: MatmulPrecision): Record<string, string | number>;
}

/** Packed leading dimensions for a GemmArgs, as BLAS would infer them. */
export function leadingDims(g: GemmArgs): { lda: number; ldb: number; ldc: number } {
  return {
    lda: g.lda ?? (g.transA ? g.m : g.k),
    ldb: g.ldb ?? (g.transB ? g.k : g.n),
    ldc: g.ldc ?? g.n,
  };
}
