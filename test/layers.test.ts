// Each layer's backward against float64 finite differences of its float32 forward, on tiny sizes; the
// attention forward (GQA head mapping, RoPE, causal mask) against a plain float64 reference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocF32 } from '../src/core/memory.js';
import { ropeTables } from '../src/core/ops.js';
import { Mt19937 } from '../src/core/random.js';
import { parseConfig, type ModelConfig } from '../src/io/config.js';
import { SoftmaxAttention, createSoftmaxAttention } from '../src/layers/attention.js';
import { DecoderLayer } from '../src/layers/block.js';
import { MLP } from '../src/layers/mlp.js';
import { RMSNorm } from '../src/layers/norm.js';
import { ParamStore } from '../src/layers/params.js';
import type { MixerContext } from '../src/layers/types.js';
import { Workspace } from '../src/layers/workspace.js';
import { maxAbs } from './helpers/fixture.js';

const rng = new Mt19937(1234);

function randn(x: Float32Array, std = 1, mean = 0): Float32Array {
  for (let i = 0; i < x.length; i++) x[i] = mean + std * rng.normal();
  return x;
}

function tinyConfig(extra: Record<string, unknown> = {}): ModelConfig {
  return parseConfig({
    architectures: ['LlamaForCausalLM'], vocab_size: 16, hidden_size: 12, intermediate_size: 20,
    num_hidden_layers: 1, num_attention_heads: 6, num_key_value_heads: 2, head_dim: 4,
    rms_norm_eps: 1e-5, rope_theta: 100, ...extra,
  });
}

function context(config: ModelConfig): MixerContext {
  return { config, layer: 0, prefix: 'model.layers.0.self_attn', store: new ParamStore(), scratch: new Workspace() };
}

function randomizeParams(store: ParamStore): void {
  store.enableGrads();
  for (const p of store.list()) {
    if (p.name.endsWith('.bias')) randn(p.data, 0.1);
    else if (p.shape.length === 1) randn(p.data, 0.1, 1); // a norm gain
    else randn(p.data, 1 / Math.sqrt(p.shape[1]!));
  }
}

interface Checked {
  name: string;
  data: Float32Array;
  grad: Float32Array;
}

/**
 * The scalar f = Σ out ⊙ R. Runs forward + backward(R) for the analytic gradients, then checks the
 * largest and four random entries of every tensor against Richardson-extrapolated central differences
 * (float64 arithmetic on the float32 outputs, with the actual float32 perturbations).
 */
function gradCheck(
  out: Float32Array,
  forward: () => void,
  backward: (dout: Float32Array) => void,
  tensors: () => Checked[],
): number {
  const R = randn(allocF32(out.length));
  forward();
  backward(R);
  const analytic = tensors().map((t) => ({ ...t, grad: Float32Array.from(t.grad) }));
  const f = (): number => {
    forward();
    let s = 0;
    for (let i = 0; i < out.length; i++) s += out[i]! * R[i]!;
    return s;
  };
  let worst = 0;
  for (const t of analytic) {
    const gmax = maxAbs(t.grad);
    assert.ok(gmax > 0, `${t.name}: gradient is all zero`);
    let top = 0;
    for (let i = 1; i < t.grad.length; i++) if (Math.abs(t.grad[i]!) > Math.abs(t.grad[top]!)) top = i;
    const picks = [top, ...Array.from({ length: 4 }, () => Math.floor(rng.random() * t.grad.length))];
    for (const i of picks) {
      const w = t.data[i]!;
      const central = (h: number): number => {
        t.data[i] = w + h;
        const up = t.data[i]!;
        const fUp = f();
        t.data[i] = w - h;
        const down = t.data[i]!;
        const fDown = f();
        t.data[i] = w;
        return (fUp - fDown) / (up - down);
      };
      const h = 2e-2;
      const fd = (4 * central(h / 2) - central(h)) / 3;
      const err = Math.abs(fd - t.grad[i]!);
      worst = Math.max(worst, err / gmax);
      assert.ok(err <= 0.01 * Math.abs(t.grad[i]!) + 5e-4 * gmax, `${t.name}[${i}]: backward ${t.grad[i]}, finite differences ${fd}`);
    }
  }
  return worst;
}

