// The table of supra's subcommands, each loaded on demand from its own module.
import type { Options } from './args.js';

export interface Command {
  summary: string;
  /** The synopsis and the option list, as --help prints them. */
  usage: string;
  /** Every option the command parses: the table it parses with, which its --help lists (test/cli). */
  options: Options;
  run(argv: string[]): Promise<void>;
}

export const commands: Record<string, () => Promise<Command>> = {
  demo: async () => (await import('./demo.js')).command,
  linearize: async () => (await import('./linearize.js')).command,
  convert: async () => (await import('./convert.js')).command,
  info: async () => (await import('./info.js')).command,
  train: async () => (await import('./train.js')).command,
  merge: async () => (await import('./merge.js')).command,
  probe: async () => (await import('./probe.js')).command,
  analyze: async () => (await import('./analyze.js')).command,
  serve: async () => (await import('./serve.js')).command,
  eval: async () => (await import('./eval.js')).command,
  generate: async () => (await import('./generate.js')).command,
  bench: async () => (await import('./bench.js')).command,
  experiments: async () => (await import('./experiments.js')).command,
  web: async () => (await import('./web.js')).command,
};
