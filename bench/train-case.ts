// One case of the training benchmark (bench/train.ts), in a process of its own so that its peak RSS is its
// own: `node dist/bench/train-case.js '<TrainJob as JSON>'` prints one line, TRAIN_RESULT and the figures.
import { runTrainJob, type TrainJob } from '../src/bench/train-step.js';

try {
  const job = JSON.parse(process.argv[2] ?? '') as TrainJob;
  console.log(`TRAIN_RESULT ${JSON.stringify(runTrainJob(job))}`);
} catch (e) {
  console.error((e as Error).stack ?? String(e));
  process.exitCode = 1;
}
