// Training memory that scales with the model: the loss over a large vocabulary computed a block of rows
// at a time, and activation checkpointing (each layer recomputed before its backward). Checkpointing gives
// bit for bit the gradients of the plain backward; the chunked loss the same numbers up to float32 sums.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { arenaStats } from '../src/core/memory.js';
import { getBackend } from '../src/core/select.js';
import { parseConfig } from '../src/io/config.js';
import { initRandom } from '../src/models/build.js';
import type { DecoderLM } from '../src/models/decoder.js';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { MetricsLog } from '../src/train/metrics.js';
import { defaultEvalSequences } from '../src/train/recipe.js';
import { train } from '../src/train/trainer.js';
import { MemoryBatches, randomTokens, repeatedText, tinyConfig } from './helpers/train-data.js';
import { tempRoot } from './helpers/tmp.js';
import { maxAbs, maxAbsDiff } from './helpers/fixture.js';

const B = 2, T = 12;

function model(options: Parameters<typeof tinyConfig>[0]): DecoderLM {
  return initRandom(parseConfig(tinyConfig(options)), 3);
}

/** Loss and a copy of every gradient after one loss + backward from zero gradients. */
function lossAndGrads(m: DecoderLM, ids: Int32Array): { loss: number; grads: Map<string, Float32Array> } {
  m.enableGrads();
  m.zeroGrad();
  const loss = m.loss(ids, B, T, { zLoss: 1e-4 });
  m.backward();
  return { loss, grads: new Map(m.params().map((p) => [p.name, Float32Array.from(p.grad!)])) };
}

const bytesOf = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

for (const kind of [{ supra: false }, { supra: true }, { supra: true, qkNorm: 'rms' as const, tied: true }]) {
  const name = `${kind.supra ? 'SUPRA' : 'teacher'}${kind.qkNorm ? ', qk-norm' : ''}${kind.tied ? ', tied' : ''}`;

  test(`activation checkpointing (${name}): the loss and every gradient bit for bit those of the plain backward, twice in a row`, () => {
    const m = model({ ...kind, vocab: 48 });
    try {
      const ids = randomTokens(B * T, 48, 5);
      const plain = lossAndGrads(m, ids);
      m.setActivationCheckpointing(true);
      assert.equal(m.activationCheckpointing, true);
      for (let round = 0; round < 2; round++) {
        const ck = lossAndGrads(m, ids);
        assert.equal(ck.loss, plain.loss);
        for (const [n, g] of plain.grads) assert.ok(bytesOf(ck.grads.get(n)!).equals(bytesOf(g)), `${n}: the same bits (round ${round})`);
      }
      m.setActivationCheckpointing(false);
      assert.equal(lossAndGrads(m, ids).loss, plain.loss);
    } finally {
      m.free();
    }
  });

  test(`the loss over logits in blocks of rows (${name}): the same loss, gradients and validation loss as whole logits`, () => {
    const V = 48;
    const m = model({ ...kind, vocab: V });
    try {
      const ids = randomTokens(B * T, V, 7);
      const whole = lossAndGrads(m, ids);
      const targets = new Int32Array(B * T).map((_, i) => (i % 5 === 4 ? -100 : ids[(i + 1) % ids.length]!));
      const evalWhole = m.evaluateLoss(ids, targets, B, T);
      for (const rows of [1, 5, 7]) {
        m.logitsChunkBytes = rows * V * 4; // equal blocks of at most `rows` rows, the last one shorter
        const blocks = lossAndGrads(m, ids);
        assert.ok(Math.abs(blocks.loss - whole.loss) <= 1e-6 * Math.abs(whole.loss), `loss ${blocks.loss} vs ${whole.loss} (${rows} rows)`);
        for (const [n, g] of whole.grads) {
          const d = maxAbsDiff(blocks.grads.get(n)!, g);
          assert.ok(d <= 1e-5 * Math.max(1e-3, maxAbs(g)), `${n}: differs by ${d} (${rows} rows)`);
        }
        const ev = m.evaluateLoss(ids, targets, B, T);
        assert.equal(ev.count, evalWhole.count);
        assert.ok(Math.abs(ev.loss - evalWhole.loss) <= 1e-6 * evalWhole.loss, `validation ${ev.loss} vs ${evalWhole.loss}`);
        // the blocks went back through lm_head already: a dlogits of the whole logits has nothing to pair with
        m.loss(ids, B, T);
        assert.throws(() => m.backward(new Float32Array(B * T * V)), /chunked its logits/);
        // with checkpointing too
        m.setActivationCheckpointing(true);
        const both = lossAndGrads(m, ids);
        assert.equal(both.loss, blocks.loss);
        for (const [n, g] of blocks.grads) assert.ok(bytesOf(both.grads.get(n)!).equals(bytesOf(g)), `${n}: checkpointing changes no bit`);
        m.setActivationCheckpointing(false);
      }
    } finally {
      m.free();
    }
  });
}

