// Multiple-choice tasks from local jsonl files, built as lm-evaluation-harness builds them, and scored the
// way it scores them: the log-likelihood of each choice's continuation given the context (the sum of the
// continuation tokens' log-probs), acc = argmax of those, acc_norm = argmax of them divided by the
// choice's length in characters.
//
// Layouts (one JSON object per line; the Hugging Face datasets' fields):
//   hellaswag   {ctx_a, ctx_b, activity_label, endings[4], label}
//   piqa        {goal, sol1, sol2, label}
//   arc         {question, choices: {text[], label[]}, answerKey}   (also AI2's {question: {stem, choices[{text, label}]}})
//   winogrande  {sentence (with "_"), option1, option2, answer: "1" | "2"}
//   mc          {context, choices[], label}                           (generic)
import { readFileSync } from 'node:fs';
import { Mt19937 } from '../core/random.js';
import type { LoadedTokenizer } from '../io/tokenizer.js';
import type { DecoderLM } from '../models/decoder.js';
import { tokenLogProbs } from './perplexity.js';

export const TASK_LAYOUTS = ['hellaswag', 'piqa', 'arc', 'winogrande', 'mc'] as const;
export type TaskLayout = (typeof TASK_LAYOUTS)[number];

/** lm-eval's target_delimiter (between a context and its continuation) and fewshot_delimiter. */
export const TARGET_DELIMITER = ' ';
export const FEWSHOT_DELIMITER = '\n\n';

/** One multiple-choice item, as the requests it makes. */
export interface McDoc {
  /** "file:line", for errors and reports. */
  source: string;
  /** The context of each choice (the same for every choice except in Winogrande, where the option is in it). */
  contexts: string[];
  /** The continuation scored for each choice, starting with the target delimiter. */
  continuations: string[];
  /** lm-eval's doc_to_choice strings, whose character lengths normalise acc_norm; null: acc_norm not reported. */
  normTexts: string[] | null;
  /** Index of the right choice. */
  gold: number;
  /** The item with its answer, as it appears among few-shot examples. */
  solved: string;
}

export interface Task {
  name: string;
  layout: TaskLayout;
  path: string;
  docs: McDoc[];
}

/** The layout a task name implies (hellaswag, piqa, arc_easy, arc_challenge, winogrande, mc), else null. */
export function layoutFromName(name: string): TaskLayout | null {
  const n = name.toLowerCase();
  if (n.startsWith('hellaswag')) return 'hellaswag';
  if (n.startsWith('piqa')) return 'piqa';
  if (n.startsWith('arc')) return 'arc';
  if (n.startsWith('winogrande')) return 'winogrande';
  if (n === 'mc' || n === 'generic' || n.startsWith('mc_') || n.startsWith('mc-')) return 'mc';
  return null;
}

/** The layout a record's fields imply, else null. */
export function layoutFromFields(rec: Record<string, unknown>): TaskLayout | null {
  const has = (...keys: string[]) => keys.every((k) => k in rec);
  if (has('ctx_a', 'ctx_b', 'endings')) return 'hellaswag';
  if (has('goal', 'sol1', 'sol2')) return 'piqa';
  if (has('question', 'answerKey')) return 'arc';
  if (has('sentence', 'option1', 'option2')) return 'winogrande';
  if (has('context', 'choices')) return 'mc';
  return null;
}

// ---------------------------------------------------------------- field readers (errors name file:line)

function fail(source: string, msg: string): never {
  throw new Error(`supra: ${source}: ${msg}`);
}

function field(rec: Record<string, unknown>, key: string, source: string): unknown {
  if (!(key in rec) || rec[key] === null || rec[key] === undefined) fail(source, `missing field "${key}"`);
  return rec[key];
}

function str(rec: Record<string, unknown>, key: string, source: string): string {
  const v = field(rec, key, source);
  if (typeof v !== 'string') fail(source, `field "${key}" must be a string, got ${JSON.stringify(v)}`);
  return v;
}

function strList(rec: Record<string, unknown>, key: string, source: string, min = 2): string[] {
  const v = field(rec, key, source);
  if (!Array.isArray(v) || v.length < min || v.some((x) => typeof x !== 'string')) {
    fail(source, `field "${key}" must be a list of at least ${min} strings, got ${JSON.stringify(v)}`);
  }
  return v as string[];
}

/** An index into n choices, given as a number or a numeric string ("2"). */
function index(rec: Record<string, unknown>, key: string, n: number, source: string): number {
  const v = field(rec, key, source);
  const i = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(i) || i < 0 || i >= n) fail(source, `field "${key}" must be a choice index in [0, ${n}), got ${JSON.stringify(v)}`);
  return i;
}

// ---------------------------------------------------------------- lm-eval's prompt construction

