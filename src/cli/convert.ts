// supra convert <in> --out <dir> [--format supra|open_lm] [--dtype f32|bf16|f16] [--container ...] [--open-lm-inv-freq] [--open-lm-train [--open-lm-seq-len N]] [--max-shard-size SIZE]
import { choiceOption, intOption, MAX_SHARD_SIZE_OPTION, maxShardOption, optionsHelp, parse, UsageError, type OptionSpecs } from './args.js';
import { convertCheckpoint, OPEN_LM_MODEL_JSON } from '../models/convert.js';

const OPTIONS = {
  out: { type: 'string', short: 'o', value: 'DIR', help: 'the folder to write: new or empty; it appears only once complete' },
  format: { type: 'string', value: 'supra|open_lm', help: "the layout to write (default supra: HF names; open_lm: the paper's code)" },
  dtype: { type: 'string', value: 'f32|bf16|f16', help: 'weight type written (default f32)' },
  container: { type: 'string', value: 'safetensors|pytorch', help: 'model.safetensors or pytorch_model.bin (default safetensors; pytorch with --open-lm-train)' },
  'open-lm-inv-freq': { type: 'boolean', help: "with --format open_lm: also write each layer's RoPE buffer pos_embed.inv_freq\n(upstream open_lm registers it; the paper's TRI-ML/linear_open_lm does not, and a strict\nload_state_dict there rejects it, so it is left out by default). Input is read either way." },
  'open-lm-train': { type: 'boolean', help: `with --format open_lm: for the paper's trainer, open_lm.main: the bare Transformer state dict\n(no "model." prefix) in pytorch_model.bin for its --pretrained, and ${OPEN_LM_MODEL_JSON} for its\n--model (default: the layout of open_lm's HF wrapper, as the released Mistral-SUPRA; docs/scale-out.md)` },
  'open-lm-seq-len': { type: 'string', value: 'N', help: `with --open-lm-train: seq_len in ${OPEN_LM_MODEL_JSON}, the length open_lm.main trains at\n(default the model's max_position_embeddings)` },
  'max-shard-size': { ...MAX_SHARD_SIZE_OPTION, help: `${MAX_SHARD_SIZE_OPTION.help}\n(safetensors only: --container pytorch writes one pytorch_model.bin)` },
} satisfies OptionSpecs;

export const command = {
  summary: "convert between supra's layout and the open_lm layout of the released Mistral-SUPRA (safetensors or pytorch_model.bin)",
  usage:
    `supra convert <in-dir-or-file> --out <dir> [options]\n\n${optionsHelp(OPTIONS)}\n\n` +
    'The tensors are checked against config.json first: a missing or misshapen tensor, or one the model does\n' +
    'not use, is an error. It streams: each tensor is read when it is written, so memory holds about one\n' +
    'tensor, not the model.',
  options: OPTIONS,
  async run(argv: string[]): Promise<void> {
    const { values, positionals } = parse(argv, OPTIONS, 'convert');
    if (positionals.length !== 1) throw new UsageError('convert takes one input folder or weights file');
    if (!values.out) throw new UsageError('convert needs --out <dir>');
    const format = choiceOption(values.format, 'format', ['supra', 'open_lm'] as const, 'supra');
    if (values['open-lm-inv-freq'] && format !== 'open_lm') throw new UsageError('--open-lm-inv-freq only applies with --format open_lm');
    const train = values['open-lm-train'] === true;
    if (train && format !== 'open_lm') throw new UsageError('--open-lm-train only applies with --format open_lm');
    if (values['open-lm-seq-len'] !== undefined && !train) throw new UsageError('--open-lm-seq-len only applies with --open-lm-train');
    const container = choiceOption(values.container, 'container', ['safetensors', 'pytorch'] as const, train ? 'pytorch' : 'safetensors');
    if (train && container !== 'pytorch') throw new UsageError('--open-lm-train writes a pytorch_model.bin (open_lm.main reads --pretrained with torch.load); drop --container safetensors');
    if (values['max-shard-size'] !== undefined && container === 'pytorch') throw new UsageError('--max-shard-size applies to safetensors output; --container pytorch writes one pytorch_model.bin');
    const result = convertCheckpoint(positionals[0]!, values.out, {
      format,
      openLmInvFreq: values['open-lm-inv-freq'] === true,
      openLmTrain: train,
      openLmSeqLen: values['open-lm-seq-len'] !== undefined ? intOption(values['open-lm-seq-len'], 'open-lm-seq-len', 0, 1) : undefined,
      dtype: choiceOption(values.dtype, 'dtype', ['f32', 'bf16', 'f16'] as const, 'f32'),
      container,
      maxShardBytes: maxShardOption(values['max-shard-size']),
    });
    console.log(`converted ${result.config.architecture} from the ${result.inputLayout} layout`);
    for (const f of result.files) console.log(`  wrote ${f}`);
  },
};
