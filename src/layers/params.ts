// The parameter store: every parameter of a model by its HF / safetensors name, each a buffer allocated
// once, with its gradient buffer beside it. Gradients are allocated on first need (enableGrads), so a
// model loaded for inference holds no gradient memory. Matrices may be stored in a narrower weight type
// (core/weights.ts: BF16, int8) for inference, and outside the wasm arena (WeightPlace 'heap') where the
// backend's products read them there; vectors (norm gains, biases) stay float32 in the arena.
import { allocF32, arenaFreeBytes, free, inArena } from '../core/memory.js';
import { getBackend } from '../core/select.js';
import { allocF32In, bf16ToF32Array, freeWeightArray, heapArray, f32ToBf16Array, isWeightType, WEIGHT_TYPES, type Weight, type WeightPlace, type WeightType } from '../core/weights.js';
import type { StoredTensor } from '../io/safetensors.js';
import type { Param } from './types.js';

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

/** Named tensors to load from: a checkpoint folder (io/checkpoint.ts Checkpoint fits) or a map in memory. */
export interface TensorSource {
  names(): string[];
  has(name: string): boolean;
  info(name: string): { dtype: string; shape: number[] };
  /** Read a float tensor into dest (numel long), as float32. */
  readInto(name: string, dest: Float32Array): Float32Array;
  /**
   * Read a float tensor into dest (numel long) as BF16 bits: a BF16 tensor as stored, others rounded to
   * nearest even. Without it, loadInto reads float32 and rounds.
   */
  readBf16Into?(name: string, dest: Uint16Array): Uint16Array;
  /** The file holding a tensor, for error messages. */
  fileOf?(name: string): string;
}

/** A TensorSource over tensors already in memory (readSafetensors' map, or tests). */
export function mapSource(tensors: ReadonlyMap<string, StoredTensor>): TensorSource {
  const get = (name: string): StoredTensor => {
    const t = tensors.get(name);
    if (!t) throw new Error(`supra: no tensor named ${name}`);
    return t;
  };
  const floats = (name: string, length: number): Float32Array => {
    const t = get(name);
    if (!(t.data instanceof Float32Array)) throw new Error(`supra: tensor ${name} holds integers (${t.dtype}), expected floats`);
    if (t.data.length !== length) throw new Error(`supra: tensor ${name} has ${t.data.length} values, destination holds ${length}`);
    return t.data;
  };
  return {
    names: () => [...tensors.keys()],
    has: (name) => tensors.has(name),
    info: (name) => get(name),
    readInto: (name, dest) => {
      dest.set(floats(name, dest.length));
      return dest;
    },
    readBf16Into: (name, dest) => {
      const t = floats(name, dest.length);
      f32ToBf16Array(new Uint32Array(t.buffer, t.byteOffset, t.length), dest);
      return dest;
    },
  };
}

/** Values quantized per chunk while loading an int8 weight from BF16 bits (whole rows, about this many). */
const INT8_LOAD_CHUNK = 1 << 16;

/**
 * Tensor `name` of `source` quantized into an int8 weight, through one temporary copy of the tensor: its
 * BF16 bits when the file holds BF16 (widened a few rows at a time: exact), float32 otherwise.
 */
function readInt8(source: TensorSource, name: string, stored: Extract<Weight, { type: 'int8' }>): void {
  const n = stored.data.length;
  const traits = WEIGHT_TYPES.int8;
  if (source.readBf16Into && source.info(name).dtype === 'BF16') {
    const bits = source.readBf16Into(name, heapArray(Uint16Array, n));
    const rows = Math.max(1, Math.floor(INT8_LOAD_CHUNK / stored.cols)) * stored.cols;
    const chunk = new Float32Array(Math.min(n, rows));
    for (let from = 0; from < n; from += rows) {
      const part = chunk.subarray(0, Math.min(rows, n - from));
      bf16ToF32Array(bits.subarray(from, from + part.length), new Uint32Array(part.buffer, part.byteOffset, part.length));
      traits.fromFloat(part, stored, from);
    }
  } else {
    traits.fromFloat(source.readInto(name, new Float32Array(n)), stored, 0);
  }
}

