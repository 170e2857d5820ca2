// supra generate --model <dir> --prompt "..."   (or --prompt-file <f>, or the prompt on stdin)
// Streams the continuation to stdout as it is produced, then a newline; statistics go to stderr with --verbose.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DTYPE_OPTION, FEATURE_MAPS_OPTION, inferenceLoadOptions, QUANTIZE_OPTION, floatOption, intOption, optionsHelp, parse, UsageError, type OptionSpecs } from './args.js';
import { AutoModelForCausalLM, AutoTokenizer } from '../api.js';
import { generateFromState } from '../generate/generate.js';
import { randomSeed, SAMPLING_DEFAULTS, samplingOptionsOf, type SamplingOptions } from '../generate/sampling.js';
import { loadState, saveState } from '../generate/snapshot.js';
import { TextStreamer } from '../generate/streamer.js';
import type { GenerationState } from '../generate/state.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const MAX_NEW_TOKENS = 128;

/** Every option of supra generate: what it parses and what --help says (the README lists the same names). */
export const generateOptions = {
  model: { type: 'string', short: 'm', value: 'DIR', help: 'model folder: config.json, weights, tokenizer.json' },
  dtype: DTYPE_OPTION,
  quantize: QUANTIZE_OPTION,
  'feature-maps': FEATURE_MAPS_OPTION,
  prompt: { type: 'string', short: 'p', value: 'TEXT', help: 'the prompt (else --prompt-file, else stdin); with --load-state it is appended to the saved context' },
  'prompt-file': { type: 'string', value: 'FILE', help: 'read the prompt from a file' },
  'max-new-tokens': { type: 'string', short: 'n', value: 'N', help: `new tokens at most (default ${MAX_NEW_TOKENS})` },
  'do-sample': { type: 'boolean', help: 'sample the next token (default: greedy, or with --load-state the snapshot\'s choice)' },
  greedy: { type: 'boolean', help: 'take the most likely token, also when continuing a sampled snapshot' },
  temperature: { type: 'string', value: 'T', help: `divide the logits by t before sampling (default ${SAMPLING_DEFAULTS.temperature})` },
  'top-k': { type: 'string', value: 'K', help: `sample among the k most likely tokens; 0 = all (default ${SAMPLING_DEFAULTS.top_k})` },
  'top-p': { type: 'string', value: 'P', help: `sample among the fewest most likely tokens whose probability reaches p (default ${SAMPLING_DEFAULTS.top_p})` },
  'repetition-penalty': { type: 'string', value: 'R', help: `> 1 discourages tokens already in the context (default ${SAMPLING_DEFAULTS.repetition_penalty})` },
  seed: { type: 'string', value: 'N', help: 'seed of the sampling generator, below 2^32 (default: the snapshot\'s generator, else a random seed)' },
  stop: { type: 'string', multiple: true, value: 'TEXT', help: 'stop once the text ends with this; it stays in the output' },
  'save-state': { type: 'string', value: 'FILE', help: 'SUPRA models: after generating, save the state (context, recurrent state, generator, sampling settings)' },
  'load-state': { type: 'string', value: 'FILE', help: 'SUPRA models: continue a --save-state file, with its sampling settings and generator unless given here' },
  'show-special': { type: 'boolean', help: 'print special tokens (such as the end-of-text token) instead of skipping them' },
  verbose: { type: 'boolean', short: 'v', help: 'statistics on stderr: token counts, tokens/s, why generation stopped, state size, seed,\nhow the weights are held' },
} as const satisfies OptionSpecs;

/** The sampling options and the flag that sets each. */
const SAMPLING_FLAGS = {
  do_sample: 'do-sample', temperature: 'temperature', top_k: 'top-k', top_p: 'top-p', repetition_penalty: 'repetition-penalty',
} as const satisfies Record<keyof SamplingOptions, keyof typeof generateOptions>;

