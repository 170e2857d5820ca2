// How fast does a model shape learn to copy in context? A research tool for the recall teacher (issue 17):
// trains a freshly initialised model from a config on rows that repeat a random span (period 4–64 tokens,
// ids from a range of the vocabulary) through the Trainer itself, and prints the next-token loss every 100
// steps beside the loss on the repeats alone (estimated: the first period cannot be predicted, so its
// targets are taken at ln(range)). A model that copies drives the repeats' loss to 0; one that only
// learned which ids are in the row stays near ln(span).
//   node scripts/induction-toy.mjs (--config <config.json> | --model <dir>) [--phases 64:600,256:300] [--lr 6e-3] [--min-lr LR/10]
//     [--range 3990] [--batch-tokens 2048] [--std 0.0625] [--weight-decay 0.1] [--scale REGEX=F ...] [--seed 0]
//     [--backend native]
// --phases runs stages of SEQ_LEN:STEPS on the same weights (a sequence-length curriculum), each with
// batch-tokens ÷ seq-len rows. --std overrides the config's initializer_range; --model starts from a folder's
// weights instead; --scale multiplies the parameters whose names match REGEX by F. Needs `npm run build`.
// What it showed (2026-12, native backend, 2 cores, lr 6e-3, 2048 tokens a step, ids from 3990):
//   - a 2-layer, 128-wide model (hidden 128, 2 layers, 4 heads) at 64 tokens: a plateau, then the copying
//     circuit forms within a few hundred steps (with a 3,000-step cosine: loss 5.5 at step 1,500, 2.7 at
//     2,000, 2.45 at 3,000, about 0.3 nats on the repeats; with a 2,000-step cosine the repeats were still
//     at 3.7 at step 2,000: when it forms moves with the schedule). At 256 tokens from the start (lr 2e-3)
//     the loss was still 7.7 after 600 steps; after 2,000 steps at 64 tokens, 300 steps at 256 brought the
//     repeats from 6.9 to 2.7 nats (--phases 64:2000,256:300): a short-sequence start carries over.
//   - the teacher's shape (assets/teacher-config.json with tie_word_embeddings and initializer_range 0.0625): slower on the
//     same plateau (6.3 after 1,200 steps at 64 tokens, 7.2 after 400 more at 256; 5.8 after 1,600 at 64). At 32 tokens it
//     improves steadily without a jump (3.3 after 1,400 steps), but that does not carry over: after 1,000
//     steps at 32 tokens (4.0), 200 steps at 256 left the repeats at 7.3 (--phases 32:1000,256:200).
//   - 2 layers at the teacher's width (hidden 256, 8 heads, tied, std 0.0625), 64 tokens, repeats after N steps:
//       lr 6e-3: 6.49 @1,000, 5.10 @2,000 (2,048 tokens a step; 6.65 @2,000 with 1,024; 5.41 after 3.3M tokens
//         with 8,192): per token the batch changes little, so bigger batches do not save tokens;
//       lr 3e-3: 6.30 @600, 5.07 @1,000, 4.20 @1,600; lr 1.5e-3: 6.25 @600, 5.91 @800 — the 256-wide model
//         wants about half the 128-wide one's lr (Adam moves a wider layer's output more per step);
//       worse than the lr-6e-3 baseline: weight decay 0 (8.04 @800 against 7.53, 1,024 tokens a step),
//         o_proj and down_proj scaled by 0.25 at init (7.90 @1,000 against 7.29), q and k by 3 (7.46 @1,000
//         against 6.49); ids from 256 instead of 3,990: the same fraction of ln(range) per step.
//     With lr 3e-3 and a 3,000-step cosine (--phases 64:3000,256:300) the circuit forms: repeats 3.05 @2,200,
//       2.52 @2,400, 0.72 @2,600 (the jump, about 5M tokens in), 0.39 @3,000, and it carries over to the full length: 300
//       steps at 256 tokens took the repeats from 1.39 to 0.23. 8 heads of 32 beat 4 of 64 (5.60 against 4.92
//       @1,200) and 16 of 16 (5.54 against 5.31 @1,000).
//   - the teacher's shape (6 layers) at lr 3e-3: 6.35 @600, 5.55 @1,000, 5.04 @1,600 with a 1,600-step cosine
//     (at 6e-3: 5.8 @1,600); against 2 layers on the same schedule (6.30, 5.07, 4.20) it falls further behind
//     as it goes, so expect its jump after 3,000 steps or more.
//   - 4 layers at the teacher's width, 3,000-step cosine: lr 3e-3 5.69 @1,000, 4.90 @2,100 (2 layers: 5.31, 3.19);
//     lr 2e-3 5.56 @1,000, lr 4.5e-3 6.08 @1,000 — depth slows the plateau more than it moves the best lr.
//   - starting from the committed teacher (natural text, untied, --model assets/teacher, lr 3e-3): 8.24 after
//     500 steps, no progress: natural-text pretraining gives no head start (its output layer relearns ids).
//   - 2026-12-03, through supra train (--recall-mix 1 at 64 tokens, lr 3e-3, 3,000-step cosine, 2,048 tokens a
//     step), repeats measured on held-out periodic rows with the probes' ids (/tmp eval, same estimate):
//       the default kinds (copy 0.5, mqar 0.3, passkey 0.2): 2 layers (ffn 1408) and 3 layers (ffn 1024) showed
//         no copy margin at all after 1,250 steps (teacher-probes --checkpoints: 0.1 nats) — too sparse;
//       --recall-kinds repeat=1, 2 layers, ffn 704 (this toy's 2-layer shape): 5.53 @1,000, 4.81 @1,750,
//         4.28 @3,000 — no jump, where this toy's own run jumped at 2,600: when the circuit forms varies from
//         run to run by more than a thousand steps, so a build cannot count on 3,000 steps; ffn 1408: 5.31 @1,000,
//         4.78 @2,500; rows starting with up to 16 tokens of natural text learned at the same pace.
//     In this toy, ffn 1408 against 704 (2 layers): 5.41 @1,100, 5.22 @1,400 against 5.07 @1,000, 4.20 @1,600:
//     a wider MLP slows the circuit. scripts/grow-model.mjs can stack layers and widen the MLPs on a 2-layer model that copies.
//   - 2026-12-03, this toy, 2 layers at the teacher's width (ffn 704, tied, std 0.0625), 64 tokens, lr 3e-3:
//       a narrower MLP does not help: ffn 128 5.37 @1,000, ffn 32 5.73 @1,000 (704: 5.31, 3,000-step cosine);
//       a constant lr (--min-lr 3e-3) makes the jump come early and on time: seed 0 3.71 @2,000, 2.86 @2,100,
//       0.84 @2,200, 0.31 @3,000; seed 1 3.55 @2,000, 1.78 @2,100, 0.64 @2,200, 0.32 @3,000. The cosine's
//       decay is what delayed it (a falling lr stretches the plateau past the budget).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const dist = process.env.SUPRA_DIST ?? 'dist';
const load = (m) => import(join(process.cwd(), dist, 'src', m));
const { setBackend } = await load('core/select.js');
const { loadConfigFile, initRandom, buildModel } = await load('models/build.js');
const { Trainer } = await load('train/trainer.js');
const { Mt19937 } = await load('core/random.js');

