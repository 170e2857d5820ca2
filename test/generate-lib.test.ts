// Generation on the fixture models: greedy tokens of the teacher (KV cache) and of the SUPRA model
// (chunked prefill, recurrent steps), seeded sampling, top-k = 1, the repetition penalty, and state
// snapshots (continue = uninterrupted; refused for another model or a damaged file).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as safetensorsModule from '../src/io/safetensors.js';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.js';
import { loadDecoder } from '../src/models/auto.js';
import { linearize } from '../src/models/linearize.js';
import { AutoModelForCausalLM } from '../src/api.js';
import { generate, generateFromState } from '../src/generate/generate.js';
import { GenerationState } from '../src/generate/state.js';
import { applyRepetitionPenalty, argmax, resolveSampling, sampleToken, SeededRandom } from '../src/generate/sampling.js';
import { loadState, saveState, snapshotChecksum, STATE_FORMAT } from '../src/generate/snapshot.js';
import type { DecoderLM } from '../src/models/decoder.js';
import { gqaDir, snapshotFixturesDir } from './helpers/fixture.js';
import { tempRoot } from './helpers/tmp.js';

const expected = readSafetensors(join(gqaDir, 'expected.safetensors'));
const inputs = JSON.parse(readFileSync(join(gqaDir, 'inputs.json'), 'utf8')) as { prompt_for_greedy: number[][]; greedy_new_tokens: number };
const prompt = inputs.prompt_for_greedy[0]!;
const N = inputs.greedy_new_tokens;
const teacherDir = join(gqaDir, 'teacher');
const tmp = tempRoot('supra-gen-');

function teacher(): DecoderLM {
  return loadDecoder(teacherDir).model;
}

/** The fixture's SUPRA model: linearizing with seed 1000 reproduces supra_kernels.safetensors bit for bit. */
function supraModel(): DecoderLM {
  const t = teacher();
  const m = linearize(t, { seed: 1000 });
  t.free();
  return m;
}

const ref = (name: string) => Array.from(expected.get(name)!.data);

test('greedy generation gives the fixture tokens: teacher (KV cache) and SUPRA (chunked prefill + recurrence)', async () => {
  const t = await AutoModelForCausalLM.from_pretrained(teacherDir);
  const out = await t.generate({ input_ids: [prompt], max_new_tokens: N });
  assert.equal(out.length, 1);
  assert.deepEqual(out[0]!.slice(0, prompt.length), prompt, 'the result starts with the prompt');
  assert.deepEqual(out[0]!.slice(prompt.length), ref('teacher.greedy_tokens'));
  // top_k = 1 sampling is greedy, whatever the seed and temperature
  const k1 = await t.generate({ input_ids: [prompt], max_new_tokens: N, do_sample: true, top_k: 1, temperature: 0.7, seed: 5 });
  assert.deepEqual(k1, out);
  t.dispose();

  const s = supraModel();
  const res = generate(s, [prompt], { max_new_tokens: N });
  assert.deepEqual(res.newTokens[0], ref('supra.greedy_tokens'));
  assert.deepEqual(res.finishReasons, ['length']);
  s.free();
});

test('seeded sampling: the same seed reproduces a sample, another seed differs; a batch of two decodes as one row; eos', () => {
  const s = supraModel();
  const opts = { max_new_tokens: 24, do_sample: true, temperature: 1.5, top_k: 0 } as const;
  const a = generate(s, [prompt], { ...opts, seed: 11 }).newTokens[0]!;
  const b = generate(s, [prompt], { ...opts, seed: 11 }).newTokens[0]!;
  const c = generate(s, [prompt], { ...opts, seed: 12 }).newTokens[0]!;
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.notDeepEqual(a, ref('supra.greedy_tokens').concat(ref('supra.greedy_tokens')).slice(0, 24), 'sampling at T = 1.5 is not greedy');
  // two rows, one prompt: greedy rows agree with the single-row run
  const two = generate(s, [prompt, prompt], { max_new_tokens: 6 });
  assert.deepEqual(two.newTokens[0], ref('supra.greedy_tokens').slice(0, 6));
  assert.deepEqual(two.newTokens[1], two.newTokens[0]);
  // an eos id stops the row and stays in its output
  const eos = ref('supra.greedy_tokens')[2]!;
  const stopped = generate(s, [prompt], { max_new_tokens: N, eos_token_id: eos });
  assert.deepEqual(stopped.newTokens[0], ref('supra.greedy_tokens').slice(0, 3));
  assert.deepEqual(stopped.finishReasons, ['eos']);
  s.free();
});

