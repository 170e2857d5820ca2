// Model folders, the one reader every command and from_pretrained go through. A folder holds its weights
// as one file or as shards listed by an index ({"metadata": {"total_size": N}, "weight_map": {tensor
// name: shard file}}), in safetensors or PyTorch's zip format, looked for in this order (safetensors
// first, as transformers does): model.safetensors, model.safetensors.index.json, pytorch_model.bin,
// pytorch_model.bin.index.json. openCheckpoint presents any of them as one name -> tensor source, read
// lazily (tensor by tensor, straight into the caller's memory for safetensors); saveCheckpoint writes
// safetensors, one file or shards, choosing by size. A new weight format is a class with TensorFile's
// methods and one LAYOUTS entry: detection, shard indexes and the checks stay here.
import { syncDir, writeJsonAtomic } from './atomic.js';
import { existsSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import {
  isFloatDType,
  SafetensorsFile,
  storedBytes,
  tensorList,
  writeSafetensors,
  type DType,
  type ReadOptions,
  type StoredTensor,
  type PlannedTensor,
  type TensorsToWrite,
  type WriteDType,
} from './safetensors.js';
import { TorchFile } from './torch.js';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';
export const TORCH_FILE = 'pytorch_model.bin';
export const TORCH_INDEX_FILE = 'pytorch_model.bin.index.json';
/** transformers' default max_shard_size ("5GB"). */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;

export type WeightsFormat = 'safetensors' | 'pytorch';

/** A tensor's dtype (as stored) and shape. */
export interface TensorShape {
  dtype: DType;
  shape: number[];
  /** Number of elements (product of shape; 1 for a scalar). */
  numel: number;
}

/** One file of named tensors: SafetensorsFile or TorchFile. */
export interface TensorFile {
  readonly path: string;
  names(): string[];
  info(name: string): TensorShape;
  readInto(name: string, dest: Float32Array, options?: ReadOptions): Float32Array;
  readF32(name: string, options?: ReadOptions): Float32Array;
  readI32(name: string, dest?: Int32Array): Int32Array;
  close(): void;
}

/** The weight files a folder may hold, in the order they are looked for. */
const LAYOUTS: ReadonlyArray<{ format: WeightsFormat; single: string; index: string; open: (path: string) => TensorFile }> = [
  { format: 'safetensors', single: SINGLE_FILE, index: INDEX_FILE, open: (path) => SafetensorsFile.open(path) },
  { format: 'pytorch', single: TORCH_FILE, index: TORCH_INDEX_FILE, open: (path) => TorchFile.open(path) },
];

/** A folder's tensors, wherever they are stored. */
export class Checkpoint {
  readonly dir: string;
  readonly format: WeightsFormat;
  /** The weight files, in shard order. */
  readonly files: readonly string[];
  readonly sharded: boolean;
  private readonly shards: TensorFile[];
  private readonly where: Map<string, TensorFile>;

  constructor(dir: string, format: WeightsFormat, shards: TensorFile[], where: Map<string, TensorFile>, sharded: boolean) {
    this.dir = dir;
    this.format = format;
    this.shards = shards;
    this.files = shards.map((s) => s.path);
    this.where = where;
    this.sharded = sharded;
  }

  /** Every tensor name: a single file's in its order, a sharded folder's in weight_map order. */
  names(): string[] {
    return [...this.where.keys()];
  }

  has(name: string): boolean {
    return this.where.has(name);
  }

  private file(name: string): TensorFile {
    const f = this.where.get(name);
    if (!f) throw new Error(`supra: ${this.dir}: checkpoint has no tensor '${name}'`);
    return f;
  }

  /** The file holding a tensor. */
  fileOf(name: string): string {
    return this.file(name).path;
  }

  info(name: string): TensorShape {
    return this.file(name).info(name);
  }

  /**
   * Read a float tensor into dest (float32, numel long; may be an arena buffer). These are model
   * weights: a NaN or ±Inf is an error naming the file and tensor (found in the pass that converts).
   */
  readInto(name: string, dest: Float32Array): Float32Array {
    return this.file(name).readInto(name, dest, { requireFinite: true });
  }

  /** A float tensor as float32 (checked as readInto does); treat it as read-only. */
  readF32(name: string): Float32Array {
    return this.file(name).readF32(name, { requireFinite: true });
  }

  readI32(name: string, dest?: Int32Array): Int32Array {
    return this.file(name).readI32(name, dest);
  }

  /** Every tensor in memory, in names() order: floats as float32, integers as int32. */
  readAll(): Map<string, StoredTensor> {
    const out = new Map<string, StoredTensor>();
    for (const name of this.names()) {
      const { dtype, shape } = this.info(name);
      out.set(name, { dtype, shape: [...shape], data: isFloatDType(dtype) ? this.readF32(name) : this.readI32(name) });
    }
    return out;
  }

  close(): void {
    for (const s of this.shards) s.close();
  }
}

/** The one parser of a shard index (model.safetensors.index.json, pytorch_model.bin.index.json). */
function readIndex(indexPath: string): Record<string, string> {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(indexPath, 'utf8'));
  } catch (e) {
    throw new Error(`supra: ${indexPath}: not valid JSON (${(e as Error).message})`);
  }
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof json !== 'object' || json === null || typeof map !== 'object' || map === null || Array.isArray(map)) {
    throw new Error(`supra: ${indexPath}: expected an object with a "weight_map" of tensor name -> shard file`);
  }
  const out: Record<string, string> = {};
  for (const [name, file] of Object.entries(map)) {
    if (typeof file !== 'string' || file.length === 0) {
      throw new Error(`supra: ${indexPath}: weight_map['${name}'] must be a shard file name, got ${JSON.stringify(file)}`);
    }
    // shards live beside the index; refuse paths that would escape the folder
    if (isAbsolute(file) || file.split(/[\\/]/).includes('..')) {
      throw new Error(`supra: ${indexPath}: weight_map['${name}'] = '${file}' must be a file inside the checkpoint folder`);
    }
    out[name] = file;
  }
  if (Object.keys(out).length === 0) throw new Error(`supra: ${indexPath}: weight_map is empty`);
  return out;
}

