// Native backend sgemm GFLOP/s beside the same OpenBLAS called directly from C (src/bench/openblas-direct.c,
// compiled here with cc), and the effect of OPENBLAS_CORETYPE (each preset in a child process, because
// OpenBLAS picks its kernels once, when it loads).
//
//   node dist/src/bench/native.js [--seconds 0.3] [--rounds 3] [--no-coretypes] [--coretypes Haswell,SkylakeX,...]
//
// --seconds is the minimum time per measurement; every figure is the best of --rounds measurements.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BF16_KERNEL_DESCRIPTIONS, type GemmArgs } from '../core/backend.js';
import { allocF32, free } from '../core/memory.js';
import { createNativeBackend, packageRoot, type NativeBackend } from '../core/native/backend.js';

export interface GemmShape {
  label: string;
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
}

const square = (n: number): GemmShape => ({ label: `square n=${n}`, m: n, n, k: n, transA: false, transB: false });
// y = x·Wᵀ with the weight stored [out, in], as the layers call it
const linear = (label: string, m: number, k: number, n: number): GemmShape => ({ label, m, n, k, transA: false, transB: true });

export const NATIVE_BENCH_SHAPES: GemmShape[] = [
  square(256),
  square(512),
  square(1024),
  linear('[2048×256]·[256×768]ᵀ', 2048, 256, 768),
  linear('[2048×704]·[704×256]ᵀ', 2048, 704, 256),
  linear('[2048×256]·[256×4096]ᵀ', 2048, 256, 4096),
  // a SmolLM-135M training step's products at batch 1 × 512: the MLP's forward, dX and dW, and the loss's
  // 341-row blocks against the 49152-token LM head (forward and dX)
  linear('SmolLM [512×576]·[576×1536]ᵀ', 512, 576, 1536),
  { label: 'SmolLM dX [512×1536]·[1536×576]', m: 512, n: 576, k: 1536, transA: false, transB: false },
  { label: 'SmolLM dW [512×1536]ᵀ·[512×576]', m: 1536, n: 576, k: 512, transA: true, transB: false },
  linear('SmolLM [341×576]·[576×49152]ᵀ', 341, 576, 49152),
  { label: 'SmolLM dX [341×49152]·[49152×576]', m: 341, n: 576, k: 49152, transA: false, transB: false },
  linear('decode [1×256]·[256×768]ᵀ', 1, 256, 768),
  linear('tiny [1×16]·[16×16]ᵀ', 1, 16, 16),
];

export const CORETYPE_PRESETS = ['SkylakeX', 'Haswell', 'Zen', 'Sandybridge', 'Prescott'];

export interface ShapeResult {
  shape: GemmShape;
  nativeSeconds: number;
  nativeGflops: number;
  directSeconds?: number;
  directGflops?: number;
  /** The add-on's BF16 products (--matmul-precision bf16) on the same shape, where the CPU has them. */
  bf16Gflops?: number;
}

export interface CoretypeResult {
  preset: string; // 'unset' for CPU detection
  corename: string;
  gflops: number[]; // per size in CORETYPE_SIZES
}

export const CORETYPE_SIZES = [256, 512, 1024];

export interface NativeBenchReport {
  corename: string;
  config: string;
  threads: number;
  shapes: ShapeResult[];
  directSkipped?: string;
  coretypes: CoretypeResult[];
}

const flops = (s: GemmShape): number => 2 * s.m * s.n * s.k;

/** Seconds per call, timed as src/bench/openblas-direct.c does: warm-up, ~1 ms groups for small calls, fastest sample. */
function timeCall(call: () => void, minSeconds: number): number {
  call(); // warm-up
  let t0 = process.hrtime.bigint();
  call();
  const first = Number(process.hrtime.bigint() - t0) * 1e-9;
  const reps = first >= 1e-3 ? 1 : Math.floor(1e-3 / Math.max(first, 1e-8)) + 1;
  let best = Infinity;
  let total = 0;
  for (let samples = 0; samples < 3 || total < minSeconds; samples++) {
    t0 = process.hrtime.bigint();
    for (let r = 0; r < reps; r++) call();
    const dt = Number(process.hrtime.bigint() - t0) * 1e-9;
    total += dt;
    best = Math.min(best, dt / reps);
  }
  return best;
}

/** Seconds per native sgemm call on packed arena operands. */
function timeNative(be: NativeBackend, s: GemmShape, minSeconds: number): number {
  const a = allocF32(s.m * s.k);
  const b = allocF32(s.k * s.n);
  const c = allocF32(s.m * s.n);
  for (let i = 0; i < a.length; i++) a[i] = Math.sin(i) * 0.5;
  for (let i = 0; i < b.length; i++) b[i] = Math.cos(i) * 0.5;
  const g: GemmArgs = { transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, a, b, c };
  const seconds = timeCall(() => be.sgemm(g), minSeconds);
  free(a);
  free(b);
  free(c);
  return seconds;
}

