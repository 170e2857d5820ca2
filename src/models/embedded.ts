// The embedded default: the small teacher this project pretrains itself (assets/teacher, made by
// `npm run build:teacher`), shipped in the package so the main job runs without any download.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const EMBEDDED_TEACHER_DIR = fileURLToPath(new URL('../../../assets/teacher', import.meta.url));

/**
 * Tokens a teacher was pretrained on, when its folder records them: training.json's pretraining_tokens (a
 * build of several stages, scripts/build-teacher.mjs), else the --tokens of its supra train command.
 */
export function teacherPretrainingTokens(dir: string): number | null {
  const card = join(dir, 'training.json');
  if (!existsSync(card)) return null;
  let parsed: { supra_train?: unknown; pretraining_tokens?: unknown };
  try {
    parsed = JSON.parse(readFileSync(card, 'utf8')) as { supra_train?: unknown; pretraining_tokens?: unknown };
  } catch (e) {
    throw new Error(`supra: ${card}: not valid JSON (${(e as Error).message})`);
  }
  if (parsed.pretraining_tokens !== undefined) {
    const n = parsed.pretraining_tokens;
    if (typeof n !== 'number' || !Number.isInteger(n) || n <= 0) throw new Error(`supra: ${card}: pretraining_tokens must be a positive whole number, got ${JSON.stringify(n)}`);
    return n;
  }
  const m = /--tokens (\d+)/.exec(String(parsed.supra_train ?? ''));
  return m ? Number(m[1]) : null;
}
