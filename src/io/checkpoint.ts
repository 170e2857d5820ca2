// Model folders, the one reader every command and from_pretrained go through. A folder holds its weights
// as one file or as shards listed by an index ({"metadata": {"total_size": N}, "weight_map": {tensor
// name: shard file}}), in safetensors or PyTorch's zip format, looked for in this order (safetensors
// first, as transformers does): model.safetensors, model.safetensors.index.json, pytorch_model.bin,
// pytorch_model.bin.index.json. openCheckpoint presents any of them as one name -> tensor source, read
// lazily (tensor by tensor, straight into the caller's memory for safetensors); saveCheckpoint writes
// safetensors, one file or shards, choosing by size. A new weight format is a class with TensorFile's
// methods and one LAYOUTS entry: detection, shard indexes and the checks stay here. openModel adds the
// config and presents the weights under supra's names, whether they are stored under Hugging Face names
// or open_lm's (a name map with row ranges for open_lm's fused matrices, Checkpoint.withNames).
import { syncDir, writeJsonAtomic } from './atomic.js';
import { dirname, existsSync, isAbsolute, join, readFileSync, statSync, unlinkSync } from './files.js';
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
import { f32ToBf16Array } from './dtype.js';
import { TorchFile } from './torch.js';
import { readConfigJson, type ModelConfig } from './config.js';
import { checkOpenLmValues, isOpenLmLayout, mapOpenLm, modelConfigOf } from './open_lm.js';

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
  /** A float tensor as BF16 bits, read without a float32 copy (Checkpoint rounds readF32's values without it). */
  readBf16Into?(name: string, dest: Uint16Array, options?: ReadOptions): Uint16Array;
  readF32(name: string, options?: ReadOptions): Float32Array;
  readI32(name: string, dest?: Int32Array): Int32Array;
  close(): void;
}

/** The weight files a folder may hold, in the order they are looked for. */
const LAYOUTS: ReadonlyArray<{ format: WeightsFormat; single: string; index: string; open: (path: string) => TensorFile }> = [
  { format: 'safetensors', single: SINGLE_FILE, index: INDEX_FILE, open: (path) => SafetensorsFile.open(path) },
  { format: 'pytorch', single: TORCH_FILE, index: TORCH_INDEX_FILE, open: (path) => TorchFile.open(path) },
];

/** Where a tensor of a renamed checkpoint (Checkpoint.withNames) is stored: a whole tensor, or rows [begin, end) of one. */
export interface StoredPart {
  source: string;
  rows?: readonly [number, number];
}

/** A tensor's file, its stored name and, for a part of a fused tensor, its rows. */
export class StoredIn {
  constructor(
    readonly file: TensorFile,
    readonly source: string,
    readonly rows: readonly [number, number] | null,
  ) {}
}

/** A folder's tensors, wherever they are stored. */
export class Checkpoint {
  readonly dir: string;
  readonly format: WeightsFormat;
  /** The weight files, in shard order. */
  readonly files: readonly string[];
  readonly sharded: boolean;
  private readonly shards: TensorFile[];
  private readonly where: Map<string, StoredIn>;
  /** The last fused tensor read for its parts, kept until every part has been read (see part()). */
  private fused: { file: TensorFile; source: string; data: Float32Array; unread: Set<string> } | null = null;
  /** Reused for every fused tensor, so splitting them leaves no garbage behind (dropped at close). */
  private scratch: Float32Array | null = null;

  /** `where`: each tensor's file (stored under its own name), or its place in a renamed view (withNames). */
  constructor(dir: string, format: WeightsFormat, shards: TensorFile[], where: ReadonlyMap<string, TensorFile | StoredIn>, sharded: boolean) {
    this.dir = dir;
    this.format = format;
    this.shards = shards;
    this.files = shards.map((s) => s.path);
    this.where = new Map([...where].map(([name, w]) => [name, w instanceof StoredIn ? w : new StoredIn(w, name, null)]));
    this.sharded = sharded;
  }

  /** Every tensor name: a single file's in its order, a sharded folder's in weight_map order. */
  names(): string[] {
    return [...this.where.keys()];
  }

  has(name: string): boolean {
    return this.where.has(name);
  }

  private locate(name: string): StoredIn {
    const w = this.where.get(name);
    if (!w) throw new Error(`supra: ${this.dir}: checkpoint has no tensor '${name}'`);
    return w;
  }

