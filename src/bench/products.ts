// The backend's matrix products as the benchmarks see them: every call through one wrapper, to time the
// products of a training step (train-step.ts) or to record a decoding step's and replay them back to back
// (scale.ts), which splits a decoded token into its products and the work between them.
import type { Backend } from '../core/backend.js';
import { getBackend } from '../core/select.js';

/** Every entry of Backend that computes a matrix product. */
export const PRODUCT_METHODS = ['sgemm', 'sgemmFused', 'gemmBf16', 'gemmInt8', 'gemmShared'] as const satisfies readonly (keyof Backend)[];

/**
 * The entries that make a decoding step's products together with the work between them (one call for a layer's
 * half). Recording turns them off, so that the same products are made, and seen, one by one.
 */
export const PRODUCT_BLOCK_METHODS = ['decodeMlpBlock', 'fusedRecurrentLayerStep'] as const satisfies readonly (keyof Backend)[];

type ProductCall = (...args: unknown[]) => unknown;

/** One product call as made: the backend's own method and its arguments. */
export interface RecordedProduct {
  run: ProductCall;
  args: unknown[];
}

/**
 * Routes every product of the selected backend through `around(run, call)`, which must call run() and return
 * its result (`call` is the method and its arguments, to make the call again); returns the function that puts
 * the backend's own methods back.
 */
export function interceptProducts(around: (run: () => unknown, call: RecordedProduct) => unknown): () => void {
  const backend = getBackend() as unknown as Record<string, ProductCall | undefined>;
  const restore: Array<() => void> = [];
  for (const name of PRODUCT_METHODS) {
    const own = backend[name];
    if (typeof own !== 'function') continue;
    const bound = own.bind(backend);
    const hadOwn = Object.prototype.hasOwnProperty.call(backend, name);
    backend[name] = (...args: unknown[]) => around(() => bound(...args), { run: bound, args });
    restore.push(() => {
      if (hadOwn) backend[name] = own;
      else delete backend[name];
    });
  }
  return () => restore.forEach((r) => r());
}

/** The products `work` makes, in order, as calls that can be made again (on the same buffers). */
export function recordProducts(work: () => void): RecordedProduct[] {
  const calls: RecordedProduct[] = [];
  const backend = getBackend() as unknown as Record<string, ProductCall | undefined>;
  const blocks = PRODUCT_BLOCK_METHODS.filter((name) => Object.prototype.hasOwnProperty.call(backend, name)).map((name) => [name, backend[name]] as const);
  for (const [name] of blocks) backend[name] = undefined;
  const restore = interceptProducts((run, call) => {
    calls.push(call);
    return run();
  });
  try {
    work();
  } finally {
    restore();
    for (const [name, own] of blocks) backend[name] = own;
  }
  return calls;
}

/** Makes each recorded product again, in order. */
export function replayProducts(calls: readonly RecordedProduct[]): void {
  for (const c of calls) c.run(...c.args);
}

/** Seconds spent in the backend's products while on (the wrapping stays for the process). */
export function timeProducts(): { seconds: () => number; reset: () => void } {
  let total = 0;
  interceptProducts((run) => {
    const t0 = performance.now();
    try {
      return run();
    } finally {
      total += performance.now() - t0;
    }
  });
  return { seconds: () => total / 1000, reset: () => (total = 0) };
}