/** Open the index and every shard it lists, cross-checking the two. */
function openSharded(dir: string, format: WeightsFormat, indexPath: string, open: (path: string) => TensorFile): Checkpoint {
  const weightMap = readIndex(indexPath);
  const shardNames = [...new Set(Object.values(weightMap))].sort();
  for (const s of shardNames) {
    if (!existsSync(join(dir, s))) throw new Error(`supra: ${indexPath}: lists shard '${s}', but ${join(dir, s)} does not exist`);
  }
  const shards: TensorFile[] = [];
  try {
    const where = new Map<string, TensorFile>();
    for (const s of shardNames) {
      const f = open(join(dir, s));
      shards.push(f);
      for (const name of f.names()) {
        const other = where.get(name);
        if (other) throw new Error(`supra: ${dir}: tensor '${name}' is in two shards: ${other.path} and ${f.path}`);
        const listed = weightMap[name];
        if (listed === undefined) throw new Error(`supra: ${indexPath}: tensor '${name}' is in shard '${s}' but not in weight_map`);
        if (listed !== s) throw new Error(`supra: ${indexPath}: weight_map puts tensor '${name}' in '${listed}', but it is in shard '${s}'`);
        where.set(name, f);
      }
    }
    for (const [name, s] of Object.entries(weightMap)) {
      if (!where.has(name)) throw new Error(`supra: ${indexPath}: weight_map puts tensor '${name}' in '${s}', but that shard does not hold it`);
    }
    // present tensors in weight_map order (the order the index was written in)
    const ordered = new Map<string, TensorFile>(Object.keys(weightMap).map((n) => [n, where.get(n)!]));
    return new Checkpoint(dir, format, shards, ordered, true);
  } catch (e) {
    for (const f of shards) f.close();
    throw e;
  }
}

function singleFile(dir: string, format: WeightsFormat, f: TensorFile): Checkpoint {
  return new Checkpoint(dir, format, [f], new Map(f.names().map((n) => [n, f])), false);
}

/**
 * Open a checkpoint folder: the first of model.safetensors, model.safetensors.index.json,
 * pytorch_model.bin and pytorch_model.bin.index.json it holds (a single file wins over an index, as in
 * transformers). A sharded folder's index and shards are cross-checked.
 */
export function openCheckpoint(dir: string): Checkpoint {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`supra: ${dir}: not a folder (expected a checkpoint folder)`);
  for (const layout of LAYOUTS) {
    const single = join(dir, layout.single);
    if (existsSync(single)) return singleFile(dir, layout.format, layout.open(single));
    const indexPath = join(dir, layout.index);
    if (existsSync(indexPath)) return openSharded(dir, layout.format, indexPath, layout.open);
  }
  const looked = LAYOUTS.flatMap((l) => [l.single, l.index]);
  throw new Error(`supra: ${dir}: no ${looked.slice(0, -1).join(', ')} or ${looked[looked.length - 1]}`);
}

/** Open one weights file (a .safetensors file, or else a PyTorch checkpoint) as a checkpoint of its folder. */
export function openCheckpointFile(path: string): Checkpoint {
  const layout = /\.safetensors$/.test(path) ? LAYOUTS[0]! : LAYOUTS[1]!;
  return singleFile(dirname(path), layout.format, layout.open(path));
}

/** A checkpoint folder, or one weights file as a checkpoint of its folder (where config.json is looked for). */
export function openCheckpointAt(inPath: string): Checkpoint {
  if (!existsSync(inPath)) throw new Error(`supra: ${inPath}: not found`);
  return statSync(inPath).isDirectory() ? openCheckpoint(inPath) : openCheckpointFile(inPath);
}

/** A tensor whose data is read from its file each time `data` is asked for; nothing is held. */
export interface LazyTensor {
  readonly dtype: DType;
  readonly shape: number[];
  readonly data: Float32Array | Int32Array;
}

/**
 * Every tensor of an open checkpoint by name, read only when its data is used (floats as float32, checked
 * as readF32 does): to check and stream a checkpoint larger than memory, one tensor at a time.
 */
