// What the host provides. The library runs under Node and in browsers (supra/web) from the same files,
// so nothing below the CLI imports a `node:` module statically (test/web-graph.test.ts holds it to
// that): Node's built-ins are reached through process.getBuiltinModule (Node ≥ 20.16), only where and
// when a path needs one, and a browser that reaches one gets an error saying what needs Node.
import type * as Fs from 'node:fs';
import type * as Path from 'node:path';
import type * as Os from 'node:os';
import type * as WorkerThreads from 'node:worker_threads';
import type * as V8 from 'node:v8';
import type * as Url from 'node:url';
import type * as Zlib from 'node:zlib';
import type * as Crypto from 'node:crypto';
import type * as NodeModule from 'node:module';

interface Builtins {
  fs: typeof Fs;
  path: typeof Path;
  os: typeof Os;
  worker_threads: typeof WorkerThreads;
  v8: typeof V8;
  url: typeof Url;
  zlib: typeof Zlib;
  crypto: typeof Crypto;
  module: typeof NodeModule;
}

/** True under Node (worker threads included), false in a browser page or Web Worker. */
export const isNode: boolean = typeof process === 'object' && process !== null && typeof process.versions?.node === 'string';

/** Node's built-in module `name`; in a browser, an error naming what needed it. */
export function nodeBuiltin<K extends keyof Builtins>(name: K, what = 'this'): Builtins[K] {
  if (!isNode) throw new Error(`supra: ${what} needs Node (node:${name}), which a browser does not have`);
  const get = (process as unknown as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  if (!get) throw new Error(`supra: Node ${process.versions.node} lacks process.getBuiltinModule; supra needs Node ≥ 20.16`);
  return get(name) as Builtins[K];
}

/** An environment variable (Node), or undefined (a browser has none). */
export function envVar(name: string): string | undefined {
  return isNode ? process.env[name] : undefined;
}

/** A warning: process.emitWarning under Node, console.warn in a browser. */
export function warn(message: string): void {
  if (isNode) process.emitWarning(message);
  else console.warn(message);
}

/** Threads the host can run at once: Node's availableParallelism; a browser's hardwareConcurrency. */
export function hostParallelism(): number {
  if (isNode) return nodeBuiltin('os').availableParallelism();
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  return Math.max(1, nav?.hardwareConcurrency ?? 1);
}

/**
 * Whether memory can be shared between threads: always under Node; in a browser only on a
 * cross-origin-isolated page (served with COOP: same-origin and COEP: require-corp), where
 * SharedArrayBuffer exists. Without it the wasm backend runs on one thread.
 */
export const canShareMemory: boolean = isNode || (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
