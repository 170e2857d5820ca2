// Random-weight teacher folders with the shapes of real models, for measuring supra at scale without
// downloading checkpoints (the scale benchmark and memory checks use them; tests use the tiny shape).
//
//   node scripts/random-model.mjs <shape> <out-dir> [--dtype bf16|f32] [--seed N] [--max-shard-size BYTES]
//   node scripts/random-model.mjs --list
//
// As a module: import { MODEL_SHAPES, randomModelConfig, writeRandomModel } from './random-model.mjs'.
// The folder holds config.json (Hugging Face fields), a word-per-id tokenizer (writeRandomTokenizer) and
// the weights under Hugging Face names, written by
// supra's own streaming writer (dist/, so build first): one tensor in memory at a time, sharded past
// 5 GB as transformers does. The same shape, dtype and seed give the same bytes. Weights are uniform
// with standard deviation 0.02 (transformers' initializer_range), norm gains 1: the values mean nothing,
// only sizes and speed do.
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = process.env.SUPRA_DIST ?? join(repoRoot, 'dist');
if (!existsSync(join(dist, 'src/io/checkpoint.js'))) throw new Error(`random-model: ${dist} has no build of supra; run npm run build first`);
const load = (path) => import(pathToFileURL(join(dist, path)).href);
const { saveCheckpoint } = await load('src/io/checkpoint.js');
const { writeFolderAtomic, writeJsonAtomic } = await load('src/io/atomic.js');
const { parseConfig } = await load('src/io/config.js');
const { parameterShapes } = await load('src/models/decoder.js');

/**
 * (vocab, hidden, intermediate, layers, heads, kv heads, tied) of the models supra is measured on, with
 * the config fields that change the computation (norm epsilon, RoPE base, biases, sliding window).
 */
export const MODEL_SHAPES = {
  tiny: { architecture: 'LlamaForCausalLM', vocab: 256, hidden: 64, intermediate: 128, layers: 2, heads: 4, kvHeads: 2, tied: false, ropeTheta: 10000, rmsNormEps: 1e-5, maxPositions: 2048 },
  'smollm-135m': { architecture: 'LlamaForCausalLM', vocab: 49152, hidden: 576, intermediate: 1536, layers: 30, heads: 9, kvHeads: 3, tied: true, ropeTheta: 10000, rmsNormEps: 1e-5, maxPositions: 2048 },
  'qwen2.5-0.5b': { architecture: 'Qwen2ForCausalLM', vocab: 151936, hidden: 896, intermediate: 4864, layers: 24, heads: 14, kvHeads: 2, tied: true, ropeTheta: 1e6, rmsNormEps: 1e-6, maxPositions: 32768 },
  'tinyllama-1.1b': { architecture: 'LlamaForCausalLM', vocab: 32000, hidden: 2048, intermediate: 5632, layers: 22, heads: 32, kvHeads: 4, tied: false, ropeTheta: 10000, rmsNormEps: 1e-5, maxPositions: 2048 },
  'mistral-7b': { architecture: 'MistralForCausalLM', vocab: 32000, hidden: 4096, intermediate: 14336, layers: 32, heads: 32, kvHeads: 8, tied: false, ropeTheta: 10000, rmsNormEps: 1e-5, maxPositions: 32768, slidingWindow: 4096 },
};

const MODEL_TYPES = { LlamaForCausalLM: 'llama', MistralForCausalLM: 'mistral', Qwen2ForCausalLM: 'qwen2' };
const DTYPES = { bf16: { write: 'BF16', torch: 'bfloat16' }, f32: { write: 'F32', torch: 'float32' } };

function shapeOf(shape) {
  const s = typeof shape === 'string' ? MODEL_SHAPES[shape] : shape;
  if (!s) throw new Error(`random-model: unknown shape "${shape}"; one of ${Object.keys(MODEL_SHAPES).join(', ')}`);
  return s;
}

/** The config.json a folder of this shape holds (Qwen2 gets its q/k/v biases from the architecture). */
export function randomModelConfig(shape, dtype = 'bf16') {
  const s = shapeOf(shape);
  return {
    architectures: [s.architecture],
    model_type: MODEL_TYPES[s.architecture],
    vocab_size: s.vocab,
    hidden_size: s.hidden,
    intermediate_size: s.intermediate,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    hidden_act: 'silu',
    rms_norm_eps: s.rmsNormEps,
    rope_theta: s.ropeTheta,
    max_position_embeddings: s.maxPositions,
    tie_word_embeddings: s.tied,
    ...(s.slidingWindow ? { sliding_window: s.slidingWindow } : {}),
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: DTYPES[dtype].torch,
  };
}

