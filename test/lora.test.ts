// LoRA adapters and attention transfer, on tiny shapes: the adapter's forward and gradients (A, B, dx, a
// trained bias) against float64 central differences; frozen weights (no gradient buffers, dx only, also
// through BF16); LoRA and attention-transfer gradients through a whole model by central differences of its
// float32 loss; merging equals the unmerged model's logits; the transfer loss is the mean over layers of
// the MSE between each SUPRA mixer and the teacher's softmax mixer on the teacher's own hidden states.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocF32 } from '../src/core/memory.js';
import * as ops from '../src/core/ops.js';
import { WEIGHT_TYPES } from '../src/core/weights.js';
import { parseConfig } from '../src/io/config.js';
import { Linear } from '../src/layers/linear.js';
import { LoraAdapter } from '../src/layers/lora.js';
import { ParamStore } from '../src/layers/params.js';
import type { Param } from '../src/layers/types.js';
import { Workspace } from '../src/layers/workspace.js';
import { AttentionTransfer } from '../src/models/attention_transfer.js';
import { initRandom } from '../src/models/build.js';
import type { DecoderLM } from '../src/models/decoder.js';
import { linearize } from '../src/models/linearize.js';
import { LoraAdapters } from '../src/models/lora.js';
import { isKernelParam } from '../src/train/param-groups.js';
import { centralDifferences } from './helpers/finite-diff.js';
import { maxAbs, maxAbsDiff } from './helpers/fixture.js';
import { rng, randomF32 } from './helpers/random.js';
import { tinyConfig } from './helpers/train-data.js';

const gauss = (next: () => number): number => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());

/** y = x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ in float64. */
function loraRef(x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number> | null, a: ArrayLike<number>, bm: ArrayLike<number>, s: number, rows: number, inF: number, outF: number, r: number): Float64Array {
  const y = new Float64Array(rows * outF);
  const t = new Float64Array(r);
  for (let i = 0; i < rows; i++) {
    for (let k = 0; k < r; k++) {
      let acc = 0;
      for (let j = 0; j < inF; j++) acc += x[i * inF + j]! * a[k * inF + j]!;
      t[k] = acc;
    }
    for (let o = 0; o < outF; o++) {
      let acc = b ? b[o]! : 0;
      for (let j = 0; j < inF; j++) acc += x[i * inF + j]! * w[o * inF + j]!;
      for (let k = 0; k < r; k++) acc += s * t[k]! * bm[o * r + k]!;
      y[i * outF + o] = acc;
    }
  }
  return y;
}

test('LoRA Linear: forward, and the gradients of A, B, dx and a trained bias, against float64 central differences; the frozen weight gets no gradient buffer', () => {
  const next = rng(41);
  const rows = 5, inF = 7, outF = 6, rank = 3, alpha = 4;
  const store = new ParamStore();
  const lin = Linear.create(store, 'proj', inF, outF, true);
  for (const p of store.list()) for (let i = 0; i < p.data.length; i++) p.data[i] = gauss(next) / Math.sqrt(inF);
  const loraStore = new ParamStore();
  const adapter = LoraAdapter.declare((n, s) => loraStore.add(n, s), 'proj', inF, outF, rank, alpha, new Workspace());
  assert.deepEqual(loraStore.list().map((p) => p.name), ['proj.lora_A.weight', 'proj.lora_B.weight']);
  for (const p of loraStore.list()) for (let i = 0; i < p.data.length; i++) p.data[i] = gauss(next) / Math.sqrt(p.shape[1]!);
  lin.lora = adapter;
  store.enableGrads([lin.bias!]);
  loraStore.enableGrads();
  assert.equal(lin.weight.grad, null, 'the frozen weight has no gradient buffer');
  assert.equal(lin.weight.frozen, true);
  assert.ok(lin.bias!.grad && adapter.a.grad && adapter.b.grad);

  const x = randomF32(rows * inF, () => gauss(next));
  const R = randomF32(rows * outF, () => gauss(next));
  const y = allocF32(rows * outF);
  lin.forward(x, y, rows);
  const W64 = Float64Array.from(lin.weight.data), b64 = Float64Array.from(lin.bias!.data);
  const A64 = Float64Array.from(adapter.a.data), B64 = Float64Array.from(adapter.b.data), x64 = Float64Array.from(x);
  const s = alpha / rank;
  const want = loraRef(x64, W64, b64, A64, B64, s, rows, inF, outF, rank);
  assert.ok(maxAbsDiff(y, want) <= 1e-5 * maxAbs(want), `forward off by ${maxAbsDiff(y, want)}`);

  const dx = allocF32(rows * inF);
  lin.backward(R, x, dx, rows);
  const loss64 = (): number => {
    const out = loraRef(x64, W64, b64, A64, B64, s, rows, inF, outF, rank);
    let acc = 0;
    for (let i = 0; i < out.length; i++) acc += out[i]! * R[i]!;
    return acc;
  };
  const check = (name: string, got: Float32Array, fd: Float64Array) => {
    const err = maxAbsDiff(got, fd), scale = maxAbs(fd);
    assert.ok(scale > 0, `${name}: zero gradient`);
    assert.ok(err <= 1e-4 * scale, `d${name} off by ${err} (max |g| ${scale})`);
  };
  check('x', dx, centralDifferences(x64, loss64, 1e-6));
  check('A', adapter.a.grad!, centralDifferences(A64, loss64, 1e-6));
  check('B', adapter.b.grad!, centralDifferences(B64, loss64, 1e-6));
  check('bias', lin.bias!.grad!, centralDifferences(b64, loss64, 1e-6));

  // backward in two halves (as the MLP's down projection runs it) gives the same bits
  const grads = [lin.bias!, adapter.a, adapter.b].map((p) => Float32Array.from(p.grad!));
  for (const p of [lin.bias!, adapter.a, adapter.b]) p.grad!.fill(0);
  const dx2 = allocF32(rows * inF).fill(1);
  lin.backwardInput(R, dx2, rows, true); // accumulating onto ones
  lin.backwardParams(R, x, rows);
  for (let i = 0; i < dx.length; i++) assert.ok(Math.abs(dx2[i]! - 1 - dx[i]!) <= 1e-6 * (1 + Math.abs(dx[i]!)), `dx[${i}] accumulated`);
  [lin.bias!, adapter.a, adapter.b].forEach((p, i) => assert.deepEqual(p.grad, grads[i], `${p.name} in two halves`));
  store.free();
  loraStore.free();
});

