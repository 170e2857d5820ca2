// Small helpers shared by the CLI commands: option parsing with clear errors, and typed option readers.
import { parseArgs, type ParseArgsConfig } from 'node:util';

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

/** An option as parseArgs reads it, plus what --help says about it: one table serves both. */
export type DescribedOption = Options[string] & {
  /** The value's placeholder in --help (string options), e.g. "<dir>". */
  value?: string;
  help: string;
};

/** The --help lines of an option table, in its order: "--name, -s <value>" then the description. */
export function optionsHelp(options: Readonly<Record<string, DescribedOption>>): string {
  const entries = Object.entries(options);
  const heads = entries.map(([name, o]) => `--${name}${o.short ? `, -${o.short}` : ''}${o.type === 'string' ? ` ${o.value ?? '<value>'}` : ''}`);
  const width = Math.max(...heads.map((h) => h.length)) + 2;
  return entries.map(([, o], i) => `  ${heads[i]!.padEnd(width)}${o.help}${o.multiple ? ' (repeatable)' : ''}`).join('\n');
}

/** --backend, which main.ts takes for every command: for a command's --help table. */
export const GLOBAL_BACKEND_OPTION: DescribedOption = {
  type: 'string', value: 'wasm|native', help: 'compute backend, on any command (default native where the OpenBLAS add-on is built, else wasm)',
};
