// supra train: train a softmax teacher or a SUPRA model on text (see src/train/trainer.ts for the recipe).
import { resolve } from 'node:path';
import { choiceOption, floatOption, intOption, normalizationOption, parse, UsageError, type Options } from './args.js';
import { readLatest } from '../train/checkpoint.js';
import { openTokenBatches, type TokenDataOptions } from '../train/data/index.js';
import { CLI_SETTING_NAMES, DATA_FLAGS, DATA_FLAGS_HELP, DATA_FLAGS_USAGE, dataOptionsFromFlags, resolveDataInput } from './data-options.js';
import { TRAIN_DEFAULTS, train, type TrainOptions } from '../train/trainer.js';

const usage = [
  'supra train (--model <dir> [--linearize] | --init <config.json> --tokenizer <dir>) --data <files|dir|glob|@embedded> --out <dir>',
  '       [--tokens N | --steps N] [--batch-size 8] [--seq-len 256] [--grad-accum 1]',
  '       [--lr 3e-4] [--min-lr lr/10] [--warmup-steps min(1000, steps/10)] [--kernel-lr lr] [--beta1 0.9] [--beta2 0.95]',
  '       [--eps 1e-8] [--weight-decay 0.1] [--decay-norms-biases true|false] [--grad-clip 1] [--z-loss 1e-4]',
  '       [--train-only all|kernels] [--kernels-first-steps 0] [--seed 0] [--qk-norm none|rms|layernorm] [--decay lightning|retnet|none]',
  '       [--normalization group-norm|sum]',
  '       [--save-every 1000] [--keep 3] [--eval-every 0] [--eval-sequences 64] [--max-skips 10] [--stop-at STEP]',
  `       ${DATA_FLAGS_USAGE}`,
  '       [--resume] [--quiet] [--log-every 1]',
  '',
  'The model: --model a teacher or SUPRA folder (--linearize: make the teacher a SUPRA model first, kernels',
  'seeded by --seed; --normalization sum: the T2R-style denominator instead of GroupNorm), or --init a config.json for a random initialisation (HF Llama: N(0, 0.02) weights, unit',
  'norms; SUPRA kernels as linearize); --seed also picks the validation documents and the data order.',
  'The budget: steps = tokens / (batch-size · seq-len · grad-accum). --train-only kernels updates only the new',
  'SUPRA parameters (kernel_q, kernel_k, q_norm, k_norm); --kernel-lr gives them their own peak lr.',
  '--kernels-first-steps N: a two-step schedule, kernels only for the first N steps, then every parameter.',
  'Writes <out>/checkpoint-<step> (a model folder plus optimizer.safetensors and trainer_state.json) every',
  '--save-every steps and at the end, <out>/latest naming the newest, <out>/metrics.jsonl, and the final model',
  'as a plain folder <out>/final. --resume continues <out>/latest exactly (model, recipe and data settings come',
  'from the checkpoint). Ctrl-C saves a checkpoint and exits (130); a second Ctrl-C quits at once. A save that',
  'fails (a full disk) removes its partial files and says which checkpoint is intact. The header gives the',
  'epochs the budget makes of the training tokens, with a warning above 4 (the model would mostly see repeats).',
  DATA_FLAGS_HELP,
].join('\n');

function boolOption(value: string | undefined, name: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new UsageError(`--${name} must be true or false, got "${value}"`);
}

/** An option that must be a number when given (undefined otherwise, so the trainer's default applies). */
function maybeFloat(value: string | undefined, name: string): number | undefined {
  return value === undefined ? undefined : floatOption(value, name, 0);
}

function maybeInt(value: string | undefined, name: string, min = 0): number | undefined {
  return value === undefined ? undefined : intOption(value, name, 0, min);
}

