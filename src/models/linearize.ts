// Linearize: turn a softmax teacher into a SUPRA model. Every teacher weight is kept; each attention layer
// gains the kernel feature map (kernel_q, plus kernel_k under GQA) and, optionally, qk-norm gains.
import { resolve } from 'node:path';
import { writeFolderAtomic } from '../io/atomic.js';
import { Mt19937 } from '../core/random.js';
import { lazyTensors, openModel, saveCheckpoint } from '../io/checkpoint.js';
import type { Decay, ModelConfig, Normalization, QkNorm, SupraSettings } from '../io/config.js';
import { SUPRA_ARCHITECTURE, saveConfig } from '../io/config.js';
import type { TensorLike } from '../io/open_lm.js';
import type { TensorToWrite } from '../io/safetensors.js';
import { decaySlopes } from '../layers/linear_attention.js';
import { checkModelTensors, copyTokenizerFiles } from './convert.js';
import { DecoderLM, parameterShapes } from './decoder.js';

export interface LinearizeOptions {
  qk_norm?: QkNorm;
  qk_norm_eps?: number;
  decay?: Decay;
  group_norm_eps?: number;
  /** 'group_norm' (SUPRA, default) or 'sum' (the T2R-style ablation: sum denominator, no GroupNorm). */
  normalization?: Normalization;
  /** Added to the 'sum' denominator (default 1e-6). */
  normalizer_eps?: number;
  /** Seed of the kernel initialisation (torch.Generator().manual_seed(seed) in the reference). */
  seed?: number;
}

export interface NewSupraTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export function supraSettings(options: LinearizeOptions = {}): SupraSettings {
  return {
    qk_norm: options.qk_norm ?? 'none',
    qk_norm_eps: options.qk_norm_eps ?? 1e-5,
    decay: options.decay ?? 'lightning',
    group_norm_eps: options.group_norm_eps ?? 1e-5,
    normalization: options.normalization ?? 'group_norm',
    normalizer_eps: options.normalizer_eps ?? 1e-6,
  };
}

/**
 * How far back each head of a SUPRA model remembers: the tokens after which a token's weight in the head's
 * state has decayed to 1/e (1/slope; Infinity without decay). For reports that explain what it recalls.
 */
export function decayHorizons(heads: number, decay: Decay): number[] {
  return Array.from(decaySlopes(heads, decay), (s) => (s > 0 ? 1 / s : Infinity));
}

/** The SUPRA config for a teacher config: the teacher's fields plus the "supra" object. */
export function supraConfig(teacher: ModelConfig, options: LinearizeOptions = {}): ModelConfig {
  if (teacher.supra) throw new Error('supra: this model is already a SUPRA model');
  const supra = supraSettings(options);
  const raw = { ...teacher.raw, architectures: [SUPRA_ARCHITECTURE], model_type: 'supra', supra };
  return { ...teacher, architecture: SUPRA_ARCHITECTURE, model_type: 'supra', supra, raw };
}

/** A new SUPRA parameter before its values are drawn: U(±bound), or ones (qk-norm gains) when bound is null. */
interface NewParamSpec {
  name: string;
  shape: number[];
  bound: number | null;
}

/**
 * The new SUPRA parameters of a teacher config, in the order their values are drawn: kernel_q.weight,
 * kernel_q.bias, kernel_k.weight, kernel_k.bias, layer by layer. Under GQA keys get their own kernel
 * (applied before the kv heads are repeated); otherwise q and k share one.
 */
function newParamSpecs(config: ModelConfig, options: LinearizeOptions): NewParamSpec[] {
  const { num_attention_heads: H, num_key_value_heads: Hkv, head_dim: D } = config;
  const qkNorm = options.qk_norm ?? config.supra?.qk_norm ?? 'none';
  const specs: NewParamSpec[] = [];
  // PyTorch's nn.Linear default: U(±1/√fan_in) for weight and bias
  const linear = (prefix: string, width: number) => {
    const bound = 1 / Math.sqrt(width);
    specs.push({ name: `${prefix}.weight`, shape: [width, width], bound }, { name: `${prefix}.bias`, shape: [width], bound });
  };
  for (let l = 0; l < config.num_hidden_layers; l++) {
    const p = `model.layers.${l}.self_attn`;
    linear(`${p}.kernel_q`, H * D);
    if (Hkv !== H) linear(`${p}.kernel_k`, Hkv * D);
    if (qkNorm !== 'none') {
      specs.push({ name: `${p}.q_norm.weight`, shape: [H * D], bound: null }, { name: `${p}.k_norm.weight`, shape: [H * D], bound: null });
    }
  }
  return specs;
}

/** The new parameters' values, drawn one tensor at a time (in newParamSpecs order) from one seeded generator. */
function* drawNewParams(specs: readonly NewParamSpec[], seed: number): Generator<NewSupraTensor> {
  const rng = new Mt19937(seed);
  for (const { name, shape, bound } of specs) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (bound === null) data.fill(1);
    else rng.fillUniform(data, -bound, bound);
    yield { name, shape: [...shape], data };
  }
}

/**
 * The new SUPRA parameters for a teacher config, initialised as the reference does: PyTorch's nn.Linear
 * default U(±1/√fan_in) for weight and bias, drawn from one seeded generator in the order
 * kernel_q.weight, kernel_q.bias, kernel_k.weight, kernel_k.bias, layer by layer. qk-norm gains start at 1.
 * Under GQA keys get their own kernel (applied before the kv heads are repeated); otherwise q and k share one.
 */
