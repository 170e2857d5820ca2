// The recall mixture: synthetic in-context episodes woven into the natural token stream, so a small
// teacher learns induction and recall (the probes of src/eval/probes.ts then have something to measure).
//
// A training sequence (seqLen + 1 tokens of natural text) becomes an episode with probability `share`;
// during an optional warm-up (the first `warmupSequences` of the run) the probability falls linearly from 1
// to `share`, so the induction circuit, which every episode kind needs, forms early on dense signal.
// The episode overwrites part of the sequence; the natural text around and inside it stays:
//   copy     a span of 8–64 random tokens (at most half the row), a gap (random tokens or the natural text), the span again
//            (in half the episodes again and again at the same stride while it fits);
//   mqar     k₁ v₁ … k_N v_N then every key again in random order, each followed by its value (N = 2–64);
//   passkey  a sentence naming a 5-digit number somewhere in the natural text, and later the question
//            asking for it followed by the answer;
//   repeat   a span of 4–32 random tokens repeated back to back over the whole row: the densest
//            copy signal, off by default; a teacher's first stage weights it up (scripts/build-teacher.mjs),
//            because on the sparser kinds the copying circuit takes several times longer to form
//            (scripts/induction-toy.mjs trains on such rows alone).
// Which kinds, and how often, is the `kinds` option (default copy 0.5, mqar 0.3, passkey 0.2).
// Random tokens come from the probes' range (defaultTokenRange), MQAR keys from its lower half and values
// from its upper half, as in the probes, so what is learnt transfers; the instances are not theirs:
//   - every draw comes from Mt19937(mix(seed, MIX_DOMAIN, epoch, index)), a stream domain-separated from
//     the probes' mixSeed(seed, 1|2|3, …) seeds, and depending only on the sequence's position in the
//     data order, so a resumed run weaves exactly the same episodes;
//   - the (key, value) pairs of the MQAR probe and the keys (true and distractor) of the passkey probe,
//     at seed 0 with their default and the study's settings (probeHeldOut), are never drawn;
//   - the passkey sentences use other names than "pass key" and other questions, and natural text instead
//     of the probe's filler sentences.
// Copy spans are random 4–32-token strings from a separate stream; the test checks that none is a probe span.
// Validation sequences are never mixed: the validation loss stays a natural-text measure.
import { Mt19937 } from '../../core/random.js';
import { defaultTokenRange, mixSeed, mqarData, passkeyKeys, type TokenRange } from '../../eval/probes.js';

/** The part of a tokenizer the mixture needs (LoadedTokenizer fits). */
export interface MixTokenizer {
  encode(text: string, options?: { add_special_tokens?: boolean }): number[];
}

export type EpisodeKind = 'copy' | 'mqar' | 'passkey' | 'repeat';
/** The kinds in the order an episode's kind is drawn (repeat last, so the default draws stay as they were). */
export const EPISODE_KINDS: readonly EpisodeKind[] = ['copy', 'mqar', 'passkey', 'repeat'];

/** Separates the mixture's seeds from every other use of mixSeed (the probes use parts 1, 2, 3). */
const MIX_DOMAIN = 0x7265636c; // 'recl'

/** Relative weights of the episode kinds. */
export type KindWeights = Record<EpisodeKind, number>;
export const DEFAULT_KIND_WEIGHTS: Readonly<KindWeights> = { copy: 0.5, mqar: 0.3, passkey: 0.2, repeat: 0 };

/** Weights from "kind=w,kind=w" (the kinds not named get 0), e.g. "repeat=0.8,mqar=0.2"; `what` names the setting in errors. */
export function parseKindWeights(spec: string, what = 'recall kinds'): KindWeights {
  const weights: Partial<KindWeights> = {};
  for (const part of spec.split(',')) {
    const m = /^\s*([a-z]+)\s*=\s*([^\s]+)\s*$/.exec(part);
    if (!m) throw new Error(`supra: ${what}: expected KIND=WEIGHT[,KIND=WEIGHT...] with kinds ${EPISODE_KINDS.join(', ')}, got "${spec}"`);
    const [, kind, w] = m;
    if (!(EPISODE_KINDS as readonly string[]).includes(kind!)) throw new Error(`supra: ${what}: unknown episode kind "${kind}" (kinds: ${EPISODE_KINDS.join(', ')})`);
    if (kind! in weights) throw new Error(`supra: ${what}: "${kind}" is named twice`);
    weights[kind as EpisodeKind] = Number(w);
  }
  return checkKindWeights(weights, what);
}

