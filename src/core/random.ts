// Seeded random numbers. Mt19937 reproduces PyTorch's CPU generator bit for bit, so new layers can be
// initialised exactly as the reference (torch.Generator().manual_seed(seed); nn.Linear's default init).

const N = 624;
const M = 397;

export class Mt19937 {
  private readonly mt = new Uint32Array(N);
  private index = N;

  /** Words in getState(): the 624-word state, then the read index. */
  static readonly STATE_WORDS = N + 1;

  constructor(seed: number) {
    this.mt[0] = seed >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = this.mt[i - 1]! ^ (this.mt[i - 1]! >>> 30);
      // 1812433253 * prev + i, in 32-bit arithmetic
      this.mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
  }

  /** The full generator state (a copy): restoring it with fromState continues exactly here, in O(1). */
  getState(): Uint32Array {
    const words = new Uint32Array(N + 1);
    words.set(this.mt);
    words[N] = this.index;
    return words;
  }

  /** A generator continuing from getState()'s words; a state no generator can reach is refused. */
  static fromState(words: ArrayLike<number>): Mt19937 {
    if (words.length !== N + 1) throw new RangeError(`supra: an Mt19937 state has ${N + 1} words, got ${words.length}`);
    const index = words[N]!;
    if (!Number.isInteger(index) || index < 0 || index > N) throw new RangeError(`supra: Mt19937 state index ${index} is outside [0, ${N}]`);
    const g = new Mt19937(0);
    let nonZero = false;
    for (let i = 0; i < N; i++) {
      const w = words[i]!;
      if (!Number.isInteger(w) || w < 0 || w > 0xffffffff) throw new RangeError(`supra: Mt19937 state word ${i} is not a 32-bit unsigned integer (${w})`);
      g.mt[i] = w;
      // the period needs the top bit of word 0 or any bit of words 1..623 set
      if (i === 0 ? (w & 0x80000000) !== 0 : w !== 0) nonZero = true;
    }
    if (!nonZero) throw new RangeError('supra: Mt19937 state is all zero (no generator reaches it)');
    g.index = index;
    return g;
  }

  /** The next 32 random bits, as std::mt19937 gives them. */
  nextU32(): number {
    if (this.index >= N) this.twist();
    let y = this.mt[this.index++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  private twist(): void {
    const mt = this.mt;
    for (let i = 0; i < N; i++) {
      const y = (mt[i]! & 0x80000000) | (mt[(i + 1) % N]! & 0x7fffffff);
      let v = mt[(i + M) % N]! ^ (y >>> 1);
      if (y & 1) v ^= 0x9908b0df;
      mt[i] = v >>> 0;
    }
    this.index = 0;
  }

  /** A float32 uniform in [from, to), exactly as torch's Tensor.uniform_ on a CPU float tensor. */
  uniformF32(from: number, to: number): number {
    const f = Math.fround(from);
    const t = Math.fround(to);
    const x = (this.nextU32() & 0xffffff) * 2 ** -24; // exact in float32
    // one rounding at the end: torch's compiled x * (to - from) + from contracts to a fused multiply-add
    return Math.fround(x * Math.fround(t - f) + f);
  }

  /** Fill with uniform draws in order, as torch.nn.init.uniform_ does. */
  fillUniform(out: Float32Array, from: number, to: number): void {
    for (let i = 0; i < out.length; i++) out[i] = this.uniformF32(from, to);
  }

  /** A float64 uniform in [0, 1) from 53 random bits (sampling, shuffling). */
  random(): number {
    const hi = this.nextU32() >>> 5;
    const lo = this.nextU32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** A standard normal draw (Box–Muller). */
  normal(): number {
    let u = 0;
    while (u === 0) u = this.random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.random());
  }
}
