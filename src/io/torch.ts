// PyTorch checkpoints (pytorch_model.bin, *.pt) read and written without Python.
//
// Since PyTorch 1.6, torch.save writes a zip archive whose entries all sit under one folder (the
// "archive name", e.g. "archive/" or "pytorch_model/"):
//   <archive>/data.pkl      a protocol-2 pickle of the object; each tensor is a call
//                           torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)
//                           whose storage is a persistent id ('storage', torch.FloatStorage, key, 'cpu', numel)
//   <archive>/data/<key>    the raw little-endian bytes of each storage
//   <archive>/version       the format version ("3")
//   <archive>/byteorder     "little" (newer PyTorch)
// Tensors are views: several may share one storage (tied weights, slices), start at an element offset and
// have arbitrary strides; the reader materialises each as a dense row-major Float32Array.
import { closeSync, openSync, readSync } from './files.js';
import { bf16ToF32Array, checkFinite, f16ToF32Array, f32ToBf16Array, f32ToF16Array } from './dtype.js';
import { PickleWriter, isTensorRef, unpickle, type PickleValue, type StorageRef, type TensorRef } from './pickle.js';
import { ZipReader, ZipWriter } from './zip.js';

export type TorchDType = 'F32' | 'F16' | 'BF16';

export interface TorchTensor {
  /** The dtype of the storage in the file (values are always returned widened to float32). */
  dtype: TorchDType;
  shape: number[];
  data: Float32Array;
}

export interface WritableTensor {
  shape: number[];
  /**
   * The values, or a function giving them, called once when the writer reaches the tensor's storage, so a
   * checkpoint larger than memory is written holding one tensor at a time (convert streams this way).
   */
  data: Float32Array | (() => Float32Array);
}

const STORAGE_DTYPES: Record<string, { dtype: TorchDType; bytes: number; cls: string }> = {
  FloatStorage: { dtype: 'F32', bytes: 4, cls: 'FloatStorage' },
  HalfStorage: { dtype: 'F16', bytes: 2, cls: 'HalfStorage' },
  BFloat16Storage: { dtype: 'BF16', bytes: 2, cls: 'BFloat16Storage' },
};
const STORAGE_CLASS_OF: Record<TorchDType, string> = { F32: 'FloatStorage', F16: 'HalfStorage', BF16: 'BFloat16Storage' };
const BYTES_OF: Record<TorchDType, number> = { F32: 4, F16: 2, BF16: 2 };

function numelOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function contiguousStrides(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/** The archive folder: the prefix of the single "<prefix>/data.pkl" entry. */
function archivePrefix(zip: ZipReader): string {
  const pkls = zip.names().filter((n) => n.endsWith('/data.pkl') && n.indexOf('/') === n.length - '/data.pkl'.length);
  if (pkls.length === 0) {
    throw new Error(`supra: ${zip.path}: not a PyTorch checkpoint (no <archive>/data.pkl entry; found ${zip.names().slice(0, 5).join(', ') || 'no entries'})`);
  }
  if (pkls.length > 1) throw new Error(`supra: ${zip.path}: several data.pkl entries (${pkls.join(', ')})`);
  return pkls[0]!.slice(0, -'data.pkl'.length);
}

function describe(v: PickleValue): string {
  if (v instanceof Map) return `a dict with keys ${[...v.keys()].slice(0, 8).map((k) => JSON.stringify(String(k))).join(', ')}`;
  if (Array.isArray(v)) return 'a list';
  if (isTensorRef(v)) return 'a single tensor';
  return `a ${typeof v}`;
}

/** The state dict inside the unpickled object: the object itself, or its "state_dict"/"model" entry. */
function findStateDict(obj: PickleValue, path: string): Map<PickleValue, PickleValue> {
  if (!(obj instanceof Map)) throw new Error(`supra: ${path}: expected a state dict (a dict of tensors), found ${describe(obj)}`);
  const values = [...obj.values()];
  if (values.length > 0 && values.every(isTensorRef)) return obj;
  for (const key of ['state_dict', 'model', 'module']) {
    const inner = obj.get(key);
    if (inner instanceof Map && [...inner.values()].some(isTensorRef)) return findStateDict(inner, path);
  }
  if (values.length === 0) return obj;
  const bad = [...obj.entries()].find(([, v]) => !isTensorRef(v))!;
  throw new Error(`supra: ${path}: entry ${JSON.stringify(String(bad[0]))} of the state dict is not a tensor (found ${describe(bad[1])})`);
}

/** Decode a storage's bytes to float32. */
function decodeStorage(bytes: Uint8Array, dtype: TorchDType): Float32Array {
  if (dtype === 'F32') return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const n = bytes.byteLength / 2;
  const src = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
  const out = new Float32Array(n);
  const dst = new Uint32Array(out.buffer);
  if (dtype === 'F16') f16ToF32Array(src, dst);
  else bf16ToF32Array(src, dst);
  return out;
}

/** Copy the strided view (offset, size, stride) of `storage` into `out`, dense and row-major. */
function gather(storage: Float32Array, offset: number, size: number[], stride: number[], out: Float32Array): Float32Array {
  const n = numelOf(size);
  if (n === 0) return out;
  const rank = size.length;
  if (rank === 0) {
    out[0] = storage[offset]!;
    return out;
  }
  const innerSize = size[rank - 1]!;
  const innerStride = stride[rank - 1]!;
  const idx = new Array<number>(rank - 1).fill(0);
  let base = offset;
  for (let o = 0; o < n; o += innerSize) {
    if (innerStride === 1) out.set(storage.subarray(base, base + innerSize), o);
    else for (let j = 0; j < innerSize; j++) out[o + j] = storage[base + j * innerStride]!;
    // advance the outer multi-index (odometer), keeping `base` in step
    for (let d = rank - 2; d >= 0; d--) {
      idx[d]!++;
      base += stride[d]!;
      if (idx[d]! < size[d]!) break;
      base -= stride[d]! * size[d]!;
      idx[d] = 0;
    }
  }
  return out;
}

function checkView(t: TensorRef, name: string, path: string): void {
  const bad = (msg: string): never => {
    throw new Error(`supra: ${path}: tensor ${JSON.stringify(name)}: ${msg}`);
  };
  if (t.size.some((s) => s < 0)) bad(`negative size ${JSON.stringify(t.size)}`);
  if (t.stride.some((s) => s < 0)) bad(`negative stride ${JSON.stringify(t.stride)}`);
  if (t.storageOffset < 0) bad(`negative storage offset ${t.storageOffset}`);
  if (numelOf(t.size) === 0) return;
  let last = t.storageOffset;
  for (let d = 0; d < t.size.length; d++) last += (t.size[d]! - 1) * t.stride[d]!;
  if (last >= t.storage.numel) {
    bad(`view (offset ${t.storageOffset}, size ${JSON.stringify(t.size)}, stride ${JSON.stringify(t.stride)}) reaches element ${last} of a storage of ${t.storage.numel}`);
  }
}

function isZip(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(4);
    const n = readSync(fd, head, 0, 4, 0);
    if (n >= 2 && head[0] === 0x80 && head[1]! <= 5) {
      throw new Error(
        `supra: ${path}: this is PyTorch's legacy (pre-1.6, non-zip) checkpoint format, which supra does not read; re-save it with torch.save(sd, path) from PyTorch >= 1.6`,
      );
    }
    return n === 4 && head.readUInt32LE(0) === 0x04034b50;
  } finally {
    closeSync(fd);
  }
}

interface TorchEntry {
  dtype: TorchDType;
  ref: TensorRef;
  /** The zip entry holding its storage. */
  entry: string;
  /** The view covers its storage exactly, in row-major order: the storage's values are the tensor's. */
  coversStorage: boolean;
  /** Its storage's last view, and coversStorage: reading every tensor, it can take the decoded storage itself. */
  wholeStorage: boolean;
}

/**
 * Parse and check a PyTorch zip checkpoint without reading any storage: the pickle (a state dict, or a
 * dict holding one under "state_dict" (open_lm) or "model"), each tensor's storage type (F32/F16/BF16
 * only), view bounds, and that its storage entry exists with the right size. Returns the open archive.
 */