/** Every weight finite and ≥ 0, at least one > 0. */
export function checkKindWeights(weights: Partial<Record<string, unknown>>, what = 'recall kinds'): KindWeights {
  for (const k of Object.keys(weights)) {
    if (!(EPISODE_KINDS as readonly string[]).includes(k)) throw new Error(`supra: ${what}: unknown episode kind "${k}" (kinds: ${EPISODE_KINDS.join(', ')})`);
  }
  const out = { copy: 0, mqar: 0, passkey: 0, repeat: 0 } as KindWeights;
  for (const k of EPISODE_KINDS) {
    const w = weights[k] ?? 0;
    if (typeof w !== 'number' || !Number.isFinite(w) || w < 0) throw new Error(`supra: ${what}: the weight of ${k} must be a number ≥ 0, got ${JSON.stringify(w)}`);
    out[k] = w;
  }
  if (EPISODE_KINDS.every((k) => out[k] === 0)) throw new Error(`supra: ${what}: every weight is 0; give at least one kind a weight above 0`);
  return out;
}

const NAMES = ['secret code', 'magic number', 'access code', 'lucky number', 'door code', 'hidden number', 'special number', 'code word'];
const NEEDLES: Array<(name: string, key: number) => string> = [
  (name, key) => ` The ${name} is ${key}.`,
  (name, key) => ` Note that the ${name} is ${key}. Do not forget it.`,
  (name, key) => ` The ${name} is ${key}. Keep it in mind. ${key} is the ${name}.`,
];
const QUESTIONS: Array<(name: string, key: number) => string> = [
  (name, key) => ` What is the ${name}? The ${name} is ${key}.`,
  (name, key) => ` Question: what was the ${name}? Answer: the ${name} is ${key}.`,
  (name, key) => ` Tell me the ${name}. The ${name} is ${key}.`,
];

/** Probe instances the mixture never emits: MQAR (key, value) pairs as key·vocab + value, passkey keys. */
export interface HeldOut {
  mqarPairs: Set<number>;
  passkeys: Set<number>;
}

/**
 * Which probe settings are held out. A probe's data at setting index i is drawn from mixSeed(seed, kind,
 * i, ...) with that setting's size, so every (index, size) pair any caller uses must be covered: the
 * CLI's default MQAR pairs [4 … 64], the study's [4 … 128], the demo's [16] (index 0), each at up to 32
 * samples; passkey up to 8 lengths × 5 depths × 8 samples with 4 distractors.
 */
const HELD_OUT = { settings: 8, mqarPairs: [4, 8, 16, 32, 64, 128], mqarSamples: 32, passkeyDepths: 5, passkeySamples: 8, distractors: 4 };

/** The held-out instances of the probes at seed 0 (the study's, the demo's and the CLI's default seed). */
export function probeHeldOut(vocab: number, seed = 0): HeldOut {
  const range = defaultTokenRange(vocab);
  const mid = range.lo + Math.floor((range.hi - range.lo) / 2);
  const mqarPairs = new Set<number>();
  for (let i = 0; i < HELD_OUT.settings; i++) {
    for (const n of HELD_OUT.mqarPairs) {
      if (n > mid - range.lo) continue; // the probe refuses this setting for a vocabulary this small
      const d = mqarData(mixSeed(seed, 3, i), HELD_OUT.mqarSamples, n, n, range);
      for (let b = 0; b < d.B; b++) {
        for (let k = 0; k < n; k++) mqarPairs.add(d.ids[b * d.T + 2 * k]! * vocab + d.ids[b * d.T + 2 * k + 1]!);
      }
    }
  }
  const passkeys = new Set<number>();
  for (let li = 0; li < HELD_OUT.settings; li++) {
    for (let di = 0; di < HELD_OUT.passkeyDepths; di++) {
      for (let s = 0; s < HELD_OUT.passkeySamples; s++) for (const k of passkeyKeys(mixSeed(seed, 2, li, di, s), HELD_OUT.distractors)) passkeys.add(k);
    }
  }
  return { mqarPairs, passkeys };
}

/** Values tried for an MQAR key before the key is dropped. */
const VALUE_ATTEMPTS = 64;

function randInt(rng: Mt19937, n: number): number {
  return Math.min(n - 1, Math.floor(rng.random() * n));
}