test('RMSNorm backward (input and gain) matches finite differences', () => {
  const store = new ParamStore();
  const norm = new RMSNorm(store, 'model.norm', 10, 1e-5);
  randomizeParams(store);
  const rows = 6;
  const x = randn(allocF32(rows * 10), 2);
  const out = allocF32(rows * 10), rstd = allocF32(rows), dx = allocF32(rows * 10);
  const worst = gradCheck(
    out,
    () => norm.forward(x, out, rstd, rows),
    (d) => {
      store.zeroGrad();
      norm.backward(d, x, rstd, dx, rows);
    },
    () => [{ name: 'x', data: x, grad: dx }, { name: 'weight', data: norm.weight.data, grad: norm.weight.grad! }],
  );
  console.log(`# rmsnorm worst |fd − g|/max|g| ${worst.toExponential(2)}`);
});

test('SwiGLU MLP backward (input, gate/up/down, with biases) matches finite differences', () => {
  const store = new ParamStore();
  const mlp = new MLP(store, 'mlp', 8, 14, true, new Workspace());
  randomizeParams(store);
  const rows = 5;
  const x = randn(allocF32(rows * 8));
  const out = allocF32(rows * 8);
  const dx = allocF32(rows * 8);
  const worst = gradCheck(
    out,
    () => mlp.forward(x, out, rows),
    (d) => {
      store.zeroGrad();
      dx.fill(7); // overwritten, not accumulated
      mlp.backward(d, dx);
    },
    () => [{ name: 'x', data: x, grad: dx }, ...store.list().map((p) => ({ name: p.name, data: p.data, grad: p.grad! }))],
  );
  console.log(`# mlp worst |fd − g|/max|g| ${worst.toExponential(2)}`);
});

for (const [label, extra] of [
  ['GQA 6 heads / 2 kv heads', {}],
  ['MHA 3 heads, attention_bias (q/k/v/o biases)', { num_attention_heads: 3, num_key_value_heads: 3, attention_bias: true }],
  ['Qwen2 4 heads / 1 kv head (q/k/v biases)', { architectures: ['Qwen2ForCausalLM'], num_attention_heads: 4, num_key_value_heads: 1, head_dim: 6 }],
] as const) {
  test(`softmax attention backward, ${label}, matches finite differences`, () => {
    const config = tinyConfig(extra);
    const ctx = context(config);
    const attn = createSoftmaxAttention(ctx);
    randomizeParams(ctx.store);
    const B = 2, T = 5, C = config.hidden_size;
    const x = randn(allocF32(B * T * C));
    const out = allocF32(B * T * C), dx = allocF32(B * T * C);
    const worst = gradCheck(
      out,
      () => attn.forward(x, out, B, T),
      (d) => {
        ctx.store.zeroGrad();
        attn.backward(d, dx);
      },
      () => [{ name: 'x', data: x, grad: dx }, ...attn.params().map((p) => ({ name: p.name, data: p.data, grad: p.grad! }))],
    );
    console.log(`# attention (${label}) worst |fd − g|/max|g| ${worst.toExponential(2)}`);
  });
}

/** Plain float64 attention straight from the definition, for B sequences from position 0. */
function referenceAttention(attn: SoftmaxAttention, config: ModelConfig, x: Float32Array, B: number, T: number): Float64Array {
  const H = config.num_attention_heads, K = config.num_key_value_heads, D = config.head_dim, C = config.hidden_size;
  const proj = (w: Float32Array, b: Float32Array | null, outF: number, row: number): Float64Array => {
    const y = new Float64Array(outF);
    for (let o = 0; o < outF; o++) {
      let s = b ? b[o]! : 0;
      for (let i = 0; i < C; i++) s += w[o * C + i]! * x[row * C + i]!;
      y[o] = s;
    }
    return y;
  };
  const { cos, sin } = ropeTables(T, D, config.rope_theta);
  const rot = (v: Float64Array, heads: number, t: number): void => {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < D / 2; i++) {
        const a = v[h * D + i]!, b = v[h * D + i + D / 2]!;
        const c = cos[t * (D / 2) + i]!, s = sin[t * (D / 2) + i]!;
        v[h * D + i] = a * c - b * s;
        v[h * D + i + D / 2] = b * c + a * s;
      }
    }
  };
  const bias = (l: { bias: { data: Float32Array } | null }): Float32Array | null => (l.bias ? l.bias.data : null);
  const out = new Float64Array(B * T * C);
  for (let b = 0; b < B; b++) {
    const q: Float64Array[] = [], k: Float64Array[] = [], v: Float64Array[] = [];
    for (let t = 0; t < T; t++) {
      const r = b * T + t;
      q.push(proj(attn.proj.q.weight.data, bias(attn.proj.q), H * D, r));
      k.push(proj(attn.proj.k.weight.data, bias(attn.proj.k), K * D, r));
      v.push(proj(attn.proj.v.weight.data, bias(attn.proj.v), K * D, r));
      rot(q[t]!, H, t);
      rot(k[t]!, K, t);
    }
    for (let t = 0; t < T; t++) {
      const y = new Float64Array(H * D);
      for (let h = 0; h < H; h++) {
        const j = Math.floor(h / (H / K)); // repeat_kv: query head h reads kv head ⌊h / group⌋
        const s = Array.from({ length: t + 1 }, (_, u) => {
          let d = 0;
          for (let i = 0; i < D; i++) d += q[t]![h * D + i]! * k[u]![j * D + i]!;
          return d / Math.sqrt(D);
        });
        const m = Math.max(...s);
        const e = s.map((z) => Math.exp(z - m));
        const z = e.reduce((a, c) => a + c, 0);
        for (let u = 0; u <= t; u++) for (let i = 0; i < D; i++) y[h * D + i]! += (e[u]! / z) * v[u]![j * D + i]!;
      }
      const ow = attn.proj.o.weight.data, ob = bias(attn.proj.o);
      for (let o = 0; o < C; o++) {
        let s = ob ? ob[o]! : 0;
        for (let i = 0; i < H * D; i++) s += ow[o * H * D + i]! * y[i]!;
        out[(b * T + t) * C + o] = s;
      }
    }
  }
  return out;
}