const { values } = parseArgs({
  options: {
    config: { type: 'string' }, model: { type: 'string' }, phases: { type: 'string', default: '256:600' }, lr: { type: 'string', default: '6e-3' }, 'min-lr': { type: 'string' },
    range: { type: 'string', default: '3990' }, 'batch-tokens': { type: 'string', default: '2048' }, std: { type: 'string' }, 'weight-decay': { type: 'string', default: '0.1' }, scale: { type: 'string', multiple: true, default: [] },
    seed: { type: 'string', default: '0' }, backend: { type: 'string', default: 'native' },
  },
});
const fail = (msg) => {
  console.error(`induction-toy: ${msg}`);
  process.exit(1);
};
if (!values.config === !values.model) fail('give one of --config <config.json> (a fresh model) and --model <dir> (start from its weights)');
const phases = values.phases.split(',').map((p) => p.split(':').map(Number));
if (phases.some(([t, s]) => !(Number.isInteger(t) && t >= 16 && Number.isInteger(s) && s >= 1))) fail(`--phases: expected SEQ_LEN:STEPS,… with SEQ_LEN ≥ 16, got ${values.phases}`);
const weightDecay = Number(values['weight-decay']);
if (!(weightDecay >= 0)) fail(`--weight-decay must be ≥ 0, got ${values['weight-decay']}`);
const lr = Number(values.lr), minLr = values['min-lr'] === undefined ? lr / 10 : Number(values['min-lr']), range = Number(values.range), batchTokens = Number(values['batch-tokens']), seed = Number(values.seed);
if (!(lr > 0) || !(minLr >= 0 && minLr <= lr) || !(Number.isInteger(range) && range >= 2) || !(Number.isInteger(batchTokens) && batchTokens >= 16)) fail('--lr, --range and --batch-tokens must be positive (range and batch-tokens whole numbers), --min-lr between 0 and --lr');

