// The arena: one shared WebAssembly.Memory holds every float buffer the kernels touch, so the wasm
// kernels, their worker threads and the native add-on all work in place, with no copies (the ggml way).
// Models allocate their buffers once (llm.c style) and free them explicitly; a FinalizationRegistry
// returns forgotten buffers when their views are collected.

const PAGE = 65536;
const ALIGN = 64; // bytes: a cache line, and enough for any SIMD load
/** Bytes below this are left to the wasm module (its data, stack and the worker control block). */
export const ARENA_BASE = 1 << 20;
const MAX_PAGES = 65536; // 4 GiB, the wasm32 limit
/** The most bytes the arena can ever span. */
export const ARENA_MAX_BYTES = MAX_PAGES * PAGE;

import { canShareMemory } from './host.js';

// Shared wherever threads can share it (always under Node; on a cross-origin-isolated page in a
// browser); elsewhere an unshared memory, and the wasm backend runs on one thread (core/wasm/module.ts).
export const memory = new WebAssembly.Memory({ initial: 64, maximum: MAX_PAGES, shared: canShareMemory });

// Growing an unshared memory detaches its ArrayBuffer, and with it every view the models hold. Its
// resizable form (ES2024; Chrome 136+, Node 24+) grows in place instead; a shared one never detaches.
const resizable = !canShareMemory && typeof (memory as { toResizableBuffer?: () => ArrayBuffer }).toResizableBuffer === 'function';
if (resizable) (memory as unknown as { toResizableBuffer(): ArrayBuffer }).toResizableBuffer();

// Every SharedArrayBuffer object the memory has handed out (a new one after each grow), and the newest,
// which nearly every view is on: inArena runs for every array of every kernel call.
const arenaBuffers = new WeakSet<ArrayBufferLike>([memory.buffer]);
let newestArenaBuffer: ArrayBufferLike = memory.buffer;

// Free blocks as [offset, size] sorted by offset; adjacent blocks are merged on free.
const freeBlocks: Array<[number, number]> = [];
let top = ARENA_BASE; // bytes in use or free below this; above it, never used yet
const liveSizes = new Map<number, number>(); // offset -> size of each live allocation
let liveBytes = 0;

const finalizer = new FinalizationRegistry<number>((offset) => release(offset));

function grow(endBytes: number): void {
  const have = memory.buffer.byteLength;
  if (endBytes <= have) return;
  const pages = Math.ceil((endBytes - have) / PAGE);
  const want = have / PAGE + Math.max(pages, Math.ceil(have / PAGE / 4)); // grow by >= 25% to amortize
  const target = Math.min(MAX_PAGES, want);
  if (target * PAGE < endBytes) {
    throw new RangeError(
      `supra: out of arena memory: need ${(endBytes / 2 ** 30).toFixed(2)} GiB, the wasm32 limit is 4 GiB ` +
        `(${(liveBytes / 2 ** 30).toFixed(2)} GiB live)`,
    );
  }
  if (!canShareMemory && !resizable && top > ARENA_BASE) {
    throw new RangeError(
      'supra: the wasm arena cannot grow here without invalidating the buffers in it: memory is not shared ' +
        '(the page is not cross-origin isolated) and this engine lacks WebAssembly.Memory.toResizableBuffer. ' +
        'Serve the page with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp.',
    );
  }
  memory.grow(target - have / PAGE);
  newestArenaBuffer = memory.buffer;
  arenaBuffers.add(newestArenaBuffer);
}

function takeBytes(size: number): number {
  for (let i = 0; i < freeBlocks.length; i++) {
    const [off, sz] = freeBlocks[i]!;
    if (sz >= size) {
      if (sz === size) freeBlocks.splice(i, 1);
      else freeBlocks[i] = [off + size, sz - size];
      return off;
    }
  }
  const off = top;
  grow(off + size);
  top = off + size;
  return off;
}

