// supra info <dir>: what a checkpoint folder holds, and which backend would run it.
import { optionsHelp, parse, UsageError, type OptionSpecs } from './args.js';
import { getBackend } from '../core/select.js';
import { readCheckpointTensors } from '../io/checkpoint.js';
import { checkpointConfig } from '../models/convert.js';

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
    const { tensors, dir } = readCheckpointTensors(positionals[0]!);
    const c = checkpointConfig(dir, tensors);
    let n = 0;
    for (const t of tensors.values()) n += t.shape.reduce((a, b) => a * b, 1);
    console.log(`${dir}: ${c.architecture}`);
    console.log(`  layers ${c.num_hidden_layers}, hidden ${c.hidden_size}, heads ${c.num_attention_heads} (kv ${c.num_key_value_heads}), head_dim ${c.head_dim}, ffn ${c.intermediate_size}, vocab ${c.vocab_size}`);
    console.log(`  rope_theta ${c.rope_theta}, rms_norm_eps ${c.rms_norm_eps}, tied embeddings ${c.tie_word_embeddings}`);
    if (c.supra) {
      const norm = c.supra.normalization === 'sum' ? `normalization sum (T2R-style), normalizer_eps ${c.supra.normalizer_eps}` : `group_norm_eps ${c.supra.group_norm_eps}`;
      console.log(`  supra: decay ${c.supra.decay}, qk_norm ${c.supra.qk_norm}, ${norm}`);
    }
    console.log(`  ${tensors.size} tensors, ${(n / 1e6).toFixed(3)} M parameters`);
    if (values.tensors) for (const [name, t] of tensors) console.log(`    ${name} ${t.dtype} [${t.shape.join(', ')}]`);
    const b = getBackend();
    console.log(`  backend: ${b.name} (${b.threads} thread${b.threads > 1 ? 's' : ''})`);
  },
};
