// A training run in a child process, for the tests that kill or interrupt it. argv[2] is a JSON object:
// TrainOptions fields (plus "supra": a SUPRA tiny model; "pauseSave": a save to pause, as
// helpers/save-faults.ts pauseSaveAt takes it) on the tiny in-memory data. Prints "RESULT <json>" on
// success; exits 130 when interrupted, as the CLI does.
import { train, type TrainOptions } from '../../src/train/trainer.js';
import { pauseSaveAt } from './save-faults.js';
import { MemoryBatches, repeatedText, tinyConfig } from './train-data.js';

const args = JSON.parse(process.argv[2] ?? '{}') as Partial<TrainOptions> & { supra?: boolean; pauseSave?: string };
const { supra, pauseSave, ...rest } = args;
const hooks = pauseSave ? { duringSave: pauseSaveAt(pauseSave) } : undefined;
const data = new MemoryBatches(repeatedText(4000, 23, 32), repeatedText(600, 23, 32), 16, 0);
const result = await train({ init: tinyConfig({ supra }), data, out: 'unset', steps: 6, batchSize: 2, lr: 1e-2, evalSequences: 0, handleSigint: true, ...rest, hooks });
console.log(`RESULT ${JSON.stringify({ status: result.status, step: result.step, losses: result.losses })}`);
if (result.status === 'interrupted') process.exitCode = 130;
