// Runs every compiled test file under node's test runner, once per backend.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

function testFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? testFiles(join(dir, e.name)) : e.name.endsWith('.test.js') ? [join(dir, e.name)] : [],
  );
}

const only = process.argv.slice(2);
const files = testFiles(join(process.env.SUPRA_DIST ?? 'dist', 'test')).filter((f) => only.length === 0 || only.some((o) => f.includes(o))).sort();
// On an AVX-512 CPU the native add-on's kernel tests run a second time with its kernels capped at AVX2
// (SUPRA_NATIVE_ISA=avx2, native/kernels.cc), the kernels most desktop CPUs run, so they are checked there too.
const AVX2_PASS_FILES = ['native.test.js', 'int8.test.js'];
const avx512 = (() => {
  try {
    return /^flags\s*:.*\savx512f(\s|$)/m.test(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return false;
  }
})();

const backends = (process.env.SUPRA_TEST_BACKENDS ?? 'wasm,native').split(',');
const passes = backends.map((backend) => ({ backend, files, env: {}, name: backend }));
const avx2Files = files.filter((f) => AVX2_PASS_FILES.some((name) => f.endsWith(name)));
if (avx512 && backends.includes('native') && avx2Files.length > 0) {
  passes.push({ backend: 'native', files: avx2Files, env: { SUPRA_NATIVE_ISA: 'avx2' }, name: 'native, the add-on\'s kernels capped at AVX2 (SUPRA_NATIVE_ISA=avx2)' });
}
let failed = false;
for (const pass of passes) {
  console.log(`\n# supra tests on backend: ${pass.name}`);
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...pass.files], {
    stdio: 'inherit',
    // In CI (CI=true, where .ci/run installs OpenBLAS) a native backend that failed to build is a failure.
    env: { ...process.env, ...pass.env, SUPRA_BACKEND: pass.backend, SUPRA_REQUIRE_NATIVE: process.env.SUPRA_REQUIRE_NATIVE ?? (process.env.CI ? '1' : '') },
  });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
