// Shared by the eval tests: a character-level tokenizer (one token per ASCII character, id = char code,
// so token counts are character counts and every id fits the fixture's 256-token vocabulary), a model
// that prefers the letter "a" by a known margin, and an independent float64 log-softmax.
import { copyFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../src/io/config.js';
import { loadTokenizer, type LoadedTokenizer } from '../../src/io/tokenizer.js';
import { DecoderLM } from '../../src/models/decoder.js';
import { gqaDir } from './fixture.js';
import { tempRoot, freshDirs } from './tmp.js';
import { charTokenizerJson, writeTokenizer } from './tokenizers.js';

export const tmpRoot = tempRoot('supra-eval-');
export const freshDir = freshDirs(tmpRoot);

/** The project's sample task and text files (this helper compiles to <dist>/test/helpers). */
export const sampleDir = join(resolve(dirname(fileURLToPath(import.meta.url)), '../../..'), 'test', 'fixtures-eval');

export const BOS = 1, EOS = 2;

/** The character tokenizer (<unk>=0 <s>=BOS </s>=EOS, "\n"=10, ASCII c = c, <s> added in front) into dir. */
export function writeCharTokenizer(dir: string): void {
  writeTokenizer(dir, charTokenizerJson({ bosInFront: true }), { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' });
}

export function charTokenizer(): LoadedTokenizer {
  const dir = freshDir();
  writeCharTokenizer(dir);
  return loadTokenizer(dir);
}

/** A model folder: the fixture teacher's config and weights plus the character tokenizer. */
export function teacherFolder(): string {
  const dir = freshDir();
  copyFileSync(join(gqaDir, 'teacher', 'config.json'), join(dir, 'config.json'));
  copyFileSync(join(gqaDir, 'teacher', 'model.safetensors'), join(dir, 'model.safetensors'));
  writeCharTokenizer(dir);
  return dir;
}

/** Char codes of an ASCII string (what the character tokenizer produces without <s>). */
export function chars(s: string): number[] {
  return Array.from(s, (c) => c.charCodeAt(0));
}

export const PREFER_LOGIT = 5;
export const PREFER_EPS = 1e-5;
export const PREFER_VOCAB = 128;

/**
 * A one-layer Llama whose every layer output is zero (o_proj and down_proj are zero) and whose
 * embeddings are all ones, so the final RMSNorm sees a vector of ones whatever the context: the logit
 * of "a" is PREFER_LOGIT / sqrt(1 + eps) and every other logit is 0, at every position.
 */
export function preferAModel(): DecoderLM {
  const C = 8;
  const config = parseConfig({
    architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: PREFER_VOCAB, hidden_size: C, intermediate_size: 8,
    num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 2, head_dim: 4, rms_norm_eps: PREFER_EPS,
    rope_theta: 10000, tie_word_embeddings: false, max_position_embeddings: 64,
  });
  const model = new DecoderLM(config);
  for (const p of model.params()) p.data.fill(0);
  model.param('model.embed_tokens.weight').data.fill(1);
  model.param('model.norm.weight').data.fill(1);
  const head = model.param('lm_head.weight').data;
  const a = 'a'.charCodeAt(0);
  head.subarray(a * C, (a + 1) * C).fill(PREFER_LOGIT / C);
  return model;
}

/** log p("a") and log p(any other token) under preferAModel, by hand. */
export function preferLogProbs(): { la: number; lo: number } {
  const z = PREFER_LOGIT / Math.sqrt(1 + PREFER_EPS);
  const lse = Math.log(Math.exp(z) + (PREFER_VOCAB - 1));
  return { la: z - lse, lo: -lse };
}

/** log softmax(row)[target] in float64, independent of the kernels. */
export function logProbRef(logits: ArrayLike<number>, row: number, V: number, target: number): number {
  let max = -Infinity;
  for (let v = 0; v < V; v++) max = Math.max(max, logits[row * V + v]!);
  let s = 0;
  for (let v = 0; v < V; v++) s += Math.exp(logits[row * V + v]! - max);
  return logits[row * V + target]! - max - Math.log(s);
}