test('a frozen BF16 weight stays BF16: dx goes through it band by band (as the float32 product), LoRA trains on top; a trained BF16 weight is still refused', () => {
  const next = rng(43);
  const rows = 2, inF = 1024, outF = 1100; // 1.1 M values: two bands
  const store = new ParamStore({ dtype: 'bf16' });
  const lin = Linear.create(store, 'proj', inF, outF, false);
  const values = randomF32(inF * outF, () => gauss(next) / 32, false);
  WEIGHT_TYPES.bf16.fromFloat(values, lin.weight.stored!, 0);
  assert.throws(() => store.enableGrads(), /proj\.weight is stored as bf16: trained weights are float32/);
  store.enableGrads([]);
  assert.equal(lin.weight.stored!.type, 'bf16', 'frozen: kept as stored');
  const widened = allocF32(inF * outF);
  WEIGHT_TYPES.bf16.toFloat(lin.weight.stored!, 0, inF * outF, widened);
  const dy = randomF32(rows * outF, () => gauss(next));
  const x = randomF32(rows * inF, () => gauss(next));
  const dx = allocF32(rows * inF);
  lin.backward(dy, x, dx, rows);
  const want = allocF32(rows * inF);
  ops.linearBackwardInput(dy, widened, want, rows, inF, outF);
  assert.ok(maxAbsDiff(dx, want) <= 1e-5 * maxAbs(want), `dx off by ${maxAbsDiff(dx, want)}`);
  // with a LoRA adapter: its gradients flow, the BF16 base gets none
  const loraStore = new ParamStore();
  lin.lora = LoraAdapter.declare((n, s) => loraStore.add(n, s), 'proj', inF, outF, 2, 2, new Workspace());
  for (const p of loraStore.list()) for (let i = 0; i < p.data.length; i++) p.data[i] = gauss(next) / 8;
  loraStore.enableGrads();
  lin.backward(dy, x, dx, rows);
  assert.ok(maxAbs(lin.lora.a.grad!) > 0 && maxAbs(lin.lora.b.grad!) > 0);
  assert.equal(lin.weight.grad, null);
  store.free();
  loraStore.free();
});

// ---------------------------------------------------------------- whole models

function tinySupra(seed: number, qkNorm: 'none' | 'rms' = 'none'): { teacher: DecoderLM; model: DecoderLM } {
  const teacher = initRandom(parseConfig(tinyConfig({ vocab: 32 })), seed);
  // a tiny random teacher's weights at N(0, 0.02) make every layer nearly the identity; larger ones give the
  // gradients something to measure
  const next = rng(seed + 100);
  for (const p of teacher.params()) if (p.shape.length === 2) for (let i = 0; i < p.data.length; i++) p.data[i] = gauss(next) / Math.sqrt(p.shape[1]!);
  return { teacher, model: linearize(teacher, { seed, qk_norm: qkNorm }) };
}

