// tokenizer.json (+ tokenizer_config.json) from a local Hugging Face folder, through @huggingface/tokenizers.
// Special token ids come from tokenizer_config.json's token strings, falling back to config.json and
// generation_config.json ids; every eos id found is kept, since chat models stop on several.
import { existsSync, join, readFileSync } from './files.js';
import { Tokenizer } from '@huggingface/tokenizers';

export interface EncodeOptions {
  /** Add the tokens the post-processor adds (e.g. BOS). Default true, as transformers. */
  add_special_tokens?: boolean;
}

export interface DecodeOptions {
  skip_special_tokens?: boolean;
}

export interface LoadedTokenizer {
  encode(text: string, options?: EncodeOptions): number[];
  decode(ids: readonly number[], options?: DecodeOptions): string;
  tokenToId(token: string): number | null;
  idToToken(id: number): string | null;
  bos_token_id: number | null;
  /** The first eos id (tokenizer_config.json's eos_token when it has one). */
  eos_token_id: number | null;
  /** Every eos id found in tokenizer_config.json, config.json and generation_config.json. */
  eos_token_ids: number[];
  pad_token_id: number | null;
  unk_token_id: number | null;
  /** One more than the largest id the tokenizer can produce (added tokens included). */
  vocab_size: number;
  /** The Jinja chat template, when the folder has one. */
  chat_template: string | null;
  /** The file it came from (tokenizer_config.json, chat_template.jinja or chat_template.json), for errors. */
  chat_template_file?: string;
}

function readJson(path: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`supra: ${path}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`supra: ${path}: expected a JSON object`);
  return v as Record<string, unknown>;
}

function readJsonIfPresent(path: string): Record<string, unknown> | null {
  return existsSync(path) ? readJson(path) : null;
}

/** A special token in tokenizer_config.json is a string or an AddedToken object {content, ...}. */
function tokenContent(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && typeof (v as { content?: unknown }).content === 'string') {
    return (v as { content: string }).content;
  }
  return null;
}

function ids(v: unknown): number[] {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0);
  return [];
}

function chatTemplate(dir: string, tokConfig: Record<string, unknown>, tokConfigPath: string): { template: string; file: string } | null {
  const t = tokConfig.chat_template;
  if (typeof t === 'string') return { template: t, file: tokConfigPath };
  if (Array.isArray(t)) {
    // several named templates: [{name, template}]; the one called "default" is what transformers uses
    const named = t.filter((x): x is { name: string; template: string } =>
      typeof x === 'object' && x !== null && typeof x.name === 'string' && typeof x.template === 'string');
    const pick = named.find((x) => x.name === 'default') ?? named[0];
    if (!pick) throw new Error(`supra: ${tokConfigPath}: chat_template list has no {name, template} entry`);
    return { template: pick.template, file: tokConfigPath };
  }
  if (t !== undefined && t !== null) throw new Error(`supra: ${tokConfigPath}: chat_template must be a string`);
  // newer transformers save the template beside the config
  const jinja = join(dir, 'chat_template.jinja');
  if (existsSync(jinja)) return { template: readFileSync(jinja, 'utf8'), file: jinja };
  const json = join(dir, 'chat_template.json');
  if (existsSync(json)) {
    const c = readJson(json).chat_template;
    if (typeof c === 'string') return { template: c, file: json };
  }
  return null;
}

/** Load `<dir>/tokenizer.json` with its tokenizer_config.json (optional) and config.json ids (optional). */
export function loadTokenizer(dir: string): LoadedTokenizer {
  const tokPath = join(dir, 'tokenizer.json');
  if (!existsSync(tokPath)) throw new Error(`supra: ${tokPath}: not found (expected a Hugging Face tokenizer.json in ${dir})`);
  const tokJson = readJson(tokPath);
  const tokConfigPath = join(dir, 'tokenizer_config.json');
  const tokConfig = readJsonIfPresent(tokConfigPath) ?? {};
  const modelConfig = readJsonIfPresent(join(dir, 'config.json')) ?? {};
  const genConfig = readJsonIfPresent(join(dir, 'generation_config.json')) ?? {};

  if (typeof tokJson.model !== 'object' || tokJson.model === null) {
    throw new Error(`supra: ${tokPath}: missing "model" (the vocabulary and merges)`);
  }
  // the library iterates added_tokens and reads these keys; older files can omit them
  const normalized: Record<string, unknown> = {
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: null,
    ...tokJson,
    added_tokens: Array.isArray(tokJson.added_tokens) ? tokJson.added_tokens : [],
  };
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(normalized, tokConfig);
  } catch (e) {
    throw new Error(`supra: ${tokPath}: cannot build the tokenizer: ${(e as Error).message}`);
  }

  const idOf = (token: string | null): number | null => {
    if (token === null) return null;
    const id = tok.token_to_id(token);
    return id === undefined ? null : id;
  };
  const fromConfig = (key: string): number | null => {
    const token = tokenContent(tokConfig[key]);
    if (token !== null) {
      const id = idOf(token);
      if (id === null) throw new Error(`supra: ${tokConfigPath}: ${key} '${token}' is not in the vocabulary of ${tokPath}`);
      return id;
    }
    return null;
  };

  const bos = fromConfig('bos_token') ?? ids(modelConfig.bos_token_id)[0] ?? ids(genConfig.bos_token_id)[0] ?? null;
  const eosIds = [
    ...(fromConfig('eos_token') !== null ? [fromConfig('eos_token')!] : []),
    ...ids(modelConfig.eos_token_id),
    ...ids(genConfig.eos_token_id),
  ].filter((v, i, a) => a.indexOf(v) === i);
  const pad = fromConfig('pad_token') ?? ids(modelConfig.pad_token_id)[0] ?? ids(genConfig.pad_token_id)[0] ?? null;
  const unk = fromConfig('unk_token') ?? (tok.model?.unk_token_id ?? null);

  let maxId = -1;
  for (const id of tok.get_vocab(true).values()) if (id > maxId) maxId = id;

  const template = chatTemplate(dir, tokConfig, tokConfigPath);
  return {
    encode(text: string, options: EncodeOptions = {}): number[] {
      return tok.encode(text, { add_special_tokens: options.add_special_tokens ?? true }).ids;
    },
    decode(idList: readonly number[], options: DecodeOptions = {}): string {
      if (idList.length === 0) return ''; // the library rejects an empty list
      for (const id of idList) {
        if (!Number.isInteger(id) || id < 0 || id > maxId) throw new Error(`supra: ${tokPath}: cannot decode token id ${id} (vocabulary has ids 0..${maxId})`);
      }
      return tok.decode([...idList], { skip_special_tokens: options.skip_special_tokens ?? false });
    },
    tokenToId: idOf,
    idToToken(id: number): string | null {
      return tok.id_to_token(id) ?? null;
    },
    bos_token_id: bos,
    eos_token_id: eosIds[0] ?? null,
    eos_token_ids: eosIds,
    pad_token_id: pad,
    unk_token_id: unk,
    vocab_size: maxId + 1,
    chat_template: template?.template ?? null,
    ...(template ? { chat_template_file: template.file } : {}),
  };
}