/** Tensor `name` of `source` into a parameter's storage, in its weight type. */
function readStored(source: TensorSource, name: string, stored: Weight): void {
  if (stored.type === 'int8') {
    readInt8(source, name, stored);
  } else if (stored.type === 'f32') {
    source.readInto(name, stored.data);
  } else if (source.readBf16Into) {
    source.readBf16Into(name, stored.data);
  } else {
    const f32 = source.readInto(name, new Float32Array(stored.data.length));
    f32ToBf16Array(new Uint32Array(f32.buffer, f32.byteOffset, f32.length), stored.data);
  }
}

/** Free a parameter's values (an int8 weight's scales too) and its gradient. */
function freeParam(p: Param): void {
  const stored = storedWeight(p);
  freeWeightArray(stored.data);
  if (stored.type === 'int8') freeWeightArray(stored.scales);
  if (p.grad) free(p.grad);
  p.grad = null;
}

class StoredParam implements Param {
  grad: Float32Array | null = null;
  frozen = false;
  constructor(
    readonly name: string,
    readonly shape: number[],
    public stored: Weight,
  ) {}

  get data(): Float32Array {
    if (this.stored.type === 'f32') return this.stored.data;
    throw new Error(`supra: ${this.name} is stored as ${this.stored.type}; this needs float32 weights (load the model with dtype f32)`);
  }
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** How a parameter's values are stored (float32 unless it says otherwise). */
export function storedWeight(p: Param): Weight {
  return p.stored ?? { type: 'f32', data: p.data };
}

/** The error for training (or a backward through) a weight stored in an inference-only type. */
export function untrainable(p: Param): Error {
  return new Error(`supra: ${p.name} is stored as ${storedWeight(p).type}: trained weights are float32; load with dtype f32`);
}

/** The gradient buffer of a parameter; a clear error when the model was not set up for training. */
export function gradOf(p: Param): Float32Array {
  if (!p.grad) throw new Error(`supra: ${p.name} has no gradient buffer (call enableGrads() on the model before backward)`);
  return p.grad;
}

/** The gradient buffer of a trained parameter; null for a frozen one (left out of enableGrads' set). */
export function gradIfTrained(p: Param): Float32Array | null {
  return p.frozen ? null : gradOf(p);
}

export interface ParamStoreOptions {
  /**
   * Record names and shapes without allocating (every data array is empty), to learn which tensors a
   * model of some config has without holding its weights.
   */
  declareOnly?: boolean;
  /**
   * How every matrix (2-D parameter: projections, MLP, embeddings, lm_head) is stored; vectors stay
   * float32. Default 'f32'. A store with another type is for inference: only float32 weights train.
   */
  dtype?: WeightType;
  /**
   * Where matrices live (core/weights.ts WeightPlace). Default 'arena'. A 'heap' store moves its float32
   * matrices into the arena when gradients are enabled: the training kernels (AdamW, clipping) work there.
   */
  place?: WeightPlace;
}

export class ParamStore {
  private readonly byName = new Map<string, Param>();
  private gradsOn = false;

  constructor(private readonly options: ParamStoreOptions = {}) {
    const dtype = options.dtype;
    if (dtype !== undefined && !isWeightType(dtype)) {
      throw new Error(`supra: dtype must be ${Object.keys(WEIGHT_TYPES).join(' or ')}, got ${JSON.stringify(dtype)}`);
    }
  }

  /** The type matrices are stored in. */
  get dtype(): WeightType {
    return this.options.dtype ?? 'f32';
  }

  /** The type a parameter of this shape is stored in: matrices in the store's dtype, gains and biases float32. */
  typeFor(shape: readonly number[]): WeightType {
    return shape.length === 2 ? this.dtype : 'f32';
  }

  /**
   * Where a parameter of this shape lives: matrices where the store says, gains and biases in the arena;
   * once gradients are on, where trainingPlace says.
   */
  placeFor(shape: readonly number[]): WeightPlace {
    return this.gradsOn ? this.trainingPlace(shape) : shape.length === 2 ? (this.options.place ?? 'arena') : 'arena';
  }

