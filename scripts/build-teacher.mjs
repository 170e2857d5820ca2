// npm run build:teacher — build the embedded teacher in assets/teacher.
// The teacher's shape is assets/teacher-config.json (6 layers, width 256, tied embeddings); the recipe:
//   1. stage 1 (induction): pretrain a 2-layer model of that width from scratch (<out>/stage1-config.json)
//      on 64-token rows that are all a repeat episode (supra train --recall-mix 1 --recall-kinds repeat=1: a
//      random span back to back over the whole row, src/train/data/recall-mixture.ts) at a constant lr 3e-3:
//      dense copy signal, short rows, few layers and an lr that does not decay are what let the copying
//      circuit form (scripts/induction-toy.mjs measured it: two seeds jumped at about step 2,200; with a
//      cosine decay, 6 layers, 256-token rows, lr 1e-3 or the default kinds' sparser episodes the loss sits
//      on a plateau past 3,000 steps); when the jump comes is a matter of chance, so stage 1 is two runs
//      (seeds --seed and --seed + 1, one thread each) side by side until one has it — from step 1,000, every 250
//      steps, the build checks that the second copy of a span is ≥ 6 nats easier than the first — up to its
//      budget (4,000 steps);
//   2. stage 2a (language at stage 1's size): its residual stream scaled down (scripts/grow-model.mjs
//      --residual-scale: the same function, weights that learn natural text faster), the 2-layer model trains
//      700 steps on stage 2's data (a 2-layer step costs about 2.5× less than a 6-layer one);
//   3. grow it to the teacher's shape (scripts/grow-model.mjs: new layers on top and new MLP units whose
//      writes into the residual stream start at zero, so the grown model computes what stage 2a's did);
//   4. stage 2 (language): continue on 256-token rows of natural text with 30% of them carrying an episode
//      (repeat, copy, MQAR, passkey), at lr 1e-3 with a cosine decay, for the natural-text perplexity; the
//      circuit carries over to the longer rows while repeat rows keep it from being overwritten;
//   5. store the final weights as BF16 with the tokenizer (supra convert);
//   6. keep the exact commands, the mixture, every stage's metrics, the final validation perplexity (natural
//      text only) and the probe scores of the stored model (scripts/teacher-probes.mjs) beside it.
// The tokenizer (assets/teacher/tokenizer.json) is made by scripts/train-tokenizer.mjs.
// Options: --out <run dir> (default runs/teacher; the stages go to <out>/stage1/seed-N, <out>/stage2a and <out>/stage2),
// --resume (continues exactly where an interrupted build stopped: a finished stage is kept, the
// unfinished one resumes from its latest checkpoint), --stage1-tokens N (stage 1's cap), --stage2a-tokens N (the
// length of stage 2a's lr schedule) and --stage2a-steps N (where it stops on it), --stage2-tokens N, --asset DIR (where
// the stored teacher goes; default assets/teacher), --stop-at STAGE:STEP (stop that stage at a step with a
// checkpoint, as an interruption would; --resume continues), --skip-probes (no check that stage 1
// formed the copying circuit and a card without probe scores: quick experiment builds and the resume test),
// --seed N (of the stages' data and initialization, default 1; stage 2a draws its data from --seed + 1).
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { quickProbes, teacherProbes } from './teacher-probes.mjs';
import { growModel } from './grow-model.mjs';

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const run = opt('out', 'runs/teacher');
const resume = argv.includes('--resume');
const skipProbes = argv.includes('--skip-probes');
const stopAt = opt('stop-at');
const stopMatch = stopAt === undefined ? null : /^(stage1|stage2a|stage2):([1-9]\d*)$/.exec(stopAt);
if (stopAt !== undefined && !stopMatch) {
  console.error(`build-teacher: --stop-at expects STAGE:STEP with STAGE stage1, stage2a or stage2 and STEP ≥ 1, got ${stopAt}`);
  process.exit(2);
}
// where the stored teacher goes (another folder for an experiment: the tokenizer is read from assets/teacher)
const asset = opt('asset', 'assets/teacher');
const tokenizerDir = 'assets/teacher';
const cli = join(process.env.SUPRA_DIST ?? 'dist', 'src/cli/main.js');
const backend = process.env.SUPRA_BACKEND ?? 'native';
const seqLen = 256; // the teacher's training length (stage 2), which the probes' targets refer to

