// supra/web: the library in a browser. The same modules as under Node (core, layers, models, tokenizer,
// generation, snapshots; none imports a node: module, test/web-graph.test.ts), plus what a page needs:
// model folders read over fetch from a URL or from the files a user picked, mounted in memory
// (io/files.ts) so the Node readers load them with the same checks and messages, and snapshots as bytes.
//
//   import { init, AutoModelForCausalLM, AutoTokenizer, TextStreamer } from 'supra/web';
//   await init();                                       // fetches the wasm kernels
//   const model = await AutoModelForCausalLM.from_pretrained('/models/supra');
//   const tokenizer = await AutoTokenizer.from_pretrained('/models/supra');
//   await model.generate({ input_ids: [tokenizer.encode('The jury')], max_new_tokens: 32,
//                          streamer: new TextStreamer(tokenizer, { callback_function: (t) => show(t) }) });
//
// Threads: the wasm kernels run on a pool of Web Workers sharing one WebAssembly.Memory, which needs a
// cross-origin-isolated page (headers Cross-Origin-Opener-Policy: same-origin and
// Cross-Origin-Embedder-Policy: require-corp; `supra web` serves them) and a caller that may block, so
// run the model in a Worker (the playground does). Elsewhere it runs on one thread (threadsNote says so).
import { canShareMemory, isNode } from '../core/host.js';
import { kernelVariant, loadKernelFiles } from '../core/wasm/module.js';
import { defaultThreads, setThreads } from '../core/wasm/runtime.js';
import { setBackend } from '../core/select.js';
import { mountFolder } from '../io/files.js';
import { AutoModelForCausalLM as NodeAutoModel, AutoTokenizer as NodeAutoTokenizer, CausalLM } from '../api.js';
import type { FromPretrainedOptions } from '../models/auto.js';
import { checkParametersFit, type DecoderOptions } from '../models/decoder.js';
import { parseConfig } from '../io/config.js';
import { isOpenLmConfig } from '../io/open_lm.js';
import { formatBytes } from '../core/memory.js';
import type { LoadedTokenizer } from '../io/tokenizer.js';

export { CausalLM } from '../api.js';
export { GenerationState } from '../generate/state.js';
export { TextStreamer } from '../generate/streamer.js';
export { decodeTokens, generate, generateFromState } from '../generate/generate.js';
export { stateToBytes, stateFromBytes, modelFingerprint, STATE_FORMAT } from '../generate/snapshot.js';
export { loadDecoder } from '../models/auto.js';
export { loadTokenizer } from '../io/tokenizer.js';
export { mountFolder, unmountFolder } from '../io/files.js';
export { kernelVariant } from '../core/wasm/module.js';
export { setThreads } from '../core/wasm/runtime.js';
export type { LoadedTokenizer } from '../io/tokenizer.js';
export type { GenerationOptions, GenerateResult, DecodedStep } from '../generate/generate.js';

let ready: Promise<void> | undefined;

/** Fetch the wasm kernels and select the wasm backend (once; later calls return the same promise). */
export function init(): Promise<void> {
  ready ??= (async () => {
    if (!isNode) await loadKernelFiles();
    setBackend('wasm');
  })();
  return ready;
}

/** Where the kernels run: threads, kernel build, and why one thread when memory cannot be shared. */
export function runtimeInfo(): { threads: number; kernels: 'fma' | 'simd'; sharedMemory: boolean; note: string | null } {
  return {
    threads: defaultThreads(),
    kernels: kernelVariant(),
    sharedMemory: canShareMemory,
    note: canShareMemory
      ? null
      : 'one thread: this page is not cross-origin isolated, so SharedArrayBuffer is unavailable ' +
        '(serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp, as `supra web` does)',
  };
}

