// The seam between the data pipeline (src/train/data/) and the trainer (src/train/trainer.ts).

/** Where a training stream stands, saved in checkpoints so a resumed run sees the same batches. */
export interface DataPosition {
  epoch: number;
  /** Index of the next sequence within the epoch's shuffled order. */
  cursor: number;
  seed: number;
}

/**
 * Packed, tokenized training data: fixed-length sequences of `seqLen + 1` token ids (inputs plus the
 * next-token targets), documents joined with EOS. Shuffled deterministically by seed, epoch by epoch.
 */
export interface TokenBatches {
  readonly seqLen: number;
  /** Number of training sequences in one epoch. */
  readonly trainSequences: number;
  /** Tokens in the training split. */
  readonly trainTokens: number;
  readonly validationTokens: number;
  /** The next `batch` training sequences, [batch, seqLen + 1] row-major; advances the position. */
  nextTrain(batch: number): Int32Array;
  position(): DataPosition;
  /** Continue exactly from a saved position. */
  restore(position: DataPosition): void;
  /** Validation sequences [n, seqLen + 1], in a fixed order, at most `maxSequences` of them. */
  validation(maxSequences?: number): { ids: Int32Array; count: number };
  close(): void;
}
