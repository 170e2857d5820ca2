// The study's page: docs/results.md with its tables, plots and conclusions, all computed from the
// runs' result.json files. Every sentence that states a finding is decided by the numbers below it,
// so a rerun that comes out differently writes a different conclusion.
import { mkdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { linePlotPng, linePlotSvg, type LinePlot, type Series } from '../eval/plot.js';
import { copyTokens, mqarTokens } from '../eval/probes.js';
import { RECALL_DEFAULTS } from '../eval/recall.js';
import { decayHorizons, supraSettings } from '../models/linearize.js';
import { formatNumber } from '../train/metrics.js';
import { defaultMinLr, TRAIN_DEFAULTS } from '../train/recipe.js';
import { ABLATIONS, TRANSFER_VARIANT, type EvalSettings, type RunSpec, type StudyOptions } from './plan.js';
import type { RunResult } from './run.js';

export interface TeacherSummary {
  parameters: number;
  layers: number;
  heads: number;
  kvHeads: number;
  /** Per-head width: SUPRA's state is headDim × headDim per head. */
  headDim: number;
}

export interface ReportInput {
  study: StudyOptions;
  evalSettings: EvalSettings;
  results: Map<string, RunResult>;
  /** Where results.md goes; figures go to <its folder>/figures/results/. */
  reportPath: string;
  /** The command that made it, and the wall time of the whole study (sum of run times). */
  command: string;
  environment: string;
  /** The teacher's size, counted from its folder. */
  teacher: TeacherSummary;
}

interface Stat {
  mean: number;
  min: number;
  max: number;
  values: number[];
}

function stat(values: number[]): Stat | null {
  if (values.length === 0) return null;
  return { mean: values.reduce((a, b) => a + b, 0) / values.length, min: Math.min(...values), max: Math.max(...values), values };
}

const f1 = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : String(v));
const f2 = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : String(v));
const f3 = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : String(v));

/** "123.4 (120.1–126.0)" with the seeds' range, or the single value. */
function fmtStat(s: Stat | null, f = f1): string {
  if (!s) return 'n/a';
  return s.values.length > 1 ? `${f(s.mean)} (${f(s.min)}–${f(s.max)})` : f(s.mean);
}

/** a is below b for every pair of seeds (the seeds' ranges do not overlap), by more than `margin`. */
function clearlyBelow(a: Stat | null, b: Stat | null, margin = 0): boolean {
  return a !== null && b !== null && a.max < b.min - margin;
}

/** 6524416 → "6.5M". */
function millions(n: number): string {
  return `${(n / 1e6).toFixed(1)}M`;
}

