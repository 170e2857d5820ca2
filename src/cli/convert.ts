// supra convert <in> --out <dir> [--format supra|open_lm] [--dtype f32|bf16|f16] [--open-lm-inv-freq]
import { choiceOption, parse, UsageError } from './args.js';
import { convertCheckpoint } from '../models/convert.js';

export const command = {
  summary: "convert between supra's layout and the open_lm layout of the released Mistral-SUPRA (safetensors or pytorch_model.bin)",
  usage:
    'supra convert <in-dir-or-file> --out <dir> [--format supra|open_lm] [--dtype f32|bf16|f16] [--container safetensors|pytorch]\n' +
    '       [--open-lm-inv-freq]\n' +
    '--out must be a new (or empty) folder; it appears only once complete. The tensors are checked against\n' +
    'config.json first: a missing or misshapen tensor, or one the model does not use, is an error.\n' +
    '--open-lm-inv-freq (with --format open_lm) also writes layers.N.attention.pos_embed.inv_freq, the RoPE\n' +
    'buffer upstream open_lm registers; by default it is left out, as the paper\'s code (TRI-ML/linear_open_lm)\n' +
    'keeps it as a plain attribute and a strict load_state_dict there rejects it. Input is read either way.',
  async run(argv: string[]): Promise<void> {
    const { values, positionals } = parse(
      argv,
      { out: { type: 'string', short: 'o' }, format: { type: 'string' }, dtype: { type: 'string' }, container: { type: 'string' }, 'open-lm-inv-freq': { type: 'boolean' } },
      'convert',
    );
    if (positionals.length !== 1) throw new UsageError('convert takes one input folder or weights file');
    if (!values.out) throw new UsageError('convert needs --out <dir>');
    const format = choiceOption(values.format, 'format', ['supra', 'open_lm'] as const, 'supra');
    if (values['open-lm-inv-freq'] && format !== 'open_lm') throw new UsageError('--open-lm-inv-freq only applies with --format open_lm');
    const result = convertCheckpoint(positionals[0]!, values.out, {
      format,
      openLmInvFreq: values['open-lm-inv-freq'] === true,
      dtype: choiceOption(values.dtype, 'dtype', ['f32', 'bf16', 'f16'] as const, 'f32'),
      container: choiceOption(values.container, 'container', ['safetensors', 'pytorch'] as const, 'safetensors'),
    });
    console.log(`converted ${result.config.architecture} from the ${result.inputLayout} layout`);
    for (const f of result.files) console.log(`  wrote ${f}`);
  },
};
