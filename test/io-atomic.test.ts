// The one atomic write (io/atomic.ts): folders appear complete or not at all, a folder being replaced is
// never missing, and failures leave no temporary behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { emptyTempFolder, renameFolderIntoPlace, writeFileAtomic, writeFolderAtomic } from '../src/io/atomic.js';
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
