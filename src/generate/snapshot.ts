// Snapshots of a SUPRA generation: save a GenerationState to a safetensors file and continue from it later,
// in this process or another, with exactly the tokens the uninterrupted run would have produced.
//
// File (written atomically by writeSafetensors):
//   state.layer.N  F32 [B, H, Dk, Dv]  layer N's recurrent state (already × γ, as SupraState holds it)
//   state.layer.N.normalizer  F32 [B, H, Dk]  normalization 'sum' only: the denominator's state (× γ too)
//   tokens         I32 [B, L]          every token of the context (all of them consumed)
//   logits         F32 [B, V]          the next-token logits after them
//   __metadata__   format "supra-state/1", position, batch, layers, vocab_size, architecture,
//                  model_fingerprint, rng ("seed:draws" or ""), content_sha256
//
// model_fingerprint = sha256 over the config fields that shape the computation, every parameter's name and
// shape, and a sample of each parameter's values (up to 4096 evenly strided elements plus the first and
// last 64). It tells a snapshot of another model or of other weights (any fine-tune moves every sample)
// from one of this model, without hashing gigabytes; an edit confined to unsampled elements goes unseen.
// content_sha256 covers the tensor bytes, so a damaged file is refused, not continued from.
import { createHash } from 'node:crypto';
import { SafetensorsFile, writeSafetensors } from '../io/safetensors.js';
import { SupraState } from '../layers/supra_attention.js';
import type { DecoderLM } from '../models/decoder.js';
import { SeededRandom } from './sampling.js';
import { GenerationState } from './state.js';

export const STATE_FORMAT = 'supra-state/1';

/** A DecoderLM, or anything holding one as `.model` (CausalLM). */
export type ModelLike = DecoderLM | { readonly model: DecoderLM };

function decoderOf(m: ModelLike): DecoderLM {
  return 'store' in m ? m : m.model;
}

const SAMPLE = 4096;
const EDGE = 64;
const fingerprints = new WeakMap<DecoderLM, string>();

/**
 * The model's fingerprint (see the file comment). Cached per model object: call with `fresh` after
 * changing the weights in place (training) to recompute it.
 */
export function modelFingerprint(model: ModelLike, fresh = false): string {
  const m = decoderOf(model);
  const cached = fingerprints.get(m);
  if (cached && !fresh) return cached;
  const c = m.config;
  const h = createHash('sha256');
  // GroupNorm models hash their settings as before the normalization option existed: their snapshots stay valid
  const s = c.supra;
  const supra = s && s.normalization === 'group_norm'
    ? { qk_norm: s.qk_norm, qk_norm_eps: s.qk_norm_eps, decay: s.decay, group_norm_eps: s.group_norm_eps }
    : s ?? null;
  h.update(JSON.stringify({
    architecture: c.architecture, vocab_size: c.vocab_size, hidden_size: c.hidden_size, layers: c.num_hidden_layers,
    heads: c.num_attention_heads, kv_heads: c.num_key_value_heads, head_dim: c.head_dim, ffn: c.intermediate_size,
    rope_theta: c.rope_theta, rms_norm_eps: c.rms_norm_eps, tie: c.tie_word_embeddings, supra,
  }));
  const sample = new Float32Array(SAMPLE + 2 * EDGE);
  for (const p of m.params()) {
    h.update(`${p.name}[${p.shape.join(',')}]`);
    const n = p.data.length;
    let k = 0;
    for (let i = 0; i < Math.min(EDGE, n); i++) sample[k++] = p.data[i]!;
    for (let i = Math.max(0, n - EDGE); i < n; i++) sample[k++] = p.data[i]!;
    const stride = Math.max(1, Math.floor(n / SAMPLE));
    for (let i = 0; i < n && k < sample.length; i += stride) sample[k++] = p.data[i]!;
    h.update(new Uint8Array(sample.buffer, 0, k * 4));
  }
  const fp = h.digest('hex');
  fingerprints.set(m, fp);
  return fp;
}

function supraStates(state: GenerationState, what: string): SupraState[] {
  return state.decoder.layers.map((l, i) => {
    if (!(l instanceof SupraState)) {
      throw new Error(`supra: ${what}: state snapshots are for SUPRA models (layer ${i} keeps a ${l.constructor.name}, the model is ${state.model.config.architecture})`);
    }
    return l;
  });
}