/** Python's str.capitalize: first character upper case, the rest lower case. */
function capitalize(s: string): string {
  const chars = Array.from(s);
  if (chars.length === 0) return s;
  return chars[0]!.toUpperCase() + chars.slice(1).join('').toLowerCase();
}

/** lm-eval's hellaswag preprocess: WikiHow's bracketed artifacts removed. */
export function hellaswagPreprocess(text: string): string {
  let t = text.trim();
  t = t.replaceAll(' [title]', '. ');
  t = t.replace(/\[.*?\]/g, '');
  t = t.replaceAll('  ', ' ');
  return t;
}

/** A doc whose choices are continuations of one shared context. */
function sharedContext(source: string, context: string, choices: string[], gold: number): McDoc {
  return {
    source,
    contexts: choices.map(() => context),
    continuations: choices.map((c) => TARGET_DELIMITER + c),
    normTexts: choices,
    gold,
    solved: context + TARGET_DELIMITER + choices[gold]!,
  };
}

/** Build one item of a layout from its parsed JSON record. */
export function parseDoc(layout: TaskLayout, rec: Record<string, unknown>, source: string): McDoc {
  switch (layout) {
    case 'hellaswag': {
      const ctx = str(rec, 'ctx_a', source) + ' ' + capitalize(str(rec, 'ctx_b', source));
      const query = hellaswagPreprocess(str(rec, 'activity_label', source) + ': ' + ctx);
      const endings = strList(rec, 'endings', source).map(hellaswagPreprocess);
      return sharedContext(source, query, endings, index(rec, 'label', endings.length, source));
    }
    case 'piqa': {
      const choices = [str(rec, 'sol1', source), str(rec, 'sol2', source)];
      return sharedContext(source, `Question: ${str(rec, 'goal', source)}\nAnswer:`, choices, index(rec, 'label', 2, source));
    }
    case 'arc': {
      let question: string, texts: string[], labels: string[];
      const q = field(rec, 'question', source);
      if (typeof q === 'object' && q !== null && !Array.isArray(q)) {
        // AI2's original layout: {question: {stem, choices: [{text, label}]}, answerKey}
        const qo = q as Record<string, unknown>;
        question = str(qo, 'stem', `${source}: question`);
        const list = field(qo, 'choices', `${source}: question`);
        if (!Array.isArray(list) || list.length < 2) fail(source, 'field "question.choices" must be a list of at least 2 {text, label}');
        texts = list.map((c, i) => str(c as Record<string, unknown>, 'text', `${source}: question.choices[${i}]`));
        labels = list.map((c, i) => String(field(c as Record<string, unknown>, 'label', `${source}: question.choices[${i}]`)));
      } else {
        question = str(rec, 'question', source);
        const choices = field(rec, 'choices', source);
        if (typeof choices !== 'object' || choices === null || Array.isArray(choices)) fail(source, 'field "choices" must be an object {text: [...], label: [...]}');
        const co = choices as Record<string, unknown>;
        texts = strList(co, 'text', `${source}: choices`);
        const rawLabels = field(co, 'label', `${source}: choices`);
        if (!Array.isArray(rawLabels) || rawLabels.length !== texts.length) fail(source, `field "choices.label" must list one label per choice (${texts.length})`);
        labels = rawLabels.map(String);
      }
      const key = String(field(rec, 'answerKey', source));
      const gold = labels.indexOf(key);
      if (gold < 0) fail(source, `answerKey ${JSON.stringify(key)} is not one of the choice labels [${labels.join(', ')}]`);
      return sharedContext(source, `Question: ${question}\nAnswer:`, texts, gold);
    }
    case 'winogrande': {
      // Partial evaluation: the context is the sentence up to the blank with the option filled in, the
      // continuation (the same for both options) is the rest of the sentence.
      const sentence = str(rec, 'sentence', source);
      const blank = sentence.indexOf('_');
      if (blank < 0) fail(source, 'field "sentence" has no "_" blank');
      const options = [str(rec, 'option1', source), str(rec, 'option2', source)];
      const answer = String(field(rec, 'answer', source)).trim();
      if (answer !== '1' && answer !== '2') fail(source, `field "answer" must be "1" or "2", got ${JSON.stringify(rec.answer)}`);
      const gold = Number(answer) - 1;
      const target = sentence.slice(blank + 1).trim();
      const contexts = options.map((o) => sentence.slice(0, blank) + o);
      return {
        source,
        contexts,
        continuations: contexts.map(() => TARGET_DELIMITER + target),
        normTexts: null, // lm-eval reports acc only for Winogrande
        gold,
        solved: contexts[gold]! + TARGET_DELIMITER + target,
      };
    }
    case 'mc': {
      const choices = strList(rec, 'choices', source);
      return sharedContext(source, str(rec, 'context', source), choices, index(rec, 'label', choices.length, source));
    }
  }
}

