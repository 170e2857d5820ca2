// Snapshots of a SUPRA generation: save a GenerationState to a safetensors file and continue from it later,
// in this process or another, with exactly the tokens the uninterrupted run would have produced.
//
// File, format supra-state/2 (written atomically by writeSafetensors):
//   state.layer.N  F32 [B, H, Dk, Dv]  layer N's recurrent state (already × γ, as SupraState holds it)
//   state.layer.N.normalizer  F32 [B, H, Dk]  normalization 'sum' only: the denominator's state (× γ too)
//   (in general: the tensors layer N's MixerState.snapshot() lists, named state.layer.N[.<name>])
//   tokens         I32 [B, L]          every token of the context (all of them consumed)
//   logits         F32 [B, V]          the next-token logits after them
//   rng.mt19937    I32 [625]           when the state has a sampling generator: its Mt19937 words and read
//                                      index (uint32 bits stored as I32), so it is restored in O(1)
//   __metadata__   format "supra-state/2", position, batch, layers, vocab_size, architecture,
//                  model_fingerprint, rng ("seed:draws" or ""), sampling (JSON of do_sample, temperature,
//                  top_k, top_p, repetition_penalty: the settings of the last generation, or ""),
//                  content_sha256
//
// content_sha256 (snapshotChecksum) covers every metadata field but itself and every tensor's name, dtype,
// shape and bytes, so an edited or damaged file is refused before any of it is used.
//
// supra-state/1 files (no rng.mt19937 tensor, no sampling settings, content_sha256 over the tensor bytes
// only) still load: their generator is replayed from seed and draw count, which is refused when the count
// exceeds one draw per token of the context (the most a generation can have taken).
//
// model_fingerprint = sha256 over the config fields that shape the computation, every parameter's name and
// shape, and a sample of each parameter's values (models/fingerprint.ts). It tells a snapshot of another
// model or of other weights from one of this model, without hashing gigabytes.
import { createSha256 } from '../core/sha256.js';
import { mountFolder, unmountFolder } from '../io/files.js';
import { encodeSafetensors, SafetensorsFile, writeSafetensors } from '../io/safetensors.js';
import type { MixerState, StateTensor } from '../layers/types.js';
import type { DecoderLM } from '../models/decoder.js';
import { weightsFingerprint } from '../models/fingerprint.js';
import { Mt19937 } from '../core/random.js';
import { resolveSampling, samplingOptionsOf, SeededRandom } from './sampling.js';
import { GenerationState } from './state.js';

/** The format saveState writes. */
export const STATE_FORMAT = 'supra-state/2';
/** The first format, still read. */
export const STATE_FORMAT_V1 = 'supra-state/1';
const RNG_TENSOR = 'rng.mt19937';

/** A DecoderLM, or anything holding one as `.model` (CausalLM). */
export type ModelLike = DecoderLM | { readonly model: DecoderLM };

function decoderOf(m: ModelLike): DecoderLM {
  return 'store' in m ? m : m.model;
}

/**
 * The model's fingerprint (see the file comment; models/fingerprint.ts). Cached per model object: call with
 * `fresh` after changing the weights in place (training) to recompute it.
 */
export function modelFingerprint(model: ModelLike, fresh = false): string {
  return weightsFingerprint(decoderOf(model), fresh);
}

/** A layer state that can be snapshotted (MixerState.snapshot and restore). */
type SnapshotState = MixerState & Required<Pick<MixerState, 'snapshot' | 'restore'>>;

/** Every layer's state, refused (naming `what`) when one cannot be snapshotted (a KV cache). */
function snapshotStates(state: GenerationState, what: string): SnapshotState[] {
  return state.decoder.layers.map((l, i) => {
    if (!l.snapshot || !l.restore) {
      throw new Error(`supra: ${what}: state snapshots are for SUPRA models (layer ${i} keeps a ${l.constructor.name}, the model is ${state.model.config.architecture})`);
    }
    return l as SnapshotState;
  });
}

/** The file's name of tensor `t` of layer `layer`'s state. */
function layerTensorName(layer: number, t: StateTensor): string {
  return t.name === '' ? `state.layer.${layer}` : `state.layer.${layer}.${t.name}`;
}