// The seed of stage 2's data and of stage 1's first run (its second run takes the next seed). Measured on the
// copying circuit's plateau (2026-12-04): scripts/induction-toy.mjs on the stage 1 shape jumped at about step
// 2,200 in 3 runs of 3; supra train's stage 1 at seed 1 on one thread at about 1,900, but at seed 0 and at seed 1
// on two threads (three runs) it had not by steps 3,000-4,450 (loss 5.6-5.7): a plateau of uneven length.
const seed = opt('seed', '1');
if (!/^\d+$/.test(seed)) {
  console.error(`build-teacher: --seed expects a whole number, got ${seed}`);
  process.exit(2);
}
const common = ['--data', '@embedded', '--keep', '2', '--backend', backend];
// Stage 1 has the copying circuit when the second copy of a span is at least this many nats easier than the
// first, both right after it and after a gap of 32 random tokens (quickProbes' gaps 0 and 32, inside stage 1's
// 64-token rows; a first copy of random tokens costs about ln 3,687 ≈ 8.2 nats). Mid-jump is not enough: seed 2
// stopped at 4.31 / -1.83 (step 1,750, loss 5.09) and 100 steps of stage 2 erased it (0.11); 500 steps later the
// jump had ended (loss 2.40, margins 8.40 / 7.45, MQAR at 16 pairs 0.96 already) (2026-12-04).
const STAGE1_MIN_COPY_MARGIN = 6;
const STAGE1_MARGIN_GAPS = 2; // the first two of quickProbes' gaps (0, 32)
const stage1Margin = (q) => Math.min(...q.copyMargin.slice(0, STAGE1_MARGIN_GAPS));
// The teacher's shape is assets/teacher-config.json; stage 1 trains a smaller model of the same width, which
// scripts/grow-model.mjs then grows to that shape (new layers on top, new MLP units after the old ones).
const teacherConfigPath = 'assets/teacher-config.json';
const teacherConfig = JSON.parse(readFileSync(teacherConfigPath, 'utf8'));
const stage1Shape = { num_hidden_layers: 2 };
const stage1Config = join(run, 'stage1-config.json');
const stage1Rows = { seqLen: 64, batch: 32 };
const stage1TokensPerStep = stage1Rows.seqLen * stage1Rows.batch;
const scaledDir = join(run, 'scaled'); // stage 1's model, its residual stream scaled (stage 2a starts here)
const grownDir = join(run, 'grown'); // stage 2a's model grown to the teacher's shape (stage 2 starts here)
// Stage 2 trains on 256-token rows of natural text, 30% of them carrying an episode; stage 2a on the same
// mixture and rows at stage 1's size, for the first STAGE2A_STEPS steps of a longer schedule (--stage2a-tokens), so
// its lr is still high where it stops; the grown model then starts stage 2's own schedule
const languageRows = { seqLen, batch: 8 };
const languageTokensPerStep = languageRows.seqLen * languageRows.batch;
const STAGE2A_STEPS = Number(opt('stage2a-steps', '700'));
const stage2aTokens = opt('stage2a-tokens', '3072000');
if (!Number.isInteger(STAGE2A_STEPS) || STAGE2A_STEPS < 1 || STAGE2A_STEPS >= Number(stage2aTokens) / languageTokensPerStep) {
  console.error(`build-teacher: --stage2a-steps must be a whole number ≥ 1 below the ${Number(stage2aTokens) / languageTokensPerStep} steps of --stage2a-tokens ${stage2aTokens}, got ${opt('stage2a-steps')}`);
  process.exit(2);
}
const languageMix = { recallMix: '0.3', recallKinds: 'repeat=0.3,copy=0.3,mqar=0.25,passkey=0.15' };
const languageRecipe = ['--seq-len', String(languageRows.seqLen), '--batch-size', String(languageRows.batch), '--lr', '1e-3', '--min-lr', '1e-4',
  '--warmup-steps', '50', '--eval-every', '100', '--eval-sequences', '128', '--save-every', '200', '--log-every', '10'];
