import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { allocF32, toArena } from '../src/core/memory.js';
import { getBackend } from '../src/core/select.js';
import { readSafetensors } from '../src/io/safetensors.js';
import type { Param } from '../src/layers/types.js';
import { AdamW } from '../src/train/adamw.js';
import { gqaDir, maxAbsDiff } from './helpers/fixture.js';

const teacher = readSafetensors(join(gqaDir, 'teacher', 'model.safetensors'));
const kernels = readSafetensors(join(gqaDir, 'supra_kernels.safetensors'));
const grads = readSafetensors(join(gqaDir, 'grads_supra.safetensors'));
const steps = readSafetensors(join(gqaDir, 'adamw_supra.safetensors'));
const hyper = JSON.parse(readFileSync(join(gqaDir, 'inputs.json'), 'utf8')).adamw as { lr: number; betas: [number, number]; eps: number; weight_decay: number };

/** The SUPRA model's parameters (teacher weights + kernels), each with a gradient buffer. */
function supraParams(): Param[] {
  return [...grads.keys()].map((name) => {
    const t = kernels.get(name) ?? teacher.get(name);
    if (!t) throw new Error(`fixture: no starting value for ${name}`);
    return { name, shape: t.shape, data: toArena(t.data as Float32Array), grad: allocF32(t.data.length) };
  });
}

function worstAgainst(params: Param[], prefix: string): { err: number; name: string } {
  let worst = { err: 0, name: '' };
  for (const p of params) {
    const want = steps.get(`${prefix}${p.name}`);
    assert.ok(want, `fixture lacks ${prefix}${p.name}`);
    const err = maxAbsDiff(p.data, want.data);
    if (err > worst.err) worst = { err, name: p.name };
  }
  return worst;
}

const opts = () => ({ lr: hyper.lr, betas: hyper.betas, eps: hyper.eps, weightDecay: hyper.weight_decay });

test('AdamW alone reproduces the fixture\'s two steps to 5e-7', () => {
  assert.deepEqual(opts(), { lr: 1e-3, betas: [0.9, 0.98], eps: 1e-8, weightDecay: 0.1 });
  const params = supraParams();
  assert.equal(params.length, 2 + 2 * 9 + 1 + 2 * 4, 'embeddings, head, final norm, 9 teacher + 4 SUPRA tensors per layer');
  const opt = new AdamW(params, opts());
  for (const p of params) p.grad!.set(grads.get(p.name)!.data);
  opt.step();
  const s1 = worstAgainst(params, 'step1.');
  for (const p of params) p.grad!.set(steps.get(`grad.step2.${p.name}`)!.data);
  opt.step();
  const s2 = worstAgainst(params, 'step2.');
  console.log(`# AdamW vs fixture: step1 max abs ${s1.err.toExponential(2)} (${s1.name}), step2 ${s2.err.toExponential(2)} (${s2.name})`);
  assert.ok(s1.err <= 5e-7, `step 1: ${s1.name} off by ${s1.err}`);
  assert.ok(s2.err <= 5e-7, `step 2: ${s2.name} off by ${s2.err}`);
  assert.equal(opt.stepCount(params[0]!), 2);
  opt.free();
});

test('AdamW state survives a save/restore between the two steps', () => {
  const params = supraParams();
  const first = new AdamW(params, opts());
  for (const p of params) p.grad!.set(grads.get(p.name)!.data);
  first.step();
  const saved = new Map([...first.stateTensors()].map(([k, v]) => [k, Float32Array.from(v)]));
  first.free();
  const second = new AdamW(params, opts());
  second.loadStateTensors(saved);
  for (const p of params) p.grad!.set(steps.get(`grad.step2.${p.name}`)!.data);
  second.step();
  const s2 = worstAgainst(params, 'step2.');
  assert.ok(s2.err <= 5e-7, `restored step 2: ${s2.name} off by ${s2.err}`);
  second.free();
});

