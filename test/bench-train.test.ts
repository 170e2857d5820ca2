// bench:train's report and its PyTorch baseline: the table shows PyTorch's step timed in the same run (and
// supra's ratio to it), the recorded figure only when none was timed, and why one failed; --pytorch refuses
// a python without torch. Where a python3 with torch is on the machine, bench/pytorch-step.py's chunked
// linear attention is checked against the quadratic form and its step runs on a tiny config.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findPytorch } from '../src/bench/pytorch.js';
import { trainMarkdown, type TrainCase } from '../src/bench/train-step.js';
import { freshDirs, tempRoot } from './helpers/tmp.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const script = join(root, 'bench', 'pytorch-step.py');
const freshDir = freshDirs(tempRoot('supra-bench-train-test-'));

const base: TrainCase = {
  shape: 'smollm-135m', batchSize: 1, seqLen: 512, checkpointActivations: false, recipe: 'full', status: 'ok',
  tokensPerS: 150, secondsPerStep: 3.41, gemmShare: 0.9, maxRssBytes: 3 * 2 ** 30, plannedBytes: 2.9 * 2 ** 30,
};

function row(md: string): string[] {
  const line = md.split('\n').find((l) => l.startsWith('| smollm-135m'));
  assert.ok(line, md);
  return line.split('|').map((c) => c.trim());
}

test('the PyTorch column: the same-run figure and the ratio, else the recorded one, else why not', () => {
  const timed = row(trainMarkdown([{ ...base, pytorch: { status: 'ok', tokensPerS: 100, secondsPerStep: 5.12, bestSecondsPerStep: 5.1, torch: '1.13', threads: 2 } }], 'h'));
  assert.ok(timed.includes('100.0 (1.50×)'), timed.join(' | '));
  const lean = row(trainMarkdown([{ ...base, pytorch: { status: 'ok', tokensPerS: 100, secondsPerStep: 5.12, bestSecondsPerStep: 5.1, torch: '1.13', threads: 2, lean: true } }], 'h'));
  assert.ok(lean.includes('100.0* (1.50×)'), 'a step run with the lean settings is marked');
  const recorded = row(trainMarkdown([base], 'h'));
  assert.ok(recorded.includes('85 (recorded on another machine)'), recorded.join(' | '));
  const failed = row(trainMarkdown([{ ...base, pytorch: { status: 'error', message: 'killed by SIGKILL' } }], 'h'));
  assert.ok(failed.includes('error: killed by SIGKILL'), failed.join(' | '));
  const lora = row(trainMarkdown([{ ...base, recipe: 'attention-transfer', pytorch: { status: 'ok', tokensPerS: 100, secondsPerStep: 5, bestSecondsPerStep: 5, torch: '1.13', threads: 2 } }], 'h'));
  assert.ok(lora.includes('—'), 'the PyTorch step is full uptraining: no ratio beside attention transfer');
});

test('bench:train --pytorch refuses a python that cannot import torch, before any work', () => {
  const r = spawnSync(process.execPath, [join(root, 'dist', 'bench', 'train.js'), '--pytorch', join(freshDir(), 'no-python')], { encoding: 'utf8' });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /--pytorch: .*no-python cannot import torch/);
});

const python = findPytorch('auto');

test('pytorch-step.py: the chunked linear attention is the quadratic form (a shorter last chunk too), and a step runs', { skip: python ? false : 'no python3 with torch here' }, () => {
  const check = `
import importlib.util, torch
spec = importlib.util.spec_from_file_location("step", ${JSON.stringify(script)})
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
torch.manual_seed(0)
err = 0.0
for T in (192, 100):  # whole chunks, and a shorter last one
    B, H, D = 2, 3, 8
    q, k, v = (torch.randn(B, H, T, D, dtype=torch.float64) for _ in range(3))
    log_decay = -torch.tensor(m.decay_slopes(H), dtype=torch.float64).view(H, 1, 1)
    t = torch.arange(T, dtype=torch.float64)
    diff = t.view(T, 1) - t.view(1, T)
    mask = torch.where(diff >= 0, torch.exp(log_decay * diff.clamp(min=0)), torch.zeros((), dtype=torch.float64))
    ref = ((q @ k.transpose(-1, -2)) * mask) @ v
    err = max(err, (m.chunked_linear_attention(q, k, v, log_decay) - ref).abs().max().item())
print(err)
print(m.decay_slopes(9)[-1], m.decay_slopes(8)[0])
`;
  const r = spawnSync(python!, ['-c', check], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const [err, slope9, slope8] = r.stdout.trim().split(/\s+/).map(Number);
  assert.ok(err! < 1e-10, `chunked vs quadratic: ${err}`);
  // ALiBi slopes: 9 heads = the 8 power-of-two slopes, then the first odd one of 16 (2^-0.5); 8 heads start at 2^-1
  assert.ok(Math.abs(slope9! - 2 ** -0.5) < 1e-12 && slope8 === 0.5, r.stdout);

  const dir = freshDir();
  const config = {
    vocab_size: 64, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
    head_dim: 8, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: true, attention_bias: true,
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  const step = spawnSync(python!, [script, join(dir, 'config.json'), '2', '128', '1', '1'], { encoding: 'utf8' });
  assert.equal(step.status, 0, step.stderr);
  const out = JSON.parse(step.stdout.trim()) as { tokensPerS: number; secondsPerStep: number; threads: number };
  assert.ok(out.tokensPerS > 0 && out.secondsPerStep > 0 && out.threads === 1, step.stdout);
});