export function writeReport(input: ReportInput): string[] {
  const { study, results } = input;
  const figDir = join(dirname(input.reportPath), 'figures', 'results');
  mkdirSync(figDir, { recursive: true });
  const written: string[] = [];
  const figure = (name: string, plot: LinePlot): string => {
    writeFileAtomic(join(figDir, `${name}.png`), linePlotPng(plot));
    writeFileAtomic(join(figDir, `${name}.svg`), linePlotSvg(plot));
    written.push(join(figDir, `${name}.png`), join(figDir, `${name}.svg`));
    return relative(dirname(input.reportPath), join(figDir, `${name}.png`));
  };
  const seeds = study.seeds;
  const runs = (id: (seed: number) => string) => seeds.map((s) => results.get(id(s))).filter((r): r is RunResult => r !== undefined);
  const ppl = (id: (seed: number) => string) => stat(runs(id).map((r) => r.valPpl));
  const pct = (b: number) => String(b).replace('.', '_');
  const upId = (b: number) => (s: number) => `uptrain-${pct(b)}pct-s${s}`;
  const scId = (b: number) => (s: number) => `scratch-${pct(b)}pct-s${s}`;
  const abId = (v: string) => (s: number) => (v === 'supra' ? `uptrain-${pct(study.ablationBudget)}pct-s${s}` : `ablation-${v}-s${s}`);
  const trId = (b: number) => (s: number) => `transfer-${pct(b)}pct-s${s}`;
  const teacher = results.get('teacher');
  if (!teacher) throw new Error('supra: experiments: the teacher run has no result; the report needs it');
  const T = teacher.valPpl;
  const recall = recallFacts(input, { runs, upId, trId });
  const L: string[] = [];

  L.push('# Results: SUPRA at small scale');
  L.push('');
  L.push(`Made by \`${input.command}\` (${input.environment}). Every number, plot and conclusion on this page comes from that run;`);
  L.push('rerunning it reproduces the page. Finished runs are cached under `runs/experiments/` by their settings and by what decides');
  L.push("the backend's bits: on wasm a seed gives the same model whatever the thread count (`--jobs` only changes the speed), as every");
  L.push("reduction runs in a fixed order; on native, OpenBLAS's AVX2 kernel sets (Haswell, Zen) round a product they split over threads");
  L.push('differently, so its kernel set and the thread count are in the key too, and a run is redone rather than reused when they change.');
  L.push('');
  L.push(`**Setup.** The teacher is the embedded softmax model (assets/teacher: ${millions(input.teacher.parameters)} parameters, ${input.teacher.layers} layers, GQA ${input.teacher.heads}/${input.teacher.kvHeads} heads), pretrained by`);
  L.push(`\`npm run build:teacher\` on ${study.teacherTokens.toLocaleString('en-US')} tokens of the embedded corpus. Budgets are percentages of those tokens.`);
  const d = TRAIN_DEFAULTS; // the rest of every run's recipe
  L.push(`Every run uses the teacher's batch (${study.batchSize} × ${study.seqLen} tokens), AdamW β (${d.betas.join(', ')}), weight decay ${d.weightDecay}, clip ${d.gradClip}, z-loss ${formatNumber(d.zLoss)}, peak lr ${study.lr} with a`);
  L.push(`cosine to ${defaultMinLr(study.lr)} and a warm-up of min(100, steps/10) steps. Seeds ${seeds.join(', ')} set the kernel (or random) initialisation and the data order;`);
  L.push(`every model is scored on the same held-out validation text (${teacher.validationTokens.toLocaleString('en-US')} tokens, never trained on by the teacher either).`);
  L.push('Ranges in parentheses are min–max over the seeds.');
  L.push('');

  // ---------------------------------------------------------------- 1. budget curve
  const budgets = study.budgets;
  const allScratch = [...budgets, ...study.scratchBudgets];
  L.push('## 1. Uptraining budget, and training from scratch');
  L.push('');
  L.push('| budget | tokens | SUPRA uptrained: val ppl | × teacher | SUPRA from scratch: val ppl | scratch ÷ uptrained |');
  L.push('|---:|---:|---:|---:|---:|---:|');
  L.push(`| teacher | ${study.teacherTokens.toLocaleString('en-US')} (pretraining) | ${f1(T)} (softmax teacher) | 1.00 | | |`);
  for (const b of [0, ...allScratch]) {
    const up = budgets.includes(b) || b === 0 ? ppl(upId(b)) : null;
    const sc = allScratch.includes(b) ? ppl(scId(b)) : null;
    const tokens = Math.round((b / 100) * study.teacherTokens);
    const label = b === 0 ? '0% (right after linearizing)' : `${b}%`;
    L.push(`| ${label} | ${tokens.toLocaleString('en-US')} | ${fmtStat(up)} | ${up ? f2(up.mean / T) : ''} | ${fmtStat(sc)} | ${up && sc ? f2(sc.mean / up.mean) : ''} |`);
  }
  L.push('');
  const mean = (id: (b: number) => (s: number) => string) => budgets.map((b) => ppl(id(b))?.mean ?? NaN);
  const budgetPlot = figure('budget', {
    title: 'Validation perplexity against training budget',
    xLabel: "tokens trained (% of the teacher's pretraining)", yLabel: 'validation perplexity',
    series: [
      { name: 'SUPRA uptrained from the teacher', x: budgets, y: mean(upId) },
      { name: 'SUPRA from scratch', x: allScratch, y: allScratch.map((b) => ppl(scId(b))?.mean ?? NaN) },
      ...(study.transferBudgets.length ? [{ name: 'attention transfer + LoRA (teacher frozen)', x: study.transferBudgets, y: study.transferBudgets.map((b) => ppl(trId(b))?.mean ?? NaN), color: '#31a354' }] : []),
      ...seeds.map((s, i): Series => ({ name: `uptrained, seed ${s}`, x: budgets, y: budgets.map((b) => results.get(upId(b)(s))?.valPpl ?? NaN), color: ['#9ecae1', '#c6dbef'][i % 2] })),
      ...seeds.map((s, i): Series => ({ name: `from scratch, seed ${s}`, x: allScratch, y: allScratch.map((b) => results.get(scId(b)(s))?.valPpl ?? NaN), color: ['#fdae6b', '#fdd0a2'][i % 2] })),
    ],
    hline: { y: T, label: `teacher (${f1(T)})` },
    xLog: true, yLog: true, width: 720, height: 440,
  });
  L.push(`![Validation perplexity against budget](${budgetPlot})`);
  L.push('');

  // ---------------------------------------------------------------- 2. attention transfer + LoRA
  if (study.transferBudgets.length) transferSection(L, input, { ppl, upId, trId, runs });

  // ---------------------------------------------------------------- 3. ablations
  const variants = ['supra', ...ABLATIONS.map((a) => a.variant)];
  const labels: Record<string, string> = { supra: 'SUPRA (GroupNorm, lightning decay, all parameters)', ...Object.fromEntries(ABLATIONS.map((a) => [a.variant, a.label])) };
  const base = ppl(abId('supra'));
  L.push(`## 3. Ablations at the ${study.ablationBudget}% budget`);
  L.push('');
  L.push('Each variant is an option of `supra linearize` / `supra train` (see the README): `--normalization sum --decay none` (T2R-style),');
  L.push(`\`--decay none\`, \`--decay retnet\`, \`--train-only kernels\`, \`--kernels-first-steps N\` (here ${Math.round(study.twoStepFraction * 100)}% of the steps),`);
  L.push('`--matmul-precision bf16` (the training steps\' products at BF16: `npm run bench:train` times the speed-up at real shapes; on a CPU without BF16 instructions');
  L.push('the operands are rounded and multiplied in float32, the same numbers without the speed-up; the header names the kernel; not planned on wasm).');
  L.push('');
  L.push('| variant | val ppl | ÷ SUPRA | skipped (non-finite) steps | diverged | last-10%-of-steps train loss |');
  L.push('|---|---:|---:|---:|---|---:|');
  for (const v of variants) {
    const rs = runs(abId(v));
    const p = stat(rs.map((r) => r.valPpl));
    const skipped = rs.map((r) => r.training?.skippedSteps ?? 0);
    const diverged = rs.filter((r) => r.training?.diverged).length;
    const tail = stat(rs.map((r) => tailLoss(r)).filter(Number.isFinite));
    L.push(`| ${labels[v]} | ${fmtStat(p)} | ${p && base ? f2(p.mean / base.mean) : ''} | ${skipped.join(', ')} | ${diverged ? `${diverged} of ${rs.length}` : 'no'} | ${fmtStat(tail, f3)} |`);
  }
  L.push('');
  const curvePlot = figure('ablation_curves', {
    title: `Training loss at the ${study.ablationBudget}% budget (seed ${seeds[0]}, mean of 10 steps)`,
    xLabel: 'tokens trained', yLabel: 'training loss (nats)',
    series: variants.map((v) => {
      const r = results.get(abId(v)(seeds[0]!));
      const losses = smooth(r?.training?.losses ?? [], 10);
      return { name: v, x: losses.map((_, i) => (i + 1) * study.batchSize * study.seqLen), y: losses };
    }),
    width: 720, height: 440,
  });
  L.push(`![Training loss of the ablations](${curvePlot})`);
  L.push('');

  // ---------------------------------------------------------------- 4. context
  const long = (id: string) => results.get(id)?.longContext;
  const lb = teacher.longContext.buckets;
  const ctxModels: Array<[string, string]> = [
    ['teacher', 'teacher (softmax)'],
    [upId(study.ablationBudget)(seeds[0]!), `SUPRA uptrained ${study.ablationBudget}%`],
    [upId(budgets[budgets.length - 1]!)(seeds[0]!), `SUPRA uptrained ${budgets[budgets.length - 1]}%`],
    [abId('no-decay')(seeds[0]!), 'no decay'],
    [abId('retnet')(seeds[0]!), 'RetNet decay'],
    [abId('t2r')(seeds[0]!), 'T2R-style'],
    [scId(study.scratchBudgets[0] ?? 100)(seeds[0]!), `from scratch ${study.scratchBudgets[0] ?? 100}%`],
  ];
  L.push(`## 4. Loss by position, out to ${input.evalSettings.longContext} tokens (${study.seqLen} in training)`);
  L.push('');
  L.push(`Mean next-token loss (nats) by position on ${teacher.longContext.sequences} held-out sequences of ${input.evalSettings.longContext} tokens; seed ${seeds[0]}.`);
  L.push('');
  L.push(`| model | ${lb.map(([a, b]) => `positions ${a}–${b - 1}`).join(' | ')} |`);
  L.push(`|---|${lb.map(() => '---:').join('|')}|`);
  for (const [id, name] of ctxModels) {
    const c = long(id);
    if (c) L.push(`| ${name} | ${c.loss.map(f3).join(' | ')} |`);
  }
  L.push('');
  const ctxPlot = figure('loss_by_position', {
    title: 'Loss by position (trained on 256-token sequences)',
    xLabel: 'position bucket (start token)', yLabel: 'mean next-token loss (nats)',
    series: ctxModels.filter(([id]) => long(id)).map(([id, name]) => ({ name, x: lb.map(([a]) => Math.max(a, 1)), y: long(id)!.loss })),
    xLog: true, width: 720, height: 440,
  });
  L.push(`![Loss by position](${ctxPlot})`);
  L.push('');

  // ---------------------------------------------------------------- 5. probes and attention
  const probeModels: Array<[string, string]> = [
    ['teacher', 'teacher (softmax)'],
    ...budgets.map((b): [string, string] => [upId(b)(seeds[0]!), `uptrained ${b}%`]),
    ...variants.filter((v) => v !== 'supra').map((v): [string, string] => [abId(v)(seeds[0]!), v]),
    ...study.transferBudgets.slice(-1).map((b): [string, string] => [trId(b)(seeds[0]!), `attention transfer + LoRA ${b}%`]),
    ...allScratch.filter((b) => b >= 20).map((b): [string, string] => [scId(b)(seeds[0]!), `from scratch ${b}%`]),
  ];
  const pr = teacher.probes;
  const gapsShown = pr.copy.gaps;
  L.push('## 5. In-context probes and attention similarity');
  L.push('');
  L.push(`Seed ${seeds[0]}. Copy: loss on the second copy of ${input.evalSettings.probes.copy.span} random tokens after a gap (the first copy is the`);
  L.push(`no-memory baseline, uniform guessing is ${f2(pr.copy.uniform)} nats). MQAR: recall accuracy (chance ${pr.mqar.chance.toExponential(1)}).`);
  L.push(`Passkey: accuracy of ranking the true key above ${Math.round(1 / pr.passkey.chance) - 1} distractors (chance ${f2(pr.passkey.chance)}). Attention`);
  L.push('similarity: mean over layers and heads of the cosine between each SUPRA head\'s attention matrix and its teacher head\'s,');
  L.push('raw and row-normalized (`supra analyze`, docs/probes.md).');
  L.push('');
  L.push(`| model | copy loss, gap ${gapsShown.join(' / ')} | 1st copy | MQAR acc, ${pr.mqar.pairs.join(' / ')} pairs | passkey acc, ${pr.passkey.lengths.join(' / ')} tokens | attention cosine raw / row-norm |`);
  L.push('|---|---|---:|---|---|---|');
  for (const [id, name] of probeModels) {
    const r = results.get(id);
    if (!r) continue;
    const p = r.probes;
    const att = r.attention ? `${f3(r.attention.cosineRaw)} / ${f3(r.attention.cosineRownorm)}` : '—';
    L.push(`| ${name} | ${p.copy.secondCopyLoss.map(f2).join(' / ')} | ${f2(mean1(p.copy.firstCopyLoss))} | ${p.mqar.accuracy.map(f2).join(' / ')} | ${p.passkey.accuracy.map(f2).join(' / ')} | ${att} |`);
  }
  L.push('');
  const copyPlot = figure('copy_probe', {
    title: 'Copying: loss on the second copy against the gap',
    xLabel: 'gap (tokens)', yLabel: 'loss on the second copy (nats)',
    series: probeModels.filter(([id]) => results.get(id)).slice(0, 6).map(([id, name]) => ({ name, x: gapsShown.map((g) => g + 1), y: results.get(id)!.probes.copy.secondCopyLoss })),
    hline: { y: pr.copy.uniform, label: 'uniform guess' }, xLog: true, width: 720, height: 440,
  });
  L.push(`![Copy probe](${copyPlot}) (x is gap + 1 on a log axis)`);
  L.push('');

  // ---------------------------------------------------------------- 6, 7. recall along the budget, past the training length
  recallBudgetSection(L, input, recall, figure);
  recallLengthSection(L, input, recall, figure, { runs, upId, trId });

  // ---------------------------------------------------------------- 8. the paper's claims
  L.push('## 8. The paper\'s findings beside ours');
  L.push('');
  L.push('The paper\'s numbers are at 1B–7B parameters and 10⁹–10¹¹ tokens; its Table 3 (1B) gives the direction: SUPRA uptrained');
  L.push(`57.0 HellaSwag, T2R uptrained 40.6, SUPRA from scratch 54.7. Ours is a ${millions(input.teacher.parameters)}-parameter model and a 2.5M-token budget, scored by`);
  L.push('validation perplexity (lower is better).');
  L.push('');
  L.push('| the paper says | what we measured | agrees? |');
  L.push('|---|---|---|');
  for (const c of claims(input, { T, ppl, upId, scId, abId, runs, recall })) L.push(`| ${c.paper} | ${c.ours} | ${c.verdict} |`);
  L.push('');
  L.push(whyOursMayDiffer(input, recall, iclVerdict(recall), results.get(upId(recall.top)(seeds[0]!))?.spec));
  L.push('');

  // ---------------------------------------------------------------- cost
  const all = [...results.values()];
  const trainSeconds = all.reduce((s, r) => s + (r.training?.seconds ?? 0), 0);
  const totalSeconds = all.reduce((s, r) => s + r.seconds, 0);
  const tokens = all.reduce((s, r) => s + (r.training?.tokens ?? 0), 0);
  L.push('## Cost');
  L.push('');
  L.push(`${all.length} runs, ${tokens.toLocaleString('en-US')} training tokens; ${(trainSeconds / 60).toFixed(0)} min training and ${((totalSeconds - trainSeconds) / 60).toFixed(0)} min measuring, summed over runs`);
  L.push(`(runs execute in parallel jobs, so the wall time is shorter). Per-run results: \`runs/experiments/<run>/result.json\`.`);
  L.push('');
  writeFileAtomic(input.reportPath, L.join('\n'));
  written.unshift(input.reportPath);
  return written;
}