test('the memory plan counts a training step\'s activations as the arena grows by them (teacher, SUPRA with GQA, qk-norm, the sum normalization)', () => {
  const configs: Record<string, unknown>[] = [
    tinyConfig({ vocab: 64 }),
    tinyConfig({ supra: true, vocab: 64 }),
    { ...tinyConfig({ supra: true, vocab: 64 }), supra: { qk_norm: 'layernorm', decay: 'lightning' } },
    { ...tinyConfig({ supra: true, vocab: 64 }), num_key_value_heads: 4, supra: { qk_norm: 'rms', decay: 'lightning', normalization: 'sum' } },
  ];
  // the first step of a process sets up buffers of its own (kernel tables, thread blocks): not a model's
  const warm = initRandom(parseConfig(configs[1]!), 1);
  warm.loss(randomTokens(2 * 100, 64, 3), 2, 100);
  warm.backward();
  warm.free();
  for (const raw of configs) {
    for (const [b, t, chunkRows] of [[2, 100, 0], [1, 64, 0], [3, 70, 50]] as const) {
      const m = initRandom(parseConfig(raw), 1);
      try {
        if (chunkRows) m.logitsChunkBytes = chunkRows * 64 * 4;
        m.enableGrads();
        const before = arenaStats().liveBytes;
        m.loss(randomTokens(b * t, 64, 3), b, t);
        m.backward();
        const grown = arenaStats().liveBytes - before;
        const heap = m.trainingActivationHeapBytes(b, t);
        const planned = m.trainingActivationBytes(b, t) - heap; // the arena's part
        const what = `${JSON.stringify(raw.supra ?? 'teacher')} B ${b} T ${t}: planned ${planned} in the arena, the arena grew by ${grown}`;
        assert.ok(planned >= grown * 0.99 && planned <= grown * 1.05, what);
        // the MLP keeps gate and up outside the arena where the backend's products and swiglu read them there
        const be = getBackend();
        const mlpKept = m.layers.reduce((sum, l) => sum + l.mlp.activationBytes(b * t).kept, 0);
        assert.equal(heap, be.heapWeights && be.kernels ? mlpKept : 0, `${what}; outside it ${heap}`);
        m.setActivationCheckpointing(true);
        const kept = m.layers.map((l) => l.activationBytes(b, t).kept);
        assert.equal(m.trainingActivationBytes(b, t), planned + heap - kept.reduce((x, y) => x + y) + Math.max(...kept), 'one layer kept at a time');
        assert.equal(m.trainingActivationHeapBytes(b, t), 0, 'checkpointed activations are in the arena, one layer at a time');
        m.setActivationCheckpointing(false);
        assert.equal(m.trainingActivationHeapBytes(b, t), heap, 'and back outside it without checkpointing');
      } finally {
        m.free();
      }
    }
  }
});

test('train() prints its memory plan and refuses, before allocating anything, a run that cannot fit, saying what would', async () => {
  const root = tempRoot('supra-train-memory-');
  try {
    const data = () => new MemoryBatches(repeatedText(4000, 23, 32), repeatedText(600, 23, 32), 16, 0);
    const before = arenaStats().liveBytes;
    await assert.rejects(
      train({ init: tinyConfig(), data: data(), out: join(root, 'huge'), steps: 1, batchSize: 4_000_000, quiet: true }),
      (e: Error) =>
        /supra: train: init: the run needs [\d.]+ GiB more in the 4 GiB wasm arena, which has [\d.]+ GiB free\./.test(e.message) &&
        /memory: weights [\d.]+ MiB( \([^)]*\))?, gradients [\d.]+ MiB( \([^)]*\))?, AdamW moments [\d.]+ MiB( \([^)]*\))?, activations [\d.]+ GiB( \([\d.]+ GiB outside the arena\))?; peak/.test(e.message) &&
        /To fit, try: --checkpoint-activations \(activations [\d.]+ GiB instead of [\d.]+ GiB\); a smaller --batch-size/.test(e.message),
    );
    assert.ok(arenaStats().liveBytes - before < 2 ** 20, 'nothing of the run is left allocated');
    assert.ok(!existsSync(join(root, 'huge', 'latest')));

    // a run that fits: the header says the plan; without --eval-at-start nothing is evaluated before step 1
    const lines: string[] = [];
    const progressStream = Object.assign(new Writable({ write: (c, _e, done) => (lines.push(String(c)), done()) }), { isTTY: false });
    const r = await train({ init: tinyConfig(), data: data(), out: join(root, 'small'), steps: 2, batchSize: 2, evalSequences: 2, progressStream, checkpointActivations: true });
    assert.match(lines.join(''), /\n {2}memory: weights [\d.]+ MiB( \([^)]*\))?, gradients [\d.]+ MiB( \([^)]*\))?, AdamW moments [\d.]+ MiB( \([^)]*\))?, activations [\d.]+ MiB( \([\d.]+ [KM]iB outside the arena\))?; peak ≈ [\d.]+ MiB \(activations checkpointed\)\n/);
    assert.equal(r.initialValLoss, null);
    assert.equal(typeof r.finalValLoss, 'number');
    assert.deepEqual(MetricsLog.read(join(root, 'small', 'metrics.jsonl')).filter((l) => l.val_loss !== undefined).map((l) => l.step), [2]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('the default validation sequences shrink with the model: 64 for the embedded teacher, a few for a 0.5B one', () => {
  assert.equal(defaultEvalSequences(7.3e6, 256), 64);
  assert.equal(defaultEvalSequences(135e6, 512), 7);
  assert.equal(defaultEvalSequences(494e6, 512), 4);
  assert.equal(defaultEvalSequences(7.2e9, 2048), 4);
});
