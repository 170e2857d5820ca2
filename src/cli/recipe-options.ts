// The recipe's flags as `supra train` and `supra demo` take them, from the one table in
// src/train/recipe.ts: their --help lines (with the command's defaults) and their values. The command
// line only reads the text (a number, an integer ≥ the table's minimum, true|false, a choice's word,
// naming the flag); train() checks the rest against the same table.
import { boolOption, choiceOption, floatOption, intOption, UsageError } from './args.js';
import { defaultText, RECIPE_OPTIONS, type RecipeKey, type RecipeOption, type RecipeValue } from '../train/recipe.js';

type FlagOf<K extends RecipeKey> = (typeof RECIPE_OPTIONS)[K]['flag'];

/** The parseArgs/--help entries of some recipe options, keyed by their flags. */
export type RecipeFlags<K extends RecipeKey> = {
  [P in K as FlagOf<P>]: (typeof RECIPE_OPTIONS)[P]['rule'] extends { kind: 'switch' } ? { type: 'boolean'; help: string } : { type: 'string'; value: string; help: string };
};

/** A help text longer than this puts its default on a line of its own. */
const HELP_WIDTH = 80;

function helpLine(o: RecipeOption, dflt: RecipeOption['default']): string {
  const text = `(default ${defaultText(dflt)})`;
  return `${o.help}${o.help.length + 1 + text.length > HELP_WIDTH ? '\n' : ' '}${text}`;
}

function placeholder(o: RecipeOption): string {
  if (o.rule.kind === 'boolean') return 'true|false';
  if (o.rule.kind === 'choice') return o.rule.choices.join('|');
  return o.value ?? 'VALUE';
}

/**
 * The flags of `keys`, in that order, for a command's option table. Their --help gives the command's
 * `defaults` where it has its own (the demo's recipe), else the table's.
 */
export function recipeFlags<K extends RecipeKey>(keys: readonly K[], defaults: Partial<Record<RecipeKey, number | boolean | string>> = {}): RecipeFlags<K> {
  const flags: Record<string, { type: 'string'; value: string; help: string } | { type: 'boolean'; help: string }> = {};
  for (const key of keys) {
    const o: RecipeOption = RECIPE_OPTIONS[key];
    // a switch is off unless given: its help needs no default
    flags[o.flag] = o.rule.kind === 'switch' ? { type: 'boolean', help: o.help } : { type: 'string', value: placeholder(o), help: helpLine(o, defaults[key] ?? o.default) };
  }
  return flags as RecipeFlags<K>;
}

/**
 * One recipe option's value from the parsed flags; undefined when the flag is not given. `min`: a
 * command's own, stricter minimum for an integer (the demo's --seq-len).
 */
export function readRecipeFlag<K extends RecipeKey>(values: Record<string, unknown>, key: K, min?: number): RecipeValue<K> | undefined {
  const o: RecipeOption = RECIPE_OPTIONS[key];
  const rule = o.rule;
  if (rule.kind === 'switch') return (values[o.flag] === true ? true : undefined) as RecipeValue<K> | undefined;
  const text = values[o.flag] as string | undefined;
  if (text === undefined) return undefined;
  const value =
    rule.kind === 'integer' ? intOption(text, o.flag, 0, Math.max(rule.min, min ?? rule.min))
    : rule.kind === 'number' ? floatOption(text, o.flag, 0)
    : rule.kind === 'boolean' ? boolOption(text, o.flag)
    : rule.kind === 'list' ? listOption(text, o.flag, rule.choices)
    : choiceOption(text, o.flag, rule.choices, rule.choices[0]!);
  return value as RecipeValue<K>;
}

/** A comma-separated list of distinct words from `choices`, as given (spaces around the commas dropped). */
function listOption(text: string, flag: string, choices: readonly string[]): string {
  const words = text.split(',').map((w) => w.trim());
  const bad = words.find((w) => !choices.includes(w));
  if (bad !== undefined) throw new UsageError(`--${flag} takes names from ${choices.join(', ')} separated by commas, got "${bad}" in "${text}"`);
  if (new Set(words).size !== words.length) throw new UsageError(`--${flag} names a module twice: "${text}"`);
  return words.join(',');
}

/** Several recipe options' values, read in the order of `keys` (undefined where a flag is not given). */
export function readRecipeFlags<K extends RecipeKey>(values: Record<string, unknown>, keys: readonly K[]): { [P in K]?: RecipeValue<P> } {
  const read: { [P in K]?: RecipeValue<P> } = {};
  for (const key of keys) read[key] = readRecipeFlag(values, key);
  return read;
}
