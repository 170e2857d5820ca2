// The open_lm checkpoint layout of the paper authors' released Mistral-SUPRA (TRI-ML/linear_open_lm),
// mapped to and from supra's own (Hugging Face style) tensor names.
//
// open_lm name (the HF wrapper prefixes "model.")      supra name
//   tok_embeddings.weight                              model.embed_tokens.weight
//   layers.N.attention_norm.weight                     model.layers.N.input_layernorm.weight
//   layers.N.attention.in_proj.weight                  rows [q_proj; k_proj; v_proj] of self_attn
//   layers.N.attention.out_proj.weight                 model.layers.N.self_attn.o_proj.weight
//   layers.N.attention._totrain_embed.{weight,bias}    model.layers.N.self_attn.kernel_q.{weight,bias}
//   layers.N.attention._totrain_embed_kv.{weight,bias} model.layers.N.self_attn.kernel_k.{weight,bias} (GQA only)
//   layers.N.attention._totrain_q_norm.weight          model.layers.N.self_attn.q_norm.weight (qk-norm only)
//   layers.N.attention._totrain_k_norm.weight          model.layers.N.self_attn.k_norm.weight (qk-norm only)
//   layers.N.attention.pos_embed.inv_freq              (RoPE buffer: read with or without it, checked against
//                                                      rope_theta, then dropped; written only on request)
//   layers.N.ffn_norm.weight                           model.layers.N.post_attention_layernorm.weight
//   layers.N.feed_forward.w12.weight                   rows [gate_proj; up_proj] of mlp
//   layers.N.feed_forward.w3.weight                    model.layers.N.mlp.down_proj.weight
//   norm.weight                                        model.norm.weight
//   output.weight                                      lm_head.weight (absent when embeddings are tied)
//
// No row permutation is involved: open_lm applies RoPE in the rotate-half convention, as HF does, and in
// SUPRA it is applied after the kernel anyway. open_lm's value head size equals the q/k one, so the
// in_proj split needs no head counts: q is the first H·D rows, k and v share the rest equally.
//
// Two consumers want two spellings of the same tensors. open_lm's HF wrapper (open_lm_hf,
// OpenLMForCausalLM, how the released Mistral-SUPRA loads) holds the Transformer as `self.model`, so
// its files prefix every name with "model."; open_lm.main, the paper's trainer, loads a bare
// Transformer state dict (`--pretrained x.pt`: torch.load, then load_state_dict, no prefix stripped
// but DDP's "module." in a training checkpoint). toOpenLm writes either (options.prefix).
//
// Reading: mapOpenLm works the mapping out from shapes alone (supra name -> stored name and row range),
// so a loader can present an open_lm folder under supra's names without reading it first
// (io/checkpoint.ts openModel, which convert and every command use); fromOpenLm applies it to tensors
// already in memory.
import { checkSize, parseConfig, SUPRA_ARCHITECTURE, type ModelConfig, type QkNorm } from './config.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './dtype.js';
import { isFloatDType, type DType } from './safetensors.js';

/** A float tensor as the readers return it (dtype is informational). */
export interface FloatTensor {
  dtype: string;
  shape: number[];
  data: Float32Array;
}

/** Anything with a shape and float data (StoredTensor, TorchTensor, FloatTensor). */
export interface TensorLike {
  dtype?: string;
  shape: readonly number[];
  data: Float32Array | Int32Array;
}

export interface ToOpenLmOptions {
  /** Prefix every name with "model." as the released HF wrapper does. Default true. */
  prefix?: boolean;
  /**
   * Also write layers.N.attention.pos_embed.inv_freq. Default false: the paper's code
   * (TRI-ML/linear_open_lm, positional_embedding/rotary.py) keeps inv_freq as a plain attribute, so
   * load_state_dict(strict=True) on its Transformer rejects the key; upstream mlfoundations/open_lm
   * registers it as a persistent buffer and a strict load there wants it (true).
   */
  rotaryBuffers?: boolean;
}

const LAYER_RE = /^layers\.(\d+)\.(.+)$/;

function fail(msg: string): never {
  throw new Error(`supra: open_lm: ${msg}`);
}

