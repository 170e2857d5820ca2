// supra eval --model <dir> [--text <file>...] [--task name=path]...: perplexity on text files and
// multiple-choice accuracy (lm-evaluation-harness style) on local task files. See docs/eval.md.
import { readFileSync } from 'node:fs';
import { DTYPE_OPTION, FEATURE_MAPS_OPTION, inferenceLoadOptions, QUANTIZE_OPTION, intOption, optionsHelp, parse, UsageError, type OptionSpecs } from './args.js';
import { getBackend } from '../core/select.js';
import { writeJsonAtomic } from '../io/atomic.js';
import { loadTokenizer } from '../io/tokenizer.js';
import { loadDecoder } from '../models/auto.js';
import { combine, DEFAULT_CHUNK, documentNll, toRow, type NllResult, type PerplexityRow } from '../eval/perplexity.js';
import { fixed, formatTable, Progress } from '../eval/report.js';
import { checkFewshot, evaluateTask, loadTask, makeScorer, parseTaskSpec, type Task, type TaskResult } from '../eval/tasks.js';

const OPTIONS = {
  model: { type: 'string', short: 'm', value: 'DIR', help: 'the model folder (teacher or SUPRA; tokenizer.json beside it)' },
  dtype: DTYPE_OPTION,
  quantize: QUANTIZE_OPTION,
  'feature-maps': FEATURE_MAPS_OPTION,
  text: { type: 'string', multiple: true, value: 'FILE...', help: 'perplexity of each text file (one document each); several files may follow' },
  task: { type: 'string', multiple: true, value: 'NAME=PATH...', help: 'multiple-choice accuracy from a local .jsonl file; NAME starting hellaswag, piqa, arc,\nwinogrande or mc picks the layout, else the fields do (docs/eval.md)' },
  'max-length': { type: 'string', value: 'N', help: 'softmax models: the sliding window (default max_position_embeddings)' },
  stride: { type: 'string', value: 'N', help: 'softmax models: tokens between window starts (default half the window)' },
  chunk: { type: 'string', value: 'N', help: 'SUPRA models: tokens per recurrent step (default 1024)' },
  'num-fewshot': { type: 'string', value: 'K', help: 'solved examples before each item (default 0), drawn from the same file' },
  limit: { type: 'string', value: 'N', help: 'evaluate the first N items of each task' },
  seed: { type: 'string', value: 'N', help: 'picks the few-shot examples (default 1234)' },
  'add-bos': { type: 'boolean', help: 'put BOS before every context' },
  json: { type: 'string', value: 'FILE', help: 'also write every number as JSON (atomically)' },
} satisfies OptionSpecs;

const USAGE = `supra eval --model <dir> [--text <file>...] [--task <name>=<path>...] [options]\n\n${optionsHelp(OPTIONS)}`;

/** `--text a b c` and `--task x=a y=b` take every following word up to the next option. */
function expandLists(argv: string[], names: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    out.push(a);
    if (names.includes(a)) {
      let j = i + 1;
      const first = argv[j];
      if (first === undefined) continue; // parseArgs reports the missing value
      out.push(first);
      for (j = i + 2; j < argv.length && !argv[j]!.startsWith('-'); j++) out.push(a, argv[j]!);
      i = j - 1;
    }
  }
  return out;
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`supra: ${path}: ${code === 'ENOENT' ? 'text file not found' : (e as Error).message}`);
  }
}

