// Where the reference fixture lives: test/fixtures in the repository, or SUPRA_FIXTURES (another copy, e.g. ../shared/fixtures).
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..'); // dist/test/helpers -> repo

export const fixturesDir = process.env.SUPRA_FIXTURES ?? join(repoRoot, 'test', 'fixtures');
export const gqaDir = join(fixturesDir, 'gqa');
/** Snapshots written by earlier snapshot formats (test/fixtures-snapshot, always in the repository). */
export const snapshotFixturesDir = join(repoRoot, 'test', 'fixtures-snapshot');

if (!existsSync(gqaDir)) {
  throw new Error(`supra tests: reference fixture not found at ${gqaDir} (set SUPRA_FIXTURES)`);
}

/** max |a − b| */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}
