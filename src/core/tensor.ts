// A float32 tensor in the shape transformers.js users know: `data` and `dims`, row-major.
import { allocF32, free, inArena } from './memory.js';

export class Tensor {
  readonly data: Float32Array;
  readonly dims: number[];

  constructor(data: Float32Array, dims: number[]) {
    const size = dims.reduce((a, b) => a * b, 1);
    if (size !== data.length) {
      throw new RangeError(`supra: tensor dims [${dims.join(', ')}] hold ${size} values, data has ${data.length}`);
    }
    this.data = data;
    this.dims = dims;
  }

  /** A zero tensor in the arena, where the kernels work in place. */
  static zeros(dims: number[]): Tensor {
    return new Tensor(allocF32(dims.reduce((a, b) => a * b, 1)), dims);
  }

  get size(): number {
    return this.data.length;
  }

  get type(): 'float32' {
    return 'float32';
  }

  /** Same data, other dims. */
  view(dims: number[]): Tensor {
    return new Tensor(this.data, dims);
  }

  /** A copy on the ordinary JS heap, safe to keep after the model frees its buffers. */
  toHeap(): Tensor {
    return new Tensor(Float32Array.from(this.data), [...this.dims]);
  }

  /** Release arena storage now instead of waiting for the garbage collector. */
  dispose(): void {
    if (inArena(this.data)) free(this.data);
  }

  tolist(): number[] {
    return Array.from(this.data);
  }
}
