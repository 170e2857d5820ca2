// Small helpers shared by the CLI commands: option parsing with clear errors, and typed option readers.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { bytesRatioText, WEIGHT_TYPES, type WeightType } from '../core/weights.js';
import { DEFAULT_MAX_SHARD_BYTES } from '../io/checkpoint.js';

type Parsed<T extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: T; allowPositionals: true; strict: true }>>;

export class UsageError extends Error {}

export type Options = NonNullable<ParseArgsConfig['options']>;

/** Parse argv for one command; unknown options and missing values become UsageErrors. */
export function parse<T extends Options>(argv: string[], options: T, command: string): Parsed<T> {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true as const });
  } catch (e) {
    throw new UsageError(`supra ${command}: ${(e as Error).message}`);
  }
}

export function intOption(value: string | undefined, name: string, dflt: number, min = 0): number {
  if (value === undefined) return dflt;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer ≥ ${min}, got "${value}"`);
  return n;
}

export function floatOption(value: string | undefined, name: string, dflt: number): number {
  if (value === undefined) return dflt;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got "${value}"`);
  return n;
}

const BYTE_UNITS: Readonly<Record<string, number>> = { '': 1, B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, KIB: 2 ** 10, MIB: 2 ** 20, GIB: 2 ** 30, TIB: 2 ** 40 };

/** A size in bytes as transformers writes one ("5GB" = 5·10⁹, "2GiB" = 2·2³⁰, "500MB", or plain bytes). */
export function byteSizeOption(value: string | undefined, name: string, dflt: number): number {
  if (value === undefined) return dflt;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const unit = m ? BYTE_UNITS[m[2]!.toUpperCase()] : undefined;
  const bytes = m && unit !== undefined ? Math.floor(Number(m[1]) * unit) : NaN;
  if (!(bytes >= 1) || !Number.isSafeInteger(bytes)) throw new UsageError(`--${name} must be a size such as 5GB, 500MB or 2GiB, got "${value}"`);
  return bytes;
}

export function boolOption(value: string | undefined, name: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new UsageError(`--${name} must be true or false, got "${value}"`);
}

export function choiceOption<T extends string>(value: string | undefined, name: string, choices: readonly T[], dflt: T): T {
  if (value === undefined) return dflt;
  if (!(choices as readonly string[]).includes(value)) {
    throw new UsageError(`--${name} must be one of ${choices.join(', ')}, got "${value}"`);
  }
  return value as T;
}

/** --normalization group-norm|sum (the spelling on the command line) as the config's 'group_norm' | 'sum'. */
export function normalizationOption(value: string | undefined): 'group_norm' | 'sum' {
  const choice = choiceOption(value, 'normalization', ['group-norm', 'sum'] as const, 'group-norm');
  return choice === 'group-norm' ? 'group_norm' : 'sum';
}

/** The weight types that quantize (blockwise, core/weights.ts): what --quantize takes. */
const QUANTIZED_TYPES = Object.values(WEIGHT_TYPES).filter((t) => t.blockSize > 1).map((t) => t.type);

/**
 * --dtype f32|bf16|int8 and --quantize int8 of the commands that load a model for inference (generate,
 * serve, eval): how its weight matrices are held (core/weights.ts). --quantize T is another spelling of
 * --dtype T for the quantized types; both given must agree. Declared once here; each command puts
 * DTYPE_OPTION and QUANTIZE_OPTION in its options and passes both values.
 */
export function dtypeOption(dtype: string | undefined, quantize?: string): WeightType {
  const d = dtype === undefined ? undefined : choiceOption(dtype, 'dtype', Object.keys(WEIGHT_TYPES) as WeightType[], 'f32');
  const q = quantize === undefined ? undefined : choiceOption(quantize, 'quantize', QUANTIZED_TYPES, QUANTIZED_TYPES[0]!);
  if (d !== undefined && q !== undefined && d !== q) throw new UsageError(`--dtype ${d} and --quantize ${q} disagree; give one of them`);
  return q ?? d ?? 'f32';
}

