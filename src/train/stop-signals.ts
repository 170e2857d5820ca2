// What stops a run between two steps: the caller's AbortSignal, and (when the command line asks for it)
// Ctrl-C. The run then saves a checkpoint and returns 'interrupted'; a second Ctrl-C exits at once.
export class StopSignals {
  private interrupted = false;
  private readonly onSigint = () => {
    if (this.interrupted) {
      process.stderr.write('\nsupra: second interrupt: exiting without saving\n');
      process.exit(130);
    }
    this.interrupted = true;
    process.stderr.write('\nsupra: interrupt: saving a checkpoint after this step (Ctrl-C again quits without saving)\n');
  };

  constructor(
    private readonly signal: AbortSignal | undefined,
    private readonly handleSigint: boolean,
  ) {
    if (handleSigint) process.on('SIGINT', this.onSigint);
  }

  /** Whether the run should stop before its next step. */
  get requested(): boolean {
    return this.interrupted || this.signal?.aborted === true;
  }

  /** Stop listening for SIGINT. */
  dispose(): void {
    if (this.handleSigint) process.off('SIGINT', this.onSigint);
  }
}