/** supra-state/1's checksum: the tensor bytes of the state layers, tokens and logits, in that order. */
function contentHashV1(tensors: ReadonlyArray<{ name: string; data: Float32Array | Int32Array }>): string {
  const h = createSha256();
  for (const t of tensors) {
    h.update(t.name);
    h.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  return h.digest('hex');
}

/** One stored tensor, as the checksum sees it. */
export interface ChecksummedTensor {
  name: string;
  dtype: string;
  shape: readonly number[];
  /** The stored bytes, or a function reading them (called once, in checksum order: one tensor in memory at a time). */
  bytes: Uint8Array | (() => Uint8Array);
}

/**
 * supra-state/2's content_sha256: sha256 over every metadata field except content_sha256 (sorted by key)
 * and every tensor (sorted by name) with its dtype, shape and stored bytes.
 */
export function snapshotChecksum(metadata: Readonly<Record<string, string>>, tensors: Iterable<ChecksummedTensor>): string {
  const h = createSha256();
  const fields = Object.keys(metadata).filter((k) => k !== 'content_sha256').sort().map((k) => [k, metadata[k]]);
  h.update(JSON.stringify(fields));
  for (const t of [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    h.update(JSON.stringify([t.name, t.dtype, t.shape]));
    h.update(typeof t.bytes === 'function' ? t.bytes() : t.bytes);
  }
  return h.digest('hex');
}

const bytesOf = (a: Float32Array | Int32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/**
 * Write `state` to `path` (atomically). Pending tokens (the last sampled token) are fed through the model
 * first, so the file holds a state that has consumed its whole context plus the logits that follow.
 */
export function saveState(path: string, model: ModelLike, state: GenerationState): void {
  const { tensors, metadata } = stateTensors(path, model, state);
  writeSafetensors(path, tensors, metadata);
}

/** The bytes saveState would write (a browser's download or IndexedDB); `name` names it in errors. */
export function stateToBytes(model: ModelLike, state: GenerationState, name = 'state.safetensors'): Uint8Array {
  const { tensors, metadata } = stateTensors(name, model, state);
  return encodeSafetensors(name, tensors, metadata);
}

/** loadState for a snapshot's bytes (read in a browser from a file or IndexedDB), with the same checks. */
export function stateFromBytes(bytes: Uint8Array, model: ModelLike, name = 'state.safetensors'): GenerationState {
  const dir = `supra-state-${++bytesLoads}:`;
  mountFolder(dir, new Map([[name, bytes]]));
  try {
    return loadState(`${dir}/${name}`, model);
  } finally {
    unmountFolder(dir);
  }
}
let bytesLoads = 0;

function stateTensors(
  path: string,
  model: ModelLike,
  state: GenerationState,
): { tensors: Array<{ name: string; shape: number[]; data: Float32Array | Int32Array }>; metadata: Record<string, string> } {
  const m = decoderOf(model);
  if (state.model !== m) throw new Error(`supra: ${path}: this generation state belongs to another model object`);
  const layers = snapshotStates(state, path);
  if (state.length === 0) throw new Error(`supra: ${path}: nothing to save: the state has no context yet`);
  const logits = state.nextLogits();
  const B = state.batch, L = state.length, V = m.config.vocab_size;
  const tokens = new Int32Array(B * L);
  state.tokens.forEach((row, b) => tokens.set(row, b * L));
  const tensors: Array<{ name: string; shape: number[]; data: Float32Array | Int32Array }> = [
    ...layers.flatMap((s, i) => s.snapshot().map((t) => ({ name: layerTensorName(i, t), shape: [...t.shape], data: t.data }))),
    { name: 'tokens', shape: [B, L], data: tokens },
    { name: 'logits', shape: [B, V], data: logits },
  ];
  if (state.rng) {
    const words = state.rng.getState();
    tensors.push({ name: RNG_TENSOR, shape: [words.length], data: new Int32Array(words.buffer, words.byteOffset, words.length) });
  }
  const metadata: Record<string, string> = {
    format: STATE_FORMAT,
    position: String(state.position),
    batch: String(B),
    layers: String(layers.length),
    vocab_size: String(V),
    architecture: m.config.architecture,
    model_fingerprint: modelFingerprint(m),
    rng: state.rng ? `${state.rng.seed}:${state.rng.draws}` : '',
    sampling: state.sampling ? JSON.stringify(samplingOptionsOf(state.sampling)) : '',
  };
  metadata.content_sha256 = snapshotChecksum(
    metadata,
    tensors.map((t) => ({ name: t.name, dtype: t.data instanceof Int32Array ? 'I32' : 'F32', shape: t.shape, bytes: bytesOf(t.data) })),
  );
  return { tensors, metadata };
}

/** "seed:draws" as numbers, or null when malformed. */
function parseRng(rng: string): { seed: number; draws: number } | null {
  const m = /^(\d{1,10}):(\d{1,16})$/.exec(rng);
  if (!m) return null;
  const seed = Number(m[1]), draws = Number(m[2]);
  return seed <= 0xffffffff && Number.isSafeInteger(draws) ? { seed, draws } : null;
}

/**
 * Read a snapshot written by saveState for `model`, as a new GenerationState ready to continue (with the
 * generator and the sampling settings it was saved with). Refused, with an error naming the file, when it
 * is not a snapshot, is damaged or edited, comes from another model, or has shapes that do not fit this
 * model. supra-state/1 files are read too (see the file comment).
 */
export function loadState(path: string, model: ModelLike): GenerationState {
  const m = decoderOf(model);
  const c = m.config;
  let file: SafetensorsFile;
  try {
    file = SafetensorsFile.open(path);
  } catch (e) {
    const msg = (e as Error).message;
    throw new Error(msg.includes(path) ? msg : `supra: ${path}: cannot read the state snapshot: ${msg}`);
  }
  try {
    const meta = file.metadata;
    if (meta.format !== STATE_FORMAT && meta.format !== STATE_FORMAT_V1) {
      throw new Error(`supra: ${path}: not a supra state snapshot (metadata format is ${JSON.stringify(meta.format ?? null)}, expected "${STATE_FORMAT}" or "${STATE_FORMAT_V1}")`);
    }
    const v1 = meta.format === STATE_FORMAT_V1;
    const damaged = (): Error => new Error(`supra: ${path}: the snapshot is damaged or was edited (its ${v1 ? 'content' : 'header or content'} does not match its checksum)`);
    if (!v1) {
      // first of all: nothing in the header or the tensors is used unless the checksum holds
      const stored = file.names().map((name) => {
        const { dtype, shape } = file.info(name);
        return { name, dtype, shape, bytes: () => file.readRaw(name) };
      });
      if (snapshotChecksum(meta, stored) !== meta.content_sha256) throw damaged();
    }
    // the layout: a 'sum' model carries a denominator state per layer, a GroupNorm model none
    if (c.supra) {
      const want = c.supra.normalization === 'sum';
      if (file.has('state.layer.0.normalizer') !== want) {
        throw new Error(
          `supra: ${path}: the snapshot ${want ? 'lacks' : 'holds'} denominator states (state.layer.N.normalizer), ` +
            `but this model's normalization is ${c.supra.normalization} (snapshots of 'sum' models have them, of 'group_norm' models not)`,
        );
      }
    }
    const fp = modelFingerprint(m);
    if (meta.model_fingerprint !== fp) {
      throw new Error(`supra: ${path}: the snapshot is from another model (${meta.architecture ?? 'unknown'}, fingerprint ${String(meta.model_fingerprint).slice(0, 12)}…), not this ${c.architecture} (fingerprint ${fp.slice(0, 12)}…)`);
    }
    const int = (key: string, min: number): number => {
      const v = Number(meta[key]);
      if (!Number.isInteger(v) || v < min) throw new Error(`supra: ${path}: bad metadata ${key} = ${JSON.stringify(meta[key] ?? null)}`);
      return v;
    };
    const B = int('batch', 1), position = int('position', 1), nLayers = int('layers', 1), V = int('vocab_size', 1);
    if (nLayers !== c.num_hidden_layers || V !== c.vocab_size) {
      throw new Error(`supra: ${path}: the snapshot has ${nLayers} layers and vocabulary ${V}, this model ${c.num_hidden_layers} and ${c.vocab_size}`);
    }
    const expectShape = (name: string, shape: number[]): void => {
      if (!file.has(name)) throw new Error(`supra: ${path}: missing tensor ${name}`);
      const got = file.info(name).shape;
      if (got.join(',') !== shape.join(',')) throw new Error(`supra: ${path}: tensor ${name} has shape [${got.join(', ')}], expected [${shape.join(', ')}]`);
    };
    const rngText = meta.rng ?? '';
    const rng = rngText === '' ? null : parseRng(rngText);
    if (rngText !== '' && !rng) throw new Error(`supra: ${path}: bad metadata rng = ${JSON.stringify(rngText)} (expected "seed:draws")`);
    // a generation draws once per row and new token, and every new token is in the context
    if (v1 && rng && rng.draws > B * position) {
      throw new Error(
        `supra: ${path}: bad metadata rng = ${JSON.stringify(rngText)}: ${rng.draws} draws, but a context of ${B} × ${position} tokens ` +
          `can have taken at most ${B * position} (the file was edited or damaged)`,
      );
    }
    const state = new GenerationState(m, B);
    try {
      const layers = snapshotStates(state, path);
      const read: Array<{ name: string; data: Float32Array | Int32Array }> = [];
      layers.forEach((s, i) => {
        const tensors = new Map<string, Float32Array>();
        const names = new Set<string>();
        for (const t of s.snapshot()) {
          const name = layerTensorName(i, t);
          expectShape(name, [...t.shape]);
          if (file.info(name).dtype !== 'F32') throw new Error(`supra: ${path}: tensor ${name} must be F32`);
          const data = file.readF32(name);
          tensors.set(t.name, data);
          names.add(name);
          read.push({ name, data });
        }
        const prefix = `state.layer.${i}.`;
        const extra = file.names().find((n) => n.startsWith(prefix) && !names.has(n));
        if (extra !== undefined) {
          throw new Error(`supra: ${path}: tensor ${extra} is not part of this model's state${c.supra ? ` (normalization ${c.supra.normalization})` : ''}`);
        }
        s.restore(tensors, position);
      });
      expectShape('tokens', [B, position]);
      expectShape('logits', [B, V]);
      const tokens = file.readI32('tokens');
      const logits = file.readF32('logits');
      read.push({ name: 'tokens', data: tokens }, { name: 'logits', data: logits });
      if (v1 && contentHashV1(read) !== meta.content_sha256) throw damaged();
      const rows = Array.from({ length: B }, (_, b) => tokens.subarray(b * position, (b + 1) * position));
      state.append(rows);
      state.decoder.position = position;
      state.restoreLogits(logits);
      if (v1) {
        if (rng) state.rng = SeededRandom.replay(rng.seed, rng.draws);
      } else {
        if (rng) {
          expectShape(RNG_TENSOR, [Mt19937.STATE_WORDS]);
          if (file.info(RNG_TENSOR).dtype !== 'I32') throw new Error(`supra: ${path}: tensor ${RNG_TENSOR} must be I32`);
          const words = file.readI32(RNG_TENSOR);
          try {
            state.rng = new SeededRandom(rng.seed, { draws: rng.draws, words: new Uint32Array(words.buffer, words.byteOffset, words.length) });
          } catch (e) {
            throw new Error(`supra: ${path}: tensor ${RNG_TENSOR} is not a generator state: ${(e as Error).message.replace(/^supra: /, '')}`);
          }
        } else if (file.has(RNG_TENSOR)) {
          throw new Error(`supra: ${path}: tensor ${RNG_TENSOR} is present but metadata rng is empty`);
        }
        const sampling = meta.sampling ?? '';
        if (sampling !== '') {
          try {
            state.sampling = resolveSampling(JSON.parse(sampling) as object);
          } catch (e) {
            throw new Error(`supra: ${path}: bad metadata sampling = ${JSON.stringify(sampling)}: ${(e as Error).message.replace(/^supra: /, '')}`);
          }
        }
      }
      return state;
    } catch (e) {
      state.free();
      throw e;
    }
  } finally {
    file.close();
  }
}
