// Runs every compiled test file under node's test runner, once per backend.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

function testFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? testFiles(join(dir, e.name)) : e.name.endsWith('.test.js') ? [join(dir, e.name)] : [],
  );
}

const only = process.argv.slice(2);
const files = testFiles(join(process.env.SUPRA_DIST ?? 'dist', 'test')).filter((f) => only.length === 0 || only.some((o) => f.includes(o))).sort();
let failed = false;
for (const backend of (process.env.SUPRA_TEST_BACKENDS ?? 'wasm,native').split(',')) {
  console.log(`\n# supra tests on backend: ${backend}`);
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...files], {
    stdio: 'inherit',
    // In CI (CI=true, where .ci/run installs OpenBLAS) a native backend that failed to build is a failure.
    env: { ...process.env, SUPRA_BACKEND: backend, SUPRA_REQUIRE_NATIVE: process.env.SUPRA_REQUIRE_NATIVE ?? (process.env.CI ? '1' : '') },
  });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