function openTorchCheckpoint(path: string): { zip: ZipReader; tensors: Map<string, TorchEntry> } {
  if (!isZip(path)) throw new Error(`supra: ${path}: not a PyTorch zip checkpoint (no zip signature at the start)`);
  const zip = ZipReader.open(path);
  try {
    const prefix = archivePrefix(zip);
    if (zip.has(`${prefix}byteorder`)) {
      const order = Buffer.from(zip.read(`${prefix}byteorder`)).toString('latin1').trim();
      if (order !== 'little') throw new Error(`supra: ${path}: byteorder "${order}" is not supported (little-endian only)`);
    }
    const obj = unpickle(zip.read(`${prefix}data.pkl`), `${path}:${prefix}data.pkl`);
    const sd = findStateDict(obj, path);
    const storageType = new Map<string, StorageRef>();
    for (const [k, v] of sd) {
      if (typeof k !== 'string') throw new Error(`supra: ${path}: a state dict key is not a string (${String(k)})`);
      const t = v as TensorRef;
      const info = STORAGE_DTYPES[t.storage.storageType];
      if (!info) {
        throw new Error(`supra: ${path}: tensor ${JSON.stringify(k)} is stored as torch.${t.storage.storageType}; supra reads only float32, float16 and bfloat16 tensors`);
      }
      checkView(t, k, path);
      const seen = storageType.get(t.storage.key);
      if (seen && (seen.storageType !== t.storage.storageType || seen.numel !== t.storage.numel)) {
        throw new Error(`supra: ${path}: storage ${t.storage.key} is described two different ways`);
      }
      storageType.set(t.storage.key, t.storage);
    }
    const tensors = new Map<string, TorchEntry>();
    const lastViewOf = new Map<string, string>();
    for (const [k, v] of sd) lastViewOf.set((v as TensorRef).storage.key, k as string);
    for (const [k, v] of sd) {
      const name = k as string;
      const t = v as TensorRef;
      const { dtype, bytes } = STORAGE_DTYPES[t.storage.storageType]!;
      const entry = `${prefix}data/${t.storage.key}`;
      const stored = zip.entries.get(entry);
      if (!stored) throw new Error(`supra: ${path}: tensor ${JSON.stringify(name)} needs storage ${entry}, which the archive lacks`);
      if (stored.size !== t.storage.numel * bytes) {
        throw new Error(`supra: ${path}: storage ${entry} holds ${stored.size} bytes, expected ${t.storage.numel} ${dtype} elements (${t.storage.numel * bytes} bytes)`);
      }
      const dense = contiguousStrides(t.size);
      const coversStorage = t.storageOffset === 0 && numelOf(t.size) === t.storage.numel && t.stride.every((s, i) => s === dense[i] || t.size[i] === 1);
      tensors.set(name, { dtype, ref: t, entry, coversStorage, wholeStorage: coversStorage && lastViewOf.get(t.storage.key) === name });
    }
    return { zip, tensors };
  } catch (e) {
    zip.close();
    throw e;
  }
}

/** A storage's values as float32 (its bytes read and CRC-checked from the archive). */
function readStorage(zip: ZipReader, t: TorchEntry): Float32Array {
  return decodeStorage(zip.read(t.entry), t.dtype);
}

/**
 * Read every tensor of a PyTorch zip checkpoint, as float32. The pickle may be a state dict or a dict that
 * holds one under "state_dict" (open_lm) or "model". Only F32/F16/BF16 storages are accepted.
 */
export function readTorchCheckpoint(path: string): Map<string, TorchTensor> {
  const { zip, tensors } = openTorchCheckpoint(path);
  try {
    // each storage is read once, and dropped once its last view is built
    const cache = new Map<string, Float32Array>();
    const out = new Map<string, TorchTensor>();
    for (const [name, t] of tensors) {
      const key = t.ref.storage.key;
      let storage = cache.get(key);
      if (!storage) {
        storage = readStorage(zip, t);
        cache.set(key, storage);
      }
      if (t.wholeStorage) cache.delete(key);
      const data = t.wholeStorage ? storage : gather(storage, t.ref.storageOffset, t.ref.size, t.ref.stride, new Float32Array(numelOf(t.ref.size)));
      out.set(name, { dtype: t.dtype, shape: [...t.ref.size], data });
    }
    return out;
  } finally {
    zip.close();
  }
}