setBackend(values.backend);
let config, model;
try {
  if (values.model) model = buildModel({ model: values.model }, seed).model;
  config = model ? model.config : loadConfigFile(values.config);
} catch (e) {
  fail(e.message);
}
if (values.std !== undefined) {
  if (model) fail('--std sets a fresh model\'s initialisation; --model starts from trained weights');
  if (!(Number(values.std) > 0)) fail(`--std must be a positive number, got ${values.std}`);
  config.raw.initializer_range = Number(values.std);
}
const lo = Math.min(100, Math.max(0, config.vocab_size - range));
if (lo + range > config.vocab_size) fail(`--range ${range} does not fit the vocabulary of ${config.vocab_size}`);
model ??= initRandom(config, seed);
// --scale REGEX=F multiplies the parameters whose names match by F (an initialisation experiment)
for (const spec of values.scale) {
  const [pattern, factor] = spec.split('=');
  const re = new RegExp(pattern), f = Number(factor);
  if (!(f >= 0)) fail(`--scale ${spec}: expected REGEX=FACTOR`);
  const matched = model.params().filter((p) => re.test(p.name));
  for (const p of matched) for (let i = 0; i < p.data.length; i++) p.data[i] *= f;
  if (matched.length === 0) fail(`--scale ${spec}: no parameter matches`);
}

let T = phases[0][0];
let drawn = 0;
let unpredictable = 0; // targets of the current report window that fall in a row's first period
const rng = new Mt19937(seed + 1);
const periodic = {
  get seqLen() {
    return T;
  },
  trainSequences: 1 << 30, trainTokens: 2 ** 40, validationTokens: 0,
  nextTrain(rows) {
    const out = new Int32Array(rows * (T + 1));
    for (let r = 0; r < rows; r++) {
      const period = 4 + (rng.nextU32() % (Math.min(64, T >> 1) - 3));
      const span = Array.from({ length: period }, () => lo + (rng.nextU32() % range));
      for (let t = 0; t <= T; t++) out[r * (T + 1) + t] = span[t % period];
      unpredictable += period - 1;
    }
    drawn += rows;
    return out;
  },
  position: () => ({ epoch: 0, cursor: drawn, seed }),
  restore() {
    throw new Error('synthetic data cannot be resumed');
  },
  validation: () => ({ ids: new Int32Array(0), count: 0 }),
  close() {},
};

const t0 = performance.now();
console.log(`${values.config ?? values.model}: ${model.store.numel().toLocaleString('en-US')} parameters, ids from ${range} (ln ${Math.log(range).toFixed(2)} nats), lr ${lr}, weight decay ${weightDecay}`);
for (const [seqLen, steps] of phases) {
  T = seqLen;
  const rows = Math.max(1, Math.round(batchTokens / T));
  const out = mkdtempSync(join(tmpdir(), 'supra-induction-toy-'));
  const trainer = Trainer.open({ model, data: periodic, out, steps, batchSize: rows, lr, minLr, weightDecay, warmupSteps: Math.min(50, steps >> 2), evalSequences: 0, saveEvery: 0, quiet: true });
  try {
    let sum = 0, n = 0;
    unpredictable = 0;
    for (let s = 1; s <= steps; s++) {
      sum += trainer.step().loss;
      n++;
      if (s % 100 === 0 || s === steps) {
        const loss = sum / n, share = unpredictable / (n * rows * T);
        const repeats = (loss - share * Math.log(range)) / (1 - share);
        console.log(`seq ${T} × ${rows}  step ${String(s).padStart(5)}  loss ${loss.toFixed(3)}  on the repeats ≈ ${repeats.toFixed(3)}  (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
        sum = n = unpredictable = 0;
      }
    }
  } finally {
    trainer.close();
    rmSync(out, { recursive: true, force: true });
  }
}
model.free();