/** Integer in [lo, hi]. */
function between(rng: Mt19937, lo: number, hi: number): number {
  return lo + randInt(rng, hi - lo + 1);
}

export interface RecallMixtureOptions {
  /** Fraction of training sequences that carry an episode, in [0, 1]. */
  share: number;
  /** The data seed; the mixture's stream is domain-separated from it. */
  seed: number;
  vocab: number;
  /** Training sequences at the start of the run over which the share falls from 1 to `share`. Default 0. */
  warmupSequences?: number;
  /** Length of a training row: seqLen + 1 tokens. */
  rowLength: number;
  tokenizer: MixTokenizer;
  /** Default probeHeldOut(vocab). */
  heldOut?: HeldOut;
  /** How often each kind is drawn (relative weights). Default DEFAULT_KIND_WEIGHTS. */
  kinds?: Partial<KindWeights>;
}

/** Weaves episodes into training rows; a pure function of (seed, epoch, index, the row's natural tokens). */
export class RecallMixture {
  readonly share: number;
  readonly warmupSequences: number;
  private readonly seed: number;
  private readonly vocab: number;
  private readonly rowLength: number;
  private readonly range: TokenRange;
  private readonly mid: number;
  private readonly tok: MixTokenizer;
  private readonly heldOut: HeldOut;
  readonly kinds: Readonly<KindWeights>;
  private readonly kindTotal: number;

  constructor(o: RecallMixtureOptions) {
    if (!(o.share >= 0 && o.share <= 1)) throw new Error(`supra: the recall mixture's share must be in [0, 1], got ${o.share}`);
    if (!Number.isInteger(o.rowLength) || o.rowLength < 64) throw new Error(`supra: the recall mixture needs sequences of at least 63 tokens, got ${o.rowLength - 1}`);
    this.share = o.share;
    this.warmupSequences = o.warmupSequences ?? 0;
    if (!Number.isInteger(this.warmupSequences) || this.warmupSequences < 0) throw new Error(`supra: the recall mixture's warm-up must be a whole number of sequences ≥ 0, got ${o.warmupSequences}`);
    this.seed = o.seed;
    this.vocab = o.vocab;
    this.rowLength = o.rowLength;
    this.range = defaultTokenRange(o.vocab);
    this.mid = this.range.lo + Math.floor((this.range.hi - this.range.lo) / 2);
    if (this.mid - this.range.lo < 16) throw new Error(`supra: the recall mixture needs a vocabulary with at least 16 key ids, got ${o.vocab} ids`);
    this.tok = o.tokenizer;
    this.heldOut = o.heldOut ?? probeHeldOut(o.vocab);
    this.kinds = o.kinds ? checkKindWeights(o.kinds) : DEFAULT_KIND_WEIGHTS;
    this.kindTotal = EPISODE_KINDS.reduce((n, k) => n + this.kinds[k], 0);
  }

  /** The share at the run's `ordinal`-th training sequence (0-based, across epochs). */
  shareAt(ordinal: number): number {
    return ordinal < this.warmupSequences ? 1 - ((1 - this.share) * ordinal) / this.warmupSequences : this.share;
  }

  /**
   * Weave the episode of training sequence `index` of epoch `epoch` (the run's `ordinal`-th) into `row`
   * (rowLength tokens, in place). Returns the kind woven, or null when this sequence stays natural text.
   */
  weave(row: Int32Array, epoch: number, index: number, ordinal = Infinity): EpisodeKind | null {
    if (row.length !== this.rowLength) throw new Error(`supra: recall mixture: a row of ${row.length} tokens, expected ${this.rowLength}`);
    const rng = new Mt19937(mixSeed(this.seed, MIX_DOMAIN, epoch, index));
    if (rng.random() >= this.shareAt(ordinal)) return null;
    let u = rng.random() * this.kindTotal, kind: EpisodeKind | null = null;
    for (const k of EPISODE_KINDS) {
      if (this.kinds[k] === 0) continue;
      kind = k;
      if ((u -= this.kinds[k]) < 0) break;
    }
    if (kind === 'copy') this.copy(rng, row);
    else if (kind === 'mqar') this.mqar(rng, row);
    else if (kind === 'passkey') this.passkey(rng, row);
    else this.repeat(rng, row);
    return kind;
  }

  private randomToken(rng: Mt19937): number {
    return this.range.lo + randInt(rng, this.range.hi - this.range.lo);
  }

