// Loading a decoder from a local model folder (config.json plus the weights in any layout
// io/checkpoint.ts reads: safetensors or pytorch_model.bin, single or sharded, under Hugging Face or
// open_lm names), and token-id input in the shapes transformers.js accepts. The public wrapper in the
// shape transformers.js users know (AutoModelForCausalLM, CausalLM with forward/generate, AutoTokenizer) is in
// src/api.ts, above generation.
import type { BackendName } from '../core/backend.js';
import { warn } from '../core/host.js';
import { openModel } from '../io/checkpoint.js';
import { widenParam } from '../layers/linear.js';
import { checkParametersFit, DecoderLM, foldsFeatureMaps, parameterShapes, type DecoderOptions } from './decoder.js';

export interface FromPretrainedOptions extends DecoderOptions {
  /** Compute backend for the whole process (as setBackend); default: the current one. */
  backend?: BackendName;
  /** Throw instead of warning when the checkpoint holds tensors the model does not use. Default false. */
  strict?: boolean;
}

/**
 * Build the decoder a folder's config.json describes (transformers' or open_lm's) and fill its
 * parameters from the folder's weights (io/checkpoint.ts openModel: any layout, HF or open_lm names).
 * Every parameter must be present with its shape (errors name the file and tensor); tensors the model
 * does not use are reported in `unexpected` (and warned about, or rejected when strict). With
 * foldFeatureMaps (the default for bf16 and int8) the mixers' composable maps are then folded for inference.
 */
export function loadDecoder(dir: string, options: FromPretrainedOptions = {}): { model: DecoderLM; unexpected: string[] } {
  const { config, checkpoint: ckpt } = openModel(dir);
  let model: DecoderLM;
  try {
    // the weights' shapes against the config before any memory is taken: a config that disagrees with
    // its weights (a vocab_size of 2^31) is named here, not met as an arena of terabytes
    for (const [name, shape] of parameterShapes(config, options)) {
      if (!ckpt.has(name)) continue; // the load below lists every missing tensor
      const found = ckpt.info(name).shape;
      if (found.length !== shape.length || found.some((d, i) => d !== shape[i])) {
        throw new Error(`supra: ${ckpt.fileOf(name)}: tensor ${name} has shape [${found.join(', ')}], the config expects [${shape.join(', ')}]`);
      }
    }
    checkParametersFit(config, options, dir); // named by the folder; the constructor checks it too
    model = new DecoderLM(config, options);
  } catch (e) {
    ckpt.close();
    throw e;
  }
  try {
    const { unexpected } = model.store.load(ckpt, ckpt.files.length === 1 ? ckpt.files[0]! : dir);
    if (unexpected.length > 0) {
      const shown = unexpected.slice(0, 8).join(', ') + (unexpected.length > 8 ? `, … (${unexpected.length} in all)` : '');
      const msg = `supra: ${dir}: ${unexpected.length} tensor${unexpected.length > 1 ? 's' : ''} in the checkpoint not used by ${config.architecture}: ${shown}`;
      if (options.strict) throw new Error(msg);
      warn(msg);
    }
    // composed from the file's values, so the composed weight is rounded once: the stored ones where they
    // are those (a BF16 tensor held as bf16, an f32 one as f32), else read again
    if (foldsFeatureMaps(options)) {
      model.foldForInference((p, dest) => {
        const type = p.stored?.type ?? 'f32';
        const file = ckpt.info(p.name).dtype;
        if (type === 'f32' || (type === 'bf16' && file === 'BF16')) widenParam(p, dest);
        else ckpt.readInto(p.name, dest);
      });
    }
    return { model, unexpected };
  } catch (e) {
    model.free();
    throw e;
  } finally {
    ckpt.close();
  }
}

/** Token ids as transformers.js passes them: a Tensor-like {data, dims} ([B, T] or [T]) or nested arrays. */
export type InputIds = { data: ArrayLike<number | bigint>; dims: readonly number[] } | number[][] | number[];

/** ids → (flat int32, B, T), with clear errors for ragged or non-integer input. */
export function toIdBatch(input: InputIds): { ids: Int32Array; B: number; T: number } {
  if (Array.isArray(input)) {
    if (input.length === 0) throw new Error('supra: input_ids is empty');
    const rows: number[][] = Array.isArray(input[0]) ? (input as number[][]) : [input as number[]];
    const T = rows[0]!.length;
    if (T === 0) throw new Error('supra: input_ids has empty rows');
    const ids = new Int32Array(rows.length * T);
    rows.forEach((r, b) => {
      if (!Array.isArray(r) || r.length !== T) throw new Error(`supra: input_ids row ${b} has ${Array.isArray(r) ? r.length : 'no'} tokens, row 0 has ${T} (pad to one length)`);
      r.forEach((v, t) => (ids[b * T + t] = checkedId(v, b * T + t)));
    });
    return { ids, B: rows.length, T };
  }
  const dims = input.dims;
  if (dims.length !== 1 && dims.length !== 2) throw new Error(`supra: input_ids must have dims [B, T] or [T], got [${dims.join(', ')}]`);
  const B = dims.length === 2 ? dims[0]! : 1;
  const T = dims[dims.length - 1]!;
  if (input.data.length !== B * T || B * T === 0) throw new Error(`supra: input_ids dims [${dims.join(', ')}] do not match its ${input.data.length} values`);
  const ids = new Int32Array(B * T);
  for (let i = 0; i < B * T; i++) ids[i] = checkedId(Number(input.data[i]!), i);
  return { ids, B, T };
}

function checkedId(v: number, i: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff) throw new Error(`supra: input_ids[${i}] = ${v} is not a token id`);
  return v;
}
