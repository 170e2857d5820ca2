// The Trainer driven by hand, step by step, and the recipe's one table: the command line and train()
// read each option's rule from it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../src/cli/args.js';
import { readRecipeFlag } from '../src/cli/recipe-options.js';
import { MetricsLog } from '../src/train/metrics.js';
import { checkRecipeValue, RECIPE_OPTIONS, TRAIN_DEFAULTS, type RecipeKey, type RecipeOption } from '../src/train/recipe.js';
import { train, Trainer, type TrainOptions } from '../src/train/trainer.js';
import { MemoryBatches, repeatedText, tinyConfig } from './helpers/train-data.js';

const data = () => new MemoryBatches(repeatedText(4000, 23, 32), repeatedText(600, 23, 32), 16, 0);

test('Trainer by hand (start, step, finish) is train(): the same metrics lines, losses and final weights', async () => {
  const root = mkdtempSync(join(tmpdir(), 'supra-trainer-'));
  try {
    const options = (out: string): TrainOptions => ({
      init: tinyConfig(), data: data(), out, steps: 6, batchSize: 2, gradAccum: 2, lr: 3e-3, evalEvery: 3, evalSequences: 2,
      evalAtStart: true, saveEvery: 2, quiet: true,
    });
    const whole = await train(options(join(root, 'whole')));

    const trainer = Trainer.open(options(join(root, 'by-hand')));
    const records = [];
    let result;
    try {
      trainer.start();
      while (trainer.stepsDone < trainer.settings.totalSteps) records.push(trainer.step());
      result = trainer.finish('completed');
    } finally {
      trainer.close();
    }
    assert.throws(() => Trainer.open({ ...options(join(root, 'by-hand')) }), /already holds a training run/);

    const timeless = (r: Record<string, unknown>) => ({ ...r, tokens_per_s: undefined });
    const logged = MetricsLog.read(join(root, 'whole', 'metrics.jsonl'));
    assert.equal(logged[0]!.step, 0, 'the validation loss before training is logged as step 0');
    assert.deepEqual(records.map(timeless), logged.slice(1).map(timeless));
    assert.deepEqual(MetricsLog.read(join(root, 'by-hand', 'metrics.jsonl')).map(timeless), logged.map(timeless));
    assert.deepEqual(result.losses, whole.losses);
    assert.equal(result.finalValLoss, whole.finalValLoss);
    assert.ok(typeof records[2]!.val_loss === 'number' && typeof records[5]!.val_loss === 'number', 'steps 3 and 6 are evaluated');
    const weights = (dir: string) => readFileSync(join(root, dir, 'final', 'model.safetensors'));
    assert.ok(weights('whole').equals(weights('by-hand')), 'the final models are bit-identical');
    assert.throws(() => trainer.step(), /has done all of its 6 steps/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('each recipe value has one rule: the command line (naming the flag) and train() (naming the option) both read it from the table', async () => {
  for (const [key, option] of Object.entries(RECIPE_OPTIONS) as [RecipeKey, RecipeOption][]) {
    const rule = option.rule;
    const flag = { [option.flag]: undefined as string | undefined };
    const read = (text: string) => readRecipeFlag({ [option.flag]: text }, key);
    assert.equal(readRecipeFlag(flag, key), undefined, `--${option.flag} not given`);
    if (rule.kind === 'integer') {
      assert.equal(read(String(rule.min + 2)), rule.min + 2);
      assert.throws(() => read(String(rule.min - 1)), (e: Error) => e instanceof UsageError && e.message === `--${option.flag} must be an integer ≥ ${rule.min}, got "${rule.min - 1}"`);
      assert.throws(() => checkRecipeValue(key, (rule.min - 1) as never), new RangeError(`supra: train: ${key} must be an integer ≥ ${rule.min}, got ${rule.min - 1}`));
      assert.throws(() => checkRecipeValue(key, 1.5 as never), /must be an integer/);
    } else if (rule.kind === 'number') {
      assert.equal(read('2.5e-3'), 2.5e-3);
      assert.throws(() => read('fast'), (e: Error) => e instanceof UsageError && e.message === `--${option.flag} must be a number, got "fast"`);
      // β1 and β2 are AdamW's to check (in [0, 1)); every other number must be finite and ≥ 0
      if (rule.min === 0) assert.throws(() => checkRecipeValue(key, -1 as never), new RangeError(`supra: train: ${key} must be a finite number ≥ 0, got -1`));
      else assert.equal(checkRecipeValue(key, -1 as never), -1);
    } else if (rule.kind === 'boolean') {
      assert.equal(read('false'), false);
      assert.throws(() => read('no'), /must be true or false, got "no"/);
    } else if (rule.kind === 'switch') {
      // a bare flag: given (parseArgs gives true) or not
      assert.equal(readRecipeFlag({ [option.flag]: true }, key), true);
      assert.equal(option.default, false);
    } else if (rule.kind === 'list') {
      const two = `${rule.choices[1]}, ${rule.choices[0]}`;
      assert.equal(read(two), `${rule.choices[1]},${rule.choices[0]}`);
      assert.throws(() => read(`${rule.choices[0]},some`), (e: Error) => e instanceof UsageError && e.message.startsWith(`--${option.flag} takes names from ${rule.choices.join(', ')}`));
      assert.throws(() => read(`${rule.choices[0]},${rule.choices[0]}`), /names a module twice/);
      assert.equal(checkRecipeValue(key, two as never), two);
      for (const bad of ['some', '', `${rule.choices[0]},${rule.choices[0]}`]) {
        assert.throws(() => checkRecipeValue(key, bad as never), new Error(`supra: train: ${key} must be a comma-separated list of distinct names from ${rule.choices.join(', ')}, got ${JSON.stringify(bad)}`));
      }
    } else {
      assert.equal(read(rule.choices[1]!), rule.choices[1]);
      assert.throws(() => read('some'), new RegExp(`--${option.flag} must be one of ${rule.choices.join(', ')}`));
      assert.throws(() => checkRecipeValue(key, 'some' as never), new Error(`supra: train: ${key} must be ${rule.choices.map((c) => `"${c}"`).join(' or ')}, got "some"`));
    }
  }
  // every fixed default passes its own rule
  for (const [key, value] of Object.entries(TRAIN_DEFAULTS)) {
    if (key !== 'betas') assert.equal(checkRecipeValue(key as RecipeKey, value as never), value);
  }
  // and train() checks with the same rule and message
  const out = mkdtempSync(join(tmpdir(), 'supra-trainer-lr-'));
  try {
    await assert.rejects(train({ init: tinyConfig(), data: data(), out, steps: 1, lr: -1, quiet: true }), new RangeError('supra: train: lr must be a finite number ≥ 0, got -1'));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
