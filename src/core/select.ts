// Which backend computes: SUPRA_BACKEND=wasm|native, or setBackend() (the CLI's --backend).
import type { Backend, BackendName } from './backend.js';
import { createWasmBackend } from './wasm/backend.js';
import { createNativeBackend } from './native/backend.js';

let current: Backend | undefined;
let warnedFallback = false;

function create(name: BackendName): Backend {
  if (name === 'wasm') return createWasmBackend();
  const native = createNativeBackend();
  if (native.ok) return native.backend;
  if (!warnedFallback) {
    warnedFallback = true;
    process.emitWarning(`supra: native backend unavailable (${native.reason}); using wasm`);
  }
  return createWasmBackend();
}

export function parseBackendName(value: string, source: string): BackendName {
  if (value === 'wasm' || value === 'native') return value;
  throw new Error(`supra: ${source} must be "wasm" or "native", got "${value}"`);
}

/** The backend in use, chosen on first call from SUPRA_BACKEND (default wasm). */
export function getBackend(): Backend {
  if (!current) {
    const env = process.env.SUPRA_BACKEND;
    current = create(env ? parseBackendName(env, 'SUPRA_BACKEND') : 'wasm');
  }
  return current;
}

export function setBackend(name: BackendName): Backend {
  current = create(name);
  return current;
}
