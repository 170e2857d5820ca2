// LoRA adapters on a DecoderLM (layers/lora.ts holds the adapter's arithmetic): attaching them to the
// model's linear layers by target name, their own parameter store (so the model's parameters, its folder
// and its checkpoints stay the plain model's), merging them into the weights, and the PEFT-style adapter
// folder users know:
//
//   adapter_config.json          {"peft_type": "LORA", "r", "lora_alpha", "target_modules", "modules_to_save", …}
//   adapter_model.safetensors    base_model.model.<module>.lora_A.weight [r, in], ….lora_B.weight [out, r],
//                                and the parameters trained in full (modules_to_save: the SUPRA kernels)
//                                under base_model.model.<their name>
//
// `supra merge` (mergeAdapterFolder) turns a model folder plus such an adapter into a plain model folder:
// W += (alpha / r)·B·A for every target, the modules_to_save tensors replacing the model's.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFolderAtomic, writeJsonAtomic } from '../io/atomic.js';
import { saveCheckpoint } from '../io/checkpoint.js';
import { saveConfig } from '../io/config.js';
import { readSafetensors, writeSafetensors, type StoredTensor } from '../io/safetensors.js';
import { Mt19937 } from '../core/random.js';
import type { Linear } from '../layers/linear.js';
import { LoraAdapter, mergeLoraInto } from '../layers/lora.js';
import { mapSource, ParamStore } from '../layers/params.js';
import { AttentionProjections } from '../layers/projections.js';
import type { Param } from '../layers/types.js';
import { Workspace } from '../layers/workspace.js';
import { loadDecoder } from './auto.js';
import { copyTokenizerFiles } from './convert.js';
import { FOLDED_REASON, type DecoderLM } from './decoder.js';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
/** PEFT's prefix of every tensor name in an adapter file (its PeftModel wraps the model twice). */
const PEFT_PREFIX = 'base_model.model.';

/** The linear layers LoRA may adapt, by their module name (the last part of the weight's name less `.weight`). */
export const LORA_TARGET_MODULES = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export const DEFAULT_LORA_TARGETS = 'q_proj,k_proj,v_proj,o_proj';

export interface LoraSettings {
  /** r: the rank of the update. */
  rank: number;
  /** The update is scaled by alpha / r. */
  alpha: number;
  /** Module names (LORA_TARGET_MODULES) adapted in every layer. */
  targets: readonly string[];
}

/** "q_proj,v_proj" (or a list) → the target names, checked: known, unique, at least one. */
export function parseLoraTargets(value: string | readonly string[], where = 'LoRA targets'): string[] {
  const names = (typeof value === 'string' ? value.split(',') : [...value]).map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) throw new Error(`supra: ${where}: no target module given (choose from ${LORA_TARGET_MODULES.join(', ')})`);
  const seen = new Set<string>();
  for (const n of names) {
    if (!(LORA_TARGET_MODULES as readonly string[]).includes(n)) {
      throw new Error(`supra: ${where}: unknown target module "${n}" (LoRA adapts ${LORA_TARGET_MODULES.join(', ')}; the SUPRA kernels are trained in full)`);
    }
    if (seen.has(n)) throw new Error(`supra: ${where}: target module "${n}" is named twice`);
    seen.add(n);
  }
  return names;
}

/** Every linear layer of `model` that LoRA may adapt, by full module name (model.layers.N.self_attn.q_proj …). */
function adaptableLinears(model: DecoderLM): Map<string, Linear> {
  const out = new Map<string, Linear>();
  model.layers.forEach((layer, l) => {
    const proj = (layer.mixer as { proj?: unknown }).proj;
    if (!(proj instanceof AttentionProjections)) {
      throw new Error(`supra: LoRA: layer ${l}'s token mixer (${model.config.architecture}) has no q/k/v/o projections to adapt`);
    }
    for (const linear of [proj.q, proj.k, proj.v, proj.o, layer.mlp.gate, layer.mlp.up, layer.mlp.down]) {
      out.set(linear.weight.name.replace(/\.weight$/, ''), linear);
    }
  });
  return out;
}

