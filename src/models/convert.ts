// `supra convert`: move a checkpoint between supra's own layout (HF names, model.safetensors) and the
// open_lm layout of the paper authors' released Mistral-SUPRA, reading safetensors or PyTorch .bin files.
//
// Input: a folder (config.json plus model.safetensors, a safetensors index, pytorch_model.bin, or a
// pytorch_model.bin.index.json with its shards) or a single weights file (its folder's config.json is
// used), opened by io/checkpoint.ts openModel as every command opens model folders. The layout is detected
// from the tensor names; config.json may be transformers' or open_lm's.
// Output: a new folder with config.json (HF style for 'supra', open_lm params for 'open_lm'), the
// weights in the requested dtype (safetensors sharded past maxShardBytes, as linearize writes them), and
// the input's tokenizer/generation files copied alongside. It streams: each tensor is read (and in_proj /
// w12 fused or split) when the writer reaches it, so memory holds about one tensor whatever the model's size.
import { copyFileSync, existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { writeFolderAtomic, writeJsonAtomic } from '../io/atomic.js';
import { lazyTensors, openModel, saveCheckpoint } from '../io/checkpoint.js';
import { readConfigJson, type ModelConfig } from '../io/config.js';
import { modelConfigOf, toOpenLm, toOpenLmModelJson, toOpenLmParams, type TensorLike } from '../io/open_lm.js';
import { isFloatDType, type DType } from '../io/safetensors.js';
import { writeTorchCheckpoint } from '../io/torch.js';
import { parameterShapes } from './decoder.js';

export type ConvertFormat = 'supra' | 'open_lm';
export type ConvertDType = 'f32' | 'bf16' | 'f16';

export interface ConvertOptions {
  format: ConvertFormat;
  /**
   * open_lm output only: also write layers.N.attention.pos_embed.inv_freq, the persistent buffer upstream
   * open_lm (mlfoundations/open_lm) registers. Default false: the paper's code (TRI-ML/linear_open_lm)
   * keeps inv_freq as a plain attribute, so its strict load_state_dict rejects the buffer.
   */
  openLmInvFreq?: boolean;
  /**
   * open_lm output only: write what the paper's trainer, open_lm.main, loads: the bare Transformer state
   * dict (no "model." prefix: `--pretrained` hands the file to load_state_dict as it is) in a
   * pytorch_model.bin (`--pretrained` reads it with torch.load; the default container here), plus
   * OPEN_LM_MODEL_JSON for its `--model`. Default false: the HF wrapper's layout ("model." names).
   */
  openLmTrain?: boolean;
  /** With openLmTrain: seq_len of OPEN_LM_MODEL_JSON, the length open_lm.main trains at (default max_position_embeddings). */
  openLmSeqLen?: number;
  /** Stored dtype of the output weights. Default f32. */
  dtype?: ConvertDType;
  /** Output container: model.safetensors (default) or a PyTorch pytorch_model.bin. */
  container?: 'safetensors' | 'pytorch';
  /**
   * safetensors output: the largest weights file in tensor bytes; a bigger model is written as shards plus
   * model.safetensors.index.json (default 5 GB, as transformers and linearize).
   */
  maxShardBytes?: number;
}

export interface ConvertResult {
  /** Layout the input was detected to be in. */
  inputLayout: ConvertFormat;
  config: ModelConfig;
  files: string[];
}

/** The --model JSON for open_lm.main that convertCheckpoint writes with openLmTrain. */
export const OPEN_LM_MODEL_JSON = 'open_lm_model.json';

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'tokenizer.model', 'generation_config.json'];
const DTYPES = { f32: 'F32', bf16: 'BF16', f16: 'F16' } as const;

/** Copy the tokenizer and generation files of a model folder into another; returns the files written. */
export function copyTokenizerFiles(fromDir: string, toDir: string): string[] {
  const written: string[] = [];
  for (const f of TOKENIZER_FILES) {
    const src = join(fromDir, f);
    if (existsSync(src)) {
      copyFileSync(src, join(toDir, basename(f)));
      written.push(join(toDir, f));
    }
  }
  return written;
}

/** Buffers some checkpoints carry that a model derives from its config (old HF Llama: RoPE inv_freq). */
const DERIVED_BUFFER = /^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/;

function sameBits(a: TensorLike['data'], b: TensorLike['data']): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

function listed(names: readonly string[]): string {
  return names.slice(0, 8).join(', ') + (names.length > 8 ? `, … (${names.length} in all)` : '');
}

/**
 * The one check of a checkpoint's tensors (supra names) against its config, used by convert (either
 * direction) and linearize before anything is written: every parameter a model of `config` declares
 * must be present, float, and of its shape; the result holds exactly those tensors. A tensor the model
 * does not use is refused rather than dropped, since writing the folder without it would lose it
 * silently, except what the model derives anyway: RoPE inv_freq buffers and, with tied embeddings, an
 * lm_head.weight bit-identical to the embedding. `source` names the input in errors.
 */