  /** The file holding a tensor. */
  fileOf(name: string): string {
    return this.locate(name).file.path;
  }

  info(name: string): TensorShape {
    const { file, source, rows } = this.locate(name);
    const stored = file.info(source);
    if (!rows) return stored;
    const shape = [rows[1] - rows[0], ...stored.shape.slice(1)];
    return { dtype: stored.dtype, shape, numel: shape.reduce((a, b) => a * b, 1) };
  }

  /**
   * Read a float tensor into dest (float32, numel long; may be an arena buffer). These are model
   * weights: a NaN or ±Inf is an error naming the file and tensor (found in the pass that converts).
   */
  readInto(name: string, dest: Float32Array): Float32Array {
    const w = this.locate(name);
    if (!w.rows) return w.file.readInto(w.source, dest, { requireFinite: true });
    const part = this.part(name, w);
    if (dest.length !== part.length) {
      throw new Error(`supra: ${w.file.path}: tensor '${name}' (rows ${w.rows[0]}..${w.rows[1]} of '${w.source}') has ${part.length} values, destination holds ${dest.length}`);
    }
    dest.set(part);
    return dest;
  }

  /** Read a float tensor into dest as BF16 bits (BF16 as stored, other floats rounded to nearest even), checked as readInto. */
  readBf16Into(name: string, dest: Uint16Array): Uint16Array {
    const w = this.locate(name);
    if (!w.rows && w.file.readBf16Into) return w.file.readBf16Into(w.source, dest, { requireFinite: true });
    // other files, and rows of a fused open_lm tensor: through float32, then rounded
    const values = w.rows ? this.part(name, w) : w.file.readF32(w.source, { requireFinite: true });
    if (values.length !== dest.length) throw new Error(`supra: ${w.file.path}: tensor '${name}' has ${values.length} values, destination holds ${dest.length}`);
    f32ToBf16Array(new Uint32Array(values.buffer, values.byteOffset, values.length), dest);
    return dest;
  }

  /** A float tensor as float32 (checked as readInto does); treat it as read-only. */
  readF32(name: string): Float32Array {
    const w = this.locate(name);
    // a part is copied out of the scratch buffer, which the next fused tensor overwrites
    return w.rows ? this.part(name, w).slice() : w.file.readF32(w.source, { requireFinite: true });
  }

  readI32(name: string, dest?: Int32Array): Int32Array {
    const w = this.locate(name);
    if (w.rows) throw new Error(`supra: ${w.file.path}: tensor '${name}' is part of the float tensor '${w.source}', not an integer tensor`);
    return w.file.readI32(w.source, dest);
  }

