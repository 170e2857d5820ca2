// Files are written to a temporary name, synced and renamed into place, so a crash or a kill leaves
// either the old file or the complete new one under the real name, never a half-written file.
import { closeSync, fsyncSync, openSync, renameSync, writeFileSync } from 'node:fs';

/** The temporary name a file is written under before it is renamed to `path`. */
export function tempPathFor(path: string): string {
  return `${path}.tmp-${process.pid}`;
}

/** Write text or bytes to `path` atomically (temp file, fsync, rename). */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = tempPathFor(path);
  writeFileSync(tmp, data);
  const fd = openSync(tmp, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** Write a value as indented JSON to `path` atomically. */
export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
}