function mean1(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Mean training loss over the last 10% of the steps (finite steps only). */
function tailLoss(r: RunResult): number {
  const l = (r.training?.losses ?? []).filter((v): v is number => v !== null);
  if (l.length === 0) return NaN;
  const tail = l.slice(Math.floor(l.length * 0.9));
  return mean1(tail);
}

/** Means over consecutive windows of `w` steps (non-finite steps skipped). */
function smooth(losses: ReadonlyArray<number | null>, w: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < losses.length; i++) {
    const win = losses.slice(Math.max(0, i - w + 1), i + 1).filter((v): v is number => v !== null && Number.isFinite(v));
    out.push(win.length ? mean1(win) : NaN);
  }
  return out;
}

const MB = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`;

/**
 * Section 2: the attention-transfer + LoRA recipe beside full uptraining at the same budgets, with what
 * each trains (gradients and AdamW's two moments: 12 bytes per trained parameter) and how fast; the
 * sentence under the table is decided by the seeds' ranges.
 */
function transferSection(
  L: string[], input: ReportInput,
  t: { ppl: (id: (seed: number) => string) => Stat | null; upId: (b: number) => (s: number) => string; trId: (b: number) => (s: number) => string; runs: (id: (seed: number) => string) => RunResult[] },
): void {
  const { study } = input;
  const budgets = study.transferBudgets;
  const first = (id: (seed: number) => string) => t.runs(id).find((r) => r.training)?.training ?? null;
  const trained = (id: (seed: number) => string) => first(id)?.trainedParameters ?? NaN;
  const speed = (id: (seed: number) => string) => stat(t.runs(id).map((r) => r.training?.tokensPerSecond ?? NaN).filter(Number.isFinite));
  const lora = study.lora;
  L.push('## 2. Attention transfer + LoRA against full uptraining, at equal tokens');
  L.push('');
  L.push('`supra train --recipe attention-transfer`, after LoLCATs (Zhang et al. 2024): the teacher\'s weights stay frozen; for the first');
  L.push(`${Math.round(study.transferFraction * 100)}% of the steps only the kernels train, to make each layer's SUPRA output match its softmax attention output (MSE, mean`);
  L.push(`over layers, on the teacher's own hidden states); then LoRA adapters (r ${lora.rank}, alpha ${lora.alpha}, on ${lora.targets.split(',').join(', ')}) and the kernels train on the`);
  L.push('next-token loss. Same data, batch, lr schedule and tokens as full uptraining (every parameter, next-token loss from the first');
  L.push('step). Only trained parameters have gradients and AdamW moments: 12 bytes each (float32 gradient, two moments).');
  L.push('');
  L.push('| budget | tokens | full uptraining: val ppl | attention transfer + LoRA: val ppl | ÷ full | trained parameters, full / LoRA | gradients + AdamW state, full / LoRA | training tokens/s, full / LoRA |');
  L.push('|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const b of budgets) {
    const full = t.ppl(t.upId(b)), at = t.ppl(t.trId(b));
    const nf = trained(t.upId(b)), na = trained(t.trId(b));
    const sf = speed(t.upId(b)), sa = speed(t.trId(b));
    const tokens = Math.round((b / 100) * study.teacherTokens);
    L.push(
      `| ${b}% | ${tokens.toLocaleString('en-US')} | ${fmtStat(full)} | ${fmtStat(at)} | ${full && at ? f2(at.mean / full.mean) : ''} | ` +
        `${Number.isFinite(nf) ? nf.toLocaleString('en-US') : 'n/a'} / ${Number.isFinite(na) ? na.toLocaleString('en-US') : 'n/a'} | ` +
        `${Number.isFinite(nf) ? MB(12 * nf) : 'n/a'} / ${Number.isFinite(na) ? MB(12 * na) : 'n/a'} | ${sf ? sf.mean.toFixed(0) : 'n/a'} / ${sa ? sa.mean.toFixed(0) : 'n/a'} |`,
    );
  }
  L.push('');
  // the finding, from the numbers above
  const better = budgets.filter((b) => clearlyBelow(t.ppl(t.trId(b)), t.ppl(t.upId(b))));
  const worse = budgets.filter((b) => clearlyBelow(t.ppl(t.upId(b)), t.ppl(t.trId(b))));
  const overlap = budgets.filter((b) => !better.includes(b) && !worse.includes(b));
  const ratios = budgets.map((b) => {
    const full = t.ppl(t.upId(b)), at = t.ppl(t.trId(b));
    return full && at ? at.mean / full.mean : NaN;
  }).filter(Number.isFinite);
  const pcts = (bs: number[]) => bs.map((b) => `${b}%`).join(', ');
  const parts: string[] = [];
  if (worse.length) parts.push(`at ${pcts(worse)} it ends above full uptraining for every seed`);
  if (better.length) parts.push(`at ${pcts(better)} below it for every seed`);
  if (overlap.length) parts.push(`at ${pcts(overlap)} the seeds overlap`);
  const top = budgets[budgets.length - 1]!;
  const atTop = t.ppl(t.trId(top));
  // the largest full-uptraining budget whose perplexity the LoRA run at the top budget matches or beats
  const matched = atTop ? [...study.budgets].reverse().find((b) => b <= top && atTop.mean <= (t.ppl(t.upId(b))?.mean ?? -Infinity)) : undefined;
  const nf = trained(t.upId(top)), na = trained(t.trId(top));
  const sf = speed(t.upId(top)), sa = speed(t.trId(top));
  let text = `**What this shows.** With the teacher frozen and ${Number.isFinite(na) && Number.isFinite(nf) ? `${(100 * na / nf).toFixed(1)}% of the parameters trained` : 'only the kernels and adapters trained'}, `;
  text += parts.length ? `${parts.join('; ')} (perplexity ${ratios.length ? `${f2(Math.min(...ratios))}–${f2(Math.max(...ratios))}×` : 'n/a'} that of full uptraining). ` : '';
  if (atTop) {
    text += matched === top
      ? `At ${top}% it reaches ${f1(atTop.mean)}, at least as good as full uptraining on the same tokens. `
      : matched !== undefined
        ? `At ${top}% it reaches ${f1(atTop.mean)}, as good as full uptraining on ${matched}% of the teacher's tokens (${f1(t.ppl(t.upId(matched))!.mean)}). `
        : `At ${top}% it reaches ${f1(atTop.mean)}, short of full uptraining at every budget measured. `;
  }
  if (Number.isFinite(nf) && Number.isFinite(na)) text += `Its gradients and optimizer state take ${MB(12 * na)} instead of ${MB(12 * nf)}`;
  if (sf && sa) text += `, and it trains at ${f2(sa.mean / sf.mean)}× the tokens/s of full uptraining here`;
  text += '. With the float32 weights counted too, full uptraining holds 16 bytes per parameter and this recipe little more than 4,';
  text += ' whatever the teacher\'s size.';
  L.push(text);
  L.push('');
}