function shapeStr(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

function asFloat(name: string, t: TensorLike): FloatTensor {
  const data = t.data; // once: a lazy tensor reads its file each time
  if (!(data instanceof Float32Array)) fail(`tensor ${name} holds integers; expected floats`);
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (n !== data.length) fail(`tensor ${name}: shape ${shapeStr(t.shape)} holds ${n} values, data has ${data.length}`);
  return { dtype: t.dtype ?? 'F32', shape: [...t.shape], data };
}

/** Rows [begin, end) of a 2-D tensor, as a view (no copy). */
function rows(t: FloatTensor, begin: number, end: number): FloatTensor {
  const cols = t.shape[1]!;
  return { dtype: t.dtype, shape: [end - begin, cols], data: t.data.subarray(begin * cols, end * cols) };
}

/** Concatenate 2-D tensors along rows (a new array). */
function concatRows(parts: FloatTensor[], name: string): FloatTensor {
  const cols = parts[0]!.shape[1]!;
  for (const p of parts) if (p.shape.length !== 2 || p.shape[1] !== cols) fail(`cannot build ${name}: parts have shapes ${parts.map((q) => shapeStr(q.shape)).join(', ')}`);
  const total = parts.reduce((s, p) => s + p.shape[0]!, 0);
  const data = new Float32Array(total * cols);
  let at = 0;
  for (const p of parts) {
    data.set(p.data, at);
    at += p.data.length;
  }
  return { dtype: parts[0]!.dtype, shape: [total, cols], data };
}

/** A tensor whose float data is read from `t` (checked by asFloat) each time it is asked for. */
function lazyFloat(name: string, t: TensorLike): FloatTensor {
  return {
    dtype: t.dtype ?? 'F32',
    shape: [...t.shape],
    get data() {
      return asFloat(name, t).data;
    },
  };
}

/** concatRows of `parts`, computed from their data each time it is asked for. */
function lazyConcatRows(parts: FloatTensor[], name: string): FloatTensor {
  const cols = parts[0]!.shape[1]!;
  for (const p of parts) if (p.shape.length !== 2 || p.shape[1] !== cols) fail(`cannot build ${name}: parts have shapes ${parts.map((q) => shapeStr(q.shape)).join(', ')}`);
  return {
    dtype: parts[0]!.dtype,
    shape: [parts.reduce((s, p) => s + p.shape[0]!, 0), cols],
    get data() {
      return concatRows(parts.map((p) => ({ dtype: p.dtype, shape: p.shape, data: p.data })), name).data;
    },
  };
}

/** RoPE inverse frequencies as open_lm computes them: float32 1 / theta^(arange(0, d, 2) / d). */
export function ropeInvFreq(dim: number, theta: number): Float32Array {
  const out = new Float32Array(dim / 2);
  const base = Math.fround(theta);
  for (let i = 0; i < dim / 2; i++) {
    const e = Math.fround((2 * i) / dim);
    out[i] = Math.fround(1 / Math.fround(Math.pow(base, e)));
  }
  return out;
}

/**
 * The prefixes an open_lm state dict may carry before the Transformer's own names: the HF wrapper's
 * "model.", DDP's "module." and torch.compile's "_orig_mod." (open_lm.main's training checkpoints, with
 * --torchcompile), the longest first.
 */
const OPEN_LM_PREFIXES = ['module._orig_mod.', 'model.', 'module.', '_orig_mod.'];

/** Remove a wrapper's prefix (OPEN_LM_PREFIXES); returns names relative to the Transformer. */
export function stripOpenLmPrefix<T>(tensors: ReadonlyMap<string, T>): { tensors: Map<string, T>; prefix: string } {
  const names = [...tensors.keys()];
  for (const prefix of OPEN_LM_PREFIXES) {
    if (names.length > 0 && names.every((n) => n.startsWith(prefix))) {
      const stripped = new Map<string, T>();
      for (const [n, t] of tensors) stripped.set(n.slice(prefix.length), t);
      // "model.layers.0.self_attn..." is supra/HF naming, not open_lm
      if (looksOpenLm(stripped.keys())) return { tensors: stripped, prefix };
    }
  }
  return { tensors: new Map(tensors), prefix: '' };
}

function looksOpenLm(names: Iterable<string>): boolean {
  for (const n of names) if (n === 'tok_embeddings.weight' || /^layers\.\d+\.(attention|feed_forward|attention_norm|ffn_norm)\./.test(n)) return true;
  return false;
}

/** True when the names are open_lm's (with or without a wrapper's prefix, OPEN_LM_PREFIXES). */
export function isOpenLmLayout(names: Iterable<string>): boolean {
  const list = [...names];
  return looksOpenLm(list) || OPEN_LM_PREFIXES.some((p) => looksOpenLm(list.map((n) => (n.startsWith(p) ? n.slice(p.length) : n))));
}

interface Dims {
  hidden: number;
  vocab: number;
  layers: number;
  intermediate: number;
  qRows: number; // H·D
  kvRows: number; // Hkv·D
  kernelRows: number | null; // H·Dk, null when there are no kernels
  kernelKvRows: number | null; // Hkv·Dk, null when keys share kernel_q
  qkNorm: boolean;
  tied: boolean;
  headDim: number | null;
  ropeTheta: number | null;
}

/**
 * A tensor's shape and, where the caller has them, its stored dtype and values (the mapping itself needs
 * only shapes; a RoPE buffer's values are checked at the precision its dtype holds).
 */
export interface ShapedTensor {
  shape: readonly number[];
  dtype?: string;
  data?: Float32Array | Int32Array;
}

/** Where a supra tensor is stored in an open_lm checkpoint: a whole tensor, or rows [begin, end) of a fused one. */
export interface OpenLmPart {
  /** The stored name, with the checkpoint's "model." / "module." prefix if it has one. */
  source: string;
  rows?: readonly [number, number];
}

/** How one open_lm checkpoint maps to supra names, worked out from its tensors' shapes alone. */
export interface OpenLmMapping {
  /** supra name -> where its values are stored. in_proj and w12 appear as row ranges (q/k/v, gate/up). */
  tensors: Map<string, OpenLmPart>;
  /** Stored RoPE inv_freq buffers (with their stored dtype): checked against the config by checkOpenLmValues, then dropped. */
  invFreq: Array<{ name: string; source: string; dtype: string }>;
  /** A tied model's stored output.weight, which checkOpenLmValues requires to equal the embedding. */
  tiedOutput: { source: string; embedding: string } | null;
  /** Head size and RoPE theta from the config (null without one): what inv_freq is checked against. */
  headDim: number | null;
  ropeTheta: number | null;
}

/**
 * The open_lm -> supra name mapping of a checkpoint from its shapes: every supra tensor's stored source
 * (and rows, for the parts of in_proj and w12), with every shape checked. `config` (recommended) fixes
 * head counts and head size and makes every shape checked against it; without one they are inferred (q
 * is H·D = hidden rows, as open_lm requires, k and v split the rest), and tied embeddings are inferred
 * from `sameValues` (stored names of output.weight and the embedding: do they hold the same values?).
 * Values are checked separately (checkOpenLmValues), so a loader can map a checkpoint it has not read.
 */
export function mapOpenLm(
  input: ReadonlyMap<string, ShapedTensor>,
  config?: ModelConfig,
  sameValues?: (a: string, b: string) => boolean,
): OpenLmMapping {
  const { tensors, prefix } = stripOpenLmPrefix(input);
  if (!looksOpenLm(tensors.keys())) {
    const sample = [...input.keys()].slice(0, 3).join(', ');
    fail(`these tensors are not in the open_lm layout (no tok_embeddings.weight or layers.N.attention.*; found ${sample || 'none'})`);
  }
  const used = new Set<string>();
  const take = (name: string): readonly number[] => {
    const t = tensors.get(name);
    if (!t) fail(`missing tensor ${name}`);
    used.add(name);
    return t.shape;
  };
  const expect = (name: string, shape: readonly number[], want: number[]) => {
    if (shape.length !== want.length || shape.some((s, i) => s !== want[i])) {
      fail(`tensor ${name} has shape ${shapeStr(shape)}, expected ${shapeStr(want)}`);
    }
  };

  // ---- dimensions: from the tensors, cross-checked against the config --------------------------
  const embShape = take('tok_embeddings.weight');
  if (embShape.length !== 2) fail(`tok_embeddings.weight has shape ${shapeStr(embShape)}, expected [vocab, hidden]`);
  const [vocab, hidden] = embShape as [number, number];
  const layerIds = new Set<number>();
  for (const n of tensors.keys()) {
    const m = LAYER_RE.exec(n);
    if (m) layerIds.add(Number(m[1]));
  }
  const layers = layerIds.size;
  for (let l = 0; l < layers; l++) if (!layerIds.has(l)) fail(`layer indices are not contiguous: layers.${l} is missing (found ${[...layerIds].sort((a, b) => a - b).join(', ')})`);
  const inProj0 = tensors.get('layers.0.attention.in_proj.weight');
  const w12_0 = tensors.get('layers.0.feed_forward.w12.weight');
  if (!inProj0 || !w12_0) fail('missing layers.0.attention.in_proj.weight or layers.0.feed_forward.w12.weight');
  const kernel0 = tensors.get('layers.0.attention._totrain_embed.weight');
  // q has H·D rows: the kernel's input width when there is a kernel, else hidden (open_lm's D = dim / H)
  const qRows0 = kernel0 ? kernel0.shape[1] ?? hidden : hidden;
  const dims: Dims = {
    hidden,
    vocab,
    layers,
    intermediate: w12_0.shape[0]! / 2,
    qRows: qRows0,
    kvRows: (inProj0.shape[0]! - qRows0) / 2,
    kernelRows: kernel0 ? kernel0.shape[0]! : null,
    kernelKvRows: tensors.get('layers.0.attention._totrain_embed_kv.weight')?.shape[0] ?? null,
    qkNorm: tensors.has('layers.0.attention._totrain_q_norm.weight'),
    // without a config, an output.weight bit-identical to the embedding is a tied model saved under both names
    tied: !tensors.has('output.weight') || (!config && (sameValues?.(prefix + 'output.weight', prefix + 'tok_embeddings.weight') ?? false)),
    headDim: null,
    ropeTheta: null,
  };
  if (config) {
    const { num_attention_heads: H, num_key_value_heads: Hkv, head_dim: D } = config;
    const check = (what: string, have: number, want: number) => {
      if (have !== want) fail(`the checkpoint's ${what} is ${have}, but the config says ${want}`);
    };
    check('hidden size (tok_embeddings.weight columns)', hidden, config.hidden_size);
    check('vocab size (tok_embeddings.weight rows)', vocab, config.vocab_size);
    check('layer count', layers, config.num_hidden_layers);
    dims.qRows = H * D;
    dims.kvRows = Hkv * D;
    dims.intermediate = config.intermediate_size;
    dims.headDim = D;
    dims.ropeTheta = config.rope_theta;
    if (config.attention_bias) fail('the config has q/k/v biases (attention_bias), which open_lm checkpoints do not hold');
    if (config.o_proj_bias) fail('the config has an o_proj bias (o_proj_bias), which open_lm checkpoints do not hold');
    if (config.supra) {
      if (!kernel0) fail('the config is a SUPRA config but layers.0.attention._totrain_embed.weight is missing');
      // kernels are square per head (Dk = D), as in the reference and every supra model
      dims.kernelRows = H * D;
      dims.kernelKvRows = Hkv !== H ? Hkv * D : null;
      dims.qkNorm = config.supra.qk_norm !== 'none';
    } else if (kernel0) {
      fail('the checkpoint has SUPRA kernels (_totrain_embed) but the config is not a SUPRA config');
    }
    if (!config.tie_word_embeddings && !tensors.has('output.weight')) fail('the config has untied embeddings but the checkpoint has no output.weight');
    dims.tied = config.tie_word_embeddings;
  }
  if (!Number.isInteger(dims.kvRows) || dims.kvRows <= 0) fail(`layers.0.attention.in_proj.weight has ${inProj0.shape[0]} rows, which is not q (${dims.qRows}) plus two equal k/v blocks`);
  if (!Number.isInteger(dims.intermediate) || dims.intermediate <= 0) fail(`layers.0.feed_forward.w12.weight has an odd row count ${w12_0.shape[0]}`);

  // ---- per-tensor mapping --------------------------------------------------------------------
  const out = new Map<string, OpenLmPart>();
  const map = (to: string, from: string, rows?: readonly [number, number]) => out.set(to, rows ? { source: prefix + from, rows } : { source: prefix + from });
  /** Take a stored tensor of the expected shape and map it whole. */
  const whole = (to: string, from: string, want: number[]) => {
    expect(from, take(from), want);
    map(to, from);
  };
  map('model.embed_tokens.weight', 'tok_embeddings.weight');
  const { qRows, kvRows, intermediate: I } = dims;
  const invFreq: OpenLmMapping['invFreq'] = [];
  for (let l = 0; l < layers; l++) {
    const src = `layers.${l}.`;
    const dst = `model.layers.${l}.`;
    whole(`${dst}input_layernorm.weight`, `${src}attention_norm.weight`, [hidden]);
    const inProj = `${src}attention.in_proj.weight`;
    expect(inProj, take(inProj), [qRows + 2 * kvRows, hidden]);
    map(`${dst}self_attn.q_proj.weight`, inProj, [0, qRows]);
    map(`${dst}self_attn.k_proj.weight`, inProj, [qRows, qRows + kvRows]);
    map(`${dst}self_attn.v_proj.weight`, inProj, [qRows + kvRows, qRows + 2 * kvRows]);
    whole(`${dst}self_attn.o_proj.weight`, `${src}attention.out_proj.weight`, [hidden, qRows]);

    if (dims.kernelRows !== null) {
      whole(`${dst}self_attn.kernel_q.weight`, `${src}attention._totrain_embed.weight`, [dims.kernelRows, qRows]);
      whole(`${dst}self_attn.kernel_q.bias`, `${src}attention._totrain_embed.bias`, [dims.kernelRows]);
      if (dims.kernelKvRows !== null) {
        whole(`${dst}self_attn.kernel_k.weight`, `${src}attention._totrain_embed_kv.weight`, [dims.kernelKvRows, kvRows]);
        whole(`${dst}self_attn.kernel_k.bias`, `${src}attention._totrain_embed_kv.bias`, [dims.kernelKvRows]);
      } else if (kvRows !== qRows) {
        fail(`${src}attention: k has ${kvRows} rows and q ${qRows} (GQA) but there is no _totrain_embed_kv`);
      }
      if (dims.qkNorm) {
        // k_norm is applied after repeat_kv, so both gains span all H heads
        whole(`${dst}self_attn.q_norm.weight`, `${src}attention._totrain_q_norm.weight`, [dims.kernelRows]);
        whole(`${dst}self_attn.k_norm.weight`, `${src}attention._totrain_k_norm.weight`, [dims.kernelRows]);
      }
    }
    const invName = `${src}attention.pos_embed.inv_freq`;
    if (tensors.has(invName)) {
      const shape = take(invName);
      if (shape.length !== 1) fail(`${invName} has shape ${shapeStr(shape)}, expected [head_dim / 2]`);
      if (dims.headDim !== null && shape[0]! * 2 !== dims.headDim) fail(`${invName} covers a head size of ${shape[0]! * 2}, but the config's head_dim is ${dims.headDim}`);
      invFreq.push({ name: invName, source: prefix + invName, dtype: tensors.get(invName)!.dtype ?? 'F32' });
    }

    whole(`${dst}post_attention_layernorm.weight`, `${src}ffn_norm.weight`, [hidden]);
    const w12 = `${src}feed_forward.w12.weight`;
    expect(w12, take(w12), [2 * I, hidden]);
    map(`${dst}mlp.gate_proj.weight`, w12, [0, I]); // xformers SwiGLU: silu(first half) * second half
    map(`${dst}mlp.up_proj.weight`, w12, [I, 2 * I]);
    whole(`${dst}mlp.down_proj.weight`, `${src}feed_forward.w3.weight`, [hidden, I]);
  }
  whole('model.norm.weight', 'norm.weight', [hidden]);
  let tiedOutput: OpenLmMapping['tiedOutput'] = null;
  if (tensors.has('output.weight')) {
    expect('output.weight', take('output.weight'), [vocab, hidden]);
    // a tied open_lm model saves both names for the one matrix
    if (dims.tied) tiedOutput = { source: prefix + 'output.weight', embedding: prefix + 'tok_embeddings.weight' };
    else map('lm_head.weight', 'output.weight');
  }
  const unexpected = [...tensors.keys()].filter((n) => !used.has(n));
  if (unexpected.length > 0) {
    fail(`unexpected tensors (${unexpected.length}): ${unexpected.slice(0, 10).join(', ')}${unexpected.length > 10 ? ', ...' : ''}`);
  }
  return { tensors: out, invFreq, tiedOutput, headDim: dims.headDim, ropeTheta: dims.ropeTheta };
}

/**
 * The checks of an open_lm checkpoint that need values, not shapes: RoPE buffers against the config's
 * rope_theta, and a tied model's output.weight against the embedding. `read` gives a stored tensor's values.
 */
export function checkOpenLmValues(mapping: OpenLmMapping, read: (source: string) => Float32Array): void {
  for (const { name, source, dtype } of mapping.invFreq) {
    if (mapping.ropeTheta === null) continue;
    const bad = invFreqMismatch(read(source), mapping.ropeTheta, dtype);
    if (bad) fail(`${name}[${bad.index}] = ${bad.have} does not match rope_theta ${mapping.ropeTheta} (expected ${bad.want}${dtype === 'F32' ? '' : ` as ${dtype}`}); the config's rope_theta is wrong for this checkpoint`);
  }
  const tied = mapping.tiedOutput;
  if (tied) {
    const head = read(tied.source);
    const emb = read(tied.embedding);
    if (head !== emb && !sameValues(head, emb)) fail('the config ties embeddings but output.weight differs from tok_embeddings.weight');
  }
}

/**
 * Convert open_lm tensors in memory to supra names (mapOpenLm, then checkOpenLmValues). Tensors split out
 * of in_proj / w12 are views into the input arrays; the rest are the input arrays.
 */
export function fromOpenLm(input: ReadonlyMap<string, TensorLike>, config?: ModelConfig): Map<string, FloatTensor> {
  const prefix = stripOpenLmPrefix(input).prefix;
  const float = (source: string): FloatTensor => asFloat(source.slice(prefix.length), input.get(source)!);
  const mapping = mapOpenLm(input, config, (a, b) => sameValues(float(a).data, float(b).data));
  checkOpenLmValues(mapping, (source) => float(source).data);
  const out = new Map<string, FloatTensor>();
  for (const [name, { source, rows: r }] of mapping.tensors) out.set(name, r ? rows(float(source), r[0], r[1]) : float(source));
  return out;
}

function sameValues(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}

/** x rounded to a stored float dtype (round to nearest even), as a number. */
function roundTo(x: number, dtype: string): number {
  if (dtype === 'BF16') return bf16ToF32(f32ToBf16(x));
  if (dtype === 'F16') return f16ToF32(f32ToF16(x));
  return Math.fround(x);
}

/**
 * The first value of a stored inv_freq buffer that `theta` does not explain, or null. A value is
 * explained when it is what some number within 1e-4 (relative) of open_lm's float32 inv_freq rounds to
 * in the stored dtype: float32's last bit may differ between PyTorch's pow and ours, and a BF16 or F16
 * file (`supra convert --dtype bf16 --open-lm-inv-freq`, a model cast with .to(bfloat16)) keeps only
 * 8 or 11 bits of it.
 */
function invFreqMismatch(data: Float32Array, theta: number, dtype: string): { index: number; have: number; want: number } | null {
  const want = ropeInvFreq(data.length * 2, theta);
  for (let i = 0; i < want.length; i++) {
    const lo = roundTo(want[i]! * (1 - 1e-4), dtype);
    const hi = roundTo(want[i]! * (1 + 1e-4), dtype);
    if (!(data[i]! >= lo && data[i]! <= hi)) return { index: i, have: data[i]!, want: roundTo(want[i]!, dtype) };
  }
  return null;
}

/**
 * rope theta implied by an inv_freq buffer (inv_freq[i] = theta^(-2i/d)) stored as `dtype`. Estimated
 * from the last value (the one whose rounding moves theta least), then given as the roundest number,
 * 1 to 6 significant digits, that explains every stored value (invFreqMismatch): a BF16 buffer pins
 * theta only to about 0.4% (head size 128, theta 1e4: its last value gives 10007, inv_freq[1] 9136),
 * and the roundest theta it admits is the one a config would have said.
 */
export function ropeThetaFromInvFreq(invFreq: Float32Array, dtype = 'F32'): number | null {
  const n = invFreq.length;
  if (n < 2 || !(invFreq[n - 1]! > 0 && invFreq[n - 1]! < 1)) return null;
  const d = n * 2;
  const estimate = Math.pow(invFreq[n - 1]!, -d / (d - 2));
  if (!Number.isFinite(estimate)) return null;
  for (let digits = 1; digits <= 6; digits++) {
    const theta = Number(estimate.toPrecision(digits));
    if (invFreqMismatch(invFreq, theta, dtype) === null) return theta;
  }
  return Number(estimate.toPrecision(6));
}

/**
 * Convert supra names to open_lm names for `config`. Every expected tensor must be present, float and
 * of its shape; anything else is an error. Nothing is read here: each output tensor's `data` is a
 * getter that reads its inputs when asked (a whole tensor gives the input's data, in_proj and w12 a new
 * concatenation each time), so a writer that asks once per tensor (convert) holds one tensor at a time.
 * A tied model's output.weight is the embedding's tensor object itself.
 */
export function toOpenLm(input: ReadonlyMap<string, TensorLike>, config: ModelConfig, options: ToOpenLmOptions = {}): Map<string, FloatTensor> {
  const prefix = options.prefix === false ? '' : 'model.';
  const { num_attention_heads: H, num_key_value_heads: Hkv, head_dim: D, hidden_size: hidden, intermediate_size: I, vocab_size: V } = config;
  const used = new Set<string>();
  const take = (name: string, shape: number[]): FloatTensor => {
    const t = input.get(name);
    if (!t) fail(`missing tensor ${name}`);
    used.add(name);
    // by the stored dtype where known, so a tensor read lazily (io/checkpoint.ts lazyTensors) is not read here
    if (t.dtype !== undefined ? !isFloatDType(t.dtype as DType) : !(t.data instanceof Float32Array)) fail(`tensor ${name} holds integers; expected floats`);
    if (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i])) fail(`tensor ${name} has shape ${shapeStr(t.shape)}, expected ${shapeStr(shape)}`);
    return lazyFloat(name, t);
  };
  checkOpenLmExpressible(config);
  const out = new Map<string, FloatTensor>();
  const put = (name: string, t: FloatTensor) => out.set(prefix + name, t);
  const emb = take('model.embed_tokens.weight', [V, hidden]);
  put('tok_embeddings.weight', emb);
  const supra = config.supra;
  // one tensor for every layer, so a writer that shares storage by tensor (a pytorch_model.bin) stores it once
  const invFreq: FloatTensor | null = options.rotaryBuffers === true ? { dtype: 'F32', shape: [D / 2], data: ropeInvFreq(D, config.rope_theta) } : null;
  for (let l = 0; l < config.num_hidden_layers; l++) {
    const src = `model.layers.${l}.`;
    const dst = `layers.${l}.`;
    put(`${dst}attention_norm.weight`, take(`${src}input_layernorm.weight`, [hidden]));
    const q = take(`${src}self_attn.q_proj.weight`, [H * D, hidden]);
    const k = take(`${src}self_attn.k_proj.weight`, [Hkv * D, hidden]);
    const v = take(`${src}self_attn.v_proj.weight`, [Hkv * D, hidden]);
    put(`${dst}attention.in_proj.weight`, lazyConcatRows([q, k, v], `${dst}attention.in_proj.weight`));
    put(`${dst}attention.out_proj.weight`, take(`${src}self_attn.o_proj.weight`, [hidden, H * D]));
    if (supra) {
      put(`${dst}attention._totrain_embed.weight`, take(`${src}self_attn.kernel_q.weight`, [H * D, H * D]));
      put(`${dst}attention._totrain_embed.bias`, take(`${src}self_attn.kernel_q.bias`, [H * D]));
      if (Hkv !== H) {
        put(`${dst}attention._totrain_embed_kv.weight`, take(`${src}self_attn.kernel_k.weight`, [Hkv * D, Hkv * D]));
        put(`${dst}attention._totrain_embed_kv.bias`, take(`${src}self_attn.kernel_k.bias`, [Hkv * D]));
      }
      if (supra.qk_norm !== 'none') {
        put(`${dst}attention._totrain_q_norm.weight`, take(`${src}self_attn.q_norm.weight`, [H * D]));
        put(`${dst}attention._totrain_k_norm.weight`, take(`${src}self_attn.k_norm.weight`, [H * D]));
      }
    }
    if (invFreq) put(`${dst}attention.pos_embed.inv_freq`, invFreq);
    put(`${dst}ffn_norm.weight`, take(`${src}post_attention_layernorm.weight`, [hidden]));
    const gate = take(`${src}mlp.gate_proj.weight`, [I, hidden]);
    const up = take(`${src}mlp.up_proj.weight`, [I, hidden]);
    put(`${dst}feed_forward.w12.weight`, lazyConcatRows([gate, up], `${dst}feed_forward.w12.weight`));
    put(`${dst}feed_forward.w3.weight`, take(`${src}mlp.down_proj.weight`, [hidden, I]));
  }
  put('norm.weight', take('model.norm.weight', [hidden]));
  // open_lm's tied model registers the one matrix under both names, so a strict load wants both
  put('output.weight', config.tie_word_embeddings ? emb : take('lm_head.weight', [V, hidden]));
  const unexpected = [...input.keys()].filter((n) => !used.has(n));
  if (unexpected.length > 0) {
    fail(`tensors open_lm has no place for (${unexpected.length}): ${unexpected.slice(0, 10).join(', ')}${unexpected.length > 10 ? ', ...' : ''}`);
  }
  return out;
}

