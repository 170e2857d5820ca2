// The benchmarks' view of the backend's products (src/bench/products.ts): a decoding step's calls recorded and
// made again on the same buffers (the scale benchmark's products-alone figure), and the wrapping undone after.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getBackend } from '../src/core/select.js';
import { PRODUCT_METHODS, recordProducts, replayProducts } from '../src/bench/products.js';
import { configS, randomModel } from '../src/bench/model.js';

test('a decoding step\'s products recorded and replayed: every layer\'s and lm_head\'s, the same logits again, the backend as it was', () => {
  const backend = getBackend() as unknown as Record<string, unknown>;
  const own = PRODUCT_METHODS.map((name) => backend[name]);
  const model = randomModel(configS('supra'), 7, 'bf16');
  try {
    const state = model.newState(1);
    model.step([1, 2, 3], 1, 3, state, { lastOnly: true });
    let logits: Float32Array | null = null;
    const calls = recordProducts(() => {
      logits = model.step([4], 1, 1, state);
    });
    assert.deepEqual(PRODUCT_METHODS.map((name) => backend[name]), own, 'the backend\'s own methods are back');
    // q/k/v, o_proj, gate/up, down (one call or more each) in every layer, then lm_head
    assert.ok(calls.length >= 4 * model.config.num_hidden_layers + 1, `${calls.length} calls`);
    const expected = Float32Array.from(logits!);
    logits!.fill(Number.NaN);
    replayProducts(calls); // lm_head's product, last, writes the logits again from the same final hidden state
    assert.deepEqual(logits, expected);
    state.free();
  } finally {
    model.free();
  }
  // an error inside the recorded work still puts the methods back
  assert.throws(() => recordProducts(() => {
    throw new Error('boom');
  }), /boom/);
  assert.deepEqual(PRODUCT_METHODS.map((name) => backend[name]), own);
});