interface ClaimTools {
  T: number;
  recall: RecallFacts;
  ppl: (id: (seed: number) => string) => Stat | null;
  upId: (b: number) => (s: number) => string;
  scId: (b: number) => (s: number) => string;
  abId: (v: string) => (s: number) => string;
  runs: (id: (seed: number) => string) => RunResult[];
}

/** Each of the paper's findings, our numbers for it, and whether they agree (decided by the numbers). */
function claims(input: ReportInput, t: ClaimTools): Array<{ paper: string; ours: string; verdict: string }> {
  const { study } = input;
  const out: Array<{ paper: string; ours: string; verdict: string }> = [];
  const small = study.budgets;

  // uptraining vs scratch at equal budgets
  const wins = small.filter((b) => clearlyBelow(t.ppl(t.upId(b)), t.ppl(t.scId(b))));
  const loses = small.filter((b) => clearlyBelow(t.ppl(t.scId(b)), t.ppl(t.upId(b))));
  out.push({
    paper: 'Uptraining a strong softmax model beats training the same linear model from scratch on a small budget.',
    ours: `Uptrained below scratch (every seed) at ${wins.length ? wins.map((b) => `${b}%`).join(', ') : 'no budget'}` +
      (loses.length ? `; above it at ${loses.map((b) => `${b}%`).join(', ')}` : '') +
      `. At ${small[0]}%: ${fmtStat(t.ppl(t.upId(small[0]!)))} vs ${fmtStat(t.ppl(t.scId(small[0]!)))}; at ${small[small.length - 1]}%: ${fmtStat(t.ppl(t.upId(small[small.length - 1]!)))} vs ${fmtStat(t.ppl(t.scId(small[small.length - 1]!)))}.`,
    verdict: wins.length === small.length ? 'yes' : wins.length > 0 && loses.length === 0 ? 'partly (no clear difference at some budgets)' : 'no',
  });
  const full = study.scratchBudgets[study.scratchBudgets.length - 1];
  if (full !== undefined) {
    const top = small[small.length - 1]!;
    const up = t.ppl(t.upId(top)), sc = t.ppl(t.scId(full));
    out.push({
      paper: 'A SUPRA model uptrained on a fraction of the tokens rivals one trained from scratch on the full budget (Table 3: 57.0 vs 54.7).',
      ours: `Uptrained ${top}%: ${fmtStat(up)}; from scratch ${full}%: ${fmtStat(sc)}${sc && sc.values.length === 1 ? ' (one seed)' : ''}; the softmax teacher: ${f1(t.T)}.`,
      verdict: clearlyBelow(up, sc) ? 'yes (uptrained is better)' : clearlyBelow(sc, up) ? `no (scratch at ${full}% is better)` : 'comparable (the seeds overlap)',
    });
  }
  // normalization
  const supra = t.ppl(t.abId('supra')), t2r = t.ppl(t.abId('t2r'));
  const t2rRuns = t.runs(t.abId('t2r'));
  const diverged = t2rRuns.filter((r) => r.training?.diverged).length;
  const skipped = t2rRuns.reduce((s, r) => s + (r.training?.skippedSteps ?? 0), 0);
  out.push({
    paper: 'GroupNorm instead of the sum denominator is what makes uptraining stable (T2R uptrained: 40.6 vs SUPRA 57.0).',
    ours: `At ${study.ablationBudget}%: SUPRA ${fmtStat(supra)}, T2R-style ${fmtStat(t2r)}; T2R diverged in ${diverged} of ${t2rRuns.length} runs, ${skipped} non-finite steps skipped.`,
    verdict: clearlyBelow(supra, t2r) ? (diverged || skipped ? 'yes (T2R unstable and worse)' : 'yes (T2R worse; it did not diverge here)') : clearlyBelow(t2r, supra) ? 'no (T2R-style is better here)' : 'not shown (the seeds overlap)',
  });
  // decay
  const noDecay = t.ppl(t.abId('no-decay')), retnet = t.ppl(t.abId('retnet'));
  const seed0 = study.seeds[0]!;
  const shortOf = (id: string) => input.results.get(id)?.longContext.loss[0] ?? NaN;
  out.push({
    paper: 'The fixed decay helps (on short contexts).',
    ours: `Val ppl (${study.seqLen}-token sequences): lightning decay ${fmtStat(supra)}, no decay ${fmtStat(noDecay)}, RetNet decay ${fmtStat(retnet)}; loss on the first 64 positions ${f3(shortOf(t.abId('supra')(seed0)))} vs ${f3(shortOf(t.abId('no-decay')(seed0)))} without decay.`,
    verdict: clearlyBelow(supra, noDecay) ? 'yes' : clearlyBelow(noDecay, supra) ? 'no (no decay is better here)' : 'not shown (the seeds overlap)',
  });
  // in-context learning, its recovery with the budget, and long context
  const teacher = input.results.get('teacher')!;
  const icl = iclVerdict(t.recall);
  out.push({ paper: 'In-context learning is what is lost: linear models do worse on recall-style tasks.', ours: icl.ours, verdict: icl.verdict });
  const budget = budgetVerdict(t.recall);
  out.push({ paper: 'Is the recall gap a matter of budget: does more uptraining recover it?', ours: budget.ours, verdict: budget.verdict });
  const top = input.results.get(t.upId(small[small.length - 1]!)(seed0));
  if (top) {
    const gain = (r: RunResult) => r.longContext.loss[0]! - r.longContext.loss[1]!;
    const beyond = (r: RunResult) => r.longContext.loss[r.longContext.loss.length - 1]! - r.longContext.loss[1]!;
    const useCtxTeacher = gain(teacher), useCtxSupra = gain(top);
    // the loss by position (seed 0) and the probes past the training length (every seed) each say lost or not
    const lossLost = useCtxSupra < useCtxTeacher - 0.01;
    const past = pastVerdict(t.recall, teacher, t.runs(t.upId(small[small.length - 1]!)));
    const nothingToCarry = past.state === 'lost' && past.lostInside.length === past.lost.length;
    const recallPast = {
      none: 'neither recalls past the training length',
      lost: nothingToCarry ? 'SUPRA recalls nothing past the training length, as it recalls nothing inside it' : 'recall past the training length is lost',
      kept: 'recall past the training length is kept',
      better: 'SUPRA recalls better than the teacher past the training length',
      mixed: 'recall past the training length is partly lost',
    }[past.state];
    // past the training length the softmax teacher meets RoPE positions it never saw; SUPRA's decayed state may hold up better
    const riseTeacher = beyond(teacher), riseSupra = beyond(top);
    const supraHoldsPast = riseTeacher - riseSupra > 0.1;
    const words = [
      lossLost ? 'the teacher gains more from context inside the training length' : 'SUPRA gains from context inside the training length as much as the teacher',
      supraHoldsPast ? `past it the teacher's loss rises by ${f3(riseTeacher)} nats, SUPRA's changes by ${f3(riseSupra)}` : '',
      recallPast,
    ].filter(Boolean).join('; ');
    // what speaks for the claim, and what against it (a recall lost already inside is the in-context finding, not this one)
    const forIt = [lossLost, past.state === 'lost' && !nothingToCarry, past.state === 'mixed'].some(Boolean);
    const against = [!lossLost, supraHoldsPast, past.state === 'kept' || past.state === 'better'].some(Boolean);
    const verdict = `${!against ? 'yes' : !forIt ? 'no' : 'partly'} (${words})`;
    out.push({
      paper: 'Long context is what is lost: linear models gain less from more context, and do not use context past training length.',
      ours: `Loss drop from positions 0–63 to 64–255: teacher ${f3(useCtxTeacher)}, uptrained ${f3(useCtxSupra)} nats. Past the ${study.seqLen}-token training length (last bucket minus 64–255): teacher ${f3(riseTeacher)}, uptrained ${f3(riseSupra)}. ${past.ours}`,
      verdict,
    });
  }
  // kernels only / two-step
  const ko = t.ppl(t.abId('kernels-only')), two = t.ppl(t.abId('two-step'));
  out.push({
    paper: 'All parameters must be uptrained (the method fine-tunes every weight, not only the new kernels).',
    ours: `Kernels only: ${fmtStat(ko)}; everything: ${fmtStat(supra)}; two-step: ${fmtStat(two)}.`,
    verdict: clearlyBelow(supra, ko) ? 'yes' : clearlyBelow(ko, supra) ? 'no (kernels only is better here)' : 'not shown (the seeds overlap)',
  });
  return out;
}

