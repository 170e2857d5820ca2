// Files are written to a temporary name, synced and renamed into place, so a crash or a kill leaves
// either the old file or the complete new one under the real name, never a half-written file.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';

/** The temporary name a file is written under before it is renamed to `path`. */
export function tempPathFor(path: string): string {
  return `${path}.tmp-${process.pid}`;
}

/** fsync one file (its data reaches the disk before a rename makes it visible). */
export function syncFile(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Write text or bytes to `path` atomically (temp file, fsync, rename). When the write fails (a full
 * disk) the temp file is removed, so nothing partial stays behind and `path` keeps its old content.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = tempPathFor(path);
  try {
    writeFileSync(tmp, data);
    syncFile(tmp);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Write a value as indented JSON to `path` atomically. */
export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
}