function release(offset: number): void {
  const size = liveSizes.get(offset);
  if (size === undefined) return;
  liveSizes.delete(offset);
  liveBytes -= size;
  // insert sorted, then merge with neighbours
  let lo = 0;
  let hi = freeBlocks.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (freeBlocks[mid]![0] < offset) lo = mid + 1;
    else hi = mid;
  }
  freeBlocks.splice(lo, 0, [offset, size]);
  const next = freeBlocks[lo + 1];
  if (next && offset + size === next[0]) {
    freeBlocks[lo] = [offset, size + next[1]];
    freeBlocks.splice(lo + 1, 1);
  }
  const prev = freeBlocks[lo - 1];
  if (prev && prev[0] + prev[1] === offset) {
    freeBlocks[lo - 1] = [prev[0], prev[1] + freeBlocks[lo]![1]];
    freeBlocks.splice(lo, 1);
  }
  const last = freeBlocks[freeBlocks.length - 1];
  if (last && last[0] + last[1] === top) {
    top = last[0];
    freeBlocks.pop();
  }
}

/** A zero-filled float32 buffer of n elements in the arena. */
export function allocF32(n: number): Float32Array {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`supra: bad buffer length ${n}`);
  const size = Math.max(ALIGN, Math.ceil((n * 4) / ALIGN) * ALIGN);
  const off = takeBytes(size);
  liveSizes.set(off, size);
  liveBytes += size;
  const view = new Float32Array(memory.buffer, off, n);
  view.fill(0);
  finalizer.register(view, off, view);
  return view;
}

/** An int32 buffer in the arena (token ids, positions), same allocator. */
export function allocI32(n: number): Int32Array {
  const f = allocF32(n);
  const view = new Int32Array(f.buffer, f.byteOffset, n);
  // the int view owns the block: move the finalizer registration to it
  finalizer.unregister(f);
  finalizer.register(view, f.byteOffset, view);
  return view;
}

/** A zero-filled uint16 buffer of n elements in the arena (BF16 weights, core/weights.ts), same allocator. */
export function allocU16(n: number): Uint16Array {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`supra: bad buffer length ${n}`);
  const f = allocF32(Math.ceil(n / 2));
  const view = new Uint16Array(f.buffer, f.byteOffset, n);
  finalizer.unregister(f);
  finalizer.register(view, f.byteOffset, view);
  return view;
}

/** A zero-filled int8 buffer of n elements in the arena (int8 weights, core/weights.ts), same allocator. */
export function allocI8(n: number): Int8Array {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`supra: bad buffer length ${n}`);
  const f = allocF32(Math.ceil(n / 4));
  const view = new Int8Array(f.buffer, f.byteOffset, n);
  finalizer.unregister(f);
  finalizer.register(view, f.byteOffset, view);
  return view;
}

/** Return a buffer made by allocF32/allocI32/allocU16/allocI8. Views of it must not be used afterwards. */
export function free(view: Float32Array | Int32Array | Uint16Array | Int8Array): void {
  if (!inArena(view)) return;
  finalizer.unregister(view);
  release(view.byteOffset);
}

/** True when the array lives in the arena, so kernels can use it in place. */
export function inArena(view: ArrayBufferView): boolean {
  const buffer = view.buffer;
  return buffer === newestArenaBuffer || arenaBuffers.has(buffer);
}

/** Copy any float array into a fresh arena buffer. */
export function toArena(src: ArrayLike<number>): Float32Array {
  const a = allocF32(src.length);
  a.set(src);
  return a;
}

/** Bytes the arena could still hand out (its 4 GiB limit less what is live; fragmentation aside). */
export function arenaFreeBytes(): number {
  return ARENA_MAX_BYTES - ARENA_BASE - liveBytes;
}

export function arenaStats(): { liveBytes: number; reservedBytes: number } {
  return { liveBytes, reservedBytes: memory.buffer.byteLength };
}

/** A size as messages and reports write it: "1.25 GiB" from 1 GiB up, "340 MiB" below, "0.50 MiB" under 1 MiB. */
export function formatBytes(bytes: number): string {
  const GiB = 2 ** 30, MiB = 2 ** 20;
  return bytes >= GiB ? `${(bytes / GiB).toFixed(2)} GiB` : `${(bytes / MiB).toFixed(bytes < MiB ? 2 : 0)} MiB`;
}