const moduleOf = (fullName: string): string => fullName.slice(fullName.lastIndexOf('.') + 1);

/**
 * The LoRA adapters of one model, in their own parameter store (float32, in the arena). attach() puts
 * them on the model's target layers; from then on the model computes with them until merge() folds
 * them into the weights or free() takes them off.
 */
export class LoraAdapters {
  readonly store = new ParamStore();
  /** Module name → its linear layer and adapter, in the model's layer order (q, k, v, o, gate, up, down). */
  readonly adapters = new Map<string, { linear: Linear; adapter: LoraAdapter }>();
  private readonly scratch = new Workspace();
  private attached = false;

  /** Whether the adapters are on the model (not yet merged or detached). */
  get isAttached(): boolean {
    return this.attached;
  }

  private constructor(readonly settings: LoraSettings) {}

  /**
   * Attach new adapters to every target layer of `model`: A ~ U(±1/√in) (PEFT's kaiming_uniform_(a=√5)),
   * drawn layer by layer from Mt19937 seeded with `seed` mixed with a constant (so they do not repeat the
   * draws of the kernels that linearize seeds with `seed`), B = 0: the model computes as before.
   */
  static attach(model: DecoderLM, settings: LoraSettings, seed: number): LoraAdapters {
    if (model.foldedForInference) throw new Error(`supra: LoRA: this model cannot take adapters: ${FOLDED_REASON}`);
    const targets = parseLoraTargets(settings.targets);
    const set = new LoraAdapters({ rank: settings.rank, alpha: settings.alpha, targets });
    try {
      for (const [module, linear] of adaptableLinears(model)) {
        if (!targets.includes(moduleOf(module))) continue;
        if (linear.lora) throw new Error(`supra: LoRA: ${module} already has an adapter`);
        const adapter = LoraAdapter.declare((n, s) => set.store.add(n, s), module, linear.inFeatures, linear.outFeatures, settings.rank, settings.alpha, set.scratch);
        set.adapters.set(module, { linear, adapter });
      }
      const rng = new Mt19937((seed ^ 0x4c6f5241) >>> 0); // "LoRA"
      for (const { adapter } of set.adapters.values()) {
        const bound = 1 / Math.sqrt(adapter.inFeatures);
        rng.fillUniform(adapter.a.data, -bound, bound);
      }
      for (const { linear, adapter } of set.adapters.values()) linear.lora = adapter;
      set.attached = true;
    } catch (e) {
      set.free();
      throw e;
    }
    return set;
  }

  /** Every adapter parameter: lora_A then lora_B of each adapted layer, in layer order. */
  params(): Param[] {
    return this.store.list();
  }

  enableGrads(): void {
    this.store.enableGrads();
  }

  /** Zero every gradient, but those in `skip` (known to be zero already). */
  zeroGrad(skip?: ReadonlySet<Param>): void {
    this.store.zeroGrad(skip);
  }

  /** Fill the adapters from tensors named as params() (no PEFT prefix); `source` names the file in errors. */
  load(tensors: ReadonlyMap<string, StoredTensor>, source: string): void {
    const mine = new Map([...tensors].filter(([n]) => this.store.has(n)));
    this.store.load(mapSource(mine), source);
  }

  /** Fold every adapter into its layer's weight (W += s·B·A, float64 sums) and take the adapters off. */
  merge(): void {
    if (!this.attached) throw new Error('supra: LoRA: the adapters are not attached (merged or freed already)');
    for (const { linear, adapter } of this.adapters.values()) {
      mergeLoraInto(linear.weight.data, adapter.a.data, adapter.b.data, adapter.rank, adapter.scale, linear.outFeatures, linear.inFeatures);
    }
    this.detach();
  }

  /** Take the adapters off the model (it computes without them again). */
  detach(): void {
    for (const { linear, adapter } of this.adapters.values()) if (linear.lora === adapter) linear.lora = null;
    this.attached = false;
  }

  /** Detach, then release the adapters' parameters, gradients and scratch. */
  free(): void {
    this.detach();
    this.store.free();
    this.scratch.free();
  }