test('sampling helpers: repetition penalty as HF, top-k / top-p masks, temperature', () => {
  // HF: logits of tokens present are divided by the penalty when positive, multiplied when negative
  const logits = Float32Array.from([2, -1, 0.5, -3, 4]);
  applyRepetitionPenalty(logits, [0, 1, 3], 2);
  assert.deepEqual(Array.from(logits), [1, -2, 0.5, -6, 4]);
  applyRepetitionPenalty(logits, [4], 1); // penalty 1 changes nothing
  assert.equal(logits[4], 4);
  // the penalty flips a greedy choice: 4 → 2 after penalising token 4 by 2.5 (4/2.5 = 1.6 < 1.8)
  const l2 = Float32Array.from([0, 0, 1.8, 0, 4]);
  applyRepetitionPenalty(l2, [4], 2.5);
  assert.equal(argmax(l2), 2);

  const sorted = new Float32Array(8);
  const draw = (x: number[], o: Parameters<typeof resolveSampling>[0], seed: number, n = 400) => {
    const rng = new SeededRandom(seed);
    const counts = new Array<number>(x.length).fill(0);
    for (let i = 0; i < n; i++) counts[sampleToken(Float32Array.from(x), resolveSampling({ do_sample: true, ...o }), rng, sorted)]!++;
    return counts;
  };
  const x = [3, 2.9, 1, 0, -1, 2.8];
  // top-k = 2 only ever picks the two largest
  const k2 = draw(x, { top_k: 2 }, 1);
  assert.equal(k2[2]! + k2[3]! + k2[4]! + k2[5]!, 0);
  assert.ok(k2[0]! > 0 && k2[1]! > 0);
  // top-p = 0.5: the top token alone has p ≈ 0.34 < 0.5, the top two ≈ 0.65 ≥ 0.5: exactly those two
  const p5 = draw(x, { top_k: 0, top_p: 0.5 }, 2);
  assert.equal(p5[2]! + p5[3]! + p5[4]! + p5[5]!, 0);
  assert.ok(p5[0]! > 0 && p5[1]! > 0);
  // a tiny temperature is nearly greedy; without limits every token can come up
  assert.deepEqual(draw(x, { top_k: 0, temperature: 0.01 }, 3, 50), [50, 0, 0, 0, 0, 0]);
  const all = draw(x, { top_k: 0, temperature: 3 }, 4, 2000);
  assert.ok(all.every((c) => c > 0), `counts ${all}`);
  assert.throws(() => resolveSampling({ temperature: 0 }), /temperature must be a number > 0/);
  assert.throws(() => resolveSampling({ temperature: 1e-320 }), /temperature must be a number > 0 whose inverse is finite, got 1e-320/);
  assert.throws(() => resolveSampling({ top_p: 1.5 }), /top_p must be in \(0, 1\]/);
});

test('sampling finds top-k\'s and top-p\'s cut-offs without sorting the vocabulary: the tokens of a full sort, with ties, -Infinity, temperature, top-p alone and after top-k; a NaN logit refused', () => {
  // the rule written plainly: one ascending sort of a copy gives the k-th largest value and the top-p walk
  const reference = (logits: Float32Array, o: ReturnType<typeof resolveSampling>, rng: SeededRandom): number => {
    const V = logits.length;
    if (o.temperature !== 1) for (let i = 0; i < V; i++) logits[i] = logits[i]! * (1 / o.temperature);
    const sorted = Float32Array.from(logits).sort();
    let threshold = o.topK > 0 && o.topK < V ? sorted[V - o.topK]! : -Infinity;
    let max = -Infinity;
    for (const x of logits) if (x > max) max = x;
    const kept = (x: number) => x >= threshold;
    if (o.topP < 1) {
      let total = 0, mass = 0;
      for (const x of logits) if (kept(x)) total += Math.exp(x - max);
      for (let j = V - 1; j >= 0 && !(sorted[j]! < threshold); j--) {
        mass += Math.exp(sorted[j]! - max) / total;
        if (mass >= o.topP) {
          threshold = Math.max(threshold, sorted[j]!);
          break;
        }
      }
    }
    let total = 0;
    for (const x of logits) if (kept(x)) total += Math.exp(x - max);
    const target = rng.next() * total;
    let acc = 0, last = -1;
    for (let i = 0; i < V; i++) {
      if (!kept(logits[i]!)) continue;
      acc += Math.exp(logits[i]! - max);
      last = i;
      if (acc > target) return i;
    }
    return last;
  };
  const values = new SeededRandom(11);
  for (const V of [7, 1000, 49152]) {
    for (const o of [{ top_k: 50 }, { top_k: 1 }, { top_k: 3, top_p: 0.8 }, { top_k: 0, top_p: 0.9 }, { top_k: 50, top_p: 0.95, temperature: 0.7 }, { top_k: V - 1, top_p: 0.5 }]) {
      const settings = resolveSampling({ do_sample: true, ...o });
      for (let rep = 0; rep < 12; rep++) {
        const step = rep % 3 === 0 ? 0.25 : 0.001; // coarse values: many ties, some at the cut-off
        const logits = Float32Array.from({ length: V }, () => Math.round((values.next() * 20 - 10) / step) * step);
        if (rep % 4 === 1) logits[3 % V] = -Infinity;
        const want = reference(Float32Array.from(logits), settings, new SeededRandom(rep));
        const got = sampleToken(Float32Array.from(logits), settings, new SeededRandom(rep), new Float32Array(V));
        assert.equal(got, want, `V ${V}, ${JSON.stringify(o)}, draw ${rep}`);
      }
    }
  }
  const settings = resolveSampling({ do_sample: true });
  assert.throws(() => sampleToken(Float32Array.from([1, NaN, 2]), settings, new SeededRandom(1), new Float32Array(3)), /cannot sample: logit 1 is NaN/);
  assert.throws(() => sampleToken(Float32Array.from([-Infinity, -Infinity]), settings, new SeededRandom(1), new Float32Array(2)), /every logit is -Infinity/);
});

