// supra generate --model <dir> --prompt "..."   (or --prompt-file <f>, or the prompt on stdin)
// Streams the continuation to stdout as it is produced; statistics go to stderr with --verbose.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { floatOption, intOption, parse, UsageError } from './args.js';
import { AutoModelForCausalLM, AutoTokenizer } from '../api.js';
import { generateFromState } from '../generate/generate.js';
import { loadState, saveState } from '../generate/snapshot.js';
import { TextStreamer } from '../generate/streamer.js';
import type { GenerationState } from '../generate/state.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export const command = {
  summary: 'generate text from a model folder, streamed to stdout (teacher: KV cache; SUPRA: recurrent state, snapshots)',
  usage:
    'supra generate --model <dir> [--prompt "..." | --prompt-file <f> | prompt on stdin]\n' +
    '       [--max-new-tokens 128] [--do-sample] [--temperature 1] [--top-k 50] [--top-p 1]\n' +
    '       [--repetition-penalty 1] [--seed <n>] [--stop <text>]... [--save-state <file>] [--load-state <file>]\n' +
    '       [--show-special] [--verbose] [--backend wasm|native]\n' +
    '  --load-state continues a snapshot (SUPRA models): the prompt, if any, is appended to the saved context,\n' +
    '  and sampling continues the saved generator unless --seed is given. --save-state writes the state after\n' +
    '  generation, to continue later. Greedy unless --do-sample.',
  async run(argv: string[]): Promise<void> {
    const { values, positionals } = parse(
      argv,
      {
        model: { type: 'string', short: 'm' },
        prompt: { type: 'string', short: 'p' },
        'prompt-file': { type: 'string' },
        'max-new-tokens': { type: 'string', short: 'n' },
        'do-sample': { type: 'boolean' },
        temperature: { type: 'string' },
        'top-k': { type: 'string' },
        'top-p': { type: 'string' },
        'repetition-penalty': { type: 'string' },
        seed: { type: 'string' },
        stop: { type: 'string', multiple: true },
        'save-state': { type: 'string' },
        'load-state': { type: 'string' },
        'show-special': { type: 'boolean' },
        verbose: { type: 'boolean', short: 'v' },
      },
      'generate',
    );
    if (positionals.length > 0) throw new UsageError(`generate takes no positional arguments (got "${positionals[0]}"); give the prompt with --prompt`);
    const dir = values.model;
    if (!dir) throw new UsageError('generate needs --model <dir> (a model folder with config.json, weights and tokenizer.json)');
    if (values.prompt !== undefined && values['prompt-file'] !== undefined) throw new UsageError('give either --prompt or --prompt-file, not both');
    const maxNew = intOption(values['max-new-tokens'], 'max-new-tokens', 128);
    const temperature = floatOption(values.temperature, 'temperature', 1);
    const topK = intOption(values['top-k'], 'top-k', 50);
    const topP = floatOption(values['top-p'], 'top-p', 1);
    const repetitionPenalty = floatOption(values['repetition-penalty'], 'repetition-penalty', 1);
    const seed = values.seed === undefined ? undefined : intOption(values.seed, 'seed', 0);
    if (seed !== undefined && seed > 0xffffffff) throw new UsageError(`--seed must be below 2^32, got ${seed}`);
    if (!(temperature > 0)) throw new UsageError(`--temperature must be > 0, got ${temperature}`);
    if (!(topP > 0 && topP <= 1)) throw new UsageError(`--top-p must be in (0, 1], got ${topP}`);
    if (!(repetitionPenalty > 0)) throw new UsageError(`--repetition-penalty must be > 0, got ${repetitionPenalty}`);

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
    const model = await AutoModelForCausalLM.from_pretrained(dir);
    const isSupra = model.config.supra !== null && model.config.supra !== undefined;
    for (const opt of ['save-state', 'load-state'] as const) {
      if (values[opt] !== undefined && !isSupra) {
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

    const streamer = new TextStreamer(tokenizer, {
      skip_prompt: true,
      skip_special_tokens: !(values['show-special'] ?? false),
      callback_function: (text) => void process.stdout.write(text),
    });
    const t0 = performance.now();
    const result = generateFromState(state, [ids], {
      max_new_tokens: maxNew,
      do_sample: values['do-sample'] ?? false,
      temperature,
      top_k: topK,
      top_p: topP,
      repetition_penalty: repetitionPenalty,
      seed,
      stop_strings: values.stop,
      streamer,
      tokenizer,
    });
    const seconds = (performance.now() - t0) / 1000;
    if (process.stdout.isTTY) process.stdout.write('\n');
    if (values['save-state'] !== undefined) saveState(values['save-state'], model, state);
    if (values.verbose) {
      const n = result.newTokens[0]!.length;
      const rng = state.rng ? `, seed ${state.rng.seed}` : '';
      process.stderr.write(
        `\n${ids.length} prompt tokens, ${n} new tokens in ${seconds.toFixed(2)} s (${(n / seconds).toFixed(1)} tokens/s, prefill included), ` +
          `stopped by ${result.finishReasons[0]}; context ${state.length} tokens, decoding state ${(state.bytes() / 2 ** 20).toFixed(2)} MiB${rng}` +
          (values['save-state'] !== undefined ? `; state saved to ${values['save-state']}` : '') + '\n',
      );
    }
    state.free();
    model.dispose();
  },
};
