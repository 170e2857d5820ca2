// safetensors files: a validating, streaming reader and an atomic, streaming writer.
//
// Layout: 8 bytes little-endian u64 N, then N bytes of UTF-8 JSON
//   { "__metadata__": {string: string}?, "<name>": {"dtype", "shape", "data_offsets": [begin, end]}, ... }
// then the data area; offsets are relative to its start (byte 8 + N).
//
// Reading never holds a file twice: the header is read with fs.readSync, then each tensor's bytes go
// straight into the caller's Float32Array (which may be an arena buffer) for F32, or through one bounded
// chunk buffer for the dtypes that need converting. Floats come out as float32, integers as int32.
import { AtomicFile } from './atomic.js';
import { closeSync, existsSync, fstatSync, openSync, readSync } from './files.js';
import {
  bf16ToF32Array,
  countNonFinite,
  f16ToF32Array,
  f32ToBf16Array,
  f32ToF16Array,
  nonFiniteError,
} from './dtype.js';

export type DType = 'F32' | 'F16' | 'BF16' | 'F64' | 'I32' | 'I64' | 'U8' | 'BOOL';

/** Bytes per element of each dtype this reader understands. */
export const DTYPE_SIZE: Readonly<Record<DType, number>> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  F64: 8,
  I32: 4,
  I64: 8,
  U8: 1,
  BOOL: 1,
};

const FLOAT_DTYPES: ReadonlySet<DType> = new Set<DType>(['F32', 'F16', 'BF16', 'F64']);

export function isFloatDType(dtype: DType): boolean {
  return FLOAT_DTYPES.has(dtype);
}

export interface StoredTensor {
  dtype: DType;
  shape: number[];
  /** Values as float32 (F32, F16, BF16, F64) or int32 (I32, I64 within int32 range, U8, BOOL). */
  data: Float32Array | Int32Array;
}

export interface TensorInfo {
  dtype: DType;
  shape: number[];
  /** Number of elements (product of shape; 1 for a scalar). */
  numel: number;
  /** Byte range inside the data area. */
  begin: number;
  end: number;
}

/** Header bounds: HF rejects headers over 100 MB, so do we. */
export const MAX_HEADER_BYTES = 100_000_000;
/** Conversion chunk for F16/BF16/F64/integers, in bytes (a multiple of 8). */
const CHUNK_BYTES = 1 << 20;
/** Largest single read; Node caps one call at 2^31-1 bytes. */
const MAX_IO_BYTES = 1 << 30;

// One conversion buffer for every read: a new one per tensor would leave hundreds of 1 MiB buffers
// for the garbage collector while a model loads (reads are synchronous, so one is enough).
let chunkBuffer: Uint8Array | null = null;
function conversionChunk(bytes: number): Uint8Array {
  chunkBuffer ??= new Uint8Array(CHUNK_BYTES);
  return chunkBuffer.subarray(0, bytes);
}

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error('supra: safetensors I/O assumes a little-endian host');
}