export const command = {
  summary: 'generate text from a model folder, streamed to stdout (teacher: KV cache; SUPRA: recurrent state, snapshots)',
  options: generateOptions,
  usage:
    'supra generate --model <dir> [--prompt "..." | --prompt-file <f> | prompt on stdin] [options]\n\n' +
    `${optionsHelp(generateOptions)}\n\n` +
    'Prints the new text as it comes, then a newline. --load-state continues a snapshot: the prompt, if any,\n' +
    'is appended to the saved context, and the saved sampling settings and generator are used unless given\n' +
    'here (--greedy switches a sampled snapshot to greedy, --seed restarts the generator); one stderr line\n' +
    'says which settings were used and where each came from.',
  async run(argv: string[]): Promise<void> {
    const { values, positionals } = parse(argv, generateOptions, 'generate');
    if (positionals.length > 0) throw new UsageError(`generate takes no positional arguments (got "${positionals[0]}"); give the prompt with --prompt`);
    const dir = values.model;
    if (!dir) throw new UsageError('generate needs --model <dir> (a model folder with config.json, weights and tokenizer.json)');
    if (values.prompt !== undefined && values['prompt-file'] !== undefined) throw new UsageError('give either --prompt or --prompt-file, not both');
    const maxNew = intOption(values['max-new-tokens'], 'max-new-tokens', MAX_NEW_TOKENS);
    const weights = inferenceLoadOptions(values);
    if (values.greedy && values['do-sample']) throw new UsageError('give either --do-sample or --greedy, not both');
    // the settings given here; the others come from the snapshot (with --load-state) or the defaults
    const given: SamplingOptions = {
      do_sample: values.greedy ? false : values['do-sample'] ? true : undefined,
      temperature: values.temperature === undefined ? undefined : floatOption(values.temperature, 'temperature', SAMPLING_DEFAULTS.temperature),
      top_k: values['top-k'] === undefined ? undefined : intOption(values['top-k'], 'top-k', SAMPLING_DEFAULTS.top_k),
      top_p: values['top-p'] === undefined ? undefined : floatOption(values['top-p'], 'top-p', SAMPLING_DEFAULTS.top_p),
      repetition_penalty: values['repetition-penalty'] === undefined ? undefined : floatOption(values['repetition-penalty'], 'repetition-penalty', SAMPLING_DEFAULTS.repetition_penalty),
    };
    const seed = values.seed === undefined ? undefined : intOption(values.seed, 'seed', 0);
    if (seed !== undefined && seed > 0xffffffff) throw new UsageError(`--seed must be below 2^32, got ${seed}`);
    if (given.temperature !== undefined && !(given.temperature > 0)) throw new UsageError(`--temperature must be > 0, got ${given.temperature}`);
    if (given.top_p !== undefined && !(given.top_p > 0 && given.top_p <= 1)) throw new UsageError(`--top-p must be in (0, 1], got ${given.top_p}`);
    if (given.repetition_penalty !== undefined && !(given.repetition_penalty > 0)) throw new UsageError(`--repetition-penalty must be > 0, got ${given.repetition_penalty}`);

    // the prompt: an option, a file, or stdin when it is piped
    let prompt = '';
    if (values.prompt !== undefined) prompt = values.prompt;
    else if (values['prompt-file'] !== undefined) {
      const f = values['prompt-file'];
      if (!existsSync(f)) throw new Error(`supra: ${f}: not found (--prompt-file)`);
      prompt = readFileSync(f, 'utf8');
    } else if (!process.stdin.isTTY) prompt = await readStdin();

    // the model and its tokenizer (checked before the weights are read)
    if (!existsSync(dir)) throw new Error(`supra: ${dir}: not found (--model expects a model folder)`);
    if (!existsSync(join(dir, 'tokenizer.json'))) {
      throw new Error(`supra: ${join(dir, 'tokenizer.json')}: not found (generate needs the model's Hugging Face tokenizer.json in ${dir})`);
    }
    const tokenizer = await AutoTokenizer.from_pretrained(dir);
    const model = await AutoModelForCausalLM.from_pretrained(dir, weights);
    for (const opt of ['save-state', 'load-state'] as const) {
      if (values[opt] !== undefined && !model.model.recurrent) {
        throw new Error(`supra: --${opt}: ${dir} is a ${model.config.architecture} (softmax attention); state snapshots are for SUPRA models`);
      }
    }

    let state: GenerationState;
    let ids: number[];
    if (values['load-state'] !== undefined) {
      state = loadState(values['load-state'], model);
      // appended to a context: no BOS in the middle
      ids = prompt.length > 0 ? tokenizer.encode(prompt, { add_special_tokens: false }) : [];
    } else {
      state = model.newState(1);
      ids = tokenizer.encode(prompt);
      if (ids.length === 0) throw new UsageError('the prompt is empty: give --prompt, --prompt-file, or text on stdin');
    }

    // each setting: given here, else the snapshot's, else the default; and where it came from
    const loading = values['load-state'] !== undefined;
    const saved = state.sampling ? samplingOptionsOf(state.sampling) : null;
    const settings: Required<SamplingOptions> = { ...SAMPLING_DEFAULTS };
    const from = {} as Record<keyof SamplingOptions, string>;
    for (const key of Object.keys(SAMPLING_FLAGS) as Array<keyof SamplingOptions>) {
      if (given[key] !== undefined) {
        Object.assign(settings, { [key]: given[key] });
        from[key] = key === 'do_sample' && values.greedy ? '--greedy' : `--${SAMPLING_FLAGS[key]}`;
      } else if (saved) {
        Object.assign(settings, { [key]: saved[key] });
        from[key] = 'snapshot';
      } else from[key] = loading ? 'default; the snapshot holds no settings' : 'default';
    }
    // the generator: --seed, else the snapshot's, else a random seed (chosen here so it can be reported)
    let seedToUse = seed;
    let generator = '';
    if (settings.do_sample) {
      if (seed !== undefined) generator = `seed ${seed} (--seed)`;
      else if (state.rng) generator = `seed ${state.rng.seed} after ${state.rng.draws} draws (snapshot)`;
      else {
        seedToUse = randomSeed();
        generator = `seed ${seedToUse} (random)`;
      }
    }
    if (loading || values.verbose) {
      const line = settings.do_sample
        ? `sampling (${from.do_sample}), temperature ${settings.temperature} (${from.temperature}), top_k ${settings.top_k} (${from.top_k}), ` +
          `top_p ${settings.top_p} (${from.top_p}), repetition_penalty ${settings.repetition_penalty} (${from.repetition_penalty}), ${generator}`
        : `greedy (${from.do_sample}), repetition_penalty ${settings.repetition_penalty} (${from.repetition_penalty})`;
      process.stderr.write(`supra generate: ${line}\n`);
    }

    const streamer = new TextStreamer(tokenizer, {
      skip_prompt: true,
      skip_special_tokens: !(values['show-special'] ?? false),
      callback_function: (text) => void process.stdout.write(text),
    });
    const t0 = performance.now();
    const result = generateFromState(state, [ids], {
      max_new_tokens: maxNew,
      ...settings,
      seed: seedToUse,
      stop_strings: values.stop,
      streamer,
      tokenizer,
    });
    const seconds = (performance.now() - t0) / 1000;
    process.stdout.write('\n'); // the output ends with a newline (exactly one, whatever the text ends with)
    if (values['save-state'] !== undefined) saveState(values['save-state'], model, state);
    if (values.verbose) {
      const n = result.newTokens[0]!.length;
      const rng = state.rng ? `, seed ${state.rng.seed}` : '';
      process.stderr.write(
        `${ids.length} prompt tokens, ${n} new tokens in ${seconds.toFixed(2)} s (${(n / seconds).toFixed(1)} tokens/s, prefill included), ` +
          `stopped by ${result.finishReasons[0]}; context ${state.length} tokens, decoding state ${(state.bytes() / 2 ** 20).toFixed(2)} MiB${rng}` +
          `; ${model.model.store.dtype} weights${model.model.foldedForInference ? ', feature maps folded' : ''}` +
          (values['save-state'] !== undefined ? `; state saved to ${values['save-state']}` : '') + '\n',
      );
    }
    state.free();
    model.dispose();
  },
};
