// The embedded default: the small teacher this project pretrains itself (assets/teacher, made by
// `npm run build:teacher`), shipped in the package so the main job runs without any download.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const EMBEDDED_TEACHER_DIR = fileURLToPath(new URL('../../../assets/teacher', import.meta.url));

/**
 * The tokens a teacher was pretrained on, as the demo's --budget and the study's budgets count them (their
 * shares of it): training.json's language_pretraining_tokens when the card has it (a staged build,
 * scripts/build-teacher.mjs, whose stage 1 warms a smaller model up on synthetic repeats: those tokens are
 * recorded, in pretraining_tokens, but not counted, so a budget is a share of the pretraining on language),
 * else its pretraining_tokens, else the --tokens of its supra train command.
 */
export function teacherPretrainingTokens(dir: string): number | null {
  const card = join(dir, 'training.json');
  if (!existsSync(card)) return null;
  let parsed: { supra_train?: unknown; pretraining_tokens?: unknown; language_pretraining_tokens?: unknown };
  try {
    parsed = JSON.parse(readFileSync(card, 'utf8')) as typeof parsed;
  } catch (e) {
    throw new Error(`supra: ${card}: not valid JSON (${(e as Error).message})`);
  }
  for (const field of ['language_pretraining_tokens', 'pretraining_tokens'] as const) {
    const n = parsed[field];
    if (n === undefined) continue;
    if (typeof n !== 'number' || !Number.isInteger(n) || n <= 0) throw new Error(`supra: ${card}: ${field} must be a positive whole number, got ${JSON.stringify(n)}`);
    return n;
  }
  const m = /--tokens (\d+)/.exec(String(parsed.supra_train ?? ''));
  return m ? Number(m[1]) : null;
}