// ---- configs -------------------------------------------------------------------------------------

/** open_lm's params as saved by its HF wrapper (OpenLMConfig) or as a model_configs/*.json file. */
export type OpenLmParams = Record<string, unknown>;

/** True when a config.json is open_lm's rather than a transformers one. */
export function isOpenLmConfig(raw: Record<string, unknown>): boolean {
  const archs = raw.architectures;
  if (raw.model_type === 'openlm') return true;
  if (Array.isArray(archs) && archs.some((a) => typeof a === 'string' && /^OpenLM/i.test(a))) return true;
  return raw.hidden_size === undefined && (raw.dim !== undefined || raw.hidden_dim !== undefined) && raw.n_heads !== undefined;
}

/**
 * A model folder's config: transformers' config.json as it is, or open_lm's mapped to HF fields with the
 * dimensions its params lack taken from the tensors' shapes (openLmConfig). `path` names the file in errors.
 */
export function modelConfigOf(raw: Record<string, unknown>, tensors: ReadonlyMap<string, ShapedTensor>, path: string): ModelConfig {
  return isOpenLmConfig(raw) ? openLmConfig(raw, tensors, path) : parseConfig(raw, path);
}

/**
 * An HF-style ModelConfig (SupraForCausalLM for a linear-attention model, LlamaForCausalLM otherwise) for
 * open_lm params, with dimensions the params lack taken from the tensors (names with or without "model.").
 *
 * Reads both spellings open_lm has: the HF wrapper's config.json (Params field names: dim, apply_qk_norm,
 * norm_type) and open_lm.main's --model JSON (hidden_dim, qk_norm, model_norm); see OPEN_LM_FIELDS.
 * Field mapping (first found wins; fields are looked up at the top level, then under "params_args_dict"
 * and "params"):
 *   dim | hidden_dim -> hidden_size          n_layers -> num_hidden_layers     n_heads -> num_attention_heads
 *   n_heads_kv | n_kv_heads | num_kv_heads -> num_key_value_heads (else inferred from in_proj, else n_heads)
 *   vocab_size -> vocab_size                 norm_eps -> rms_norm_eps (and supra.qk_norm_eps, as open_lm)
 *   seq_len -> max_position_embeddings       weight_tying -> tie_word_embeddings (else: no output.weight)
 *   apply_qk_norm | qk_norm -> supra.qk_norm "rms" (open_lm's qk-norms use the block norm class, RMS)
 *   use_decay=true -> decay "lightning", or "retnet" with use_retnet_slopes; else "none" (Params' default)
 *   rotary_base_frequency | rope_theta -> rope_theta
 *   intermediate size: from feed_forward.w12 rows / 2, else intermediate_dim_ffn | intermediate_size |
 *   ffn_dim, else open_lm's SwiGLU rule 256 * ceil((8 * dim / 3) / 256)
 * Assumptions, documented because the params do not say: rope_theta is 10000 (Params' default) unless a
 * field or an inv_freq buffer says otherwise; head_dim = dim / n_heads (open_lm's rule); norm_eps is 1e-5
 * when absent (Params' default); the GroupNorm eps is 1e-5 (nn.GroupNorm's default, as open_lm uses);
 * hidden_act is silu (SwiGLU).
 * Unsupported settings (a non-RMS block norm, decay_start, a kernel size other than the head size,
 * non-rotary positions, RoPE scaling, GELU feed-forward, mixture-of-experts layers) are refused with an error.
 */