// ---------------------------------------------------------------- recall: along the budget, past the training length

type RecallMetric = 'copy' | 'mqar' | 'passkey';
const RECALL_METRICS: RecallMetric[] = ['copy', 'mqar', 'passkey'];

/**
 * When a recall score shows the skill, and how far apart two scores must be to count as different: a
 * copy point averages 8 × 15 predictions (nats saved by the second copy), an MQAR point 256 queries (its
 * standard error is at most 0.03), a passkey point 20 trials (up to 0.11, hence the wider margin).
 */
const RECALL_RULES: Record<RecallMetric, { skill: number; margin: number; name: string; unit: string; f: (v: number) => string }> = {
  copy: { skill: 0.5, margin: 0.5, name: 'copy: nats saved', unit: ' nats', f: f2 },
  mqar: { skill: 0.5, margin: 0.1, name: 'MQAR accuracy', unit: '', f: f2 },
  passkey: { skill: 0.5, margin: 0.2, name: 'passkey accuracy', unit: '', f: f2 },
};

type Scores<V> = Record<RecallMetric, V>;

/** One setting of a probe's knob (gap, pairs, length) and the tokens its sequences take. */
interface ProbeSetting {
  x: number;
  tokens: number;
}

interface RecallFacts {
  seqLen: number;
  /** Every setting of each probe, and the one inside the training length the budget curve follows (supra demo's). */
  settings: Scores<ProbeSetting[]>;
  point: Scores<ProbeSetting>;
  /** A run's score at a setting (NaN where it was not measured). */
  score: (r: RunResult, m: RecallMetric, x: number) => number;
  /** The teacher's scores at the point; the seeds' scores of uptrained (budget 0: right after linearizing) and transfer runs. */
  teacher: Scores<number>;
  up: (b: number) => Scores<Stat | null>;
  transfer: (b: number) => Scores<Stat | null>;
  /** The largest uptraining budget. */
  top: number;
  /** The scores on which the teacher shows the skill at the point. */
  skilled: RecallMetric[];
}

function recallFacts(input: ReportInput, t: { runs: (id: (seed: number) => string) => RunResult[]; upId: (b: number) => (s: number) => string; trId: (b: number) => (s: number) => string }): RecallFacts {
  const ev = input.evalSettings.probes;
  const settings: Scores<ProbeSetting[]> = {
    copy: ev.copy.gaps.map((x) => ({ x, tokens: copyTokens(ev.copy.span, x) })),
    // the study asks every key once
    mqar: ev.mqar.pairs.map((x) => ({ x, tokens: mqarTokens(x, x) })),
    passkey: ev.passkey.lengths.map((x) => ({ x, tokens: x })),
  };
  const at = { copy: RECALL_DEFAULTS.copyGap, mqar: RECALL_DEFAULTS.mqarPairs, passkey: RECALL_DEFAULTS.passkeyLength };
  const point = Object.fromEntries(RECALL_METRICS.map((m) => [m, settings[m].find((s) => s.x === at[m]) ?? { x: at[m], tokens: NaN }])) as Scores<ProbeSetting>;
  const score = (r: RunResult, m: RecallMetric, x: number): number => {
    const p = r.probes;
    if (m === 'copy') {
      const i = p.copy.gaps.indexOf(x);
      return i < 0 ? NaN : p.copy.firstCopyLoss[i]! - p.copy.secondCopyLoss[i]!;
    }
    const [xs, ys] = m === 'mqar' ? [p.mqar.pairs, p.mqar.accuracy] : [p.passkey.lengths, p.passkey.accuracy];
    const i = xs.indexOf(x);
    return i < 0 ? NaN : ys[i]!;
  };
  const teacherRun = input.results.get('teacher')!;
  const teacher = Object.fromEntries(RECALL_METRICS.map((m) => [m, score(teacherRun, m, point[m].x)])) as Scores<number>;
  const seedsOf = (id: (seed: number) => string): Scores<Stat | null> =>
    Object.fromEntries(RECALL_METRICS.map((m) => [m, stat(t.runs(id).map((r) => score(r, m, point[m].x)).filter(Number.isFinite))])) as Scores<Stat | null>;
  const budgets = input.study.budgets;
  return {
    seqLen: input.study.seqLen, settings, point, score, teacher,
    up: (b) => seedsOf(t.upId(b)), transfer: (b) => seedsOf(t.trId(b)),
    top: budgets[budgets.length - 1]!,
    skilled: RECALL_METRICS.filter((m) => teacher[m] >= RECALL_RULES[m].skill),
  };
}

/** "copy: nats saved at gap 128 (160 tokens)". */
function pointLabel(f: RecallFacts, m: RecallMetric): string {
  const { x, tokens } = f.point[m];
  const at = m === 'copy' ? `gap ${x} (${tokens} tokens)` : m === 'mqar' ? `${x} pairs (${tokens} tokens)` : `${x} tokens`;
  return `${RECALL_RULES[m].name} at ${at}`;
}

/** "0.31 (0.20–0.42)" in the metric's format. */
const fmtScore = (m: RecallMetric, s: Stat | null) => fmtStat(s, RECALL_RULES[m].f);

/**
 * A model's seeds against the teacher on some scores: lost where every seed is below the teacher by the
 * margin, kept where none is, split where the seeds disagree (missing: not measured).
 */