/**
 * One command-line option, declared once: node's parseArgs reads `type`/`short`/`multiple` (and ignores
 * the rest), --help prints `value` and `help` (test/cli checks every parsed option is in --help).
 */
export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** The value's placeholder in --help ('N', 'DIR'); none for a boolean. */
  value?: string;
  /** What it does and its default; '\n' starts a continuation line. */
  help: string;
}

export type OptionSpecs = Record<string, OptionSpec>;

/** The option list of a command's --help: one aligned line per option, in declaration order. */
export function optionsHelp(specs: OptionSpecs): string {
  const names = Object.entries(specs).map(([name, s]) => `--${name}${s.short ? `, -${s.short}` : ''}${s.type === 'string' ? ` ${s.value ?? 'VALUE'}` : ''}`);
  const width = Math.min(24, Math.max(...names.map((n) => n.length)));
  return Object.values(specs)
    .map((s, i) => {
      const name = names[i]!;
      const [first, ...rest] = `${s.help}${s.multiple ? ' (repeatable)' : ''}`.split('\n');
      const head = name.length > width ? `  ${name}\n  ${' '.repeat(width)}  ${first}` : `  ${name.padEnd(width)}  ${first}`;
      return [head, ...rest.map((line) => `  ${' '.repeat(width)}  ${line}`)].join('\n');
    })
    .join('\n');
}

export const DTYPE_OPTION = {
  type: 'string',
  value: 'f32|bf16|int8',
  help: `how the weight matrices are held (default f32); bf16 halves their memory and the bytes a\ndecoded token reads, values rounded to nearest even where the file holds more; int8\n(= --quantize int8) takes ${bytesRatioText('int8', 'f32')} of their f32 memory; bf16 and int8 are for inference only`,
} as const satisfies OptionSpec;

export const QUANTIZE_OPTION = {
  type: 'string',
  value: 'int8',
  help: 'quantize the weight matrices as they load (= --dtype int8): int8 values with a bfloat16\nscale per block of 32 along a row, vectors kept float32; inference only',
} as const satisfies OptionSpec;

export const FEATURE_MAPS_OPTION = {
  type: 'string',
  value: 'folded|separate',
  help: "a SUPRA model's kernels: folded into q_proj and k_proj as it loads (one product each, the\nteacher's bytes per token; inference only) or kept separate as trained (default folded for\nbf16 and int8, separate for f32)",
} as const satisfies OptionSpec;

/**
 * How a command that loads a model for inference (generate, serve, eval) holds it: --dtype/--quantize
 * (dtypeOption) and --feature-maps (DecoderOptions.foldFeatureMaps; undefined leaves its default).
 */
export function inferenceLoadOptions(values: { dtype?: string; quantize?: string; 'feature-maps'?: string }): { dtype: WeightType; foldFeatureMaps?: boolean } {
  const dtype = dtypeOption(values.dtype, values.quantize);
  const maps = values['feature-maps'];
  if (maps === undefined) return { dtype };
  return { dtype, foldFeatureMaps: choiceOption(maps, 'feature-maps', ['folded', 'separate'] as const, 'folded') === 'folded' };
}

/** --max-shard-size, declared once for every command that writes a model folder (linearize, convert); read with maxShardOption. */
export const MAX_SHARD_SIZE_OPTION = {
  type: 'string',
  value: 'SIZE',
  help: 'largest weights file, e.g. 2GB or 500MB; a bigger model is written as\nmodel-0000N-of-0000M.safetensors shards plus model.safetensors.index.json (default 5GB, as transformers)',
} as const satisfies OptionSpec;

/** The --max-shard-size value in bytes (default transformers' 5GB, io/checkpoint.ts DEFAULT_MAX_SHARD_BYTES). */
export function maxShardOption(value: string | undefined): number {
  return byteSizeOption(value, 'max-shard-size', DEFAULT_MAX_SHARD_BYTES);
}
