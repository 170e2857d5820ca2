// supra train: train a softmax teacher or a SUPRA model on text (the recipe's options: src/train/recipe.ts;
// the training loop: src/train/trainer.ts).
import { resolve } from 'node:path';
import { choiceOption, intOption, normalizationOption, optionsHelp, parse, UsageError, type OptionSpecs } from './args.js';
import { readRecipeFlag, readRecipeFlags, recipeFlags } from './recipe-options.js';
import { readLatest } from '../train/checkpoint.js';
import { openTokenBatches, type TokenDataOptions } from '../train/data/index.js';
import { CLI_SETTING_NAMES, DATA_FLAGS, dataOptionsFromFlags, recallKindsOption, resolveDataInput } from './data-options.js';
import { DEFAULT_KIND_WEIGHTS, EPISODE_KINDS } from '../train/data/recall-mixture.js';
import { TRAIN_DEFAULTS, type RecipeKey } from '../train/recipe.js';
import { train, type TrainOptions } from '../train/trainer.js';

/** The recipe's flags (src/train/recipe.ts), in --help order: the recipe, then the run's checkpoints and evaluations. */
const RECIPE = [
  'batchSize', 'seqLen', 'gradAccum', 'lr', 'minLr', 'warmupSteps', 'kernelLr', 'beta1', 'beta2', 'eps', 'weightDecay',
  'decayNormsAndBiases', 'gradClip', 'zLoss', 'trainOnly', 'kernelsFirstSteps', 'recipe', 'transferSteps', 'loraRank',
  'loraAlpha', 'loraTargets', 'seed', 'matmulPrecision',
] as const satisfies readonly RecipeKey[];
const RUN = ['checkpointActivations', 'saveEvery', 'keep', 'evalEvery', 'evalSequences', 'evalAtStart', 'maxSkips'] as const satisfies readonly RecipeKey[];

const OPTIONS = {
  model: { type: 'string', value: 'DIR', help: 'a teacher or SUPRA model folder to train' },
  linearize: { type: 'boolean', help: 'make the --model teacher a SUPRA model first (kernels seeded by --seed)' },
  init: { type: 'string', value: 'CONFIG', help: 'a config.json for a random initialisation instead (HF Llama: N(0, 0.02) weights,\nunit norms; SUPRA kernels as linearize)' },
  tokenizer: { type: 'string', value: 'DIR', help: 'with --init: the folder with tokenizer.json' },
  data: { type: 'string', multiple: true, value: 'INPUT', help: 'files, folders, globs or @embedded (docs/data.md)' },
  out: { type: 'string', short: 'o', value: 'DIR', help: 'checkpoints, metrics.jsonl and the final model go here' },
  resume: { type: 'boolean', help: 'continue <out>/latest exactly (model, recipe and data settings come from it)' },
  tokens: { type: 'string', value: 'N', help: 'the budget in tokens: steps = tokens / (batch-size · seq-len · grad-accum)' },
  steps: { type: 'string', value: 'N', help: 'or the budget in optimizer steps' },
  ...recipeFlags(RECIPE),
  'qk-norm': { type: 'string', value: 'none|rms|layernorm', help: 'with --linearize or --init: as supra linearize' },
  decay: { type: 'string', value: 'lightning|retnet|none', help: 'with --linearize or --init: as supra linearize' },
  normalization: { type: 'string', value: 'group-norm|sum', help: 'with --linearize or --init: sum is the T2R-style denominator instead of GroupNorm' },
  ...recipeFlags(RUN),
  'stop-at': { type: 'string', value: 'STEP', help: 'stop (with a checkpoint) at this step, keeping the schedule of the whole budget' },
  ...DATA_FLAGS,
  quiet: { type: 'boolean', short: 'q', help: 'no per-step lines' },
  ...recipeFlags(['logEvery']),
} as const satisfies OptionSpecs;

