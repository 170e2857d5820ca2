// supra probe <copy|passkey|mqar> --teacher <dir> --model <dir> --out <dir>: run one probe on both models,
// write <out>/<probe>.json, .png and .svg, and print the table.
import { mkdirSync, existsSync } from 'node:fs';
import { writeFileAtomic } from '../io/atomic.js';
import { join } from 'node:path';
import { intOption, optionsHelp, parse, UsageError, type OptionSpecs } from './args.js';
import { loadTokenizer } from '../io/tokenizer.js';
import { loadDecoder } from '../models/auto.js';
import type { DecoderLM } from '../models/decoder.js';
import { linePlotPng, linePlotSvg } from '../eval/plot.js';
import { copyProbe, mqarProbe, passkeyProbe, probePlot, type ProbeResult, type TokenRange } from '../eval/probes.js';

const PROBES = ['copy', 'passkey', 'mqar'] as const;

/** "0,8,32" → [0, 8, 32] (integers ≥ min, or any finite numbers when integer is false). */
export function listOption(value: string | undefined, name: string, integer = true, min = 0): number[] | undefined {
  if (value === undefined) return undefined;
  const items = value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const nums = items.map(Number);
  if (items.length === 0 || nums.some((n) => !Number.isFinite(n) || n < min || (integer && !Number.isInteger(n)))) {
    throw new UsageError(`--${name} must be a comma-separated list of ${integer ? 'integers' : 'numbers'} ≥ ${min}, got "${value}"`);
  }
  return nums;
}

function rangeOption(value: string | undefined): TokenRange | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+):(\d+)$/.exec(value);
  if (!m || Number(m[1]) >= Number(m[2])) throw new UsageError(`--token-range must be lo:hi with lo < hi (ids lo … hi−1), got "${value}"`);
  return { lo: Number(m[1]), hi: Number(m[2]) };
}

/** Both models, checked to share a vocabulary. */
export function loadPair(teacherDir: string, modelDir: string): { teacher: DecoderLM; model: DecoderLM } {
  const teacher = loadDecoder(teacherDir).model;
  let model: DecoderLM;
  try {
    model = loadDecoder(modelDir).model;
  } catch (e) {
    teacher.free();
    throw e;
  }
  if (teacher.config.vocab_size !== model.config.vocab_size) {
    teacher.free();
    model.free();
    throw new Error(`supra: ${teacherDir} has a vocabulary of ${teacher.config.vocab_size}, ${modelDir} of ${model.config.vocab_size}; compare a teacher with its own linearized model`);
  }
  return { teacher, model };
}

function printTable(r: ProbeResult): void {
  console.log(`${r.probe}: ${r.metric} (${r.description})`);
  console.log(`  ${r.xName.padStart(8)}  ${'teacher'.padStart(10)}  ${'model'.padStart(10)}`);
  r.x.forEach((x, i) => {
    console.log(`  ${String(x).padStart(8)}  ${r.teacher[r.metric]![i]!.toFixed(4).padStart(10)}  ${r.model[r.metric]![i]!.toFixed(4).padStart(10)}`);
  });
  if (r.probe === 'copy') {
    // the no-memory baseline is each model's own loss on the first copy, not uniform guessing
    const meanOf = (v: number[] | undefined) => (v && v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN);
    console.log(`  baseline without memory (loss on the first copy, mean over gaps): teacher ${meanOf(r.teacher.firstCopyLoss).toFixed(4)}, model ${meanOf(r.model.firstCopyLoss).toFixed(4)}`);
    console.log('  (below the baseline = copying from context; a text model gives random tokens less than uniform');
    console.log(`  probability, so its baseline can sit above the uniform guess ${r.chance!.toFixed(4)} = ln(token range))`);
  } else if (r.chance !== undefined) console.log(`  ${r.chanceLabel ?? 'chance'}: ${r.chance.toFixed(4)}`);
  console.log(`  time: teacher ${r.seconds.teacher.toFixed(1)} s, model ${r.seconds.model.toFixed(1)} s`);
}

