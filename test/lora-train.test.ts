// The attention-transfer recipe in the trainer: exact resume bit for bit (stopped in stage 1 and in stage 2),
// checkpoints that survive a SIGKILL mid-save, gradients and AdamW moments for the trained parameters only,
// the adapter folder and the merged final model (supra merge gives the same bits), and the clear errors of
// the recipe's options and of merging an adapter that does not fit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { loadDecoder } from '../src/models/auto.js';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, mergeAdapterFolder } from '../src/models/lora.js';
import { listCheckpoints, readLatest } from '../src/train/checkpoint.js';
import { MetricsLog } from '../src/train/metrics.js';
import { isKernelParam } from '../src/train/param-groups.js';
import { train, Trainer, type TrainOptions } from '../src/train/trainer.js';
import { maxAbs, maxAbsDiff } from './helpers/fixture.js';
import { MemoryBatches, repeatedText, tinyConfig } from './helpers/train-data.js';

const tmp = (tag: string) => mkdtempSync(join(tmpdir(), `supra-lora-${tag}-`));
const here = dirname(fileURLToPath(import.meta.url));
const childScript = join(here, 'helpers', 'train-child.js');
const cli = join(here, '..', 'src', 'cli', 'main.js');
const data = () => new MemoryBatches(repeatedText(4000, 23, 32), repeatedText(600, 23, 32), 16, 0);
/** The attention-transfer recipe on the tiny SUPRA model (helpers/train-child.ts takes the same settings). */
const recipe = { recipe: 'attention-transfer', transferSteps: 2, loraRank: 4, loraAlpha: 8 } as const;
const base = (out: string, extra: Partial<TrainOptions> = {}): TrainOptions => ({
  init: tinyConfig({ supra: true }), data: data(), out, steps: 6, batchSize: 2, lr: 1e-2, evalSequences: 0, quiet: true, ...recipe, ...extra,
});

function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function sameTensors(a: string, b: string, what: string): void {
  const ta = readSafetensors(a), tb = readSafetensors(b);
  assert.deepEqual([...tb.keys()].sort(), [...ta.keys()].sort(), `${what}: the same tensors`);
  for (const [name, t] of ta) assert.ok(bitsEqual(t.data as Float32Array, tb.get(name)!.data as Float32Array), `${what}: ${name} differs`);
}

