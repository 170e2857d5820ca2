// safetensors reading. (Minimal first version: the I/O work hardens validation, adds the writer,
// sharded folders and streaming reads.)
import { readFileSync } from 'node:fs';

export type DType = 'F32' | 'F16' | 'BF16' | 'I32' | 'I64';

export interface StoredTensor {
  dtype: DType;
  shape: number[];
  /** Values as float32 (floats) or int32 (integers). */
  data: Float32Array | Int32Array;
}

export function readSafetensors(path: string): Map<string, StoredTensor> {
  const buf = readFileSync(path);
  const headerLen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8')) as Record<
    string,
    { dtype: DType; shape: number[]; data_offsets: [number, number] }
  >;
  const base = 8 + headerLen;
  const out = new Map<string, StoredTensor>();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [s, e] = info.data_offsets;
    const bytes = buf.subarray(base + s, base + e);
    const n = info.shape.reduce((a, b) => a * b, 1);
    let data: Float32Array | Int32Array;
    if (info.dtype === 'F32') data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + n * 4));
    else if (info.dtype === 'I32') data = new Int32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + n * 4));
    else throw new Error(`${path}: ${name}: dtype ${info.dtype} not supported yet`);
    out.set(name, { dtype: info.dtype, shape: info.shape, data });
  }
  return out;
}