function againstTeacher(teacher: Scores<number>, model: Scores<Stat | null>, metrics: RecallMetric[]): { lost: RecallMetric[]; kept: RecallMetric[]; split: RecallMetric[] } {
  const out = { lost: [] as RecallMetric[], kept: [] as RecallMetric[], split: [] as RecallMetric[] };
  for (const m of metrics) {
    const s = model[m];
    if (!s) continue;
    const below = teacher[m] - RECALL_RULES[m].margin;
    (s.max < below ? out.lost : s.min >= below ? out.kept : out.split).push(m);
  }
  return out;
}

const metricNames = (ms: RecallMetric[]) => ms.map((m) => (m === 'copy' ? 'copy' : m === 'mqar' ? 'MQAR' : 'passkey')).join(', ');

/** Does the uptrained model recall in context as its teacher does (copy and MQAR at the point)? */
function iclVerdict(f: RecallFacts): { ours: string; verdict: string; lost: RecallMetric[]; kept: RecallMetric[] } {
  const tested = f.skilled.filter((m) => m !== 'passkey');
  const top = f.up(f.top);
  const ours = (['copy', 'mqar'] as const).map((m) => `${pointLabel(f, m)}: teacher ${RECALL_RULES[m].f(f.teacher[m])} vs uptrained ${f.top}% ${fmtScore(m, top[m])}`).join('; ') + '.';
  if (tested.length === 0) return { ours, verdict: 'not testable here (the teacher does not recall either)', lost: [], kept: [] };
  const { lost, kept, split } = againstTeacher(f.teacher, top, tested);
  if (lost.length + kept.length + split.length === 0) return { ours, verdict: 'not measured', lost, kept };
  const verdict = lost.length === tested.length ? 'yes'
    : kept.length === tested.length ? 'no (SUPRA keeps recall here)'
      : `partly (${[lost.length ? `lost on ${metricNames(lost)}` : '', kept.length ? `kept on ${metricNames(kept)}` : '', split.length ? `the seeds disagree on ${metricNames(split)}` : ''].filter(Boolean).join('; ')})`;
  return { ours, verdict, lost, kept };
}

/** Does more uptraining recover what linearizing cost (the scores the teacher has, at budget 0 vs the top budget)? */
function budgetVerdict(f: RecallFacts): { ours: string; verdict: string } {
  const ends = (m: RecallMetric) => `${fmtScore(m, f.up(0)[m])} right after linearizing, ${fmtScore(m, f.up(f.top)[m])} at ${f.top}%`;
  const ours = RECALL_METRICS.map((m) => `${pointLabel(f, m)}: ${ends(m)}; teacher ${RECALL_RULES[m].f(f.teacher[m])}`).join('. ') + ' (section 6).';
  if (f.skilled.length === 0) return { ours, verdict: 'not testable here (the teacher does not recall either)' };
  const start = againstTeacher(f.teacher, f.up(0), f.skilled);
  const owed = f.skilled.filter((m) => !start.kept.includes(m));
  if (owed.length === 0) return { ours, verdict: 'nothing to recover (right after linearizing SUPRA recalls as the teacher does)' };
  const end = againstTeacher(f.teacher, f.up(f.top), owed);
  const rose = owed.filter((m) => clearlyBelow(f.up(0)[m], f.up(f.top)[m], RECALL_RULES[m].margin));
  const verdict = end.kept.length === owed.length ? 'yes'
    : rose.length || end.kept.length
      ? `partly (${[rose.length ? `rises with the budget on ${metricNames(rose)}` : '', end.kept.length ? `back to the teacher's on ${metricNames(end.kept)}` : '', `below the teacher at ${f.top}% on ${metricNames(owed.filter((m) => !end.kept.includes(m)))}`].filter(Boolean).join('; ')})`
      : `no (what linearizing lost on ${metricNames(owed)} stays lost up to ${f.top}%)`;
  return { ours, verdict };
}

/** A run's mean score over the settings past the training length (NaN when there are none). */
function pastScore(f: RecallFacts, r: RunResult, m: RecallMetric): number {
  const past = f.settings[m].filter((s) => s.tokens > f.seqLen);
  return past.length ? mean1(past.map((s) => f.score(r, m, s.x))) : NaN;
}

/**
 * Recall past the training length. `lost` names the scores lost past it; `lostInside` those of them the model had
 * already lost inside it (at the point), where past the training length has nothing left to take.
 */
interface PastVerdict {
  ours: string;
  state: 'none' | 'lost' | 'kept' | 'better' | 'mixed';
  lost: RecallMetric[];
  kept: RecallMetric[];
  better: RecallMetric[];
  lostInside: RecallMetric[];
  teacherPast: Scores<number>;
}

/** Recall past the training length: the teacher against the top uptrained model's seeds, on the scores either shows. */
function pastVerdict(f: RecallFacts, teacher: RunResult, top: RunResult[]): PastVerdict {
  const t = Object.fromEntries(RECALL_METRICS.map((m) => [m, pastScore(f, teacher, m)])) as Scores<number>;
  const s = Object.fromEntries(RECALL_METRICS.map((m) => [m, stat(top.map((r) => pastScore(f, r, m)).filter(Number.isFinite))])) as Scores<Stat | null>;
  const shown = RECALL_METRICS.filter((m) => t[m] >= RECALL_RULES[m].skill || (s[m]?.max ?? -Infinity) >= RECALL_RULES[m].skill);
  const over = RECALL_METRICS.map((m) => `${f.settings[m].filter((x) => x.tokens > f.seqLen).map((x) => x.tokens).join('/')}-token ${metricNames([m])}`);
  const ours = `Recall past it (means over the ${over.slice(0, -1).join(', ')} and ${over[over.length - 1]} sequences), teacher vs uptrained ${f.top}%: ` +
    RECALL_METRICS.map((m) => `${RECALL_RULES[m].name} ${RECALL_RULES[m].f(t[m])} vs ${fmtScore(m, s[m])}`).join(', ') + '.';
  if (shown.length === 0) return { ours, state: 'none', lost: [], kept: [], better: [], lostInside: [], teacherPast: t };
  const cmp = againstTeacher(t, s, shown);
  const better = shown.filter((m) => (s[m]?.min ?? -Infinity) > t[m] + RECALL_RULES[m].margin);
  const state = cmp.lost.length === shown.length ? 'lost' : cmp.lost.length || cmp.split.length ? 'mixed' : better.length ? 'better' : 'kept';
  const inside = againstTeacher(f.teacher, f.up(f.top), cmp.lost);
  return { ours, state, lost: cmp.lost, kept: cmp.kept, better, lostInside: inside.lost, teacherPast: t };
}

type Figure = (name: string, plot: LinePlot) => string;

const TEACHER_COLORS = ['#555555', '#999999'];