export function openLmConfig(params: OpenLmParams, tensors?: ReadonlyMap<string, ShapedTensor>, path = 'config.json'): ModelConfig {
  const bad = (msg: string): never => {
    throw new Error(`supra: ${path}: open_lm config: ${msg}`);
  };
  const scopes = [params, params.params_args_dict, params.params].filter((s): s is Record<string, unknown> => typeof s === 'object' && s !== null && !Array.isArray(s));
  const get = (...keys: string[]): unknown => {
    for (const s of scopes) for (const k of keys) if (s[k] !== undefined && s[k] !== null) return s[k];
    return undefined;
  };
  const int = (v: unknown, what: string): number => checkSize(v, `open_lm config: ${what}`, path);
  const t = tensors ? stripOpenLmPrefix(tensors).tensors : new Map<string, ShapedTensor>();
  const shapeOf = (name: string) => t.get(name)?.shape;

  const embShape = shapeOf('tok_embeddings.weight');
  const hiddenField = get('dim', 'hidden_dim', 'hidden_size');
  const hidden = hiddenField !== undefined ? int(hiddenField, 'dim') : embShape ? embShape[1]! : bad('no "dim" field and no tok_embeddings.weight to infer it from');
  if (embShape && embShape[1] !== hidden) bad(`dim is ${hidden} but tok_embeddings.weight has ${embShape[1]} columns`);
  const heads = int(get('n_heads', 'num_attention_heads') ?? bad('no "n_heads" field: the head count cannot be inferred from the tensors'), 'n_heads');
  if (hidden % heads !== 0) bad(`dim ${hidden} is not a multiple of n_heads ${heads}`);
  const headDim = hidden / heads;
  let layers = get('n_layers', 'num_hidden_layers') as number | undefined;
  if (layers === undefined) {
    let maxLayer = -1;
    for (const n of t.keys()) {
      const m = LAYER_RE.exec(n);
      if (m) maxLayer = Math.max(maxLayer, Number(m[1]));
    }
    if (maxLayer < 0) bad('no "n_layers" field and no layer tensors to count');
    layers = maxLayer + 1;
  }
  layers = int(layers, 'n_layers');
  let kvHeads = get('n_heads_kv', 'n_kv_heads', 'num_kv_heads', 'num_key_value_heads') as number | undefined;
  const inProj = shapeOf('layers.0.attention.in_proj.weight');
  if (kvHeads === undefined && inProj) kvHeads = (inProj[0]! - hidden) / 2 / headDim;
  kvHeads = int(kvHeads ?? heads, 'n_heads_kv');
  let vocab = get('vocab_size') as number | undefined;
  if (embShape) {
    if (vocab !== undefined && vocab !== embShape[0]) bad(`vocab_size is ${vocab} but tok_embeddings.weight has ${embShape[0]} rows`);
    vocab = embShape[0];
  }
  vocab = int(vocab ?? bad('no "vocab_size" field and no tok_embeddings.weight'), 'vocab_size');
  const w12 = shapeOf('layers.0.feed_forward.w12.weight');
  const intermediate = int(
    w12 ? w12[0]! / 2 : get('intermediate_dim_ffn', 'intermediate_size', 'ffn_dim') ?? 256 * Math.ceil(Math.floor((8 * hidden) / 3) / 256),
    'intermediate size',
  );

  const normType = String(get('norm_type', 'model_norm') ?? 'rms_norm');
  if (!/rms/i.test(normType)) bad(`norm_type "${normType}": supra's blocks use RMSNorm (Llama/Mistral); only an RMS norm_type can be imported`);
  const ffnType = String(get('ffn_type') ?? 'swiglu');
  if (!/^swiglu/.test(ffnType)) bad(`ffn_type "${ffnType}" is not supported (SwiGLU only)`);
  const posType = String(get('positional_embedding_type') ?? 'rotary');
  if (posType !== 'rotary') bad(`positional_embedding_type "${posType}" is not supported (rotary, the rotate-half convention, only)`);
  if (get('post_embed_norm') === true) bad('post_embed_norm is not supported');
  const rotaryScale = get('rotary_scale');
  if (rotaryScale !== undefined && rotaryScale !== 1) bad(`rotary_scale ${JSON.stringify(rotaryScale)} is not supported (RoPE without scaling: 1)`);
  const moeFreq = get('moe_freq');
  if (moeFreq !== undefined && moeFreq !== 0) bad(`moe_freq ${JSON.stringify(moeFreq)}: mixture-of-experts layers are not supported`);
  if (get('decay_start') !== undefined) bad(`decay_start ${JSON.stringify(get('decay_start'))} is not supported (the slopes start at their default)`);
  for (const key of ['qk_head_dim', 'v_head_dim']) {
    const v = get(key);
    if (v !== undefined && v !== headDim) bad(`${key} ${JSON.stringify(v)} differs from dim / n_heads = ${headDim}; supra needs square kernels`);
  }
  const normEps = get('norm_eps', 'rms_norm_eps') ?? 1e-5;
  if (typeof normEps !== 'number' || !(normEps > 0)) bad(`norm_eps must be a positive number, got ${JSON.stringify(normEps)}`);

  let ropeTheta = get('rotary_base_frequency', 'rope_theta') as number | undefined;
  const invFreq = t.get('layers.0.attention.pos_embed.inv_freq');
  if (ropeTheta === undefined && invFreq && invFreq.data instanceof Float32Array) ropeTheta = ropeThetaFromInvFreq(invFreq.data, invFreq.dtype) ?? undefined;
  ropeTheta ??= 10000;

  const tyingField = get('weight_tying', 'tie_word_embeddings');
  const tied = typeof tyingField === 'boolean' ? tyingField : tensors ? !t.has('output.weight') : false;

  const attnName = String(get('attn_name') ?? '');
  const hasKernels = t.has('layers.0.attention._totrain_embed.weight');
  const linear = /linear/.test(attnName) || hasKernels;
  const qkField = get('apply_qk_norm', 'qk_norm');
  const qkNormOn = typeof qkField === 'boolean' ? qkField : t.has('layers.0.attention._totrain_q_norm.weight');
  // open_lm builds the qk-norms with the block norm class, which is RMS here
  const qkNorm: QkNorm = qkNormOn ? 'rms' : 'none';
  // open_lm's Params (and open_lm.main's --use-decay) default to no decay; retnet slopes only apply with decay
  const decay = get('use_decay') !== true ? 'none' : get('use_retnet_slopes') === true ? 'retnet' : 'lightning';

  const raw: Record<string, unknown> = {
    architectures: [linear ? SUPRA_ARCHITECTURE : 'LlamaForCausalLM'],
    model_type: linear ? 'supra' : 'llama',
    vocab_size: vocab,
    hidden_size: hidden,
    intermediate_size: intermediate,
    num_hidden_layers: layers,
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    head_dim: headDim,
    rms_norm_eps: normEps,
    rope_theta: ropeTheta,
    tie_word_embeddings: tied,
    max_position_embeddings: get('seq_len', 'max_position_embeddings') ?? 2048,
    hidden_act: 'silu',
    attention_bias: false,
  };
  for (const key of ['bos_token_id', 'eos_token_id', 'pad_token_id', 'torch_dtype']) {
    const v = get(key);
    if (v !== undefined) raw[key] = v;
  }
  if (linear) raw.supra = { qk_norm: qkNorm, qk_norm_eps: normEps, decay, group_norm_eps: 1e-5 };
  return parseConfig(raw, path);
}

