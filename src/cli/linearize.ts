// supra linearize <teacher-dir> --out <dir>
import { choiceOption, intOption, floatOption, normalizationOption, parse, UsageError } from './args.js';
import { linearizeFolder } from '../models/linearize.js';

export const command = {
  summary: 'turn a Llama/Mistral/Qwen2 teacher folder into a SUPRA (linear attention RNN) folder',
  usage:
    'supra linearize <teacher-dir> --out <dir> [--qk-norm none|rms|layernorm] [--decay lightning|retnet|none]\n' +
    '       [--normalization group-norm|sum] [--group-norm-eps 1e-5] [--normalizer-eps 1e-6] [--qk-norm-eps 1e-5]\n' +
    '       [--seed 0] [--dtype f32|bf16|f16]\n' +
    '--normalization sum is the T2R-style ablation: the classic linear-attention denominator instead of\n' +
    'GroupNorm (with --decay none, T2R proper).',
  async run(argv: string[]): Promise<void> {
    const { values, positionals } = parse(
      argv,
      {
        out: { type: 'string', short: 'o' },
        'qk-norm': { type: 'string' },
        'qk-norm-eps': { type: 'string' },
        decay: { type: 'string' },
        'group-norm-eps': { type: 'string' },
        normalization: { type: 'string' },
        'normalizer-eps': { type: 'string' },
        seed: { type: 'string' },
        dtype: { type: 'string' },
      },
      'linearize',
    );
    if (positionals.length !== 1) throw new UsageError('linearize takes one teacher folder, e.g. supra linearize ./teacher --out ./supra');
    if (!values.out) throw new UsageError('linearize needs --out <dir> for the SUPRA folder');
    const dtype = choiceOption(values.dtype, 'dtype', ['f32', 'bf16', 'f16'] as const, 'f32');
    const { config, files } = linearizeFolder(positionals[0]!, values.out, {
      qk_norm: choiceOption(values['qk-norm'], 'qk-norm', ['none', 'rms', 'layernorm'] as const, 'none'),
      qk_norm_eps: floatOption(values['qk-norm-eps'], 'qk-norm-eps', 1e-5),
      decay: choiceOption(values.decay, 'decay', ['lightning', 'retnet', 'none'] as const, 'lightning'),
      group_norm_eps: floatOption(values['group-norm-eps'], 'group-norm-eps', 1e-5),
      normalization: normalizationOption(values.normalization),
      normalizer_eps: floatOption(values['normalizer-eps'], 'normalizer-eps', 1e-6),
      seed: intOption(values.seed, 'seed', 0),
      dtype: ({ f32: 'F32', bf16: 'BF16', f16: 'F16' } as const)[dtype],
    });
    const kernels = config.num_key_value_heads === config.num_attention_heads ? 'kernel_q (shared by q and k)' : 'kernel_q and kernel_k';
    console.log(`linearized ${config.num_hidden_layers} layers: added ${kernels}; decay ${config.supra!.decay}, qk-norm ${config.supra!.qk_norm}, normalization ${config.supra!.normalization}`);
    for (const f of files) console.log(`  wrote ${f}`);
  },
};
