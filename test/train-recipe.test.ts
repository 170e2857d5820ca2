// The trainer's recipe: lr schedule, gradient clipping, z-loss, accumulation, --train-only kernels,
// non-finite steps, and a short run whose loss must fall.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crossEntropy, scale, sumSquares } from '../src/core/ops.js';
import { parseConfig } from '../src/io/config.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { loadDecoder } from '../src/models/auto.js';
import { readLatest } from '../src/train/checkpoint.js';
import { MetricsLog, ProgressLine, progressText } from '../src/train/metrics.js';
import { lrAt, scaledSchedule } from '../src/train/schedule.js';
import { scheduleOf } from '../src/train/settings.js';
import { initRandom } from '../src/models/build.js';
import { AdamW } from '../src/train/adamw.js';
import { evaluate, splitRows } from '../src/train/evaluate.js';
import { isKernelParam } from '../src/train/param-groups.js';
import { train, TrainingDiverged } from '../src/train/trainer.js';
import { gqaDir } from './helpers/fixture.js';
import { MemoryBatches, randomTokens, repeatedText, tinyConfig } from './helpers/train-data.js';

const tmp = (tag: string) => mkdtempSync(join(tmpdir(), `supra-train-${tag}-`));
const close = (a: number, b: number, rel: number) => Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b), 1e-30);

test('lr schedule: linear warm-up, cosine, floor (hand-computed values)', () => {
  const s = { peak: 1e-3, floor: 1e-4, warmupSteps: 4, totalSteps: 12 };
  // warm-up: peak · (step + 1) / warmup
  assert.equal(lrAt(0, s), 2.5e-4);
  assert.equal(lrAt(1, s), 5e-4);
  assert.equal(lrAt(3, s), 1e-3);
  // cosine over steps 4 … 12: floor + ½(1 + cos(π·(step − 4)/8))·(peak − floor)
  assert.ok(close(lrAt(4, s), 1e-3, 1e-15));
  assert.ok(close(lrAt(6, s), 1e-4 + 0.5 * (1 + Math.SQRT1_2) * 9e-4, 1e-15)); // cos(π/4) = √½
  assert.ok(close(lrAt(8, s), 5.5e-4, 1e-15)); // halfway: cos(π/2) = 0
  assert.ok(close(lrAt(10, s), 1e-4 + 0.5 * (1 - Math.SQRT1_2) * 9e-4, 1e-12));
  assert.ok(close(lrAt(11, s), 1e-4 + 0.5 * (1 + Math.cos((7 * Math.PI) / 8)) * 9e-4, 1e-12));
  assert.equal(lrAt(12, s), 1e-4); // floor, and held after
  assert.equal(lrAt(500, s), 1e-4);
  // no warm-up starts at the peak; a run that is all warm-up holds the peak after it
  assert.equal(lrAt(0, { ...s, warmupSteps: 0 }), 1e-3);
  assert.equal(lrAt(20, { ...s, warmupSteps: 12 }), 1e-3);
  // a kernel group with its own peak gets the floor in proportion
  const k = scaledSchedule(s, 1e-2);
  assert.ok(close(k.floor, 1e-3, 1e-15));
  assert.ok(close(lrAt(8, k), 5.5e-3, 1e-15));
  assert.throws(() => lrAt(-1, s), /step must be an integer/);
});

