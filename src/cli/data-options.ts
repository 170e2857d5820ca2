// The training-data flags shared by `supra train` and `supra demo`: declared once here for parsing,
// --help and the library options they become, so both commands take the same flags with the same defaults.
import { resolve } from 'node:path';
import { choiceOption, floatOption } from './args.js';
import { DATA_DEFAULTS, type TokenDataOptions } from '../train/data/dataset.js';
import { EMBEDDED_INPUT } from '../train/data/files.js';
import type { SettingName } from '../train/data/readers.js';

/** parseArgs declarations of the data flags (besides --data, whose default differs between commands). */
export const DATA_FLAGS = {
  'validation-fraction': { type: 'string' },
  'text-field': { type: 'string' },
  'txt-split': { type: 'string' },
  'cache-dir': { type: 'string' },
} as const;

const TXT_SPLITS = ['auto', 'file', 'paragraph'] as const;

/** The data flags as --help shows them, with the library's defaults. */
export const DATA_FLAGS_USAGE =
  `[--validation-fraction ${DATA_DEFAULTS.validationFraction}] [--text-field ${DATA_DEFAULTS.textField}] ` +
  `[--txt-split ${DATA_DEFAULTS.txtSplit}|${TXT_SPLITS.filter((s) => s !== DATA_DEFAULTS.txtSplit).join('|')}] [--cache-dir DIR]`;

/** One line for --help on what the data flags do. */
export const DATA_FLAGS_HELP =
  '--txt-split auto (default) reads a lone .txt file as paragraphs (blank-line separated), other .txt files whole;\n' +
  '--validation-fraction 0 holds nothing out. Tokens are cached in --cache-dir (default $SUPRA_CACHE_DIR or ~/.cache/supra/tokens).';

/** The library's settings as messages from the command line name them: the flags. */
export const CLI_SETTING_NAMES: SettingName = (setting) =>
  ({
    textField: '--text-field',
    txtSplit: '--txt-split',
    validationFraction: '--validation-fraction',
    seqLen: '--seq-len',
    seed: '--seed',
    shuffleSeed: '--seed',
  })[setting];

type DataFlagValues = { [K in keyof typeof DATA_FLAGS]?: string };

/** Data inputs are stored resolved, so --resume from another directory finds them. */
export function resolveDataInput(input: string): string {
  return input === EMBEDDED_INPUT || /[*?[]/.test(input) ? input : resolve(input);
}

/** The flags as openTokenBatches options (seqLen, seed, tokenizer and log come from the command). */
export function dataOptionsFromFlags(
  data: readonly string[],
  values: DataFlagValues,
  rest: Pick<TokenDataOptions, 'tokenizerDir' | 'seqLen' | 'seed' | 'log'>,
): TokenDataOptions {
  return {
    ...rest,
    data: data.map(resolveDataInput),
    validationFraction: floatOption(values['validation-fraction'], 'validation-fraction', DATA_DEFAULTS.validationFraction),
    textField: values['text-field'] ?? DATA_DEFAULTS.textField,
    txtSplit: choiceOption(values['txt-split'], 'txt-split', TXT_SPLITS, DATA_DEFAULTS.txtSplit),
    cacheDir: values['cache-dir'] ? resolve(values['cache-dir']) : undefined,
    settingName: CLI_SETTING_NAMES,
  };
}
