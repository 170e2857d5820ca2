// The mixer seam: a mixer registered from a file of its own (helpers/sum_mixer.ts, SUPRA with the 'sum'
// normalization as the architecture SupraSumForCausalLM) is reachable from a model folder and goes through
// every path above models/ (forward, generate, cloned states as the probes use them, snapshots, the
// serve engine's prefill, the attention analysis) with the numbers of the built-in SupraForCausalLM
// folder of the same weights and settings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AutoModelForCausalLM } from '../src/api.js';
import { supraAttention } from '../src/eval/analyze.js';
import { documentNll } from '../src/eval/perplexity.js';
import { candidateLogLikelihoods } from '../src/eval/probes.js';
import { generate, generateFromState } from '../src/generate/generate.js';
import { loadState, saveState } from '../src/generate/snapshot.js';
import { GenerationState } from '../src/generate/state.js';
import { knownArchitectures, loadConfig } from '../src/io/config.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { loadDecoder } from '../src/models/auto.js';
import type { DecoderLM } from '../src/models/decoder.js';
import { linearizeFolder } from '../src/models/linearize.js';
import { Engine, type TokenLogprob } from '../src/serve/engine.js';
import { gqaDir } from './helpers/fixture.js';
import { freshDirs, tempRoot } from './helpers/tmp.js';

const fresh = freshDirs(tempRoot('supra-mixer-registry-'));
const prompt = [3, 17, 42, 99, 5, 200, 7, 64, 1, 128, 33, 250];

/** The built-in 'sum' SUPRA folder, and the same weights in a folder naming the registered architecture. */
function folders(): { builtinDir: string; variantDir: string } {
  const builtinDir = join(fresh(), 'builtin');
  linearizeFolder(join(gqaDir, 'teacher'), builtinDir, { seed: 5, normalization: 'sum' });
  const variantDir = fresh();
  copyFileSync(join(builtinDir, 'model.safetensors'), join(variantDir, 'model.safetensors'));
  const config = JSON.parse(readFileSync(join(builtinDir, 'config.json'), 'utf8')) as Record<string, unknown>;
  delete config.supra;
  writeFileSync(join(variantDir, 'config.json'), JSON.stringify({ ...config, architectures: ['SupraSumForCausalLM'] }));
  return { builtinDir, variantDir };
}

/** Prompt logprobs and generated tokens of one engine run (prefill in pieces of 5 tokens). */
async function engineRun(model: DecoderLM): Promise<Array<TokenLogprob[] | TokenLogprob>> {
  const seen: Array<TokenLogprob[] | TokenLogprob> = [];
  await new Engine(model, { prefillChunk: 5 }).run(
    prompt.concat(prompt),
    { promptLogprobs: 2, logprobs: 2, stopTokenIds: [], maxTokens: 6, temperature: 0.9, topP: 1, topK: 0, repetitionPenalty: 1, seed: 3 },
    { onPrompt: (entries) => void seen.push(entries), onToken: (t) => (seen.push(t), true) },
    new AbortController().signal,
  );
  return seen;
}

test('a registered mixer is loaded from its model folder and matches the built-in model on every path', async () => {
  const { builtinDir, variantDir } = folders();
  // unregistered: refused as any unknown architecture, naming config.json and what supra reads
  assert.throws(() => loadConfig(variantDir), new RegExp(
    `${join(variantDir, 'config.json').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: unknown architecture "SupraSumForCausalLM"; ` +
      'supra reads LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, SupraForCausalLM$'));
  await import('./helpers/sum_mixer.js');
  assert.deepEqual(knownArchitectures().slice(-2), ['SupraForCausalLM', 'SupraSumForCausalLM']);

  const builtin = loadDecoder(builtinDir).model;
  const variant = loadDecoder(variantDir, { strict: true }).model;
  assert.equal(variant.config.architecture, 'SupraSumForCausalLM');
  assert.equal(variant.config.supra, null, 'a registered architecture has no "supra" block');
  // what a model is (recurrent: no context limit, state snapshots) comes from its mixers, not its config
  assert.equal(variant.recurrent, true);
  const long = Array.from({ length: variant.config.max_position_embeddings + 100 }, (_, i) => prompt[i % prompt.length]!);
  assert.deepEqual(documentNll(variant, long), documentNll(builtin, long), 'scored recurrently, as the built-in SUPRA model');

  // forward through the public API
  const ids = [prompt, prompt.slice().reverse()];
  const lmB = await AutoModelForCausalLM.from_pretrained(builtinDir);
  const lmV = await AutoModelForCausalLM.from_pretrained(variantDir);
  const [fb, fv] = [await lmB.forward({ input_ids: ids }), await lmV.forward({ input_ids: ids })];
  assert.deepEqual(Array.from(fv.logits.data as Float32Array), Array.from(fb.logits.data as Float32Array));
  lmB.dispose();
  lmV.dispose();

  // generation (chunked prefill, recurrent steps), seeded sampling
  const opts = { max_new_tokens: 12, do_sample: true, temperature: 1.2, seed: 9 } as const;
  const full = generate(variant, [prompt], opts).sequences[0]!;
  assert.deepEqual(full, generate(builtin, [prompt], opts).sequences[0]);

  // cloned decoding states (the passkey probe's candidates)
  const candidates = [[5, 6, 7], [9], [1, 2]];
  assert.deepEqual(candidateLogLikelihoods(variant, prompt, candidates), candidateLogLikelihoods(builtin, prompt, candidates));

  // snapshot and continue = the uninterrupted run; the stored states are the built-in model's
  const snap = (m: DecoderLM, file: string) => {
    const st = new GenerationState(m, 1);
    generateFromState(st, [prompt], { ...opts, max_new_tokens: 5 });
    saveState(file, m, st);
    st.free();
  };
  const dir = fresh();
  snap(variant, join(dir, 'variant.safetensors'));
  snap(builtin, join(dir, 'builtin.safetensors'));
  const restored = loadState(join(dir, 'variant.safetensors'), variant);
  assert.deepEqual(generateFromState(restored, [[]], { do_sample: true, temperature: 1.2, max_new_tokens: 7 }).sequences[0], full);
  restored.free();
  const [sv, sb] = [readSafetensors(join(dir, 'variant.safetensors')), readSafetensors(join(dir, 'builtin.safetensors'))];
  const stateNames = [...sb.keys()].filter((n) => n.startsWith('state.layer.'));
  assert.ok(stateNames.includes('state.layer.0.normalizer'), 'the denominator states are stored');
  assert.deepEqual([...sv.keys()], [...sb.keys()]);
  for (const n of stateNames) assert.deepEqual(Array.from(sv.get(n)!.data), Array.from(sb.get(n)!.data), n);

  // the serve engine's prefill in pieces, prompt logprobs, then sampled tokens
  assert.deepEqual(await engineRun(variant), await engineRun(builtin));

  // the attention analysis reads the variant's internals through the interface
  assert.deepEqual(supraAttention(variant, prompt), supraAttention(builtin, prompt));
  variant.free();
  builtin.free();
});
