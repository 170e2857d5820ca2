import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EVAL_DEFAULTS, STUDY_DEFAULTS, runKey, studyPlan, type EvalSettings, type RunSpec, type StudyOptions } from '../src/experiments/plan.js';
import { availableParallelism } from 'node:os';
import { createNativeBackend } from '../src/core/native/backend.js';
import { writeReport } from '../src/experiments/report.js';
import { executeRun, RESULT_FILE, type RunContext, type RunResult } from '../src/experiments/run.js';
import { copyTokens, mqarTokens, passkeyTrial } from '../src/eval/probes.js';
import { RECALL_DEFAULTS } from '../src/eval/recall.js';
import { loadConfig } from '../src/io/config.js';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { EMBEDDED_TEACHER_DIR } from '../src/models/embedded.js';
import { readLatest } from '../src/train/checkpoint.js';
import { freshDir, teacherFolder } from './helpers/eval.js';

const study: StudyOptions = { ...STUDY_DEFAULTS, teacherTokens: 2_500_000 };
const byIdOf = (plan: RunSpec[]) => new Map(plan.map((r) => [r.id, r]));

test('the study plan: the teacher, budget curves, from scratch, ablations, per seed; budgets in tokens', () => {
  const plan = studyPlan(study);
  assert.equal(plan[0]!.id, 'teacher');
  assert.equal(new Set(plan.map((r) => r.id)).size, plan.length, 'ids are unique');
  // per seed: 6 uptrain (0% + 5 budgets), 5 scratch + the full budget, 6 ablations (one with BF16 products), 5
  // attention transfer + LoRA
  assert.equal(plan.length, 1 + 2 * (6 + 6 + 6 + 5));
  assert.equal(byIdOf(plan).get('ablation-bf16-products-s0')!.recipe.matmulPrecision, 'bf16');
  assert.equal(byIdOf(plan).get('uptrain-5pct-s0')!.recipe.matmulPrecision, undefined, 'float32 runs keep their keys');
  // a backend without BF16 products plans no run that needs them
  assert.deepEqual(studyPlan({ ...study, bf16Products: false }).map((r) => r.id), plan.map((r) => r.id).filter((id) => !id.includes('bf16')));
  const byId = new Map(plan.map((r) => [r.id, r]));
  assert.equal(byId.get('uptrain-5pct-s1')!.tokens, 125_000);
  assert.equal(byId.get('scratch-100pct-s0')!.tokens, 2_500_000);
  assert.ok(byId.has('scratch-100pct-s1'), 'the full budget runs for every seed by default');
  assert.deepEqual(studyPlan({ ...study, scratchBudgetSeeds: 1 }).filter((r) => r.id.startsWith('scratch-100pct')).map((r) => r.id), ['scratch-100pct-s0']);
  assert.deepEqual(byId.get('ablation-t2r-s0')!.linearize, { normalization: 'sum', decay: 'none' });
  assert.deepEqual(byId.get('ablation-retnet-s0')!.linearize, { decay: 'retnet' });
  assert.equal(byId.get('ablation-kernels-only-s0')!.recipe.trainOnly, 'kernels');
  const steps = Math.floor(125_000 / (8 * 256));
  assert.equal(byId.get('ablation-two-step-s0')!.recipe.kernelsFirstSteps, Math.round(steps * 0.25));
  assert.equal(byId.get('uptrain-5pct-s0')!.recipe.kernelsFirstSteps, 0);
  assert.equal(byId.get('uptrain-1pct-s0')!.recipe.warmupSteps, 1);
  assert.equal(byId.get('scratch-100pct-s0')!.recipe.warmupSteps, 100);
  assert.throws(() => studyPlan({ ...study, budgets: [0.01] }), /less than two steps/);
  // attention transfer + LoRA at the uptraining budgets: the same tokens and schedule, its own recipe
  const at = byId.get('transfer-5pct-s1')!;
  const up = byId.get('uptrain-5pct-s1')!;
  assert.equal(at.tokens, up.tokens);
  assert.deepEqual({ ...at.recipe, attentionTransfer: undefined }, { ...up.recipe, attentionTransfer: undefined });
  assert.deepEqual(at.recipe.attentionTransfer, { transferSteps: Math.round(steps * 0.25), loraRank: 8, loraAlpha: 16, loraTargets: 'q_proj,k_proj,v_proj,o_proj' });
  assert.ok(!('attentionTransfer' in up.recipe), 'full uptraining specs are as before (their cache keys unchanged)');
});

