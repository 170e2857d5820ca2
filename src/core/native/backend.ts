// The native backend: sgemm through OpenBLAS, in a Node add-on (native/addon.cc) that scripts/build-native.mjs
// compiles at `npm install` when OpenBLAS is present. When the add-on is missing or fails to load,
// createNativeBackend says why and select.ts falls back to wasm.
//
// Environment, read once when the add-on loads:
//   SUPRA_THREADS=n                OpenBLAS threads (openblas_set_num_threads); default: OpenBLAS's own
//                                  choice (OPENBLAS_NUM_THREADS, else one per core)
//   SUPRA_OPENBLAS_CORETYPE=name   kernels to use (Haswell, SkylakeX, Zen, ...) or `auto` for OpenBLAS's CPU
//                                  detection, overriding an OPENBLAS_CORETYPE preset; unset, without a preset,
//                                  the set the CPU's flags call for (see applyCoretypeChoice, docs/native-backend.md)
//   SUPRA_NATIVE_ADDON=path        load the add-on from this file instead of native/build/Release/
//   OPENBLAS_THREAD_TIMEOUT=n      how long (2^n cycles) an idle OpenBLAS thread spins before it sleeps;
//                                  set to 4 here unless given (see applyThreadTimeout)
import { isNode, nodeBuiltin } from '../host.js';
import type { Backend, BackendKernels, Bf16GemmArgs, Bf16Kernel, GemmArgs, HeapKernels, Int8GemmArgs, MatmulPrecision, MlpBlockStep, RecurrentLayerStep, SharedInputPart } from '../backend.js';
export type { Bf16Kernel } from '../backend.js';
import { inArena } from '../memory.js';
import { GEMV_PARALLEL_FLOPS, gemmBf16Wasm, gemmInt8Wasm, sgemmWasm } from '../wasm/backend.js';

function isArenaF32(x: unknown): x is Float32Array {
  return x instanceof Float32Array && inArena(x);
}

/** What the add-on exports (see native/addon.cc). */
interface Addon {
  sgemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    alpha: number,
    beta: number,
    a: Float32Array,
    lda: number,
    strideA: number,
    b: Float32Array,
    ldb: number,
    strideB: number,
    c: Float32Array,
    ldc: number,
    strideC: number,
    batch: number,
  ): void;
  /** Absent from an add-on built before it: the batched products' decay and mask are then separate passes. */
  sgemmFused?(
    transA: boolean, transB: boolean, m: number, n: number, k: number, alpha: number, beta: number,
    a: Float32Array, lda: number, strideA: number, b: Float32Array, ldb: number, strideB: number,
    c: Float32Array, ldc: number, strideC: number, batch: number,
    powers: Float64Array | null, powStride: number, heads: number, exponent: number, from: Float32Array | null,
    pattern: Float32Array | null, period: number,
  ): boolean;
  gemmBf16(m: number, n: number, k: number, x: Float32Array, w: Uint16Array, y: Float32Array): void;
  gemmInt8(m: number, n: number, k: number, x: Float32Array, w: Int8Array, scales: Uint16Array, y: Float32Array): void;
  /** Each part [w, scales, n, y] (native/addon.cc GemmShared); older builds lack it. */
  gemmShared?(m: number, k: number, x: Float32Array, parts: [Uint16Array | Int8Array, Uint16Array | null, number, Float32Array][]): void;
  /** native/addon.cc DecodeMlpBlock's arguments in order; older builds lack it. */
  decodeMlpBlock?(
    hIn: Float32Array, branch: Float32Array, hOut: Float32Array, normW: Float32Array, n2: Float32Array, rstd: Float32Array,
    g: Float32Array, u: Float32Array, a: Float32Array, gateW: Uint16Array | Int8Array, gateScales: Uint16Array | null,
    upW: Uint16Array | Int8Array, upScales: Uint16Array | null, downW: Uint16Array | Int8Array, downScales: Uint16Array | null,
    rows: number, hidden: number, ffn: number, eps: number, nextW: Float32Array | null, nextOut: Float32Array | null,
    nextRstd: Float32Array | null, nextEps: number,
  ): void;
  /** native/addon.cc FusedRecurrentLayerStep's arguments: fusedRecurrentStep's, then x, hidden, [w, scales, bias] of q, k, v, o, and y; older builds lack it. */
  fusedRecurrentLayerStep?(...args: unknown[]): void;
  info(): {
    corename: string; config: string; threads: number; procs: number; parallel: number; decodeKernel: DecodeKernel;
    smallKernel: SmallKernel; elementwiseKernels: ElementwiseKernel; bf16Products?: Bf16Kernel | 'off' | 'none'; bf16Kernels?: Bf16Kernel[];
    cpuTuning?: CpuTuning;
  };
  setThreads(n: number): number;
  useSmallKernel(on: boolean, kernel?: VectorKernel): boolean;
  useElementwiseKernels(on: boolean, kernel?: VectorKernel): boolean;
  /** Absent from an add-on built before it: float32 products only. */
  useBf16Products?(on: boolean, kernel?: Bf16Kernel): boolean;
  crossEntropy: BackendKernels['crossEntropy'];
  swiglu: BackendKernels['swiglu'];
  swigluBackward: BackendKernels['swigluBackward'];
  /** Absent from an add-on built before it: ops.ts then runs the wasm kernel. */
  linearAttentionStep?: BackendKernels['linearAttentionStep'];
  /** Absent from an add-on built before it: ops.ts then makes the separate calls. */
  fusedRecurrentStep?: BackendKernels['fusedRecurrentStep'];
  /** Absent from an add-on built before them: ops.ts then runs the wasm kernels. */
  rangeKernel?: BackendKernels['range'];
  rangeKernelNames?(): string[];
  /** Absent from an add-on built before it (adamw with a gradient factor): training keeps its parameters in the arena then. */
  adamwFused?: HeapKernels['adamw'];
  sumSquares?: HeapKernels['sumSquares'];
  scale?: HeapKernels['scale'];
  embeddingBackward?: HeapKernels['embeddingBackward'];
  /** Absent from an add-on built before it: core/weights.ts then quantizes in JavaScript. */
  quantizeInt8?: Backend['quantizeInt8'];
  /** Absent from an add-on built before it: weights then fault in 4 KiB pages. */
  adviseHugePages?: Backend['adviseHugePages'];
  /** Absent from an add-on built before it: nothing depends on it but the scale benchmark, which falls back. */
  readBandwidth?(bytes: number, threads: number, passes: number): NativeReadBandwidth;
}