  /** A parameter's bytes as stored (an int8 weight's scales included) and where they are now. */
  storage(p: Param): { bytes: number; place: WeightPlace } {
    const w = storedWeight(p);
    const bytes = w.data.byteLength + (w.type === 'int8' ? w.scales.byteLength : 0);
    return { bytes, place: bytes === 0 || inArena(w.data) ? 'arena' : 'heap' };
  }

  /**
   * Where a parameter of this shape, its gradient and its optimizer moments live once gradients are on:
   * a matrix of a 'heap' store stays outside the arena where the backend has the optimizer's kernels for
   * it (Backend.heapKernels: native), so a model trains with no 4 GiB ceiling; everything else in the arena.
   */
  trainingPlace(shape: readonly number[]): WeightPlace {
    return shape.length === 2 && this.options.place === 'heap' && getBackend().heapKernels ? 'heap' : 'arena';
  }

  /**
   * Why this model can no longer train or be saved as a model folder (a change made for inference only:
   * folded feature maps), or null. enableGrads refuses with it.
   */
  inferenceOnly: string | null = null;

  /** A new zero parameter. Names are unique. */
  add(name: string, shape: number[]): Param {
    if (this.byName.has(name)) throw new Error(`supra: parameter ${name} declared twice`);
    for (const d of shape) {
      if (!Number.isInteger(d) || d <= 0) throw new Error(`supra: parameter ${name} has bad shape [${shape.join(', ')}]`);
    }
    const traits = WEIGHT_TYPES[this.typeFor(shape)];
    const p = new StoredParam(name, [...shape], traits.alloc(this.options.declareOnly ? 0 : numel(shape), this.placeFor(shape), shape[shape.length - 1]));
    if (this.gradsOn) p.grad = allocF32In(numel(shape), this.trainingPlace(shape));
    this.byName.set(name, p);
    return p;
  }

  /** A new parameter holding `values` (float32, its numel long), stored as add() stores it (rounded once). */
  addFrom(name: string, shape: number[], values: Float32Array): Param {
    const p = this.add(name, shape);
    const w = storedWeight(p);
    if (values.length !== w.data.length) throw new RangeError(`supra: ${name}: ${values.length} values given for [${shape.join(', ')}]`);
    try {
      WEIGHT_TYPES[w.type].fromFloat(values, w, 0);
    } catch (e) {
      this.remove([p]);
      throw e;
    }
    return p;
  }

