// Files and folders are written to a temporary name, synced, renamed into place and their folder synced,
// so a crash or a kill leaves either the old file or the complete new one under the real name, never a
// half-written one; a failed write removes its temporary. Whole files and folders (models, training
// checkpoints) go through the helpers here; the streaming writers (safetensors, zip) take their
// temporary name here and sync and rename as they finish.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

/** The temporary name a file is written under before it is renamed to `path`. */
export function tempPathFor(path: string): string {
  return `${path}.tmp-${process.pid}`;
}

/**
 * The temporary name for writing `path`, with `path`'s folder created: outputs may go to a new folder.
 * A `path` that is a folder is refused here, before any work is written (the rename would fail after).
 */
export function newTempPath(path: string): string {
  if (existsSync(path) && statSync(path).isDirectory()) throw new Error(`supra: ${path}: is a folder; give a file name to write`);
  mkdirSync(dirname(path), { recursive: true });
  return tempPathFor(path);
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
 * Write text or bytes to `path` atomically (temp file, fsync, rename, fsync of the folder). When the
 * write fails (a full disk) the temp file is removed, so nothing partial stays behind and `path` keeps
 * its old content.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = newTempPath(path);
  try {
    writeFileSync(tmp, data);
    syncFile(tmp);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  syncDir(dirname(path));
}

/** Write a value as indented JSON to `path` atomically. */
export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
}

/** fsync a directory so a rename survives a power cut (not supported everywhere: best effort). */
export function syncDir(dir: string): void {
  let fd = -1;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // some platforms/filesystems refuse fsync on directories; the rename itself is still atomic
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

/** An empty folder at `tmp` to write into, whatever a killed earlier write left there removed first. */
export function emptyTempFolder(tmp: string): void {
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
}

/**
 * Rename the finished folder `tmp` to `dest`: its entries are synced first and the parent folder after,
 * so the rename survives a power cut. A folder already at `dest` is moved aside (to a .trash- name beside
 * it) before the rename and removed after, so `dest` always names a complete folder, the old or the new.
 */
export function renameFolderIntoPlace(tmp: string, dest: string): void {
  syncDir(tmp);
  const parent = dirname(dest);
  if (existsSync(dest)) {
    const trash = join(parent, `.trash-${Date.now()}-${process.pid}`);
    renameSync(dest, trash);
    renameSync(tmp, dest);
    syncDir(parent);
    rmSync(trash, { recursive: true, force: true });
  } else {
    renameSync(tmp, dest);
  }
  syncDir(parent);
}

/**
 * Create the folder `dir` with everything `fill` writes into the temporary folder it is given, renamed
 * into place only once `fill` has returned: a failure (or a kill) leaves no `dir`, and the temporary
 * folder is removed. `dir` must not exist or be an empty folder: a model is never written over another.
 * `fill` returns the files it wrote; they are returned under their final names.
 */
export function writeFolderAtomic(dir: string, fill: (tmp: string) => string[]): string[] {
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new Error(`supra: ${dir}: exists and is not a folder`);
    if (readdirSync(dir).length > 0) throw new Error(`supra: ${dir}: already exists and is not empty; choose a new output folder`);
  }
  const tmp = tempPathFor(dir);
  emptyTempFolder(tmp);
  let files: string[];
  try {
    files = fill(tmp);
    if (existsSync(dir)) rmdirSync(dir); // the empty folder the rename replaces (nothing to keep aside)
    renameFolderIntoPlace(tmp, dir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return files.map((f) => join(dir, relative(tmp, f)));
}
