// The options of `npm run bench:scale` (bench/scale.ts): the command-line side of src/bench/scale.ts,
// kept in cli/ so the benchmark code below it imports no command-line code.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseBackendName } from '../core/select.js';
import { SCALE_DTYPES, SCALE_KINDS, type ScaleSettings } from '../bench/scale.js';
import { byteSizeOption, intOption, parse, UsageError, type OptionSpecs } from './args.js';

export const SCALE_OPTIONS = {
  shapes: { type: 'string', value: 'LIST', help: 'model shapes, comma-separated (scripts/random-model.mjs --list; default\nsmollm-135m,qwen2.5-0.5b,tinyllama-1.1b; mistral-7b writes a 14.5 GB folder)' },
  dtypes: { type: 'string', value: 'LIST', help: 'weight types to load, of f32,bf16,int8 (default all)' },
  kinds: { type: 'string', value: 'LIST', help: 'teacher,supra (default both)' },
  prefill: { type: 'string', value: 'N', help: 'prompt tokens of the prefill measure (default 128)' },
  decode: { type: 'string', value: 'N', help: 'decoded tokens of the decode measure, after 64 + 4 warm-up tokens (default 32)' },
  backend: { type: 'string', value: 'wasm|native', help: "compute backend of every case (default: native when the add-on loads)" },
  cache: { type: 'string', value: 'DIR', help: 'where the generated teacher and SUPRA folders are kept and reused\n(default ~/.cache/supra/scale; several GB)' },
  out: { type: 'string', value: 'DIR', help: 'where scale.json and scale.md are written (default bench/results)' },
  'bandwidth-size': { type: 'string', value: 'SIZE', help: 'bytes read by each pass of the bandwidth measure (default 1GiB)' },
  'bandwidth-passes': { type: 'string', value: 'N', help: 'passes of the bandwidth measure, best taken (default 5)' },
  seed: { type: 'string', value: 'N', help: 'seed of the random weights (default 0)' },
  'no-commands': { type: 'boolean', help: 'skip running supra eval and supra serve on each folder' },
  help: { type: 'boolean', short: 'h', help: 'this help' },
} satisfies OptionSpecs;

function listOption<T extends string>(value: string | undefined, name: string, choices: readonly T[], dflt: readonly T[]): T[] {
  if (value === undefined) return [...dflt];
  const items = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new UsageError(`--${name} needs at least one of ${choices.join(', ')}`);
  for (const item of items) {
    if (!(choices as readonly string[]).includes(item)) throw new UsageError(`--${name}: unknown "${item}"; one of ${choices.join(', ')}`);
  }
  return [...new Set(items)] as T[];
}

export const DEFAULT_SCALE_SHAPES = ['smollm-135m', 'qwen2.5-0.5b', 'tinyllama-1.1b'];

/** The benchmark's options from argv; `shapes` are the names scripts/random-model.mjs knows. */
export function parseScaleArgs(argv: string[], shapes: readonly string[]): ScaleSettings {
  const { values, positionals } = parse(argv, SCALE_OPTIONS, 'bench:scale');
  if (positionals.length > 0) throw new UsageError(`bench:scale takes no positional arguments, got "${positionals[0]}"`);
  const bandwidthBytes = byteSizeOption(values['bandwidth-size'], 'bandwidth-size', 2 ** 30);
  if (bandwidthBytes >= 4 * 2 ** 30) throw new UsageError('--bandwidth-size must be under 4GiB (a wasm32 buffer)');
  return {
    shapes: listOption(values.shapes, 'shapes', shapes, DEFAULT_SCALE_SHAPES.filter((s) => shapes.includes(s))),
    dtypes: listOption(values.dtypes, 'dtypes', SCALE_DTYPES, SCALE_DTYPES),
    kinds: listOption(values.kinds, 'kinds', SCALE_KINDS, SCALE_KINDS),
    prefillTokens: intOption(values.prefill, 'prefill', 128, 1),
    decodeTokens: intOption(values.decode, 'decode', 32, 1),
    backend: values.backend === undefined ? undefined : parseBackendName(values.backend, '--backend'),
    cacheDir: values.cache ?? join(homedir(), '.cache', 'supra', 'scale'),
    outDir: values.out ?? join('bench', 'results'),
    bandwidthBytes,
    bandwidthPasses: intOption(values['bandwidth-passes'], 'bandwidth-passes', 5, 1),
    seed: intOption(values.seed, 'seed', 0),
    commands: !(values['no-commands'] ?? false),
    help: values.help ?? false,
  };
}