/** One read-bandwidth measure of the add-on (NativeBackend.readBandwidth). */
export interface NativeReadBandwidth {
  /** Bytes read per pass (the request rounded up to a multiple of 256). */
  bytes: number;
  /** 1: the calling thread; 2: it and the add-on's helper thread, the two that decoding products run on. */
  threads: number;
  /** The loads: 512-bit, 256-bit or 64-bit scalar. */
  kernel: 'avx512' | 'avx2' | 'scalar';
  /** GB/s (10^9 bytes) of each pass. */
  passes: number[];
}

/** Every function of Addon: an add-on lacking one was built from older sources. */
const ADDON_FUNCTIONS = [
  'sgemm', 'gemmBf16', 'info', 'setThreads', 'useSmallKernel', 'useElementwiseKernels', 'crossEntropy', 'swiglu', 'swigluBackward',
  'gemmInt8',
] as const satisfies ReadonlyArray<keyof Addon>;

/** The add-on's kernel for decoding products (m ≤ 4 rows, weight stored n×k), by what the CPU has. */
export type DecodeKernel = 'avx512' | 'avx2' | 'none';
/**
 * The add-on's settings by CPU maker (native/kernels.h CpuTuning; SUPRA_BF16_PREFETCH, SUPRA_STEP_ALONE_FLOATS and
 * SUPRA_PASS_PREFETCH override them): the AVX-512 BF16 decoding kernel's software prefetch (non-temporal, or into
 * L1 and L2), the largest one-token recurrent state stepped on the calling thread alone (floats), and whether
 * AdamW's and the gradient norm's passes prefetch into L1 and L2.
 */
export interface CpuTuning {
  vendor: 'amd' | 'other';
  bf16DecodePrefetch: 'nta' | 'l1l2';
  stepAloneFloats: number;
  passPrefetch: 'l1l2' | 'none';
}

/**
 * The vector widths of the add-on's kernels written once for both (native/vector_ops.h): the batched small
 * products and the elementwise kernels, each with the same bits at either width.
 */
export type VectorKernel = 'avx512' | 'avx2';