// each stage's mixture and budget are recorded in the card as they are passed
const stages = [
  {
    name: 'stage1', recallMix: '1', recallKinds: 'repeat=1', tokens: opt('stage1-tokens', String(4000 * stage1TokensPerStep)),
    from: ['--init', stage1Config, '--tokenizer', tokenizerDir],
    recipe: ['--seq-len', String(stage1Rows.seqLen), '--batch-size', String(stage1Rows.batch), '--lr', '3e-3', '--min-lr', '3e-3', '--warmup-steps', '100',
      '--eval-every', '0', '--save-every', '250', '--log-every', '50'],
  },
  // its data from the next seed: stage 2 starts where the data stream of --seed starts
  {
    name: 'stage2a', ...languageMix, tokens: stage2aTokens, seed: String(Number(seed) + 1), stopAt: STAGE2A_STEPS,
    from: ['--model', scaledDir], recipe: languageRecipe,
  },
  {
    // repeat rows stay in the mixture: without them stage 2 erased stage 1's circuit within 100 steps (copy
    // margin 8.4 → 0.2 at lr 1e-3; at lr 1e-4 MQAR fell from 0.96 to 0.23 in 200 steps); with them at lr 1e-3 it held
    // (8.1 / 8.2 / 4.9 at gaps 0 / 32 / 128 and MQAR 0.97 after 300 steps) (2026-12-04)
    name: 'stage2', ...languageMix, tokens: opt('stage2-tokens', '6144000'),
    from: ['--model', grownDir], recipe: languageRecipe,
  },
];
// `stop`: the step to stop at (with a checkpoint) on the schedule of the whole budget
const trainArgs = (stage, out, stop = stage.stopAt) => ['train', ...stage.from, '--recall-mix', stage.recallMix, '--recall-kinds', stage.recallKinds,
  '--tokens', stage.tokens, ...(stop < Infinity ? ['--stop-at', String(stop)] : []), '--out', out, ...stage.recipe, '--seed', stage.seed ?? seed, ...common];

