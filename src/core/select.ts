// Which backend computes: SUPRA_BACKEND=wasm|native, or setBackend() (the CLI's --backend); by default
// native where the OpenBLAS add-on was built and loads (training ~1.8×, decoding ~1.3× the wasm speed on
// the bench machine, `npm run bench`), else wasm.
import type { Backend, BackendName } from './backend.js';
import type { WeightPlace } from './weights.js';
import { createWasmBackend } from './wasm/backend.js';
import { createNativeBackend } from './native/backend.js';
import { envVar, warn } from './host.js';

let current: Backend | undefined;
let warnedFallback = false;

function create(name: BackendName): Backend {
  if (name === 'wasm') return createWasmBackend();
  const native = createNativeBackend();
  if (native.ok) return native.backend;
  if (!warnedFallback) {
    warnedFallback = true;
    warn(`supra: native backend unavailable (${native.reason}); using wasm`);
  }
  return createWasmBackend();
}

export function parseBackendName(value: string, source: string): BackendName {
  if (value === 'wasm' || value === 'native') return value;
  throw new Error(`supra: ${source} must be "wasm" or "native", got "${value}"`);
}

/** The faster backend this machine has: native when the add-on loads, else wasm (no warning: nobody asked). */
function createDefault(): Backend {
  const native = createNativeBackend();
  return native.ok ? native.backend : createWasmBackend();
}

/** The backend in use, chosen on first call from SUPRA_BACKEND, else the default (createDefault). */
export function getBackend(): Backend {
  if (!current) {
    const env = envVar('SUPRA_BACKEND');
    current = env ? create(parseBackendName(env, 'SUPRA_BACKEND')) : createDefault();
  }
  return current;
}

export function setBackend(name: BackendName): Backend {
  current = create(name);
  return current;
}

/**
 * Where models put their matrices by default: outside the arena where the backend's products read them
 * there (native: no 4 GiB ceiling), else in the arena.
 */
export function defaultWeightPlace(): WeightPlace {
  return getBackend().heapWeights ? 'heap' : 'arena';
}
