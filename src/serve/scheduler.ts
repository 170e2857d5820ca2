// Admission control: at most `concurrency` requests compute at once (their model steps interleave, see
// engine.ts), at most `queueSize` more wait in arrival order, and anything beyond that is refused at once
// with 503 so a flood of requests cannot pile up memory. A waiting request whose client leaves or whose
// deadline passes leaves the queue.
import { ApiError } from './errors.js';

interface Waiter {
  grant(): void;
  signal: AbortSignal;
  onAbort(): void;
}

export class Scheduler {
  private active = 0;
  private readonly waiting: Waiter[] = [];

  constructor(readonly concurrency: number, readonly queueSize: number) {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`supra: concurrency must be an integer ≥ 1, got ${concurrency}`);
    if (!Number.isInteger(queueSize) || queueSize < 0) throw new Error(`supra: queue size must be an integer ≥ 0, got ${queueSize}`);
  }

  get activeCount(): number {
    return this.active;
  }

  get queuedCount(): number {
    return this.waiting.length;
  }

  /**
   * Wait for a compute slot. Resolves to the function that gives it back (call it exactly once; later calls
   * do nothing). Throws a 503 ApiError when the queue is full, or the signal's reason when it aborts first.
   */
  acquire(signal: AbortSignal): Promise<() => void> {
    signal.throwIfAborted();
    if (this.active < this.concurrency) {
      this.active++;
      return Promise.resolve(this.releaser());
    }
    if (this.waiting.length >= this.queueSize) {
      return Promise.reject(new ApiError(503, `The server is busy (${this.active} requests running, ${this.waiting.length} waiting). Retry later.`, 'server_error', null, 'server_overloaded'));
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          signal.removeEventListener('abort', waiter.onAbort);
          resolve(this.releaser());
        },
        signal,
        onAbort: () => {
          const i = this.waiting.indexOf(waiter);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(signal.reason);
        },
      };
      signal.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiting.push(waiter);
    });
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiting.shift();
      if (next) next.grant(); // the slot passes straight to the next in line
      else this.active--;
    };
  }
}