test('parameter groups: kernels at their own learning rate; params without gradients are skipped', () => {
  const mk = (name: string, values: number[], grad: number[] | null): Param => ({
    name, shape: [values.length], data: toArena(Float32Array.from(values)), grad: grad ? toArena(Float32Array.from(grad)) : null,
  });
  const w = mk('teacher.w', [0.5, -1], [0.1, -0.2]);
  const kq = mk('kernel_q.weight', [0.5, -1], [0.1, -0.2]);
  const frozen = mk('frozen', [3], null);
  const opt = new AdamW([{ params: [w, frozen] }, { params: [kq], lr: 1e-2, weightDecay: 0, name: 'kernels' }], { lr: 1e-3, betas: [0.9, 0.98], weightDecay: 0.1 });
  opt.step();
  // first step: p·(1 − lr·wd) − lr·sign(g)·|g|/(|g| + eps·…) ≈ p·(1 − lr·wd) − lr·sign(g)
  const first = (p: number, g: number, lr: number, wd: number) => {
    const m = 0.1 * g / 0.1, v = Math.sqrt((0.02 * g * g) / 0.02);
    return p * (1 - lr * wd) - (lr * m) / (v + 1e-8);
  };
  assert.ok(maxAbsDiff(w.data, [first(0.5, 0.1, 1e-3, 0.1), first(-1, -0.2, 1e-3, 0.1)]) < 1e-7);
  assert.ok(maxAbsDiff(kq.data, [first(0.5, 0.1, 1e-2, 0), first(-1, -0.2, 1e-2, 0)]) < 1e-7);
  assert.equal(frozen.data[0], 3);
  assert.equal(opt.stepCount(frozen), 0);
  assert.equal(opt.stepCount(kq), 1);
  opt.setLr(0, 'kernels');
  const before = Float32Array.from(kq.data);
  opt.step();
  assert.deepEqual(Array.from(kq.data), Array.from(before), 'lr 0 leaves the kernels unchanged');
  assert.equal(opt.groups[0]!.lr, 1e-3);
  opt.zeroGrad();
  assert.deepEqual(Array.from(w.grad!), [0, 0]);
  assert.throws(() => new AdamW([{ params: [w] }, { params: [w] }]), /more than one group/);
  assert.throws(() => new AdamW([w], { betas: [0.9, 1] }), /betas/);
  assert.throws(() => opt.setLr(1, 'nope'), /no parameter group/);
  opt.free();
});

test('parameters outside the arena (native): the arena\'s bits, moments added as gradients appear, and a save/restore', {
  skip: getBackend().heapKernels ? false : 'this backend trains in the arena only',
}, () => {
  const onHeap = (ps: Param[]): Param[] => ps.map((p) => ({ ...p, data: Float32Array.from(p.data), grad: Float32Array.from(p.grad!) }));
  const arena = supraParams();
  const heap = onHeap(supraParams());
  const runs = [arena, heap].map((params) => {
    const opt = new AdamW(params, opts());
    // step 1 without the last parameter's gradient: its moments come with step 2, apart from the others'
    const late = params.at(-1)!;
    const lateGrad = late.grad;
    late.grad = null;
    for (const p of params) p.grad?.set(grads.get(p.name)!.data);
    opt.step();
    late.grad = lateGrad;
    return { params, opt, late };
  });
  // the heap run goes on from its saved state in a new optimizer
  const saved = new Map([...runs[1]!.opt.stateTensors()].map(([k, v]) => [k, Float32Array.from(v)]));
  runs[1]!.opt.free();
  runs[1]!.opt = new AdamW(heap, opts());
  runs[1]!.opt.loadStateTensors(saved);
  for (const { params, opt, late } of runs) {
    assert.equal(opt.stepCount(late), 0);
    for (const p of params) p.grad!.set(steps.get(`grad.step2.${p.name}`)!.data);
    opt.step();
    assert.equal(opt.stepCount(late), 1);
    assert.equal(opt.stepCount(params[0]!), 2);
  }
  for (let i = 0; i < arena.length; i++) assert.deepEqual(Array.from(heap[i]!.data), Array.from(arena[i]!.data), arena[i]!.name);
  for (const { opt } of runs) opt.free();
});