export const command = {
  summary: 'perplexity on text files and multiple-choice accuracy (HellaSwag, PIQA, ARC, Winogrande, generic) from local files',
  usage: USAGE,
  options: OPTIONS,
  async run(argv: string[]): Promise<void> {
    const { values, positionals } = parse(
      expandLists(argv, ['--text', '--task']),
      OPTIONS,
      'eval',
    );
    if (positionals.length > 0) throw new UsageError(`eval: unexpected argument "${positionals[0]}" (text files go after --text, tasks after --task)`);
    if (!values.model) throw new UsageError('eval needs --model <dir>');
    const texts = values.text ?? [];
    const taskSpecs = (values.task ?? []).map((s) => {
      try {
        return parseTaskSpec(s);
      } catch (e) {
        throw new UsageError((e as Error).message.replace(/^supra: /, ''));
      }
    });
    if (texts.length === 0 && taskSpecs.length === 0) throw new UsageError('eval needs something to evaluate: --text <file>... and/or --task <name>=<path>');
    const maxLengthOpt = values['max-length'] === undefined ? undefined : intOption(values['max-length'], 'max-length', 0, 2);
    const strideOpt = values.stride === undefined ? undefined : intOption(values.stride, 'stride', 0, 1);
    const chunk = intOption(values.chunk, 'chunk', DEFAULT_CHUNK, 1);
    const numFewshot = intOption(values['num-fewshot'], 'num-fewshot', 0, 0);
    const limit = values.limit === undefined ? undefined : intOption(values.limit, 'limit', 0, 1);
    const seed = intOption(values.seed, 'seed', 1234, 0);
    const loading = inferenceLoadOptions(values);
    const { dtype } = loading;

    // Read every input before the (slow) model load, so a typo fails at once.
    const textInputs = texts.map((path) => ({ path, text: readText(path) }));
    const tasks: Task[] = taskSpecs.map(({ name, path }) => loadTask(name, path));
    for (const task of tasks) {
      try {
        checkFewshot(task, numFewshot);
      } catch (e) {
        throw new UsageError((e as Error).message.replace(/^supra: /, ''));
      }
    }

    const dir = values.model;
    const { model } = loadDecoder(dir, loading);
    try {
      const tok = loadTokenizer(dir);
      const recurrent = model.recurrent;
      const maxLength = maxLengthOpt ?? model.config.max_position_embeddings;
      const stride = strideOpt ?? Math.ceil(maxLength / 2);
      if (!recurrent && stride > maxLength) throw new UsageError(`--stride ${stride} is larger than the window (--max-length ${maxLength})`);
      const method = recurrent ? `one pass with the recurrent state, ${chunk} tokens per step` : `sliding window ${maxLength}, stride ${stride}`;
      console.error(`supra eval: ${dir} (${model.config.architecture}), backend ${getBackend().name}, weights ${dtype}${model.foldedForInference ? ', feature maps folded' : ''}`);

      const report: Record<string, unknown> = {
        model: dir,
        architecture: model.config.architecture,
        recurrent,
        backend: getBackend().name,
        dtype,
        ...(model.recurrent ? { featureMaps: model.foldedForInference ? 'folded' : 'separate' } : {}),
      };

      if (textInputs.length > 0) {
        const results: NllResult[] = [];
        const rows: PerplexityRow[] = [];
        for (const { path, text } of textInputs) {
          const ids = tok.encode(text);
          const bar = new Progress(`perplexity ${path}`, ids.length, 'tok');
          const r = documentNll(model, ids, { maxLength, stride, chunk, onProgress: (d) => bar.update(d) });
          bar.finish();
          results.push(r);
          rows.push(toRow(path, r));
        }
        const overall = toRow('overall', combine(results));
        console.log(`perplexity (${method})`);
        console.log(formatTable(
          ['file', 'tokens', 'mean NLL', 'perplexity'],
          [...rows, ...(rows.length > 1 ? [overall] : [])].map((r) => [r.name, String(r.tokens), fixed(r.meanNll, 4), fixed(r.perplexity, 3)]),
          ['left', 'right', 'right', 'right'],
        ));
        const json = (r: PerplexityRow) => ({ tokens: r.tokens, mean_nll: finite(r.meanNll), perplexity: finite(r.perplexity) });
        report.perplexity = {
          method: recurrent ? 'recurrent' : 'sliding_window',
          ...(recurrent ? { chunk } : { max_length: maxLength, stride }),
          files: rows.map((r) => ({ file: r.name, ...json(r) })),
          overall: json(overall),
        };
      }

      if (tasks.length > 0) {
        const score = makeScorer(model, tok, { addBos: values['add-bos'] ?? false, maxLength: maxLengthOpt ?? (recurrent ? undefined : maxLength), chunk });
        const results: TaskResult[] = [];
        for (const task of tasks) {
          const n = Math.min(limit ?? task.docs.length, task.docs.length);
          const bar = new Progress(task.name, n, 'items');
          results.push(evaluateTask(task, score, { numFewshot, limit, seed, onProgress: (d) => bar.update(d) }));
          bar.finish();
        }
        if (textInputs.length > 0) console.log('');
        console.log(formatTable(
          ['task', 'layout', 'n', 'shots', 'acc', '± stderr', 'acc_norm', '± stderr'],
          results.map((r) => [r.name, r.layout, String(r.n), String(r.numFewshot), fixed(r.acc, 4), fixed(r.accStderr, 4), fixed(r.accNorm, 4), fixed(r.accNormStderr, 4)]),
          ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right'],
        ));
        report.tasks = results.map((r) => ({
          name: r.name, layout: r.layout, path: r.path, n: r.n, num_fewshot: r.numFewshot, seed, add_bos: values['add-bos'] ?? false,
          acc: r.acc, acc_stderr: r.accStderr, acc_norm: r.accNorm, acc_norm_stderr: r.accNormStderr,
          items: r.items.map((it) => ({ source: it.source, gold: it.gold, pred: it.pred, pred_norm: it.predNorm, loglikelihoods: it.logLikelihoods, fewshot: it.fewshot })),
        }));
      }

      if (values.json) {
        writeJsonAtomic(values.json, report);
        console.error(`supra eval: wrote ${values.json}`);
      }
    } finally {
      model.free();
    }
  },
};

/** JSON has no NaN or Infinity: null instead. */
function finite(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}
