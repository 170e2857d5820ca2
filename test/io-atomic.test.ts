// The one atomic write (io/atomic.ts): files and folders appear complete or not at all, a folder being
// replaced is never missing, failures leave no temporary behind, and no other source file renames or
// fsyncs by itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdirSync, readdirSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AtomicFile, emptyTempFolder, renameFolderIntoPlace, writeFileAtomic, writeFolderAtomic } from '../src/io/atomic.js';
import { errorOf } from './helpers/errors.js';
import { freshDirs, tempRoot } from './helpers/tmp.js';

const fresh = freshDirs(tempRoot('supra-io-atomic-'));

test('renameFolderIntoPlace replaces an existing folder and leaves no trash; into a new name it is a rename', () => {
  const parent = fresh();
  const dest = join(parent, 'final');
  mkdirSync(dest);
  writeFileSync(join(dest, 'old.txt'), 'old');
  const tmp = join(parent, '.tmp-final-1');
  emptyTempFolder(tmp);
  writeFileSync(join(tmp, 'new.txt'), 'new');
  renameFolderIntoPlace(tmp, dest);
  assert.deepEqual(readdirSync(dest), ['new.txt']);
  assert.deepEqual(readdirSync(parent), ['final']);

  const other = join(parent, 'checkpoint-2');
  emptyTempFolder(tmp);
  writeFileFolder(tmp);
  renameFolderIntoPlace(tmp, other);
  assert.equal(readFileSync(join(other, 'a.txt'), 'utf8'), 'a');
  assert.deepEqual(readdirSync(parent).sort(), ['checkpoint-2', 'final']);
});

function writeFileFolder(dir: string): string[] {
  writeFileAtomic(join(dir, 'a.txt'), 'a');
  return [join(dir, 'a.txt')];
}

test('emptyTempFolder clears what a killed write left', () => {
  const tmp = join(fresh(), '.tmp-x');
  mkdirSync(tmp);
  writeFileSync(join(tmp, 'stale'), 'x');
  emptyTempFolder(tmp);
  assert.deepEqual(readdirSync(tmp), []);
});

test('writeFolderAtomic: files under their final names, a failing fill leaves nothing, a full folder is refused', () => {
  const parent = fresh();
  const out = join(parent, 'model');
  assert.deepEqual(writeFolderAtomic(out, writeFileFolder), [join(out, 'a.txt')]);
  assert.deepEqual(readdirSync(parent), ['model']);
  assert.match(errorOf(() => writeFolderAtomic(out, writeFileFolder)), /model: already exists and is not empty/);

  const failed = join(parent, 'failed');
  mkdirSync(failed); // an empty folder is allowed, and stays as it was when the fill fails
  assert.equal(errorOf(() => writeFolderAtomic(failed, (tmp) => {
    writeFileFolder(tmp);
    throw new Error('disk full');
  })), 'disk full');
  assert.deepEqual(readdirSync(failed), []);
  assert.deepEqual(readdirSync(parent).sort(), ['failed', 'model']);
  assert.ok(!existsSync(join(parent, 'failed', 'a.txt')));
});

test('AtomicFile: commit leaves only the final file, with every piece in place; the old content is replaced', () => {
  const dir = fresh();
  const path = join(dir, 'sub', 'data.bin');
  mkdirSync(dirname(path));
  writeFileSync(path, 'old content');
  const file = AtomicFile.create(path);
  assert.equal(file.tempPath, `${path}.tmp-${process.pid}`);
  file.write('héllo ');
  file.write(new Uint8Array([0x77, 0x6f, 0x72, 0x6c, 0x64])); // "world"
  file.write('J', 0); // a positioned write replaces bytes in place
  const back = Buffer.alloc(3);
  assert.equal(readSync(file.fd, back, 0, 3, 0), 3); // the temporary can be read back
  assert.deepEqual([...back], [0x4a, 0xc3, 0xa9]); // J, then é in UTF-8
  assert.equal(readFileSync(path, 'utf8'), 'old content'); // nothing visible before commit
  file.commit();
  assert.equal(readFileSync(path, 'utf8'), 'Jéllo world');
  assert.deepEqual(readdirSync(join(dir, 'sub')), ['data.bin']);
  file.abort(); // after commit: nothing to do, the file stays
  assert.equal(readFileSync(path, 'utf8'), 'Jéllo world');
  assert.match(errorOf(() => file.write('x')), /data\.bin: already committed/);
});

test('AtomicFile: abort leaves nothing (twice is fine); a new folder is created; a folder path is refused', () => {
  const dir = fresh();
  const path = join(dir, 'new', 'out.json');
  const file = AtomicFile.create(path, { tempTag: 'tmp-1-2' });
  assert.equal(file.tempPath, `${path}.tmp-1-2`);
  file.write('{"partial": ');
  assert.ok(existsSync(file.tempPath));
  file.abort();
  file.abort();
  assert.deepEqual(readdirSync(join(dir, 'new')), []);
  assert.match(errorOf(() => file.commit()), /out\.json: already aborted/);
  assert.deepEqual(readdirSync(join(dir, 'new')), []);
  assert.match(errorOf(() => AtomicFile.create(join(dir, 'new'))), /new: is a folder; give a file name to write/);
  assert.deepEqual(readdirSync(dir), ['new']);
});

test('AtomicFile: a failure inside the write leaves the old file intact and no temporary', () => {
  const dir = fresh();
  const path = join(dir, 'model.safetensors');
  writeFileSync(path, 'the good old file');
  const file = AtomicFile.create(path);
  let failure = '';
  try {
    file.write('half of a new');
    closeSync(file.fd); // the next write fails in the middle of the file, as on a full disk
    file.write('file');
    file.commit();
  } catch (e) {
    file.abort();
    failure = (e as Error).message;
  }
  assert.match(failure, /EBADF/);
  assert.equal(readFileSync(path, 'utf8'), 'the good old file');
  assert.deepEqual(readdirSync(dir), ['model.safetensors']);

  // a rename that fails (a folder took the name after create) removes the temporary itself
  const taken = join(dir, 'taken');
  const late = AtomicFile.create(taken);
  late.write('x');
  mkdirSync(taken);
  writeFileSync(join(taken, 'inside'), 'keep');
  assert.match(errorOf(() => late.commit()), /EISDIR|ENOTEMPTY|EEXIST/);
  late.abort();
  assert.deepEqual(readdirSync(dir).sort(), ['model.safetensors', 'taken']);
  assert.deepEqual(readdirSync(taken), ['inside']);
});

test('writeFileAtomic replaces a file whole and leaves no temporary', () => {
  const dir = fresh();
  const path = join(dir, 'latest.json');
  writeFileAtomic(path, 'one');
  writeFileAtomic(path, new TextEncoder().encode('two'));
  assert.equal(readFileSync(path, 'utf8'), 'two');
  assert.deepEqual(readdirSync(dir), ['latest.json']);
});

test('only io/atomic.ts renames files into place, fsyncs them or writes a whole file in place: every other writer goes through it', () => {
  const src = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');
  const sources = (d: string): string[] =>
    readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(d, e.name)) : e.name.endsWith('.ts') ? [join(d, e.name)] : []));
  const offenders = sources(src)
    .filter((f) => relative(src, f) !== join('io', 'atomic.ts'))
    .filter((f) => /\b(?:renameSync|fsyncSync|fdatasyncSync|writeFileSync)\b|\b(?:rename|fsync|fdatasync)\s*\(/.test(readFileSync(f, 'utf8')))
    .map((f) => relative(src, f));
  assert.deepEqual(offenders, []);
});
