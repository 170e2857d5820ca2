// Where a model to train or evaluate comes from: a folder, a model already in memory, a random
// initialisation of a config, optionally linearized first; or a checkpoint's weights. The trainer and the
// study build their models here, so model construction lives with the models, not with their users.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { Mt19937 } from '../core/random.js';
import { openCheckpoint } from '../io/checkpoint.js';
import { loadConfig, parseConfig, type ModelConfig } from '../io/config.js';
import { loadDecoder } from './auto.js';
import { DecoderLM } from './decoder.js';
import { initSupraParams, linearize, type LinearizeOptions } from './linearize.js';

/**
 * A model with random weights, as Hugging Face initialises Llama (_init_weights): every linear and
 * embedding weight N(0, initializer_range²) (config.initializer_range, default 0.02), biases 0, RMSNorm
 * gains 1; the draws come from Mt19937(seed) parameter by parameter in declaration order. SUPRA kernels
 * are initialised as linearize does (initSupraParams: nn.Linear's U(±1/√fan_in), qk-norm gains 1) with
 * the same seed.
 */
export function initRandom(config: ModelConfig, seed: number): DecoderLM {
  const std = typeof config.raw.initializer_range === 'number' ? config.raw.initializer_range : 0.02;
  if (!(std > 0)) throw new Error(`supra: config: initializer_range must be positive, got ${config.raw.initializer_range}`);
  const model = new DecoderLM(config);
  const kernels = new Map(config.supra ? initSupraParams(config, { seed }).map((t) => [t.name, t.data]) : []);
  const rng = new Mt19937(seed);
  for (const p of model.params()) {
    const k = kernels.get(p.name);
    if (k) p.data.set(k);
    else if (/norm\.weight$/.test(p.name)) p.data.fill(1);
    else if (/\.bias$/.test(p.name)) p.data.fill(0);
    else for (let i = 0; i < p.data.length; i++) p.data[i] = rng.normal() * std;
  }
  return model;
}

/** A config.json path, or a folder holding one. */
export function loadConfigFile(path: string): ModelConfig {
  if (!existsSync(path)) throw new Error(`supra: ${path}: not found (expected a config.json or a folder holding one)`);
  if (statSync(path).isDirectory()) return loadConfig(path);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`supra: ${path}: not valid JSON (${(e as Error).message})`);
  }
  return parseConfig(raw as Record<string, unknown>, path);
}

/** What to build: exactly one of `model` and `init` (the caller checks), optionally linearized. */
export interface ModelSpec {
  /** A teacher or SUPRA folder, or a DecoderLM in memory (used as it is; the caller keeps ownership). */
  model?: string | DecoderLM;
  /** A random initialisation of this config (a config.json path or folder, or its parsed object). */
  init?: string | Record<string, unknown>;
  /** Linearize `model` first (true, or linearize's options); the kernels use the seed. */
  linearize?: boolean | LinearizeOptions;
}

export interface BuiltModel {
  model: DecoderLM;
  /** Whether the caller must free it (false only for an in-memory model used as it is). */
  owned: boolean;
  /** Where it came from, for the record: the folder, "init:<config>", "init", "memory", "linearize:<…>". */
  source: string;
}

/** Build the model a spec names; `seed` draws a random initialisation and linearize's kernels. */
export function buildModel(spec: ModelSpec, seed: number): BuiltModel {
  if (spec.init !== undefined) {
    const config = typeof spec.init === 'string' ? loadConfigFile(spec.init) : parseConfig(spec.init, 'init config');
    return { model: initRandom(config, seed), owned: true, source: typeof spec.init === 'string' ? `init:${resolve(spec.init)}` : 'init' };
  }
  let built: BuiltModel =
    typeof spec.model === 'string'
      ? { model: loadDecoder(spec.model).model, owned: true, source: resolve(spec.model) }
      : { model: spec.model!, owned: false, source: 'memory' };
  if (spec.linearize) {
    const lin = linearize(built.model, { ...(typeof spec.linearize === 'object' ? spec.linearize : {}), seed });
    if (built.owned) built.model.free();
    built = { model: lin, owned: true, source: `linearize:${built.source}` };
  }
  return built;
}

/**
 * A checkpoint folder's weights: loaded into `into` when given (a model in memory keeps its identity and
 * its owner), else as a new model that must match the folder exactly (strict).
 */
export function modelFromCheckpoint(dir: string, into?: DecoderLM): { model: DecoderLM; owned: boolean } {
  if (into) {
    const ckpt = openCheckpoint(dir);
    try {
      into.store.load(ckpt, dir);
    } finally {
      ckpt.close();
    }
    return { model: into, owned: false };
  }
  return { model: loadDecoder(dir, { strict: true }).model, owned: true };
}
