// What `supra eval` shows: a progress bar on stderr (redrawn in place on a terminal, plain lines every
// 10% otherwise, so logs stay readable) and aligned text tables on stdout.

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

function clock(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = String(m).padStart(2, '0'), ss = String(r).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export class Progress {
  private done = 0;
  private readonly start = Date.now();
  private lastDraw = 0;
  private lastDecile = -1;
  private finished = false;
  private readonly tty: boolean;

  constructor(
    readonly label: string,
    readonly total: number,
    /** What the counted things are ("tokens", "items"). */
    readonly unit: string,
    private readonly stream: ProgressStream = process.stderr,
  ) {
    this.tty = stream.isTTY === true;
  }

  /** Set the count done so far (monotonic). */
  update(done: number): void {
    this.done = Math.min(Math.max(done, this.done), this.total);
    const now = Date.now();
    if (this.tty) {
      // redraw at most ten times a second, and always at the end
      if (now - this.lastDraw >= 100 || this.done === this.total) {
        this.lastDraw = now;
        this.stream.write(`\r${this.line(now)}\x1b[K`);
      }
    } else {
      const decile = this.total > 0 ? Math.floor((10 * this.done) / this.total) : 10;
      if (decile > this.lastDecile) {
        this.lastDecile = decile;
        this.stream.write(`${this.line(now)}\n`);
      }
    }
  }

  /** End the bar (a newline on a terminal). */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.done < this.total) this.update(this.total);
    if (this.tty) this.stream.write('\n');
  }

  private line(now: number): string {
    const elapsed = (now - this.start) / 1000;
    const frac = this.total > 0 ? this.done / this.total : 1;
    const rate = elapsed > 0 ? this.done / elapsed : 0;
    const eta = rate > 0 ? (this.total - this.done) / rate : NaN;
    const counts = `${this.done}/${this.total} ${this.unit}`;
    const tail = `${(100 * frac).toFixed(0).padStart(3)}% ${counts} ${clock(elapsed)}<${clock(eta)} ${rate.toFixed(1)} ${this.unit}/s`;
    if (!this.tty) return `${this.label}: ${tail}`;
    const width = Math.max(10, Math.min(40, (this.stream.columns ?? 80) - this.label.length - tail.length - 6));
    const filled = Math.round(frac * width);
    return `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${tail}`;
  }
}

export type Align = 'left' | 'right';

/** Columns padded to their widest cell; a rule under the header. */
export function formatTable(headers: string[], rows: string[][], align: Align[] = []): string {
  const widths = headers.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const cell = (s: string, c: number) => ((align[c] ?? 'left') === 'right' ? s.padStart(widths[c]!) : s.padEnd(widths[c]!));
  const line = (cells: string[]) => cells.map((s, c) => cell(s, c)).join('  ').trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** A number with fixed decimals, '-' for null, 'nan' for NaN. */
export function fixed(v: number | null, digits: number): string {
  if (v === null) return '-';
  if (Number.isNaN(v)) return 'nan';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  return v.toFixed(digits);
}