// ---- writing open_lm configs ---------------------------------------------------------------------

/**
 * One open_lm model setting and where a supra config's value for it goes. open_lm reads a model's
 * settings in two places: its HF wrapper (open_lm_hf: OpenLMForCausalLM builds `Params` from the
 * config.json attributes named like Params' fields, norm_type through get_norm_class), and open_lm.main,
 * whose `--model x.json` is read by create_params under keys of its own (hidden_dim, qk_norm, model_norm).
 */
export interface OpenLmField {
  /** The supra config field the value comes from, or what supra fixes, in parentheses. */
  readonly supra: string;
  /** Its name among open_lm's Params fields: the key in the HF wrapper's config.json. */
  readonly params: string;
  /** Its key in a --model JSON for open_lm.main; null where create_params reads none (Params' default is used). */
  readonly modelJson: string | null;
  /** The value for a config; undefined: not written (the decay fields of a softmax model). */
  readonly value: (c: ModelConfig) => unknown;
}

const ifSupra = (f: (s: NonNullable<ModelConfig['supra']>) => unknown) => (c: ModelConfig) => (c.supra ? f(c.supra) : undefined);

/**
 * Every setting convert writes for open_lm, in one table: toOpenLmParams (the HF wrapper's config.json)
 * and toOpenLmModelJson (open_lm.main's --model JSON) are built from it, docs/scale-out.md lists it, and
 * test/scale-out-roundtrip.test.ts holds the two to each other. The names are TRI-ML/linear_open_lm's
 * (open_lm/model.py Params and create_params, open_lm/params.py).
 */
