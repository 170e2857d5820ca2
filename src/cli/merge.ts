// supra merge --model <dir> --adapter <dir> --out <dir>: fold a LoRA adapter into a model folder.
import { optionsHelp, parse, UsageError, type OptionSpecs } from './args.js';
import { mergeAdapterFolder } from '../models/lora.js';

const OPTIONS = {
  model: { type: 'string', short: 'm', value: 'DIR', help: 'the model folder the adapter was trained on (a SUPRA folder, or a checkpoint of the run)' },
  adapter: { type: 'string', value: 'DIR', help: 'the adapter folder: adapter_config.json and adapter_model.safetensors (PEFT layout;\n<out>/adapter or a checkpoint of supra train --recipe attention-transfer)' },
  out: { type: 'string', short: 'o', value: 'DIR', help: 'the merged model folder to write (new or empty; it appears only once complete)' },
} satisfies OptionSpecs;

const usage = [
  `supra merge --model <dir> --adapter <dir> --out <dir>\n\n${optionsHelp(OPTIONS)}`,
  '',
  'Writes a plain model folder (float32 weights, the model\'s config and tokenizer files): every adapted projection',
  'W += (lora_alpha / r)·B·A, summed in float64 and rounded once; the tensors of modules_to_save (the SUPRA kernels',
  'a run trained in full) replace the model\'s. An adapter whose tensors do not fit the model (shapes, a missing or',
  'unknown tensor, a target module this model does not have) is refused, naming the file and the tensor.',
].join('\n');

export const command = {
  summary: 'fold a LoRA adapter (supra train --recipe attention-transfer, PEFT layout) into a plain model folder',
  usage,
  options: OPTIONS,
  async run(argv: string[]): Promise<void> {
    const { values, positionals } = parse(argv, OPTIONS, 'merge');
    if (positionals.length > 0) throw new UsageError(`merge takes no positional arguments (got ${positionals.join(' ')}); use --model, --adapter and --out`);
    if (!values.model) throw new UsageError('merge needs --model <dir>: the model folder the adapter applies to');
    if (!values.adapter) throw new UsageError('merge needs --adapter <dir>: the folder with adapter_config.json and adapter_model.safetensors');
    if (!values.out) throw new UsageError('merge needs --out <dir> for the merged model folder');
    const { files, merged, replaced } = mergeAdapterFolder(values.model, values.adapter, values.out);
    console.log(`merged ${merged} LoRA adapters into ${values.model}${replaced ? `; ${replaced} tensors replaced from modules_to_save` : ''}`);
    for (const f of files) console.log(`  wrote ${f}`);
  },
};