/**
 * The add-on's kernel for batched small products (m, n, k ≤ 128: the chunked attention's per-head
 * products), shared between the calling thread and one helper thread: its width while in use (the widest
 * the CPU has), 'off' when turned off (useSmallKernel(false)), 'none' when the CPU has neither AVX-512 nor
 * AVX2. Otherwise OpenBLAS runs them.
 */
export type SmallKernel = VectorKernel | 'off' | 'none';

/**
 * The add-on's elementwise kernels in use: the widest the CPU has, 'off' when turned off
 * (useElementwiseKernels(false)), 'none' when the CPU has neither AVX-512 nor AVX2.
 */
export type ElementwiseKernel = VectorKernel | 'off' | 'none';

export interface NativeInfo {
  /** Kernels OpenBLAS runs: its CPU detection, or OPENBLAS_CORETYPE when that was set at load. */
  corename: string;
  /** openblas_get_config(): version and build options. */
  config: string;
  threads: number;
  procs: number;
  /** 0: single-threaded OpenBLAS build, 1: pthreads, 2: OpenMP. */
  parallel: number;
  /** Decoding products run on this kernel of the add-on ('none': on the wasm kernels). */
  decodeKernel: DecodeKernel;
  /** Batched small products run on this kernel of the add-on ('off', 'none': on OpenBLAS). */
  smallKernel: SmallKernel;
  /** The add-on's settings for this CPU's maker (native/kernels.h CpuTuning); absent off x86 or from an older add-on. */
  cpuTuning?: CpuTuning;
  /** The kernel of the 'bf16' products now on ('off': float32 products; 'none': an add-on built before them). */
  bf16Products: Bf16Kernel | 'off' | 'none';
  /** The BF16 kernels this CPU and add-on have, slowest first: setMatmulPrecision('bf16') uses the last. */
  bf16Kernels: Bf16Kernel[];
  /**
   * Cross-entropy, swiglu and its gradient, the linear attention's decoding step and a training step's row and
   * layout kernels (RangeKernelName) run on the add-on's AVX-512 or AVX2 copies of the wasm kernels (the same
   * bits; 'off', 'none': on the wasm kernels). See BackendKernels.
   */
  elementwiseKernels: ElementwiseKernel;
  /** OPENBLAS_CORETYPE as the library saw it at load ('' when unset: CPU detection). */
  coretypeEnv: string;
  /** OPENBLAS_THREAD_TIMEOUT as the library saw it at load (see applyThreadTimeout). */
  threadTimeoutEnv: string;
  addonPath: string;
}

export interface NativeBackend extends Backend {
  readonly name: 'native';
  info(): NativeInfo;
  /** Sets the OpenBLAS thread count; returns the count now in effect. */
  setThreads(n: number): number;
  /**
   * Batched small products on the add-on's own kernel (true, the default where the CPU has AVX-512 or AVX2:
   * the widest, unless `kernel` names one) or on OpenBLAS (false); returns whether the add-on's kernel is now
   * in use.
   */
  useSmallKernel(on: boolean, kernel?: VectorKernel): boolean;
  /**
   * The elementwise kernels on the add-on (true, the default where the CPU has AVX-512 or AVX2: the widest,
   * unless `kernel` names one) or on the wasm kernels (false); returns whether the add-on's are now in use.
   */
  useElementwiseKernels(on: boolean, kernel?: VectorKernel): boolean;
  /**
   * The memory read bandwidth on `threads` (1 or 2) threads of the add-on: a vectorized read of a buffer of
   * `bytes` outside the JS heap, `passes` times (see native/addon.cc). Absent when the add-on predates it.
   */
  readBandwidth?(bytes: number, threads: 1 | 2, passes: number): NativeReadBandwidth;
  /**
   * Which kernel the 'bf16' products use from the next setMatmulPrecision('bf16') on (default: the last of
   * info().bf16Kernels, the fastest); returns false, changing nothing, where this CPU has no such kernel.
   */
  setBf16Kernel(kernel: Bf16Kernel): boolean;
}

export type NativeResult = { ok: true; backend: NativeBackend } | { ok: false; reason: string };