  /** adapter_config.json as PEFT writes it; `modulesToSave`: names of the modules trained in full. */
  configJson(modulesToSave: readonly string[], baseModel: string | null): Record<string, unknown> {
    return {
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      r: this.settings.rank,
      lora_alpha: this.settings.alpha,
      target_modules: [...this.settings.targets],
      modules_to_save: modulesToSave.length ? [...modulesToSave] : null,
      lora_dropout: 0,
      bias: 'none',
      fan_in_fan_out: false,
      init_lora_weights: true,
      inference_mode: true,
      base_model_name_or_path: baseModel,
    };
  }

  /**
   * Write adapter_model.safetensors and adapter_config.json into `dir` (which must exist), each file
   * atomically: the adapters, plus `fullyTrained` (parameters of the model trained in full, the SUPRA
   * kernels) as modules_to_save. Returns the files written.
   */
  writeFiles(dir: string, fullyTrained: readonly Param[], baseModel: string | null): string[] {
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const p of this.params()) tensors.set(PEFT_PREFIX + p.name, { shape: p.shape, data: p.data });
    for (const p of fullyTrained) tensors.set(PEFT_PREFIX + p.name, { shape: p.shape, data: p.data });
    const modules = [...new Set(fullyTrained.map((p) => moduleOf(p.name.replace(/\.(weight|bias)$/, ''))))];
    const weights = join(dir, ADAPTER_WEIGHTS_FILE);
    writeSafetensors(weights, tensors, { format: 'pt' });
    const config = join(dir, ADAPTER_CONFIG_FILE);
    writeJsonAtomic(config, this.configJson(modules, baseModel));
    return [weights, config];
  }
}

/** An adapter folder as read: its settings, what it trains in full, and its tensors without PEFT's prefix. */
export interface AdapterFolder {
  dir: string;
  settings: LoraSettings;
  modulesToSave: string[];
  tensors: Map<string, StoredTensor>;
  /** The weights file, for messages. */
  file: string;
}

/** Read and check an adapter folder (adapter_config.json, adapter_model.safetensors); errors name the file. */
export function readAdapterFolder(dir: string): AdapterFolder {
  const configPath = join(dir, ADAPTER_CONFIG_FILE);
  const file = join(dir, ADAPTER_WEIGHTS_FILE);
  if (!existsSync(configPath)) throw new Error(`supra: ${dir}: not a LoRA adapter folder (no ${ADAPTER_CONFIG_FILE})`);
  if (!existsSync(file)) throw new Error(`supra: ${dir}: no ${ADAPTER_WEIGHTS_FILE} beside ${ADAPTER_CONFIG_FILE}`);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`supra: ${configPath}: not valid JSON (${(e as Error).message})`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`supra: ${configPath}: expected a JSON object`);
  if (raw.peft_type !== 'LORA') throw new Error(`supra: ${configPath}: peft_type is ${JSON.stringify(raw.peft_type)}, expected "LORA"`);
  const rank = raw.r;
  if (!Number.isInteger(rank) || (rank as number) < 1) throw new Error(`supra: ${configPath}: "r" must be an integer ≥ 1, got ${JSON.stringify(rank)}`);
  const alpha = raw.lora_alpha;
  if (typeof alpha !== 'number' || !(Number.isFinite(alpha) && alpha > 0)) throw new Error(`supra: ${configPath}: "lora_alpha" must be a number > 0, got ${JSON.stringify(alpha)}`);
  const targetsRaw = raw.target_modules;
  if (!Array.isArray(targetsRaw) || !targetsRaw.every((t) => typeof t === 'string')) {
    throw new Error(`supra: ${configPath}: "target_modules" must be a list of module names, got ${JSON.stringify(targetsRaw)}`);
  }
  const targets = parseLoraTargets(targetsRaw as string[], configPath);
  const saveRaw = raw.modules_to_save ?? [];
  if (!Array.isArray(saveRaw) || !saveRaw.every((t) => typeof t === 'string')) {
    throw new Error(`supra: ${configPath}: "modules_to_save" must be a list of module names or null, got ${JSON.stringify(saveRaw)}`);
  }
  if (raw.bias !== undefined && raw.bias !== 'none') throw new Error(`supra: ${configPath}: "bias" is ${JSON.stringify(raw.bias)}; only "none" is supported`);
  if (raw.fan_in_fan_out === true) throw new Error(`supra: ${configPath}: "fan_in_fan_out" adapters (GPT-2's Conv1D layout) are not supported`);
  const tensors = new Map<string, StoredTensor>();
  for (const [name, t] of readSafetensors(file)) tensors.set(name.startsWith(PEFT_PREFIX) ? name.slice(PEFT_PREFIX.length) : name, t);
  return { dir, settings: { rank: rank as number, alpha, targets }, modulesToSave: saveRaw as string[], tensors, file };
}

