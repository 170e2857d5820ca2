// npm run build:teacher — build the embedded teacher in assets/teacher.
// Status (2026-12-03): the recall teacher's recipe, under test (issue 17); it has not made the committed
// teacher, whose training.json records the command that did. A stage-1 run of 2 layers (ffn 704, tied,
// initializer_range 0.0625) did not form the copying circuit within 3,000 steps (scripts/induction-toy.mjs
// header); assets/teacher-config.json is still the committed teacher's shape (6 layers, untied).
//   1. stage 1 (induction): pretrain a small Llama-style GQA model from scratch (assets/teacher-config.json)
//      on 64-token rows that are all a
//      repeat episode (supra train --recall-mix 1 --recall-kinds repeat=1: a random span back to back over the
//      whole row, src/train/data/recall-mixture.ts) at lr 3e-3: dense copy signal, short rows and this lr are
//      what let the copying circuit form within a few thousand steps (scripts/induction-toy.mjs measured it:
//      at 256 tokens, at lr 1e-3, or on the default kinds' sparser episodes the loss sits on a plateau);
//   2. stage 2 (language): continue from stage 1's weights on 256-token rows of natural text with 30% of them
//      carrying an episode, at lr 1e-3, for the natural-text perplexity; the circuit carries over to the
//      longer rows;
//   3. store the final weights as BF16 with the tokenizer (supra convert);
//   4. keep the exact commands, the mixture, both stages' metrics, the final validation perplexity (natural
//      text only) and the probe scores of the stored model (scripts/teacher-probes.mjs) beside it.
// The tokenizer (assets/teacher/tokenizer.json) is made by scripts/train-tokenizer.mjs.
// Options: --out <run dir> (default runs/teacher; the stages go to <out>/stage1 and <out>/stage2),
// --resume (continues exactly where an interrupted build stopped: a finished stage is kept, the
// unfinished one resumes from its latest checkpoint), --stage1-tokens N, --stage2-tokens N, --asset DIR (where
// the stored teacher goes; default assets/teacher).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { teacherProbes } from './teacher-probes.mjs';

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const run = opt('out', 'runs/teacher');
const resume = argv.includes('--resume');
// where the stored teacher goes (another folder for an experiment: the tokenizer is read from assets/teacher)
const asset = opt('asset', 'assets/teacher');
const tokenizerDir = 'assets/teacher';
const cli = join(process.env.SUPRA_DIST ?? 'dist', 'src/cli/main.js');
const backend = process.env.SUPRA_BACKEND ?? 'native';
const seqLen = 256; // the teacher's training length (stage 2), which the probes' targets refer to

const common = ['--data', '@embedded', '--seed', '0', '--keep', '2', '--backend', backend];
// each stage's mixture and budget are recorded in the card as they are passed
const stages = [
  {
    name: 'stage1', recallMix: '1', recallKinds: 'repeat=1', tokens: opt('stage1-tokens', '6144000'),
    from: ['--init', 'assets/teacher-config.json', '--tokenizer', tokenizerDir],
    recipe: ['--seq-len', '64', '--batch-size', '32', '--lr', '3e-3', '--min-lr', '3e-4', '--warmup-steps', '100',
      '--eval-every', '0', '--save-every', '250', '--log-every', '50'],
  },
  {
    name: 'stage2', recallMix: '0.3', recallKinds: 'copy=0.5,mqar=0.3,passkey=0.2', tokens: opt('stage2-tokens', '4096000'),
    from: ['--model', join(run, 'stage1', 'final')],
    recipe: ['--seq-len', String(seqLen), '--batch-size', '8', '--lr', '1e-3', '--min-lr', '1e-4', '--warmup-steps', '50',
      '--eval-every', '100', '--eval-sequences', '128', '--save-every', '200', '--log-every', '10'],
  },
];
const trainArgs = (stage, out) => ['train', ...stage.from, '--recall-mix', stage.recallMix, '--recall-kinds', stage.recallKinds,
  '--tokens', stage.tokens, '--out', out, ...stage.recipe, ...common];

