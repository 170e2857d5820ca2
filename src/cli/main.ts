#!/usr/bin/env node
// The supra command line: one subcommand per job, each in its own module.
import { UsageError } from './args.js';
import { setBackend, parseBackendName } from '../core/select.js';

interface Command {
  summary: string;
  usage: string;
  run(argv: string[]): Promise<void>;
}

const commands: Record<string, () => Promise<Command>> = {
  demo: async () => (await import('./demo.js')).command,
  linearize: async () => (await import('./linearize.js')).command,
  convert: async () => (await import('./convert.js')).command,
  info: async () => (await import('./info.js')).command,
  train: async () => (await import('./train.js')).command,
  probe: async () => (await import('./probe.js')).command,
  analyze: async () => (await import('./analyze.js')).command,
  serve: async () => (await import('./serve.js')).command,
  eval: async () => (await import('./eval.js')).command,
  generate: async () => (await import('./generate.js')).command,
  bench: async () => (await import('./bench.js')).command,
  experiments: async () => (await import('./experiments.js')).command,
};

/** Options every command takes (taken from argv here, before the command parses its own). */
const GLOBAL_OPTIONS = '--backend wasm|native (default native where the OpenBLAS add-on is built, else wasm), --help';

async function usage(): Promise<string> {
  const lines = ['usage: supra <command> [options]', `every command takes ${GLOBAL_OPTIONS}`, '', 'commands:'];
  for (const [name, load] of Object.entries(commands)) lines.push(`  ${name.padEnd(10)} ${(await load()).summary}`);
  lines.push('', 'supra <command> --help shows the options of one command.');
  return lines.join('\n');
}

/** Pull --backend out of argv (it applies to every command). */
function takeBackend(argv: string[]): string[] {
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--backend' || a.startsWith('--backend=')) {
      const value = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (value === undefined) throw new UsageError('--backend needs a value: wasm or native');
      setBackend(parseBackendName(value, '--backend'));
    } else rest.push(a);
  }
  return rest;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(await usage());
    return name ? 0 : 2;
  }
  if (name === '--version') {
    const { readFileSync } = await import('node:fs');
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
    console.log(pkg.version);
    return 0;
  }
  const load = commands[name];
  if (!load) {
    console.error(`supra: unknown command "${name}"\n\n${await usage()}`);
    return 2;
  }
  const command = await load();
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(`usage: ${command.usage}\n\n${command.summary}\n\nevery command also takes ${GLOBAL_OPTIONS}`);
    return 0;
  }
  await command.run(takeBackend(rest));
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const e = err as Error;
    console.error(e instanceof UsageError ? `supra: ${e.message}` : `supra: error: ${e.message.replace(/^supra: /, '')}`);
    if (process.env.SUPRA_DEBUG) console.error(e.stack);
    process.exitCode = e instanceof UsageError ? 2 : 1;
  },
);