/** The folder holding package.json, found by walking up from this module (works from any dist folder). */
export function packageRoot(): string {
  const { existsSync } = nodeBuiltin('fs');
  const { dirname, join } = nodeBuiltin('path');
  const { fileURLToPath } = nodeBuiltin('url');
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('supra: cannot find package.json above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
}

/** Where the add-on is loaded from: SUPRA_NATIVE_ADDON, else the node-gyp output in native/build. */
export function defaultAddonPath(): string {
  const env = process.env.SUPRA_NATIVE_ADDON;
  const { join, resolve } = nodeBuiltin('path');
  return env ? resolve(env) : join(packageRoot(), 'native', 'build', 'Release', 'supra_native.node');
}

/** SUPRA_THREADS as a positive integer, or undefined when unset. */
function threadsFromEnv(): number | undefined {
  const raw = process.env.SUPRA_THREADS;
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`supra: SUPRA_THREADS must be a positive integer, got "${raw}"`);
  return n;
}

/**
 * OpenBLAS's kernel set for this CPU from its instruction-set flags (Linux's /proc/cpuinfo): SkylakeX, or
 * Cooperlake with AVX-512 BF16, for AVX-512; Zen or Haswell for AVX2 with FMA; null for older CPUs or where
 * the flags cannot be read. It is what OpenBLAS's own detection picks on hardware it knows; on a CPU model
 * it does not know (virtual machines often report one) that detection falls back to its SSE3 kernels,
 * Prescott, measured 5–6× slower on an AVX-512 Xeon VM (docs/native-backend.md).
 */
export function coretypeFromCpuFlags(cpuinfo: string): string | null {
  const flagsLine = /^flags\s*:(.*)$/m.exec(cpuinfo);
  if (!flagsLine) return null;
  const flags = new Set(flagsLine[1]!.trim().split(/\s+/));
  if (['avx512f', 'avx512bw', 'avx512vl', 'avx512dq', 'avx512cd'].every((f) => flags.has(f))) return flags.has('avx512_bf16') ? 'Cooperlake' : 'SkylakeX';
  if (flags.has('avx2') && flags.has('fma')) return /^vendor_id\s*:\s*AuthenticAMD/m.test(cpuinfo) ? 'Zen' : 'Haswell';
  return null;
}

// OpenBLAS picks its kernels once, when the dynamic loader maps it (its constructor reads
// OPENBLAS_CORETYPE with getenv). process.env writes go through setenv, so setting the variable here,
// before the add-on (and with it libopenblas) is dlopen'ed, is enough.
function applyCoretypeChoice(): void {
  const set = openblasCoretype();
  if (set === undefined) delete process.env.OPENBLAS_CORETYPE;
  else process.env.OPENBLAS_CORETYPE = set;
}

/**
 * The OPENBLAS_CORETYPE supra loads OpenBLAS with (undefined: OpenBLAS's own detection), which any other
 * program timed beside it on the same library should get too (the PyTorch baseline): SUPRA_OPENBLAS_CORETYPE
 * names a set, or `auto` for OpenBLAS's own detection; unset, a preset OPENBLAS_CORETYPE is kept, and without
 * one the set comes from the CPU's flags (coretypeFromCpuFlags), so an unknown CPU model does not get SSE3.
 */
export function openblasCoretype(): string | undefined {
  const choice = process.env.SUPRA_OPENBLAS_CORETYPE;
  if (choice !== undefined && choice !== '') return choice.toLowerCase() === 'auto' ? undefined : choice;
  if (process.env.OPENBLAS_CORETYPE) return process.env.OPENBLAS_CORETYPE;
  let cpuinfo = '';
  try {
    cpuinfo = process.platform === 'linux' && process.arch === 'x64' ? nodeBuiltin('fs').readFileSync('/proc/cpuinfo', 'utf8') : '';
  } catch {
    return undefined; // no flags to go by: OpenBLAS detects
  }
  return coretypeFromCpuFlags(cpuinfo) ?? undefined;
}

/**
 * OpenBLAS's own default lets an idle worker thread spin (sched_yield in a loop) for 2^28 cycles, ~0.1 s,
 * after every product: in training that is always, so it competes with the wasm pool for the cores while
 * the elementwise kernels run between the products. With 4 (the smallest, 16 cycles) it sleeps at once;
 * waking it costs microseconds against products of milliseconds. Measured, configuration S uptraining on
 * 2 shared cores, interleaved runs: 3828–4027 tokens/s with the default, 4495–4692 with 4 (alike only
 * while another job held a whole core). Read by the library when it is loaded, so it is set before the
 * add-on is; a value already in the environment wins.
 */