export const OPEN_LM_FIELDS: readonly OpenLmField[] = [
  { supra: 'hidden_size', params: 'dim', modelJson: 'hidden_dim', value: (c) => c.hidden_size },
  { supra: 'num_hidden_layers', params: 'n_layers', modelJson: 'n_layers', value: (c) => c.num_hidden_layers },
  { supra: 'num_attention_heads', params: 'n_heads', modelJson: 'n_heads', value: (c) => c.num_attention_heads },
  { supra: 'num_key_value_heads', params: 'n_heads_kv', modelJson: 'n_heads_kv', value: (c) => c.num_key_value_heads },
  // the kernels are square per head, so the kernel output (qk) and value heads are both head_dim
  { supra: 'head_dim', params: 'qk_head_dim', modelJson: 'qk_head_dim', value: (c) => c.head_dim },
  { supra: 'head_dim', params: 'v_head_dim', modelJson: 'v_head_dim', value: (c) => c.head_dim },
  { supra: 'intermediate_size', params: 'intermediate_dim_ffn', modelJson: 'intermediate_dim_ffn', value: (c) => c.intermediate_size },
  { supra: 'vocab_size', params: 'vocab_size', modelJson: 'vocab_size', value: (c) => c.vocab_size },
  { supra: 'max_position_embeddings', params: 'seq_len', modelJson: 'seq_len', value: (c) => c.max_position_embeddings },
  { supra: 'tie_word_embeddings', params: 'weight_tying', modelJson: 'weight_tying', value: (c) => c.tie_word_embeddings },
  // create_params passes no norm_eps: open_lm.main's norms always use Params' 1e-5 (toOpenLmModelJson checks)
  { supra: 'rms_norm_eps', params: 'norm_eps', modelJson: null, value: (c) => c.rms_norm_eps },
  { supra: 'rope_theta', params: 'rotary_base_frequency', modelJson: 'rotary_base_frequency', value: (c) => c.rope_theta },
  { supra: '(no RoPE scaling)', params: 'rotary_scale', modelJson: 'rotary_scale', value: () => 1 },
  { supra: '(RMSNorm blocks)', params: 'norm_type', modelJson: 'model_norm', value: () => 'rms_norm' },
  // xformers' "swiglu" (the paper's configs) has the same w12 = [gate; up] and w3; this one needs no xformers kernel
  { supra: '(SwiGLU MLP)', params: 'ffn_type', modelJson: 'ffn_type', value: () => 'swiglu_torch' },
  { supra: '(rotate-half RoPE)', params: 'positional_embedding_type', modelJson: 'positional_embedding_type', value: () => 'rotary' },
  { supra: '(no norm after the embedding)', params: 'post_embed_norm', modelJson: 'post_embed_norm', value: () => false },
  { supra: 'architectures', params: 'attn_name', modelJson: 'attn_name', value: (c) => (c.supra ? 'linear_attn' : 'torch_attn') },
  { supra: 'supra.qk_norm', params: 'apply_qk_norm', modelJson: 'qk_norm', value: (c) => (c.supra ? c.supra.qk_norm !== 'none' : false) },
  { supra: 'supra.decay', params: 'use_decay', modelJson: 'use_decay', value: ifSupra((s) => s.decay !== 'none') },
  { supra: 'supra.decay', params: 'use_retnet_slopes', modelJson: 'use_retnet_slopes', value: ifSupra((s) => s.decay === 'retnet') },
  { supra: '(slopes from their default start)', params: 'decay_start', modelJson: 'decay_start', value: ifSupra(() => null) },
];

