// Watching a run: the progress line (step, loss, lr, tokens/s, ETA) and the metrics log
// (<out>/metrics.jsonl, one JSON object per line).
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../io/atomic.js';

/**
 * One line of metrics.jsonl. `step` counts the updates done (1 = after the first); loss, lr and grad_norm
 * are those of that update (grad_norm before clipping). Evaluation adds val_loss / val_ppl (step 0: the
 * model before training). Non-finite numbers are written as strings ("NaN").
 */
export interface MetricsRecord {
  step: number;
  loss?: number;
  lr?: number;
  grad_norm?: number;
  /** Training tokens consumed so far (after this step). */
  tokens: number;
  tokens_per_s?: number;
  val_loss?: number;
  val_ppl?: number;
  /** Present (true) when the step was skipped for a non-finite loss or gradient. */
  skipped?: boolean;
  [extra: string]: unknown;
}

/** Appends records to a JSONL file, one line each, written as they come (a crash loses nothing logged). */
export class MetricsLog {
  constructor(readonly path: string) {}

  append(record: MetricsRecord): void {
    appendFileSync(this.path, JSON.stringify(record, finiteOrString) + '\n');
  }

  /**
   * Drop the records after `step` (on resume: the interrupted run logged steps the checkpoint does not
   * hold, and they will be run again). Lines that do not parse (a torn last line) are dropped too.
   */
  truncateAfter(step: number): void {
    if (!existsSync(this.path)) return;
    const kept = readFileSync(this.path, 'utf8')
      .split('\n')
      .filter((line) => {
        if (line.trim() === '') return false;
        try {
          const r = JSON.parse(line) as MetricsRecord;
          return typeof r.step === 'number' && r.step <= step;
        } catch {
          return false;
        }
      });
    writeFileAtomic(this.path, kept.map((l) => l + '\n').join(''));
  }

  /** Every record in the file. */
  static read(path: string): MetricsRecord[] {
    return readFileSync(path, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as MetricsRecord);
  }
}

/** JSON has no NaN/Infinity: write them as strings so a skipped step's loss is still visible. */
function finiteOrString(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? String(value) : value;
}

/** 75 → "1m15s", 4000 → "1h06m". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * A setting or measurement as people write it: at most 4 significant digits, so float noise disappears
 * (3e-4 / 10 = 0.000029999999999999997 → "3e-5"), and the exponent form below 0.01 and from 1e6, as
 * such values are typed on the command line (1e-3, 3e-4, 1e-8). 0.95 → "0.95", 1 → "1".
 */
export function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  const rounded = Number(x.toPrecision(4));
  const a = Math.abs(rounded);
  return a < 1e-2 || a >= 1e6 ? rounded.toExponential().replace('e+', 'e') : String(rounded);
}

/** 12345 → "12.3k". */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return '?';
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return n.toFixed(0);
}

export interface ProgressInfo {
  step: number;
  totalSteps: number;
  loss: number;
  lr: number;
  tokensPerSecond: number;
  etaSeconds: number;
  skipped?: number;
  /** The process's memory in use (resident set), bytes. */
  memoryBytes?: number;
}

/** The one-line progress report. */
export function progressText(p: ProgressInfo): string {
  const width = String(p.totalSteps).length;
  const parts = [
    `step ${String(p.step).padStart(width)}/${p.totalSteps}`,
    `loss ${Number.isFinite(p.loss) ? p.loss.toFixed(4) : String(p.loss)}`,
    `lr ${p.lr.toExponential(2)}`,
    `${formatCount(p.tokensPerSecond)} tok/s`,
    `ETA ${formatDuration(p.etaSeconds)}`,
  ];
  if (p.memoryBytes !== undefined) parts.push(`mem ${(p.memoryBytes / 2 ** 30).toFixed(2)} GiB`);
  if (p.skipped) parts.push(`${p.skipped} skipped`);
  return parts.join(' | ');
}

/**
 * Writes progress to a stream: on a terminal one line redrawn in place with '\r', elsewhere (a pipe or a
 * log file) plain lines. Other messages go through message(), which first ends a pending '\r' line.
 */
export class ProgressLine {
  private pending = false;
  private readonly tty: boolean;

  constructor(private readonly stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number } = process.stdout) {
    this.tty = stream.isTTY === true;
  }

  update(p: ProgressInfo): void {
    const text = progressText(p);
    if (this.tty) {
      const cols = this.stream.columns ?? 120;
      this.stream.write('\r' + text.slice(0, cols - 1).padEnd(Math.min(cols - 1, text.length + 2)));
      this.pending = true;
    } else {
      this.stream.write(text + '\n');
    }
  }

  message(text: string): void {
    this.end();
    this.stream.write(text + '\n');
  }

  /** Finish a pending '\r' line. */
  end(): void {
    if (this.pending) this.stream.write('\n');
    this.pending = false;
  }
}

/** Throughput over the last few steps (exponential moving average of seconds per step). */
export class Throughput {
  private secondsPerStep = NaN;

  constructor(private readonly smoothing = 0.9) {}

  /** Record the duration of one step. */
  record(seconds: number): void {
    this.secondsPerStep = Number.isNaN(this.secondsPerStep) ? seconds : this.smoothing * this.secondsPerStep + (1 - this.smoothing) * seconds;
  }

  tokensPerSecond(tokensPerStep: number): number {
    return this.secondsPerStep > 0 ? tokensPerStep / this.secondsPerStep : 0;
  }

  etaSeconds(stepsLeft: number): number {
    return Number.isNaN(this.secondsPerStep) ? NaN : stepsLeft * this.secondsPerStep;
  }
}
