import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gqaDir, maxAbsDiff } from './helpers/fixture.js';
import { AutoModelForCausalLM } from '../src/api.js';
import { readSafetensors } from '../src/io/safetensors.js';

const cli = resolve(dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');

function supra(...args: string[]) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
}

test('supra linearize writes a folder that from_pretrained loads, with the reference SUPRA logits', async () => {
  const out = mkdtempSync(join(tmpdir(), 'supra-lin-'));
  try {
    const r = supra('linearize', join(gqaDir, 'teacher'), '--out', out, '--seed', '1000');
    assert.equal(r.status, 0, r.stderr);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    assert.deepEqual(config.architectures, ['SupraForCausalLM']);
    assert.equal(config.model_type, 'supra');
    assert.deepEqual(config.supra, { qk_norm: 'none', qk_norm_eps: 1e-5, decay: 'lightning', group_norm_eps: 1e-5, normalization: 'group_norm', normalizer_eps: 1e-6 });
    const kernels = readSafetensors(join(gqaDir, 'supra_kernels.safetensors'));
    const saved = readSafetensors(join(out, 'model.safetensors'));
    for (const [name, t] of kernels) assert.deepEqual(Array.from(saved.get(name)!.data), Array.from(t.data), name);

    const expected = readSafetensors(join(gqaDir, 'expected.safetensors'));
    const ids = expected.get('input_ids')!;
    const model = await AutoModelForCausalLM.from_pretrained(out);
    const { logits } = await model.forward({ input_ids: { data: ids.data, dims: ids.shape } });
    assert.deepEqual(logits.dims, [2, 33, 256]);
    assert.ok(maxAbsDiff(logits.data, expected.get('supra.logits.chunked8')!.data) < 1e-4);
    model.dispose();
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('supra convert round-trips through the open_lm layout as a PyTorch .bin', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'supra-conv-'));
  try {
    const lin = join(tmp, 'lin');
    assert.equal(supra('linearize', join(gqaDir, 'teacher'), '--out', lin, '--seed', '7').status, 0);
    const openlm = join(tmp, 'openlm');
    const r1 = supra('convert', lin, '--out', openlm, '--format', 'open_lm', '--container', 'pytorch');
    assert.equal(r1.status, 0, r1.stderr);
    assert.ok(existsSync(join(openlm, 'pytorch_model.bin')));
    const back = join(tmp, 'back');
    const r2 = supra('convert', openlm, '--out', back, '--format', 'supra');
    assert.equal(r2.status, 0, r2.stderr);
    const a = readSafetensors(join(lin, 'model.safetensors'));
    const b = readSafetensors(join(back, 'model.safetensors'));
    assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
    for (const [name, t] of a) assert.deepEqual(Array.from(b.get(name)!.data), Array.from(t.data), name);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('bad input gets a clear message and a non-zero exit', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'supra-bad-'));
  try {
    const missing = supra('linearize', join(tmp, 'nope'), '--out', join(tmp, 'o'));
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /nope: not found/);
    writeFileSync(join(tmp, 'config.json'), '{"architectures": ["GPT2LMHeadModel"]}');
    writeFileSync(join(tmp, 'model.safetensors'), Buffer.from([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]));
    const unknown = supra('linearize', tmp, '--out', join(tmp, 'o'));
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /config\.json.*unknown architecture "GPT2LMHeadModel"/);
    const usage = supra('linearize', join(gqaDir, 'teacher'));
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /--out/);
    const badOpt = supra('linearize', join(gqaDir, 'teacher'), '--out', join(tmp, 'o'), '--decay', 'fast');
    assert.equal(badOpt.status, 2);
    assert.match(badOpt.stderr, /--decay must be one of lightning, retnet, none/);
    assert.equal(supra('frobnicate').status, 2);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('supra --help lines up every command, and each command help names the --backend option', () => {
  const top = supra('--help');
  assert.equal(top.status, 0);
  const commandLines = top.stdout.split('\n').filter((line) => /^ {2}[a-z]+ {2,}\S/.test(line));
  assert.ok(commandLines.length >= 12, top.stdout);
  const columns = new Set(commandLines.map((line) => line.search(/(?<=^ {2}[a-z]+ +)\S/)));
  assert.equal(columns.size, 1, `summaries start in different columns:\n${commandLines.join('\n')}`);
  for (const name of ['demo', 'train', 'experiments', 'serve']) {
    const help = supra(name, '--help');
    assert.equal(help.status, 0);
    assert.match(help.stdout, /--backend wasm\|native/, `${name} --help`);
  }
});

test('every command lists every option it parses in its --help, and the README copies of --help are current', async () => {
  const { commands } = await import('../src/cli/commands.js');
  const readme = readFileSync(resolve(dirname(cli), '../../../README.md'), 'utf8');
  for (const [name, load] of Object.entries(commands)) {
    const command = await load();
    const help = supra(name, '--help');
    assert.equal(help.status, 0, `${name} --help`);
    for (const option of Object.keys(command.options)) {
      assert.match(help.stdout, new RegExp(`--${option}(?![\\w-])`), `supra ${name} --help lacks --${option}`);
    }
    const copy = new RegExp('^`supra ' + name + ' --help`[^\\n]*\\n\\n```text\\n([\\s\\S]*?)\\n```', 'm').exec(readme);
    if (copy) assert.equal(copy[1], command.usage, `README's copy of supra ${name} --help is stale: run node scripts/readme-usage.mjs`);
  }
});