function supra(args) {
  console.log(`$ supra ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [cli, ...args], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

// Stage 1 leaves its weights oversized (embedding rms 0.195, 3× their initial size), and so they learn natural
// text slowly; scaling the residual stream down (the same function) fixes it. Measured from stage 1's seed-2
// model at step 2,250 on stage 2's data, one thread, validation perplexity (2026-12-05):
//   kept at 2 layers: unscaled 581 at 500; × 1/3 410 / 381 at 500 / 600; × 0.15 407 / 346 / 308 at 500-700
//     (copy margins 8.55 / 9.18 / 7.01 nats at gaps 0 / 32 / 128, MQAR 0.97); from random weights 331 / 297 / 270;
//   grown to 6 layers at once: unscaled 1,098 / 949 / 834 / 695 / 585 at steps 100-500; × 1/3: 1,101 / 880 / 625 /
//     444 / 360 (188 at 1,100, 120.6 at 2,000, 110.1 at 2,400 of 3,000; copy margin ≥ 8.0 within 256 tokens,
//     MQAR@16 0.97, passkey@256 0.6); × 0.15 1,084 / 1,327 / 1,318 at 100-300 (grad norms up to 49: the new
//     layers' writes, which Adam grows at lr a step from zero, swamp a stream that small), with a 300-step warm-up
//     no better; from random weights (6 layers) 956 / 584 / 443 at 100-300;
//   × 0.15, stage 2a's 700 steps at 2 layers, then grown (this recipe): 282 / 262 / 236 / 213 at 100-400 of stage 2,
//     156 at 900, 139 at 1,200, 111.7 at 1,800, 103.8 at 2,100; at 1,800 and 2,100 copy margin ≥ 7.98 within 256
//     tokens, MQAR@16 0.98, passkey 1.0 / 1.0 / 0.4 at 128 / 256 / 512 tokens.
// Not the cause (each tried alone, 2 layers): the MLPs (re-drawn: 548 at 500), stage 1's length (from step 1,750
// or 2,000: 847 / 632 at 500), freezing stage 1's layers, new layers writing from the start, softer attention
// (q and k × 0.5), a non-preserving shrink of every matrix × 0.5 (the circuit was lost: margin 0.2).
const RESIDUAL_SCALE = 0.15;
const growth = { layers: teacherConfig.num_hidden_layers, intermediate: teacherConfig.intermediate_size };
const userStop = (name) => (stopMatch && stopMatch[1] === name ? Number(stopMatch[2]) : Infinity);
const stoppedByUser = (stage) => {
  console.log(`${stage.name} stopped before the end of its budget (checkpoint in ${join(run, stage.name)}); run the same command with --resume to continue`);
  process.exit(0);
};
// the step of a run folder's latest checkpoint (0: none yet), as the trainer reads it
const { readLatest } = await import(pathToFileURL(join(process.cwd(), process.env.SUPRA_DIST ?? 'dist', 'src/train/checkpoint.js')).href);
const latestStep = (out) => readLatest(out)?.step ?? 0;
const refuseFinished = (what) => {
  if (resume) return;
  console.error(`${what} holds a finished stage: pass --resume to keep it, or remove ${run} to build again`);
  process.exit(2);
};

// Stage 1 runs until the copying circuit has formed, up to its budget, in STAGE1_CANDIDATES runs side by side
// (seeds --seed, --seed + 1, …), each on one thread: when the circuit forms is a matter of chance (3 of 7 runs
// measured had not formed it by step 3,000–4,450, the others formed it by about 2,200), so two draws at once
// halve the odds of a long wait, and two one-thread runs do more steps a second than one run on two threads.
// One thread also makes each run's bits independent of the machine's core count. The learning rate is
// constant after the warm-up, so where a run stops changes nothing before. From step STAGE1_FIRST_CHECK, every
// STAGE1_CHECK_EVERY steps, every run stops with a checkpoint and the build probes them; the first check at
// which a run's copy margin reaches STAGE1_MIN_COPY_MARGIN decides (the lowest seed among those there), and
// that checkpoint is what grows. The checks fall on fixed steps and the probes are deterministic, so a resumed
// build decides as one straight through. <run>/stage1/formed.json records the decision.
const STAGE1_FIRST_CHECK = 1000, STAGE1_CHECK_EVERY = 250, STAGE1_CANDIDATES = 2;
const stage1FormedFile = join(run, 'stage1', 'formed.json');
const stage1Seeds = Array.from({ length: STAGE1_CANDIDATES }, (_, i) => Number(seed) + i);
const candidateOut = (s) => join(run, 'stage1', `seed-${s}`);
const stage1Args = (s) => trainArgs(stages[0], candidateOut(s)).map((a, i, all) => (all[i - 1] === '--seed' ? String(s) : a));

// a supra command in a child process, on one thread; resolves when it ends (exits the build when it fails)
function supraOneThread(args, label) {
  console.log(`$ SUPRA_THREADS=1 supra ${args.join(' ')}`);
  return new Promise((done) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, SUPRA_THREADS: '1' } });
    createInterface({ input: child.stdout }).on('line', (line) => console.log(`[${label}] ${line}`));
    child.on('close', (code) => {
      if (code !== 0) {
        console.error(`build-teacher: ${label} failed (exit ${code})`);
        process.exit(code ?? 1);
      }
      done();
    });
  });
}

async function runStage1(stage) {
  const out = join(run, stage.name);
  if (existsSync(stage1FormedFile)) {
    refuseFinished(out);
    console.log(`${stage.name}: finished earlier (${out})`);
    return JSON.parse(readFileSync(stage1FormedFile, 'utf8'));
  }
  if (!resume && stage1Seeds.some((s) => latestStep(candidateOut(s)) > 0)) {
    console.error(`${out} holds an unfinished stage 1: pass --resume to continue it, or remove ${run} to build again`);
    process.exit(2);
  }
  if (!existsSync(stage1Config)) {
    mkdirSync(run, { recursive: true });
    writeFileSync(stage1Config, JSON.stringify({ ...teacherConfig, ...stage1Shape }, null, 2) + '\n');
  }
  const total = Math.floor(Number(stage.tokens) / stage1TokensPerStep);
  const checks = [];
  if (!skipProbes) for (let s = STAGE1_FIRST_CHECK; s < total; s += STAGE1_CHECK_EVERY) checks.push(s);
  checks.push(total);
  // where each run is: its budget once finished, else its latest checkpoint's step
  const stepOf = (s) => (existsSync(join(candidateOut(s), 'final', 'config.json')) ? total : latestStep(candidateOut(s)));
  let probes = [];
  for (const step of checks) {
    const stop = Math.min(step, userStop(stage.name));
    const runs = [];
    for (const s of stage1Seeds) {
      const done = stepOf(s);
      if (done >= stop) continue; // there already (a check passed before an interruption: not formed at it)
      runs.push(supraOneThread([...stage1Args(s), ...(done > 0 ? ['--resume'] : []), ...(stop < total ? ['--stop-at', String(stop)] : [])], `stage1 seed ${s}`));
    }
    await Promise.all(runs);
    if (stop < step) stoppedByUser(stage);
    if (stage1Seeds.some((s) => stepOf(s) > step)) continue; // decided before
    const dirOf = (s) => (step === total ? join(candidateOut(s), 'final') : join(candidateOut(s), `checkpoint-${step}`));
    if (skipProbes) return saveFormed({ seed: stage1Seeds[0], step, dir: dirOf(stage1Seeds[0]), copy_margin: null });
    probes = [];
    for (const s of stage1Seeds) {
      const q = await quickProbes(dirOf(s));
      console.log(`stage 1 seed ${s} at step ${step}: copy margin (gaps ${q.gaps.join('/')}) ${q.copyMargin.map((m) => m.toFixed(2)).join(' ')} nats`);
      probes.push({ seed: s, ...q });
    }
    const formed = probes.find((q) => stage1Margin(q) >= STAGE1_MIN_COPY_MARGIN);
    if (formed) return saveFormed({ seed: formed.seed, step, dir: dirOf(formed.seed), copy_margin: formed.copyMargin, gaps: formed.gaps });
  }
  const best = probes.reduce((a, b) => (stage1Margin(b) > stage1Margin(a) ? b : a));
  console.error(`build-teacher: stage 1 (${out}, seeds ${stage1Seeds.join(', ')}) did not form the copying circuit: the second copy of a span ` +
    `is at most ${stage1Margin(best).toFixed(2)} nats easier than the first (at gaps ${best.gaps.slice(0, STAGE1_MARGIN_GAPS).join(' and ')}), under the ${STAGE1_MIN_COPY_MARGIN} needed. Its loss plateau ` +
    `lasts a seed-dependent number of steps: build again in a new --out with another --seed or a larger --stage1-tokens.`);
  process.exit(1);
}
function saveFormed(formed) {
  mkdirSync(dirname(stage1FormedFile), { recursive: true });
  const tmp = `${stage1FormedFile}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(formed, null, 2) + '\n');
  renameSync(tmp, stage1FormedFile);
  return formed;
}

