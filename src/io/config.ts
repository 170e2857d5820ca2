// Hugging Face config.json for the Llama family (Llama, Mistral, Qwen2) and supra's own SUPRA folders.
import { existsSync, join, readFileSync } from './files.js';
import { writeJsonAtomic } from './atomic.js';

export const TEACHER_ARCHITECTURES = ['LlamaForCausalLM', 'MistralForCausalLM', 'Qwen2ForCausalLM'] as const;
export const SUPRA_ARCHITECTURE = 'SupraForCausalLM';

// Architectures with a token mixer registered at run time (registerMixer in layers/mixers.ts adds them
// here, since io/ does not import layers/). Their configs are read like a teacher's; a mixer keeps its
// own settings under a key of its own in config.json (config.raw).
const registeredArchitectures = new Set<string>();

/** Let parseConfig accept `architecture` (called by registerMixer). */
export function registerArchitecture(architecture: string): void {
  if (typeof architecture !== 'string' || architecture === '') throw new Error(`supra: an architecture name must be a non-empty string, got ${JSON.stringify(architecture)}`);
  registeredArchitectures.add(architecture);
}

/** Every architecture parseConfig accepts: the teachers, SUPRA, then the registered ones. */
export function knownArchitectures(): string[] {
  const builtIn: readonly string[] = [...TEACHER_ARCHITECTURES, SUPRA_ARCHITECTURE];
  return [...builtIn, ...[...registeredArchitectures].filter((a) => !builtIn.includes(a))];
}

export type QkNorm = 'none' | 'rms' | 'layernorm';
export type Decay = 'lightning' | 'retnet' | 'none';
/**
 * How the linear-attention output is normalized per head: 'group_norm' (SUPRA: GroupNorm, no
 * denominator) or 'sum' (T2R-style ablation: divided by the decayed sum Σ γ^(t−j) q̃_t·k̃_j/√Dk, no GroupNorm).
 */
export type Normalization = 'group_norm' | 'sum';

/** The SUPRA settings saved in config.json under "supra". */
export interface SupraSettings {
  qk_norm: QkNorm;
  qk_norm_eps: number;
  decay: Decay;
  group_norm_eps: number;
  /** 'group_norm' (default, SUPRA) or 'sum' (T2R-style denominator). */
  normalization: Normalization;
  /** Added to the 'sum' denominator (unused by 'group_norm'). */
  normalizer_eps: number;
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
  /**
   * o_proj carries a bias (Llama with attention_bias; never Qwen2 or Mistral). Read from config.json's
   * "o_proj_bias" when present (supra writes it whenever attention_bias is true, so a SUPRA model made
   * from a Qwen2 teacher keeps its bias-free o_proj), else from the architecture by parseConfig: the
   * layers read this field and attention_bias, never the architecture name.
   */
  o_proj_bias: boolean;
  max_position_embeddings: number;
  bos_token_id: number | null;
  eos_token_id: number | number[] | null;
  /** Present for SUPRA models. */
  supra: SupraSettings | null;
  /** Mistral/Qwen2 sliding-window attention span (null: full attention). Optional so literals stay valid. */
  sliding_window?: number | null;
  /** The parsed file as read, so saving keeps fields supra does not use. */
  raw: Record<string, unknown>;
}

const DEFAULT_MODEL_TYPE: Record<string, string> = {
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'mistral',
  Qwen2ForCausalLM: 'qwen2',
};

// transformers' config defaults where a field is absent
const DEFAULT_MAX_POSITIONS: Record<string, number> = {
  LlamaForCausalLM: 2048,
  MistralForCausalLM: 4096 * 32,
  Qwen2ForCausalLM: 32768,
};

function fail(path: string, msg: string): never {
  throw new Error(`supra: ${path}: ${msg}`);
}

/**
 * The largest size a config may give (vocab, widths, layer and head counts, positions): token ids and
 * tensor dimensions are int32 throughout, so anything larger is a corrupt or mistyped config.
 */
export const MAX_CONFIG_SIZE = 0x7fffffff;

/** A positive integer size no larger than MAX_CONFIG_SIZE; `what` names it in the error. */
export function checkSize(v: unknown, what: string, path: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) fail(path, `${what} must be a positive integer, got ${JSON.stringify(v)}`);
  if (v > MAX_CONFIG_SIZE) fail(path, `${what} = ${v} is too large (at most ${MAX_CONFIG_SIZE})`);
  return v;
}

function int(raw: Record<string, unknown>, key: string, path: string, dflt?: number): number {
  const v = raw[key] ?? dflt;
  if (v === undefined || v === null) fail(path, `missing field "${key}"`);
  return checkSize(v, `field "${key}"`, path);
}

function num(raw: Record<string, unknown>, key: string, path: string, dflt: number): number {
  const v = raw[key] ?? dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail(path, `field "${key}" must be a positive number, got ${JSON.stringify(v)}`);
  return v;
}