/**
 * Read a task file: one JSON object per line (blank lines skipped). The layout comes from the task
 * name when it names one, else from the first record's fields.
 */
export function loadTask(name: string, path: string, layout?: TaskLayout): Task {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`supra: ${path}: ${code === 'ENOENT' ? 'task file not found' : (e as Error).message} (task "${name}")`);
  }
  let chosen = layout ?? layoutFromName(name);
  const docs: McDoc[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const source = `${path}:${i + 1}`;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch (e) {
      fail(source, `not valid JSON (${(e as Error).message})`);
    }
    if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) fail(source, 'expected a JSON object');
    const r = rec as Record<string, unknown>;
    if (chosen === null) {
      chosen = layoutFromFields(r);
      if (chosen === null) {
        fail(source, `unknown task layout for task "${name}": fields ${JSON.stringify(Object.keys(r))} match none of ${TASK_LAYOUTS.join(', ')} ` +
          '(name the task after its layout, e.g. piqa=FILE, or see docs/eval.md)');
      }
    }
    docs.push(parseDoc(chosen, r, source));
  }
  if (docs.length === 0) throw new Error(`supra: ${path}: no items (task "${name}")`);
  return { name, layout: chosen!, path, docs };
}

/** Parse `name=path` (the --task option). */
export function parseTaskSpec(spec: string): { name: string; path: string } {
  const eq = spec.indexOf('=');
  if (eq <= 0 || eq === spec.length - 1) throw new Error(`supra: --task expects NAME=PATH (e.g. hellaswag=hellaswag_val.jsonl), got "${spec}"`);
  return { name: spec.slice(0, eq), path: spec.slice(eq + 1) };
}

// ---------------------------------------------------------------- few-shot

/** A seeded sampler of few-shot examples: k distinct items of n, never `exclude`. */
/** The few-shot examples come from the task's other items: k of them need k + 1 items. */
export function checkFewshot(task: Pick<Task, 'name' | 'path' | 'docs'>, k: number): void {
  if (k > 0 && k > task.docs.length - 1) {
    throw new Error(`supra: --num-fewshot ${k} needs at least ${k + 1} items in the task file, ${task.path} (${task.name}) has ${task.docs.length}`);
  }
}

export class FewshotSampler {
  private readonly rng: Mt19937;
  constructor(seed: number) {
    this.rng = new Mt19937(seed);
  }

  sample(n: number, k: number, exclude: number): number[] {
    if (k === 0) return [];
    if (k > n - 1) throw new Error(`supra: --num-fewshot ${k} needs at least ${k + 1} items in the task file, it has ${n}`);
    const chosen: number[] = [];
    const taken = new Set<number>([exclude]);
    while (chosen.length < k) {
      const j = Math.floor((this.rng.nextU32() / 0x100000000) * n);
      if (taken.has(j)) continue;
      taken.add(j);
      chosen.push(j);
    }
    return chosen;
  }
}

/** The (context, continuation) requests of item i with few-shot examples `shots` (indices into docs) before it. */
export function requestsFor(docs: McDoc[], i: number, shots: number[]): Array<{ context: string; continuation: string }> {
  const doc = docs[i]!;
  const prefix = shots.length > 0 ? shots.map((j) => docs[j]!.solved).join(FEWSHOT_DELIMITER) + FEWSHOT_DELIMITER : '';
  return doc.contexts.map((c, k) => ({ context: prefix + c, continuation: doc.continuations[k]! }));
}

// ---------------------------------------------------------------- log-likelihood of a continuation

export interface EncodeOptions {
  /** Put the tokenizer's BOS before every context (lm-eval's add_bos_token). Default false. */
  addBos?: boolean;
}

/**
 * Token ids of (context, continuation) as lm-eval encodes them: trailing whitespace of the context moves
 * to the continuation, context + continuation is encoded whole (no special tokens) and the continuation
 * is what follows the context's own tokens. An empty context becomes the BOS (else EOS) token.
 */
export function encodePair(tok: LoadedTokenizer, context: string, continuation: string, options: EncodeOptions = {}): { contextIds: number[]; continuationIds: number[] } {
  const nSpaces = context.length - context.trimEnd().length;
  if (nSpaces > 0) {
    continuation = context.slice(context.length - nSpaces) + continuation;
    context = context.slice(0, context.length - nSpaces);
  }
  const enc = (s: string) => tok.encode(s, { add_special_tokens: false });
  let contextIds: number[], continuationIds: number[];
  if (context === '') {
    const prefix = tok.bos_token_id ?? tok.eos_token_id;
    if (prefix === null) throw new Error('supra: an empty context needs a BOS or EOS token to start from; the tokenizer has neither');
    contextIds = [prefix];
    continuationIds = enc(continuation);
  } else {
    const whole = enc(context + continuation);
    contextIds = enc(context);
    continuationIds = whole.slice(contextIds.length);
    if (options.addBos) {
      if (tok.bos_token_id === null) throw new Error('supra: --add-bos: the tokenizer has no BOS token');
      contextIds = [tok.bos_token_id, ...contextIds];
    }
  }
  return { contextIds, continuationIds };
}

