// The attention-transfer recipe's pieces for the trainer (the arithmetic is in models/: attention_transfer.ts
// for stage 1's loss, lora.ts for the adapters): LoLCATs' two stages on a SUPRA model whose teacher
// weights stay frozen.
//
//   steps [0, transferSteps)           stage 1: the kernels alone, loss = mean over layers of the MSE
//                                      between each layer's SUPRA and softmax attention outputs
//   steps [transferSteps, totalSteps)  stage 2: LoRA on --lora-targets plus the kernels, next-token loss
//
// One lr schedule spans both stages (the kernels follow --kernel-lr, the adapters --lr); the adapters'
// AdamW moments start with stage 2. A checkpoint is the base model's folder (with the kernels as trained)
// plus the adapter files, so `supra merge --model C --adapter C` gives the model at that step; the final
// model (<out>/final) is merged, and <out>/adapter holds the adapter alone.
import type { Param } from '../layers/types.js';
import { AttentionTransfer } from '../models/attention_transfer.js';
import type { DecoderLM } from '../models/decoder.js';
import { LoraAdapters, parseLoraTargets, readAdapterFolder } from '../models/lora.js';
import type { TrainSettings } from './settings.js';

/** What a run of the attention-transfer recipe adds to its model; nothing under the full recipe. */
export class RecipeParts {
  private constructor(
    readonly lora: LoraAdapters | null,
    readonly transfer: AttentionTransfer | null,
  ) {}

  /**
   * The recipe's pieces for `model`: under attention transfer, LoRA adapters on its target layers (fresh,
   * seeded by the run's seed, or a checkpoint's adapters on resume) and the stage-1 loss.
   */
  static open(model: DecoderLM, s: TrainSettings, checkpointDir: string | null): RecipeParts {
    if (s.recipe !== 'attention-transfer') return new RecipeParts(null, null);
    if (!model.config.supra) {
      throw new Error(`supra: train: recipe "attention-transfer" needs a SUPRA model, but ${model.config.architecture} has no kernel parameters (use --linearize)`);
    }
    const lora = LoraAdapters.attach(model, { rank: s.loraRank, alpha: s.loraAlpha, targets: parseLoraTargets(s.loraTargets) }, s.seed);
    try {
      if (checkpointDir) {
        const folder = readAdapterFolder(checkpointDir);
        lora.load(folder.tensors, folder.file);
      }
      return new RecipeParts(lora, new AttentionTransfer(model));
    } catch (e) {
      lora.free();
      throw e;
    }
  }

  /** Whether optimizer step `step` (0-based) is stage 1 of attention transfer. */
  static isTransferStep(s: TrainSettings, step: number): boolean {
    return s.recipe === 'attention-transfer' && step < s.transferSteps;
  }

  /** Zero the adapters' gradients, but those in `skip` (known to be zero already). */
  zeroGrad(skip?: ReadonlySet<Param>): void {
    this.lora?.zeroGrad(skip);
  }

  /**
   * The adapter files (adapter_config.json, adapter_model.safetensors) of the run as it stands, with the
   * kernels (`fullyTrained`) as modules_to_save; null under the full recipe.
   */
  adapterWriter(fullyTrained: readonly Param[], baseModel: string): ((dir: string) => string[]) | null {
    const lora = this.lora;
    return lora ? (dir) => lora.writeFiles(dir, fullyTrained, baseModel) : null;
  }

  /** Fold the adapters into the model's weights (the run's final model); the model computes the same. */
  merge(): void {
    this.lora?.merge();
  }

  /**
   * Release the pieces. A model the caller keeps (`keepModel`) gets the adapters merged into it first,
   * so it holds what the run trained, as a model trained in full would.
   */
  free(keepModel: boolean): void {
    this.transfer?.free();
    if (this.lora) {
      if (keepModel && this.lora.isAttached) this.lora.merge();
      this.lora.free();
    }
  }
}
