// The study's page: docs/results.md with its tables, plots and conclusions, all computed from the
// runs' result.json files. Every sentence that states a finding is decided by the numbers below it,
// so a rerun that comes out differently writes a different conclusion.
import { mkdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { linePlotPng, linePlotSvg, type LinePlot, type Series } from '../eval/plot.js';
import { formatNumber } from '../train/metrics.js';
import { defaultMinLr, TRAIN_DEFAULTS } from '../train/recipe.js';
import { ABLATIONS, TRANSFER_VARIANT, type EvalSettings, type StudyOptions } from './plan.js';
import type { RunResult } from './run.js';

export interface TeacherSummary {
  parameters: number;
  layers: number;
  heads: number;
  kvHeads: number;
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

/** a is below b for every pair of seeds (the seeds' ranges do not overlap). */
function clearlyBelow(a: Stat | null, b: Stat | null): boolean {
  return a !== null && b !== null && a.max < b.min;
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
  L.push(`\`--decay none\`, \`--decay retnet\`, \`--train-only kernels\`, \`--kernels-first-steps N\` (here ${Math.round(study.twoStepFraction * 100)}% of the steps).`);
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

  // ---------------------------------------------------------------- 3. context
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

  // ---------------------------------------------------------------- 4. probes and attention
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

  // ---------------------------------------------------------------- 5. the paper's claims
  L.push('## 6. The paper\'s findings beside ours');
  L.push('');
  L.push('The paper\'s numbers are at 1B–7B parameters and 10⁹–10¹¹ tokens; its Table 3 (1B) gives the direction: SUPRA uptrained');
  L.push(`57.0 HellaSwag, T2R uptrained 40.6, SUPRA from scratch 54.7. Ours is a ${millions(input.teacher.parameters)}-parameter model and a 2.5M-token budget, scored by`);
  L.push('validation perplexity (lower is better).');
  L.push('');
  L.push('| the paper says | what we measured | agrees? |');
  L.push('|---|---|---|');
  for (const c of claims(input, { T, ppl, upId, scId, abId, runs })) L.push(`| ${c.paper} | ${c.ours} | ${c.verdict} |`);
  L.push('');
  L.push('**Why ours may differ at this scale.** The teacher is small and briefly trained (val ppl ' + f1(T) + '), so it has little');
  L.push('in-context skill to lose: its own copy, MQAR and passkey scores are near chance at long range, and a probe cannot show');
  L.push('a loss the teacher never had. Our budgets are tens to hundreds of optimizer steps, where warm-up and the first steps');
  L.push('dominate. And perplexity on 86k held-out tokens is a coarser instrument than the paper\'s benchmark suite.');
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
  // in-context learning and long context
  const teacher = input.results.get('teacher')!;
  const top = input.results.get(t.upId(small[small.length - 1]!)(seed0));
  if (top) {
    const gain = (r: RunResult) => r.longContext.loss[0]! - r.longContext.loss[1]!;
    const beyond = (r: RunResult) => r.longContext.loss[r.longContext.loss.length - 1]! - r.longContext.loss[1]!;
    const copyGap = (r: RunResult) => r.probes.copy.secondCopyLoss[Math.min(2, r.probes.copy.secondCopyLoss.length - 1)]!;
    const firstCopy = (r: RunResult) => mean1(r.probes.copy.firstCopyLoss);
    const useCtxTeacher = gain(teacher), useCtxSupra = gain(top);
    out.push({
      paper: 'In-context learning is what is lost: linear models do worse on recall-style tasks.',
      ours: `Copy (gap ${teacher.probes.copy.gaps[Math.min(2, teacher.probes.copy.gaps.length - 1)]}): teacher ${f2(copyGap(teacher))} vs uptrained ${small[small.length - 1]}% ${f2(copyGap(top))} nats (no-memory baseline ${f2(firstCopy(teacher))}). MQAR accuracy at ${teacher.probes.mqar.pairs[0]} pairs: ${f2(teacher.probes.mqar.accuracy[0]!)} vs ${f2(top.probes.mqar.accuracy[0]!)}.`,
      verdict: copyGap(teacher) < firstCopy(teacher) - 0.5 ? (copyGap(top) > copyGap(teacher) + 0.1 ? 'yes' : 'no') : 'not testable here (the teacher cannot copy either)',
    });
    out.push({
      paper: 'Long context is what is lost: linear models gain less from more context, and do not use context past training length.',
      ours: `Loss drop from positions 0–63 to 64–255: teacher ${f3(useCtxTeacher)}, uptrained ${f3(useCtxSupra)} nats. Past the ${study.seqLen}-token training length (last bucket minus 64–255): teacher ${f3(beyond(teacher))}, uptrained ${f3(beyond(top))}.`,
      verdict: useCtxSupra < useCtxTeacher - 0.01 ? 'yes (the teacher uses context more)' : 'no (SUPRA uses context as well as the teacher here)',
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
