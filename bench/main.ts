// npm run bench: the speed figures of supra on this machine, for each backend: `supra bench` (src/cli/bench.ts,
// src/bench/report.ts) with the load test of `supra serve` on by default.
//   node dist/bench/main.js [--quick] [--no-serve] [any other option of supra bench: --json FILE --out DIR ...]
import { command } from '../src/cli/bench.js';

const argv = process.argv.slice(2);
if (argv.includes('--help') || argv.includes('-h')) {
  console.log(`usage: npm run bench -- [--no-serve] [options]; the options are those of\n${command.usage}`);
  process.exit(0);
}
const serve = !argv.includes('--no-serve');
try {
  await command.run([...argv.filter((a) => a !== '--no-serve' && a !== '--serve'), ...(serve ? ['--serve'] : [])]);
} catch (e) {
  console.error(`npm run bench: ${(e as Error).message}`);
  process.exitCode = 1;
}