  /**
   * Rows of a fused tensor, as a view valid until the next fused tensor is read: the fused tensor is
   * read once (as float32, checked) into one reused scratch buffer and kept until each of its parts has
   * been read, so splitting in_proj into q/k/v reads it once. One fused tensor is kept at a time, so the
   * extra memory is the largest fused tensor, whatever order the parts are read in.
   */
  private part(name: string, w: StoredIn): Float32Array {
    if (this.fused?.source !== w.source || this.fused.file !== w.file) {
      const numel = w.file.info(w.source).numel;
      if (!this.scratch || this.scratch.length < numel) {
        this.scratch = null; // let the smaller one go before the larger is allocated
        this.scratch = new Float32Array(numel);
      }
      const data = w.file.readInto(w.source, this.scratch.subarray(0, numel), { requireFinite: true });
      const unread = new Set([...this.where].filter(([, o]) => o.source === w.source && o.file === w.file && o.rows).map(([n]) => n));
      this.fused = { file: w.file, source: w.source, data, unread };
    }
    const { data, unread } = this.fused;
    const cols = data.length / w.file.info(w.source).shape[0]!;
    unread.delete(name);
    if (unread.size === 0) this.fused = null;
    return data.subarray(w.rows![0] * cols, w.rows![1] * cols);
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

  /**
   * The same files presented under other names (`parts`: new name -> stored tensor, or rows of one),
   * for a layout whose names or fused matrices differ from supra's (open_lm). Nothing is read here.
   * The view shares this checkpoint's open files: close one of the two.
   */
  withNames(parts: ReadonlyMap<string, StoredPart>): Checkpoint {
    const where = new Map<string, StoredIn>();
    for (const [name, { source, rows }] of parts) {
      const w = this.locate(source);
      if (w.rows) throw new Error(`supra: ${w.file.path}: '${source}' is itself a part of '${w.source}'; rename the stored tensors`);
      if (rows) {
        const n = w.file.info(w.source).shape[0];
        const [begin, end] = rows;
        if (n === undefined || !Number.isInteger(begin) || !Number.isInteger(end) || begin < 0 || begin >= end || end > n) {
          throw new Error(`supra: ${w.file.path}: cannot take rows ${begin}..${end} of tensor '${source}' (${n ?? 0} rows) for ${name}`);
        }
      }
      where.set(name, new StoredIn(w.file, w.source, rows ? [rows[0], rows[1]] : null));
    }
    return new Checkpoint(this.dir, this.format, this.shards, where, this.sharded);
  }

  close(): void {
    this.fused = null;
    this.scratch = null;
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
 * Every tensor of a checkpoint folder or of one weights file, in memory under the names they are stored
 * under, with the folder (the file's, for a file) where config.json is looked for. For small checkpoints
 * and tests; commands stream instead (lazyTensors).
 */
export function readCheckpointTensors(inPath: string): { tensors: Map<string, StoredTensor>; dir: string } {
  const ckpt = openCheckpointAt(inPath);
  try {
    return { tensors: ckpt.readAll(), dir: ckpt.dir };
  } finally {
    ckpt.close();
  }
}

export type FolderLayout = 'supra' | 'open_lm';

/** A model folder opened for loading: its config and its weights under supra's names. */
export interface ModelFolder {
  /** The folder (a weights file's folder, for a file). */
  dir: string;
  /** transformers' config.json, or open_lm's mapped to HF fields. */
  config: ModelConfig;
  /** The weights under supra's (Hugging Face) names, whatever names they are stored under. */
  checkpoint: Checkpoint;
  /** The same files under the names they are stored under (the same object for the supra layout). */
  stored: Checkpoint;
  /** Which names the weights are stored under. */
  layout: FolderLayout;
}

const INV_FREQ = /\.pos_embed\.inv_freq$/;

/**
 * Open a model folder, or one weights file with its folder's config.json, for every command and
 * from_pretrained: the config (transformers' or open_lm's) and the weights under supra's names. An
 * open_lm checkpoint (what `supra convert --format open_lm` writes, the released Mistral-SUPRA) is
 * mapped from its shapes alone (io/open_lm.ts mapOpenLm) and presented through Checkpoint.withNames:
 * in_proj and w12 are split into q/k/v and gate/up as they are read, so no second copy is made. Only its
 * RoPE buffers and, for tied embeddings, the saved duplicate of the embedding are read here, to be checked.
 */
export function openModel(path: string): ModelFolder {
  if (!existsSync(path)) throw new Error(`supra: ${path}: not found (expected a model folder)`);
  const isDir = statSync(path).isDirectory();
  const dir = isDir ? path : dirname(path);
  const { raw, path: configPath } = readConfigJson(dir);
  const stored = isDir ? openCheckpoint(path) : openCheckpointFile(path);
  try {
    const names = stored.names();
    // openLmConfig reads shapes, and theta from an inv_freq buffer when the params have none
    const shapes = new Map(names.map((n) => [n, { shape: stored.info(n).shape, dtype: stored.info(n).dtype, data: INV_FREQ.test(n) ? stored.readF32(n) : undefined }]));
    const config = modelConfigOf(raw, shapes, configPath);
    if (!isOpenLmLayout(names)) return { dir, config, checkpoint: stored, stored, layout: 'supra' };
    const mapping = mapOpenLm(shapes, config);
    checkOpenLmValues(mapping, (source) => stored.readF32(source));
    return { dir, config, checkpoint: stored.withNames(mapping.tensors), stored, layout: 'open_lm' };
  } catch (e) {
    stored.close();
    throw e;
  }
}

/** Every tensor of a model folder (or weights file) in memory under supra's names, with its config (linearize). */
export function readModelTensors(path: string): { tensors: Map<string, StoredTensor>; config: ModelConfig; dir: string; layout: FolderLayout } {
  const { dir, config, checkpoint, layout } = openModel(path);
  try {
    return { tensors: checkpoint.readAll(), config, dir, layout };
  } finally {
    checkpoint.close();
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
