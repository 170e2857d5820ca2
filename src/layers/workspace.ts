// Named buffers that are allocated once and reused (llm.c style), in the arena, or outside it for a layer
// whose buffers only kernels that read ordinary memory in place touch (the MLP's on native). A buffer is
// (re)allocated only when a call needs more room than it has, e.g. a larger (B, T); otherwise the same
// memory is handed back, so a training loop at fixed (B, T) allocates nothing after its first step.
//
// A view handed out stays valid until the same name is asked for with a larger size (or free()); take
// views afresh at the start of each call and do not keep them across calls of other code.
import { free } from '../core/memory.js';
import { allocF32In, type WeightPlace } from '../core/weights.js';

export class Workspace {
  private readonly buffers = new Map<string, Float32Array>();
  // the last view of each name shorter than its buffer: a decoding step asks for the same few sizes of
  // buffers sized for training or a prompt, and a fresh subarray for each would be garbage every call
  private readonly views = new Map<string, Float32Array>();

  constructor(readonly place: WeightPlace = 'arena') {}

  /** `n` floats under `name`. Contents are whatever the last user left: kernels must overwrite. */
  get(name: string, n: number): Float32Array {
    let buf = this.buffers.get(name);
    if (!buf || buf.length < n) {
      if (buf) free(buf);
      buf = allocF32In(n, this.place);
      this.buffers.set(name, buf);
      this.views.delete(name);
    }
    if (buf.length === n) return buf;
    let view = this.views.get(name);
    if (!view || view.length !== n) {
      view = buf.subarray(0, n);
      this.views.set(name, view);
    }
    return view;
  }

  /** `n` int32 values under `name` (token ids, targets), sharing the same storage scheme. */
  getI32(name: string, n: number): Int32Array {
    const f = this.get(name, n);
    return new Int32Array(f.buffer, f.byteOffset, n);
  }

  /** Bytes held. */
  bytes(): number {
    let total = 0;
    for (const b of this.buffers.values()) total += b.byteLength;
    return total;
  }

  free(): void {
    for (const b of this.buffers.values()) free(b);
    this.buffers.clear();
    this.views.clear();
  }
}