/** A small fast generator (xorshift32) seeded per tensor, so each tensor's values depend on its name and the seed only. */
function tensorSeed(seed, name) {
  let h = (0x811c9dc5 ^ seed) >>> 0; // FNV-1a over the name, started from the seed
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h || 1;
}

function randomValues(n, seed, name) {
  const out = new Float32Array(n);
  const scale = (0.02 * Math.sqrt(3)) / 2 ** 31; // int32 → U(−a, a), whose standard deviation is a/√3
  let x = tensorSeed(seed, name) | 0;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x * scale;
  }
  return out;
}

/**
 * tokenizer.json + tokenizer_config.json for a random model of `vocab` ids: id i is the word `w<i>`
 * (0, 1, 2 are <unk>, <s>, </s>), split on whitespace, so any id sequence is text and back, and
 * `supra eval`, `generate` and `serve` run on the folder. Written into `dir` (atomically, file by file);
 * returns the files written.
 */
export function writeRandomTokenizer(dir, vocab) {
  const specials = ['<unk>', '<s>', '</s>'];
  const words = Object.fromEntries(specials.map((t, i) => [t, i]));
  for (let i = specials.length; i < vocab; i++) words[`w${i}`] = i;
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: { type: 'WhitespaceSplit' },
    post_processor: null,
    decoder: { type: 'WordPiece', prefix: '##', cleanup: false },
    model: { type: 'WordPiece', unk_token: '<unk>', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: words },
  };
  const files = [join(dir, 'tokenizer.json'), join(dir, 'tokenizer_config.json')];
  writeJsonAtomic(files[0], tokenizer);
  writeJsonAtomic(files[1], { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', tokenizer_class: 'PreTrainedTokenizerFast' });
  return files;
}

/**
 * Write a random-weight teacher folder of `shape` (a MODEL_SHAPES name or an object like its entries) to
 * `outDir` (absent or empty; it appears only once complete). Returns the files written.
 */
export function writeRandomModel(shape, outDir, { dtype = 'bf16', seed = 0, maxShardBytes } = {}) {
  if (!DTYPES[dtype]) throw new Error(`random-model: --dtype must be bf16 or f32, got "${dtype}"`);
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`random-model: --seed must be an integer ≥ 0, got ${seed}`);
  const raw = randomModelConfig(shape, dtype);
  const tensors = [...parameterShapes(parseConfig(raw))].map(([name, dims]) => ({
    name,
    shape: dims,
    dtype: DTYPES[dtype].write,
    // norm gains start at 1, as in transformers; everything else is random
    data: () => {
      const n = dims.reduce((a, b) => a * b, 1);
      return /norm\.weight$/.test(name) ? new Float32Array(n).fill(1) : randomValues(n, seed, name);
    },
  }));
  return writeFolderAtomic(outDir, (tmp) => {
    const configPath = join(tmp, 'config.json');
    writeJsonAtomic(configPath, raw);
    return [configPath, ...writeRandomTokenizer(tmp, raw.vocab_size), ...saveCheckpoint(tmp, tensors, { maxShardBytes })];
  });
}

function main(argv) {
  if (argv.includes('--list')) {
    for (const [name, s] of Object.entries(MODEL_SHAPES)) {
      const params = [...parameterShapes(parseConfig(randomModelConfig(name)))].reduce((sum, [, d]) => sum + d.reduce((a, b) => a * b, 1), 0);
      console.log(`${name.padEnd(16)} ${(params / 1e6).toFixed(1).padStart(8)}M parameters  ${s.architecture}`);
    }
    return;
  }
  const positional = [];
  const options = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--dtype') options.dtype = argv[++i];
    else if (a === '--seed') options.seed = Number(argv[++i]);
    else if (a === '--max-shard-size') options.maxShardBytes = Number(argv[++i]);
    else if (a.startsWith('--')) throw new Error(`random-model: unknown option ${a}`);
    else positional.push(a);
  }
  if (positional.length !== 2) {
    throw new Error(`usage: node scripts/random-model.mjs <shape> <out-dir> [--dtype bf16|f32] [--seed N] [--max-shard-size BYTES]\nshapes: ${Object.keys(MODEL_SHAPES).join(', ')} (--list shows their sizes)`);
  }
  const started = Date.now();
  const files = writeRandomModel(positional[0], positional[1], options);
  for (const f of files) console.log(`wrote ${f}`);
  console.log(`in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === realpathSync(process.argv[1])) {
  try {
    main(process.argv.slice(2));
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
}