/** Compiles src/bench/openblas-direct.c; returns the binary, or why it could not. */
function compileDirect(dir: string): { ok: true; exe: string } | { ok: false; reason: string } {
  const src = join(packageRoot(), 'src', 'bench', 'openblas-direct.c');
  const exe = join(dir, 'openblas-direct');
  const pc = spawnSync('pkg-config', ['--cflags', '--libs', 'openblas'], { encoding: 'utf8' });
  const flags = pc.status === 0 ? pc.stdout.trim().split(/\s+/).filter(Boolean) : ['-lopenblas'];
  const rpath = flags.filter((f) => f.startsWith('-L')).map((f) => `-Wl,-rpath,${f.slice(2)}`);
  const cc = process.env.CC ?? 'cc';
  const r = spawnSync(cc, ['-O2', src, '-o', exe, ...flags, ...rpath], { encoding: 'utf8' });
  if (r.error) return { ok: false, reason: `no C compiler (${cc}: ${r.error.message})` };
  if (r.status !== 0) return { ok: false, reason: `${cc} failed: ${r.stderr.trim().split('\n')[0]}` };
  return { ok: true, exe };
}

/** OPENBLAS_CORETYPE for a child: the preset, or none at all for CPU detection. */
function envWithCoretype(coretype: string): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.SUPRA_OPENBLAS_CORETYPE;
  if (coretype === '') delete env.OPENBLAS_CORETYPE;
  else env.OPENBLAS_CORETYPE = coretype;
  return env;
}

function runDirect(exe: string, threads: number, coretype: string, shapes: GemmShape[], minSeconds: number): number[] {
  const args = [String(threads), String(minSeconds), ...shapes.map((s) => `${s.m},${s.n},${s.k},${+s.transA},${+s.transB}`)];
  const r = spawnSync(exe, args, { encoding: 'utf8', env: envWithCoretype(coretype) });
  if (r.status !== 0) throw new Error(`openblas-direct failed (status ${r.status}): ${r.stderr}`);
  const rows = r.stdout.trim().split('\n').filter((l) => /^\d/.test(l));
  if (rows.length !== shapes.length) throw new Error(`openblas-direct printed ${rows.length} results for ${shapes.length} shapes`);
  return rows.map((l) => Number(l.split(' ')[6]));
}

// Child mode: measure the square sizes through the add-on under this process's OPENBLAS_CORETYPE.
function coretypeChild(minSeconds: number): void {
  const r = createNativeBackend();
  if (!r.ok) throw new Error(r.reason);
  const gflops = CORETYPE_SIZES.map((n) => {
    const s = square(n);
    return flops(s) / timeNative(r.backend, s, minSeconds) / 1e9;
  });
  console.log(JSON.stringify({ corename: r.backend.info().corename, gflops }));
}

function measureCoretype(preset: string, minSeconds: number): CoretypeResult {
  const env = envWithCoretype(preset === 'unset' ? '' : preset);
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child-coretype', '--seconds', String(minSeconds)], {
    encoding: 'utf8',
    env,
  });
  if (r.status !== 0) throw new Error(`coretype ${preset} child failed (status ${r.status}, signal ${r.signal}): ${r.stderr}`);
  const { corename, gflops } = JSON.parse(r.stdout) as { corename: string; gflops: number[] };
  return { preset, corename, gflops };
}

const pad = (s: string, w: number): string => (s.length >= w ? s : s + ' '.repeat(w - s.length));
const num = (x: number | undefined, w: number): string => (x === undefined ? '-' : x.toFixed(1)).padStart(w);

