// supra info <dir>: what a checkpoint folder holds, and which backend would run it.
import { optionsHelp, parse, UsageError, type OptionSpecs } from './args.js';
import { getBackend } from '../core/select.js';
import { openModel } from '../io/checkpoint.js';
import { isFloatDType } from '../io/safetensors.js';

const OPTIONS = {
  tensors: { type: 'boolean', help: 'also list every tensor: name, type, shape' },
} satisfies OptionSpecs;

export const command = {
  summary: "describe a model folder: architecture, sizes, SUPRA settings, tensors, and the compute backend",
  usage: `supra info <dir> [options]\n\n${optionsHelp(OPTIONS)}`,
  options: OPTIONS,
  async run(argv: string[]): Promise<void> {
    const { values, positionals } = parse(argv, OPTIONS, 'info');
    if (positionals.length !== 1) throw new UsageError('info takes one model folder');
    const { dir, config: c, stored, layout } = openModel(positionals[0]!);
    const tensors: Array<{ name: string; dtype: string; shape: number[] }> = [];
    let n = 0;
    try {
      // every value is read once to check it (a NaN or Inf is an error naming the file and tensor), one
      // tensor at a time, so a folder of any size can be described
      for (const name of stored.names()) {
        const { dtype, shape, numel } = stored.info(name);
        if (isFloatDType(dtype)) stored.readF32(name);
        tensors.push({ name, dtype, shape });
        n += numel;
      }
    } finally {
      stored.close();
    }
    console.log(`${dir}: ${c.architecture}${layout === 'open_lm' ? ' (open_lm layout)' : ''}`);
    console.log(`  layers ${c.num_hidden_layers}, hidden ${c.hidden_size}, heads ${c.num_attention_heads} (kv ${c.num_key_value_heads}), head_dim ${c.head_dim}, ffn ${c.intermediate_size}, vocab ${c.vocab_size}`);
    console.log(`  rope_theta ${c.rope_theta}, rms_norm_eps ${c.rms_norm_eps}, tied embeddings ${c.tie_word_embeddings}`);
    if (c.supra) {
      const norm = c.supra.normalization === 'sum' ? `normalization sum (T2R-style), normalizer_eps ${c.supra.normalizer_eps}` : `group_norm_eps ${c.supra.group_norm_eps}`;
      console.log(`  supra: decay ${c.supra.decay}, qk_norm ${c.supra.qk_norm}, ${norm}`);
    }
    console.log(`  ${tensors.length} tensors, ${(n / 1e6).toFixed(3)} M parameters`);
    if (values.tensors) for (const t of tensors) console.log(`    ${t.name} ${t.dtype} [${t.shape.join(', ')}]`);
    const b = getBackend();
    console.log(`  backend: ${b.name} (${b.threads} thread${b.threads > 1 ? 's' : ''})`);
  },
};
