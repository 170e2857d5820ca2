// supra linearize <teacher-dir> --out <dir>
import { choiceOption, intOption, floatOption, MAX_SHARD_SIZE_OPTION, maxShardOption, normalizationOption, optionsHelp, parse, UsageError, type OptionSpecs } from './args.js';
import { linearizeFolder } from '../models/linearize.js';

const OPTIONS = {
  out: { type: 'string', short: 'o', value: 'DIR', help: 'the SUPRA folder to write (new or empty; it appears only once complete)' },
  'qk-norm': { type: 'string', value: 'none|rms|layernorm', help: 'normalize the kernel outputs φ(q), φ(k) before RoPE (default none)' },
  'qk-norm-eps': { type: 'string', value: 'EPS', help: 'its epsilon (default 1e-5)' },
  decay: { type: 'string', value: 'lightning|retnet|none', help: 'the fixed per-head decay γ (default lightning: ALiBi slopes)' },
  'group-norm-eps': { type: 'string', value: 'EPS', help: 'GroupNorm epsilon (default 1e-5)' },
  normalization: { type: 'string', value: 'group-norm|sum', help: 'group-norm (SUPRA, default) or sum: the T2R-style ablation, the classic linear-attention\ndenominator instead of GroupNorm (with --decay none, T2R proper)' },
  'normalizer-eps': { type: 'string', value: 'EPS', help: 'with --normalization sum: the denominator epsilon (default 1e-6)' },
  seed: { type: 'string', value: 'N', help: 'seeds the new kernels, PyTorch nn.Linear default U(±1/√fan_in) (default 0)' },
  dtype: { type: 'string', value: 'f32|bf16|f16', help: "weight type written (default: the teacher's; the new kernels as its embedding)" },
  'max-shard-size': MAX_SHARD_SIZE_OPTION,
} satisfies OptionSpecs;

export const command = {
  summary: 'turn a Llama/Mistral/Qwen2 teacher folder into a SUPRA (linear attention RNN) folder',
  usage: `supra linearize <teacher-dir> --out <dir> [options]\n\n${optionsHelp(OPTIONS)}`,
  options: OPTIONS,
  async run(argv: string[]): Promise<void> {
    const { values, positionals } = parse(argv, OPTIONS, 'linearize');
    if (positionals.length !== 1) throw new UsageError('linearize takes one teacher folder, e.g. supra linearize ./teacher --out ./supra');
    if (!values.out) throw new UsageError('linearize needs --out <dir> for the SUPRA folder');
    const dtype = values.dtype === undefined ? undefined : choiceOption(values.dtype, 'dtype', ['f32', 'bf16', 'f16'] as const, 'f32');
    const { config, files } = linearizeFolder(positionals[0]!, values.out, {
      qk_norm: choiceOption(values['qk-norm'], 'qk-norm', ['none', 'rms', 'layernorm'] as const, 'none'),
      qk_norm_eps: floatOption(values['qk-norm-eps'], 'qk-norm-eps', 1e-5),
      decay: choiceOption(values.decay, 'decay', ['lightning', 'retnet', 'none'] as const, 'lightning'),
      group_norm_eps: floatOption(values['group-norm-eps'], 'group-norm-eps', 1e-5),
      normalization: normalizationOption(values.normalization),
      normalizer_eps: floatOption(values['normalizer-eps'], 'normalizer-eps', 1e-6),
      seed: intOption(values.seed, 'seed', 0),
      dtype: dtype && ({ f32: 'F32', bf16: 'BF16', f16: 'F16' } as const)[dtype],
      maxShardBytes: maxShardOption(values['max-shard-size']),
    });
    const kernels = config.num_key_value_heads === config.num_attention_heads ? 'kernel_q (shared by q and k)' : 'kernel_q and kernel_k';
    console.log(`linearized ${config.num_hidden_layers} layers: added ${kernels}; decay ${config.supra!.decay}, qk-norm ${config.supra!.qk_norm}, normalization ${config.supra!.normalization}`);
    for (const f of files) console.log(`  wrote ${f}`);
  },
};
