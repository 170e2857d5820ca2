// The README's library example, on the fixture teacher with a byte-level tokenizer written here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gqaDir } from './helpers/fixture.js';
import { AutoModelForCausalLM, AutoTokenizer, TextStreamer, linearize, DecoderLM } from '../src/index.js';

/** A tokenizer.json whose 256 ids are the bytes (fits the fixture's vocabulary of 256). */
function byteTokenizer(): object {
  const bytes: Record<string, number> = {};
  // GPT-2's byte-to-unicode table, so the ByteLevel pre-tokenizer's symbols map to ids 0..255
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const ch = printable.includes(b) ? String.fromCharCode(b) : String.fromCharCode(256 + extra++);
    bytes[ch] = b;
  }
  return {
    version: '1.0',
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab: bytes, merges: [] },
  };
}

test('the README library example runs: from_pretrained, forward, generate with a streamer, linearize', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'supra-api-'));
  try {
    cpSync(join(gqaDir, 'teacher'), dir, { recursive: true });
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(byteTokenizer()));
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({}));
    const model = await AutoModelForCausalLM.from_pretrained(dir, { backend: 'wasm' });
    const tokenizer = await AutoTokenizer.from_pretrained(dir);
    const prompt = tokenizer.encode('Hello');
    assert.deepEqual(prompt, [...Buffer.from('Hello')]);
    const { logits } = await model.forward({ input_ids: [prompt] });
    assert.deepEqual(logits.dims, [1, 5, 256]);
    let streamed = '';
    const ids = (await model.generate({
      input_ids: [prompt], max_new_tokens: 8, do_sample: true, temperature: 0.8, top_k: 40, seed: 1,
      streamer: new TextStreamer(tokenizer, { skip_prompt: true, callback_function: (t: string) => (streamed += t) }),
    })) as number[][];
    assert.equal(ids[0]!.length, 13);
    assert.deepEqual(ids[0]!.slice(0, 5), prompt);
    assert.equal(streamed, tokenizer.decode(ids[0]!.slice(5)));
    const rnn = linearize(model, { seed: 0 });
    assert.ok(rnn instanceof DecoderLM);
    assert.equal(rnn.config.architecture, 'SupraForCausalLM');
    rnn.free();
    model.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