/** Section 6: the three scores at their point inside the training length, against the budget. */
function recallBudgetSection(L: string[], input: ReportInput, f: RecallFacts, figure: Figure): void {
  const { study } = input;
  const ev = input.evalSettings.probes;
  const pr = input.results.get('teacher')!.probes;
  const budgets = [0, ...study.budgets];
  const rows = [...new Set([...budgets, ...study.transferBudgets])].sort((a, b) => a - b);
  L.push('## 6. Recall along the uptraining budget');
  L.push('');
  L.push(`Does more uptraining recover recall? \`supra demo\`'s three scores, read off each run's probes at one setting inside the ${study.seqLen}-token training`);
  L.push(`length: the nats the second copy of ${ev.copy.span} random tokens saves over the first at gap ${f.point.copy.x} (${f.point.copy.tokens}-token sequences), MQAR accuracy at`);
  L.push(`${f.point.mqar.x} pairs (${f.point.mqar.tokens} tokens; chance ${pr.mqar.chance.toExponential(1)}), passkey accuracy at ${f.point.passkey.x} tokens (chance ${f2(pr.passkey.chance)}). Budget 0% is the SUPRA model right`);
  L.push('after linearizing.');
  L.push('');
  const cells = (s: Scores<Stat | null> | null) => RECALL_METRICS.map((m) => (s ? fmtScore(m, s[m]) : '')).join(' | ');
  L.push('| budget | uptrained: copy saved (nats) | MQAR | passkey | attention transfer + LoRA: copy saved (nats) | MQAR | passkey |');
  L.push('|---:|---:|---:|---:|---:|---:|---:|');
  L.push(`| teacher (softmax) | ${RECALL_METRICS.map((m) => RECALL_RULES[m].f(f.teacher[m])).join(' | ')} | | | |`);
  for (const b of rows) {
    const up = budgets.includes(b) ? f.up(b) : null;
    const tr = study.transferBudgets.includes(b) ? f.transfer(b) : null;
    L.push(`| ${b === 0 ? '0% (right after linearizing)' : `${b}%`} | ${cells(up)} | ${cells(tr)} |`);
  }
  L.push('');
  const means = (which: (b: number) => Scores<Stat | null>, bs: number[], m: RecallMetric) => bs.map((b) => which(b)[m]?.mean ?? NaN);
  const flat = (m: RecallMetric) => budgets.map(() => f.teacher[m]);
  const copyPlot = figure('recall_budget_copy', {
    title: `Copying inside the training length: nats saved at gap ${f.point.copy.x}, against the budget`,
    xLabel: "tokens trained (% of the teacher's pretraining)", yLabel: 'nats saved by the second copy',
    series: [
      { name: 'SUPRA uptrained (mean of seeds)', x: budgets, y: means(f.up, budgets, 'copy') },
      ...(study.transferBudgets.length ? [{ name: 'attention transfer + LoRA', x: study.transferBudgets, y: means(f.transfer, study.transferBudgets, 'copy'), color: '#31a354' }] : []),
      { name: 'teacher (softmax)', x: budgets, y: flat('copy'), color: TEACHER_COLORS[0] },
    ],
    width: 720, height: 440,
  });
  const accPlot = figure('recall_budget_accuracy', {
    title: `MQAR at ${f.point.mqar.x} pairs and passkey at ${f.point.passkey.x} tokens, against the budget`,
    xLabel: "tokens trained (% of the teacher's pretraining)", yLabel: 'accuracy',
    series: [
      { name: 'SUPRA uptrained: MQAR', x: budgets, y: means(f.up, budgets, 'mqar'), color: '#1f6fb4' },
      { name: 'SUPRA uptrained: passkey', x: budgets, y: means(f.up, budgets, 'passkey'), color: '#f07f10' },
      ...(study.transferBudgets.length
        ? [
            { name: 'attention transfer + LoRA: MQAR', x: study.transferBudgets, y: means(f.transfer, study.transferBudgets, 'mqar'), color: '#31a354' },
            { name: 'attention transfer + LoRA: passkey', x: study.transferBudgets, y: means(f.transfer, study.transferBudgets, 'passkey'), color: '#a1d99b' },
          ]
        : []),
      { name: 'teacher: MQAR', x: budgets, y: flat('mqar'), color: TEACHER_COLORS[0] },
      { name: 'teacher: passkey', x: budgets, y: flat('passkey'), color: TEACHER_COLORS[1] },
    ],
    hline: { y: pr.passkey.chance, label: 'passkey chance' }, yMin: 0, yMax: 1, width: 720, height: 440,
  });
  L.push(`![Copying against the budget](${copyPlot})`);
  L.push('');
  L.push(`![MQAR and passkey against the budget](${accPlot})`);
  L.push('');
  // the finding, from the numbers above (the findings table repeats it)
  const v = budgetVerdict(f);
  let text = `**What this shows.** Does more uptraining recover recall? ${verdictSentence(v.verdict)}`;
  const top = study.transferBudgets[study.transferBudgets.length - 1];
  if (top !== undefined && f.skilled.length) {
    const up = f.up(top), tr = f.transfer(top);
    const better = f.skilled.filter((m) => clearlyBelow(up[m], tr[m], RECALL_RULES[m].margin));
    const worse = f.skilled.filter((m) => clearlyBelow(tr[m], up[m], RECALL_RULES[m].margin));
    const same = f.skilled.filter((m) => !better.includes(m) && !worse.includes(m));
    text += ` At ${top}%, attention transfer + LoRA recalls ${[
      better.length ? `better than full uptraining on ${metricNames(better)}` : '',
      worse.length ? `worse than full uptraining on ${metricNames(worse)}` : '',
      same.length ? `as full uptraining does on ${metricNames(same)}` : '',
    ].filter(Boolean).join(', ')}.`;
  }
  L.push(text);
  L.push('');
}

/** Section 7: every probe setting by its sequence length, the teacher against the top budget's models. */
function recallLengthSection(L: string[], input: ReportInput, f: RecallFacts, figure: Figure, t: { runs: (id: (seed: number) => string) => RunResult[]; upId: (b: number) => (s: number) => string; trId: (b: number) => (s: number) => string }): void {
  const { study } = input;
  const teacher = input.results.get('teacher')!;
  const trTop = study.transferBudgets[study.transferBudgets.length - 1];
  const models: Array<[string, RunResult[]]> = [
    [`SUPRA uptrained ${f.top}%`, t.runs(t.upId(f.top))],
    ...(trTop !== undefined ? [[`attention transfer + LoRA ${trTop}%`, t.runs(t.trId(trTop))] as [string, RunResult[]]] : []),
  ];
  const knob = (m: RecallMetric, x: number) => (m === 'copy' ? `gap ${x}` : m === 'mqar' ? `${x} pairs` : `${x}-token prompt`);
  L.push(`## 7. Recall past the training length`);
  L.push('');
  L.push(`Every setting of the probes, by the tokens its sequences take; past ${f.seqLen} tokens (marked) neither model saw a position in training`);
  L.push(`(the teacher and every SUPRA run train on ${f.seqLen}-token sequences; SUPRA keeps the teacher's RoPE, and adds a decaying state). Means over the seeds (min–max).`);
  L.push('');
  L.push(`| score | setting | tokens | teacher (softmax) | ${models.map(([name]) => name).join(' | ')} |`);
  L.push(`|---|---|---:|---:|${models.map(() => '---:').join('|')}|`);
  for (const m of RECALL_METRICS) {
    for (const { x, tokens } of f.settings[m]) {
      const cells = models.map(([, rs]) => fmtScore(m, stat(rs.map((r) => f.score(r, m, x)).filter(Number.isFinite))));
      L.push(`| ${RECALL_RULES[m].name} | ${knob(m, x)} | ${tokens}${tokens > f.seqLen ? ' (past)' : ''} | ${RECALL_RULES[m].f(f.score(teacher, m, x))} | ${cells.join(' | ')} |`);
    }
  }
  L.push('');
  const line = (rs: RunResult[], m: RecallMetric) => f.settings[m].map((s) => stat(rs.map((r) => f.score(r, m, s.x)).filter(Number.isFinite))?.mean ?? NaN);
  const xs = (m: RecallMetric) => f.settings[m].map((s) => s.tokens);
  const vline = { x: f.seqLen, label: `training length (${f.seqLen})` };
  const copyPlot = figure('recall_length_copy', {
    title: 'Copying: nats saved by the second copy, against the sequence length',
    xLabel: 'tokens in the sequence', yLabel: 'nats saved by the second copy',
    series: [
      { name: 'teacher (softmax)', x: xs('copy'), y: line([teacher], 'copy'), color: TEACHER_COLORS[0] },
      ...models.map(([name, rs]) => ({ name, x: xs('copy'), y: line(rs, 'copy') })),
    ],
    vline, xLog: true, width: 720, height: 440,
  });
  const accPlot = figure('recall_length_accuracy', {
    title: 'MQAR and passkey accuracy against the sequence length',
    xLabel: 'tokens in the sequence', yLabel: 'accuracy',
    series: [
      { name: 'teacher: MQAR', x: xs('mqar'), y: line([teacher], 'mqar'), color: TEACHER_COLORS[0] },
      { name: 'teacher: passkey', x: xs('passkey'), y: line([teacher], 'passkey'), color: TEACHER_COLORS[1] },
      { name: `${models[0]![0]}: MQAR`, x: xs('mqar'), y: line(models[0]![1], 'mqar'), color: '#1f6fb4' },
      { name: `${models[0]![0]}: passkey`, x: xs('passkey'), y: line(models[0]![1], 'passkey'), color: '#f07f10' },
    ],
    hline: { y: teacher.probes.passkey.chance, label: 'passkey chance' }, vline, xLog: true, yMin: 0, yMax: 1, width: 720, height: 440,
  });
  L.push(`![Copying against the sequence length](${copyPlot})`);
  L.push('');
  L.push(`![MQAR and passkey against the sequence length](${accPlot})`);
  L.push('');
  const p = pastVerdict(f, teacher, models[0]![1]);
  const who = models[0]![0];
  const text = {
    none: `Neither the teacher nor ${who} recalls past the training length at these settings.`,
    lost: p.lostInside.length === p.lost.length
      ? `${who} recalls nothing past the training length, as it recalls nothing inside it (section 6: ${metricNames(p.lost)}); there was nothing to lose. ${teacherFalls(f, p)}`
      : `${who} loses recall past the training length where the teacher keeps it (${metricNames(p.lost)}).`,
    kept: `${who} recalls past the training length as well as the teacher (${metricNames(p.kept)}).`,
    better: `${who} recalls past the training length better than the teacher on ${metricNames(p.better)}${p.kept.length > p.better.length ? `, as well on ${metricNames(p.kept.filter((m) => !p.better.includes(m)))}` : ''}.`,
    mixed: `Past the training length ${who} ${[p.lost.length ? `loses recall on ${metricNames(p.lost)}` : '', p.kept.length ? `keeps it on ${metricNames(p.kept)}` : ''].filter(Boolean).join(' and ') || 'recalls unevenly across its seeds'}.`,
  }[p.state];
  L.push(`**What this shows.** ${text} ${p.ours.replace(/^Recall past it/, 'Recall past the training length')}`);
  L.push('');
}