function ids(n: number, seed: number): Int32Array {
  const next = rng(seed);
  return Int32Array.from({ length: n }, () => Math.floor(next() * 32));
}

/**
 * Gradients of `loss` with respect to the largest and three random entries of every tensor, against
 * Richardson-extrapolated central differences of the float32 loss (as test/layers.test.ts checks layers).
 */
function checkByDifferences(tensors: Param[], analytic: Map<Param, Float32Array>, loss: () => number, h: number, seed: number): string[] {
  const next = rng(seed);
  const report: string[] = [];
  for (const t of tensors) {
    const g = analytic.get(t)!;
    const gmax = maxAbs(g);
    assert.ok(gmax > 0, `${t.name}: gradient is all zero`);
    let top = 0;
    for (let i = 1; i < g.length; i++) if (Math.abs(g[i]!) > Math.abs(g[top]!)) top = i;
    let worst = 0;
    for (const i of [top, ...Array.from({ length: 3 }, () => Math.floor(next() * g.length))]) {
      const w = t.data[i]!;
      const central = (step: number): number => {
        t.data[i] = w + step;
        const up = t.data[i]!;
        const fUp = loss();
        t.data[i] = w - step;
        const down = t.data[i]!;
        const fDown = loss();
        t.data[i] = w;
        return (fUp - fDown) / (up - down);
      };
      const fd = (4 * central(h / 2) - central(h)) / 3;
      const err = Math.abs(fd - g[i]!);
      worst = Math.max(worst, err / gmax);
      assert.ok(err <= 0.01 * Math.abs(g[i]!) + 1e-3 * gmax, `${t.name}[${i}]: backward ${g[i]}, finite differences ${fd} (max |g| ${gmax})`);
    }
    report.push(`${t.name.replace(/^model\.layers\./, '')} ${worst.toExponential(1)}`);
  }
  return report;
}

test('LoRA on every projection of a SUPRA model: gradients of A and B (and the kernels) by central differences of the next-token loss; base weights frozen, without gradients', () => {
  const { teacher, model } = tinySupra(3);
  teacher.free();
  const lora = LoraAdapters.attach(model, { rank: 2, alpha: 3, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] }, 0);
  assert.equal(lora.adapters.size, 2 * 7);
  const next = rng(5);
  for (const p of lora.params()) if (p.name.endsWith('lora_B.weight')) for (let i = 0; i < p.data.length; i++) p.data[i] = gauss(next) * 0.3;
  const kernels = model.params().filter((p) => isKernelParam(p.name));
  model.enableGrads(kernels);
  lora.enableGrads();
  for (const p of model.params()) assert.equal(p.grad === null, !isKernelParam(p.name), `${p.name}: a gradient buffer exactly when trained`);
  const B = 2, T = 9;
  const input = ids(B * T, 6);
  model.zeroGrad();
  lora.zeroGrad();
  model.loss(input, B, T);
  model.backward();
  const tensors = [...lora.params().filter((_, i) => i % 5 === 0), ...kernels.filter((p) => p.shape.length === 2)];
  const analytic = new Map(tensors.map((p) => [p, Float32Array.from(p.grad!)]));
  const report = checkByDifferences(tensors, analytic, () => model.loss(input, B, T), 4e-3, 7);
  console.log(`# LoRA model: max|g − g_fd| / max|g|: ${report.join(', ')}`);
  lora.free();
  model.free();
});

test('merging LoRA gives the unmerged model\'s logits (to float32 rounding), and a plain model again', () => {
  const { teacher, model } = tinySupra(8);
  teacher.free();
  const B = 2, T = 11;
  const input = ids(B * T, 9);
  const base = Float32Array.from(model.forward(input, B, T));
  const lora = LoraAdapters.attach(model, { rank: 4, alpha: 8, targets: ['q_proj', 'v_proj', 'o_proj', 'down_proj'] }, 1);
  assert.deepEqual(Float32Array.from(model.forward(input, B, T)), base, 'B = 0: the adapted model starts as the model');
  const next = rng(10);
  for (const p of lora.params()) if (p.name.endsWith('lora_B.weight')) for (let i = 0; i < p.data.length; i++) p.data[i] = gauss(next) * 0.2;
  const unmerged = Float32Array.from(model.forward(input, B, T));
  const moved = maxAbsDiff(unmerged, base);
  lora.merge();
  assert.ok([...lora.adapters.values()].every((a) => a.linear.lora === null), 'merged: the adapters are off the model');
  const merged = model.forward(input, B, T);
  const err = maxAbsDiff(merged, unmerged);
  console.log(`# merge: logits moved ${moved.toExponential(2)} by LoRA; merged vs unmerged ${err.toExponential(2)} (max |logit| ${maxAbs(unmerged).toFixed(2)})`);
  assert.ok(moved > 0.1, `LoRA should change the logits (moved ${moved})`);
  assert.ok(err <= 2e-5 * maxAbs(unmerged), `merged logits differ by ${err}`);
  lora.free();
  model.free();
});

