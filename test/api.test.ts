// The README's library example, on the fixture teacher with a byte-level tokenizer written here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gqaDir } from './helpers/fixture.js';
import { AutoModelForCausalLM, AutoTokenizer, TextStreamer, linearize, DecoderLM } from '../src/index.js';
import { byteTokenizerJson, writeTokenizer } from './helpers/tokenizers.js';

test('the README library example runs: from_pretrained, forward, generate with a streamer, linearize', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'supra-api-'));
  try {
    cpSync(join(gqaDir, 'teacher'), dir, { recursive: true });
    writeTokenizer(dir, byteTokenizerJson(), {});
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