export function lazyTensors(ckpt: Checkpoint): Map<string, LazyTensor> {
  const out = new Map<string, LazyTensor>();
  for (const name of ckpt.names()) {
    const { dtype, shape } = ckpt.info(name);
    out.set(name, {
      dtype,
      shape: [...shape],
      get data() {
        return isFloatDType(dtype) ? ckpt.readF32(name) : ckpt.readI32(name);
      },
    });
  }
  return out;
}

/**
 * Every tensor of a checkpoint folder or of one weights file, in memory (info and convert, which need
 * them all), with the folder (the file's, for a file) where config.json is looked for.
 */
export function readCheckpointTensors(inPath: string): { tensors: Map<string, StoredTensor>; dir: string } {
  const ckpt = openCheckpointAt(inPath);
  try {
    return { tensors: ckpt.readAll(), dir: ckpt.dir };
  } finally {
    ckpt.close();
  }
}

export interface SaveCheckpointOptions {
  /** Stored dtype of float tensors (default F32); Int32Array tensors are stored as I32. */
  dtype?: 'F32' | 'F16' | 'BF16';
  /** Largest shard in tensor bytes (default 5 GB, as transformers); over it the folder is sharded. */
  maxShardBytes?: number;
  /** Extra safetensors metadata; "format": "pt" is always set, as transformers requires it. */
  metadata?: Record<string, string>;
}

function shardName(i: number, n: number): string {
  const pad = (k: number) => String(k).padStart(5, '0');
  return `model-${pad(i + 1)}-of-${pad(n)}.safetensors`;
}

function removeIfPresent(path: string): void {
  if (existsSync(path)) unlinkSync(path);
}

/**
 * Write tensors to `dir` (which must exist) as model.safetensors, or as shards plus
 * model.safetensors.index.json when they exceed maxShardBytes. Each file is written atomically; the
 * files of the other layout are removed only after the new one is complete, so a crash leaves either
 * the old checkpoint or the new one readable. Returns the files written.
 */
export function saveCheckpoint(dir: string, tensors: TensorsToWrite, options: SaveCheckpointOptions = {}): string[] {
  const dtype: WriteDType = options.dtype ?? 'F32';
  if (dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16') throw new Error(`supra: ${dir}: cannot save dtype ${JSON.stringify(dtype)}`);
  const maxShard = options.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  if (!(maxShard > 0)) throw new Error(`supra: ${dir}: maxShardBytes must be positive, got ${maxShard}`);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`supra: ${dir}: not a folder (create it before saving)`);
  const list = tensorList(tensors, dir, dtype);
  if (list.length === 0) throw new Error(`supra: ${dir}: no tensors to save`);
  const metadata = { ...options.metadata, format: 'pt' };
  const bytesOf = (t: PlannedTensor) => storedBytes(t.numel, t.dtype);
  const total = list.reduce((s, t) => s + bytesOf(t), 0);

  const single = join(dir, SINGLE_FILE);
  const indexPath = join(dir, INDEX_FILE);
  if (total <= maxShard) {
    writeSafetensors(single, list, metadata);
    // model.safetensors now wins over any old index; remove the old sharded layout
    removeOldShards(dir, indexPath, new Set([SINGLE_FILE]));
    syncDir(dir);
    return [single];
  }

  // greedy packing in the given order; a tensor larger than the limit gets a shard of its own
  const groups: Array<typeof list> = [];
  let current: typeof list = [];
  let currentBytes = 0;
  for (const t of list) {
    const b = bytesOf(t);
    if (current.length > 0 && currentBytes + b > maxShard) {
      groups.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(t);
    currentBytes += b;
  }
  groups.push(current);

  const files: string[] = [];
  const weightMap: Record<string, string> = {};
  const newNames = new Set<string>();
  groups.forEach((group, i) => {
    const name = shardName(i, groups.length);
    newNames.add(name);
    const path = join(dir, name);
    writeSafetensors(path, group, metadata);
    files.push(path);
    for (const t of group) weightMap[t.name] = name;
  });
  const oldShards = existsSync(indexPath) ? safeShardList(indexPath) : [];
  writeJsonAtomic(indexPath, { metadata: { total_size: total }, weight_map: weightMap });
  // the new index is complete: now model.safetensors (which would shadow it) and stale shards can go
  removeIfPresent(single);
  for (const s of oldShards) if (!newNames.has(s)) removeIfPresent(join(dir, s));
  syncDir(dir);
  files.push(indexPath);
  return files;
}

/** Shard files an existing index lists, or none when it cannot be read (it is being replaced anyway). */
function safeShardList(indexPath: string): string[] {
  try {
    return [...new Set(Object.values(readIndex(indexPath)))];
  } catch {
    return [];
  }
}

function removeOldShards(dir: string, indexPath: string, keep: Set<string>): void {
  if (!existsSync(indexPath)) return;
  const old = safeShardList(indexPath);
  unlinkSync(indexPath);
  for (const s of old) if (!keep.has(s)) removeIfPresent(join(dir, s));
}