/**
 * Load an adapter folder into `model` as attached adapters: the LoRA tensors into new adapters (every one
 * the config's targets and rank call for, of its shape), the modules_to_save tensors into the model's
 * parameters. Any tensor that fits neither is refused, naming the file.
 */
export function loadAdapter(model: DecoderLM, folder: AdapterFolder): LoraAdapters {
  const lora = LoraAdapters.attach(model, folder.settings, 0);
  try {
    const loraNames = new Set(lora.params().map((p) => p.name));
    const saved = new Set(folder.modulesToSave);
    const full: Array<[string, StoredTensor]> = [];
    const stray: string[] = [];
    for (const [name, t] of folder.tensors) {
      if (loraNames.has(name)) continue;
      const module = moduleOf(name.replace(/\.(weight|bias)$/, ''));
      if (saved.has(module) && model.store.has(name)) full.push([name, t]);
      else stray.push(name);
    }
    if (stray.length) {
      const shown = stray.slice(0, 4).join(', ') + (stray.length > 4 ? `, … (${stray.length} in all)` : '');
      throw new Error(
        `supra: ${folder.file}: ${stray.length} tensor${stray.length > 1 ? 's' : ''} this model has no place for: ${shown} ` +
          `(the adapter targets ${folder.settings.targets.join(', ')} at rank ${folder.settings.rank}` +
          `${folder.modulesToSave.length ? ` and saves ${folder.modulesToSave.join(', ')}` : ''}; was it trained on another model?)`,
      );
    }
    lora.load(folder.tensors, folder.file); // every adapter tensor present, of its shape
    if (full.length) {
      const source = mapSource(new Map(full));
      for (const [name] of full) {
        const p = model.store.get(name);
        const { shape } = source.info(name);
        if (shape.length !== p.shape.length || shape.some((d, i) => d !== p.shape[i])) {
          throw new Error(`supra: ${folder.file}: tensor ${name} has shape [${shape.join(', ')}], the model's is [${p.shape.join(', ')}]`);
        }
        source.readInto(name, p.data);
      }
    }
    return lora;
  } catch (e) {
    lora.free();
    throw e;
  }
}

/**
 * `supra merge`: the model folder `modelDir` with the adapter folder `adapterDir` merged in (W += s·B·A;
 * modules_to_save replacing the model's tensors), written as a plain float32 model folder `outDir` (new
 * or empty; it appears only once complete) with the model's config and tokenizer files.
 */
export function mergeAdapterFolder(modelDir: string, adapterDir: string, outDir: string): { files: string[]; merged: number; replaced: number } {
  const folder = readAdapterFolder(adapterDir);
  const { model } = loadDecoder(modelDir, { strict: true });
  try {
    const lora = loadAdapter(model, folder);
    const merged = lora.adapters.size;
    const replaced = [...folder.tensors.keys()].filter((n) => model.store.has(n)).length;
    lora.merge();
    lora.free();
    const files = writeFolderAtomic(outDir, (tmp) => [
      ...saveCheckpoint(tmp, new Map(model.params().map((p) => [p.name, { shape: p.shape, data: p.data }])), { dtype: 'F32' }),
      saveConfig(tmp, model.config, { torch_dtype: 'float32' }),
      ...copyTokenizerFiles(modelDir, tmp),
    ]);
    return { files, merged, replaced };
  } finally {
    model.free();
  }
}