// a language stage: `supra train` on two threads (all cores), resumed from its latest checkpoint when --resume;
// done when its final model (or, for stage 2a, its stop step's checkpoint) exists
function runLanguageStage(stage) {
  const out = join(run, stage.name);
  const doneDir = stage.stopAt ? join(out, `checkpoint-${stage.stopAt}`) : join(out, 'final');
  const done = () => existsSync(join(doneDir, 'config.json'));
  if (done()) {
    refuseFinished(out);
    console.log(`${stage.name}: finished earlier (${doneDir})`);
    return doneDir;
  }
  const stop = Math.min(userStop(stage.name), stage.stopAt ?? Infinity);
  supra([...trainArgs(stage, out, stop), ...(resume && existsSync(join(out, 'latest')) ? ['--resume'] : [])]);
  if (!done()) stoppedByUser(stage);
  return doneDir;
}

const formed = await runStage1(stages[0]);
if (!existsSync(join(scaledDir, 'config.json'))) {
  console.log(`scaling the residual stream of ${formed.dir} (step ${formed.step}) × ${RESIDUAL_SCALE} → ${scaledDir}`);
  await growModel(formed.dir, scaledDir, { residualScale: RESIDUAL_SCALE });
}
const stage2aDir = runLanguageStage(stages[1]);
if (!existsSync(join(grownDir, 'config.json'))) {
  console.log(`growing ${stage2aDir} to ${growth.layers} layers, intermediate ${growth.intermediate} → ${grownDir}`);
  await growModel(stage2aDir, grownDir, growth);
}
runLanguageStage(stages[2]);

const finalDir = join(run, 'stage2', 'final');
const tmp = `${asset}.tmp-${process.pid}`;
supra(['convert', finalDir, '--out', tmp, '--dtype', 'bf16']);
mkdirSync(asset, { recursive: true });
for (const f of ['model.safetensors', 'config.json']) copyFileSync(join(tmp, f), join(asset, f));
for (const f of ['tokenizer.json', 'tokenizer_config.json']) if (!existsSync(join(asset, f))) copyFileSync(join(tokenizerDir, f), join(asset, f));
rmSync(tmp, { recursive: true, force: true });

