// Turning `--data` arguments into a sorted list of files: plain files, folders (walked recursively) and
// glob patterns (Node 20 has no fs.glob, so a small matcher lives here).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';

/** The formats the readers understand, by file extension. */
export const DATA_EXTENSIONS = ['.txt', '.jsonl', '.parquet'] as const;
export type DataFormat = 'txt' | 'jsonl' | 'parquet';

/** The built-in corpus (src/train/data/corpus.ts) as a `--data` input. */
export const EMBEDDED_INPUT = '@embedded';

export function formatOf(path: string): DataFormat | null {
  const lower = path.toLowerCase();
  if (lower.endsWith('.txt')) return 'txt';
  if (lower.endsWith('.jsonl')) return 'jsonl';
  if (lower.endsWith('.parquet')) return 'parquet';
  return null;
}

export function isGlob(pattern: string): boolean {
  return /[*?[]/.test(pattern);
}

/**
 * A glob as a regular expression over '/'-separated paths: `*` matches within one path segment, `?` one
 * character, `[abc]`/`[a-z]`/`[!a]` a character class, and a `**` segment any number of folders.
 */
export function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        // `**/` matches zero or more folders; a trailing `**` matches everything below
        const atSegmentStart = i === 0 || pattern[i - 1] === '/';
        if (atSegmentStart && pattern[i + 2] === '/') {
          re += '(?:[^/]*/)*';
          i += 2;
          continue;
        }
        if (atSegmentStart && i + 2 === pattern.length) {
          re += '.*';
          i += 1;
          continue;
        }
      }
      re += '[^/]*';
    } else if (c === '?') {
      re += '[^/]';
    } else if (c === '[') {
      const close = pattern.indexOf(']', i + 2);
      if (close < 0) {
        re += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, close);
      if (body.startsWith('!')) body = '^' + body.slice(1);
      re += '[' + body.replace(/\\/g, '\\\\') + ']';
      i = close;
    } else {
      re += c.replace(/[.+^${}()|\\\]]/g, '\\$&');
    }
  }
  return new RegExp('^' + re + '$');
}

/** Every file below `dir` (hidden entries skipped), as paths relative to it with '/' separators, sorted. */
function walk(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  const entries = readdirSync(join(dir, prefix), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const rel = prefix === '' ? e.name : `${prefix}/${e.name}`;
    if (e.isDirectory()) out.push(...walk(dir, rel));
    else if (e.isFile() || (e.isSymbolicLink() && statSync(join(dir, rel)).isFile())) out.push(rel);
  }
  return out;
}

/** Files matching a glob, absolute and sorted. The walk starts at the longest folder prefix without wildcards. */
function expandGlob(pattern: string): string[] {
  const normalized = pattern.split(sep).join('/');
  const segments = normalized.split('/');
  const firstWild = segments.findIndex(isGlob);
  const base = segments.slice(0, firstWild).join('/') || (normalized.startsWith('/') ? '/' : '.');
  const rest = segments.slice(firstWild).join('/');
  if (!existsSync(base) || !statSync(base).isDirectory()) return [];
  const re = globToRegExp(rest);
  return walk(base).filter((rel) => re.test(rel)).map((rel) => resolve(base, rel));
}

export interface ExpandedInputs {
  /** Data files, absolute paths, in the order read: inputs in the order given, each expanded and sorted. */
  files: string[];
  /** Whether the built-in corpus is one of the inputs (`@embedded`); it is read after `files`. */
  embedded: boolean;
}

/**
 * Resolve `--data` inputs. A file must have a known extension (.txt, .jsonl, .parquet); a folder
 * contributes every such file below it (others ignored, hidden entries skipped); a glob must match at
 * least one file and every match must have a known extension. An input matching nothing is an error.
 * A file named twice is read once.
 */
export function expandInputs(inputs: readonly string[]): ExpandedInputs {
  if (inputs.length === 0) throw new Error('supra: no training data given (expected files, folders, globs or @embedded)');
  const files: string[] = [];
  const seen = new Set<string>();
  let embedded = false;
  const add = (path: string, input: string) => {
    if (formatOf(path) === null) {
      throw new Error(`supra: ${path}${path === input ? '' : ` (from '${input}')`}: unknown data format; expected ${DATA_EXTENSIONS.join(', ')}`);
    }
    if (!seen.has(path)) {
      seen.add(path);
      files.push(path);
    }
  };
  for (const input of inputs) {
    if (input === EMBEDDED_INPUT) {
      embedded = true;
      continue;
    }
    if (existsSync(input)) {
      const abs = resolve(input);
      if (statSync(abs).isDirectory()) {
        const found = walk(abs).filter((rel) => formatOf(rel) !== null).map((rel) => resolve(abs, rel));
        if (found.length === 0) throw new Error(`supra: ${input}: folder has no ${DATA_EXTENSIONS.join(', ')} files`);
        for (const f of found) add(f, input);
      } else {
        add(abs, input);
      }
    } else if (isGlob(input)) {
      const found = expandGlob(input);
      if (found.length === 0) throw new Error(`supra: ${input}: pattern matches no files`);
      for (const f of found) add(f, input);
    } else {
      throw new Error(`supra: ${input}: no such file or folder`);
    }
  }
  return { files, embedded };
}
