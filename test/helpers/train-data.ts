// Small in-memory training data for the trainer tests: a token stream cut into sequences of seqLen + 1
// (consecutive sequences share one boundary token), shuffled per epoch by Mt19937(seed + epoch).
import { Mt19937 } from '../../src/core/random.js';
import type { DataPosition, TokenBatches } from '../../src/train/batches.js';
import { charTokenizerJson } from './tokenizers.js';

export class MemoryBatches implements TokenBatches {
  readonly trainSequences: number;
  readonly trainTokens: number;
  readonly validationTokens: number;
  private order: Int32Array;
  private epoch = 0;
  private cursor = 0;

  constructor(
    private readonly train: Int32Array,
    private readonly valid: Int32Array,
    readonly seqLen: number,
    private readonly seed = 0,
  ) {
    this.trainSequences = Math.floor((train.length - 1) / seqLen);
    if (this.trainSequences < 1) throw new Error('MemoryBatches: training stream shorter than one sequence');
    this.trainTokens = train.length;
    this.validationTokens = valid.length;
    this.order = this.shuffled(0);
  }

  private shuffled(epoch: number): Int32Array {
    const order = Int32Array.from({ length: this.trainSequences }, (_, i) => i);
    const rng = new Mt19937(this.seed + epoch);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rng.random() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    return order;
  }

  nextTrain(batch: number): Int32Array {
    const L = this.seqLen + 1;
    const out = new Int32Array(batch * L);
    for (let b = 0; b < batch; b++) {
      if (this.cursor >= this.trainSequences) {
        this.epoch++;
        this.cursor = 0;
        this.order = this.shuffled(this.epoch);
      }
      const s = this.order[this.cursor++]! * this.seqLen;
      out.set(this.train.subarray(s, s + L), b * L);
    }
    return out;
  }

  position(): DataPosition {
    return { epoch: this.epoch, cursor: this.cursor, seed: this.seed };
  }

  restore(p: DataPosition): void {
    if (p.seed !== this.seed) throw new Error(`MemoryBatches: position has seed ${p.seed}, data ${this.seed}`);
    this.epoch = p.epoch;
    this.cursor = p.cursor;
    this.order = this.shuffled(p.epoch);
  }

  validation(maxSequences = Infinity): { ids: Int32Array; count: number } {
    const L = this.seqLen + 1;
    const count = Math.min(maxSequences, Math.floor((this.valid.length - 1) / this.seqLen));
    const ids = new Int32Array(count * L);
    for (let i = 0; i < count; i++) ids.set(this.valid.subarray(i * this.seqLen, i * this.seqLen + L), i * L);
    return { ids, count };
  }

  close(): void {}
}

/** A fixed random "sentence" of `period` tokens repeated to `length` tokens: easy to learn. */
export function repeatedText(length: number, period: number, vocab: number, seed = 1): Int32Array {
  const rng = new Mt19937(seed);
  const phrase = Int32Array.from({ length: period }, () => rng.nextU32() % vocab);
  return Int32Array.from({ length }, (_, i) => phrase[i % period]!);
}

/** Uniform random tokens (nothing to learn beyond the unigram distribution). */
export function randomTokens(length: number, vocab: number, seed = 2): Int32Array {
  const rng = new Mt19937(seed);
  return Int32Array.from({ length }, () => rng.nextU32() % vocab);
}

/** A tiny Llama config (GQA) for trainer tests; `supra` makes it a SUPRA config. */
export function tinyConfig(options: { supra?: boolean; vocab?: number; tied?: boolean; qkNorm?: 'none' | 'rms' } = {}): Record<string, unknown> {
  const config: Record<string, unknown> = {
    architectures: [options.supra ? 'SupraForCausalLM' : 'LlamaForCausalLM'],
    model_type: options.supra ? 'supra' : 'llama',
    vocab_size: options.vocab ?? 32,
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 256,
    rms_norm_eps: 1e-5,
    tie_word_embeddings: options.tied ?? false,
  };
  if (options.supra) config.supra = { qk_norm: options.qkNorm ?? 'none', decay: 'lightning' };
  return config;
}

/**
 * A character-level tokenizer folder's files: <unk> 0, <s> 1, </s> 2 (EOS), "\n" 10, printable ASCII
 * c → c (a BPE vocabulary with no merges), so ids fit a 128-token model.
 */
export function charTokenizerFiles(): Record<string, string> {
  const tokenizer = charTokenizerJson();
  return {
    'tokenizer.json': JSON.stringify(tokenizer),
    'tokenizer_config.json': JSON.stringify({ bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' }),
  };
}