const OPTIONS = {
  teacher: { type: 'string', value: 'DIR', help: 'the softmax teacher' },
  model: { type: 'string', value: 'DIR', help: 'the model to compare with it (its SUPRA model)' },
  out: { type: 'string', short: 'o', value: 'DIR', help: 'where <probe>.json, .png and .svg go' },
  seed: { type: 'string', value: 'N', help: 'random data seed (default 0)' },
  samples: { type: 'string', value: 'N', help: 'sequences per point (default: copy 8, mqar 16, passkey 2)' },
  span: { type: 'string', value: 'N', help: 'copy: tokens copied (default 16)' },
  gaps: { type: 'string', value: 'LIST', help: 'copy: gaps between the copies (default 0,8,32,128,512)' },
  'token-range': { type: 'string', value: 'LO:HI', help: 'copy, mqar: random token ids LO…HI−1 (default: docs/probes.md)' },
  pairs: { type: 'string', value: 'LIST', help: 'mqar: key-value pairs (default 4,8,16,32,64)' },
  queries: { type: 'string', value: 'N', help: 'mqar: queries per sequence (default: every pair)' },
  lengths: { type: 'string', value: 'LIST', help: 'passkey: context lengths in tokens (default 128,256,512)' },
  depths: { type: 'string', value: 'LIST', help: 'passkey: where the key sits, 0 = start … 1 = end (default 0,0.25,0.5,0.75,1)' },
  distractors: { type: 'string', value: 'N', help: 'passkey: wrong keys ranked against the true one (default 4)' },
  tokenizer: { type: 'string', value: 'DIR', help: 'passkey: the tokenizer folder (default: the model, else the teacher)' },
} satisfies OptionSpecs;

export const command = {
  summary: 'probe what linearization costs: copying vs gap, passkey retrieval vs length, MQAR vs pairs (plots + JSON)',
  usage: `supra probe <copy|passkey|mqar> --teacher <dir> --model <dir> --out <dir> [options]\n\n${optionsHelp(OPTIONS)}`,
  options: OPTIONS,
  async run(argv: string[]): Promise<void> {
    const { values, positionals } = parse(argv, OPTIONS, 'probe');
    const probe = positionals[0];
    if (positionals.length !== 1 || !(PROBES as readonly string[]).includes(probe!)) {
      throw new UsageError(`probe takes one probe name: ${PROBES.join(', ')}`);
    }
    if (!values.teacher || !values.model || !values.out) throw new UsageError('probe needs --teacher <dir>, --model <dir> and --out <dir>');
    const seed = intOption(values.seed, 'seed', 0);
    const samples = values.samples === undefined ? undefined : intOption(values.samples, 'samples', 1, 1);
    const range = rangeOption(values['token-range']);
    // read the tokenizer before the models, so a missing one fails fast
    let tok = null;
    if (probe === 'passkey') {
      const dirs = values.tokenizer ? [values.tokenizer] : [values.model, values.teacher];
      const dir = dirs.find((d) => existsSync(join(d, 'tokenizer.json')));
      if (!dir) throw new Error(`supra: probe passkey needs a tokenizer.json (looked in ${dirs.join(', ')}; pass --tokenizer <dir>)`);
      tok = loadTokenizer(dir);
    }
    const { teacher, model } = loadPair(values.teacher, values.model);
    let result: ProbeResult;
    try {
      if (probe === 'copy') {
        result = copyProbe(teacher, model, {
          seed, samples, range, span: values.span === undefined ? undefined : intOption(values.span, 'span', 16, 2),
          gaps: listOption(values.gaps, 'gaps'),
        });
      } else if (probe === 'mqar') {
        result = mqarProbe(teacher, model, {
          seed, samples, range, pairs: listOption(values.pairs, 'pairs', true, 1),
          queries: values.queries === undefined ? undefined : intOption(values.queries, 'queries', 1, 1),
        });
      } else {
        result = passkeyProbe(teacher, model, tok!, {
          seed, samples, lengths: listOption(values.lengths, 'lengths', true, 1), depths: listOption(values.depths, 'depths', false),
          distractors: values.distractors === undefined ? undefined : intOption(values.distractors, 'distractors', 4, 1),
        });
      }
    } finally {
      teacher.free();
      model.free();
    }
    mkdirSync(values.out, { recursive: true });
    const names = { teacher: 'teacher (softmax)', model: model.recurrent ? 'SUPRA' : 'model' };
    const plot = probePlot(result, names);
    const base = join(values.out, result.probe);
    writeFileAtomic(`${base}.json`, JSON.stringify({ ...result, teacherDir: values.teacher, modelDir: values.model }, null, 2) + '\n');
    writeFileAtomic(`${base}.png`, linePlotPng(plot));
    writeFileAtomic(`${base}.svg`, linePlotSvg(plot));
    printTable(result);
    for (const ext of ['json', 'png', 'svg']) console.log(`  wrote ${base}.${ext}`);
  },
};