/** open_lm's GroupNorm after the linear attention is nn.GroupNorm's default: eps 1e-5, fixed. */
const OPEN_LM_GROUP_NORM_EPS = 1e-5;
/** open_lm.main builds every norm with Params' default norm_eps, since create_params passes none. */
const OPEN_LM_MAIN_NORM_EPS = 1e-5;

/**
 * Refuse a config open_lm cannot express, naming the setting: what the writers below would otherwise
 * drop silently, giving a model that computes something else there.
 */
function checkOpenLmExpressible(config: ModelConfig): void {
  const H = config.num_attention_heads;
  if (config.head_dim * H !== config.hidden_size) {
    fail(`open_lm requires head_dim * n_heads == dim (${config.head_dim} * ${H} != ${config.hidden_size})`);
  }
  if (config.attention_bias) fail('open_lm has no q/k/v biases; this config (attention_bias / Qwen2) cannot be exported to open_lm');
  if (config.o_proj_bias) fail('open_lm has no o_proj bias; this config (o_proj_bias) cannot be exported to open_lm');
  const supra = config.supra;
  if (!supra) return;
  if (supra.normalization !== 'group_norm') fail(`open_lm's linear attention uses GroupNorm; normalization "${supra.normalization}" cannot be expressed`);
  if (supra.qk_norm === 'layernorm') fail('open_lm uses the block norm type (RMS) for qk-norm; a gain-only layernorm qk-norm cannot be expressed');
  if (supra.qk_norm === 'rms' && supra.qk_norm_eps !== config.rms_norm_eps) {
    fail(`open_lm's qk-norms use the blocks' norm_eps (${config.rms_norm_eps}); supra.qk_norm_eps ${supra.qk_norm_eps} cannot be expressed`);
  }
  if (supra.group_norm_eps !== OPEN_LM_GROUP_NORM_EPS) {
    fail(`open_lm's GroupNorm has eps ${OPEN_LM_GROUP_NORM_EPS} (nn.GroupNorm's default); supra.group_norm_eps ${supra.group_norm_eps} cannot be expressed`);
  }
  // get_slopes' branch for other head counts calls get_slopes(2 * closest_power_of_2) without its start argument
  if (supra.decay === 'lightning' && (H & (H - 1)) !== 0) {
    fail(`open_lm computes the lightning slopes only for a power-of-two head count (its get_slopes fails for ${H} heads); use decay retnet or none, or a patched open_lm`);
  }
}

