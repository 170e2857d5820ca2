// The three in-context recall scores at one setting each, for a one-screen comparison of the teacher and
// its SUPRA model (supra demo, the teacher's build card): how much the second copy of a span is cheaper
// than the first (nats saved by remembering it), MQAR accuracy at 16 pairs, passkey accuracy at 256
// tokens. The full curves, against each knob, are `supra probe` (probes.ts).
import type { DecoderLM } from '../models/decoder.js';
import { copyProbe, mqarProbe, passkeyProbe, type TextTokenizer } from './probes.js';

export interface RecallSettings {
  /** Sequences (copy, MQAR) and trials per depth (passkey, over 5 depths) behind each score. Default 16. */
  samples?: number;
  /** Random tokens between the two copies. Default 128. */
  copyGap?: number;
  /** Key-value pairs in the MQAR context. Default 16. */
  mqarPairs?: number;
  /** Passkey context length in tokens. Default 256. */
  passkeyLength?: number;
  seed?: number;
}

/** The settings of the three scores; the study's page reads the same three off its probe curves. */
export const RECALL_DEFAULTS: Readonly<Required<RecallSettings>> = { samples: 16, copyGap: 128, mqarPairs: 16, passkeyLength: 256, seed: 0 };

export interface RecallScores {
  /** Mean loss (nats) over the first copy (random tokens: nothing to recall) and over the second. */
  copyFirstLoss: number;
  copySecondLoss: number;
  /** copyFirstLoss − copySecondLoss: what recalling the span saves. */
  copySaved: number;
  mqarAccuracy: number;
  passkeyAccuracy: number;
}

export interface RecallReport {
  settings: Required<RecallSettings>;
  teacher: RecallScores | null;
  model: RecallScores;
  /** Chance levels of the accuracies. */
  chance: { mqar: number; passkey: number };
}

/** The scores of `model` (and of `teacher`, when given) on the same held-out instances. */
export function recallScores(teacher: DecoderLM | null, model: DecoderLM, tokenizer: TextTokenizer, options: RecallSettings = {}): RecallReport {
  const d = RECALL_DEFAULTS;
  const settings: Required<RecallSettings> = {
    samples: options.samples ?? d.samples, copyGap: options.copyGap ?? d.copyGap, mqarPairs: options.mqarPairs ?? d.mqarPairs,
    passkeyLength: options.passkeyLength ?? d.passkeyLength, seed: options.seed ?? d.seed,
  };
  const { samples, seed } = settings;
  const copy = copyProbe(teacher, model, { seed, samples, gaps: [settings.copyGap] });
  const mqar = mqarProbe(teacher, model, { seed, samples, pairs: [settings.mqarPairs] });
  // passkey trials are 5 depths × samples/5 each
  const passkey = passkeyProbe(teacher, model, tokenizer, { seed, samples: Math.max(1, Math.round(samples / 5)), lengths: [settings.passkeyLength] });
  const scores = (who: 'teacher' | 'model'): RecallScores => {
    const first = copy[who].firstCopyLoss![0]!, second = copy[who].secondCopyLoss![0]!;
    return { copyFirstLoss: first, copySecondLoss: second, copySaved: first - second, mqarAccuracy: mqar[who].accuracy![0]!, passkeyAccuracy: passkey[who].accuracy![0]! };
  };
  return { settings, teacher: teacher ? scores('teacher') : null, model: scores('model'), chance: { mqar: mqar.chance!, passkey: passkey.chance! } };
}

/** The scores as table cells: copy nats saved, MQAR and passkey accuracy. */
export function recallCells(s: RecallScores): [string, string, string] {
  return [`${s.copySaved.toFixed(2)} nats`, s.mqarAccuracy.toFixed(2), s.passkeyAccuracy.toFixed(2)];
}