/** The files of a model folder the readers may look for, beside the weights. */
const OPTIONAL_FILES = ['tokenizer_config.json', 'generation_config.json', 'chat_template.jinja', 'chat_template.json'];
const WEIGHT_INDEXES = ['model.safetensors.index.json', 'pytorch_model.bin.index.json'];
const WEIGHT_FILES = ['model.safetensors', 'pytorch_model.bin'];

/** A file of a folder being read: its bytes are read only when wanted (a folder may hold far more). */
type FileOf = (name: string) => Promise<Uint8Array | null>;

/**
 * The files of a model folder the readers use, each read once through `read` (null: not there):
 * config.json, the tokenizer files, then the weights (model.safetensors, or an index and the shards it
 * lists), so that a picked training run with gigabytes of other checkpoints beside them costs nothing.
 * `beforeWeights` sees config.json first (a model that cannot load is refused before its weights are
 * read). Missing files other than config.json are left to the readers, whose errors name them.
 */
async function modelFiles(read: FileOf, noConfig: () => Error, beforeWeights?: (config: Uint8Array) => void): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  const add = async (name: string): Promise<Uint8Array | null> => {
    const bytes = await read(name);
    if (bytes) files.set(name, bytes);
    return bytes;
  };
  const config = await add('config.json');
  if (!config) throw noConfig();
  await Promise.all(['tokenizer.json', ...OPTIONAL_FILES].map(add));
  beforeWeights?.(config);
  for (const index of WEIGHT_INDEXES) {
    const bytes = await add(index);
    if (!bytes) continue;
    let shards: string[] = [];
    try {
      const map = (JSON.parse(new TextDecoder().decode(bytes)) as { weight_map?: Record<string, string> }).weight_map ?? {};
      shards = [...new Set(Object.values(map).filter((s) => typeof s === 'string'))];
    } catch {
      // the checkpoint reader names what is wrong with the index
    }
    // a shard named outside the folder is never read: the reader then names it as missing
    await Promise.all(shards.filter((s) => !s.startsWith('/') && !s.split('/').includes('..')).map(add));
    return files;
  }
  for (const file of WEIGHT_FILES) if (await add(file)) break;
  return files;
}

/** The bytes at `url`, null when it is not there (404); errors name the URL. */
async function get(url: string): Promise<Uint8Array | null> {
  let r: Response;
  try {
    r = await fetch(url);
  } catch (e) {
    throw new Error(`supra: ${url}: cannot fetch (${(e as Error).message})`);
  }
  if (r.status === 404) return null;
  if (!r.ok) throw new Error(`supra: ${url}: HTTP ${r.status} ${r.statusText}`);
  try {
    return new Uint8Array(await r.arrayBuffer());
  } catch (e) {
    // a transfer cut short (the server went away, the file shrank) or more bytes than the tab can hold
    const size = r.headers.get('Content-Length');
    throw new Error(`supra: ${url}: could not read the file${size ? ` (${formatBytes(Number(size))})` : ''}: ${(e as Error).message}`);
  }
}

/**
 * Fetch the files of the model folder at `url` (config.json, the tokenizer files, and the weights:
 * model.safetensors, or an index and the shards it lists) and mount them there. Missing files are left
 * to the readers, whose errors name them.
 */
export async function fetchFolder(url: string, beforeWeights?: (config: Uint8Array) => void): Promise<string> {
  const dir = url.replace(/\/+$/, '');
  const noConfig = (): Error => new Error(`supra: ${dir}/config.json: not found (expected a model folder at ${dir})`);
  return mountFolder(dir, await modelFiles((name) => get(`${dir}/${name}`), noConfig, beforeWeights));
}

/**
 * Mount the files a user picked (an <input type=file webkitdirectory> or several files) as folder
 * `picked:<name>`: names are taken relative to the picked folder. Only the files a model folder's
 * readers use are read.
 */