/** Measures and prints native vs direct OpenBLAS sgemm, then the OPENBLAS_CORETYPE table. */
export function benchNative(
  options: { seconds?: number; rounds?: number; coretypes?: string[]; shapes?: GemmShape[]; log?: (line: string) => void } = {},
): NativeBenchReport {
  const minSeconds = options.seconds ?? 0.3;
  const rounds = options.rounds ?? 3;
  const shapes = options.shapes ?? NATIVE_BENCH_SHAPES;
  const log = options.log ?? ((l: string) => console.log(l));
  const loaded = createNativeBackend();
  if (!loaded.ok) throw new Error(`supra: native bench: ${loaded.reason}`);
  const be = loaded.backend;
  const info = be.info();
  log(`native backend: ${info.config}`);
  log(
    `  corename ${info.corename} (OPENBLAS_CORETYPE ${info.coretypeEnv === '' ? 'unset: CPU detection' : `= ${info.coretypeEnv}`}), ` +
      `${info.threads} threads, decoding products on ${info.decodeKernel === 'none' ? 'the wasm kernels' : info.decodeKernel}, add-on ${info.addonPath}`,
  );

  const dir = mkdtempSync(join(tmpdir(), 'supra-bench-native-'));
  const results: ShapeResult[] = shapes.map((shape) => ({ shape, nativeSeconds: Infinity, nativeGflops: 0 }));
  let directSkipped: string | undefined;
  try {
    const direct = compileDirect(dir);
    if (!direct.ok) {
      directSkipped = direct.reason;
      log(`  direct C comparison skipped: ${direct.reason}`);
    }
    // Rounds, and within a round each shape directly then natively, best of each: a burst of load from
    // other work on the shared cores then hits both sides alike instead of one.
    for (let round = 0; round < rounds; round++) {
      for (const r of results) {
        if (direct.ok) {
          const gflops = runDirect(direct.exe, info.threads, info.coretypeEnv, [r.shape], minSeconds)[0]!;
          if (gflops > (r.directGflops ?? 0)) {
            r.directGflops = gflops;
            r.directSeconds = flops(r.shape) / gflops / 1e9;
          }
        }
        const seconds = timeNative(be, r.shape, minSeconds);
        if (seconds < r.nativeSeconds) {
          r.nativeSeconds = seconds;
          r.nativeGflops = flops(r.shape) / seconds / 1e9;
        }
        if (be.setMatmulPrecision?.('bf16')) {
          try {
            r.bf16Gflops = Math.max(r.bf16Gflops ?? 0, flops(r.shape) / timeNative(be, r.shape, minSeconds) / 1e9);
          } finally {
            be.setMatmulPrecision('f32');
          }
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const bf16 = results.some((r) => r.bf16Gflops !== undefined);
  log(`\n${pad('shape (m×k · k×n)', 34)} ${'native'.padStart(9)} ${'direct'.padStart(9)}  ratio   native µs/call${bf16 ? '   bf16  ÷native' : ''}`);
  for (const r of results) {
    const ratio = r.directGflops ? (r.nativeGflops / r.directGflops).toFixed(2) : '-';
    const b = r.bf16Gflops !== undefined ? `${num(r.bf16Gflops, 7)} ${(r.bf16Gflops / r.nativeGflops).toFixed(2).padStart(7)}` : '';
    log(
      `${pad(r.shape.label, 34)} ${num(r.nativeGflops, 9)} ${num(r.directGflops, 9)}  ${ratio.padStart(5)}   ${(r.nativeSeconds * 1e6).toFixed(2).padStart(14)}${b ? `   ${b}` : ''}`,
    );
  }
  log('  (GFLOP/s; ratio = native / direct; the add-on sends single-row products to sgemv, the C program always calls sgemm;' +
    `${bf16 ? `\n   bf16: the same product with --matmul-precision bf16, on ${BF16_KERNEL_DESCRIPTIONS[be.info().bf16Kernels.at(-1)!]} (decoding shapes stay float32)` : ''})`);

  const coretypes: CoretypeResult[] = [];
  const presets = options.coretypes ?? (process.arch === 'x64' ? CORETYPE_PRESETS : []);
  if (presets.length > 0) {
    log(`\nOPENBLAS_CORETYPE (native sgemm GFLOP/s, square n; each preset in fresh processes, best of ${rounds})`);
    log(`${pad('preset', 12)} ${pad('corename', 12)} ${CORETYPE_SIZES.map((n) => `n=${n}`.padStart(9)).join(' ')}`);
    // Presets take turns over the rounds, best of each, so a burst of load does not land on one preset.
    const all = ['unset', ...presets];
    for (let round = 0; round < rounds; round++) {
      all.forEach((preset, i) => {
        const r = measureCoretype(preset, minSeconds);
        const seen = coretypes[i];
        if (!seen) coretypes.push(r);
        else seen.gflops = seen.gflops.map((g, j) => Math.max(g, r.gflops[j]!));
      });
    }
    for (const r of coretypes) {
      log(`${pad(r.preset, 12)} ${pad(r.corename, 12)} ${r.gflops.map((g) => num(g, 9)).join(' ')}`);
    }
  }
  return { corename: info.corename, config: info.config, threads: info.threads, shapes: results, directSkipped, coretypes };
}

function argValue(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const seconds = argValue(argv, '--seconds');
  const minSeconds = seconds === undefined ? 0.3 : Number(seconds);
  if (!(minSeconds > 0)) throw new Error(`--seconds must be a positive number, got ${seconds}`);
  if (argv.includes('--child-coretype')) {
    coretypeChild(minSeconds);
  } else {
    const list = argValue(argv, '--coretypes');
    const rounds = Number(argValue(argv, '--rounds') ?? 3);
    if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer`);
    benchNative({
      seconds: minSeconds,
      rounds,
      coretypes: argv.includes('--no-coretypes') ? [] : list ? list.split(',').filter(Boolean) : undefined,
    });
  }
}