const usage = [
  'supra train (--model <dir> [--linearize] | --init <config.json> --tokenizer <dir>) --data <input>... --out <dir> [options]',
  '',
  optionsHelp(OPTIONS),
  '',
  'Writes <out>/checkpoint-<step> (a model folder plus optimizer.safetensors and trainer_state.json), <out>/latest',
  'naming the newest, <out>/metrics.jsonl, and the final model as a plain folder <out>/final. With --recipe',
  'attention-transfer a checkpoint also holds the adapter (adapter_config.json, adapter_model.safetensors; the model',
  'files are the base it applies to), <out>/final has the adapter merged in and <out>/adapter is the adapter alone',
  '(supra merge applies one to a model folder). Ctrl-C saves a checkpoint and exits (130); a second Ctrl-C quits at',
  'once. A save that fails (a full disk) removes its partial files and says which checkpoint is intact. The header',
  'gives the epochs the budget makes of the training tokens, with a warning above 4 (the model would mostly see',
  'repeats).',
].join('\n');

function maybeInt(value: string | undefined, name: string, min = 0): number | undefined {
  return value === undefined ? undefined : intOption(value, name, 0, min);
}

export const command = {
  summary: 'train or uptrain a teacher or SUPRA model (AdamW, warm-up + cosine, z-loss; atomic checkpoints, --resume)',
  usage,
  options: OPTIONS,
  async run(argv: string[]): Promise<void> {
    const { values, positionals } = parse(argv, OPTIONS, 'train');
    if (positionals.length > 0) throw new UsageError(`train takes no positional arguments (got ${positionals.join(' ')}); the model is --model <dir> or --init <config.json>`);
    if (!values.out) throw new UsageError('train needs --out <dir> for checkpoints and the final model');
    const out = resolve(values.out);
    const quiet = values.quiet === true;
    const log = quiet ? undefined : (m: string) => console.log(m);

    // The data: from the command line, or (on resume) as the checkpoint's run opened it.
    let dataOptions: TokenDataOptions;
    const latest = values.resume ? readLatest(out) : null;
    if (values.resume && !latest) throw new UsageError(`--resume: ${out} has no checkpoint to resume (no ${out}/latest)`);
    const savedData = latest?.state.settings.data as (TokenDataOptions & { cacheDir?: string }) | null | undefined;
    if (latest) {
      if (!savedData) throw new Error(`supra: ${latest.dir}: the run was not started by supra train (no data settings); resume it from code with train()`);
      dataOptions = { ...savedData, cacheDir: values['cache-dir'] ? resolve(values['cache-dir']) : savedData.cacheDir, log, settingName: CLI_SETTING_NAMES };
      if (values.data && JSON.stringify(values.data.map(resolveDataInput)) !== JSON.stringify(savedData.data)) {
        throw new UsageError(`--resume: --data ${values.data.join(' ')} differs from the checkpoint's run (${savedData.data.join(' ')})`);
      }
      if (values['recall-mix'] !== undefined && Number(values['recall-mix']) !== (savedData.recallMix ?? 0)) {
        throw new UsageError(`--resume: --recall-mix ${values['recall-mix']} differs from the checkpoint's run (${savedData.recallMix ?? 0})`);
      }
      if (values['recall-warmup'] !== undefined && Number(values['recall-warmup']) !== (savedData.recallWarmup ?? 0)) {
        throw new UsageError(`--resume: --recall-warmup ${values['recall-warmup']} differs from the checkpoint's run (${savedData.recallWarmup ?? 0})`);
      }
      const kinds = recallKindsOption(values['recall-kinds']);
      const savedKinds = { ...DEFAULT_KIND_WEIGHTS, ...savedData.recallKinds };
      if (kinds && EPISODE_KINDS.some((k) => kinds[k] !== savedKinds[k])) {
        throw new UsageError(`--resume: --recall-kinds ${values['recall-kinds']} differs from the checkpoint's run (${EPISODE_KINDS.map((k) => `${k}=${savedKinds[k]}`).join(',')})`);
      }
    } else {
      const given = [values.model, values.init].filter((v) => v !== undefined).length;
      if (given !== 1) throw new UsageError('train needs exactly one of --model <dir> (a teacher or SUPRA folder) and --init <config.json>');
      if (values.linearize && !values.model) throw new UsageError('--linearize needs --model <teacher-dir>');
      if (!values.linearize && (values['qk-norm'] !== undefined || values.decay !== undefined || values.normalization !== undefined)) {
        throw new UsageError('--qk-norm, --decay and --normalization choose the SUPRA layers of --linearize; a SUPRA folder or config already sets them');
      }
      if (!values.data || values.data.length === 0) throw new UsageError('train needs --data <files, folder, glob or @embedded>');
      const tokenizerDir = values.tokenizer ?? values.model;
      if (!tokenizerDir) throw new UsageError('--init needs --tokenizer <dir> (a folder with tokenizer.json) to read the data');
      dataOptions = dataOptionsFromFlags(values.data, values, {
        tokenizerDir: resolve(tokenizerDir),
        seqLen: readRecipeFlag(values, 'seqLen') ?? TRAIN_DEFAULTS.seqLen,
        seed: readRecipeFlag(values, 'seed') ?? TRAIN_DEFAULTS.seed,
        log,
      });
    }
    const data = await openTokenBatches(dataOptions);
    const { log: _log, settingName: _settingName, ...dataSettings } = dataOptions;
    if (data.validationTokens > 0 && data.validationTokens < dataOptions.seqLen + 1) {
      // not an error (training works without it), but every val_loss would read n/a without saying why
      console.error(
        `supra train: warning: the validation split has ${data.validationTokens} tokens, fewer than --seq-len + 1 = ${dataOptions.seqLen + 1}, ` +
          'so no validation loss can be measured; raise --validation-fraction, lower --seq-len or add data',
      );
    }

    // the data fixes the sequence length (train() takes it from there); β1 and β2 are one setting, betas
    const { seqLen: _seqLen, beta1, beta2, ...recipe } = readRecipeFlags(values, [...RECIPE, ...RUN, 'logEvery']);
    const options: TrainOptions = {
      model: values.model,
      init: values.init,
      linearize: values.linearize
        ? {
            qk_norm: choiceOption(values['qk-norm'], 'qk-norm', ['none', 'rms', 'layernorm'] as const, 'none'),
            decay: choiceOption(values.decay, 'decay', ['lightning', 'retnet', 'none'] as const, 'lightning'),
            normalization: normalizationOption(values.normalization),
          }
        : undefined,
      tokenizerDir: values.tokenizer ?? values.model,
      data,
      dataSettings: dataSettings as unknown as Record<string, unknown>,
      out,
      resume: values.resume === true,
      tokens: maybeInt(values.tokens, 'tokens', 1),
      steps: maybeInt(values.steps, 'steps', 1),
      ...recipe,
      betas: beta1 !== undefined || beta2 !== undefined ? [beta1 ?? TRAIN_DEFAULTS.betas[0], beta2 ?? TRAIN_DEFAULTS.betas[1]] : undefined,
      stopAt: maybeInt(values['stop-at'], 'stop-at', 1),
      quiet,
      handleSigint: true,
    };
    if (!latest && options.tokens === undefined && options.steps === undefined) throw new UsageError('train needs a budget: --tokens N (or --steps N)');
    let status: string;
    try {
      const result = await train(options);
      status = result.status;
      if (!quiet) {
        const val = (v: number | null) => (v === null ? 'n/a' : v.toFixed(4));
        console.log(
          `${result.status}: step ${result.step}/${result.totalSteps}, ${result.tokens.toLocaleString('en')} tokens, ` +
            `val_loss ${result.initialValLoss === null ? '' : `${val(result.initialValLoss)} → `}${val(result.finalValLoss)}` +
            // a resumed finished run trains nothing: show the rate measured when it did, never "0 tok/s"
            (result.tokensPerSecond > 0 ? `, ${Math.round(result.tokensPerSecond)} tok/s${result.stepsThisRun === 0 ? ' (measured earlier)' : ''}` : '') +
            (result.skippedSteps ? `, ${result.skippedSteps} steps skipped` : ''),
        );
      }
    } finally {
      data.close();
    }
    if (status === 'interrupted') process.exit(130); // the checkpoint is saved; 130 = stopped by SIGINT
  },
};