/** The command's options: parsed from this table, and each must be in the usage (a test checks it and the README). */
const flags = {
  model: { type: 'string' },
  init: { type: 'string' },
  linearize: { type: 'boolean' },
  tokenizer: { type: 'string' },
  data: { type: 'string', multiple: true },
  out: { type: 'string', short: 'o' },
  resume: { type: 'boolean' },
  tokens: { type: 'string' },
  steps: { type: 'string' },
  'batch-size': { type: 'string' },
  'seq-len': { type: 'string' },
  'grad-accum': { type: 'string' },
  lr: { type: 'string' },
  'min-lr': { type: 'string' },
  'warmup-steps': { type: 'string' },
  'kernel-lr': { type: 'string' },
  beta1: { type: 'string' },
  beta2: { type: 'string' },
  eps: { type: 'string' },
  'weight-decay': { type: 'string' },
  'decay-norms-biases': { type: 'string' },
  'grad-clip': { type: 'string' },
  'z-loss': { type: 'string' },
  'train-only': { type: 'string' },
  'kernels-first-steps': { type: 'string' },
  seed: { type: 'string' },
  'qk-norm': { type: 'string' },
  decay: { type: 'string' },
  normalization: { type: 'string' },
  'save-every': { type: 'string' },
  keep: { type: 'string' },
  'eval-every': { type: 'string' },
  'eval-sequences': { type: 'string' },
  'max-skips': { type: 'string' },
  'stop-at': { type: 'string' },
  ...DATA_FLAGS,
  quiet: { type: 'boolean', short: 'q' },
  'log-every': { type: 'string' },
} satisfies Options;

export const command = {
  summary: 'train or uptrain a teacher or SUPRA model (AdamW, warm-up + cosine, z-loss; atomic checkpoints, --resume)',
  usage,
  options: flags,
  async run(argv: string[]): Promise<void> {
    const { values, positionals } = parse(argv, flags, 'train');
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
        seqLen: intOption(values['seq-len'], 'seq-len', 256, 1),
        seed: intOption(values.seed, 'seed', TRAIN_DEFAULTS.seed),
        log,
      });
    }
    const data = await openTokenBatches(dataOptions);
    const { log: _log, settingName: _settingName, ...dataSettings } = dataOptions;

    const beta1 = maybeFloat(values.beta1, 'beta1');
    const beta2 = maybeFloat(values.beta2, 'beta2');
    const trainOnly = values['train-only'] === undefined ? undefined : choiceOption(values['train-only'], 'train-only', ['all', 'kernels'] as const, 'all');
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
      batchSize: maybeInt(values['batch-size'], 'batch-size', 1),
      gradAccum: maybeInt(values['grad-accum'], 'grad-accum', 1),
      lr: maybeFloat(values.lr, 'lr'),
      minLr: maybeFloat(values['min-lr'], 'min-lr'),
      warmupSteps: maybeInt(values['warmup-steps'], 'warmup-steps'),
      kernelLr: maybeFloat(values['kernel-lr'], 'kernel-lr'),
      betas: beta1 !== undefined || beta2 !== undefined ? [beta1 ?? TRAIN_DEFAULTS.betas[0], beta2 ?? TRAIN_DEFAULTS.betas[1]] : undefined,
      eps: maybeFloat(values.eps, 'eps'),
      weightDecay: maybeFloat(values['weight-decay'], 'weight-decay'),
      decayNormsAndBiases: boolOption(values['decay-norms-biases'], 'decay-norms-biases'),
      gradClip: maybeFloat(values['grad-clip'], 'grad-clip'),
      zLoss: maybeFloat(values['z-loss'], 'z-loss'),
      trainOnly,
      kernelsFirstSteps: maybeInt(values['kernels-first-steps'], 'kernels-first-steps'),
      seed: maybeInt(values.seed, 'seed'),
      saveEvery: maybeInt(values['save-every'], 'save-every'),
      keep: maybeInt(values.keep, 'keep', 1),
      evalEvery: maybeInt(values['eval-every'], 'eval-every'),
      evalSequences: maybeInt(values['eval-sequences'], 'eval-sequences'),
      maxSkips: maybeInt(values['max-skips'], 'max-skips', 1),
      stopAt: maybeInt(values['stop-at'], 'stop-at', 1),
      logEvery: maybeInt(values['log-every'], 'log-every', 1),
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
            `val_loss ${val(result.initialValLoss)} → ${val(result.finalValLoss)}` +
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