export async function filesFolder(list: Iterable<File>, beforeWeights?: (config: Uint8Array) => void): Promise<string> {
  const all = [...list];
  if (all.length === 0) throw new Error('supra: no files picked (pick a model folder with config.json and its weights)');
  const rel = (f: File): string => (f as File & { webkitRelativePath?: string }).webkitRelativePath || f.name;
  const top = rel(all[0]!).includes('/') ? rel(all[0]!).split('/')[0]! : 'files';
  const byName = new Map(all.map((f) => [rel(f).startsWith(`${top}/`) ? rel(f).slice(top.length + 1) : rel(f), f]));
  const read: FileOf = async (name) => {
    const f = byName.get(name);
    if (!f) return null;
    try {
      return new Uint8Array(await f.arrayBuffer());
    } catch (e) {
      throw new Error(`supra: ${top}/${name}: cannot read the picked file (${(e as Error).message})`);
    }
  };
  const noConfig = (): Error => {
    // a folder picked one level too high: name the model folders inside it
    const inside = [...byName.keys()].filter((n) => n.endsWith('/config.json')).map((n) => `${top}/${n.slice(0, -'/config.json'.length)}`);
    const hint = inside.length > 0 ? `; pick the model folder itself: ${inside.slice(0, 4).join(', ')}${inside.length > 4 ? ', …' : ''}` : '';
    return new Error(`supra: the picked folder ${top} has no config.json (expected a model folder with config.json and its weights${hint})`);
  };
  return mountFolder(`picked:${top}`, await modelFiles(read, noConfig, beforeWeights));
}

/** A URL (fetched), an already mounted folder name, or picked files. */
export type ModelSource = string | Iterable<File>;

// A folder fetched (or a list of picked files read) once serves the model and the tokenizer alike.
const fetchedFolders = new Map<string, Promise<string>>();
const pickedFolders = new WeakMap<Iterable<File>, Promise<string>>();

async function folderOf(source: ModelSource, beforeWeights?: (config: Uint8Array) => void): Promise<string> {
  if (typeof source !== 'string') {
    let picked = pickedFolders.get(source);
    if (!picked) {
      picked = filesFolder(source, beforeWeights);
      pickedFolders.set(source, picked);
      picked.catch(() => pickedFolders.delete(source));
    }
    return picked;
  }
  let dir = fetchedFolders.get(source);
  if (!dir) {
    dir = fetchFolder(source, beforeWeights);
    fetchedFolders.set(source, dir);
    dir.catch(() => fetchedFolders.delete(source));
  }
  return dir;
}

/**
 * Refuse, from config.json alone, a model that cannot load (an unknown architecture, more parameters than
 * the wasm arena holds) before gigabytes of its weights are fetched: the checks loadDecoder makes again.
 * An open_lm config needs the weights' shapes, so its checks wait for them.
 */
function configCheck(source: ModelSource, options: DecoderOptions): (config: Uint8Array) => void {
  const where = typeof source === 'string' ? `${source.replace(/\/+$/, '')}/config.json` : 'config.json';
  return (bytes) => {
    let raw: Record<string, unknown>;
    try {
      raw = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
    } catch {
      return; // the config reader names what is wrong with it
    }
    if (typeof raw !== 'object' || raw === null || isOpenLmConfig(raw)) return;
    checkParametersFit(parseConfig(raw, where), options, where);
  };
}

export const AutoModelForCausalLM = {
  /** Fetch (or read the picked files of) a model folder and load it on the wasm backend. */
  async from_pretrained(source: ModelSource, options: Omit<FromPretrainedOptions, 'backend'> = {}): Promise<CausalLM> {
    await init();
    return NodeAutoModel.from_pretrained(await folderOf(source, configCheck(source, options)), { ...options, backend: 'wasm' });
  },
};

export const AutoTokenizer = {
  /** The folder's tokenizer.json (with tokenizer_config.json), fetched or picked. */
  async from_pretrained(source: ModelSource): Promise<LoadedTokenizer> {
    return NodeAutoTokenizer.from_pretrained(await folderOf(source));
  },
};
