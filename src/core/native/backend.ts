// Placeholder until the OpenBLAS add-on lands: reports itself unavailable so select.ts falls back to wasm.
import type { Backend } from '../backend.js';

export function createNativeBackend(): { ok: true; backend: Backend } | { ok: false; reason: string } {
  return { ok: false, reason: 'the OpenBLAS add-on is not built' };
}
