// A pool thread: instantiates the kernel module on the arena's shared memory and runs chunks of the
// jobs the caller posts in the control block (see pool.ts), until its pool is replaced.
import { isNode, nodeBuiltin } from '../host.js';
import { instantiateKernels } from './module.js';
import { controlViews, currentEpoch, readJob, runChunks, waitForJob } from './pool.js';

interface PoolWorkerData {
  memory: WebAssembly.Memory;
  module: WebAssembly.Module;
  tid: number;
  work: number;
  epoch: number;
  seenGen: number;
  spinMs: number;
}

function serve(data: PoolWorkerData): void {
  const ex = instantiateKernels(data.module, data.memory);
  const control = controlViews(data.memory);
  let seen = data.seenGen;
  for (;;) {
    const gen = waitForJob(control, seen, data.spinMs);
    if (currentEpoch(control) !== data.epoch) break;
    if (gen === seen) continue; // woken without a new job
    seen = gen;
    const job = readJob(control);
    runChunks(control, ex, gen, job.args, ex[job.kernel] as unknown as (...a: number[]) => number | undefined, data.tid, data.work);
  }
  if (!isNode) close(); // a Web Worker does not end when its code does
}

// Node passes the data at start; a browser posts it as the first message
if (isNode) serve(nodeBuiltin('worker_threads').workerData as PoolWorkerData);
else addEventListener('message', (e) => serve((e as MessageEvent<PoolWorkerData>).data), { once: true });
