// Text around generation: TextStreamer (whole UTF-8 characters only, prompt skipping, sliding decode),
// stop strings, and `supra generate` end to end on the fixture models with a byte-level tokenizer the
// test writes (256 byte tokens, GPT-2 style: exactly the fixture's vocabulary size).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { AutoModelForCausalLM } from '../src/api.js';
import { TextStreamer } from '../src/generate/streamer.js';
import { generate } from '../src/generate/generate.js';
import { loadDecoder } from '../src/models/auto.js';
import { linearizeFolder } from '../src/models/linearize.js';
import { gqaDir, snapshotFixturesDir } from './helpers/fixture.js';
import { tempRoot } from './helpers/tmp.js';
import { readSafetensors, SafetensorsFile, writeSafetensors } from '../src/io/safetensors.js';
import { generateOptions } from '../src/cli/generate.js';
import { byteTokenizerJson, writeTokenizer } from './helpers/tokenizers.js';

const cli = resolve(dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const tmp = tempRoot('supra-gentext-');

const teacherDir = join(tmp, 'teacher');
mkdirSync(teacherDir);
for (const f of ['config.json', 'model.safetensors']) copyFileSync(join(gqaDir, 'teacher', f), join(teacherDir, f));
writeTokenizer(teacherDir, byteTokenizerJson());
const supraDir = join(tmp, 'supra');
linearizeFolder(teacherDir, supraDir, { seed: 1000 }); // copies the tokenizer; the fixture's SUPRA kernels
const tokenizer = loadTokenizer(teacherDir);

function supra(args: string[], input?: string) {
  // the timeout turns a hang into a failure (signal SIGTERM, status null)
  return spawnSync(process.execPath, [cli, 'generate', ...args], { encoding: 'utf8', input: input ?? '', timeout: 60_000 });
}

test('the byte tokenizer maps UTF-8 bytes to ids and back', () => {
  assert.deepEqual(tokenizer.encode('é€'), [0xc3, 0xa9, 0xe2, 0x82, 0xac]);
  assert.equal(tokenizer.decode([0x68, 0x69, 0x20, 0xc3, 0xa9]), 'hi é');
  assert.equal(tokenizer.decode([0xe2, 0x82]), '\uFFFD', 'a cut character decodes to U+FFFD');
});

test('TextStreamer emits whole UTF-8 characters only, skips the prompt, flushes on end', () => {
  const pieces: string[] = [];
  const s = new TextStreamer(tokenizer, { skip_prompt: true, callback_function: (t) => pieces.push(t) });
  s.put([tokenizer.encode('Prix: ')]);
  assert.deepEqual(pieces, [], 'the prompt is skipped');
  const ids = tokenizer.encode('é€ ok 😀');
  const after: number[] = [];
  for (const id of ids) {
    s.put([[id]]);
    after.push(pieces.length);
  }
  // é = 2 bytes, € = 3, space, o, k, space, 😀 = 4: text comes out only when a character is complete
  assert.deepEqual(after, [0, 1, 1, 1, 2, 3, 4, 5, 6, 6, 6, 6, 7]);
  assert.deepEqual(pieces, ['é', '€', ' ', 'o', 'k', ' ', '😀']);
  // a character cut by the end of generation comes out as U+FFFD at end()
  s.put([[0xe2]]);
  assert.equal(pieces.length, 7);
  s.end();
  assert.deepEqual(pieces.slice(7), ['\uFFFD']);
  // without skip_prompt the prompt is emitted too; a batch of 2 is refused
  const all: string[] = [];
  const s2 = new TextStreamer(tokenizer, { callback_function: (t) => all.push(t) });
  s2.put([tokenizer.encode('a€')]);
  s2.put([[0x62]]);
  s2.end();
  assert.equal(all.join(''), 'a€b');
  assert.throws(() => s2.put([[1], [2]]), /batch size 1/);
});

test('stop strings end generation with the stop string included; the streamer shows the same text', async () => {
  const model = await AutoModelForCausalLM.from_pretrained(supraDir);
  const prompt = tokenizer.encode('The answer is');
  const free = await model.generate({ input_ids: [prompt], max_new_tokens: 24, return_dict_in_generate: true });
  const newIds = free.newTokens[0]!;
  // pick a stop string that occurs in the free-running output: the bytes of tokens 3..4
  const stop = tokenizer.decode(newIds.slice(3, 5));
  const firstAt = (() => {
    for (let n = 1; n <= newIds.length; n++) if (tokenizer.decode(prompt.concat(newIds.slice(0, n))).endsWith(stop)) return n;
    return -1;
  })();
  assert.ok(firstAt > 0 && firstAt <= 5);
  let streamed = '';
  const out = await model.generate({
    input_ids: [prompt], max_new_tokens: 24, stop_strings: [stop], return_dict_in_generate: true,
    streamer: new TextStreamer(tokenizer, { skip_prompt: true, callback_function: (t) => (streamed += t) }),
  });
  assert.deepEqual(out.newTokens[0], newIds.slice(0, firstAt));
  assert.deepEqual(out.finishReasons, ['stop_string']);
  assert.ok(tokenizer.decode(out.sequences[0]!).endsWith(stop));
  assert.equal(streamed, tokenizer.decode(newIds.slice(0, firstAt)));
  // the model folder's tokenizer is found without being passed
  const again = await model.generate({ input_ids: [prompt], max_new_tokens: 24, stop_strings: stop });
  assert.deepEqual(again, out.sequences);
  model.dispose();
});

test('supra generate streams the greedy continuation; prompt file, stdin, snapshots and errors', () => {
  const prompt = 'Once upon a time';
  const ids = tokenizer.encode(prompt);
  const { model } = loadDecoder(supraDir);
  const want = generate(model, [ids], { max_new_tokens: 12 }).newTokens[0]!;
  const wantSampled = generate(model, [ids], { max_new_tokens: 10, do_sample: true, seed: 3, temperature: 1.2 }).newTokens[0]!;
  model.free();
  const wantText = tokenizer.decode(want) + '\n'; // the output ends with a newline

  const r = supra(['--model', supraDir, '--prompt', prompt, '--max-new-tokens', '12']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, wantText);
  const pf = join(tmp, 'prompt.txt');
  writeFileSync(pf, prompt);
  assert.equal(supra(['--model', supraDir, '--prompt-file', pf, '-n', '12']).stdout, wantText);
  const piped = supra(['--model', supraDir, '-n', '12', '--verbose'], prompt);
  assert.equal(piped.stdout, wantText);
  assert.match(piped.stderr, /16 prompt tokens, 12 new tokens/);

  // 5 tokens, snapshot; continue 7 more = the 12-token run. (Random byte tokens are seldom valid UTF-8,
  // and a character cut at the snapshot shows as U+FFFD on both sides, so compare each run's text.)
  const snap = join(tmp, 'cli-snap.safetensors');
  const a = supra(['--model', supraDir, '--prompt', prompt, '-n', '5', '--save-state', snap]);
  assert.equal(a.status, 0, a.stderr);
  assert.ok(existsSync(snap));
  assert.equal(a.stdout, tokenizer.decode(want.slice(0, 5)) + '\n');
  const b = supra(['--model', supraDir, '--load-state', snap, '-n', '7']);
  assert.equal(b.status, 0, b.stderr);
  assert.equal(b.stdout, tokenizer.decode(want.slice(5)) + '\n');
  assert.match(b.stderr, /greedy \(snapshot\), repetition_penalty 1 \(snapshot\)/);
  // sampling with a seed reproduces the library's sample, and continues across a snapshot
  const sampled = supra(['--model', supraDir, '--prompt', prompt, '-n', '10', '--do-sample', '--seed', '3', '--temperature', '1.2']);
  assert.equal(sampled.status, 0, sampled.stderr);
  assert.equal(sampled.stdout, tokenizer.decode(wantSampled) + '\n');
  const s1 = supra(['--model', supraDir, '--prompt', prompt, '-n', '4', '--do-sample', '--seed', '3', '--temperature', '1.2', '--save-state', snap]);
  assert.equal(s1.stdout, tokenizer.decode(wantSampled.slice(0, 4)) + '\n');
  const s2 = supra(['--model', supraDir, '--load-state', snap, '-n', '6', '--do-sample', '--temperature', '1.2']);
  assert.equal(s2.status, 0, s2.stderr);
  assert.equal(s2.stdout, tokenizer.decode(wantSampled.slice(4)) + '\n');
  assert.match(s2.stderr, /sampling \(--do-sample\), temperature 1\.2 \(--temperature\), top_k 50 \(snapshot\)/);

  // errors: a snapshot for another model, a teacher with --save-state, no model, no tokenizer, empty prompt
  const other = join(tmp, 'other');
  linearizeFolder(teacherDir, other, { seed: 2 });
  const wrong = supra(['--model', other, '--load-state', snap, '-n', '2']);
  assert.equal(wrong.status, 1);
  assert.match(wrong.stderr, /cli-snap\.safetensors: the snapshot is from another model/);
  const teach = supra(['--model', teacherDir, '--prompt', 'x', '--save-state', snap]);
  assert.equal(teach.status, 1);
  assert.match(teach.stderr, /--save-state: .* is a LlamaForCausalLM \(softmax attention\); state snapshots are for SUPRA models/);
  const tg = supra(['--model', teacherDir, '--prompt', prompt, '-n', '3']);
  assert.equal(tg.status, 0, tg.stderr);
  const noModel = supra(['--prompt', 'x']);
  assert.equal(noModel.status, 2);
  assert.match(noModel.stderr, /--model/);
  const missing = supra(['--model', join(tmp, 'nope'), '--prompt', 'x']);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /nope: not found/);
  const noTok = supra(['--model', join(gqaDir, 'teacher'), '--prompt', 'x']);
  assert.equal(noTok.status, 1);
  assert.match(noTok.stderr, /tokenizer\.json: not found/);
  const empty = supra(['--model', supraDir]);
  assert.equal(empty.status, 2);
  assert.match(empty.stderr, /prompt is empty/);
  const badOpt = supra(['--model', supraDir, '--prompt', 'x', '--top-p', '2']);
  assert.equal(badOpt.status, 2);
  assert.match(badOpt.stderr, /--top-p must be in \(0, 1\]/);
  assert.ok(readFileSync(snap).length > 0);
});

