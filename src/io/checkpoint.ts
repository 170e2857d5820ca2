// Hugging Face checkpoint folders: one model.safetensors, or shards listed by model.safetensors.index.json
// ({"metadata": {"total_size": N}, "weight_map": {tensor name: shard file}}). openCheckpoint presents
// either as one name -> tensor source; saveCheckpoint writes either, choosing by size.
import { writeJsonAtomic } from './atomic.js';
import { existsSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import {
  SafetensorsFile,
  storedBytes,
  syncDir,
  tensorList,
  writeSafetensors,
  type TensorInfo,
  type TensorsToWrite,
  type TensorToWrite,
  type WriteDType,
} from './safetensors.js';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';
/** transformers' default max_shard_size ("5GB"). */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;

/** A folder's tensors, wherever they are stored. */
export class Checkpoint {
  readonly dir: string;
  /** The safetensors files, in shard order. */
  readonly files: readonly string[];
  readonly sharded: boolean;
  private readonly shards: SafetensorsFile[];
  private readonly where: Map<string, SafetensorsFile>;

  constructor(dir: string, shards: SafetensorsFile[], where: Map<string, SafetensorsFile>, sharded: boolean) {
    this.dir = dir;
    this.shards = shards;
    this.files = shards.map((s) => s.path);
    this.where = where;
    this.sharded = sharded;
  }

  /** Every tensor name, shard by shard in header order. */
  names(): string[] {
    return [...this.where.keys()];
  }

  has(name: string): boolean {
    return this.where.has(name);
  }

  private file(name: string): SafetensorsFile {
    const f = this.where.get(name);
    if (!f) throw new Error(`supra: ${this.dir}: checkpoint has no tensor '${name}'`);
    return f;
  }

  /** The file holding a tensor. */
  fileOf(name: string): string {
    return this.file(name).path;
  }

  info(name: string): TensorInfo {
    return this.file(name).info(name);
  }

  /**
   * Read a float tensor into dest (float32, numel long; may be an arena buffer). These are model
   * weights: a NaN or ±Inf is an error naming the file and tensor (found in the pass that converts).
   */
  readInto(name: string, dest: Float32Array): Float32Array {
    return this.file(name).readInto(name, dest, { requireFinite: true });
  }

  readF32(name: string): Float32Array {
    return this.file(name).readF32(name, { requireFinite: true });
  }

  readI32(name: string, dest?: Int32Array): Int32Array {
    return this.file(name).readI32(name, dest);
  }

  close(): void {
    for (const s of this.shards) s.close();
  }
}

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

/**
 * Open a checkpoint folder. model.safetensors wins when present (as in transformers); otherwise the
 * index and every shard it lists are opened and cross-checked.
 */
export function openCheckpoint(dir: string): Checkpoint {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`supra: ${dir}: not a folder (expected a checkpoint folder)`);
  const single = join(dir, SINGLE_FILE);
  if (existsSync(single)) {
    const f = SafetensorsFile.open(single);
    return new Checkpoint(dir, [f], new Map(f.names().map((n) => [n, f])), false);
  }
  const indexPath = join(dir, INDEX_FILE);
  if (!existsSync(indexPath)) throw new Error(`supra: no ${SINGLE_FILE} or ${INDEX_FILE} in ${dir}`);
  const weightMap = readIndex(indexPath);

  const shardNames = [...new Set(Object.values(weightMap))].sort();
  for (const s of shardNames) {
    if (!existsSync(join(dir, s))) throw new Error(`supra: ${indexPath}: lists shard '${s}', but ${join(dir, s)} does not exist`);
  }
  const shards: SafetensorsFile[] = [];
  try {
    const where = new Map<string, SafetensorsFile>();
    for (const s of shardNames) {
      const f = SafetensorsFile.open(join(dir, s));
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
    const ordered = new Map<string, SafetensorsFile>(Object.keys(weightMap).map((n) => [n, where.get(n)!]));
    return new Checkpoint(dir, shards, ordered, true);
  } catch (e) {
    for (const f of shards) f.close();
    throw e;
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
  const bytesOf = (t: TensorToWrite & { dtype: WriteDType }) => storedBytes(t.data.length, t.dtype);
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