test('z-loss: the kernel matches a hand computation on a tiny case, and the model loss adds z·mean(lse²)', () => {
  // two rows, vocab 3, both targets used
  const logits = Float32Array.of(1, 2, 0.5, -1, 0, 3);
  const targets = Int32Array.of(1, 2);
  const z = 0.1;
  const dl = new Float32Array(6);
  const { loss } = crossEntropy(logits, targets, 2, 3, dl, z);
  let want = 0;
  const wantGrad: number[] = [];
  for (let r = 0; r < 2; r++) {
    const row = Array.from(logits.subarray(r * 3, r * 3 + 3));
    const lse = Math.log(row.reduce((s, x) => s + Math.exp(x), 0));
    want += (lse - row[targets[r]!]! + z * lse * lse) / 2;
    // d/dx_i [lse − x_t + z·lse²] = softmax_i·(1 + 2z·lse) − [i = t], averaged over the 2 rows
    for (let i = 0; i < 3; i++) wantGrad.push((Math.exp(row[i]! - lse) * (1 + 2 * z * lse) - (i === targets[r] ? 1 : 0)) / 2);
  }
  assert.ok(close(loss, want, 1e-6), `loss ${loss} vs ${want}`);
  for (let i = 0; i < 6; i++) assert.ok(Math.abs(dl[i]! - wantGrad[i]!) < 1e-6, `dlogits[${i}] ${dl[i]} vs ${wantGrad[i]}`);

  // the model: loss(z) − loss(0) = z · mean over positions of lse², from its own logits
  const model = initRandom(parseConfig(tinyConfig()), 3);
  const B = 2, T = 8, V = 32;
  const ids = randomTokens(B * T, V, 5);
  const plain = model.loss(ids, B, T);
  const withZ = model.loss(ids, B, T, { zLoss: 1e-2 });
  const out = model.forward(ids, B, T);
  let lse2 = 0, n = 0;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T - 1; t++) {
      const row = out.subarray((b * T + t) * V, (b * T + t + 1) * V);
      const lse = Math.log(row.reduce((s, x) => s + Math.exp(x), 0));
      lse2 += lse * lse;
      n++;
    }
  }
  assert.ok(close(withZ - plain, (1e-2 * lse2) / n, 1e-4), `z-loss term ${withZ - plain} vs ${(1e-2 * lse2) / n}`);
  model.free();
});

function tinyData(seqLen = 16, seed = 0, text?: Int32Array) {
  const train = text ?? repeatedText(4000, 23, 32);
  return new MemoryBatches(train, repeatedText(600, 23, 32), seqLen, seed);
}