export function initSupraParams(config: ModelConfig, options: LinearizeOptions = {}): NewSupraTensor[] {
  return [...drawNewParams(newParamSpecs(config, options), options.seed ?? 0)];
}

/**
 * linearize(teacher, options): a new SUPRA model holding a copy of every teacher weight plus freshly
 * initialised kernels. The teacher is left untouched.
 */
export function linearize(source: DecoderLM | { readonly model: DecoderLM }, options: LinearizeOptions = {}): DecoderLM {
  const teacher = source instanceof DecoderLM ? source : source.model;
  const model = new DecoderLM(supraConfig(teacher.config, options));
  const fresh = new Map(initSupraParams(teacher.config, options).map((t) => [t.name, t]));
  for (const p of model.params()) {
    const src = fresh.get(p.name)?.data ?? teacher.param(p.name).data;
    if (src.length !== p.data.length) throw new Error(`supra: linearize: ${p.name} has ${src.length} values, expected ${p.data.length}`);
    p.data.set(src);
  }
  return model;
}

export interface LinearizeFolderOptions extends LinearizeOptions {
  /**
   * Stored dtype of every written weight. Default: each teacher tensor keeps its stored dtype (F64 is
   * written as F32) and the new tensors take the teacher embedding's.
   */
  dtype?: WriteDType;
  /** Largest shard in tensor bytes; a bigger model is written as shards plus an index (default 5 GB, as transformers). */
  maxShardBytes?: number;
}

type WriteDType = 'F32' | 'F16' | 'BF16';

/** The dtype a teacher tensor stored as `stored` is written in, by default. */
function keptDType(stored: string): WriteDType {
  return stored === 'F16' || stored === 'BF16' ? stored : 'F32';
}

/**
 * `supra linearize <teacher-dir> --out <dir>`: read a teacher folder (safetensors, sharded, or a PyTorch
 * .bin), add the SUPRA parameters, and write a SUPRA folder: config.json with the "supra" settings, the
 * weights (model.safetensors, or shards and model.safetensors.index.json past maxShardBytes) with the
 * teacher's names plus the kernels, and the tokenizer files copied across. It streams: each teacher
 * tensor is read when the writer reaches it and each new tensor drawn then, so memory holds one tensor,
 * whatever the model's size. The teacher's tensors are checked first, from their headers, as convert
 * checks them (checkModelTensors: a missing, misshapen or unused tensor is refused); the new folder
 * (absent or empty) appears only once complete.
 */
export function linearizeFolder(teacherDir: string, outDir: string, options: LinearizeFolderOptions = {}): { config: ModelConfig; files: string[] } {
  // any folder the one reader opens (an open_lm teacher too), under supra's names
  const { checkpoint: ckpt, config: teacher, dir } = openModel(teacherDir);
  try {
    if (resolve(outDir) === resolve(dir)) throw new Error(`supra: linearize: the output folder ${outDir} is the teacher's folder; choose a new one`);
    const tensors = lazyTensors(ckpt);
    const config = supraConfig(teacher, options);
    const kept = checkModelTensors(teacher, tensors, teacherDir);
    const teacherDType = keptDType(tensors.get('model.embed_tokens.weight')!.dtype!);
    const specs = newParamSpecs(teacher, options);
    // the SUPRA model's tensors, checked as a whole: the teacher's plus the new ones, nothing else
    const declared = new Map<string, TensorLike>(kept);
    for (const t of specs) declared.set(t.name, { dtype: 'F32', shape: t.shape, data: new Float32Array(0) });
    checkModelTensors(config, declared, outDir);

    // The new tensors come from one generator in draw order (the seed fixes each one's values); the
    // writer asks for them in the model's declaration order, the same order for the kernels, so at most
    // a qk-norm gain or two wait in `early`.
    const draws = drawNewParams(specs, options.seed ?? 0);
    const early = new Map<string, Float32Array>();
    const drawn = (name: string): Float32Array => {
      while (!early.has(name)) {
        const next = draws.next();
        if (next.done) break;
        early.set(next.value.name, next.value.data);
      }
      const data = early.get(name);
      if (!data) throw new Error(`supra: linearize: no new tensor ${name} to draw`);
      early.delete(name);
      return data;
    };
    const isNew = new Set(specs.map((t) => t.name));
    const plan: TensorToWrite[] = [...parameterShapes(config)].map(([name, shape]) =>
      isNew.has(name)
        ? { name, shape, dtype: options.dtype ?? teacherDType, data: () => drawn(name) }
        : { name, shape, dtype: options.dtype ?? keptDType(kept.get(name)!.dtype!), data: () => kept.get(name)!.data },
    );
    const torchDtype = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[options.dtype ?? teacherDType];
    const files = writeFolderAtomic(outDir, (tmp) => [
      ...saveCheckpoint(tmp, plan, { maxShardBytes: options.maxShardBytes }),
      saveConfig(tmp, config, { torch_dtype: torchDtype }),
      ...copyTokenizerFiles(dir, tmp),
    ]);
    return { config, files };
  } finally {
    ckpt.close();
  }
}
