// What the scale benchmarks (bench/scale.ts, bench/train.ts) share: the random-weight folders they measure, a
// BF16 teacher of a real model's shape (scripts/random-model.mjs) and its linearized SUPRA folder, written into
// the cache once and reused; and running a job in a child process of its own (bench/scale-case.js), so that
// its peak RSS is its own.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ScaleJob } from '../src/bench/scale.js';
import { openModel } from '../src/io/checkpoint.js';

const here = dirname(fileURLToPath(import.meta.url)); // dist/bench
const repoRoot = resolve(here, '../..');
export const { MODEL_SHAPES, writeRandomModel, writeRandomTokenizer } = (await import(pathToFileURL(join(repoRoot, 'scripts/random-model.mjs')).href)) as {
  MODEL_SHAPES: Record<string, unknown>;
  writeRandomModel: (shape: string, dir: string, options: { dtype?: string; seed?: number }) => string[];
  writeRandomTokenizer: (dir: string, vocab: number) => string[];
};

export interface ScaleFolders {
  teacherDir: string;
  supraDir: string;
  /** Seconds writing the teacher took (null: reused). */
  generateSeconds: number | null;
  /** Linearizing (null: reused): its seconds and peak RSS, or its error. */
  linearize: { seconds: number; maxRssBytes: number } | { error: string } | null;
}

/**
 * The teacher and SUPRA folders of `shape` in `cacheDir`, written when missing: the teacher here, the SUPRA
 * folder by `linearize` (a child process, so its peak RSS is its own). Folders cached before random models
 * carried a tokenizer get one (eval, serve and training read text).
 */
export function scaleFolders(
  shape: string, cacheDir: string, seed: number, linearize: (teacher: string, out: string) => Record<string, unknown>, log: (line: string) => void,
): ScaleFolders {
  const teacherDir = join(cacheDir, `${shape}-bf16-seed${seed}`);
  const supraDir = join(cacheDir, `${shape}-bf16-seed${seed}-supra`);
  let generateSeconds: number | null = null;
  if (!existsSync(join(teacherDir, 'config.json'))) {
    const t0 = performance.now();
    writeRandomModel(shape, teacherDir, { dtype: 'bf16', seed });
    generateSeconds = (performance.now() - t0) / 1000;
    log(`  wrote ${teacherDir} in ${generateSeconds.toFixed(1)} s`);
  } else log(`  reusing ${teacherDir}`);
  let made: ScaleFolders['linearize'] = null;
  if (!existsSync(join(supraDir, 'config.json'))) {
    const r = linearize(teacherDir, supraDir);
    made = r.status === 'error' ? { error: String(r.message) } : { seconds: r.seconds as number, maxRssBytes: r.maxRssBytes as number };
    log(`  linearize: ${'error' in made ? made.error : `${made.seconds.toFixed(1)} s, peak RSS ${(made.maxRssBytes / 2 ** 30).toFixed(2)} GiB`}`);
  } else log(`  reusing ${supraDir}`);
  const { config, checkpoint } = openModel(teacherDir);
  checkpoint.close();
  for (const dir of [teacherDir, supraDir]) {
    if (existsSync(join(dir, 'config.json')) && !existsSync(join(dir, 'tokenizer.json'))) writeRandomTokenizer(dir, config.vocab_size);
  }
  return { teacherDir, supraDir, generateSeconds, linearize: made };
}

/** Runs a job in a child process (bench/scale-case.js); its SCALE_RESULT line, or the error it printed. */
export function runChild(job: ScaleJob): Record<string, unknown> {
  const r = spawnSync(process.execPath, [join(here, 'scale-case.js'), JSON.stringify(job)], { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
  const line = r.stdout.split('\n').find((l) => l.startsWith('SCALE_RESULT '));
  if (r.status === 0 && line) return JSON.parse(line.slice('SCALE_RESULT '.length)) as Record<string, unknown>;
  const why = r.signal ? `killed by ${r.signal}` : (r.stderr.trim().split('\n').find((l) => /error|supra:/i.test(l)) ?? r.stderr.trim().split('\n')[0] ?? `exit ${r.status}`);
  return { status: 'error', message: why.replace(/^(Error|RangeError|TypeError): /, '') };
}
