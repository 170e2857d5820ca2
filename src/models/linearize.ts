// Linearize: turn a softmax teacher into a SUPRA model. Every teacher weight is kept; each attention layer
// gains the kernel feature map (kernel_q, plus kernel_k under GQA) and, optionally, qk-norm gains.
import { resolve } from 'node:path';
import { writeFolderAtomic } from '../io/atomic.js';
import { Mt19937 } from '../core/random.js';
import { readModelTensors, saveCheckpoint } from '../io/checkpoint.js';
import type { Decay, ModelConfig, Normalization, QkNorm, SupraSettings } from '../io/config.js';
import { SUPRA_ARCHITECTURE, saveConfig } from '../io/config.js';
import type { TensorLike } from '../io/open_lm.js';
import { checkModelTensors, copyTokenizerFiles } from './convert.js';
import { DecoderLM } from './decoder.js';

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

/** The SUPRA config for a teacher config: the teacher's fields plus the "supra" object. */
export function supraConfig(teacher: ModelConfig, options: LinearizeOptions = {}): ModelConfig {
  if (teacher.supra) throw new Error('supra: this model is already a SUPRA model');
  const supra = supraSettings(options);
  const raw = { ...teacher.raw, architectures: [SUPRA_ARCHITECTURE], model_type: 'supra', supra };
  return { ...teacher, architecture: SUPRA_ARCHITECTURE, model_type: 'supra', supra, raw };
}

/**
 * The new SUPRA parameters for a teacher config, initialised as the reference does: PyTorch's nn.Linear
 * default U(±1/√fan_in) for weight and bias, drawn from one seeded generator in the order
 * kernel_q.weight, kernel_q.bias, kernel_k.weight, kernel_k.bias, layer by layer. qk-norm gains start at 1.
 * Under GQA keys get their own kernel (applied before the kv heads are repeated); otherwise q and k share one.
 */
export function initSupraParams(config: ModelConfig, options: LinearizeOptions = {}): NewSupraTensor[] {
  const { num_attention_heads: H, num_key_value_heads: Hkv, head_dim: D } = config;
  const qkNorm = options.qk_norm ?? config.supra?.qk_norm ?? 'none';
  const rng = new Mt19937(options.seed ?? 0);
  const out: NewSupraTensor[] = [];
  const linearInit = (prefix: string, width: number) => {
    const bound = 1 / Math.sqrt(width);
    const weight = new Float32Array(width * width);
    const bias = new Float32Array(width);
    rng.fillUniform(weight, -bound, bound);
    rng.fillUniform(bias, -bound, bound);
    out.push({ name: `${prefix}.weight`, shape: [width, width], data: weight });
    out.push({ name: `${prefix}.bias`, shape: [width], data: bias });
  };
  for (let l = 0; l < config.num_hidden_layers; l++) {
    const p = `model.layers.${l}.self_attn`;
    linearInit(`${p}.kernel_q`, H * D);
    if (Hkv !== H) linearInit(`${p}.kernel_k`, Hkv * D);
    if (qkNorm !== 'none') {
      out.push({ name: `${p}.q_norm.weight`, shape: [H * D], data: new Float32Array(H * D).fill(1) });
      out.push({ name: `${p}.k_norm.weight`, shape: [H * D], data: new Float32Array(H * D).fill(1) });
    }
  }
  return out;
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
  /** Stored dtype of the written weights; default: F32. */
  dtype?: 'F32' | 'F16' | 'BF16';
}

/**
 * `supra linearize <teacher-dir> --out <dir>`: read a teacher folder (safetensors, sharded, or a PyTorch
 * .bin), add the SUPRA parameters, and write a SUPRA folder: config.json with the "supra" settings,
 * model.safetensors with the teacher's names plus the kernels, and the tokenizer files copied across.
 * The teacher's tensors are checked as convert checks them (checkModelTensors: a missing, misshapen or
 * unused tensor is refused); the new folder (absent or empty) appears only once complete.
 */
export function linearizeFolder(teacherDir: string, outDir: string, options: LinearizeFolderOptions = {}): { config: ModelConfig; files: string[] } {
  const { tensors, config: teacher, dir } = readModelTensors(teacherDir);
  if (resolve(outDir) === resolve(dir)) throw new Error(`supra: linearize: the output folder ${outDir} is the teacher's folder; choose a new one`);
  const config = supraConfig(teacher, options);
  // the teacher's tensors checked as convert checks them, then the SUPRA model's: teacher plus kernels
  const out = new Map<string, TensorLike>(checkModelTensors(teacher, tensors, teacherDir));
  for (const t of initSupraParams(teacher, options)) out.set(t.name, { shape: t.shape, data: t.data });
  checkModelTensors(config, out, outDir);
  const plain = new Map([...out].map(([name, t]) => [name, { shape: [...t.shape], data: t.data as Float32Array }]));
  const torchDtype = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[options.dtype ?? 'F32'];
  const files = writeFolderAtomic(outDir, (tmp) => [
    ...saveCheckpoint(tmp, plain, { dtype: options.dtype ?? 'F32' }),
    saveConfig(tmp, config, { torch_dtype: torchDtype }),
    ...copyTokenizerFiles(dir, tmp),
  ]);
  return { config, files };
}