export interface ScorerOptions extends EncodeOptions {
  /**
   * Longest model input; longer requests lose tokens on the left, as lm-eval truncates. Default: the
   * teacher's max_position_embeddings, unlimited for SUPRA models.
   */
  maxLength?: number;
  /** Tokens per step for SUPRA models. */
  chunk?: number;
}

/** log p(continuation | context) and the continuation's token count. */
export type Scorer = (context: string, continuation: string) => { logLikelihood: number; tokens: number };

export function makeScorer(model: DecoderLM, tok: LoadedTokenizer, options: ScorerOptions = {}): Scorer {
  const maxLength = options.maxLength ?? (model.recurrent ? Infinity : model.config.max_position_embeddings);
  return (context, continuation) => {
    const { contextIds, continuationIds } = encodePair(tok, context, continuation, options);
    if (continuationIds.length === 0) throw new Error(`supra: the continuation ${JSON.stringify(continuation)} encodes to no tokens after its context`);
    if (continuationIds.length > maxLength) throw new Error(`supra: a continuation of ${continuationIds.length} tokens is longer than the model input limit ${maxLength}`);
    let ids = [...contextIds, ...continuationIds];
    if (ids.length > maxLength + 1) ids = ids.slice(ids.length - (maxLength + 1)); // the last token is only a target
    const lp = tokenLogProbs(model, ids, ids.length - continuationIds.length, { chunk: options.chunk });
    let ll = 0;
    for (let i = 0; i < lp.length; i++) ll += lp[i]!;
    return { logLikelihood: ll, tokens: continuationIds.length };
  };
}

// ---------------------------------------------------------------- evaluation

export interface EvalOptions {
  numFewshot?: number;
  /** Evaluate the first n items only (few-shot examples still come from the whole file). */
  limit?: number;
  /** Seed of the few-shot choice. Default 1234 (lm-eval's). */
  seed?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface ItemResult {
  source: string;
  gold: number;
  logLikelihoods: number[];
  pred: number;
  predNorm: number | null;
  fewshot: number[];
}

export interface TaskResult {
  name: string;
  layout: TaskLayout;
  path: string;
  n: number;
  numFewshot: number;
  acc: number;
  accStderr: number | null;
  /** null where lm-eval does not report it (Winogrande). */
  accNorm: number | null;
  accNormStderr: number | null;
  items: ItemResult[];
}

/** Index of the largest value, the first one on ties (numpy's argmax). */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/** Standard error of a mean of 0/1 outcomes, as lm-eval computes it (sample variance). */
function stderrOf(p: number, n: number): number | null {
  return n > 1 ? Math.sqrt((p * (1 - p)) / (n - 1)) : null;
}

export function evaluateTask(task: Task, score: Scorer, options: EvalOptions = {}): TaskResult {
  const k = options.numFewshot ?? 0;
  checkFewshot(task, k);
  const n = Math.min(options.limit ?? task.docs.length, task.docs.length);
  const sampler = new FewshotSampler(options.seed ?? 1234);
  const items: ItemResult[] = [];
  let right = 0, rightNorm = 0;
  const hasNorm = task.docs[0]!.normTexts !== null;
  for (let i = 0; i < n; i++) {
    const doc = task.docs[i]!;
    const shots = sampler.sample(task.docs.length, k, i);
    const lls = requestsFor(task.docs, i, shots).map((r, c) => {
      try {
        return score(r.context, r.continuation).logLikelihood;
      } catch (e) {
        throw new Error(`supra: ${doc.source}: choice ${c}: ${(e as Error).message.replace(/^supra: /, '')}`);
      }
    });
    const pred = argmax(lls);
    let predNorm: number | null = null;
    if (doc.normTexts) {
      const norm = doc.normTexts;
      predNorm = argmax(lls.map((ll, c) => ll / Array.from(norm[c]!).length));
    }
    if (pred === doc.gold) right++;
    if (predNorm === doc.gold) rightNorm++;
    items.push({ source: doc.source, gold: doc.gold, logLikelihoods: lls, pred, predNorm, fewshot: shots });
    options.onProgress?.(i + 1, n);
  }
  const acc = right / n;
  const accNorm = hasNorm ? rightNorm / n : null;
  return {
    name: task.name, layout: task.layout, path: task.path, n, numFewshot: k,
    acc, accStderr: stderrOf(acc, n),
    accNorm, accNormStderr: accNorm === null ? null : stderrOf(accNorm, n),
    items,
  };
}
