// Public API of supra.
export { Tensor } from './core/tensor.js';
export { getBackend, setBackend } from './core/select.js';
export type { Backend, BackendName } from './core/backend.js';
