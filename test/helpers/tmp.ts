// Scratch folders for tests: one temporary root per test file, removed when the process exits, and fresh
// numbered sub-folders in it so cases never see each other's files.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A new folder under the OS temp dir named `<prefix>XXXXXX`, deleted (recursively) at process exit. */
export function tempRoot(prefix: string): string {
  const root = mkdtempSync(join(tmpdir(), prefix));
  process.on('exit', () => rmSync(root, { recursive: true, force: true }));
  return root;
}

/** A function that makes a new empty folder `<root>/<tag><n>` on every call (n = 0, 1, 2, ...). */
export function freshDirs(root: string, tag = 'd'): () => string {
  let counter = 0;
  return () => {
    const dir = join(root, `${tag}${counter++}`);
    mkdirSync(dir, { recursive: true });
    return dir;
  };
}
