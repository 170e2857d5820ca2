// npm run build:teacher — reproduce the embedded teacher in assets/teacher:
//   1. pretrain a small Llama-style GQA model from scratch on the embedded corpus with the recall mixture
//      woven in (supra train --recall-mix: copy, MQAR and passkey episodes, src/train/data/recall-mixture.ts),
//      so the teacher has in-context recall for the probes to measure,
//   2. store its final weights as BF16 with the tokenizer (supra convert),
//   3. keep the exact command, the mixture, the metrics log, the final validation perplexity (natural text
//      only) and the probe scores of the stored model (scripts/teacher-probes.mjs) beside it.
// The tokenizer (assets/teacher/tokenizer.json) is made by scripts/train-tokenizer.mjs.
// Options: --out <run dir> (default runs/teacher), --resume (continues the run exactly: the mixture is
// part of its saved data settings), --tokens N, --recall-mix SHARE, --recall-warmup TOKENS (defaults below).
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { teacherProbes } from './teacher-probes.mjs';

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const run = opt('out', 'runs/teacher');
const asset = 'assets/teacher';
const recallMix = opt('recall-mix', '0.3');
// the first tokens are mostly episodes (the share falls from 1): induction forms on dense signal, then the
// natural text takes over
const recallWarmup = opt('recall-warmup', '4000000');
const seqLen = 256;
const cli = join(process.env.SUPRA_DIST ?? 'dist', 'src/cli/main.js');

const trainArgs = [
  'train', '--init', 'assets/teacher-config.json', '--tokenizer', asset, '--data', '@embedded', '--recall-mix', recallMix,
  '--recall-warmup', recallWarmup, '--out', run, '--tokens', opt('tokens', '9000000'), '--seq-len', String(seqLen), '--batch-size', '8',
  '--lr', '1e-3', '--min-lr', '1e-4', '--warmup-steps', '100', '--seed', '0',
  '--eval-every', '100', '--eval-sequences', '128', '--save-every', '200', '--keep', '2',
  '--log-every', '10', '--backend', process.env.SUPRA_BACKEND ?? 'native',
];
if (argv.includes('--resume')) trainArgs.push('--resume');

function supra(args) {
  console.log(`$ supra ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [cli, ...args], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

supra(trainArgs);
const tmp = `${asset}.tmp-${process.pid}`;
supra(['convert', join(run, 'final'), '--out', tmp, '--dtype', 'bf16']);
for (const f of ['model.safetensors', 'config.json']) {
  copyFileSync(join(tmp, f), join(asset, f));
}
spawnSync('rm', ['-rf', tmp]);
copyFileSync(join(run, 'metrics.jsonl'), join(asset, 'metrics.jsonl'));
const evals = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => m.val_loss !== undefined);
const last = evals[evals.length - 1];
const rates = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).tokens_per_s).filter((r) => r > 0);
console.log('probing the stored teacher (seed 0, default probe settings) ...');
const probes = await teacherProbes(asset, asset, seqLen);
const card = {
  command: `node scripts/build-teacher.mjs ${argv.join(' ')}`.trim(),
  supra_train: `supra ${trainArgs.join(' ')}`,
  seed: 0,
  recall_mix: {
    share: Number(recallMix),
    warmup_tokens: Number(recallWarmup),
    generator: 'src/train/data/recall-mixture.ts',
    episodes: 'copy 50% (8-64 random tokens, a log-uniform gap of random tokens or natural text, the span again, in half the episodes repeated at that stride), mqar 30% (2-64 pairs, every key queried), passkey 20% (a 5-digit number named in natural text, asked for later)',
    held_out: 'the MQAR pairs and passkey keys of the probes at seed 0 (defaults and the study) are never drawn; separate seed stream',
  },
  final_step: last?.step,
  final_val_loss: last?.val_loss,
  final_val_ppl: last?.val_ppl,
  // the median logged rate: on a quiet 2-core machine the build's time is about tokens / this
  tokens_per_s: rates.sort((a, b) => a - b)[rates.length >> 1],
  probes: probes,
  stored_dtype: 'bfloat16',
  built: new Date().toISOString(),
};
writeFileSync(join(asset, 'training.json'), JSON.stringify(card, null, 2) + '\n');
console.log(`teacher written to ${asset}: val_ppl ${last?.val_ppl}; probes ${JSON.stringify(probes.scores)}; targets met ${JSON.stringify(probes.met)}`);
if (!Object.values(probes.met).every(Boolean)) console.warn(`warning: the teacher misses probe targets ${JSON.stringify(probes.targets)}`);
if (!existsSync(join(asset, 'tokenizer.json'))) console.warn('note: no tokenizer.json in assets/teacher; run scripts/train-tokenizer.mjs');
