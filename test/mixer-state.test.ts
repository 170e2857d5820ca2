// What callers above models/ do with decoding states, through MixerState alone: clone a prefilled state
// and continue both alike, size prefill pieces on prefillBytes (and feed every token when they shrink),
// snapshot and restore a SUPRA state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { KVCache, SoftmaxAttention } from '../src/layers/attention.js';
import { SupraState } from '../src/layers/supra_attention.js';
import type { MixerFactory, MixerState } from '../src/layers/types.js';
import { loadDecoder } from '../src/models/auto.js';
import { DecoderState, PREFILL_STEP_BYTES, type DecoderLM } from '../src/models/decoder.js';
import { linearize } from '../src/models/linearize.js';
import { Engine, type TokenLogprob } from '../src/serve/engine.js';
import { gqaDir } from './helpers/fixture.js';

const prompt = [3, 17, 42, 99, 5, 200, 7, 64, 1, 128, 33, 250];

function models(): { teacher: DecoderLM; supra: DecoderLM } {
  const teacher = loadDecoder(join(gqaDir, 'teacher')).model;
  return { teacher, supra: linearize(teacher, { seed: 5, normalization: 'sum' }) };
}

test('a cloned state continues exactly as the original, which it leaves untouched (KV cache and SUPRA)', () => {
  const { teacher, supra } = models();
  for (const m of [teacher, supra]) {
    const V = m.config.vocab_size;
    const state = m.newState(2);
    m.step([...prompt, ...prompt.slice().reverse()], 2, prompt.length, state);
    const copy = state.clone();
    assert.equal(copy.position, state.position);
    assert.deepEqual(copy.layers.map((l) => l.position), state.layers.map((l) => l.position));
    const a = Float32Array.from(m.step([77, 5, 9, 1], 2, 2, state).subarray(0, 2 * 2 * V));
    const b = Float32Array.from(m.step([77, 5, 9, 1], 2, 2, copy).subarray(0, 2 * 2 * V));
    assert.deepEqual(b, a, m.config.architecture);
    state.free();
    copy.free();
  }
  supra.free();
  teacher.free();
});

test('prefill pieces shrink with the KV cache\'s scores over the context, never for a SUPRA state', () => {
  // 32 query heads: the scores of a 512-token piece at position 9000 take 32·512·9512·4 bytes > 256 MiB
  const kv = (batch: number) => new DecoderState(batch, [new KVCache(batch, 8, 32, 1), new KVCache(batch, 8, 32, 1)]);
  assert.equal(PREFILL_STEP_BYTES, 256 * 2 ** 20);
  assert.equal(kv(1).prefillPiece(0, 512), 512);
  assert.equal(kv(1).prefillPiece(9000, 512), 128); // 256: 32·256·9256·4 > 256 MiB; 128 fits
  assert.equal(kv(2).prefillPiece(9000, 512), 64); // a batch of two halves it once more
  assert.equal(kv(1).prefillPiece(1e7, 512), 16); // never below 16
  assert.equal(kv(1).prefillPiece(1e7, 10), 10);
  const s = new DecoderState(4, [new SupraState(4, 2, 2, 2)]);
  assert.equal(s.prefillPiece(1e7, 512), 512);
});

test('a SUPRA state snapshots its tensors by name and restores from them; a KV cache has no snapshot', () => {
  const s = new SupraState(1, 2, 3, 4, true);
  s.data.forEach((_, i) => (s.data[i] = i));
  s.normalizer!.forEach((_, i) => (s.normalizer![i] = -i));
  s.position = 9;
  const tensors = s.snapshot();
  assert.deepEqual(tensors.map((t) => [t.name, t.shape]), [['', [1, 2, 3, 4]], ['normalizer', [1, 2, 3]]]);
  const back = new SupraState(1, 2, 3, 4, true);
  back.restore(new Map(tensors.map((t) => [t.name, Float32Array.from(t.data)])), 9);
  assert.deepEqual(back.data, s.data);
  assert.deepEqual(back.normalizer, s.normalizer);
  assert.equal(back.position, 9);
  assert.throws(() => back.restore(new Map([['', s.data]]), 1), /tensor "normalizer" is missing/);
  const kv: MixerState = new KVCache(1, 8, 2);
  assert.equal(kv.snapshot, undefined);
  for (const x of [s, back, kv]) x.free();
});

test('the serve engine feeds every prompt token when its prefill pieces shrink', async () => {
  // a teacher whose caches report a step beyond position 0 as too large: pieces after the first shrink to 16
  class CostlyCache extends KVCache {
    override prefillBytes(piece: number, position: number): number {
      return position > 0 ? Infinity : super.prefillBytes(piece, position);
    }
  }
  const costly: MixerFactory = (ctx) => {
    const mixer = new SoftmaxAttention(ctx);
    mixer.newState = (B) => new CostlyCache(B, mixer.kvHeads * mixer.headDim, mixer.heads);
    return mixer;
  };
  const teacherDir = join(gqaDir, 'teacher');
  const plain = loadDecoder(teacherDir).model;
  const shrinking = loadDecoder(teacherDir, { mixerFactory: costly }).model;
  const long = Array.from({ length: 100 }, (_, i) => (i * 37 + 11) % 256);
  // every scored or generated token: its id and logprob
  const run = async (m: DecoderLM, promptLogprobs: number | null) => {
    const seen: TokenLogprob[] = [];
    await new Engine(m, { prefillChunk: 64 }).run(
      long,
      { promptLogprobs, logprobs: 1, stopTokenIds: [], maxTokens: 3, temperature: 0, topP: 1, topK: 0, repetitionPenalty: 1, seed: 1 },
      { onPrompt: (entries) => void seen.push(...entries), onToken: (t) => (seen.push(t), true) },
      new AbortController().signal,
    );
    return seen;
  };
  for (const promptLogprobs of [null, 1]) {
    const want = await run(plain, promptLogprobs);
    const got = await run(shrinking, promptLogprobs);
    assert.equal(want.length, (promptLogprobs === null ? 0 : long.length - 1) + 3);
    assert.deepEqual(got.map((t) => t.id), want.map((t) => t.id));
    // other piece sizes round differently in the last bits
    got.forEach((t, i) => assert.ok(Math.abs(t.logprob - want[i]!.logprob) < 1e-5, `token ${i}: ${t.logprob} vs ${want[i]!.logprob}`));
  }
  plain.free();
  shrinking.free();
});
