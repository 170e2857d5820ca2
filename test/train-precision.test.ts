// --matmul-precision bf16: the training steps' large products at BF16 (float32 sums, parameters and moments),
// where the backend has them (native: on AMX, vdpbf16ps, or rounded operands on any CPU); elsewhere the run
// refuses before it trains.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { hasMatmulPrecision } from '../src/core/ops.js';
import { getBackend } from '../src/core/select.js';
import { readLatest } from '../src/train/checkpoint.js';
import { MetricsLog } from '../src/train/metrics.js';
import { train, type TrainOptions } from '../src/train/trainer.js';
import { MemoryBatches, repeatedText, tinyConfig } from './helpers/train-data.js';
import { tempRoot } from './helpers/tmp.js';

// 8 x 64 rows against 32-wide layers: products big enough for the BF16 path (native/addon.cc Bf16ProductFits)
const SEQ = 64;
const options = (out: string, extra: Partial<TrainOptions> = {}): TrainOptions => ({
  init: tinyConfig({ supra: true }), data: new MemoryBatches(repeatedText(20000, 23, 32), repeatedText(2000, 23, 32), SEQ, 0),
  out, steps: 4, batchSize: 8, evalSequences: 4, quiet: true, saveEvery: 2, ...extra,
});

test('train with BF16 products: the loss tracks float32\'s without equalling it, the setting is saved and a resume keeps it; refused where the backend has none', async () => {
  const root = tempRoot('supra-train-precision-');
  try {
    if (!hasMatmulPrecision('bf16')) {
      await assert.rejects(
        train(options(join(root, 'bf16'), { matmulPrecision: 'bf16' })),
        new RegExp(`supra: train: --matmul-precision bf16 needs the native backend \\(this run is on ${getBackend().name}`),
      );
      assert.ok(!existsSync(join(root, 'bf16', 'latest')), 'nothing trained');
      return;
    }
    const f32 = await train(options(join(root, 'f32')));
    const bf16 = await train(options(join(root, 'bf16'), { matmulPrecision: 'bf16', stopAt: 2 }));
    assert.equal(bf16.status, 'stopped');
    await assert.rejects(train(options(join(root, 'bf16'), { matmulPrecision: 'f32', resume: true })), /matmulPrecision is "f32", the checkpoint's run used "bf16"/);
    const resumed = await train(options(join(root, 'bf16'), { resume: true }));
    assert.equal(resumed.status, 'completed');
    assert.equal(readLatest(join(root, 'bf16'))!.state.settings.matmulPrecision, 'bf16');
    const losses = (dir: string) => MetricsLog.read(join(root, dir, 'metrics.jsonl')).map((l) => l.loss);
    const a = losses('f32'), b = losses('bf16');
    assert.equal(b.length, a.length);
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 0.02 * a[i]!, `step ${i + 1}: ${b[i]} against float32's ${a[i]}`);
    assert.ok(a.some((x, i) => x !== b[i]), 'the BF16 run rounds its products (losses differ from float32\'s)');
    // validation runs at float32: the BF16 run's final model scored like any other
    assert.equal(typeof resumed.finalValLoss, 'number');
    assert.ok(Math.abs(resumed.finalValLoss! - f32.finalValLoss!) < 0.02 * f32.finalValLoss!);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
