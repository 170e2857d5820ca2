// npm run bench: the speed figures of supra on this machine, for each backend: `supra bench` (src/cli/bench.ts,
// src/bench/report.ts) with the load test of `supra serve` and the browser decode (when Chromium is installed)
// on by default.
//   node dist/bench/main.js [--quick] [--no-serve] [--no-browser] [any other option of supra bench: --json FILE --out DIR ...]
import { command } from '../src/cli/bench.js';

const argv = process.argv.slice(2);
if (argv.includes('--help') || argv.includes('-h')) {
  console.log(`usage: npm run bench -- [--no-serve] [--no-browser] [options]; the options are those of\n${command.usage}`);
  process.exit(0);
}
const on = (name: string): string[] => (argv.includes(`--no-${name}`) ? [] : [`--${name}`]);
const ours = new Set(['--no-serve', '--serve', '--no-browser', '--browser']);
try {
  await command.run([...argv.filter((a) => !ours.has(a)), ...on('serve'), ...on('browser')]);
} catch (e) {
  console.error(`npm run bench: ${(e as Error).message}`);
  process.exitCode = 1;
}
