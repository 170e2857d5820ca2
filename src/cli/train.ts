// supra train: train a softmax teacher or a SUPRA model on text (see src/train/trainer.ts for the recipe).
import { resolve } from 'node:path';
import { choiceOption, floatOption, intOption, normalizationOption, optionsHelp, parse, UsageError, type OptionSpecs } from './args.js';
import { readLatest } from '../train/checkpoint.js';
import { openTokenBatches, type TokenDataOptions } from '../train/data/index.js';
import { CLI_SETTING_NAMES, DATA_FLAGS, dataOptionsFromFlags, resolveDataInput } from './data-options.js';
import { TRAIN_DEFAULTS } from '../train/recipe.js';
import { train, type TrainOptions } from '../train/trainer.js';
import { formatNumber } from '../train/metrics.js';

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
  'batch-size': { type: 'string', value: 'N', help: `sequences per micro-batch (default ${TRAIN_DEFAULTS.batchSize})` },
  'seq-len': { type: 'string', value: 'N', help: 'tokens per sequence (default 256)' },
  'grad-accum': { type: 'string', value: 'N', help: `micro-batches per optimizer step (default ${TRAIN_DEFAULTS.gradAccum})` },
  lr: { type: 'string', value: 'LR', help: `peak learning rate (default ${formatNumber(TRAIN_DEFAULTS.lr)})` },
  'min-lr': { type: 'string', value: 'LR', help: 'where the cosine ends (default lr/10)' },
  'warmup-steps': { type: 'string', value: 'N', help: 'linear warm-up steps (default min(1000, steps/10))' },
  'kernel-lr': { type: 'string', value: 'LR', help: 'peak lr of the new SUPRA parameters (default --lr)' },
  beta1: { type: 'string', value: 'B', help: `AdamW β1 (default ${TRAIN_DEFAULTS.betas[0]})` },
  beta2: { type: 'string', value: 'B', help: `AdamW β2 (default ${TRAIN_DEFAULTS.betas[1]})` },
  eps: { type: 'string', value: 'EPS', help: `AdamW epsilon (default ${formatNumber(TRAIN_DEFAULTS.eps)})` },
  'weight-decay': { type: 'string', value: 'W', help: `decoupled weight decay (default ${TRAIN_DEFAULTS.weightDecay})` },
  'decay-norms-biases': { type: 'string', value: 'true|false', help: `also decay norm weights and biases (default ${TRAIN_DEFAULTS.decayNormsAndBiases})` },
  'grad-clip': { type: 'string', value: 'NORM', help: `clip the gradient's global norm (default ${TRAIN_DEFAULTS.gradClip})` },
  'z-loss': { type: 'string', value: 'W', help: `weight of the z-loss, log²Z (default ${formatNumber(TRAIN_DEFAULTS.zLoss)})` },
  'train-only': { type: 'string', value: 'all|kernels', help: 'kernels: update only the new SUPRA parameters (kernel_q, kernel_k, q_norm, k_norm)\n(default all)' },
  'kernels-first-steps': { type: 'string', value: 'N', help: 'a two-step schedule: kernels only for the first N steps, then every parameter\n(default 0)' },
  seed: { type: 'string', value: 'N', help: `initialisation, validation documents and data order (default ${TRAIN_DEFAULTS.seed})` },
  'qk-norm': { type: 'string', value: 'none|rms|layernorm', help: 'with --linearize or --init: as supra linearize' },
  decay: { type: 'string', value: 'lightning|retnet|none', help: 'with --linearize or --init: as supra linearize' },
  normalization: { type: 'string', value: 'group-norm|sum', help: 'with --linearize or --init: sum is the T2R-style denominator instead of GroupNorm' },
  'save-every': { type: 'string', value: 'N', help: `a checkpoint every N steps, and one at the end (default ${TRAIN_DEFAULTS.saveEvery})` },
  keep: { type: 'string', value: 'N', help: `checkpoints kept (default ${TRAIN_DEFAULTS.keep})` },
  'eval-every': { type: 'string', value: 'N', help: `validation loss every N steps; 0: at the end only (default ${TRAIN_DEFAULTS.evalEvery})` },
  'eval-sequences': { type: 'string', value: 'N', help: `validation sequences per evaluation (default ${TRAIN_DEFAULTS.evalSequences})` },
  'max-skips': { type: 'string', value: 'N', help: `steps with non-finite gradients skipped before the run stops (default ${TRAIN_DEFAULTS.maxSkips})` },
  'stop-at': { type: 'string', value: 'STEP', help: 'stop (with a checkpoint) at this step, keeping the schedule of the whole budget' },
  ...DATA_FLAGS,
  quiet: { type: 'boolean', short: 'q', help: 'no per-step lines' },
  'log-every': { type: 'string', value: 'N', help: `a progress line every N steps (default ${TRAIN_DEFAULTS.logEvery})` },
} as const satisfies OptionSpecs;

const usage = [
  'supra train (--model <dir> [--linearize] | --init <config.json> --tokenizer <dir>) --data <input>... --out <dir> [options]',
  '',
  optionsHelp(OPTIONS),
  '',
  'Writes <out>/checkpoint-<step> (a model folder plus optimizer.safetensors and trainer_state.json), <out>/latest',
  'naming the newest, <out>/metrics.jsonl, and the final model as a plain folder <out>/final. Ctrl-C saves a',
  'checkpoint and exits (130); a second Ctrl-C quits at once. A save that fails (a full disk) removes its partial',
  'files and says which checkpoint is intact. The header gives the epochs the budget makes of the training',
  'tokens, with a warning above 4 (the model would mostly see repeats).',
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
    if (data.validationTokens > 0 && data.validationTokens < dataOptions.seqLen + 1) {
      // not an error (training works without it), but every val_loss would read n/a without saying why
      console.error(
        `supra train: warning: the validation split has ${data.validationTokens} tokens, fewer than --seq-len + 1 = ${dataOptions.seqLen + 1}, ` +
          'so no validation loss can be measured; raise --validation-fraction, lower --seq-len or add data',
      );
    }

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
