// Files and folders are written to a temporary name, synced, renamed into place and their folder synced,
// so a crash or a kill leaves either the old file or the complete new one under the real name, never a
// half-written one; a failed write removes its temporary. This is the one place that does it: whole files
// (writeFileAtomic), files written in pieces (AtomicFile: safetensors, zip, the token cache, the embedded
// corpus) and folders (models, training checkpoints).
import { nodeBuiltin } from '../core/host.js';
import { closeSync, dirname, existsSync, join, openSync, relative, statSync } from './files.js';

// Writing is Node's (a browser downloads bytes instead: encodeSafetensors, stateToBytes).
const fs = (): typeof import('node:fs') => nodeBuiltin('fs', 'writing files');

/** Largest single write handed to the OS (Linux writes at most ~2 GiB per call anyway). */
const MAX_WRITE_BYTES = 1 << 30;

/**
 * The temporary name a file is written under before it is renamed to `path`: `<path>.<tag>`, beside it
 * (a rename is atomic only within one folder). The default tag, tmp-<pid>, is what the stale-temporary
 * cleanup of train/checkpoint.ts recognises; the token cache uses tmp-<pid>-<time> (see its TEMP_FILE).
 */
export function tempPathFor(path: string, tag = `tmp-${process.pid}`): string {
  return `${path}.${tag}`;
}

/**
 * The temporary name for writing `path`, with `path`'s folder created: outputs may go to a new folder.
 * A `path` that is a folder is refused here, before any work is written (the rename would fail after).
 */
export function newTempPath(path: string, tag?: string): string {
  if (existsSync(path) && statSync(path).isDirectory()) throw new Error(`supra: ${path}: is a folder; give a file name to write`);
  fs().mkdirSync(dirname(path), { recursive: true });
  return tempPathFor(path, tag);
}

export interface AtomicFileOptions {
  /** The temporary name's tag (see tempPathFor); default tmp-<pid>. */
  tempTag?: string;
}

/**
 * A file written in pieces under a temporary name beside `path` that becomes `path` only on commit()
 * (fsync, close, rename, fsync of the folder); until then `path` keeps its old content, if any. abort()
 * closes and removes the temporary; it is best effort, never throws, and does nothing once the file is
 * committed or aborted, so it can sit in every catch and signal handler. A failed commit removes the
 * temporary itself. The file is opened for reading too (the token cache reads back what it wrote).
 */
export class AtomicFile {
  private openFd: number | null;
  private state: 'open' | 'committed' | 'aborted' = 'open';

  private constructor(
    readonly path: string,
    readonly tempPath: string,
    fd: number,
  ) {
    this.openFd = fd;
  }

  /** Open a fresh temporary for `path` (its folder created; a folder at `path` refused, see newTempPath). */
  static create(path: string, options: AtomicFileOptions = {}): AtomicFile {
    const tempPath = newTempPath(path, options.tempTag);
    return new AtomicFile(path, tempPath, openSync(tempPath, 'w+'));
  }

  /** The temporary's descriptor, for reads and truncation; writes go through write(). */
  get fd(): number {
    if (this.openFd === null) throw new Error(`supra: ${this.path}: already ${this.state === 'committed' ? 'committed' : 'aborted'}`);
    return this.openFd;
  }

  /**
   * Write all of `data` (a string as UTF-8) at `position`, or at the current file position when none is
   * given (then consecutive writes append).
   */
  write(data: Uint8Array | string, position?: number): void {
    const fd = this.fd;
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let done = 0;
    while (done < bytes.length) {
      const want = Math.min(bytes.length - done, MAX_WRITE_BYTES);
      done += position === undefined ? fs().writeSync(fd, bytes, done, want) : fs().writeSync(fd, bytes, done, want, position + done);
    }
  }

  /** Make the written bytes `path`: fsync, close, rename over `path`, fsync the folder. */
  commit(): void {
    const fd = this.fd;
    this.openFd = null;
    try {
      try {
        fs().fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      fs().renameSync(this.tempPath, this.path);
    } catch (e) {
      this.state = 'aborted';
      removeQuietly(this.tempPath);
      throw e;
    }
    this.state = 'committed';
    syncDir(dirname(this.path));
  }

  /** Give up: close and remove the temporary; `path` is left as it was. */
  abort(): void {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    if (this.openFd !== null) {
      try {
        closeSync(this.openFd);
      } catch {
        // already closed; removing the temporary is what matters
      }
      this.openFd = null;
    }
    removeQuietly(this.tempPath);
  }
}

/** Remove a temporary file, if there; an error here must not hide the one that led to it. */
function removeQuietly(path: string): void {
  try {
    fs().rmSync(path, { force: true });
  } catch {
    // best effort: the stale-temporary cleanups remove what is left
  }
}

/** fsync one file (its data reaches the disk before a rename makes it visible). */
export function syncFile(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fs().fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Write text or bytes to `path` atomically (an AtomicFile written in one piece). When the write fails (a
 * full disk) the temp file is removed, so nothing partial stays behind and `path` keeps its old content.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, options: AtomicFileOptions = {}): void {
  const file = AtomicFile.create(path, options);
  try {
    file.write(data);
    file.commit();
  } catch (e) {
    file.abort();
    throw e;
  }
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
    fs().fsyncSync(fd);
  } catch {
    // some platforms/filesystems refuse fsync on directories; the rename itself is still atomic
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

/** An empty folder at `tmp` to write into, whatever a killed earlier write left there removed first. */
export function emptyTempFolder(tmp: string): void {
  fs().rmSync(tmp, { recursive: true, force: true });
  fs().mkdirSync(tmp, { recursive: true });
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
    fs().renameSync(dest, trash);
    fs().renameSync(tmp, dest);
    syncDir(parent);
    fs().rmSync(trash, { recursive: true, force: true });
  } else {
    fs().renameSync(tmp, dest);
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
    if (fs().readdirSync(dir).length > 0) throw new Error(`supra: ${dir}: already exists and is not empty; choose a new output folder`);
  }
  const tmp = tempPathFor(dir);
  emptyTempFolder(tmp);
  let files: string[];
  try {
    files = fill(tmp);
    if (existsSync(dir)) fs().rmdirSync(dir); // the empty folder the rename replaces (nothing to keep aside)
    renameFolderIntoPlace(tmp, dir);
  } catch (e) {
    fs().rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return files.map((f) => join(dir, relative(tmp, f)));
}