/**
 * A PyTorch checkpoint opened for reading tensors by name, with SafetensorsFile's methods, so that a
 * folder of either kind reads the same way (io/checkpoint.ts). Opening parses and checks the pickle;
 * each read then takes one storage from the archive, so loading a model holds one tensor's bytes
 * beside it, not a decoded copy of the whole file (a storage shared by several tensors is read for each).
 */
export class TorchFile {
  readonly path: string;
  private zip: ZipReader | null;
  private readonly tensors: Map<string, TorchEntry>;

  private constructor(path: string, zip: ZipReader, tensors: Map<string, TorchEntry>) {
    this.path = path;
    this.zip = zip;
    this.tensors = tensors;
  }

  static open(path: string): TorchFile {
    const { zip, tensors } = openTorchCheckpoint(path);
    return new TorchFile(path, zip, tensors);
  }

  /** Tensor names in the state dict's order. */
  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): { dtype: TorchDType; shape: number[]; numel: number } {
    const t = this.entry(name);
    return { dtype: t.dtype, shape: [...t.ref.size], numel: numelOf(t.ref.size) };
  }

  private entry(name: string): TorchEntry {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`supra: ${this.path}: no tensor '${name}'`);
    return t;
  }

  /** Copy a tensor into `dest` (numel long; may be an arena buffer); `requireFinite` refuses NaN/±Inf. */
  readInto(name: string, dest: Float32Array, options: { requireFinite?: boolean } = {}): Float32Array {
    const t = this.entry(name);
    const n = numelOf(t.ref.size);
    if (dest.length !== n) {
      throw new Error(`supra: ${this.path}: tensor '${name}' has ${n} values (shape [${t.ref.size.join(', ')}]), destination holds ${dest.length}`);
    }
    if (!this.zip) throw new Error(`supra: ${this.path}: file is closed`);
    if (t.coversStorage && t.dtype === 'F32') {
      this.zip.read(t.entry, new Uint8Array(dest.buffer, dest.byteOffset, dest.byteLength)); // in place
    } else if (t.coversStorage) {
      // F16/BF16 converted piece by piece into place
      const bits = new Uint32Array(dest.buffer, dest.byteOffset, n);
      const widen = t.dtype === 'F16' ? f16ToF32Array : bf16ToF32Array;
      this.zip.readPieces(t.entry, (piece, offset) => {
        widen(new Uint16Array(piece.buffer, piece.byteOffset, piece.length / 2), bits.subarray(offset / 2, (offset + piece.length) / 2));
      });
    } else {
      gather(readStorage(this.zip, t), t.ref.storageOffset, t.ref.size, t.ref.stride, dest);
    }
    if (options.requireFinite) checkFinite(dest, this.path, name);
    return dest;
  }

  /** A fresh float32 array holding the tensor. */
  readF32(name: string, options: { requireFinite?: boolean } = {}): Float32Array {
    return this.readInto(name, new Float32Array(numelOf(this.entry(name).ref.size)), options);
  }

  /** PyTorch checkpoints hold only float tensors here (the reader refuses the others). */
  readI32(name: string): Int32Array {
    throw new Error(`supra: ${this.path}: tensor '${name}' is ${this.entry(name).dtype}, not an integer tensor (use readF32)`);
  }

  close(): void {
    this.zip?.close();
    this.zip = null;
  }
}

export interface WriteTorchOptions {
  /** Storage dtype in the file; values are rounded to nearest even. Default F32. */
  dtype?: TorchDType;
  /** Archive folder name inside the zip. Default "archive" (what torch.save uses). */
  archiveName?: string;
}

function checkLength(path: string, name: string, shape: number[], data: Float32Array): void {
  if (!(data instanceof Float32Array)) throw new Error(`supra: ${path}: tensor ${JSON.stringify(name)}: data must be a Float32Array`);
  if (numelOf(shape) !== data.length) {
    throw new Error(`supra: ${path}: tensor ${JSON.stringify(name)}: shape ${JSON.stringify(shape)} holds ${numelOf(shape)} values, data has ${data.length}`);
  }
}

/** Bytes of `data` as stored in `dtype`. */
function encode(data: Float32Array, dtype: TorchDType): Uint8Array {
  if (dtype === 'F32') {
    const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    // shared (arena) memory is copied so fs/zlib see an ordinary buffer
    return data.buffer instanceof ArrayBuffer ? view : new Uint8Array(view);
  }
  const src = new Uint32Array(data.buffer, data.byteOffset, data.length);
  const out = new Uint16Array(data.length);
  if (dtype === 'BF16') f32ToBf16Array(src, out);
  else f32ToF16Array(src, out);
  return new Uint8Array(out.buffer);
}