function applyThreadTimeout(): void {
  if (process.env.OPENBLAS_THREAD_TIMEOUT === undefined || process.env.OPENBLAS_THREAD_TIMEOUT === '') {
    process.env.OPENBLAS_THREAD_TIMEOUT = '4';
  }
}

const loaded = new Map<string, NativeResult>();

function load(addonPath: string): NativeResult {
  if (!nodeBuiltin('fs').existsSync(addonPath)) {
    return {
      ok: false,
      reason: `the OpenBLAS add-on is not built (no ${addonPath}; install libopenblas-dev and run npm install)`,
    };
  }
  applyCoretypeChoice();
  applyThreadTimeout();
  const coretypeEnv = process.env.OPENBLAS_CORETYPE ?? '';
  const threadTimeoutEnv = process.env.OPENBLAS_THREAD_TIMEOUT ?? '';
  let addon: Addon;
  try {
    addon = nodeBuiltin('module').createRequire(import.meta.url)(addonPath) as Addon;
  } catch (err) {
    return { ok: false, reason: `the OpenBLAS add-on failed to load (${(err as Error).message.split('\n')[0]})` };
  }
  // an add-on built from older sources lacks newer functions: say so rather than fail mid-computation
  const missing = ADDON_FUNCTIONS.filter((f) => typeof (addon as unknown as Record<string, unknown>)[f] !== 'function');
  if (missing.length > 0) {
    return { ok: false, reason: `the OpenBLAS add-on at ${addonPath} is out of date (no ${missing.join(', ')}; run npm install to rebuild it)` };
  }
  const threads = threadsFromEnv();
  if (threads !== undefined) addon.setThreads(threads);
  const { threads: loadedThreads, decodeKernel, elementwiseKernels } = addon.info();
  let threadCount = loadedThreads;
  // The add-on's elementwise kernels, while they are on (ops.ts uses them when the backend has them).
  const kernels: BackendKernels = {
    crossEntropy: addon.crossEntropy,
    swiglu: addon.swiglu,
    swigluBackward: addon.swigluBackward,
  };
  if (typeof addon.linearAttentionStep === 'function') kernels.linearAttentionStep = addon.linearAttentionStep;
  if (typeof addon.fusedRecurrentStep === 'function') kernels.fusedRecurrentStep = addon.fusedRecurrentStep;
  if (typeof addon.rangeKernel === 'function' && typeof addon.rangeKernelNames === 'function') {
    kernels.rangeKernels = new Set(addon.rangeKernelNames());
    kernels.range = addon.rangeKernel;
  }
  let kernelsOn = elementwiseKernels === 'avx512' || elementwiseKernels === 'avx2';

  /**
   * Decoding products (m ≤ 4 rows) against a weight stored n×k go to the add-on's one-thread AVX-512/AVX2
   * dot products: about 1.2× the decode speed of the wasm kernels, which read at half the width. Short
   * rows (k < 128: a teacher's q·Kᵀ over its cache) stay on the wasm kernels once those split the product
   * over their threads (32k cached tokens: 22 against 30 ms per token).
   */
  const onDecodeKernel = (g: GemmArgs): boolean =>
    decodeKernel !== 'none' && g.transB && !g.transA && (g.k >= 128 || 2 * g.m * g.n * g.k < GEMV_PARALLEL_FLOPS);

  function sgemm(g: GemmArgs): void {
    // Other decoding products run on the wasm kernels' unpacked path, never on OpenBLAS, whose threads
    // would wake for every product (measured, configuration S decode on 2 shared cores: 300–460 tokens/s
    // through OpenBLAS).
    if (g.m <= 4 && !onDecodeKernel(g) && isArenaF32(g.a) && isArenaF32(g.b) && isArenaF32(g.c)) {
      sgemmWasm(g);
      return;
    }
    // Packed leading dimensions by default (backend.ts leadingDims), spelled out to avoid an object per call.
    addon.sgemm(
      g.transA,
      g.transB,
      g.m,
      g.n,
      g.k,
      g.alpha ?? 1,
      g.beta ?? 0,
      g.a,
      g.lda ?? (g.transA ? g.m : g.k),
      g.strideA ?? 0,
      g.b,
      g.ldb ?? (g.transB ? g.k : g.n),
      g.strideB ?? 0,
      g.c,
      g.ldc ?? g.n,
      g.strideC ?? 0,
      g.batch ?? 1,
    );
  }

  /**
   * Products by a BF16 weight: decoding ones (m ≤ 4) on the add-on's AVX-512/AVX2 dot products, shared with
   * its helper thread (on the wasm kernels where the CPU has neither); larger ones widen bands of the weight
   * for OpenBLAS's sgemm (see native/addon.cc).
   */
  function gemmBf16(g: Bf16GemmArgs): void {
    // a weight outside the arena stays on the add-on: the wasm kernels would copy it in for every product
    if (g.m <= 4 && decodeKernel === 'none' && inArena(g.w)) gemmBf16Wasm(g);
    else addon.gemmBf16(g.m, g.n, g.k, g.x, g.w, g.y);
  }

  /** Products by an int8 weight: as gemmBf16, on the add-on's int8 kernels (dequantized bands for sgemm past m = 4). */
  function gemmInt8(g: Int8GemmArgs): void {
    if (g.m <= 4 && decodeKernel === 'none' && inArena(g.w)) gemmInt8Wasm(g); // as gemmBf16
    else addon.gemmInt8(g.m, g.n, g.k, g.x, g.w, g.scales, g.y);
  }

  /** A batch of small products with its decay and mask applied per entry (Backend.sgemmFused); false where the add-on lacks it. */
  function sgemmFused(g: GemmArgs): boolean {
    if (typeof addon.sgemmFused !== 'function') return false;
    const d = g.decayC, mask = g.maskC;
    return addon.sgemmFused(
      g.transA, g.transB, g.m, g.n, g.k, g.alpha ?? 1, g.beta ?? 0,
      g.a, g.lda ?? (g.transA ? g.m : g.k), g.strideA ?? 0, g.b, g.ldb ?? (g.transB ? g.k : g.n), g.strideB ?? 0,
      g.c, g.ldc ?? g.n, g.strideC ?? 0, g.batch ?? 1,
      d ? d.powers : null, d ? d.powStride : 0, d ? d.heads : 1, d ? d.exponent : 0, d?.from ?? null,
      mask ? mask.pattern : null, mask ? mask.period : 1,
    );
  }

  /** Decoding products reading one x, in one call of the add-on (Backend.gemmShared), where its kernels run (AVX2 or AVX-512). */
  function gemmShared(m: number, k: number, x: Float32Array, parts: readonly SharedInputPart[]): boolean {
    if (m > 4 || decodeKernel === 'none' || typeof addon.gemmShared !== 'function') return false;
    addon.gemmShared(m, k, x, parts.map((p) => [p.w, p.scales, p.n, p.y]));
    return true;
  }

  /** A decoding step's residual MLP block in one call of the add-on (Backend.decodeMlpBlock), where its decoding and elementwise kernels run. */
  function decodeMlpBlock(b: MlpBlockStep): boolean {
    if (b.rows > 4 || decodeKernel === 'none' || !kernelsOn || typeof addon.decodeMlpBlock !== 'function') return false;
    addon.decodeMlpBlock(
      b.hIn, b.branch, b.hOut, b.normWeight, b.normed, b.rstd, b.gate.y, b.up.y, b.act, b.gate.w, b.gate.scales, b.up.w, b.up.scales,
      b.down.w, b.down.scales, b.rows, b.hidden, b.ffn, b.eps, b.next?.weight ?? null, b.next?.out ?? null, b.next?.rstd ?? null, b.next?.eps ?? 0,
    );
    return true;
  }

  /** A SUPRA layer's decoding step in one call of the add-on (Backend.fusedRecurrentLayerStep), where its decoding and elementwise kernels run. */
  function fusedRecurrentLayerStep(a: RecurrentLayerStep): boolean {
    if ((a.step[12] as number) > 4 || decodeKernel === 'none' || !kernelsOn || typeof addon.fusedRecurrentLayerStep !== 'function') return false;
    if (a.q.part.y !== a.step[0] || a.k.part.y !== a.step[1] || a.v.part.y !== a.step[2]) throw new Error('supra: fusedRecurrentLayerStep: the projections must write the step\'s q, k and v');
    addon.fusedRecurrentLayerStep(
      ...a.step, a.x, a.hidden, a.q.part.w, a.q.part.scales, a.q.bias, a.k.part.w, a.k.part.scales, a.k.bias, a.v.part.w, a.v.part.scales, a.v.bias,
      a.o.part.w, a.o.part.scales, a.o.bias, a.o.part.y,
    );
    return true;
  }

  // the BF16 kernels the add-on has (one built before the list: vdpbf16ps where it can turn products on)
  const { bf16Kernels: listed, bf16Products } = addon.info();
  const bf16Kernels: Bf16Kernel[] = listed ?? (bf16Products === 'off' || bf16Products === 'avx512bf16' ? ['avx512bf16'] : []);
  let bf16Kernel: Bf16Kernel | undefined = bf16Kernels.at(-1);

  const backend: NativeBackend = {
    name: 'native',
    get threads() {
      return threadCount;
    },
    sgemm,
    gemmBf16,
    gemmInt8,
    gemmShared,
    decodeMlpBlock,
    fusedRecurrentLayerStep,
    sgemmFused,
    heapWeights: true,
    // MemAvailable on Linux (libuv reads /proc/meminfo): what the machine can give without swapping
    heapBytesAvailable: () => nodeBuiltin('os').freemem(),
    ...(typeof addon.quantizeInt8 === 'function' ? { quantizeInt8: addon.quantizeInt8 } : {}),
    ...(typeof addon.adviseHugePages === 'function' ? { adviseHugePages: addon.adviseHugePages } : {}),
    setMatmulPrecision: (precision: MatmulPrecision) => {
      const want = precision === 'bf16';
      // (an add-on built before the kernel list takes no kernel name: it has vdpbf16ps only)
      const on = typeof addon.useBf16Products === 'function' && bf16Kernel ? (listed ? addon.useBf16Products(want, bf16Kernel) : addon.useBf16Products(want)) : false;
      return on === want;
    },
    setBf16Kernel(kernel: Bf16Kernel): boolean {
      if (!bf16Kernels.includes(kernel)) return false;
      bf16Kernel = kernel;
      return true;
    },
    heapKernels:
      addon.adamwFused && addon.sumSquares && addon.scale && addon.embeddingBackward
        ? { adamw: addon.adamwFused, sumSquares: addon.sumSquares, scale: addon.scale, embeddingBackward: addon.embeddingBackward }
        : undefined,
    // The add-on's kernels give the same bits on any thread count (test/train-threads), but OpenBLAS's AVX2
    // kernel sets (Haswell, Zen) round a product it splits over threads differently from one thread
    // (its AVX-512 sets do not), so the kernel set and the threads both decide the bits.
    fingerprint: (threads: number, precision: MatmulPrecision = 'f32') => {
      const i = addon.info();
      const kernels = `${i.decodeKernel}/${i.smallKernel}/${i.elementwiseKernels}`;
      return { backend: 'native', openblas: i.corename, kernels, threads, ...(precision === 'bf16' ? { bf16Products: bf16Kernel ?? 'none' } : {}) };
    },
    info: () => {
      const i = addon.info();
      return { ...i, bf16Products: i.bf16Products ?? 'none', bf16Kernels, coretypeEnv, threadTimeoutEnv, addonPath };
    },
    setThreads(n: number): number {
      threadCount = addon.setThreads(n);
      return threadCount;
    },
    useSmallKernel: (on: boolean, kernel?: VectorKernel) => (kernel === undefined ? addon.useSmallKernel(on) : addon.useSmallKernel(on, kernel)),
    get kernels() {
      return kernelsOn ? kernels : undefined;
    },
    useElementwiseKernels(on: boolean, kernel?: VectorKernel): boolean {
      kernelsOn = kernel === undefined ? addon.useElementwiseKernels(on) : addon.useElementwiseKernels(on, kernel);
      return kernelsOn;
    },
  };
  const readBandwidth = addon.readBandwidth;
  if (typeof readBandwidth === 'function') backend.readBandwidth = (bytes, threads, passes) => readBandwidth(bytes, threads, passes);
  return { ok: true, backend };
}

/**
 * The OpenBLAS backend, or why it is unavailable. Loads the add-on once per path; later calls return
 * the same backend. `addonPath` overrides where it is looked for (tests use a missing one).
 */
export function createNativeBackend(options: { addonPath?: string } = {}): NativeResult {
  if (!isNode) return { ok: false, reason: 'the OpenBLAS add-on needs Node; a browser has the wasm backend' };
  const addonPath = options.addonPath ? nodeBuiltin('path').resolve(options.addonPath) : defaultAddonPath();
  let result = loaded.get(addonPath);
  if (!result) {
    result = load(addonPath);
    loaded.set(addonPath, result);
  }
  return result;
}
