// Rebuilds src/core/wasm/kernels.wasm and kernels-fma.wasm from assembly/ (AssemblyScript). The .wasm
// files are committed, so users need no compiler; run this (npm run build:wasm) after changing assembly/.
//
// The module imports the arena's shared memory (src/core/memory.ts: 64 pages initial, 65536 maximum)
// and must keep everything of its own below ARENA_BASE: it is built without a heap or shadow stack
// (runtime stub, nothing allocates), and this script checks that it has no data segments, no start
// function and imports nothing but the memory.
import asc from 'assemblyscript/asc';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const wantWat = process.argv.includes('--wat');

// Two builds of the same sources: kernels.wasm (SIMD128, runs everywhere) and kernels-fma.wasm, whose
// sgemm uses relaxed SIMD's fused multiply-add (src/core/wasm/module.ts picks it where the engine can
// run it).
const variants = [
  { file: 'kernels.wasm', features: ['simd', 'threads'] },
  { file: 'kernels-fma.wasm', features: ['simd', 'threads', 'relaxed-simd'] },
];

function readU32(buf, pos) {
  let result = 0;
  let shift = 0;
  for (;;) {
    const b = buf[pos++];
    result |= (b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [result >>> 0, pos];
    shift += 7;
  }
}

for (const variant of variants) {
  const outFile = join(root, 'src', 'core', 'wasm', variant.file);
  const watFile = wantWat ? join(root, variant.file.replace('.wasm', '.wat')) : null;
  const args = [
    join(root, 'assembly', 'index.ts'),
    '--outFile', outFile,
    ...(watFile ? ['--textFile', watFile] : []),
    '-O3',
    '--noAssert',
    '--runtime', 'stub',
    '--importMemory',
    '--sharedMemory',
    '--initialMemory', '64',
    '--maximumMemory', '65536',
    ...variant.features.flatMap((f) => ['--enable', f]),
  ];

  const { error, stderr } = await asc.main(args, {});
  if (error) {
    console.error(stderr.toString());
    console.error(`build-wasm: ${error.message}`);
    process.exit(1);
  }

  // ---- check the layout promise: sections of the binary (id 2 import, 8 start, 11 data)
  const bytes = readFileSync(outFile);
  const problems = [];
  let pos = 8;
  while (pos < bytes.length) {
    const id = bytes[pos++];
    let size;
    [size, pos] = readU32(bytes, pos);
    if (id === 8) problems.push('it has a start function');
    if (id === 11) problems.push('it has data segments (static data would be rewritten by every worker)');
    pos += size;
  }
  if (WebAssembly.validate(bytes)) {
    for (const imp of WebAssembly.Module.imports(new WebAssembly.Module(bytes))) {
      if (!(imp.module === 'env' && imp.name === 'memory')) problems.push(`it imports ${imp.module}.${imp.name}`);
    }
  }
  if (problems.length > 0) {
    console.error(`build-wasm: ${outFile} breaks the memory layout: ${problems.join('; ')}`);
    process.exit(1);
  }
  console.log(`build-wasm: wrote ${outFile} (${bytes.length} bytes)`);
}
