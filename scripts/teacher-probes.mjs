// The teacher's in-context scores on the probes' held-out instances (seed 0, default settings, as
// `supra probe` and the study draw them), against the targets of issue 17, as JSON.
//   node scripts/teacher-probes.mjs <model dir> [--tokenizer <dir>]   (prints the JSON)
//   node scripts/teacher-probes.mjs <run dir> --checkpoints            (one line per checkpoint of a training
//     run, with small settings: copy margin at gaps 0/32/128 and MQAR at 16 pairs, to watch induction form)
// Also imported by scripts/build-teacher.mjs (teacherProbes).
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const dist = process.env.SUPRA_DIST ?? 'dist';
const load = (rel) => import(pathToFileURL(join(process.cwd(), dist, rel)).href);

/** Targets: second-copy loss ≥ 4 nats under the first-copy baseline at gaps ≤ the training length; MQAR ≥ 0.9 at 16 pairs; passkey ≥ 0.9 at 256 tokens. */
export const TARGETS = { copyMarginNats: 4, mqarAt16: 0.9, passkeyAt256: 0.9 };

export async function teacherProbes(modelDir, tokenizerDir, trainingLength, backend = process.env.SUPRA_BACKEND ?? 'native') {
  const { copyProbe, mqarProbe, passkeyProbe } = await load('src/eval/probes.js');
  const { loadDecoder } = await load('src/models/auto.js');
  const { loadTokenizer } = await load('src/io/tokenizer.js');
  const tok = loadTokenizer(tokenizerDir);
  const { model } = loadDecoder(modelDir, { backend });
  try {
    const copy = copyProbe(null, model, { seed: 0 });
    const mqar = mqarProbe(null, model, { seed: 0 });
    const passkey = passkeyProbe(null, model, tok, { seed: 0 });
    const m = copy.model;
    const margins = copy.x.map((gap, i) => ({ gap, first: m.firstCopyLoss[i], second: m.secondCopyLoss[i], margin: m.firstCopyLoss[i] - m.secondCopyLoss[i] }));
    const inLength = margins.filter((g) => 2 * 16 + g.gap <= trainingLength);
    const at = (r, x) => r.model.accuracy[r.x.indexOf(x)];
    const scores = {
      copy: margins,
      copyMinMarginWithinTrainingLength: Math.min(...inLength.map((g) => g.margin)),
      mqar: Object.fromEntries(mqar.x.map((x, i) => [x, mqar.model.accuracy[i]])),
      passkey: Object.fromEntries(passkey.x.map((x, i) => [x, passkey.model.accuracy[i]])),
    };
    const met = {
      copy: scores.copyMinMarginWithinTrainingLength >= TARGETS.copyMarginNats,
      mqar: at(mqar, 16) >= TARGETS.mqarAt16,
      passkey: at(passkey, 256) >= TARGETS.passkeyAt256,
    };
    return { settings: { seed: 0, copy: copy.settings, mqar: mqar.settings, passkey: { ...passkey.settings, accuracyByDepth: undefined } }, scores, targets: TARGETS, met };
  } finally {
    model.free();
  }
}

/** Copy margins (first − second copy loss, nats) at gaps 0/32/128 and MQAR accuracy at 16 pairs, small samples. */
export async function quickProbes(modelDir, backend = process.env.SUPRA_BACKEND ?? 'native') {
  const { copyProbe, mqarProbe } = await load('src/eval/probes.js');
  const { loadDecoder } = await load('src/models/auto.js');
  const { model } = loadDecoder(modelDir, { backend });
  try {
    const copy = copyProbe(null, model, { seed: 0, samples: 8, gaps: [0, 32, 128] });
    const mqar = mqarProbe(null, model, { seed: 0, samples: 16, pairs: [16] });
    return { copyMargin: copy.model.firstCopyLoss.map((f, i) => f - copy.model.secondCopyLoss[i]), gaps: copy.x, mqarAt16: mqar.model.accuracy[0] };
  } finally {
    model.free();
  }
}

async function probeCheckpoints(runDir) {
  const { listCheckpoints } = await load('src/train/checkpoint.js');
  const checkpoints = listCheckpoints(runDir);
  if (checkpoints.length === 0) throw new Error(`${runDir}: no complete checkpoint-N folders (is it a supra train --out folder?)`);
  for (const { step, dir } of checkpoints) {
    const r = await quickProbes(dir);
    console.log(`step ${String(step).padStart(6)}  copy margin (gaps ${r.gaps.join('/')}) ${r.copyMargin.map((m) => m.toFixed(2)).join(' ')}  mqar@16 ${r.mqarAt16.toFixed(2)}`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const argv = process.argv.slice(2);
  if (argv.includes('--checkpoints')) {
    const dir = argv.find((a) => !a.startsWith('--'));
    if (!dir) {
      console.error('usage: node scripts/teacher-probes.mjs <run dir> --checkpoints');
      process.exit(2);
    }
    try {
      await probeCheckpoints(dir);
    } catch (e) {
      console.error(`supra: ${e.message}`);
      process.exit(1);
    }
    process.exit(0);
  }
  const i = argv.indexOf('--tokenizer');
  const dir = argv[0];
  if (!dir) {
    console.error('usage: node scripts/teacher-probes.mjs <model dir> [--tokenizer <dir>] [--length N]');
    process.exit(2);
  }
  const j = argv.indexOf('--length');
  const r = await teacherProbes(dir, i >= 0 ? argv[i + 1] : 'assets/teacher', j >= 0 ? Number(argv[j + 1]) : 256);
  console.log(JSON.stringify(r.scores), JSON.stringify(r.met));
}
