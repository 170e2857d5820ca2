// supra convert <in> --out <dir> [--format supra|open_lm] [--dtype f32|bf16|f16]
import { choiceOption, parse, UsageError } from './args.js';
import { convertCheckpoint } from '../models/convert.js';

export const command = {
  summary: "convert between supra's layout and the open_lm layout of the released Mistral-SUPRA (safetensors or pytorch_model.bin)",
  usage: 'supra convert <in-dir-or-file> --out <dir> [--format supra|open_lm] [--dtype f32|bf16|f16] [--container safetensors|pytorch]',
  async run(argv: string[]): Promise<void> {
    const { values, positionals } = parse(
      argv,
      { out: { type: 'string', short: 'o' }, format: { type: 'string' }, dtype: { type: 'string' }, container: { type: 'string' } },
      'convert',
    );
    if (positionals.length !== 1) throw new UsageError('convert takes one input folder or weights file');
    if (!values.out) throw new UsageError('convert needs --out <dir>');
    const result = convertCheckpoint(positionals[0]!, values.out, {
      format: choiceOption(values.format, 'format', ['supra', 'open_lm'] as const, 'supra'),
      dtype: choiceOption(values.dtype, 'dtype', ['f32', 'bf16', 'f16'] as const, 'f32'),
      container: choiceOption(values.container, 'container', ['safetensors', 'pytorch'] as const, 'safetensors'),
    });
    console.log(`converted ${result.config.architecture} from the ${result.inputLayout} layout`);
    for (const f of result.files) console.log(`  wrote ${f}`);
  },
};