test('clipping: gradients are averaged over accumulation and scaled by clip / (‖g‖ + 1e-6), ‖g‖ the global norm', async () => {
  const out = tmp('clip');
  try {
    let hand = 0;
    const snapshot = new Map<string, Float64Array>();
    let checked = 0;
    const result = await train({
      init: tinyConfig(), data: tinyData(), out, steps: 2, batchSize: 2, gradAccum: 2, gradClip: 0.05, lr: 1e-3, quiet: true, evalSequences: 0,
      hooks: {
        afterBackward: (_step, model) => {
          // gradients summed over 2 micro-batches: the mean gradient is half of them
          let sq = 0;
          for (const p of model.params()) {
            const g = Float64Array.from(p.grad!, (x) => x / 2);
            snapshot.set(p.name, g);
            for (const x of g) sq += x * x;
          }
          hand = Math.sqrt(sq);
        },
        beforeUpdate: (_step, model, info) => {
          assert.ok(close(info.gradNorm, hand, 1e-5), `grad norm ${info.gradNorm} vs hand ${hand}`);
          assert.ok(hand > 0.05, 'the test needs a norm above the clip');
          assert.ok(close(info.clipCoef, 0.05 / (hand + 1e-6), 1e-5));
          let sq = 0;
          for (const p of model.params()) {
            const want = snapshot.get(p.name)!;
            for (let i = 0; i < want.length; i++) {
              const w = want[i]! * info.clipCoef;
              assert.ok(Math.abs(p.grad![i]! - w) <= 1e-6 * Math.abs(w) + 1e-12, `${p.name}[${i}]: ${p.grad![i]} vs ${w}`);
              sq += p.grad![i]! ** 2;
            }
          }
          assert.ok(close(Math.sqrt(sq), 0.05, 1e-4), `clipped norm ${Math.sqrt(sq)}`);
          checked++;
        },
      },
    });
    assert.equal(checked, 2);
    const log = MetricsLog.read(join(out, 'metrics.jsonl'));
    assert.equal(log.length, 2);
    assert.ok(close(log[1]!.grad_norm!, hand, 1e-5));
    assert.equal(result.status, 'completed');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('a short run on tiny repeated text: the loss falls clearly (teacher and SUPRA), final/ loads', async () => {
  for (const supra of [false, true]) {
    const out = tmp(supra ? 'fall-supra' : 'fall-teacher');
    try {
      const r = await train({ init: tinyConfig({ supra }), data: tinyData(), out, steps: 40, batchSize: 4, lr: 1e-2, warmupSteps: 4, quiet: true, evalSequences: 8, evalAtStart: true, seed: 1 });
      const first = r.losses[0]!;
      const last = r.losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
      console.log(`# ${supra ? 'SUPRA' : 'teacher'}: loss ${first.toFixed(3)} → ${last.toFixed(3)}; val ${r.initialValLoss!.toFixed(3)} → ${r.finalValLoss!.toFixed(3)}`);
      assert.ok(first > 3, `a random model starts near ln 32 = 3.47, got ${first}`);
      assert.ok(last < 0.5 * first, `loss must fall clearly: ${first} → ${last}`);
      assert.ok(r.finalValLoss! < 0.5 * r.initialValLoss!);
      assert.equal(r.step, 40);
      assert.equal(r.tokens, 40 * 4 * 16);
      // final/ is a plain model folder with the trained weights
      assert.equal(r.finalDir, join(out, 'final'));
      const { model } = loadDecoder(r.finalDir!, { strict: true });
      const ev = evaluate(model, tinyData(), 8, 4)!;
      assert.ok(close(ev.loss, r.finalValLoss!, 1e-6), `final/ val ${ev.loss} vs ${r.finalValLoss}`);
      assert.equal(model.config.architecture, supra ? 'SupraForCausalLM' : 'LlamaForCausalLM');
      model.free();
      // the last checkpoint and latest
      const latest = readLatest(out)!;
      assert.equal(latest.name, 'checkpoint-40');
      assert.ok(existsSync(join(latest.dir, 'optimizer.safetensors')));
      const log = MetricsLog.read(join(out, 'metrics.jsonl'));
      assert.deepEqual(Object.keys(log[0]!).sort(), ['step', 'tokens', 'val_loss', 'val_ppl']);
      assert.deepEqual(Object.keys(log[1]!).sort(), ['grad_norm', 'loss', 'lr', 'step', 'tokens', 'tokens_per_s']);
      assert.ok(close(log[40]!.val_ppl!, Math.exp(r.finalValLoss!), 1e-9));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }
});

test('gradient accumulation: 2 micro-batches of 2 give the step of one batch of 4', async () => {
  const runs: number[][] = [];
  const grads: Float32Array[] = [];
  for (const [batchSize, gradAccum] of [[4, 1], [2, 2]] as const) {
    const out = tmp('accum');
    try {
      const r = await train({
        init: tinyConfig(), data: tinyData(), out, steps: 1, batchSize, gradAccum, lr: 1e-3, quiet: true, evalSequences: 0, gradClip: 0,
        hooks: { beforeUpdate: (_s, model) => void grads.push(Float32Array.from(model.param('model.layers.0.self_attn.q_proj.weight').grad!)) },
      });
      runs.push(r.losses);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }
  assert.ok(close(runs[0]![0]!, runs[1]![0]!, 1e-5), `loss ${runs[0]} vs ${runs[1]}`);
  let worst = 0, max = 0;
  for (let i = 0; i < grads[0]!.length; i++) {
    worst = Math.max(worst, Math.abs(grads[0]![i]! - grads[1]![i]!));
    max = Math.max(max, Math.abs(grads[0]![i]!));
  }
  assert.ok(worst <= 1e-4 * max, `gradients differ by ${worst} (max ${max})`);
});

test('--train-only kernels: every non-kernel parameter stays bit-identical, the kernels move', async () => {
  const out = tmp('kernels');
  try {
    const config = parseConfig(tinyConfig({ supra: true, qkNorm: 'rms' }));
    const model = initRandom(config, 4);
    const before = new Map(model.params().map((p) => [p.name, Float32Array.from(p.data)]));
    const r = await train({ model, data: tinyData(), out, steps: 5, batchSize: 2, lr: 1e-2, kernelLr: 2e-2, trainOnly: 'kernels', quiet: true, evalSequences: 0 });
    assert.equal(r.status, 'completed');
    let kernels = 0;
    for (const p of model.params()) {
      const old = before.get(p.name)!;
      if (isKernelParam(p.name)) {
        kernels++;
        assert.notDeepEqual(Array.from(p.data), Array.from(old), `${p.name} should have trained`);
      } else {
        assert.ok(Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength).equals(Buffer.from(old.buffer)), `${p.name} changed`);
      }
    }
    assert.equal(kernels, 2 * 6, 'per layer: kernel_q and kernel_k weight and bias, q_norm, k_norm');
    model.free();
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('kernelsFirstSteps: a two-step schedule trains the kernels alone first, then everything; teacher moments start late', async () => {
  const out = tmp('two-step');
  try {
    const config = parseConfig(tinyConfig({ supra: true }));
    const model = initRandom(config, 5);
    const before = new Map(model.params().map((p) => [p.name, Float32Array.from(p.data)]));
    const snapshots: Map<string, Float32Array>[] = [];
    const norms: number[] = [];
    const r = await train({
      model, data: tinyData(), out, steps: 5, batchSize: 2, lr: 1e-2, kernelsFirstSteps: 3, quiet: true, evalSequences: 0, saveEvery: 0,
      hooks: {
        beforeUpdate: (_step, m, info) => {
          norms.push(info.gradNorm);
          snapshots.push(new Map(m.params().map((p) => [p.name, Float32Array.from(p.data)])));
        },
      },
    });
    assert.equal(r.status, 'completed');
    assert.equal(r.settings.kernelsFirstSteps, 3);
    const same = (a: Float32Array, b: Float32Array) => a.every((v, i) => Object.is(v, b[i]));
    // before step 3's update (after steps 0-2) only the kernels have moved
    for (const [name, old] of before) {
      const at3 = snapshots[3]!.get(name)!;
      if (isKernelParam(name)) assert.ok(!same(at3, old), `${name} should have trained in the first step`);
      else assert.ok(same(at3, old), `${name} changed during the kernels-only steps`);
    }
    // after the run everything has moved
    for (const p of model.params()) assert.ok(!same(p.data, before.get(p.name)!), `${p.name} never trained`);
    assert.ok(norms.every((n) => Number.isFinite(n) && n > 0));
    // the optimizer state saved with the run: teacher weights took 2 steps, the kernels 5
    const moments = readSafetensors(join(r.checkpoint!, 'optimizer.safetensors'));
    assert.equal(moments.get('step.model.layers.0.mlp.up_proj.weight')!.data[0], 2);
    assert.equal(moments.get('step.model.layers.0.self_attn.kernel_q.weight')!.data[0], 5);
    const bad = tmp('two-step-bad');
    await assert.rejects(train({ model, data: tinyData(), out: bad, steps: 3, kernelsFirstSteps: 3, quiet: true }), /leaves no step/);
    rmSync(bad, { recursive: true, force: true });
    model.free();
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('the trainer\'s fused step (scaling and zeroing inside AdamW\'s pass) gives the bits of the plain one: zero, backward, norm, scale, AdamW', async () => {
  // kernels first: the base gradients are computed but not applied for 2 steps, so they must still be zeroed
  const config = parseConfig(tinyConfig({ supra: true }));
  const fused = initRandom(config, 4);
  const plain = initRandom(config, 4);
  const out = tmp('fused');
  try {
    const r = await train({
      model: fused, data: tinyData(), out, steps: 4, batchSize: 2, gradAccum: 2, gradClip: 0.05, lr: 1e-2, kernelLr: 3e-2,
      kernelsFirstSteps: 2, warmupSteps: 1, quiet: true, evalSequences: 0, saveEvery: 0,
    });
    const s = r.settings;
    // the plain step, written out (param-groups.ts: base before kernels, in model order)
    const kernels = plain.params().filter((p) => isKernelParam(p.name));
    const base = plain.params().filter((p) => !isKernelParam(p.name));
    const opt = new AdamW([{ name: 'base', params: base, lr: s.lr }, { name: 'kernels', params: kernels, lr: s.kernelLr }], { betas: s.betas, eps: s.eps, weightDecay: s.weightDecay });
    const schedule = scheduleOf(s), kernelSchedule = scaledSchedule(schedule, s.kernelLr);
    const data = tinyData();
    const inputs = new Int32Array(2 * s.seqLen), targets = new Int32Array(2 * s.seqLen);
    plain.enableGrads();
    const losses: number[] = [];
    for (let step = 0; step < 4; step++) {
      plain.zeroGrad();
      let lossSum = 0;
      for (let micro = 0; micro < 2; micro++) {
        splitRows(data.nextTrain(2), 0, 2, s.seqLen, inputs, targets);
        lossSum += plain.loss(inputs, 2, s.seqLen, { zLoss: s.zLoss, targets });
        plain.backward();
      }
      losses.push(lossSum / 2);
      const updated = step < 2 ? kernels : [...base, ...kernels];
      let sumSq = 0;
      for (const p of updated) sumSq += sumSquares(p.grad!);
      const norm = Math.sqrt(sumSq) / 2;
      const factor = Math.min(1, 0.05 / (norm + 1e-6)) / 2;
      for (const p of updated) scale(p.grad!, factor);
      opt.groups[0]!.lr = lrAt(step, schedule);
      opt.groups[1]!.lr = lrAt(step, kernelSchedule);
      opt.step(step < 2 ? (g) => g.name === 'kernels' : undefined);
    }
    assert.deepEqual(r.losses, losses);
    const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    for (const p of plain.params()) assert.ok(bytes(fused.param(p.name).data).equals(bytes(p.data)), `${p.name}: the same bits`);
    opt.free();
  } finally {
    fused.free();
    plain.free();
    rmSync(out, { recursive: true, force: true });
  }
});

test('a non-finite gradient skips the step (no update) and is counted; --max-skips in a row stops the run', async () => {
  const out = tmp('nan');
  try {
    let atSkip: Float32Array | null = null;
    let afterSkip: Float32Array | null = null;
    const name = 'model.layers.1.mlp.down_proj.weight';
    const r = await train({
      init: tinyConfig(), data: tinyData(), out, steps: 6, batchSize: 2, lr: 1e-2, quiet: true, evalSequences: 0,
      hooks: {
        afterBackward: (step, model) => {
          const p = model.param(name);
          if (step === 2) {
            p.grad![7] = NaN;
            atSkip = Float32Array.from(p.data);
          }
          if (step === 3) afterSkip = Float32Array.from(p.data);
        },
      },
    });
    assert.equal(r.skippedSteps, 1);
    assert.equal(r.step, 6);
    assert.ok(Number.isFinite(r.losses[2]!), 'the loss was fine, the gradient was not');
    assert.deepEqual(Array.from(afterSkip!), Array.from(atSkip!), 'the skipped step must not update');
    const log = MetricsLog.read(join(out, 'metrics.jsonl'));
    assert.equal(log[2]!.skipped, true);
    assert.equal(log[2]!.grad_norm, 'NaN');
    assert.equal(log.filter((l) => l.skipped).length, 1);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }

  const out2 = tmp('nan-stop');
  try {
    await assert.rejects(
      train({
        init: tinyConfig(), data: tinyData(), out: out2, steps: 20, batchSize: 2, lr: 1e-2, quiet: true, evalSequences: 0, saveEvery: 2, maxSkips: 3,
        hooks: { afterBackward: (step, model) => void (step >= 5 && model.param('model.norm.weight').grad!.fill(Infinity)) },
      }),
      (e: unknown) => {
        assert.ok(e instanceof TrainingDiverged);
        assert.match(e.message, /3 consecutive steps with a non-finite loss or gradient \(up to step 8\)/);
        assert.match(e.message, /checkpoint-4/);
        return true;
      },
    );
    // steps 6, 7, 8 were skipped: checkpoint-6 (due at a skipped step) was not written; latest is the last good one
    const latest = readLatest(out2)!;
    assert.equal(latest.name, 'checkpoint-4');
    assert.equal(latest.state.metrics.consecutiveSkips, 0);
    assert.ok(!existsSync(join(out2, 'checkpoint-6')));
    assert.ok(!existsSync(join(out2, 'final')));
  } finally {
    rmSync(out2, { recursive: true, force: true });
  }
});

test('bad settings are refused with clear messages', async () => {
  const out = tmp('bad');
  try {
    await assert.rejects(train({ init: tinyConfig(), data: tinyData(), out, tokens: 10, batchSize: 2, quiet: true }), /budget of 10 tokens is less than one step \(batch 2 · seq 16 · accum 1 = 32 tokens\)/);
    await assert.rejects(train({ init: tinyConfig(), data: tinyData(), out, steps: 2, trainOnly: 'kernels', quiet: true }), /needs a SUPRA model/);
    await assert.rejects(train({ init: tinyConfig(), data: tinyData(), out, steps: 2, seqLen: 8, quiet: true }), /seqLen 8 given, but the data is packed in sequences of 16/);
    await assert.rejects(train({ init: tinyConfig(), data: tinyData(), out, steps: 2, lr: 1e-4, minLr: 1e-3, quiet: true }), /minLr 0.001 is above lr 0.0001/);
    await assert.rejects(train({ data: tinyData(), out, steps: 2, quiet: true }), /exactly one of model/);
    await assert.rejects(train({ init: tinyConfig(), data: tinyData(), out, steps: 2, quiet: true, resume: true }), /has no checkpoint to resume/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('random init: N(0, 0.02) weights, unit norms, zero biases, SUPRA kernels as linearize; seeded', () => {
  const config = parseConfig({ ...tinyConfig({ supra: true }), attention_bias: true, vocab_size: 512, hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 4 });
  const a = initRandom(config, 9);
  const b = initRandom(config, 9);
  const emb = a.param('model.embed_tokens.weight').data;
  let sum = 0, sq = 0;
  for (const x of emb) {
    sum += x;
    sq += x * x;
  }
  const mean = sum / emb.length, std = Math.sqrt(sq / emb.length - mean * mean);
  assert.ok(Math.abs(mean) < 1e-3 && Math.abs(std - 0.02) < 1e-3, `embedding mean ${mean}, std ${std}`);
  assert.ok(a.param('model.norm.weight').data.every((x) => x === 1));
  assert.ok(a.param('model.layers.0.input_layernorm.weight').data.every((x) => x === 1));
  assert.ok(a.param('model.layers.0.self_attn.q_proj.bias').data.every((x) => x === 0));
  const kq = a.param('model.layers.0.self_attn.kernel_q.weight').data;
  assert.ok(kq.every((x) => Math.abs(x) <= 1 / Math.sqrt(64)), 'kernels are U(±1/√fan_in)');
  for (const p of a.params()) assert.deepEqual(p.data, b.param(p.name).data, `${p.name}: same seed, same weights`);
  assert.notDeepEqual(Array.from(initRandom(config, 10).param('lm_head.weight').data.subarray(0, 8)), Array.from(a.param('lm_head.weight').data.subarray(0, 8)));
  a.free();
  b.free();
});

test('weight decay: on every parameter by default (open_lm), on matrices only with decayNormsAndBiases false', async () => {
  for (const decayNormsAndBiases of [true, false]) {
    const out = tmp('wd');
    try {
      const model = initRandom(parseConfig({ ...tinyConfig(), attention_bias: true }), 2);
      for (const p of model.params()) if (p.shape.length === 1) p.data.fill(0.5); // norms and biases non-zero
      const before = new Map(model.params().map((p) => [p.name, Float32Array.from(p.data)]));
      // zero gradients: AdamW's update is then 0 and only the decay p ← p − lr·wd·p acts
      await train({
        model, data: tinyData(), out, steps: 1, batchSize: 2, lr: 0.1, warmupSteps: 0, weightDecay: 0.5, decayNormsAndBiases, quiet: true, evalSequences: 0,
        hooks: { beforeUpdate: (_s, m) => m.params().forEach((p) => p.grad!.fill(0)) },
      });
      for (const p of model.params()) {
        const decayed = decayNormsAndBiases || p.shape.length >= 2;
        const old = before.get(p.name)!;
        for (let i = 0; i < old.length; i += 97) {
          const want = decayed ? Math.fround(old[i]! - 0.1 * 0.5 * old[i]!) : old[i]!;
          assert.ok(Math.abs(p.data[i]! - want) <= 1e-7, `${p.name}[${i}] (decayNormsAndBiases ${decayNormsAndBiases}): ${p.data[i]} vs ${want}`);
        }
      }
      model.free();
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }
});

test('--linearize: a teacher folder becomes a SUPRA model; with trainOnly kernels the teacher weights are kept exactly', async () => {
  const out = tmp('lin');
  try {
    const r = await train({ model: join(gqaDir, 'teacher'), linearize: true, seed: 1000, data: tinyData(), out, steps: 3, batchSize: 2, lr: 1e-3, trainOnly: 'kernels', quiet: true, evalSequences: 0 });
    assert.equal(r.status, 'completed');
    const saved = readSafetensors(join(out, 'final', 'model.safetensors'));
    const teacher = readSafetensors(join(gqaDir, 'teacher', 'model.safetensors'));
    const kernels = readSafetensors(join(gqaDir, 'supra_kernels.safetensors'));
    for (const [name, t] of teacher) assert.deepEqual(saved.get(name)!.data, t.data, name);
    for (const [name, t] of kernels) assert.notDeepEqual(saved.get(name)!.data, t.data, `${name} should have trained from the seed-1000 kernels`);
    const config = JSON.parse(readFileSync(join(out, 'final', 'config.json'), 'utf8'));
    assert.deepEqual(config.architectures, ['SupraForCausalLM']);
    assert.equal(r.settings.modelSource, `linearize:${join(gqaDir, 'teacher')}`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('progress: one line redrawn with \\r on a terminal, plain lines otherwise', () => {
  const sink = (isTTY: boolean) => {
    const chunks: string[] = [];
    return { chunks, stream: Object.assign(new PassThrough(), { isTTY, columns: 200, write: (c: string) => (chunks.push(c), true) }) };
  };
  const info = { step: 5, totalSteps: 100, loss: 2.5, lr: 3e-4, tokensPerSecond: 12345, etaSeconds: 75 };
  assert.equal(progressText(info), 'step   5/100 | loss 2.5000 | lr 3.00e-4 | 12.3k tok/s | ETA 1m15s');
  const tty = sink(true);
  const p = new ProgressLine(tty.stream);
  p.update(info);
  p.update({ ...info, step: 6 });
  p.message('saved');
  assert.ok(tty.chunks[0]!.startsWith('\rstep   5/100') && !tty.chunks[0]!.includes('\n'));
  assert.deepEqual(tty.chunks.slice(2), ['\n', 'saved\n']);
  const pipe = sink(false);
  new ProgressLine(pipe.stream).update(info);
  assert.deepEqual(pipe.chunks, ['step   5/100 | loss 2.5000 | lr 3.00e-4 | 12.3k tok/s | ETA 1m15s\n']);
});

test('the run header writes numbers for people and says the epochs; a run that repeats its data > 4 times is warned', async () => {
  const out = tmp('header');
  const run = async (steps: number, extra: Record<string, unknown> = {}) => {
    const chunks: string[] = [];
    const stream = Object.assign(new PassThrough(), { isTTY: false, write: (c: string) => (chunks.push(c), true) });
    rmSync(out, { recursive: true, force: true });
    // 400 training tokens; a step reads 2 · 16 = 32
    await train({ init: tinyConfig(), data: new MemoryBatches(repeatedText(400, 23, 32), repeatedText(600, 23, 32), 16, 0), out, steps, batchSize: 2, evalSequences: 0, progressStream: stream, ...extra });
    return chunks.join('');
  };
  try {
    const few = await run(2, { kernelLr: 1e-3 });
    // 3e-4 / 10 is 0.000029999999999999997 in floating point
    assert.match(few, /lr 3e-4 → 3e-5 \(warm-up 0, cosine\); AdamW β \(0\.9, 0\.95\), eps 1e-8, wd 0\.1; clip 1; z-loss 1e-4; train all/);
    assert.match(few, /2 steps × 32 tokens \(batch 2 · seq 16 · accum 1\) = 64 tokens; 0\.16 epochs of 400 training tokens/);
    assert.doesNotMatch(few, /warning/);
    assert.doesNotMatch(await run(50), /warning/); // exactly 4 epochs
    const many = await run(63);
    assert.match(many, /warning: 2,016 tokens = 5\.04 epochs of 400 training tokens \(more than 4\): the model sees the same text again and again/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