test('supra experiments --list: a run is reused only where its bits would be the same (backend, kernels, threads)', { skip: createNativeBackend().ok ? false : 'native backend not built' }, () => {
  const cli = resolve(dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');
  const out = freshDir();
  try {
    const dirOf = (backend: string, jobs: string) => {
      const r = spawnSync(process.execPath, [cli, 'experiments', '--list', '--out', out, '--backend', backend, '--jobs', jobs], { encoding: 'utf8', env: { ...process.env, SUPRA_REQUIRE_NATIVE: '' } });
      assert.equal(r.status, 0, r.stderr);
      const dirs = r.stdout.split('\n').filter((l) => l.includes('uptrain-5pct-s0')).map((l) => l.trim().split(/\s+/).pop());
      assert.equal(dirs.length, 1);
      return dirs[0];
    };
    assert.notEqual(dirOf('wasm', '1'), dirOf('native', '1'), 'the backend is part of the run key');
    // wasm gives the same bits on any thread count (test/train-threads), so --jobs (threads = cores / jobs) keeps the key
    assert.equal(dirOf('wasm', '1'), dirOf('wasm', String(availableParallelism())));
    if (availableParallelism() >= 2) {
      // OpenBLAS's AVX2 kernels round a product split over threads differently: native keys hold the threads
      assert.notEqual(dirOf('native', '1'), dirOf('native', String(availableParallelism())));
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test("the study's probes: supra demo's three scores inside the training length, and settings past it up to the teacher's positions", () => {
  const p = EVAL_DEFAULTS.probes;
  const maxPositions = loadConfig(EMBEDDED_TEACHER_DIR).max_position_embeddings;
  const tok = loadTokenizer(EMBEDDED_TEACHER_DIR);
  // every passkey prompt with its longest answer, at each depth
  const passkeyTokens = (length: number) => Math.max(...[0, 0.5, 1].map((depth) => {
    const t = passkeyTrial(tok, 1, length, depth, 4);
    return t.prompt.length + Math.max(...t.candidates.map((c) => c.length));
  }));
  const tokens = {
    copy: p.copy.gaps.map((g) => copyTokens(p.copy.span, g)),
    mqar: p.mqar.pairs.map((n) => mqarTokens(n, n)),
    passkey: p.passkey.lengths.map(passkeyTokens),
  };
  const at = { copy: p.copy.gaps.indexOf(RECALL_DEFAULTS.copyGap), mqar: p.mqar.pairs.indexOf(RECALL_DEFAULTS.mqarPairs), passkey: p.passkey.lengths.indexOf(RECALL_DEFAULTS.passkeyLength) };
  for (const probe of ['copy', 'mqar', 'passkey'] as const) {
    assert.ok(at[probe] >= 0, `${probe}: supra demo's setting is measured`);
    // the passkey prompt is the length; its answer follows
    assert.ok(tokens[probe][at[probe]]! <= study.seqLen + (probe === 'passkey' ? 8 : 0), `${probe}: supra demo's setting lies inside the training length`);
    assert.ok(tokens[probe].some((t) => t >= 2 * study.seqLen), `${probe} reaches twice the training length: ${tokens[probe].join(', ')}`);
    assert.ok(Math.max(...tokens[probe]) <= maxPositions, `${probe} stays within the teacher's ${maxPositions} positions: ${tokens[probe].join(', ')}`);
  }
});

test('a run is cached by its settings: the key changes with the spec, the measurements and the context', () => {
  const spec = studyPlan(study).find((r) => r.id === 'uptrain-5pct-s0')!;
  const key = runKey(spec, EVAL_DEFAULTS, { teacher: 'a' });
  assert.equal(runKey({ ...spec }, EVAL_DEFAULTS, { teacher: 'a' }), key);
  assert.equal(runKey({ ...spec, id: 'renamed' }, EVAL_DEFAULTS, { teacher: 'a' }), key, 'the name is not a setting');
  assert.notEqual(runKey({ ...spec, recipe: { ...spec.recipe, lr: 2e-3 } }, EVAL_DEFAULTS, { teacher: 'a' }), key);
  assert.notEqual(runKey(spec, { ...EVAL_DEFAULTS, longSequences: 8 }, { teacher: 'a' }), key);
  assert.notEqual(runKey(spec, EVAL_DEFAULTS, { teacher: 'b' }), key);
});

/** A recall score of a run at a probe setting whose sequences take `tokens` tokens: copy nats saved, or accuracy. */
type RecallFn = (spec: RunSpec, probe: 'copy' | 'mqar' | 'passkey', tokens: number) => number;

/** No recall anywhere: the second copy saves 0.2 nats, MQAR at 0, passkey at chance (today's embedded teacher). */
const noRecall: RecallFn = (_spec, probe) => (probe === 'copy' ? 0.2 : probe === 'mqar' ? 0 : 0.2);

/** The probe curves of a run from its recall function, at the study's settings (copy: 2·16 + gap tokens, MQAR: 4 a pair). */
function fakeProbes(spec: RunSpec, recall: RecallFn): RunResult['probes'] {
  const p = EVAL_DEFAULTS.probes;
  return {
    copy: { gaps: p.copy.gaps, secondCopyLoss: p.copy.gaps.map((g) => 8.2 - recall(spec, 'copy', 32 + g)), firstCopyLoss: p.copy.gaps.map(() => 8.2), uniform: 8.2 },
    mqar: { pairs: p.mqar.pairs, accuracy: p.mqar.pairs.map((n) => recall(spec, 'mqar', 4 * n)), chance: 1 / 1800 },
    passkey: { lengths: p.passkey.lengths, accuracy: p.passkey.lengths.map((l) => recall(spec, 'passkey', l)), chance: 0.2 },
  };
}

/** A synthetic result: perplexity from a function of the run, everything else plausible. */
function fakeResult(spec: RunSpec, valPpl: number, diverged = false, recall: RecallFn = noRecall): RunResult {
  const steps = Math.floor(spec.tokens / 2048);
  return {
    id: spec.id, key: 'k', spec, valLoss: Math.log(valPpl), valPpl, validationTokens: 85_000,
    training: spec.tokens > 0
      ? {
          steps, tokens: steps * 2048, tokensPerSecond: spec.recipe.attentionTransfer ? 2000 : 1500, seconds: steps, skippedSteps: diverged ? 10 : 0, diverged,
          losses: Array.from({ length: steps }, (_, i) => 6 - i / steps), trainedParameters: spec.recipe.attentionTransfer ? 700_000 : 7_000_000,
        }
      : null,
    longContext: { buckets: EVAL_DEFAULTS.positionBuckets, loss: spec.kind === 'teacher' ? [5.5, 4.8, 4.7, 6.0] : [5.6, 5.2, 5.1, 5.1], sequences: 32 },
    probes: fakeProbes(spec, recall),
    attention: spec.kind === 'teacher' ? null : { cosineRaw: 0.2, cosineRownorm: 0.4, svDistanceRaw: 0.5, svDistanceRownorm: 0.3, perLayerCosineRownorm: [0.4, 0.4] },
    seconds: 10, backend: 'wasm (2 threads)', finishedAt: '2026-11-24T00:00:00Z',
  };
}

/** The findings row of a claim (its text, what we measured, the verdict). */
function finding(md: string, claim: string): { ours: string; verdict: string } {
  const row = md.split('\n').find((l) => l.startsWith(`| ${claim}`));
  assert.ok(row, claim);
  const cells = row.split(' | ');
  return { ours: cells[1]!, verdict: cells[2]!.replace(/ \|$/, '') };
}

test('the report: tables, figures and conclusions decided by the numbers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'supra-report-'));
  try {
    const plan = studyPlan(study);
    const render = (name: string, o: { scratchFactor?: number; recall?: RecallFn } = {}) => {
      const results = new Map<string, RunResult>();
      for (const spec of plan) {
        let ppl = spec.kind === 'teacher' ? 120 : spec.kind === 'uptrain' ? 140 + 1000 / (1 + spec.budgetPct) : (2000 * (o.scratchFactor ?? 1)) / Math.sqrt(spec.budgetPct);
        if (spec.variant === 't2r') ppl = 900;
        if (spec.recipe.attentionTransfer) ppl = spec.budgetPct >= 10 ? 140 + 1000 / (1 + spec.budgetPct / 4) : 140 + 1000 / (1 + spec.budgetPct) + 0.5;
        ppl += spec.seed; // a seed spread
        results.set(spec.id, fakeResult(spec, ppl, spec.variant === 't2r' && spec.seed === 0, o.recall));
      }
      const reportPath = join(dir, `results-${name}.md`);
      const files = writeReport({ study, evalSettings: EVAL_DEFAULTS, results, reportPath, command: 'test', environment: 'test', teacher: { parameters: 6_524_416, layers: 6, heads: 8, kvHeads: 4, headDim: 32 } });
      for (const f of files) assert.ok(existsSync(f), f);
      return readFileSync(reportPath, 'utf8');
    };
    const md = render('no-recall');
    for (const heading of ['## 1. Uptraining budget', '## 2. Attention transfer + LoRA', '## 3. Ablations', '## 4. Loss by position', '## 5. In-context probes', '## 6. Recall along the uptraining budget', '## 7. Recall past the training length', "## 8. The paper's findings"]) {
      assert.ok(md.includes(heading), heading);
    }
    assert.match(md, /assets\/teacher: 6\.5M parameters, 6 layers, GQA 8\/4 heads/, 'the teacher size as given');
    assert.match(md, /\| 5% \| 125,000 \| 307\.2 \(306\.7–307\.7\)/, 'budget row with the seed range');
    assert.match(md, /beats training the same linear model from scratch on a small budget\. \| Uptrained below scratch \(every seed\) at 1%, 2%, 5%, 10%, 20%\. .* \| yes \|/);
    assert.match(md, /T2R diverged in 1 of 2 runs, 10 non-finite steps skipped\. \| yes \(T2R unstable and worse\) \|/);
    assert.match(md, /from scratch 100%: 200\.5 \(200\.0–201\.0\)/, 'the full budget over both seeds');
    assert.match(md, /!\[Validation perplexity against budget\]\(figures\/results\/budget\.png\)/);
    for (const fig of ['recall_budget_copy', 'recall_budget_accuracy', 'recall_length_copy', 'recall_length_accuracy']) assert.ok(md.includes(`(figures/results/${fig}.png)`), fig);
    // the LoRA rows and the sentence under them come from their numbers
    assert.match(md, /\| 20% \| 500,000 \| 188\.1 \(187\.6–188\.6\) \| 307\.2 \(306\.7–307\.7\) \| 1\.63 \| 7,000,000 \/ 700,000 \| 80\.1 MB \/ 8\.0 MB \| 1500 \/ 2000 \|/);
    assert.match(md, /10\.0% of the parameters trained, at 10%, 20% it ends above full uptraining for every seed; at 1%, 2%, 5% the seeds overlap/);
    assert.match(md, /At 20% it reaches 307\.2, as good as full uptraining on 5% of the teacher's tokens \(307\.2\)\. Its gradients and optimizer state take 8\.0 MB instead of 80\.1 MB, and it trains at 1\.33× the tokens\/s/);
    // a from-scratch model much better than the uptrained one flips the first conclusion
    const flipped = render('flipped', { scratchFactor: 0.1 });
    assert.match(flipped, /on a small budget\. \| Uptrained below scratch \(every seed\) at no budget; above it at 1%, 2%, 5%, 10%, 20%\. .* \| no \|/);

    // recall. A teacher without it: nothing to lose, nothing to recover; the paragraph says why
    const ICL = 'In-context learning is what is lost', BUDGET = 'Is the recall gap a matter of budget', LONG = 'Long context is what is lost';
    assert.equal(finding(md, ICL).verdict, 'not testable here (the teacher does not recall either)');
    assert.match(finding(md, ICL).ours, /^copy: nats saved at gap 128 \(160 tokens\): teacher 0\.20 vs uptrained 20% 0\.20 \(0\.20–0\.20\); MQAR accuracy at 16 pairs \(64 tokens\): teacher 0\.00 vs uptrained 20% 0\.00/);
    assert.equal(finding(md, BUDGET).verdict, 'not testable here (the teacher does not recall either)');
    // inside the training length the teacher gains more from context; past it its loss rises (positions it never saw) and SUPRA's does not
    assert.equal(finding(md, LONG).verdict, "partly (the teacher gains more from context inside the training length; past it the teacher's loss rises by 1.200 nats, SUPRA's changes by -0.100; neither recalls past the training length)");
    assert.match(md, /does not recall in context \(copy: nats saved at gap 128 \(160 tokens\) 0\.20, MQAR accuracy at 16 pairs \(64 tokens\) 0\.00, passkey accuracy at 256 tokens 0\.20\): a probe cannot show a loss/);
    assert.match(md, /\| copy: nats saved \| gap 960 \| 992 \(past\) \| 0\.20 \| 0\.20 \(0\.20–0\.20\) \| 0\.20 \(0\.20–0\.20\) \|/, 'section 7 row past the training length');
    assert.match(md, /\| passkey accuracy \| 256-token prompt \| 256 \| 0\.20 \|/, 'at the training length is not past it');

    // a teacher that recalls up to its training length (not past it, as RoPE positions it never saw)
    const inside = (tokens: number) => tokens <= study.seqLen;
    const teacherRecall = (probe: 'copy' | 'mqar' | 'passkey', tokens: number) =>
      inside(tokens) ? (probe === 'copy' ? 6 : 1) : probe === 'copy' ? 0.3 : probe === 'mqar' ? 0.05 : 0.25;
    // SUPRA loses it whatever the budget
    const lost = render('lost', { recall: (spec, probe, tokens) => (spec.kind === 'teacher' ? teacherRecall(probe, tokens) : noRecall(spec, probe, tokens) + 0.01 * spec.seed) });
    assert.equal(finding(lost, ICL).verdict, 'yes');
    assert.match(finding(lost, ICL).ours, /teacher 6\.00 vs uptrained 20% 0\.21 \(0\.20–0\.21\); MQAR accuracy at 16 pairs \(64 tokens\): teacher 1\.00 vs uptrained 20% 0\.01 \(0\.00–0\.01\)/);
    assert.equal(finding(lost, BUDGET).verdict, 'no (what linearizing lost on copy, MQAR, passkey stays lost up to 20%)');
    assert.match(lost, /Does more uptraining recover recall\? No: what linearizing lost on copy, MQAR, passkey stays lost up to 20%\. At 20%, attention transfer \+ LoRA recalls as full uptraining does on copy, MQAR, passkey\./);
    assert.match(lost, /\| 0% \(right after linearizing\) \| 0\.21 \(0\.20–0\.21\) \| 0\.01 \(0\.00–0\.01\) \| 0\.21 \(0\.20–0\.21\) \|  \|  \|  \|$/m, 'section 6 row, no transfer run at 0%');
    assert.match(lost, /The teacher does recall in context here .* and SUPRA uptrained 20% loses it\. /);
    // lightning decay over 8 heads: 1/e after 2 … 256 tokens; gap 128 + span 16 = 144 tokens reached by the slowest head only
    assert.match(lost, /1\/e after 2, 4, 8, 16, 32, 64, 128, 256 tokens\. The copy probe at gap 128 asks across 144 tokens, which 1 of 8 heads reach, each then holding all 160 tokens of the sequence in 32 dimensions; MQAR at 16 pairs asks up to 62 tokens back \(3 heads reach it\) for 16 associations among 64 tokens\./);
    assert.match(lost, /The decay alone does not explain the loss of copy, MQAR: heads reach that far, but must hold more tokens than their 32 dimensions keep apart\./);
    assert.doesNotMatch(lost, /does not recall in context/);

    // a teacher that keeps part of its recall past the training length, and a SUPRA model with none inside it: nothing to lose past it
    const teacherPartPast = (probe: 'copy' | 'mqar' | 'passkey', tokens: number) => (inside(tokens) ? (probe === 'copy' ? 6 : 1) : probe === 'copy' ? 2 : 0.6);
    const none = render('none-inside', { recall: (spec, probe, tokens) => (spec.kind === 'teacher' ? teacherPartPast(probe, tokens) : noRecall(spec, probe, tokens)) });
    assert.match(none, /SUPRA uptrained 20% recalls nothing past the training length, as it recalls nothing inside it \(section 6: copy, MQAR, passkey\); there was nothing to lose\. The teacher's own recall falls past its 256-token training length on copy, MQAR, passkey \(at the point inside → mean past it: copy: nats saved 6\.00 → 2\.00, MQAR accuracy 1\.00 → 0\.60, passkey accuracy 1\.00 → 0\.60\)\./);
    assert.equal(finding(none, LONG).verdict, "partly (the teacher gains more from context inside the training length; past it the teacher's loss rises by 1.200 nats, SUPRA's changes by -0.100; SUPRA recalls nothing past the training length, as it recalls nothing inside it)");

    // SUPRA recovers it with the budget (and, without positions it cannot read, recalls past the training length too)
    const recovers: RecallFn = (spec, probe, tokens) => {
      if (spec.kind === 'teacher') return teacherRecall(probe, tokens);
      const share = Math.min(1, spec.budgetPct / 15) * (inside(tokens) ? 1 : 0.9);
      return (probe === 'copy' ? 0.2 + 5.8 * share : probe === 'mqar' ? share : 0.2 + 0.8 * share) * (1 - 0.01 * spec.seed);
    };
    const back = render('recovers', { recall: recovers });
    assert.equal(finding(back, ICL).verdict, 'no (SUPRA keeps recall here)');
    assert.equal(finding(back, BUDGET).verdict, 'yes');
    assert.match(finding(back, BUDGET).ours, /^copy: nats saved at gap 128 \(160 tokens\): 0\.20 \(0\.20–0\.20\) right after linearizing, 5\.97 \(5\.94–6\.00\) at 20%; teacher 6\.00\. MQAR accuracy at 16 pairs \(64 tokens\): 0\.00 \(0\.00–0\.00\) right after linearizing, 0\.99 \(0\.99–1\.00\) at 20%; teacher 1\.00\. /);
    assert.match(back, /and SUPRA uptrained 20% keeps it\. .* What it keeps \(copy, MQAR\) lies within its slowest heads' reach, and that is enough here; past the training length \(section 7\) the probes' sequences run to 1000 tokens, beyond the slowest head's 256\. /);
    assert.match(back, /SUPRA uptrained 20% recalls past the training length better than the teacher on copy, MQAR, passkey\./);
    assert.equal(finding(back, LONG).verdict, "partly (the teacher gains more from context inside the training length; past it the teacher's loss rises by 1.200 nats, SUPRA's changes by -0.100; SUPRA recalls better than the teacher past the training length)");

    // part of the way back: copy returns, MQAR and passkey rise but stay short
    const partway = render('partway', {
      recall: (spec, probe, tokens) => (probe === 'copy' || spec.kind === 'teacher' ? recovers(spec, probe, tokens) : 0.5 * recovers(spec, probe, tokens)),
    });
    assert.equal(finding(partway, BUDGET).verdict, "partly (rises with the budget on copy, MQAR, passkey; back to the teacher's on copy; below the teacher at 20% on MQAR, passkey)");
    assert.equal(finding(partway, ICL).verdict, 'partly (lost on MQAR; kept on copy)');
    assert.match(partway, /SUPRA uptrained 20% keeps part of it\. .* The decay alone does not explain the loss of MQAR: .* What it keeps \(copy\) lies within/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const recipe of ['full', 'attention-transfer'] as const) test(`an interrupted run resumes from its checkpoint and ends with the result of an uninterrupted one (${recipe})`, async () => {
  const teacherDir = teacherFolder();
  const corpus = freshDir();
  const words = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'and', 'then', 'it', 'ran', 'off', 'to', 'see', 'dog'];
  for (let d = 0; d < 24; d++) {
    const text = Array.from({ length: 90 }, (_, i) => words[(i * 7 + d * 3 + (i >> 3)) % words.length]).join(' ');
    writeFileSync(join(corpus, `doc-${d}.txt`), text);
  }
  const spec: RunSpec = {
    id: 'uptrain-tiny-s0', kind: 'uptrain', variant: 'supra', budgetPct: 1, tokens: 4 * 2 * 32, seed: 0, linearize: {},
    recipe: {
      batchSize: 2, seqLen: 32, lr: 1e-3, minLr: 1e-4, warmupSteps: 1, trainOnly: 'all', kernelsFirstSteps: 0,
      ...(recipe === 'attention-transfer' ? { attentionTransfer: { transferSteps: 1, loraRank: 2, loraAlpha: 4, loraTargets: 'q_proj,v_proj' } } : {}),
    },
  };
  const evalSettings: EvalSettings = {
    validationSequences: 4, longContext: 48, longSequences: 2, positionBuckets: [[0, 16], [16, 48]],
    probes: { copy: { samples: 1, span: 4, gaps: [0, 4] }, mqar: { samples: 2, pairs: [2] }, passkey: { samples: 1, lengths: [256] } },
    analyzeWindows: 1, analyzeLength: 16,
  };
  const logs: string[] = [];
  const stepsRun: number[] = [];
  const context = (dir: string, interruptAt?: number): RunContext => {
    const controller = new AbortController();
    return {
      teacherDir, dir, key: 'k', evalSettings, backend: 'test', log: (m) => logs.push(m), quiet: true, signal: controller.signal,
      trainHooks: {
        afterBackward: (step) => {
          stepsRun.push(step);
          if (step === interruptAt) controller.abort();
        },
      },
      data: { inputs: [corpus], splitSeed: 0, cacheDir: freshDir() },
    };
  };
  const whole = await executeRun(spec, context(freshDir()));
  assert.ok(whole && whole.training, 'the uninterrupted run finishes');
  assert.equal(whole.training.steps, 4);

  // interrupted: the step under way finishes and is saved, nothing is reported
  const dir = freshDir();
  assert.equal(await executeRun(spec, context(dir, 1)), null); // during the second step (hooks count from 0)
  assert.equal(readLatest(join(dir, 'train'))?.name, 'checkpoint-2');
  assert.ok(!existsSync(join(dir, RESULT_FILE)), 'no result for an unfinished run');

  // run again: it resumes at step 2 and ends exactly where the uninterrupted run did
  logs.length = 0;
  stepsRun.length = 0;
  const resumed = await executeRun(spec, context(dir));
  assert.match(logs[0]!, /^resuming /);
  assert.deepEqual(stepsRun, [2, 3], 'only the steps left are trained');
  assert.ok(resumed && resumed.training);
  assert.deepEqual(resumed.training.losses, whole.training.losses);
  assert.equal(resumed.valLoss, whole.valLoss);
  assert.deepEqual(resumed.probes, whole.probes);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, RESULT_FILE), 'utf8')).valLoss, whole.valLoss);
  assert.ok(!existsSync(join(dir, 'train')), 'the checkpoints go once the result is written');
  if (recipe === 'attention-transfer') {
    // the run trained the kernels and adapters only; its first step is attention transfer's (an MSE)
    const full = (await import('../src/models/auto.js')).loadDecoder(teacherDir).model;
    const all = full.params().reduce((n, p) => n + p.data.length, 0);
    full.free();
    assert.ok(whole.training.trainedParameters < all / 4, `${whole.training.trainedParameters} of more than ${all} trained`);
    assert.ok(whole.training.losses[0]! < 0.5 * whole.training.losses[1]!, `stage 1's MSE, then a next-token loss: ${whole.training.losses.join(', ')}`);
  }
});