test('softmax attention forward (6 heads / 2 kv heads, biases) equals a float64 reference, full and cached', () => {
  const config = tinyConfig({ attention_bias: true });
  const ctx = context(config);
  const attn = new SoftmaxAttention(ctx);
  randomizeParams(ctx.store);
  const B = 2, T = 9, C = config.hidden_size;
  const x = randn(allocF32(B * T * C));
  const out = allocF32(B * T * C);
  attn.forward(x, out, B, T);
  const want = referenceAttention(attn, config, x, B, T);
  let err = 0;
  for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(out[i]! - want[i]!));
  assert.ok(err < 1e-5 * Math.max(1, maxAbs(out)), `full forward vs reference: ${err}`);
  // the same through the KV cache, 4 tokens then 5 single ones
  const state = attn.newState(B);
  const stepOut = allocF32(B * T * C);
  let t0 = 0;
  for (const n of [4, 1, 1, 1, 1, 1]) {
    const xs = allocF32(B * n * C), ys = allocF32(B * n * C);
    for (let b = 0; b < B; b++) xs.set(x.subarray((b * T + t0) * C, (b * T + t0 + n) * C), b * n * C);
    attn.forward(xs, ys, B, n, state);
    for (let b = 0; b < B; b++) stepOut.set(ys.subarray(b * n * C, (b + 1) * n * C), (b * T + t0) * C);
    t0 += n;
  }
  assert.equal(state.position, T);
  let errCached = 0;
  for (let i = 0; i < want.length; i++) errCached = Math.max(errCached, Math.abs(stepOut[i]! - want[i]!));
  assert.ok(errCached < 1e-5 * Math.max(1, maxAbs(out)), `cached forward vs reference: ${errCached}`);
  console.log(`# attention vs float64 reference: full ${err.toExponential(2)}, cached ${errCached.toExponential(2)}`);
  state.free();
});

test('decoder layer backward (norms, attention, MLP, residuals) matches finite differences', () => {
  const config = tinyConfig();
  const ctx = context(config);
  const layer = new DecoderLayer(ctx, createSoftmaxAttention);
  randomizeParams(ctx.store);
  const B = 2, T = 4, C = config.hidden_size;
  const hIn = randn(allocF32(B * T * C));
  const hOut = allocF32(B * T * C), dh = allocF32(B * T * C);
  const worst = gradCheck(
    hOut,
    () => layer.forward(hIn, hOut, B, T),
    (d) => {
      ctx.store.zeroGrad();
      dh.set(d); // backward works in place: d/d h_out in, d/d h_in out
      layer.backward(dh);
    },
    () => [{ name: 'h_in', data: hIn, grad: dh }, ...layer.params().map((p) => ({ name: p.name, data: p.data, grad: p.grad! }))],
  );
  assert.equal(layer.params().length, ctx.store.list().length);
  console.log(`# decoder layer worst |fd − g|/max|g| ${worst.toExponential(2)}`);
});

test('a training forward refuses in-place buffers, and backward needs a forward', () => {
  const config = tinyConfig();
  const ctx = context(config);
  const layer = new DecoderLayer(ctx, createSoftmaxAttention);
  const h = allocF32(2 * config.hidden_size);
  assert.throws(() => layer.backward(h), /without a training forward/);
  assert.throws(() => layer.forward(h, h, 1, 2), /separate input and output/);
  assert.throws(() => new SoftmaxAttention(ctx), /declared twice/);
});
