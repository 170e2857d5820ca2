// One case of the scale benchmarks (bench/scale.ts, bench/train.ts), in a process of its own so that its peak RSS is its
// own: `node dist/bench/scale-case.js '<ScaleJob as JSON>'` prints one line, SCALE_RESULT and the figures.
import { runScaleJob, type ScaleJob } from '../src/bench/scale.js';

try {
  const job = JSON.parse(process.argv[2] ?? '') as ScaleJob;
  console.log(`SCALE_RESULT ${JSON.stringify(runScaleJob(job))}`);
} catch (e) {
  console.error((e as Error).stack ?? String(e));
  process.exitCode = 1;
}