/** open_lm params (Params fields, flat) for a supra ModelConfig: the config.json convert writes beside open_lm weights, as open_lm's HF wrapper reads it. */
export function toOpenLmParams(config: ModelConfig): OpenLmParams {
  checkOpenLmExpressible(config);
  const params: OpenLmParams = { architectures: ['OpenLMForCausalLM'], model_type: 'openlm' };
  for (const f of OPEN_LM_FIELDS) {
    const v = f.value(config);
    if (v !== undefined) params[f.params] = v;
  }
  if (config.bos_token_id !== null) params.bos_token_id = config.bos_token_id;
  if (config.eos_token_id !== null) params.eos_token_id = config.eos_token_id;
  return params;
}

export interface OpenLmModelJsonOptions {
  /**
   * seq_len: the length open_lm.main trains at (its samples are seq_len + 1 tokens) and builds its RoPE
   * tables for. Default: the config's max_position_embeddings.
   */
  seqLen?: number;
}

/**
 * The JSON open_lm.main takes as `--model x.json` (create_params' keys, as open_lm/model_configs/*.json)
 * for a supra ModelConfig. Refuses what that path cannot express beyond toOpenLmParams' refusals: a
 * norm eps other than 1e-5, since create_params passes none.
 */
export function toOpenLmModelJson(config: ModelConfig, options: OpenLmModelJsonOptions = {}): OpenLmParams {
  checkOpenLmExpressible(config);
  if (config.rms_norm_eps !== OPEN_LM_MAIN_NORM_EPS) {
    fail(`open_lm.main builds its norms with norm_eps ${OPEN_LM_MAIN_NORM_EPS} (create_params passes none); rms_norm_eps ${config.rms_norm_eps} cannot be expressed in a --model JSON`);
  }
  const out: OpenLmParams = {};
  for (const f of OPEN_LM_FIELDS) {
    const v = f.value(config);
    if (f.modelJson !== null && v !== undefined) out[f.modelJson] = v;
  }
  if (options.seqLen !== undefined) out.seq_len = checkSize(options.seqLen, 'open_lm seq_len', 'open_lm model JSON');
  return out;
}