export function checkModelTensors(config: ModelConfig, tensors: ReadonlyMap<string, TensorLike>, source: string): Map<string, TensorLike> {
  const expected = parameterShapes(config);
  const out = new Map<string, TensorLike>();
  const missing: string[] = [];
  for (const [name, shape] of expected) {
    const t = tensors.get(name);
    if (!t) {
      missing.push(name);
      continue;
    }
    // by the stored dtype where known, so a tensor read lazily (io/checkpoint.ts lazyTensors) is not read here
    const isFloat = t.dtype !== undefined ? isFloatDType(t.dtype as DType) : t.data instanceof Float32Array;
    if (!isFloat) throw new Error(`supra: ${source}: tensor ${name} holds integers (${t.dtype ?? 'int'}), expected floats`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`supra: ${source}: tensor ${name} has shape [${t.shape.join(', ')}], the config expects [${shape.join(', ')}]`);
    }
    out.set(name, t);
  }
  if (missing.length > 0) {
    throw new Error(`supra: ${source}: missing tensor${missing.length > 1 ? 's' : ''} ${listed(missing)} (needed by ${config.architecture} as config.json describes it)`);
  }
  const embedding = tensors.get('model.embed_tokens.weight')!;
  const derived = (name: string, t: TensorLike) =>
    DERIVED_BUFFER.test(name) || (name === 'lm_head.weight' && config.tie_word_embeddings && sameBits(t.data, embedding.data));
  const unused = [...tensors].filter(([name, t]) => !expected.has(name) && !derived(name, t)).map(([name]) => name);
  if (unused.length > 0) {
    throw new Error(
      `supra: ${source}: ${unused.length} tensor${unused.length > 1 ? 's' : ''} not used by ${config.architecture} as config.json describes it: ${listed(unused)}; ` +
        'they would be lost in the output, so nothing is written (remove them from the checkpoint, or fix config.json if the model needs them)',
    );
  }
  return out;
}

/** The model config for a checkpoint: transformers' config.json, or open_lm's mapped to HF fields. */
export function checkpointConfig(dir: string, tensors: ReadonlyMap<string, TensorLike>): ModelConfig {
  const { raw, path } = readConfigJson(dir);
  return modelConfigOf(raw, tensors, path);
}

/**
 * Convert `inPath` into the new folder `outDir` (absent or empty) in the requested layout and dtype. The
 * tensors are checked against the config first, from their headers (checkModelTensors; toOpenLm's
 * checks), and the folder is written under a temporary name and renamed, so a refusal or failure leaves
 * no output. It streams: the input is opened as every command opens a model folder (openModel: an
 * open_lm checkpoint under supra's names, in_proj and w12 split as they are read) and each output
 * tensor is read, fused (open_lm output) and converted only when the writer reaches it, so memory holds
 * about one tensor (two, while in_proj or w12 is built), not the model.
 */
export function convertCheckpoint(inPath: string, outDir: string, options: ConvertOptions): ConvertResult {
  if (options.format !== 'supra' && options.format !== 'open_lm') throw new Error(`supra: convert: format must be 'supra' or 'open_lm', got ${JSON.stringify(options.format)}`);
  const dtypeName = options.dtype ?? 'f32';
  const dtype = DTYPES[dtypeName];
  if (!dtype) throw new Error(`supra: convert: dtype must be f32, bf16 or f16, got ${JSON.stringify(options.dtype)}`);
  const train = options.openLmTrain === true;
  if ((train || options.openLmSeqLen !== undefined) && options.format !== 'open_lm') throw new Error('supra: convert: openLmTrain and openLmSeqLen apply to the open_lm format only');
  if (options.openLmSeqLen !== undefined && !train) throw new Error('supra: convert: openLmSeqLen is the seq_len of open_lm.main\'s --model JSON, written with openLmTrain only');
  if (train && options.container === 'safetensors') throw new Error('supra: convert: open_lm.main reads its --pretrained checkpoint with torch.load; openLmTrain writes a pytorch_model.bin, not safetensors');
  const container = options.container ?? (train ? 'pytorch' : 'safetensors');
  const { checkpoint, config, dir, layout: inputLayout } = openModel(inPath);
  try {
    if (resolve(outDir) === resolve(dir)) throw new Error(`supra: convert: the output folder ${outDir} is the input folder; choose a new one`);
    // both directions go through supra names and the one check against the config
    const model = checkModelTensors(config, lazyTensors(checkpoint), inPath);
    const out = options.format === 'open_lm' ? toOpenLm(model, config, { rotaryBuffers: options.openLmInvFreq === true, prefix: !train }) : model;
    // each tensor's data is asked for once, when it is written; one function per tensor object, so the
    // tied output.weight of open_lm (the embedding's tensor) shares its storage in a pytorch_model.bin
    const reader = new Map<TensorLike, () => Float32Array>();
    const readerOf = (t: TensorLike) => {
      let read = reader.get(t);
      if (!read) reader.set(t, (read = () => t.data as Float32Array));
      return read;
    };
    const plan = new Map([...out].map(([name, t]) => [name, { shape: [...t.shape], data: readerOf(t) }]));
    const torchDtype = { F32: 'float32', BF16: 'bfloat16', F16: 'float16' }[dtype];
    const configOut = options.format === 'open_lm' ? { ...toOpenLmParams(config), torch_dtype: torchDtype } : { ...config.raw, torch_dtype: torchDtype };
    // before anything is written, so a config open_lm.main cannot build is refused with no output
    const modelJson = train ? toOpenLmModelJson(config, { seqLen: options.openLmSeqLen }) : null;

    const files = writeFolderAtomic(outDir, (tmp) => {
      const written: string[] = [];
      if (container === 'pytorch') {
        const path = join(tmp, 'pytorch_model.bin');
        writeTorchCheckpoint(path, plan, { dtype });
        written.push(path);
      } else {
        written.push(...saveCheckpoint(tmp, plan, { dtype, maxShardBytes: options.maxShardBytes }));
      }
      const configPath = join(tmp, 'config.json');
      writeJsonAtomic(configPath, configOut);
      written.push(configPath);
      if (modelJson) {
        const path = join(tmp, OPEN_LM_MODEL_JSON);
        writeJsonAtomic(path, modelJson);
        written.push(path);
      }
      written.push(...copyTokenizerFiles(dir, tmp));
      return written;
    });
    return { inputLayout, config, files };
  } finally {
    checkpoint.close();
  }
}