test('supra generate --load-state continues with the saved sampling settings unless overridden (--greedy, one flag); one stderr line says where each came from', () => {
  const prompt = 'Once upon a time';
  const ids = tokenizer.encode(prompt);
  const sampling = { do_sample: true, temperature: 1.2, top_p: 0.9, repetition_penalty: 1.05 };
  const { model } = loadDecoder(supraDir);
  const wantSampled = generate(model, [ids], { ...sampling, max_new_tokens: 10, seed: 3 }).newTokens[0]!;
  const head = wantSampled.slice(0, 4);
  const wantGreedy = generate(model, [ids.concat(head)], { max_new_tokens: 6, repetition_penalty: 1.05 }).newTokens[0]!;
  model.free();
  const snap = join(tmp, 'settings.safetensors');
  const s1 = supra(['--model', supraDir, '--prompt', prompt, '-n', '4', '--do-sample', '--seed', '3', '--temperature', '1.2', '--top-p', '0.9', '--repetition-penalty', '1.05', '--save-state', snap]);
  assert.equal(s1.status, 0, s1.stderr);
  assert.equal(s1.stderr, '', 'a fresh run without --verbose says nothing on stderr');
  // nothing repeated: the snapshot's settings and generator go on, as if uninterrupted
  const s2 = supra(['--model', supraDir, '--load-state', snap, '-n', '6']);
  assert.equal(s2.status, 0, s2.stderr);
  assert.equal(s2.stdout, tokenizer.decode(wantSampled.slice(4)) + '\n');
  assert.equal(
    s2.stderr,
    'supra generate: sampling (snapshot), temperature 1.2 (snapshot), top_k 50 (snapshot), top_p 0.9 (snapshot), repetition_penalty 1.05 (snapshot), seed 3 after 4 draws (snapshot)\n',
  );
  // --greedy switches to greedy; the rest still comes from the snapshot
  const g = supra(['--model', supraDir, '--load-state', snap, '-n', '6', '--greedy']);
  assert.equal(g.status, 0, g.stderr);
  assert.equal(g.stdout, tokenizer.decode(wantGreedy) + '\n');
  assert.equal(g.stderr, 'supra generate: greedy (--greedy), repetition_penalty 1.05 (snapshot)\n');
  // one flag overrides its setting only
  const t = supra(['--model', supraDir, '--load-state', snap, '-n', '6', '--temperature', '0.5', '--seed', '9']);
  assert.equal(t.status, 0, t.stderr);
  assert.match(t.stderr, /^supra generate: sampling \(snapshot\), temperature 0\.5 \(--temperature\), top_k 50 \(snapshot\), top_p 0\.9 \(snapshot\), repetition_penalty 1\.05 \(snapshot\), seed 9 \(--seed\)\n$/);
  const both = supra(['--model', supraDir, '--load-state', snap, '--greedy', '--do-sample']);
  assert.equal(both.status, 2);
  assert.match(both.stderr, /either --do-sample or --greedy/);
  // a supra-state/1 snapshot has no settings: the defaults, and the line says so
  const v1 = supra(['--model', supraDir, '--load-state', join(snapshotFixturesDir, 'v1-sampled.safetensors'), '-n', '1']);
  assert.equal(v1.status, 0, v1.stderr);
  assert.equal(v1.stderr, 'supra generate: greedy (default; the snapshot holds no settings), repetition_penalty 1 (default; the snapshot holds no settings)\n');
});

