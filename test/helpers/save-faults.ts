// Save hooks for the checkpoint tests (TrainHooks.duringSave): stop one save at one phase, as a kill or a
// full disk would. A spec names the save: "files@4" (checkpoint-4 at phase files), "latest@4", "final".
import { basename } from 'node:path';
import type { SaveHook, SavePhase } from '../../src/train/checkpoint.js';

function isSave(spec: string, phase: SavePhase, dest: string): boolean {
  if (phase === 'final') return spec === 'final';
  return spec === `${phase}@${basename(dest).replace(/^checkpoint-/, '')}`;
}

/** The save `spec` names fails as a full disk would, with the error fs gives (code ENOSPC). */
export function failSaveAt(spec: string): SaveHook {
  return (phase, dest) => {
    if (!isSave(spec, phase, dest)) return;
    throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
  };
}

/**
 * The save `spec` names stops for up to a minute after saying so on stderr ("save of checkpoint-4 paused
 * at files"), so that a test can SIGKILL the process mid-save.
 */
export function pauseSaveAt(spec: string): SaveHook {
  return (phase, dest) => {
    if (!isSave(spec, phase, dest)) return;
    process.stderr.write(`supra-test: save of ${basename(dest)} paused at ${phase}\n`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
  };
}