test('repetition penalty in generate changes a repetitive greedy continuation', () => {
  const s = supraModel();
  const plain = generate(s, [prompt], { max_new_tokens: N }).newTokens[0]!;
  // the plain greedy run repeats tokens (107 three times); penalising tokens already present changes it
  assert.ok(new Set(plain).size < plain.length, 'the fixture continuation repeats a token');
  const pen = generate(s, [prompt], { max_new_tokens: N, repetition_penalty: 1.3 }).newTokens[0]!;
  assert.notDeepEqual(pen, plain);
  s.free();
});

test('snapshot and continue gives the tokens of the uninterrupted run (greedy and seeded sampling)', () => {
  const s = supraModel();
  for (const opts of [{}, { do_sample: true, temperature: 1.3, top_p: 0.95, seed: 77, repetition_penalty: 1.1 }]) {
    const full = generate(s, [prompt], { ...opts, max_new_tokens: 20 }).sequences[0]!;
    const first = new GenerationState(s, 1);
    generateFromState(first, [prompt], { ...opts, max_new_tokens: 8 });
    const file = join(tmp, 'snap.safetensors');
    saveState(file, s, first);
    first.free();
    const restored = loadState(file, s);
    assert.equal(restored.length, prompt.length + 8);
    const { seed: _ignored, ...rest } = opts as { seed?: number };
    const cont = generateFromState(restored, [[]], { ...rest, max_new_tokens: 12 }).sequences[0]!;
    assert.deepEqual(cont, full, `continued run differs (${JSON.stringify(opts)})`);
    restored.free();
  }
  // appending a prompt to a loaded context equals feeding it in one go
  const file = join(tmp, 'snap2.safetensors');
  const st = new GenerationState(s, 1);
  generateFromState(st, [prompt.slice(0, 10)], { max_new_tokens: 0 });
  saveState(file, s, st);
  st.free();
  const back = loadState(file, s);
  const cont = generateFromState(back, [prompt.slice(10)], { max_new_tokens: N });
  assert.deepEqual(cont.newTokens[0], ref('supra.greedy_tokens'));
  back.free();
  s.free();
});