test('supra generate refuses an edited snapshot header at once (a huge draw count does not make it spin)', () => {
  const snap = join(tmp, 'tamper.safetensors');
  const s1 = supra(['--model', supraDir, '--prompt', 'Once', '-n', '8', '--do-sample', '--seed', '3', '--save-state', snap]);
  assert.equal(s1.status, 0, s1.stderr);
  const f = SafetensorsFile.open(snap);
  const metadata = { ...f.metadata };
  f.close();
  assert.equal(metadata.rng, '3:8');
  const tensors = [...readSafetensors(snap)].map(([name, v]) => ({ name, shape: v.shape, data: v.data as Float32Array | Int32Array }));
  const edited = join(tmp, 'tampered.safetensors');
  writeSafetensors(edited, tensors, { ...metadata, rng: '3:1000000000000000' });
  const t0 = performance.now();
  const r = supra(['--model', supraDir, '--load-state', edited, '-n', '4', '--do-sample']);
  assert.equal(r.signal, null, 'it hung');
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /tampered\.safetensors: the snapshot is damaged or was edited \(its header or content does not match its checksum\)/);
  assert.equal(r.stdout, '');
  assert.ok(performance.now() - t0 < 30_000);
});

test('supra generate --help and the README list every generate option', () => {
  const help = spawnSync(process.execPath, [cli, 'generate', '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### `supra generate`'), readme.indexOf('### `supra serve`'));
  assert.ok(section.length > 0);
  for (const [name, o] of Object.entries(generateOptions)) {
    assert.match(help.stdout, new RegExp(`--${name}\\b`), `--help lacks --${name}`);
    if ('short' in o) assert.match(help.stdout, new RegExp(`--${name}, -${o.short}\\b`));
    assert.ok(section.includes(`\`--${name}`), `README's supra generate section lacks --${name}`);
  }
  assert.match(help.stdout, /--backend wasm\|native/);
});
