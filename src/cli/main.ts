#!/usr/bin/env node
// The supra command line: one subcommand per job, each in its own module.
import { UsageError } from './args.js';
import { setBackend, parseBackendName } from '../core/select.js';
import { commands } from './commands.js';

/** The one option every command takes (pulled out of argv by takeBackend before the command parses). */
const BACKEND_HELP =
  '--backend wasm|native  compute backend: native (default where the OpenBLAS add-on is built) or wasm';

async function usage(): Promise<string> {
  const lines = ['usage: supra <command> [options]', '', 'commands:'];
  const width = Math.max(...Object.keys(commands).map((name) => name.length));
  for (const [name, load] of Object.entries(commands)) lines.push(`  ${name.padEnd(width)}  ${(await load()).summary}`);
  lines.push('', `every command: ${BACKEND_HELP}`);
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
    console.log(`${command.summary}\n\nusage: ${command.usage}\n\nevery command:\n  ${BACKEND_HELP}`);
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