function shapeStr(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

/** Read exactly `length` bytes at `position` into `dest` (looping over short reads). */
function readFully(fd: number, dest: Uint8Array, position: number, path: string, what: string): void {
  let done = 0;
  while (done < dest.length) {
    const want = Math.min(dest.length - done, MAX_IO_BYTES);
    const got = readSync(fd, dest, done, want, position + done);
    if (got === 0) throw new Error(`supra: ${path}: unexpected end of file while reading ${what}`);
    done += got;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Parse and validate a header; `dataBytes` is the size of the data area. Exported for tests/tools. */
export function parseSafetensorsHeader(
  headerBytes: Uint8Array,
  dataBytes: number,
  path: string,
): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new Error(`supra: ${path}: header is not valid UTF-8`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`supra: ${path}: header is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(json)) throw new Error(`supra: ${path}: header must be a JSON object, got ${Array.isArray(json) ? 'an array' : typeof json}`);

  const metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  for (const [name, entry] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isPlainObject(entry)) throw new Error(`supra: ${path}: __metadata__ must be an object of strings`);
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') throw new Error(`supra: ${path}: __metadata__ key '${k}' must be a string, got ${JSON.stringify(v)}`);
        metadata[k] = v;
      }
      continue;
    }
    const where = `supra: ${path}: tensor '${name}'`;
    if (!isPlainObject(entry)) throw new Error(`${where}: entry must be an object with dtype, shape, data_offsets`);
    const dtype = entry.dtype;
    if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_SIZE, dtype)) {
      throw new Error(`${where}: unknown dtype ${JSON.stringify(dtype)} (supra reads ${Object.keys(DTYPE_SIZE).join(', ')})`);
    }
    const shape = entry.shape;
    if (!Array.isArray(shape) || !shape.every(isNonNegInt)) {
      throw new Error(`${where}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
    }
    const offsets = entry.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegInt)) {
      throw new Error(`${where}: data_offsets must be [begin, end] non-negative integers, got ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) throw new Error(`${where}: data_offsets [${begin},${end}] end before begin`);
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    const size = DTYPE_SIZE[dtype as DType];
    if (!Number.isSafeInteger(numel * size)) throw new Error(`${where}: shape ${shapeStr(shape as number[])} is too large`);
    if (end - begin !== numel * size) {
      throw new Error(
        `${where} declares ${end - begin} bytes but shape ${shapeStr(shape as number[])} of ${dtype} needs ${numel * size}`,
      );
    }
    if (end > dataBytes) {
      throw new Error(
        `${where}: data_offsets [${begin},${end}] lie outside the data area of ${dataBytes} bytes (file truncated?)`,
      );
    }
    tensors.set(name, { dtype: dtype as DType, shape: [...(shape as number[])], numel, begin, end });
  }

  // No two tensors may share bytes. Empty tensors own no bytes and cannot overlap anything.
  const ranges = [...tensors].filter(([, t]) => t.end > t.begin).sort((a, b) => a[1].begin - b[1].begin);
  for (let i = 1; i < ranges.length; i++) {
    const [prevName, prev] = ranges[i - 1]!;
    const [name, cur] = ranges[i]!;
    if (cur.begin < prev.end) {
      throw new Error(
        `supra: ${path}: tensor '${name}' bytes [${cur.begin},${cur.end}] overlap tensor '${prevName}' [${prev.begin},${prev.end}]`,
      );
    }
  }
  return { tensors, metadata };
}

export interface ReadOptions {
  /** Refuse a float tensor holding NaN or ±Inf (model weights); off for data that may hold them. */
  requireFinite?: boolean;
}

/** An open safetensors file: validated header, tensors read on demand. */
export class SafetensorsFile {
  readonly path: string;
  readonly metadata: Readonly<Record<string, string>>;
  /** Absolute file offset of the data area. */
  readonly dataStart: number;
  private fd: number;
  private readonly tensors: Map<string, TensorInfo>;

  private constructor(path: string, fd: number, dataStart: number, tensors: Map<string, TensorInfo>, metadata: Record<string, string>) {
    this.path = path;
    this.fd = fd;
    this.dataStart = dataStart;
    this.tensors = tensors;
    this.metadata = metadata;
  }

  /** Open and validate; throws an Error naming the file and the problem. */
  static open(path: string): SafetensorsFile {
    if (!existsSync(path)) throw new Error(`supra: ${path}: not found (expected a safetensors file)`);
    const fd = openSync(path, 'r');
    try {
      const stat = fstatSync(fd);
      if (!stat.isFile()) throw new Error(`supra: ${path}: not a regular file (expected a safetensors file)`);
      const fileSize = stat.size;
      if (fileSize < 8) {
        throw new Error(`supra: ${path}: truncated: ${fileSize} bytes, a safetensors file starts with an 8-byte header length`);
      }
      const lenBytes = new Uint8Array(8);
      readFully(fd, lenBytes, 0, path, 'the header length');
      const headerLen = new DataView(lenBytes.buffer).getBigUint64(0, true);
      if (headerLen > BigInt(MAX_HEADER_BYTES)) {
        throw new Error(`supra: ${path}: header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit (not a safetensors file?)`);
      }
      if (headerLen > BigInt(fileSize - 8)) {
        throw new Error(`supra: ${path}: header length ${headerLen} is larger than the ${fileSize - 8} bytes after it (file truncated?)`);
      }
      const n = Number(headerLen);
      if (n < 2) throw new Error(`supra: ${path}: header of ${n} bytes cannot hold a JSON object`);
      const headerBytes = new Uint8Array(n);
      readFully(fd, headerBytes, 8, path, 'the header');
      const dataStart = 8 + n;
      const { tensors, metadata } = parseSafetensorsHeader(headerBytes, fileSize - dataStart, path);
      return new SafetensorsFile(path, fd, dataStart, tensors, metadata);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /** Tensor names in the order the header lists them. */
  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  /** dtype, shape, numel and byte range of a tensor (a copy: safe to keep or modify). */
  info(name: string): TensorInfo {
    const t = this.entry(name);
    return { ...t, shape: [...t.shape] };
  }

  private entry(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`supra: ${this.path}: no tensor '${name}'`);
    return t;
  }

  private checkOpen(): void {
    if (this.fd < 0) throw new Error(`supra: ${this.path}: file is closed`);
  }

  /** The tensor's stored bytes, unconverted (for copying tensors between files). */
  readRaw(name: string, dest?: Uint8Array): Uint8Array {
    this.checkOpen();
    const t = this.entry(name);
    const bytes = dest ?? new Uint8Array(t.end - t.begin);
    if (bytes.length !== t.end - t.begin) {
      throw new Error(`supra: ${this.path}: tensor '${name}' has ${t.end - t.begin} bytes, destination holds ${bytes.length}`);
    }
    readFully(this.fd, bytes, this.dataStart + t.begin, this.path, `tensor '${name}'`);
    return bytes;
  }

  /** The entry of a float tensor read into a destination of `destLength` values (which must be its numel). */
  private floatEntry(name: string, destLength: number) {
    this.checkOpen();
    const t = this.entry(name);
    if (!isFloatDType(t.dtype)) {
      throw new Error(`supra: ${this.path}: tensor '${name}' is ${t.dtype}, not a float tensor (use readI32)`);
    }
    if (destLength !== t.numel) {
      throw new Error(`supra: ${this.path}: tensor '${name}' has ${t.numel} values (shape ${shapeStr(t.shape)}), destination holds ${destLength}`);
    }
    return t;
  }

  /**
   * Read a float tensor into `dest` (float32, exactly numel long; may be an arena buffer).
   * F32 bytes land directly in dest; F16/BF16/F64 pass through one bounded chunk buffer. With
   * `requireFinite`, a tensor holding NaN or ±Inf (after conversion) is an error naming the file, the
   * tensor, how many and where the first is; each chunk is checked right after it is converted.
   */
  readInto(name: string, dest: Float32Array, options: ReadOptions = {}): Float32Array {
    const t = this.floatEntry(name, dest.length);
    const start = this.dataStart + t.begin;
    const what = `tensor '${name}'`;
    const destBits = new Uint32Array(dest.buffer, dest.byteOffset, dest.length);
    let bad = 0;
    let firstBad = -1;
    const tally = (from: number, count: number) => {
      if (!options.requireFinite) return;
      const r = countNonFinite(destBits.subarray(from, from + count));
      if (r.count > 0 && bad === 0) firstBad = from + r.first;
      bad += r.count;
    };
    if (t.dtype === 'F32') {
      readFully(this.fd, new Uint8Array(dest.buffer, dest.byteOffset, dest.byteLength), start, this.path, what);
      tally(0, t.numel);
    } else {
      const size = DTYPE_SIZE[t.dtype];
      const chunk = conversionChunk(Math.min(CHUNK_BYTES, t.end - t.begin));
      const perChunk = chunk.length / size;
      for (let i = 0; i < t.numel; i += perChunk) {
        const count = Math.min(perChunk, t.numel - i);
        const bytes = chunk.subarray(0, count * size);
        readFully(this.fd, bytes, start + i * size, this.path, what);
        if (t.dtype === 'F16') f16ToF32Array(new Uint16Array(chunk.buffer, 0, count), destBits.subarray(i, i + count));
        else if (t.dtype === 'BF16') bf16ToF32Array(new Uint16Array(chunk.buffer, 0, count), destBits.subarray(i, i + count));
        else dest.set(new Float64Array(chunk.buffer, 0, count), i); // F64 -> F32 rounds to nearest (huge values become Inf)
        tally(i, count);
      }
    }
    if (bad > 0) throw nonFiniteError(this.path, name, bad, firstBad);
    return dest;
  }

  /**
   * Read a float tensor into `dest` as BF16 bits (exactly numel long; may be an arena buffer): a BF16
   * tensor's bytes land directly in dest, other float dtypes pass through one bounded chunk, widened to
   * float32 and rounded to nearest even (as PyTorch's .to(torch.bfloat16)). `requireFinite` checks the
   * result, so a float32 value past the largest BF16 (rounded to ±Inf) is an error too.
   */
  readBf16Into(name: string, dest: Uint16Array, options: ReadOptions = {}): Uint16Array {
    const t = this.floatEntry(name, dest.length);
    const start = this.dataStart + t.begin;
    const what = `tensor '${name}'`;
    if (t.dtype === 'BF16') {
      readFully(this.fd, new Uint8Array(dest.buffer, dest.byteOffset, dest.byteLength), start, this.path, what);
    } else {
      const size = DTYPE_SIZE[t.dtype];
      const chunk = new Uint8Array(Math.min(CHUNK_BYTES, t.end - t.begin));
      const perChunk = chunk.length / size;
      const wide = t.dtype === 'F32' ? null : new Uint32Array(perChunk);
      for (let i = 0; i < t.numel; i += perChunk) {
        const count = Math.min(perChunk, t.numel - i);
        readFully(this.fd, chunk.subarray(0, count * size), start + i * size, this.path, what);
        let bits: Uint32Array;
        if (!wide) bits = new Uint32Array(chunk.buffer, 0, count);
        else {
          bits = wide.subarray(0, count);
          if (t.dtype === 'F16') f16ToF32Array(new Uint16Array(chunk.buffer, 0, count), bits);
          else new Float32Array(bits.buffer, 0, count).set(new Float64Array(chunk.buffer, 0, count)); // F64 -> F32 -> BF16, as PyTorch
        }
        f32ToBf16Array(bits, dest.subarray(i, i + count));
      }
    }
    if (options.requireFinite) {
      let bad = 0;
      let firstBad = -1;
      for (let i = 0; i < dest.length; i++) {
        if ((dest[i]! & 0x7f80) === 0x7f80) {
          if (bad === 0) firstBad = i;
          bad++;
        }
      }
      if (bad > 0) throw nonFiniteError(this.path, name, bad, firstBad);
    }
    return dest;
  }

  /** A fresh float32 array (ordinary heap) holding the tensor. */
  readF32(name: string, options: ReadOptions = {}): Float32Array {
    return this.readInto(name, new Float32Array(this.entry(name).numel), options);
  }

  /** Read an integer tensor (I32, I64, U8, BOOL) as int32. I64 values outside int32 are an error. */
  readI32(name: string, dest?: Int32Array): Int32Array {
    this.checkOpen();
    const t = this.entry(name);
    if (isFloatDType(t.dtype)) throw new Error(`supra: ${this.path}: tensor '${name}' is ${t.dtype}, not an integer tensor (use readF32)`);
    const out = dest ?? new Int32Array(t.numel);
    if (out.length !== t.numel) {
      throw new Error(`supra: ${this.path}: tensor '${name}' has ${t.numel} values, destination holds ${out.length}`);
    }
    const start = this.dataStart + t.begin;
    const what = `tensor '${name}'`;
    if (t.dtype === 'I32') {
      readFully(this.fd, new Uint8Array(out.buffer, out.byteOffset, out.byteLength), start, this.path, what);
      return out;
    }
    const size = DTYPE_SIZE[t.dtype];
    const chunk = conversionChunk(Math.min(CHUNK_BYTES, t.end - t.begin));
    const perChunk = chunk.length / size;
    for (let i = 0; i < t.numel; i += perChunk) {
      const count = Math.min(perChunk, t.numel - i);
      readFully(this.fd, chunk.subarray(0, count * size), start + i * size, this.path, what);
      if (t.dtype === 'I64') {
        const v = new BigInt64Array(chunk.buffer, 0, count);
        for (let j = 0; j < count; j++) {
          const x = v[j]!;
          if (x < -2147483648n || x > 2147483647n) {
            throw new Error(`supra: ${this.path}: tensor '${name}' element ${i + j} = ${x} does not fit in int32`);
          }
          out[i + j] = Number(x);
        }
      } else {
        // U8 and BOOL: one byte each
        out.set(chunk.subarray(0, count), i);
      }
    }
    return out;
  }

  close(): void {
    if (this.fd >= 0) {
      closeSync(this.fd);
      this.fd = -1;
    }
  }
}

/** Read every tensor of a file into heap arrays: floats as float32, integers as int32. */
export function readSafetensors(path: string, options: ReadOptions = {}): Map<string, StoredTensor> {
  const file = SafetensorsFile.open(path);
  try {
    const out = new Map<string, StoredTensor>();
    for (const name of file.names()) {
      const { dtype, shape } = file.info(name);
      out.set(name, { dtype, shape: [...shape], data: isFloatDType(dtype) ? file.readF32(name, options) : file.readI32(name) });
    }
    return out;
  } finally {
    file.close();
  }
}

// ---- writer ----------------------------------------------------------------------------------

export type WriteDType = 'F32' | 'F16' | 'BF16' | 'I32';

export type TensorData = Float32Array | Int32Array;

export interface TensorToWrite {
  name: string;
  shape: readonly number[];
  /**
   * Float32Array for F32/F16/BF16 (converted on write), Int32Array for I32; or a function giving them,
   * called once when the writer reaches the tensor, so that a file far larger than memory is written
   * holding one tensor at a time (linearize streams a teacher this way).
   */
  data: TensorData | (() => TensorData);
  /** Stored dtype; default F32 for float data, I32 for int data (a function's data: F32 unless given). */
  dtype?: WriteDType;
}

export type TensorsToWrite =
  | ReadonlyMap<string, Omit<TensorToWrite, 'name'>>
  | ReadonlyArray<TensorToWrite>;

export interface WriteOptions {
  /** Called after each tensor is written (bytes so far, total bytes); throwing aborts the write. */
  onProgress?: (bytesWritten: number, totalBytes: number) => void;
}

/** A validated tensor to write: its stored dtype and element count are known before its data is. */
export type PlannedTensor = Required<TensorToWrite> & { numel: number };

/** Normalise a Map or Array of tensors into a validated list (a function's data is checked when called). */
export function tensorList(tensors: TensorsToWrite, path: string, defaultDType?: WriteDType): PlannedTensor[] {
  const entries: TensorToWrite[] = tensors instanceof Map
    ? [...(tensors as ReadonlyMap<string, Omit<TensorToWrite, 'name'>>)].map(([name, t]) => ({ ...t, name }))
    : [...(tensors as ReadonlyArray<TensorToWrite>)];
  const seen = new Set<string>();
  return entries.map((t) => {
    const where = `supra: ${path}: tensor '${t.name}'`;
    if (typeof t.name !== 'string' || t.name.length === 0 || t.name === '__metadata__') {
      throw new Error(`supra: ${path}: invalid tensor name ${JSON.stringify(t.name)}`);
    }
    if (seen.has(t.name)) throw new Error(`${where} appears twice`);
    seen.add(t.name);
    if (!Array.isArray(t.shape) || !t.shape.every(isNonNegInt)) {
      throw new Error(`${where}: shape must be non-negative integers, got ${JSON.stringify(t.shape)}`);
    }
    const lazy = typeof t.data === 'function';
    const isInt = t.data instanceof Int32Array;
    if (!lazy && !isInt && !(t.data instanceof Float32Array)) throw new Error(`${where}: data must be a Float32Array or Int32Array`);
    const dtype: WriteDType = t.dtype ?? (isInt ? 'I32' : defaultDType ?? 'F32');
    if (dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16' && dtype !== 'I32') {
      throw new Error(`${where}: cannot write dtype ${JSON.stringify(dtype)} (F32, F16, BF16, I32)`);
    }
    const numel = t.shape.reduce((a, b) => a * b, 1);
    const planned = { name: t.name, shape: [...t.shape], data: t.data, dtype, numel };
    if (!lazy) checkTensorData(planned, t.data as TensorData, path);
    return planned;
  });
}

/** The data must suit the dtype and fill the shape. */
function checkTensorData(t: PlannedTensor, data: TensorData, path: string): TensorData {
  const where = `supra: ${path}: tensor '${t.name}'`;
  const isInt = data instanceof Int32Array;
  if (!isInt && !(data instanceof Float32Array)) throw new Error(`${where}: data must be a Float32Array or Int32Array`);
  if (isInt !== (t.dtype === 'I32')) throw new Error(`${where}: ${isInt ? 'Int32Array' : 'Float32Array'} data cannot be stored as ${t.dtype}`);
  if (t.numel !== data.length) {
    throw new Error(`${where}: shape ${shapeStr(t.shape)} holds ${t.numel} values, data has ${data.length}`);
  }
  return data;
}

/** Bytes a tensor takes on disk. */
export function storedBytes(numel: number, dtype: WriteDType): number {
  return numel * DTYPE_SIZE[dtype];
}

/** The header bytes HF would write: JSON padded with spaces so the data area starts 8-aligned. */
function encodeHeader(list: ReadonlyArray<PlannedTensor>, metadata: Record<string, string> | undefined): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of list) {
    const bytes = storedBytes(t.numel, t.dtype);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
  padded.set(json);
  return padded;
}

/** Where encoded bytes go: an AtomicFile, or memory (encodeSafetensors). */
interface ByteSink {
  write(bytes: Uint8Array): void;
}

/** Stream `tensors` as a safetensors file into `sink`; `path` names it in errors. */
function writeTensors(sink: ByteSink, path: string, tensors: TensorsToWrite, metadata: Record<string, string> | undefined, options: WriteOptions): void {
  const list = tensorList(tensors, path);
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`supra: ${path}: metadata '${k}' must be a string`);
    }
  }
  const header = encodeHeader(list, metadata);
  const totalBytes = list.reduce((s, t) => s + storedBytes(t.numel, t.dtype), 0);
  const lenBytes = new Uint8Array(8);
  new DataView(lenBytes.buffer).setBigUint64(0, BigInt(header.length), true);
  sink.write(lenBytes);
  sink.write(header);
  let written = 0;
  let chunk: Uint16Array | null = null;
  for (const t of list) {
    const data = typeof t.data === 'function' ? checkTensorData(t, t.data(), path) : t.data;
    if (t.dtype === 'F32' || t.dtype === 'I32') {
      sink.write(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    } else {
      chunk ??= new Uint16Array(CHUNK_BYTES / 2);
      const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
      const convert = t.dtype === 'F16' ? f32ToF16Array : f32ToBf16Array;
      for (let i = 0; i < bits.length; i += chunk.length) {
        const count = Math.min(chunk.length, bits.length - i);
        convert(bits.subarray(i, i + count), chunk);
        sink.write(new Uint8Array(chunk.buffer, 0, count * 2));
      }
    }
    written += storedBytes(t.numel, t.dtype);
    options.onProgress?.(written, totalBytes);
  }
}

/**
 * Write a safetensors file in one streaming pass. It is an AtomicFile (written to `<path>.tmp-<pid>`,
 * fsynced, renamed), so `path` only ever holds a complete file (the old one or the new one).
 */
export function writeSafetensors(
  path: string,
  tensors: TensorsToWrite,
  metadata?: Record<string, string>,
  options: WriteOptions = {},
): void {
  tensorList(tensors, path); // bad input is refused before a file is created
  const file = AtomicFile.create(path);
  try {
    writeTensors(file, path, tensors, metadata, options);
    file.commit();
  } catch (e) {
    file.abort(); // the temporary goes; the error that stopped the write is the one reported
    throw e;
  }
}

/** The bytes of the safetensors file writeSafetensors would write (a browser's download; `name` for errors). */
export function encodeSafetensors(name: string, tensors: TensorsToWrite, metadata?: Record<string, string>): Uint8Array {
  const parts: Uint8Array[] = [];
  writeTensors({ write: (b) => parts.push(b.slice()) }, name, tensors, metadata, {});
  const out = new Uint8Array(parts.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of parts) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}
