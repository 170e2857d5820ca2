// supra analyze --teacher <dir> --model <dir> --text <file> --out <dir>: the paper's Appendix A attention
// comparison (cosine and singular-value distance per layer and head, raw and row-normalized) and the
// drift of the q/k/v/o projections, as heatmaps, a line plot, and JSON.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../io/atomic.js';
import { join } from 'node:path';
import { intOption, optionsHelp, parse, UsageError, type OptionSpecs } from './args.js';
import { loadPair } from './probe.js';
import { loadTokenizer } from '../io/tokenizer.js';
import { analyzeAttention, PROJECTIONS, type AnalysisResult } from '../eval/analyze.js';
import { heatmapPng, heatmapSvg, linePlotPng, linePlotSvg, type Heatmap, type LinePlot } from '../eval/plot.js';

/** The plots of an analysis: four layer × head heatmaps and the weight-drift line plot, by file stem. */
export function analysisPlots(r: AnalysisResult): { heatmaps: Record<string, Heatmap>; drift: LinePlot } {
  const rowLabels = Array.from({ length: r.layers }, (_, l) => String(l));
  const heat = (title: string, values: number[][], vmin: number, vmax: number): Heatmap => ({
    title, xLabel: 'head', yLabel: 'layer', values, rowLabels, vmin, vmax,
  });
  const layers = r.weightDrift.map((d) => d.layer);
  return {
    heatmaps: {
      cosine_raw: heat(`Cosine similarity, raw (T = ${r.tokens})`, r.cosine.raw, -1, 1),
      cosine_rownorm: heat(`Cosine similarity, row-normalized (T = ${r.tokens})`, r.cosine.rownorm, -1, 1),
      svdist_raw: heat(`Singular-value distance, raw (T = ${r.tokens})`, r.svDistance.raw, 0, Math.SQRT2),
      svdist_rownorm: heat(`Singular-value distance, row-normalized (T = ${r.tokens})`, r.svDistance.rownorm, 0, Math.SQRT2),
    },
    drift: {
      title: 'Attention weight drift from the teacher', xLabel: 'layer', yLabel: '||W - W_teacher||_F / ||W_teacher||_F',
      series: PROJECTIONS.map((p) => ({ name: p, x: layers, y: r.weightDrift.map((d) => d.drift[p]!.relChange) })),
    },
  };
}

const OPTIONS = {
  teacher: { type: 'string', value: 'DIR', help: 'the softmax teacher' },
  model: { type: 'string', value: 'DIR', help: 'its SUPRA model (linearized, usually uptrained)' },
  text: { type: 'string', value: 'FILE', help: 'the text whose attention is compared' },
  out: { type: 'string', short: 'o', value: 'DIR', help: 'where analysis.json and the heatmaps/plot (.png, .svg) go' },
  tokens: { type: 'string', value: 'N', help: 'tokens per window (default 128, at most 512: the SVDs are O(T³))' },
  windows: { type: 'string', value: 'N', help: 'consecutive windows averaged (default 1)' },
  tokenizer: { type: 'string', value: 'DIR', help: 'the tokenizer folder (default: the model, else the teacher)' },
} satisfies OptionSpecs;

export const command = {
  summary: "compare each layer/head's SUPRA attention with the teacher's softmax attention (paper App. A) and the weight drift",
  usage: `supra analyze --teacher <dir> --model <dir> --text <file> --out <dir> [options]\n\n${optionsHelp(OPTIONS)}`,
  options: OPTIONS,
  async run(argv: string[]): Promise<void> {
    const { values } = parse(argv, OPTIONS, 'analyze');
    if (!values.teacher || !values.model || !values.text || !values.out) {
      throw new UsageError('analyze needs --teacher <dir>, --model <dir>, --text <file> and --out <dir>');
    }
    const T = intOption(values.tokens, 'tokens', 128, 2);
    if (T > 512) throw new UsageError(`--tokens ${T}: the float64 SVDs are O(T³) per head; use at most 512 (256 or less is quick)`);
    const windows = intOption(values.windows, 'windows', 1, 1);
    const dirs = values.tokenizer ? [values.tokenizer] : [values.model, values.teacher];
    const tokDir = dirs.find((d) => existsSync(join(d, 'tokenizer.json')));
    if (!tokDir) throw new Error(`supra: analyze needs a tokenizer.json (looked in ${dirs.join(', ')}; pass --tokenizer <dir>)`);
    const ids = loadTokenizer(tokDir).encode(readFileSync(values.text, 'utf8'));
    const tokens = Math.min(T, ids.length);
    if (tokens < 2) throw new Error(`supra: ${values.text}: the text has ${ids.length} token(s); need at least 2`);
    const { teacher, model } = loadPair(values.teacher, values.model);
    let r: AnalysisResult;
    try {
      for (const id of ids) if (id >= teacher.config.vocab_size) throw new Error(`supra: the tokenizer in ${tokDir} produced id ${id}, outside the vocabulary of ${teacher.config.vocab_size}`);
      r = analyzeAttention(teacher, model, ids, tokens, windows);
    } finally {
      teacher.free();
      model.free();
    }
    mkdirSync(values.out, { recursive: true });
    const json = join(values.out, 'analysis.json');
    writeFileAtomic(json, JSON.stringify({ ...r, teacherDir: values.teacher, modelDir: values.model, text: values.text }, null, 2) + '\n');
    const plots = analysisPlots(r);
    const written = [json];
    for (const [stem, h] of Object.entries(plots.heatmaps)) {
      writeFileAtomic(join(values.out, `${stem}.png`), heatmapPng(h));
      writeFileAtomic(join(values.out, `${stem}.svg`), heatmapSvg(h));
      written.push(join(values.out, `${stem}.png`), join(values.out, `${stem}.svg`));
    }
    writeFileAtomic(join(values.out, 'weight_drift.png'), linePlotPng(plots.drift));
    writeFileAtomic(join(values.out, 'weight_drift.svg'), linePlotSvg(plots.drift));
    written.push(join(values.out, 'weight_drift.png'), join(values.out, 'weight_drift.svg'));
    const meanOf = (m: number[][]) => m.flat().reduce((a, b) => a + b, 0) / m.flat().length;
    console.log(`analyzed ${r.layers} layers × ${r.heads} heads on ${r.windows} window(s) of ${r.tokens} tokens in ${r.seconds.toFixed(1)} s`);
    console.log(`  mean cosine: raw ${meanOf(r.cosine.raw).toFixed(4)}, row-normalized ${meanOf(r.cosine.rownorm).toFixed(4)}`);
    console.log(`  mean singular-value distance: raw ${meanOf(r.svDistance.raw).toFixed(4)}, row-normalized ${meanOf(r.svDistance.rownorm).toFixed(4)}`);
    for (const f of written) console.log(`  wrote ${f}`);
  },
};