  /**
   * Free these parameters and forget them (a model folding some into others for inference). The Param
   * objects are left holding no values, so a stale use fails on their length instead of reading freed memory.
   */
  remove(params: Iterable<Param>): void {
    for (const p of new Set(params)) {
      if (this.byName.get(p.name) !== p || !(p instanceof StoredParam)) throw new Error(`supra: remove: ${p.name} is not a parameter of this store`);
      const type = p.stored.type;
      freeParam(p);
      p.stored = WEIGHT_TYPES[type].alloc(0, 'heap');
      this.byName.delete(p.name);
    }
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  get(name: string): Param {
    const p = this.byName.get(name);
    if (!p) throw new Error(`supra: no parameter named ${name}`);
    return p;
  }

  /** Every parameter, in declaration order (embeddings, layer by layer, final norm, head). */
  list(): Param[] {
    return [...this.byName.values()];
  }

  /** Total number of parameter values. */
  numel(): number {
    let n = 0;
    for (const p of this.byName.values()) n += storedWeight(p).data.length;
    return n;
  }

  get gradsEnabled(): boolean {
    return this.gradsOn;
  }

  /**
   * Allocate the gradient buffers (zeroed) of the trained parameters, each where its parameter lives in
   * training (trainingPlace): every one, or only those of `trained`. The others are frozen: no gradient
   * buffer (so no optimizer moments either), their values stay where and as they are stored, and backward
   * passes only carry gradients through them. Trained matrices kept outside the arena that train in it
   * move there first. Refused for a trained weight stored in an inference type. Once on, a call without
   * `trained` keeps the set; one with a set makes it the trained set (freeing the newly frozen's gradients).
   */
  enableGrads(trained?: Iterable<Param>): void {
    if (this.inferenceOnly) throw new Error(`supra: this model cannot train: ${this.inferenceOnly}`);
    const set = trained === undefined ? null : new Set(trained);
    if (this.gradsOn && set === null) return;
    for (const p of set ?? []) {
      if (this.byName.get(p.name) !== p) throw new Error(`supra: enableGrads: ${p.name} is not a parameter of this store`);
    }
    const train = [...this.byName.values()].filter((p) => set === null || set.has(p));
    for (const p of train) {
      if (!WEIGHT_TYPES[storedWeight(p).type].trainable) throw untrainable(p);
    }
    const outside = train.filter(
      (p): p is StoredParam =>
        p instanceof StoredParam && p.stored.data.length > 0 && !inArena(p.stored.data) && this.trainingPlace(p.shape) === 'arena',
    );
    const newGrads = train.reduce((n, p) => n + (p.grad || this.trainingPlace(p.shape) !== 'arena' ? 0 : p.data.length), 0);
    const need = 4 * (outside.reduce((n, p) => n + p.stored.data.length, 0) + newGrads);
    if (need > arenaFreeBytes()) {
      throw new Error(
        `supra: training needs ${(need / 2 ** 30).toFixed(2)} GiB more in the wasm arena for the weights and their gradients, ` +
          `${(arenaFreeBytes() / 2 ** 30).toFixed(2)} GiB is free of its 4 GiB: the model is too big to train on this backend ` +
          '(the native backend trains its matrices outside the arena)',
      );
    }
    for (const p of outside) {
      const moved = allocF32(p.stored.data.length);
      moved.set(p.stored.data as Float32Array);
      p.stored = { type: 'f32', data: moved };
    }
    this.gradsOn = true;
    for (const p of this.byName.values()) {
      const frozen = set !== null && !set.has(p);
      if (p instanceof StoredParam) p.frozen = frozen;
      if (frozen && p.grad) {
        free(p.grad);
        p.grad = null;
      } else if (!frozen && !p.grad) p.grad = allocF32In(p.data.length, this.trainingPlace(p.shape));
    }
  }

  /** Zero every gradient, but those in `skip` (known to be zero already: AdamW.step's clearGrads). */
  zeroGrad(skip?: ReadonlySet<Param>): void {
    for (const p of this.byName.values()) if (!skip?.has(p)) p.grad?.fill(0);
  }

  /**
   * Fill every parameter from `source` by name, converting half-precision tensors to float32. Each
   * parameter must be present with its exact shape; errors name the file and the tensor. Returns the
   * names in the source that no parameter takes, for the caller to report.
   */
  load(source: TensorSource, sourceName: string): { unexpected: string[] } {
    if (this.options.declareOnly) throw new Error('supra: a declare-only parameter store holds no weights to load into');
    const missing: string[] = [];
    for (const p of this.byName.values()) {
      if (!source.has(p.name)) {
        missing.push(p.name);
        continue;
      }
      const file = source.fileOf ? source.fileOf(p.name) : sourceName;
      const { dtype, shape } = source.info(p.name);
      const sameShape = shape.length === p.shape.length && shape.every((d, i) => d === p.shape[i]);
      if (!sameShape) {
        throw new Error(`supra: ${file}: tensor ${p.name} has shape [${shape.join(', ')}], the config expects [${p.shape.join(', ')}]`);
      }
      if (!FLOAT_DTYPES.has(dtype)) throw new Error(`supra: ${file}: tensor ${p.name} has dtype ${dtype}, expected a float tensor`);
      try {
        readStored(source, p.name, storedWeight(p));
      } catch (e) {
        // a value the weight type cannot hold (int8: NaN, ±Infinity): say which tensor of which file
        if (e instanceof RangeError && /cannot hold/.test(e.message)) throw new Error(`supra: ${file}: tensor ${p.name}: ${e.message.replace(/^supra: /, '')}`);
        throw e;
      }
    }
    if (missing.length > 0) {
      const shown = missing.slice(0, 8).join(', ') + (missing.length > 8 ? `, … (${missing.length} in all)` : '');
      throw new Error(`supra: ${sourceName}: missing tensor${missing.length > 1 ? 's' : ''} ${shown}`);
    }
    return { unexpected: source.names().filter((n) => !this.byName.has(n)) };
  }

  free(): void {
    for (const p of this.byName.values()) freeParam(p);
    this.byName.clear();
  }
}