/** A verdict as a sentence: "no (what … stays lost)" → "No: what … stays lost." */
function verdictSentence(v: string): string {
  const m = /^([^(]+) \((.*)\)$/.exec(v);
  const s = m ? `${m[1]}: ${m[2]}` : v;
  return `${s[0]!.toUpperCase()}${s.slice(1)}.`;
}

/** How the teacher's own recall changes past the training length: its score at the point, then its mean past it. */
function teacherFalls(f: RecallFacts, p: PastVerdict): string {
  const moves = RECALL_METRICS.map((m) => `${RECALL_RULES[m].name} ${RECALL_RULES[m].f(f.teacher[m])} → ${RECALL_RULES[m].f(p.teacherPast[m])}`).join(', ');
  const fell = RECALL_METRICS.filter((m) => p.teacherPast[m] < f.teacher[m] - RECALL_RULES[m].margin);
  return fell.length
    ? `The teacher's own recall falls past its ${f.seqLen}-token training length on ${metricNames(fell)} (at the point inside → mean past it: ${moves}).`
    : `The teacher keeps its recall past its ${f.seqLen}-token training length (at the point inside → mean past it: ${moves}).`;
}

/** 2, 4, 8, …, 256 (tokens), or 'never' without decay. */
function fmtHorizons(hs: number[]): string {
  const u = [...new Set(hs.map((h) => (Number.isFinite(h) ? Math.round(h) : Infinity)))].sort((a, b) => a - b);
  return u.map((h) => (Number.isFinite(h) ? String(h) : 'never')).join(', ');
}

/**
 * The paragraph under the findings: why our recall findings may differ from the paper's, decided by the
 * teacher's scores and, when it recalls, by SUPRA's memory (each head's decay horizon and its state's
 * width) against the distances the probes ask about.
 */
function whyOursMayDiffer(input: ReportInput, f: RecallFacts, icl: { lost: RecallMetric[]; kept: RecallMetric[] }, topSpec: RunSpec | undefined): string {
  const teacher = input.results.get('teacher')!;
  const scores = RECALL_METRICS.map((m) => `${pointLabel(f, m)} ${RECALL_RULES[m].f(f.teacher[m])}`).join(', ');
  const tested = f.skilled.filter((m) => m !== 'passkey');
  let text = '**Why ours may differ at this scale.** ';
  if (tested.length === 0) {
    text += `The teacher is small and briefly trained (val ppl ${f1(teacher.valPpl)}) and does not recall in context (${scores}): a probe cannot show a loss the teacher never had. `;
  } else {
    const H = input.teacher.heads, dk = input.teacher.headDim;
    const decay = supraSettings(topSpec?.linearize ?? {}).decay;
    const hz = decayHorizons(H, decay);
    const reach = (d: number) => hz.filter((h) => h >= d).length;
    // how far back each score asks (a first-copy token to its repeat; the first pair to the last query), and
    // how many tokens a head that reaches that far then holds
    const dist: Record<'copy' | 'mqar', number> = { copy: f.point.copy.tokens - input.evalSettings.probes.copy.span, mqar: f.point.mqar.tokens - 2 };
    const held = { copy: f.point.copy.tokens, mqar: f.point.mqar.tokens };
    const outcome = icl.lost.length === tested.length ? 'loses it' : icl.kept.length === tested.length ? 'keeps it' : 'keeps part of it';
    text += `The teacher does recall in context here (${scores}), and SUPRA uptrained ${f.top}% ${outcome}. `;
    text += `SUPRA's memory is one ${dk} × ${dk} state per head and layer, whatever the context (a linear memory keeps about ${dk} associations apart), `;
    text += hz.every((h) => !Number.isFinite(h)) ? 'and no head forgets (no decay). ' : `and each head forgets at its own rate (${decay} decay): a token's weight falls to 1/e after ${fmtHorizons(hz)} tokens. `;
    text += `The copy probe at gap ${f.point.copy.x} asks across ${dist.copy} tokens, which ${reach(dist.copy)} of ${H} heads reach, each then holding all ${held.copy} tokens of the sequence in ${dk} dimensions; `;
    text += `MQAR at ${f.point.mqar.x} pairs asks up to ${dist.mqar} tokens back (${reach(dist.mqar)} heads reach it) for ${f.point.mqar.x} associations among ${held.mqar} tokens. `;
    const lost = icl.lost.filter((m): m is 'copy' | 'mqar' => m !== 'passkey');
    const kept = tested.filter((m) => icl.kept.includes(m));
    const unreached = lost.filter((m) => reach(dist[m]) === 0);
    const crowded = lost.filter((m) => reach(dist[m]) > 0 && held[m] > dk);
    const unexplained = lost.filter((m) => reach(dist[m]) > 0 && held[m] <= dk);
    if (unreached.length) text += `No head reaches as far as ${metricNames(unreached)} asks, which alone explains losing it. `;
    if (crowded.length) text += `The decay alone does not explain the loss of ${metricNames(crowded)}: heads reach that far, but must hold more tokens than their ${dk} dimensions keep apart. `;
    if (unexplained.length) text += `Neither the decay nor the state's width explains the loss of ${metricNames(unexplained)}: heads reach that far and the tokens fit; the budget may be too short to learn it. `;
    if (kept.length) {
      const far = Math.max(...RECALL_METRICS.flatMap((m) => f.settings[m].map((x) => x.tokens)));
      text += kept.every((m) => reach(dist[m]) > 0)
        ? `What it keeps (${metricNames(kept)}) lies within its slowest heads' reach, and that is enough here`
        : `It keeps ${metricNames(kept)} although not every distance lies within a head's 1/e horizon: what remains of the decayed weight is enough here`;
      text += far > Math.max(...hz) ? `; past the training length (section 7) the probes' sequences run to ${far} tokens, beyond the slowest head's ${fmtHorizons([Math.max(...hz)])}. ` : '. ';
    }
  }
  text += 'Our budgets are tens to hundreds of optimizer steps, where warm-up and the first steps dominate. ';
  text += `And perplexity on ${Math.round(teacher.validationTokens / 1000)}k held-out tokens is a coarser instrument than the paper's benchmark suite.`;
  return text;
}