/**
 * Write `tensors` as a PyTorch zip checkpoint that torch.load reads (weights_only=True included): an
 * OrderedDict of contiguous tensors. Tensors given the same Float32Array, or the same data function,
 * share one storage (tied weights). Each tensor's `data` is looked at once; a function is called when
 * its storage is written. Written to a temporary name and renamed into place.
 */
export function writeTorchCheckpoint(path: string, tensors: ReadonlyMap<string, WritableTensor>, options: WriteTorchOptions = {}): void {
  const dtype = options.dtype ?? 'F32';
  if (!(dtype in BYTES_OF)) throw new Error(`supra: ${path}: cannot write dtype ${String(dtype)} (F32, F16 or BF16)`);
  const archive = options.archiveName ?? 'archive';
  if (!/^[A-Za-z0-9_.-]+$/.test(archive) || archive === '.' || archive === '..') throw new Error(`supra: ${path}: bad archive name ${JSON.stringify(archive)}`);
  // storage keys: one per distinct data array or function
  type Source = Float32Array | (() => Float32Array);
  const keyOf = new Map<Source, string>();
  const storages: Array<{ name: string; shape: number[]; data: Source; numel: number }> = [];
  const list = [...tensors].map(([name, t]) => {
    if (!t.shape.every((s) => Number.isInteger(s) && s >= 0)) throw new Error(`supra: ${path}: tensor ${JSON.stringify(name)} has a bad shape ${JSON.stringify(t.shape)}`);
    const data = t.data; // once: a getter may build the values each time it is asked
    const numel = numelOf(t.shape);
    if (typeof data !== 'function') checkLength(path, name, t.shape, data);
    let key = keyOf.get(data);
    if (key === undefined) {
      key = String(storages.length);
      keyOf.set(data, key);
      storages.push({ name, shape: t.shape, data, numel });
    } else if (storages[Number(key)]!.numel !== numel) {
      throw new Error(`supra: ${path}: tensor ${JSON.stringify(name)} shares its data with ${JSON.stringify(storages[Number(key)]!.name)} but has ${numel} values, not ${storages[Number(key)]!.numel}`);
    }
    return { name, shape: t.shape, key, numel };
  });
  const p = new PickleWriter();
  p.global('collections', 'OrderedDict');
  p.emptyTuple();
  p.reduce();
  p.memoize();
  let inBatch = 0;
  for (const t of list) {
    if (inBatch === 0) p.mark();
    p.str(t.name);
    p.global('torch._utils', '_rebuild_tensor_v2');
    p.mark();
    {
      p.mark(); // persistent id tuple
      p.str('storage');
      p.global('torch', STORAGE_CLASS_OF[dtype]);
      p.str(t.key);
      p.str('cpu');
      p.int(t.numel);
      p.tuple();
      p.persid();
      p.int(0); // storage offset
      p.intTuple(t.shape);
      p.intTuple(contiguousStrides(t.shape));
      p.bool(false); // requires_grad
      p.global('collections', 'OrderedDict'); // backward hooks: OrderedDict()
      p.emptyTuple();
      p.reduce();
    }
    p.tuple();
    p.reduce();
    if (++inBatch === 1000) {
      p.setitems(); // Python batches SETITEMS by 1000 too
      inBatch = 0;
    }
  }
  if (inBatch > 0) p.setitems();
  p.stop();

  const zip = new ZipWriter(path);
  try {
    zip.add(`${archive}/data.pkl`, p.bytes());
    zip.add(`${archive}/byteorder`, Buffer.from('little'));
    storages.forEach(({ name, shape, data }, i) => {
      const values = typeof data === 'function' ? data() : data;
      if (typeof data === 'function') checkLength(path, name, shape, values);
      zip.add(`${archive}/data/${i}`, encode(values, dtype));
    });
    zip.add(`${archive}/version`, Buffer.from('3\n'));
    zip.finish();
  } catch (e) {
    zip.abort();
    throw e;
  }
}
