// npm run bench: the speed figures of supra on this machine, for each backend.
//   node dist/bench/main.js [--quick] [--no-serve]
// --quick: fewer repetitions, shorter contexts (the teacher's 32k prefill alone takes minutes).
import { setBackend, getBackend } from '../src/core/select.js';
import { benchSgemm } from './sgemm.js';
import { benchNative } from './native.js';
import { benchPrefill, benchRecurrentDecode, benchTrainStep, benchUptrainStep } from './model.js';
import { benchDecode } from './decode.js';
import { benchServe } from './serve.js';

const quick = process.argv.includes('--quick');
const reps = quick ? 1 : 3;

function section(title: string): void {
  console.log(`\n== ${title} ==`);
}

section('sgemm, wasm backend');
setBackend('wasm');
benchSgemm([1, 2], quick ? 2 : 5);

section('sgemm, native backend (OpenBLAS) against OpenBLAS called directly from C');
let nativeOk = true;
try {
  benchNative({ rounds: quick ? 1 : 3, coretypes: quick ? [] : undefined });
} catch (e) {
  nativeOk = false;
  console.log(`  skipped: ${(e as Error).message}`);
}

for (const backend of nativeOk ? (['wasm', 'native'] as const) : (['wasm'] as const)) {
  setBackend(backend);
  section(`configuration S on ${getBackend().name} (${getBackend().threads} threads)`);
  const teacher = benchTrainStep('teacher', reps);
  const supra = benchTrainStep('supra', reps);
  console.log(`training forward+backward, B=8 T=256: teacher ${teacher.toFixed(0)} tokens/s, SUPRA (chunked) ${supra.toFixed(0)} tokens/s`);
  console.log(`SUPRA uptraining step (forward+backward+AdamW), B=8 T=256: ${benchUptrainStep(reps).toFixed(0)} tokens/s`);
  console.log(`SUPRA recurrent decode, batch 1: ${benchRecurrentDecode(quick ? 64 : 256).toFixed(0)} tokens/s`);
  const prefill = benchPrefill(quick ? [1024, 4096] : [1024, 4096, 16384], quick ? 1 : 2);
  console.log(`SUPRA chunked prefill, batch 1: ${prefill.map((p) => `${p.length} tokens: ${p.tokensPerS.toFixed(0)} tokens/s`).join(', ')}`);
  const first = prefill[0]!.tokensPerS, last = prefill[prefill.length - 1]!.tokensPerS;
  console.log(`  prefill tokens/s at ${prefill[prefill.length - 1]!.length} / at ${prefill[0]!.length}: ${(last / first).toFixed(2)} (1.00 = cost linear in length)`);
}

setBackend('wasm');
section('decode against context, batch 1, configuration S (wasm): the teacher grows, SUPRA stays flat');
await benchDecode({ contexts: quick ? [256, 2048] : [256, 2048, 8192, 32768], steps: quick ? 16 : 32 });

if (!process.argv.includes('--no-serve')) {
  section('supra serve under load on loopback (SUPRA, configuration S, wasm)');
  await benchServe({ seconds: quick ? 4 : 10, connections: 8 });
}
