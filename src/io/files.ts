// The file access of src/io, for Node and browsers alike: under Node each call is node:fs / node:path
// (reached through core/host.ts, so a browser can load this module); in a browser, and in Node for
// folders given as bytes, files come from folders mounted in memory (mountFolder: supra/web fetches a
// model folder or takes the files a user picked, mounts them, and the same readers load them, with the
// same checks and messages). Writing is Node's only.
import type * as Fs from 'node:fs';
import { isNode, nodeBuiltin } from '../core/host.js';

const fs = (): typeof Fs => nodeBuiltin('fs', 'reading or writing files by path');

// ---------------------------------------------------------------- paths

/** path.join under Node; in a browser, '/'-joined (a folder may be a URL: its '//' is kept). */
export function join(...parts: string[]): string {
  if (isNode) return nodeBuiltin('path').join(...parts);
  const joined = parts.filter((p) => p !== '').join('/');
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(joined)?.[0] ?? '';
  const segments: string[] = [];
  for (const s of joined.slice(scheme.length).split('/')) {
    if (s === '.' || (s === '' && segments.length > 0)) continue;
    if (s === '..' && segments.length > 0 && segments[segments.length - 1] !== '..') segments.pop();
    else segments.push(s);
  }
  return scheme + segments.join('/');
}

export function dirname(path: string): string {
  if (isNode) return nodeBuiltin('path').dirname(path);
  const i = path.replace(/\/+$/, '').lastIndexOf('/');
  return i <= 0 ? (path.startsWith('/') ? '/' : '.') : path.slice(0, i);
}

export function isAbsolute(path: string): boolean {
  return isNode ? nodeBuiltin('path').isAbsolute(path) : path.startsWith('/') || /^[a-z][a-z0-9+.-]*:/i.test(path);
}

export function resolve(...parts: string[]): string {
  return isNode ? nodeBuiltin('path').resolve(...parts) : join(...parts);
}

export function relative(from: string, to: string): string {
  return nodeBuiltin('path', 'relative paths').relative(from, to);
}

// ---------------------------------------------------------------- folders in memory

const mountedFiles = new Map<string, Uint8Array>();
const mountedDirs = new Map<string, string[]>(); // folder → the paths of its files

/**
 * Make `files` (name → bytes) readable as the files of folder `dir`, replacing what was mounted there.
 * Names may contain '/' (a shard in a subfolder). Returns dir.
 */
export function mountFolder(dir: string, files: ReadonlyMap<string, Uint8Array>): string {
  unmountFolder(dir);
  const paths: string[] = [];
  for (const [name, bytes] of files) {
    const path = join(dir, name);
    mountedFiles.set(path, bytes);
    paths.push(path);
  }
  mountedDirs.set(join(dir), paths);
  return dir;
}

/** Forget a mounted folder (its bytes can then be collected). */
export function unmountFolder(dir: string): void {
  for (const p of mountedDirs.get(join(dir)) ?? []) mountedFiles.delete(p);
  mountedDirs.delete(join(dir));
}

// ---------------------------------------------------------------- reading

export function existsSync(path: string): boolean {
  if (mountedFiles.has(path) || mountedDirs.has(join(path))) return true;
  return isNode && fs().existsSync(path);
}

export interface FileStat {
  size: number;
  isFile(): boolean;
  isDirectory(): boolean;
}

export function statSync(path: string): FileStat {
  const m = mountedFiles.get(path);
  if (m) return { size: m.length, isFile: () => true, isDirectory: () => false };
  if (mountedDirs.has(join(path))) return { size: 0, isFile: () => false, isDirectory: () => true };
  if (!isNode) throw new Error(`supra: ${path}: not found`);
  return fs().statSync(path);
}

export function readFileSync(path: string, encoding: 'utf8'): string {
  const m = mountedFiles.get(path);
  if (m) return new TextDecoder().decode(m);
  if (!isNode) throw new Error(`supra: ${path}: not found`);
  return fs().readFileSync(path, encoding);
}

// Descriptors of mounted files start at 2^30, far above any Node gives (readers mark a closed file with -1).
const openMounted = new Map<number, Uint8Array>();
let nextFd = 2 ** 30;

export function openSync(path: string, flags: string): number {
  const m = mountedFiles.get(path);
  if (m) {
    const fd = nextFd++;
    openMounted.set(fd, m);
    return fd;
  }
  if (!isNode) throw new Error(`supra: ${path}: not found`);
  return fs().openSync(path, flags);
}

export function fstatSync(fd: number): FileStat {
  const m = openMounted.get(fd);
  if (m) return { size: m.length, isFile: () => true, isDirectory: () => false };
  return fs().fstatSync(fd);
}

/** Like fs.readSync(fd, buffer, offset, length, position): bytes read, 0 at the end. */
export function readSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number {
  const m = openMounted.get(fd);
  if (!m) return fs().readSync(fd, buffer, offset, length, position);
  const n = Math.max(0, Math.min(length, m.length - position));
  buffer.set(m.subarray(position, position + n), offset);
  return n;
}

export function closeSync(fd: number): void {
  if (openMounted.delete(fd)) return;
  fs().closeSync(fd);
}

// ---------------------------------------------------------------- writing (Node)

export const unlinkSync: typeof Fs.unlinkSync = (path) => fs().unlinkSync(path);