const trainedTokens = [formed.step * stage1TokensPerStep, STAGE2A_STEPS * languageTokensPerStep, Number(stages[2].tokens)];
// the commands of the stage 1 run that grew, of stage 2a and of stage 2
const commands = [`SUPRA_THREADS=1 supra ${stage1Args(formed.seed).join(' ')}`, ...stages.slice(1).map((st) => `supra ${trainArgs(st, join(run, st.name)).join(' ')}`)];
const metricsDir = { stage1: candidateOut(formed.seed), stage2a: join(run, 'stage2a'), stage2: join(run, 'stage2') };
const metrics = (stage) => readFileSync(join(metricsDir[stage], 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => ({ stage, ...JSON.parse(l) }));
const all = stages.flatMap((st) => metrics(st.name));
writeFileSync(join(asset, 'metrics.jsonl'), all.map((m) => JSON.stringify(m)).join('\n') + '\n');
const evals = all.filter((m) => m.stage === 'stage2' && m.val_loss !== undefined);
const last = evals[evals.length - 1];
// the median logged rate of each stage: on a quiet 2-core machine a stage takes about tokens / this
const medianRate = (stage) => {
  const r = all.filter((m) => m.stage === stage && m.tokens_per_s > 0).map((m) => m.tokens_per_s).sort((a, b) => a - b);
  return r[r.length >> 1];
};
if (!skipProbes) console.log('probing the stored teacher (seed 0, default probe settings) ...');
const probes = skipProbes ? null : await teacherProbes(asset, tokenizerDir, seqLen);
const threadsText = process.env.SUPRA_THREADS ? Number(process.env.SUPRA_THREADS) : 'default (all cores)';
const card = {
  command: `node scripts/build-teacher.mjs ${argv.filter((a, i) => a !== '--resume' && a !== '--stop-at' && argv[i - 1] !== '--stop-at').join(' ')}`.trim(),
  // threads change how some products round on native (docs/results.md), so a rebuild matches at the same count
  // (stage 1's runs always use one)
  threads: { stage1: 1, stage2a: threadsText, stage2: threadsText },
  teacher_config: teacherConfig,
  stage1_shape: stage1Shape,
  residual_scale: `scripts/grow-model.mjs ${formed.dir.slice(run.length + 1)} --residual-scale ${RESIDUAL_SCALE} (the same function; stage 2a starts from it)`,
  growth: `scripts/grow-model.mjs stage2a/checkpoint-${STAGE2A_STEPS} --layers ${growth.layers} --intermediate ${growth.intermediate} (new parts write zero at first; stage 2 starts from it)`,
  // stage 1 trains until the copying circuit forms (its budget is a cap): the tokens it trained, and where it stopped
  stages: stages.map((s, i) => ({ name: s.name, supra_train: commands[i], tokens: trainedTokens[i], recall_mix: Number(s.recallMix), recall_kinds: s.recallKinds, tokens_per_s: medianRate(s.name) })),
  stage2a_steps: STAGE2A_STEPS,
  stage1_formed: { seed: formed.seed, candidate_seeds: stage1Seeds, step: formed.step, copy_margin: formed.copy_margin, gaps: formed.gaps, first_check: STAGE1_FIRST_CHECK, check_every: STAGE1_CHECK_EVERY, min_copy_margin: STAGE1_MIN_COPY_MARGIN, at_gaps: formed.gaps?.slice(0, STAGE1_MARGIN_GAPS) },
  pretraining_tokens: trainedTokens.reduce((a, b) => a + b),
  // what the demo's --budget and the study's budgets are shares of (models/embedded.ts teacherPretrainingTokens):
  // the language stage at the teacher's shape; stages 1 and 2a trained a smaller model
  language_pretraining_tokens: Number(stages[2].tokens),
  seed: Number(seed),
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
console.log(`teacher written to ${asset}: val_ppl ${last?.val_ppl}` + (probes ? `; probes ${JSON.stringify(probes.scores)}; targets met ${JSON.stringify(probes.met)}` : ' (probes skipped)'));
if (probes && !Object.values(probes.met).every(Boolean)) console.warn(`warning: the teacher misses probe targets ${JSON.stringify(probes.targets)}`);