/** Validate and resolve a parsed config.json; `path` names the file in errors. */
export function parseConfig(raw: Record<string, unknown>, path = 'config.json'): ModelConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(path, `expected a JSON object, got ${describeJson(raw)}`);
  const archs = raw.architectures;
  if (archs === undefined || archs === null) fail(path, 'missing "architectures" (expected e.g. ["LlamaForCausalLM"])');
  // a list, as transformers writes it; a bare string is refused rather than guessed at
  if (!Array.isArray(archs) || archs.length === 0 || typeof archs[0] !== 'string') {
    fail(path, `field "architectures" must be a list of class names such as ["LlamaForCausalLM"], got ${JSON.stringify(archs)}`);
  }
  const architecture = archs[0] as string;
  if (raw.model_type !== undefined && raw.model_type !== null && typeof raw.model_type !== 'string') {
    fail(path, `field "model_type" must be a string, got ${JSON.stringify(raw.model_type)}`);
  }
  const known = knownArchitectures();
  if (!known.includes(architecture)) {
    fail(path, `unknown architecture "${architecture}"; supra reads ${known.join(', ')}`);
  }
  const hidden = int(raw, 'hidden_size', path);
  const heads = int(raw, 'num_attention_heads', path);
  const kvHeads = int(raw, 'num_key_value_heads', path, heads);
  if (heads % kvHeads !== 0) fail(path, `num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`);
  if ((raw.head_dim === undefined || raw.head_dim === null) && hidden % heads !== 0) {
    fail(path, `hidden_size ${hidden} is not a multiple of num_attention_heads ${heads}, and no head_dim is given`);
  }
  const headDim = int(raw, 'head_dim', path, hidden / heads);
  if (headDim % 2 !== 0) fail(path, `head_dim ${headDim} must be even for RoPE`);
  const act = raw.hidden_act ?? 'silu';
  if (act !== 'silu') fail(path, `hidden_act "${String(act)}" is not supported (SwiGLU needs "silu")`);
  if (raw.rope_scaling !== undefined && raw.rope_scaling !== null) {
    // {"rope_type": "default"} (or the older "type") is plain RoPE; anything else changes the angles
    const rs = raw.rope_scaling as Record<string, unknown>;
    const kind = typeof rs === 'object' ? (rs.rope_type ?? rs.type) : undefined;
    if (kind !== 'default') fail(path, `rope_scaling ${JSON.stringify(raw.rope_scaling)} is not supported`);
  }
  for (const key of ['tie_word_embeddings', 'attention_bias', 'use_sliding_window', 'o_proj_bias']) {
    if (raw[key] !== undefined && raw[key] !== null && typeof raw[key] !== 'boolean') {
      fail(path, `field "${key}" must be true or false, got ${JSON.stringify(raw[key])}`);
    }
  }
  const eos = raw.eos_token_id;
  const isId = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0;
  if (eos !== undefined && eos !== null && !isId(eos) && !(Array.isArray(eos) && eos.every(isId))) {
    fail(path, `field "eos_token_id" must be a token id or a list of ids, got ${JSON.stringify(eos)}`);
  }
  if (raw.bos_token_id !== undefined && raw.bos_token_id !== null && !isId(raw.bos_token_id)) {
    fail(path, `field "bos_token_id" must be a token id, got ${JSON.stringify(raw.bos_token_id)}`);
  }

  const qwen = architecture === 'Qwen2ForCausalLM' || raw.model_type === 'qwen2';
  const mistral = architecture === 'MistralForCausalLM' || raw.model_type === 'mistral';
  if (raw.mlp_bias === true) fail(path, 'mlp_bias is not supported (the MLP projections are bias-free)');
  // HF: Qwen2 has q/k/v biases and a bias-free o_proj; Mistral has none; Llama's attention_bias puts a
  // bias on all four projections
  const llamaBias = !qwen && !mistral && raw.attention_bias === true;
  // supra's own field, written beside attention_bias: it survives the architecture change to SUPRA
  const oBias = typeof raw.o_proj_bias === 'boolean' ? raw.o_proj_bias : llamaBias;
  // Mistral v0.1 sets sliding_window; Qwen2 only uses its sliding_window when use_sliding_window is
  // true; Llama has no sliding window at all
  let slidingWindow: number | null = null;
  const usesWindow = qwen ? raw.use_sliding_window === true : mistral;
  if (usesWindow && raw.sliding_window !== undefined && raw.sliding_window !== null) {
    slidingWindow = int(raw, 'sliding_window', path);
  }
  let supra: SupraSettings | null = null;
  if (architecture === SUPRA_ARCHITECTURE) {
    const s = raw.supra as Record<string, unknown> | undefined;
    if (!s || typeof s !== 'object' || Array.isArray(s)) fail(path, 'SupraForCausalLM config lacks its "supra" object');
    const qk = s.qk_norm ?? 'none';
    const decay = s.decay ?? 'lightning';
    if (qk !== 'none' && qk !== 'rms' && qk !== 'layernorm') fail(path, `supra.qk_norm must be none|rms|layernorm, got ${JSON.stringify(qk)}`);
    if (decay !== 'lightning' && decay !== 'retnet' && decay !== 'none') fail(path, `supra.decay must be lightning|retnet|none, got ${JSON.stringify(decay)}`);
    // absent: GroupNorm, as every SUPRA folder written before the option existed
    const normalization = s.normalization ?? 'group_norm';
    if (normalization !== 'group_norm' && normalization !== 'sum') fail(path, `supra.normalization must be group_norm|sum, got ${JSON.stringify(normalization)}`);
    supra = {
      qk_norm: qk,
      qk_norm_eps: num(s, 'qk_norm_eps', path, 1e-5),
      decay,
      group_norm_eps: num(s, 'group_norm_eps', path, 1e-5),
      normalization,
      normalizer_eps: num(s, 'normalizer_eps', path, 1e-6),
    };
  }
  return {
    architecture,
    model_type: typeof raw.model_type === 'string' ? raw.model_type : DEFAULT_MODEL_TYPE[architecture] ?? 'llama',
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
    attention_bias: qwen || llamaBias,
    o_proj_bias: oBias,
    max_position_embeddings: int(raw, 'max_position_embeddings', path, DEFAULT_MAX_POSITIONS[architecture] ?? 2048),
    bos_token_id: typeof raw.bos_token_id === 'number' ? raw.bos_token_id : null,
    eos_token_id: (raw.eos_token_id as number | number[] | undefined) ?? null,
    supra,
    sliding_window: slidingWindow,
    raw,
  };
}

