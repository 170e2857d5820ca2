// Hugging Face config.json for the Llama family (Llama, Mistral, Qwen2) and supra's own SUPRA folders.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const TEACHER_ARCHITECTURES = ['LlamaForCausalLM', 'MistralForCausalLM', 'Qwen2ForCausalLM'] as const;
export const SUPRA_ARCHITECTURE = 'SupraForCausalLM';

export type QkNorm = 'none' | 'rms' | 'layernorm';
export type Decay = 'lightning' | 'retnet' | 'none';

/** The SUPRA settings saved in config.json under "supra". */
export interface SupraSettings {
  qk_norm: QkNorm;
  qk_norm_eps: number;
  decay: Decay;
  group_norm_eps: number;
}

/** A decoder config with every field resolved (HF defaults filled in). */
export interface ModelConfig {
  architecture: string; // architectures[0]
  model_type: string;
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  rms_norm_eps: number;
  rope_theta: number;
  tie_word_embeddings: boolean;
  /** q/k/v projections carry biases (Qwen2, or Llama's attention_bias). */
  attention_bias: boolean;
  max_position_embeddings: number;
  bos_token_id: number | null;
  eos_token_id: number | number[] | null;
  /** Present for SUPRA models. */
  supra: SupraSettings | null;
  /** The parsed file as read, so saving keeps fields supra does not use. */
  raw: Record<string, unknown>;
}

function fail(path: string, msg: string): never {
  throw new Error(`supra: ${path}: ${msg}`);
}

function int(raw: Record<string, unknown>, key: string, path: string, dflt?: number): number {
  const v = raw[key] ?? dflt;
  if (v === undefined || v === null) fail(path, `missing field "${key}"`);
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) fail(path, `field "${key}" must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

function num(raw: Record<string, unknown>, key: string, path: string, dflt: number): number {
  const v = raw[key] ?? dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail(path, `field "${key}" must be a positive number, got ${JSON.stringify(v)}`);
  return v;
}

/** Validate and resolve a parsed config.json; `path` names the file in errors. */
export function parseConfig(raw: Record<string, unknown>, path = 'config.json'): ModelConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(path, 'expected a JSON object');
  const archs = raw.architectures;
  const architecture = Array.isArray(archs) && typeof archs[0] === 'string' ? archs[0] : undefined;
  if (!architecture) fail(path, 'missing "architectures" (expected e.g. ["LlamaForCausalLM"])');
  const known = [...TEACHER_ARCHITECTURES, SUPRA_ARCHITECTURE] as readonly string[];
  if (!known.includes(architecture)) {
    fail(path, `unknown architecture "${architecture}"; supra reads ${known.join(', ')}`);
  }
  const hidden = int(raw, 'hidden_size', path);
  const heads = int(raw, 'num_attention_heads', path);
  const kvHeads = int(raw, 'num_key_value_heads', path, heads);
  if (heads % kvHeads !== 0) fail(path, `num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`);
  const headDim = int(raw, 'head_dim', path, hidden / heads);
  if (headDim % 2 !== 0) fail(path, `head_dim ${headDim} must be even for RoPE`);
  const act = raw.hidden_act ?? 'silu';
  if (act !== 'silu') fail(path, `hidden_act "${String(act)}" is not supported (SwiGLU needs "silu")`);
  if (raw.rope_scaling !== undefined && raw.rope_scaling !== null) {
    fail(path, `rope_scaling ${JSON.stringify(raw.rope_scaling)} is not supported`);
  }
  const qwen = architecture === 'Qwen2ForCausalLM' || raw.model_type === 'qwen2';
  let supra: SupraSettings | null = null;
  if (architecture === SUPRA_ARCHITECTURE) {
    const s = raw.supra as Record<string, unknown> | undefined;
    if (!s || typeof s !== 'object') fail(path, 'SupraForCausalLM config lacks its "supra" object');
    const qk = s.qk_norm ?? 'none';
    const decay = s.decay ?? 'lightning';
    if (qk !== 'none' && qk !== 'rms' && qk !== 'layernorm') fail(path, `supra.qk_norm must be none|rms|layernorm, got ${JSON.stringify(qk)}`);
    if (decay !== 'lightning' && decay !== 'retnet' && decay !== 'none') fail(path, `supra.decay must be lightning|retnet|none, got ${JSON.stringify(decay)}`);
    supra = {
      qk_norm: qk,
      qk_norm_eps: num(s, 'qk_norm_eps', path, 1e-5),
      decay,
      group_norm_eps: num(s, 'group_norm_eps', path, 1e-5),
    };
  }
  return {
    architecture,
    model_type: typeof raw.model_type === 'string' ? raw.model_type : 'llama',
    vocab_size: int(raw, 'vocab_size', path),
    hidden_size: hidden,
    intermediate_size: int(raw, 'intermediate_size', path),
    num_hidden_layers: int(raw, 'num_hidden_layers', path),
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    head_dim: headDim,
    rms_norm_eps: num(raw, 'rms_norm_eps', path, 1e-6),
    rope_theta: num(raw, 'rope_theta', path, 10000),
    tie_word_embeddings: raw.tie_word_embeddings === undefined ? false : raw.tie_word_embeddings === true,
    attention_bias: qwen ? true : raw.attention_bias === true,
    max_position_embeddings: int(raw, 'max_position_embeddings', path, 2048),
    bos_token_id: typeof raw.bos_token_id === 'number' ? raw.bos_token_id : null,
    eos_token_id: (raw.eos_token_id as number | number[] | undefined) ?? null,
    supra,
    raw,
  };
}

/** Read and resolve `<dir>/config.json`. */
export function loadConfig(dir: string): ModelConfig {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) throw new Error(`supra: ${path}: not found (expected a Hugging Face config.json in ${dir})`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    fail(path, `not valid JSON: ${(e as Error).message}`);
  }
  return parseConfig(raw as Record<string, unknown>, path);
}