test('the transfer loss is the mean over layers of MSE(SUPRA mixer, the teacher\'s softmax mixer) on the teacher\'s own normed hidden states', () => {
  const { teacher, model } = tinySupra(12);
  const B = 2, T = 10, C = 32, n = B * T * C;
  const input = ids(B * T, 13);
  const transfer = new AttentionTransfer(model);
  const got = transfer.loss(input, B, T);
  // independently: the teacher's residual stream, each layer's input norm, both mixers' training forwards
  teacher.forward(input, B, T);
  const hidden = teacher.hiddenStates();
  let want = 0;
  const x = allocF32(n), rstd = allocF32(B * T), soft = allocF32(n), lin = allocF32(n);
  for (let l = 0; l < 2; l++) {
    teacher.layers[l]!.inputNorm.forward(hidden[l]!, x, rstd, B * T);
    teacher.layers[l]!.mixer.forward(x, soft, B, T);
    model.layers[l]!.mixer.forward(x, lin, B, T);
    let sum = 0;
    for (let i = 0; i < n; i++) sum += (lin[i]! - soft[i]!) ** 2;
    want += sum / n / 2;
  }
  assert.ok(want > 1e-4, `a nontrivial loss (${want})`);
  assert.ok(Math.abs(got - want) <= 1e-5 * want, `transfer loss ${got}, by hand ${want}`);
  transfer.free();
  teacher.free();
  model.free();
});

for (const qkNorm of ['none', 'rms'] as const) {
  test(`attention transfer: the kernels' gradients (qk-norm ${qkNorm}) by central differences of the transfer loss; nothing else gets a gradient or moves`, () => {
    const { teacher, model } = tinySupra(14, qkNorm);
    teacher.free();
    const kernels = model.params().filter((p) => isKernelParam(p.name));
    if (qkNorm === 'rms') {
      const next = rng(15);
      for (const p of kernels) if (p.name.endsWith('norm.weight')) for (let i = 0; i < p.data.length; i++) p.data[i] = 1 + 0.2 * gauss(next);
    }
    model.enableGrads(kernels);
    const frozenBefore = model.params().filter((p) => !isKernelParam(p.name)).map((p) => Float32Array.from(p.data));
    const B = 2, T = 8;
    const input = ids(B * T, 16);
    const transfer = new AttentionTransfer(model);
    model.zeroGrad();
    const loss = transfer.step(input, B, T);
    assert.ok(Math.abs(loss - transfer.loss(input, B, T)) <= 1e-6 * loss, 'step() returns the loss');
    const analytic = new Map(kernels.map((p) => [p, Float32Array.from(p.grad!)]));
    const report = checkByDifferences(kernels, analytic, () => transfer.loss(input, B, T), 1e-3, 17);
    console.log(`# attention transfer (${qkNorm}): max|g − g_fd| / max|g|: ${report.join(', ')}`);
    model.params().filter((p) => !isKernelParam(p.name)).forEach((p, i) => {
      assert.equal(p.grad, null, `${p.name} is frozen`);
      assert.deepEqual(p.data, frozenBefore[i], `${p.name} unchanged`);
    });
    transfer.free();
    model.free();
  });
}

test('attention transfer and LoRA refuse what they cannot do, clearly', () => {
  const { teacher, model } = tinySupra(18);
  assert.throws(() => new AttentionTransfer(teacher), /attention transfer needs a SUPRA model; layer 0 of LlamaForCausalLM/);
  assert.throws(() => LoraAdapters.attach(model, { rank: 2, alpha: 2, targets: ['q_proj', 'kernel_q'] }, 0), /unknown target module "kernel_q".*the SUPRA kernels are trained in full/);
  assert.throws(() => LoraAdapters.attach(model, { rank: 0, alpha: 2, targets: ['q_proj'] }, 0), /rank must be an integer ≥ 1/);
  const lora = LoraAdapters.attach(model, { rank: 2, alpha: 2, targets: ['q_proj'] }, 0);
  assert.throws(() => LoraAdapters.attach(model, { rank: 2, alpha: 2, targets: ['q_proj'] }, 0), /model\.layers\.0\.self_attn\.q_proj already has an adapter/);
  assert.throws(() => model.enableGrads([lora.params()[0]!]), /lora_A\.weight is not a parameter of this store/);
  lora.free();
  teacher.free();
  model.free();
});
