// The training-data flags shared by `supra train` and `supra demo`: declared once here for parsing,
// --help and the library options they become, so both commands take the same flags with the same defaults.
import { resolve } from 'node:path';
import { choiceOption, floatOption, intOption, UsageError, type OptionSpecs } from './args.js';
import { DATA_DEFAULTS, type TokenDataOptions } from '../train/data/dataset.js';
import { parseKindWeights, type KindWeights } from '../train/data/recall-mixture.js';
import { EMBEDDED_INPUT } from '../train/data/files.js';
import type { SettingName } from '../train/data/readers.js';

const TXT_SPLITS = ['auto', 'file', 'paragraph'] as const;

/** The data flags (besides --data, whose default differs between commands), with their --help lines. */
export const DATA_FLAGS = {
  'validation-fraction': { type: 'string', value: 'F', help: `share of the documents held out for validation (default ${DATA_DEFAULTS.validationFraction})` },
  'text-field': { type: 'string', value: 'NAME', help: `the text field of .jsonl records / column of .parquet files (default ${DATA_DEFAULTS.textField})` },
  'txt-split': { type: 'string', value: TXT_SPLITS.join('|'), help: 'a .txt file is one document (file) or one per blank-line-separated paragraph;\nauto (default): paragraphs for a lone .txt file, else whole files' },
  'recall-mix': { type: 'string', value: 'SHARE', help: 'share of training sequences carrying a synthetic copy / MQAR / passkey episode\n(src/train/data/recall-mixture.ts; never the probes\' instances; default 0)' },
  'recall-warmup': { type: 'string', value: 'TOKENS', help: 'over the first TOKENS training tokens the share falls linearly from 1 to SHARE (default 0)' },
  'recall-kinds': { type: 'string', value: 'KIND=W,...', help: 'how often each episode kind is drawn, of copy, mqar, passkey and repeat (a span repeated\nback to back: the densest copy signal) (default copy=0.5,mqar=0.3,passkey=0.2)' },
  'cache-dir': { type: 'string', value: 'DIR', help: 'where token caches live (default $SUPRA_CACHE_DIR, else ~/.cache/supra/tokens)' },
} as const satisfies OptionSpecs;

/** The library's settings as messages from the command line name them: the flags. */
export const CLI_SETTING_NAMES: SettingName = (setting) =>
  ({
    textField: '--text-field',
    txtSplit: '--txt-split',
    validationFraction: '--validation-fraction',
    seqLen: '--seq-len',
    seed: '--seed',
    shuffleSeed: '--seed',
    recallMix: '--recall-mix',
    recallWarmup: '--recall-warmup',
    recallKinds: '--recall-kinds',
  })[setting];

/** --recall-kinds as weights (undefined: the mixture's default). */
export function recallKindsOption(value: string | undefined): KindWeights | undefined {
  if (value === undefined) return undefined;
  try {
    return parseKindWeights(value, '--recall-kinds');
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/^supra: /, ''));
  }
}

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
    recallMix: floatOption(values['recall-mix'], 'recall-mix', 0),
    recallWarmup: intOption(values['recall-warmup'], 'recall-warmup', 0, 0),
    recallKinds: recallKindsOption(values['recall-kinds']),
    cacheDir: values['cache-dir'] ? resolve(values['cache-dir']) : undefined,
    settingName: CLI_SETTING_NAMES,
  };
}
