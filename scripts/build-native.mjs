// Builds the native backend (native/*.cc against OpenBLAS) at `npm install`.
//
// The add-on is optional: when OpenBLAS, a C compiler, Node's headers or node-gyp are missing, or the
// build fails, this prints one line saying why and exits 0, and supra runs on wasm. Nothing is
// downloaded: node-gyp is pointed at local Node headers, and the build is skipped when there are none.
//
//   SUPRA_NO_OPENBLAS=1       behave as if OpenBLAS were not installed (the probe links a library that
//                             does not exist), to test the fallback path
//   SUPRA_SKIP_NATIVE=1       do not build at all
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'native');
const addonPath = join(nativeDir, 'build', 'Release', 'supra_native.node');

function skip(why) {
  console.log(`supra: native backend not built: ${why}; supra will use the wasm backend`);
  process.exit(0);
}

function run(cmd, args, env = process.env) {
  return spawnSync(cmd, args, { encoding: 'utf8', env, cwd: nativeDir });
}

if (process.env.SUPRA_SKIP_NATIVE === '1') skip('SUPRA_SKIP_NATIVE=1');
if (process.platform === 'win32') skip('the OpenBLAS add-on is built on Linux and macOS only');

// 1. OpenBLAS flags: pkg-config knows where Debian keeps them (openblas-pthread/), otherwise the
// default search paths.
const simulateAbsent = process.env.SUPRA_NO_OPENBLAS === '1';
let includeDirs = [];
let libs = ['-lopenblas'];
if (simulateAbsent) {
  libs = ['-lsupra_simulated_absent_openblas'];
} else {
  const pc = run('pkg-config', ['--cflags-only-I', '--libs', 'openblas']);
  if (pc.status === 0) {
    const words = pc.stdout.trim().split(/\s+/).filter(Boolean);
    includeDirs = words.filter((w) => w.startsWith('-I')).map((w) => w.slice(2));
    libs = words.filter((w) => !w.startsWith('-I'));
    // keep a non-default library directory findable at run time
    for (const w of words) if (w.startsWith('-L')) libs.push(`-Wl,-rpath,${w.slice(2)}`);
  }
}

// 2. Probe: compile and link a program that calls OpenBLAS, so a missing header or library is
// reported plainly instead of as a page of node-gyp output.
const cc = process.env.CC ?? 'cc';
const probeDir = mkdtempSync(join(tmpdir(), 'supra-openblas-probe-'));
try {
  const src = join(probeDir, 'probe.c');
  writeFileSync(src, '#include <cblas.h>\nint main(void) { return openblas_get_corename() == 0; }\n');
  const probe = run(cc, [...includeDirs.map((d) => `-I${d}`), src, '-o', join(probeDir, 'probe'), ...libs]);
  if (probe.error) skip(`no C compiler (${cc}: ${probe.error.message})`);
  if (probe.status !== 0) {
    const firstError = probe.stderr.split('\n').find((l) => /error|cannot find|not found/i.test(l)) ?? '';
    skip(`OpenBLAS headers or library not found (${firstError.trim() || 'probe failed'}); install libopenblas-dev`);
  }
} finally {
  rmSync(probeDir, { recursive: true, force: true });
}

// 3. node-gyp: npm tells its scripts where its bundled copy is; otherwise look next to this node.
const nodeGyp = [
  process.env.npm_config_node_gyp,
  join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
].find((p) => p && existsSync(p));
if (!nodeGyp) skip('node-gyp not found (it ships with npm)');

// 4. Node's headers, locally: npm's nodedir setting, the prefix node runs from, or node-gyp's cache.
const version = process.versions.node;
const nodeDir = [
  process.env.npm_config_nodedir,
  resolve(dirname(process.execPath), '..'),
  join(homedir(), '.cache', 'node-gyp', version),
  join(homedir(), '.node-gyp', version),
].find((d) => d && existsSync(join(d, 'include', 'node', 'node_api.h')));
if (!nodeDir) skip(`no local Node ${version} headers (set npm_config_nodedir); not downloading them`);

// 5. Build. binding.gyp reads the OpenBLAS flags from these variables.
const env = {
  ...process.env,
  SUPRA_OPENBLAS_INCLUDE_DIRS: includeDirs.join(' '),
  SUPRA_OPENBLAS_LIBS: libs.join(' '),
};
const gyp = run(process.execPath, [nodeGyp, 'rebuild', `--nodedir=${nodeDir}`, '--jobs=2'], env);
const log = `${gyp.stdout ?? ''}\n${gyp.stderr ?? ''}`;
mkdirSync(join(nativeDir, 'build'), { recursive: true });
const logPath = join(nativeDir, 'build', 'build-native.log');
writeFileSync(logPath, log);
if (gyp.status !== 0 || !existsSync(addonPath)) {
  const firstError = log.split('\n').find((l) => /error/i.test(l)) ?? `exit status ${gyp.status}`;
  skip(`node-gyp failed (${firstError.trim()}; full log in ${logPath})`);
}
console.log(`supra: built the native OpenBLAS backend: ${addonPath}`);