  /** span, gap, span again; the gap's length is log-uniform so short and long gaps are both common. */
  private copy(rng: Mt19937, row: Int32Array): void {
    const L = row.length;
    // spans of 8–64 tokens, at most half the row so both copies fit (rows of 128 tokens or more: all of 8–64)
    const span = between(rng, 8, Math.min(64, Math.floor(L / 2)));
    const maxGap = L - 2 * span;
    const gap = Math.min(maxGap, Math.floor(Math.exp(rng.random() * Math.log(maxGap + 1))) - 1);
    const start = randInt(rng, L - 2 * span - gap + 1);
    for (let i = 0; i < span; i++) row[start + i] = this.randomToken(rng);
    // half the gaps are random tokens (as in the probe), half stay natural text
    if (rng.random() < 0.5) for (let i = 0; i < gap; i++) row[start + span + i] = this.randomToken(rng);
    // half the episodes repeat the span at the same stride while it fits: dense signal for induction
    const stride = span + gap;
    const copies = rng.random() < 0.5 ? Math.floor((L - start - span) / stride) : 1;
    for (let c = 1; c <= copies; c++) row.copyWithin(start + c * stride, start, start + span);
  }

  /**
   * A span repeated back to back over the whole row (the last copy cut at the end), as the rows of
   * scripts/induction-toy.mjs. (Rows that began with up to a quarter of natural text learned at the same pace.)
   */
  private repeat(rng: Mt19937, row: Int32Array): void {
    const L = row.length;
    const span = between(rng, 4, Math.min(32, Math.floor(L / 2)));
    for (let i = 0; i < span; i++) row[i] = this.randomToken(rng);
    for (let t = span; t < L; t++) row[t] = row[t - span]!;
  }

  /** Key-value pairs then every key queried in random order; keys distinct, no held-out pair. */
  private mqar(rng: Mt19937, row: Int32Array): void {
    const L = row.length;
    let pairs = between(rng, 2, Math.min(64, Math.floor(L / 4), this.mid - this.range.lo));
    const start = randInt(rng, L - 4 * pairs + 1);
    // each key with a value that is not a held-out pair; a key whose draws all hit held-out pairs is
    // dropped (on a tiny vocabulary the held-out pairs can cover a key's every value: never loop forever)
    const keys: number[] = [];
    const values: number[] = [];
    const used = new Set<number>();
    const keySpace = this.mid - this.range.lo;
    while (keys.length < pairs && used.size < keySpace) {
      const k = this.range.lo + randInt(rng, keySpace);
      if (used.has(k)) continue;
      used.add(k);
      for (let attempt = 0; attempt < VALUE_ATTEMPTS; attempt++) {
        const v = this.mid + randInt(rng, this.range.hi - this.mid);
        if (this.heldOut.mqarPairs.has(k * this.vocab + v)) continue;
        keys.push(k);
        values.push(v);
        break;
      }
    }
    pairs = keys.length;
    for (let i = 0; i < pairs; i++) {
      row[start + 2 * i] = keys[i]!;
      row[start + 2 * i + 1] = values[i]!;
    }
    // queries: a Fisher–Yates order of the keys
    const order = keys.map((_, i) => i);
    for (let i = pairs - 1; i > 0; i--) {
      const j = randInt(rng, i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    order.forEach((i, q) => {
      row[start + 2 * pairs + 2 * q] = keys[i]!;
      row[start + 2 * pairs + 2 * q + 1] = values[i]!;
    });
  }

  /** A key sentence at a random place in the natural text, the question and answer later. */
  private passkey(rng: Mt19937, row: Int32Array): void {
    const L = row.length;
    let key: number;
    do key = between(rng, 10000, 99999);
    while (this.heldOut.passkeys.has(key));
    const name = NAMES[randInt(rng, NAMES.length)]!;
    const needle = this.tok.encode(NEEDLES[randInt(rng, NEEDLES.length)]!(name, key), { add_special_tokens: false });
    const question = this.tok.encode(QUESTIONS[randInt(rng, QUESTIONS.length)]!(name, key), { add_special_tokens: false });
    const room = L - needle.length - question.length;
    if (room < 0) return; // a row too short for the sentences stays natural text
    const filler = randInt(rng, room + 1);
    const start = randInt(rng, room - filler + 1);
    row.set(needle, start);
    row.set(question, start + needle.length + filler);
  }
}