test('a snapshot is refused for another model, a teacher, a wrong shape and a damaged file', () => {
  const s = supraModel();
  const file = join(tmp, 'ok.safetensors');
  const st = new GenerationState(s, 1);
  generateFromState(st, [prompt], { max_new_tokens: 2 });
  saveState(file, s, st);
  st.free();
  // another model: other kernels (seed 1), same shapes
  const t = teacher();
  const other = linearize(t, { seed: 1 });
  assert.throws(() => loadState(file, other), new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: the snapshot is from another model`));
  other.free();
  // a teacher has a KV cache: no snapshots, with a clear message
  assert.throws(() => loadState(file, t), /the snapshot is from another model/);
  const ts = new GenerationState(t, 1);
  ts.append([prompt]);
  assert.throws(() => saveState(join(tmp, 't.safetensors'), t, ts), /state snapshots are for SUPRA models/);
  ts.free();
  t.free();
  // the right model but a state of the wrong shape (metadata copied, so only the shape check can catch it)
  const good = readSafetensors(file);
  const { SafetensorsFile } = safetensorsModule;
  const meta = SafetensorsFile.open(file);
  const metadata = { ...meta.metadata };
  meta.close();
  const bad = [...good].map(([name, v]) => ({ name, shape: name === 'state.layer.1' ? [1, 4, 16, 8] : v.shape, data: name === 'state.layer.1' ? (v.data as Float32Array).subarray(0, 512) : v.data }));
  writeSafetensors(join(tmp, 'shape.safetensors'), bad, resigned(metadata, bad));
  assert.throws(() => loadState(join(tmp, 'shape.safetensors'), s), /shape\.safetensors: tensor state\.layer\.1 has shape \[1, 4, 16, 8\], expected \[1, 4, 16, 16\]/);
  // damaged: flip one byte in the data area; truncate; not a snapshot at all
  const bytes = readFileSync(file);
  const flipped = Buffer.from(bytes);
  flipped[flipped.length - 5]! ^= 0x40;
  writeFileSync(join(tmp, 'flip.safetensors'), flipped);
  assert.throws(() => loadState(join(tmp, 'flip.safetensors'), s), /flip\.safetensors: the snapshot is damaged or was edited/);
  writeFileSync(join(tmp, 'cut.safetensors'), bytes.subarray(0, bytes.length - 100));
  assert.throws(() => loadState(join(tmp, 'cut.safetensors'), s), /cut\.safetensors/);
  writeFileSync(join(tmp, 'junk.safetensors'), 'not a safetensors file at all');
  assert.throws(() => loadState(join(tmp, 'junk.safetensors'), s), /junk\.safetensors/);
  assert.throws(() => loadState(join(gqaDir, 'supra_kernels.safetensors'), s), /supra_kernels\.safetensors: not a supra state snapshot/);
  assert.throws(() => loadState(join(tmp, 'missing.safetensors'), s), /missing\.safetensors: not found/);
  s.free();
});

type Tensors = Array<{ name: string; shape: number[]; data: Float32Array | Int32Array }>;

/** A snapshot's metadata and tensors, to write back edited. */
function readSnapshot(file: string): { metadata: Record<string, string>; tensors: Tensors } {
  const f = safetensorsModule.SafetensorsFile.open(file);
  const metadata = { ...f.metadata };
  f.close();
  const tensors = [...readSafetensors(file)].map(([name, v]) => ({ name, shape: v.shape, data: v.data as Float32Array | Int32Array }));
  return { metadata, tensors };
}

/** `metadata` with a content_sha256 that matches `tensors` (a supra-state/2 file that is edited but consistent). */
function resigned(metadata: Record<string, string>, tensors: Tensors): Record<string, string> {
  const sum = snapshotChecksum(metadata, tensors.map((t) => ({
    name: t.name, dtype: t.data instanceof Int32Array ? 'I32' : 'F32', shape: t.shape, bytes: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
  })));
  return { ...metadata, content_sha256: sum };
}

const sampledOptions = { do_sample: true, temperature: 1.3, top_p: 0.95, repetition_penalty: 1.1 };

test('a supra-state/2 snapshot: every header field and tensor is under its checksum; the generator is restored without replaying draws', () => {
  const s = supraModel();
  const full = generate(s, [prompt], { ...sampledOptions, seed: 77, max_new_tokens: 20 }).sequences[0]!;
  const st = new GenerationState(s, 1);
  generateFromState(st, [prompt], { ...sampledOptions, seed: 77, max_new_tokens: 8 });
  const file = join(tmp, 'v2.safetensors');
  saveState(file, s, st);
  st.free();
  const { metadata, tensors } = readSnapshot(file);
  assert.equal(metadata.format, STATE_FORMAT);
  assert.equal(metadata.rng, '77:8');
  assert.deepEqual(JSON.parse(metadata.sampling!), { ...sampledOptions, top_k: 50 });
  assert.ok(tensors.some((t) => t.name === 'rng.mt19937' && t.shape[0] === 625));

  // the settings come back with the state
  const back = loadState(file, s);
  assert.deepEqual(back.sampling, resolveSampling(sampledOptions));
  back.free();

  // an edit of any header field is refused (the case: a huge draw count must not make it spin)
  // (a v2 file relabelled as format 1 fails format 1's check; another format name is "not a snapshot")
  const edits: Record<string, string> = { rng: '77:1000000000000000', format: 'supra-state/1' };
  for (const key of Object.keys(metadata)) {
    if (key === 'content_sha256') continue;
    const edited = join(tmp, `edit-${key}.safetensors`);
    writeSafetensors(edited, tensors, { ...metadata, [key]: edits[key] ?? `${metadata[key]}0` });
    const t0 = performance.now();
    assert.throws(() => loadState(edited, s), /edit-\w+\.safetensors: the snapshot is damaged or was edited \(its (header or )?content does not match its checksum\)/, key);
    assert.ok(performance.now() - t0 < 2000, `refusing an edited ${key} took ${performance.now() - t0} ms`);
  }
  // so is an edited generator state, or an extra tensor
  const words = tensors.find((t) => t.name === 'rng.mt19937')!.data as Int32Array;
  words[3]! ^= 1;
  writeSafetensors(join(tmp, 'edit-mt.safetensors'), tensors, metadata);
  assert.throws(() => loadState(join(tmp, 'edit-mt.safetensors'), s), /edit-mt\.safetensors: the snapshot is damaged or was edited/);
  words[3]! ^= 1;
  writeSafetensors(join(tmp, 'extra.safetensors'), [...tensors, { name: 'extra', shape: [1], data: new Float32Array(1) }], metadata);
  assert.throws(() => loadState(join(tmp, 'extra.safetensors'), s), /extra\.safetensors: the snapshot is damaged or was edited/);

  // restoring does not replay: a consistent file claiming 1e15 draws loads at once and continues exactly
  const huge = join(tmp, 'huge-draws.safetensors');
  writeSafetensors(huge, tensors, resigned({ ...metadata, rng: '77:1000000000000000' }, tensors));
  const t0 = performance.now();
  const restored = loadState(huge, s);
  assert.ok(performance.now() - t0 < 2000, `loading took ${performance.now() - t0} ms`);
  assert.equal(restored.rng!.draws, 1e15);
  const cont = generateFromState(restored, [[]], { ...sampledOptions, max_new_tokens: 12 }).sequences[0]!;
  assert.deepEqual(cont, full);
  restored.free();
  // a generator state no Mt19937 reaches is refused by name
  const zero = tensors.map((t) => (t.name === 'rng.mt19937' ? { ...t, data: new Int32Array(625) } : t));
  writeSafetensors(join(tmp, 'zero-mt.safetensors'), zero, resigned(metadata, zero));
  assert.throws(() => loadState(join(tmp, 'zero-mt.safetensors'), s), /zero-mt\.safetensors: tensor rng\.mt19937 is not a generator state: Mt19937 state is all zero/);
  s.free();
});

test('SeededRandom: getState and a restore continue the same sequence', () => {
  const a = new SeededRandom(5);
  for (let i = 0; i < 1000; i++) a.next();
  const b = new SeededRandom(5, { draws: a.draws, words: a.getState() });
  assert.equal(b.draws, 1000);
  for (let i = 0; i < 700; i++) assert.equal(b.next(), a.next());
  assert.deepEqual(SeededRandom.replay(5, 1700).getState(), a.getState());
  assert.throws(() => new SeededRandom(5, { draws: 0, words: new Uint32Array(10) }), /625 words/);
});

test('a supra-state/1 snapshot still loads and continues; a draw count the context cannot have taken is refused at once', () => {
  const s = supraModel();
  const v1 = join(snapshotFixturesDir, 'v1-sampled.safetensors');
  const full = generate(s, [prompt], { ...sampledOptions, seed: 77, max_new_tokens: 20 }).sequences[0]!;
  const back = loadState(v1, s);
  assert.equal(back.length, prompt.length + 8);
  assert.equal(back.rng!.draws, 8);
  assert.equal(back.sampling, null, 'format 1 did not store the settings');
  assert.deepEqual(generateFromState(back, [[]], { ...sampledOptions, max_new_tokens: 12 }).sequences[0], full);
  // its checksum covers the tensors only: an edited draw count is caught by the bound (24 tokens: ≤ 24 draws)
  const { metadata, tensors } = readSnapshot(v1);
  for (const [rng, ok] of [['77:24', true], ['77:25', false], ['77:1000000000000000', false], ['77:x', false]] as const) {
    const edited = join(tmp, 'v1-edited.safetensors');
    writeSafetensors(edited, tensors, { ...metadata, rng });
    const t0 = performance.now();
    if (ok) loadState(edited, s).free();
    else assert.throws(() => loadState(edited, s), /v1-edited\.safetensors: bad metadata rng = /, rng);
    assert.ok(performance.now() - t0 < 2000, `${rng}: ${performance.now() - t0} ms`);
  }
  s.free();
});