function contentHash(tensors: ReadonlyArray<{ name: string; data: Float32Array | Int32Array }>): string {
  const h = createHash('sha256');
  for (const t of tensors) {
    h.update(t.name);
    h.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  return h.digest('hex');
}

/**
 * Write `state` to `path` (atomically). Pending tokens (the last sampled token) are fed through the model
 * first, so the file holds a state that has consumed its whole context plus the logits that follow.
 */
export function saveState(path: string, model: ModelLike, state: GenerationState): void {
  const m = decoderOf(model);
  if (state.model !== m) throw new Error(`supra: ${path}: this generation state belongs to another model object`);
  const layers = supraStates(state, path);
  if (state.length === 0) throw new Error(`supra: ${path}: nothing to save: the state has no context yet`);
  const logits = state.nextLogits();
  const B = state.batch, L = state.length, V = m.config.vocab_size;
  const tokens = new Int32Array(B * L);
  state.tokens.forEach((row, b) => tokens.set(row, b * L));
  const tensors = [
    ...layers.flatMap((s, i) => [
      { name: `state.layer.${i}`, shape: [s.batch, s.heads, s.dk, s.dv], data: s.data },
      ...(s.normalizer ? [{ name: `state.layer.${i}.normalizer`, shape: [s.batch, s.heads, s.dk], data: s.normalizer }] : []),
    ]),
    { name: 'tokens', shape: [B, L], data: tokens },
    { name: 'logits', shape: [B, V], data: logits },
  ];
  const rng = state.rng ? `${state.rng.seed}:${state.rng.draws}` : '';
  writeSafetensors(path, tensors, {
    format: STATE_FORMAT,
    position: String(state.position),
    batch: String(B),
    layers: String(layers.length),
    vocab_size: String(V),
    architecture: m.config.architecture,
    model_fingerprint: modelFingerprint(m),
    rng,
    content_sha256: contentHash(tensors),
  });
}

/**
 * Read a snapshot written by saveState for `model`, as a new GenerationState ready to continue. Refused,
 * with an error naming the file, when it is not a snapshot, comes from another model, has shapes that do
 * not fit this model, or is damaged.
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
    if (meta.format !== STATE_FORMAT) {
      throw new Error(`supra: ${path}: not a supra state snapshot (metadata format is ${JSON.stringify(meta.format ?? null)}, expected "${STATE_FORMAT}")`);
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
    const state = new GenerationState(m, B);
    try {
      const layers = supraStates(state, path);
      const read: Array<{ name: string; data: Float32Array | Int32Array }> = [];
      layers.forEach((s, i) => {
        const name = `state.layer.${i}`;
        expectShape(name, [B, s.heads, s.dk, s.dv]);
        if (file.info(name).dtype !== 'F32') throw new Error(`supra: ${path}: tensor ${name} must be F32`);
        file.readInto(name, s.data);
        read.push({ name, data: s.data });
        const zName = `${name}.normalizer`;
        if (s.normalizer) {
          expectShape(zName, [B, s.heads, s.dk]);
          if (file.info(zName).dtype !== 'F32') throw new Error(`supra: ${path}: tensor ${zName} must be F32`);
          file.readInto(zName, s.normalizer);
          read.push({ name: zName, data: s.normalizer });
        } else if (file.has(zName)) {
          throw new Error(`supra: ${path}: tensor ${zName} is not part of this model's state (normalization ${c.supra?.normalization ?? 'none'})`);
        }
      });
      expectShape('tokens', [B, position]);
      expectShape('logits', [B, V]);
      const tokens = file.readI32('tokens');
      const logits = file.readF32('logits');
      read.push({ name: 'tokens', data: tokens }, { name: 'logits', data: logits });
      if (contentHash(read) !== meta.content_sha256) throw new Error(`supra: ${path}: the snapshot is damaged (its content does not match its checksum)`);
      const rows = Array.from({ length: B }, (_, b) => tokens.subarray(b * position, (b + 1) * position));
      state.append(rows);
      state.decoder.position = position;
      for (const s of layers) s.position = position;
      state.restoreLogits(logits);
      const rng = meta.rng ?? '';
      if (rng !== '') {
        const [seed, draws] = rng.split(':').map(Number);
        try {
          state.rng = new SeededRandom(seed!, draws!);
        } catch {
          throw new Error(`supra: ${path}: bad metadata rng = ${JSON.stringify(rng)}`);
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