/** What a JSON value is, for errors: null, a list, a string, ... */
function describeJson(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

/**
 * `<dir>/config.json` parsed, checked to be a JSON object (not null, a list or a scalar). Every reader
 * of a model folder's config goes through here, transformers' and open_lm's alike.
 */
export function readConfigJson(dir: string): { raw: Record<string, unknown>; path: string } {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) throw new Error(`supra: ${path}: not found (expected a Hugging Face config.json in ${dir})`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    fail(path, `not valid JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(path, `expected a JSON object, got ${describeJson(raw)}`);
  return { raw: raw as Record<string, unknown>, path };
}

/** Read and resolve `<dir>/config.json`. */
export function loadConfig(dir: string): ModelConfig {
  const { raw, path } = readConfigJson(dir);
  return parseConfig(raw, path);
}

/**
 * The config.json object for a resolved config: the raw fields as read, with every resolved field written
 * over them (so supra's changes, e.g. a new architecture or SUPRA settings, win) and fields HF does not
 * know left alone.
 */
export function configToJson(config: ModelConfig, options: { torch_dtype?: string } = {}): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config.raw };
  out.architectures = [config.architecture];
  out.model_type = config.model_type;
  out.vocab_size = config.vocab_size;
  out.hidden_size = config.hidden_size;
  out.intermediate_size = config.intermediate_size;
  out.num_hidden_layers = config.num_hidden_layers;
  out.num_attention_heads = config.num_attention_heads;
  out.num_key_value_heads = config.num_key_value_heads;
  out.head_dim = config.head_dim;
  out.rms_norm_eps = config.rms_norm_eps;
  out.rope_theta = config.rope_theta;
  out.tie_word_embeddings = config.tie_word_embeddings;
  out.attention_bias = config.attention_bias;
  // with attention biases the o_proj rule depends on the teacher family, which a SUPRA config no longer
  // names; an o_proj bias without q/k/v biases (a hand-written config) must be written too, or it is lost
  if (config.attention_bias || config.o_proj_bias) out.o_proj_bias = config.o_proj_bias;
  else delete out.o_proj_bias;
  out.max_position_embeddings = config.max_position_embeddings;
  out.bos_token_id = config.bos_token_id;
  out.eos_token_id = config.eos_token_id;
  if (config.sliding_window !== undefined) {
    const qwenLike = config.architecture === 'Qwen2ForCausalLM' || config.model_type === 'qwen2';
    const mistralLike = config.architecture === 'MistralForCausalLM' || config.model_type === 'mistral';
    if (config.sliding_window !== null) {
      out.sliding_window = config.sliding_window;
      if (qwenLike) out.use_sliding_window = true;
    } else if (qwenLike) {
      if (out.use_sliding_window === true) out.use_sliding_window = false; // keep the unused span as read
    } else if (mistralLike) {
      out.sliding_window = null;
    } // Llama: the field means nothing, leave it as read
  }
  if (config.supra) out.supra = { ...config.supra };
  else delete out.supra;
  if (options.torch_dtype !== undefined) out.torch_dtype = options.torch_dtype;
  return out;
}

/**
 * Write `<dir>/config.json` from a resolved config (see configToJson), through a temp file, fsync and
 * rename so the folder never holds a half-written config. The result is checked by parsing it back.
 * Returns the path written.
 */
export function saveConfig(dir: string, config: ModelConfig, options: { torch_dtype?: string } = {}): string {
  const path = join(dir, 'config.json');
  const json = configToJson(config, options);
  parseConfig(json, path); // refuse to write a config supra itself could not read back
  writeJsonAtomic(path, json);
  return path;
}