test('attention transfer + LoRA resumes exactly: stopped in stage 1 and in stage 2, the losses, final model, adapter and optimizer state are those of one run, bit for bit', async () => {
  const whole = tmp('whole');
  const split = tmp('split');
  try {
    const extra = { kernelLr: 3e-2, gradAccum: 2, warmupSteps: 2, evalSequences: 4, evalEvery: 2, loraTargets: 'q_proj,v_proj,o_proj,down_proj' };
    const a = await train(base(whole, extra));
    assert.equal(a.status, 'completed');
    const b1 = await train(base(split, { ...extra, stopAt: 1 })); // inside stage 1
    assert.equal(b1.status, 'stopped');
    const b2 = await train(base(split, { ...extra, stopAt: 4, resume: true })); // into stage 2
    assert.equal(b2.step, 4);
    const b3 = await train(base(split, { ...extra, resume: true }));
    assert.equal(b3.status, 'completed');
    assert.deepEqual(b3.losses, a.losses, 'losses step for step');
    assert.equal(b3.finalValLoss, a.finalValLoss);
    sameTensors(join(whole, 'final', 'model.safetensors'), join(split, 'final', 'model.safetensors'), 'final model');
    sameTensors(join(whole, 'adapter', ADAPTER_WEIGHTS_FILE), join(split, 'adapter', ADAPTER_WEIGHTS_FILE), 'adapter');
    sameTensors(join(whole, 'checkpoint-6', 'optimizer.safetensors'), join(split, 'checkpoint-6', 'optimizer.safetensors'), 'optimizer');
    const strip = ({ tokens_per_s: _, ...r }: Record<string, unknown>) => r;
    assert.deepEqual(MetricsLog.read(join(split, 'metrics.jsonl')).map(strip), MetricsLog.read(join(whole, 'metrics.jsonl')).map(strip));
    // stage 1 is logged as the attention MSE, stage 2 as the next-token loss
    const objectives = MetricsLog.read(join(whole, 'metrics.jsonl')).filter((r) => r.loss !== undefined).map((r) => r.objective ?? 'next_token');
    assert.deepEqual(objectives, ['attention_mse', 'attention_mse', 'next_token', 'next_token', 'next_token', 'next_token']);
    assert.ok(a.losses[0]! < 0.5 && a.losses[2]! > 2, `stage 1 an MSE, stage 2 a cross-entropy: ${a.losses.join(', ')}`);
    // a resume with another LoRA setting is refused
    await assert.rejects(train(base(split, { ...extra, loraRank: 8, resume: true })), /loraRank is 8, the checkpoint's run used 4/);
  } finally {
    rmSync(whole, { recursive: true, force: true });
    rmSync(split, { recursive: true, force: true });
  }
});

test('a LoRA run keeps gradients and AdamW moments for the kernels and adapters only; its checkpoints are the base model plus the adapter, and supra merge of one gives the final model', async () => {
  const out = tmp('frozen');
  try {
    const trainer = Trainer.open(base(out, { saveEvery: 3 }));
    try {
      trainer.start();
      while (trainer.stepsDone < trainer.settings.totalSteps) trainer.step();
      const model = trainer.model;
      const kernels = model.params().filter((p) => isKernelParam(p.name));
      for (const p of model.params()) assert.equal(p.grad === null, !isKernelParam(p.name), `${p.name}: a gradient exactly when trained`);
      const frozen = model.params().filter((p) => !isKernelParam(p.name)).reduce((n, p) => n + p.data.length, 0);
      assert.ok(frozen > 4 * kernels.reduce((n, p) => n + p.data.length, 0), 'most of the model is frozen');
      // the memory plan the run was checked against counts gradients and moments of the trained only
      const plan = trainer.memoryPlan;
      // 2 layers: A [4, 32] each; B [32, 4] for q and o, [16, 4] for k and v (2 kv heads of 8)
      const loraValues = 2 * (2 * (4 * 32 + 32 * 4) + 2 * (4 * 32 + 16 * 4));
      const trainedValues = loraValues + kernels.reduce((n, p) => n + p.data.length, 0);
      assert.equal(plan.gradients.arena + plan.gradients.heap, 4 * trainedValues);
      assert.equal(plan.moments.arena + plan.moments.heap, 8 * trainedValues);
      trainer.finish('completed');
    } finally {
      trainer.close();
    }
    const moments = [...readSafetensors(join(out, 'checkpoint-6', 'optimizer.safetensors')).keys()];
    const trainedNames = new Set(moments.map((k) => k.replace(/^(exp_avg|exp_avg_sq|step)\./, '')));
    assert.equal(moments.length, 3 * trainedNames.size);
    for (const n of trainedNames) assert.ok(isKernelParam(n) || /\.(q|k|v|o)_proj\.lora_[AB]\.weight$/.test(n), `moments for ${n}`);
    assert.equal([...trainedNames].filter((n) => n.includes('lora_')).length, 2 * 4 * 2, 'A and B of q/k/v/o in 2 layers');

    const ckpt = join(out, 'checkpoint-6');
    assert.deepEqual(readdirSync(ckpt).sort(), [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, 'config.json', 'model.safetensors', 'optimizer.safetensors', 'trainer_state.json']);
    const config = JSON.parse(readFileSync(join(out, 'adapter', ADAPTER_CONFIG_FILE), 'utf8'));
    assert.equal(config.peft_type, 'LORA');
    assert.equal(config.r, 4);
    assert.equal(config.lora_alpha, 8);
    assert.deepEqual(config.target_modules, ['q_proj', 'k_proj', 'v_proj', 'o_proj']);
    assert.deepEqual(config.modules_to_save, ['kernel_q', 'kernel_k']);
    const names = [...readSafetensors(join(out, 'adapter', ADAPTER_WEIGHTS_FILE)).keys()];
    assert.ok(names.includes('base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight'), names.join(', '));
    assert.ok(names.includes('base_model.model.model.layers.0.self_attn.kernel_k.bias'));
    // the base in a checkpoint is the model before LoRA: merging its own adapter gives the final model
    const merged = join(out, 'merged');
    const r = spawnSync(process.execPath, [cli, 'merge', '--model', ckpt, '--adapter', join(out, 'adapter'), '--out', merged], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /merged 8 LoRA adapters/);
    sameTensors(join(merged, 'model.safetensors'), join(out, 'final', 'model.safetensors'), 'supra merge vs the final model');
    loadDecoder(join(out, 'final'), { strict: true }).model.free();
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('a caller\'s model in memory gets the adapters merged in when the run ends, as <out>/final holds it', async () => {
  const out = tmp('memory');
  try {
    const { model } = loadDecoder(await (async () => {
      const dir = join(out, 'start');
      await train({ init: tinyConfig({ supra: true }), data: data(), out: dir, steps: 1, batchSize: 2, evalSequences: 0, quiet: true });
      return join(dir, 'final');
    })());
    const r = await train(base(join(out, 'run'), { init: undefined, model }));
    assert.equal(r.status, 'completed');
    const final = readSafetensors(join(out, 'run', 'final', 'model.safetensors'));
    for (const p of model.params()) assert.ok(bitsEqual(p.data, final.get(p.name)!.data as Float32Array), `${p.name} as in final/`);
    assert.ok(model.layers.every((l) => (l.mixer as unknown as { proj: { q: { lora: unknown } } }).proj.q.lora === null), 'no adapter left on the model');
    model.free();
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

function runChild(args: Record<string, unknown>, onOutput?: (text: string, kill: (s: NodeJS.Signals) => void) => void): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [childScript, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    const look = () => onOutput?.(stdout + stderr, (s) => child.kill(s));
    child.stdout.on('data', (d: Buffer) => ((stdout += d.toString()), look()));
    child.stderr.on('data', (d: Buffer) => ((stderr += d.toString()), look()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

test('SIGKILL during a LoRA run\'s save leaves latest on a complete checkpoint (model and adapter), and the run resumes exactly', async () => {
  const reference = tmp('ref');
  const expected = (await train(base(reference, { saveEvery: 2 }))).losses;
  rmSync(reference, { recursive: true, force: true });
  const childArgs = { supra: true, ...recipe, saveEvery: 2, quiet: true };
  for (const phase of ['files', 'latest']) {
    const out = tmp(`kill-${phase}`);
    try {
      let killed = false;
      const c = await runChild({ ...childArgs, out, pauseSave: `${phase}@4` }, (text, kill) => {
        if (!killed && text.includes(`save of checkpoint-4 paused at ${phase}`)) {
          killed = true;
          kill('SIGKILL');
        }
      });
      assert.equal(c.signal, 'SIGKILL', `the child should have been killed mid-save; stderr:\n${c.stderr}`);
      const latest = readLatest(out)!;
      assert.equal(latest.name, 'checkpoint-2');
      assert.ok(existsSync(join(latest.dir, ADAPTER_WEIGHTS_FILE)) && existsSync(join(latest.dir, ADAPTER_CONFIG_FILE)), 'the adapter is in the checkpoint');
      const r = await runChild({ ...childArgs, out, resume: true });
      assert.equal(r.code, 0, r.stderr);
      const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '))!;
      assert.deepEqual(JSON.parse(line.slice(7)).losses, expected);
      assert.deepEqual(listCheckpoints(out).map((x) => x.step), [2, 4, 6]);
      assert.ok(!readdirSync(out).some((n) => n.startsWith('.tmp-')));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }
});

test('the recipe\'s options are checked: LoRA settings need attention transfer, stage 1 must leave a stage 2, a teacher must be linearized first', async () => {
  const out = tmp('errors');
  try {
    const full = { recipe: 'full' as const, transferSteps: undefined, loraRank: undefined, loraAlpha: undefined };
    await assert.rejects(train(base(join(out, 'a'), { ...full, loraRank: 4 })), /loraRank is for recipe "attention-transfer"/);
    await assert.rejects(train(base(join(out, 'b'), { transferSteps: 6 })), /transferSteps 6 leaves no step for stage 2/);
    await assert.rejects(train(base(join(out, 'c'), { loraAlpha: 0 })), /loraAlpha must be > 0, got 0/);
    await assert.rejects(train(base(join(out, 'd'), { loraTargets: 'q_proj,kernel_q' })), /loraTargets must be a comma-separated list of distinct names from q_proj/);
    await assert.rejects(train(base(join(out, 'e'), { trainOnly: 'kernels' })), /recipe "attention-transfer" sets what trains when/);
    await assert.rejects(train(base(join(out, 'f'), { init: tinyConfig() })), /recipe "attention-transfer" needs a SUPRA model, but LlamaForCausalLM has no kernel parameters \(use --linearize\)/);
    // the default stage 1 is a quarter of the budget
    const r = await train(base(join(out, 'g'), { transferSteps: undefined, steps: 8 }));
    assert.equal(r.settings.transferSteps, 2);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('supra merge refuses an adapter that does not fit the model, naming the file and the problem', async () => {
  const out = tmp('merge');
  try {
    await train(base(join(out, 'run')));
    const model = join(out, 'run', 'checkpoint-6');
    const good = join(out, 'run', 'adapter');
    const variant = (name: string, edit: (config: Record<string, unknown>, tensors: Map<string, { shape: number[]; data: Float32Array }>) => void): string => {
      const dir = join(out, name);
      mkdirSync(dir);
      const config = JSON.parse(readFileSync(join(good, ADAPTER_CONFIG_FILE), 'utf8'));
      const tensors = new Map([...readSafetensors(join(good, ADAPTER_WEIGHTS_FILE))].map(([n, t]) => [n, { shape: t.shape, data: t.data as Float32Array }]));
      edit(config, tensors);
      writeFileSync(join(dir, ADAPTER_CONFIG_FILE), JSON.stringify(config));
      writeSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), tensors);
      return dir;
    };
    const refused = (adapter: string, message: RegExp, modelDir = model) => {
      const dest = join(out, `out-${Math.random().toString(36).slice(2)}`);
      assert.throws(() => mergeAdapterFolder(modelDir, adapter, dest), message);
      assert.ok(!existsSync(dest), 'nothing written');
    };
    const lB = 'base_model.model.model.layers.1.self_attn.o_proj.lora_B.weight';
    refused(variant('missing', (_, t) => t.delete(lB)), /adapter_model\.safetensors: missing tensor model\.layers\.1\.self_attn\.o_proj\.lora_B\.weight/);
    refused(variant('rank', (c) => (c.r = 8)), /adapter_model\.safetensors: tensor model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight has shape \[4, 32\], the config expects \[8, 32\]/);
    refused(variant('unknown-target', (c) => (c.target_modules = ['q_proj', 'qkv_proj'])), /adapter_config\.json: unknown target module "qkv_proj"/);
    refused(variant('stray', (c) => (c.target_modules = ['q_proj', 'k_proj', 'v_proj'])), /4 tensors this model has no place for: model\.layers\.0\.self_attn\.o_proj\.lora_A\.weight.*the adapter targets q_proj, k_proj, v_proj at rank 4/);
    refused(variant('kernel-shape', (_, t) => t.set('base_model.model.model.layers.0.self_attn.kernel_q.bias', { shape: [7], data: new Float32Array(7) })), /tensor model\.layers\.0\.self_attn\.kernel_q\.bias has shape \[7\], the model's is \[32\]/);
    refused(variant('not-lora', (c) => (c.peft_type = 'PREFIX_TUNING')), /peft_type is "PREFIX_TUNING", expected "LORA"/);
    refused(join(out, 'run', 'final'), /not a LoRA adapter folder \(no adapter_config\.json\)/);
    // a teacher has no kernels for the adapter's modules_to_save
    await train({ init: tinyConfig(), data: data(), out: join(out, 'teacher'), steps: 1, batchSize: 2, evalSequences: 0, quiet: true });
    refused(good, /tensors this model has no place for: model\.layers\.0\.self_attn\.kernel_q\.weight/, join(out, 'teacher', 'final'));
    // the output folder must be new or empty
    mkdirSync(join(out, 'full'));
    writeFileSync(join(out, 'full', 'x'), '');
    assert.throws(() => mergeAdapterFolder(model, good, join(out, 'full')), /already exists and is not empty/);
    // the command line names what is missing
    const r = spawnSync(process.execPath, [cli, 'merge', '--model', model, '--out', join(out, 'o')], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /merge needs --adapter <dir>/);
    // and the merged model computes what the adapted one did
    const ok = mergeAdapterFolder(model, good, join(out, 'ok'));
    assert.equal(ok.merged, 8);
    const m = loadDecoder(join(out, 'ok')).model;
    const f = loadDecoder(join(out, 'run', 'final')).model;
    const ids = Array.from({ length: 16 }, (_, i) => (i * 7) % 32);
    const a = Float32Array.from(m.forward(ids, 1, 16));
    assert.ok(maxAbsDiff(a, f.forward(ids, 1, 16)) === 0 && maxAbs(a) > 0);
    m.free();
    f.free();
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