function supra(args) {
  console.log(`$ supra ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [cli, ...args], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

const commands = [];
for (const stage of stages) {
  const out = join(run, stage.name);
  const args = trainArgs(stage, out);
  commands.push(`supra ${args.join(' ')}`);
  if (existsSync(join(out, 'final', 'config.json'))) {
    if (!resume) {
      console.error(`${out} holds a finished run: pass --resume to keep it, or remove ${run} to build again`);
      process.exit(2);
    }
    console.log(`${stage.name}: finished earlier (${join(out, 'final')})`);
    continue;
  }
  supra(resume && existsSync(join(out, 'latest')) ? [...args, '--resume'] : args);
}

const finalDir = join(run, 'stage2', 'final');
const tmp = `${asset}.tmp-${process.pid}`;
supra(['convert', finalDir, '--out', tmp, '--dtype', 'bf16']);
mkdirSync(asset, { recursive: true });
for (const f of ['model.safetensors', 'config.json']) copyFileSync(join(tmp, f), join(asset, f));
for (const f of ['tokenizer.json', 'tokenizer_config.json']) if (!existsSync(join(asset, f))) copyFileSync(join(tokenizerDir, f), join(asset, f));
rmSync(tmp, { recursive: true, force: true });

const metrics = (stage) => readFileSync(join(run, stage, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => ({ stage, ...JSON.parse(l) }));
const all = [...metrics('stage1'), ...metrics('stage2')];
writeFileSync(join(asset, 'metrics.jsonl'), all.map((m) => JSON.stringify(m)).join('\n') + '\n');
const evals = all.filter((m) => m.stage === 'stage2' && m.val_loss !== undefined);
const last = evals[evals.length - 1];
// the median logged rate of each stage: on a quiet 2-core machine a stage takes about tokens / this
const medianRate = (stage) => {
  const r = all.filter((m) => m.stage === stage && m.tokens_per_s > 0).map((m) => m.tokens_per_s).sort((a, b) => a - b);
  return r[r.length >> 1];
};
console.log('probing the stored teacher (seed 0, default probe settings) ...');
const probes = await teacherProbes(asset, tokenizerDir, seqLen);
const card = {
  command: `node scripts/build-teacher.mjs ${argv.filter((a) => a !== '--resume').join(' ')}`.trim(),
  // threads change how some products round on native (docs/results.md), so a rebuild matches at the same count
  threads: process.env.SUPRA_THREADS ? Number(process.env.SUPRA_THREADS) : 'default (all cores)',
  stages: stages.map((s, i) => ({ name: s.name, supra_train: commands[i], tokens: Number(s.tokens), recall_mix: Number(s.recallMix), recall_kinds: s.recallKinds, tokens_per_s: medianRate(s.name) })),
  // what the demo's --budget multiplies (models/embedded.ts teacherPretrainingTokens)
  pretraining_tokens: stages.reduce((n, s) => n + Number(s.tokens), 0),
  seed: 0,
  recall_mix: {
    generator: 'src/train/data/recall-mixture.ts',
    episodes: 'repeat (a span of 4-32 random tokens back to back over the whole row), copy (8-64 random tokens, at most half the row, a log-uniform gap of random tokens or natural text, the span again, in half the episodes repeated at that stride), mqar (2-64 pairs, at most a quarter of the row, every key queried), passkey (a 5-digit number named in natural text, asked for later); the weights of each stage in stages[].recall_kinds',
    held_out: 'the MQAR pairs and passkey keys of the probes at seed 0 (defaults and the study) are never drawn; separate seed stream',
  },
  final_step: last?.step,
  final_val_loss: last?.val_loss,
  final_val_ppl: last?.val_ppl,
  probes,
  stored_dtype: 'bfloat16',
  built: new Date().toISOString(),
};
writeFileSync(join(asset, 'training.json'), JSON.stringify(card, null, 2) + '\n');
console.log(`teacher written to ${asset}: val_ppl ${last?.val_ppl}; probes ${JSON.stringify(probes.scores)}; targets met ${JSON.stringify(probes.met)}`);
if (!Object.values(probes.met).every(Boolean)) console.warn(`warning: the teacher misses probe targets ${JSON.stringify(probes.targets)}`);
