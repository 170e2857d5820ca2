// The teacher's training card (training.json): how many tokens it was pretrained on, which the demo's
// --budget multiplies. A build of several stages records the total and its language stage's tokens (the
// base); an older card only its command.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { teacherPretrainingTokens, EMBEDDED_TEACHER_DIR } from '../src/models/embedded.js';

test('teacherPretrainingTokens: pretraining_tokens of a staged build, else --tokens of the command, else null; bad cards named', () => {
  const dir = mkdtempSync(join(tmpdir(), 'supra-card-'));
  const card = (x: unknown): void => writeFileSync(join(dir, 'training.json'), typeof x === 'string' ? x : JSON.stringify(x));
  try {
    assert.equal(teacherPretrainingTokens(dir), null, 'no card');
    card({ supra_train: 'supra train --tokens 2500000 --seq-len 256' });
    assert.equal(teacherPretrainingTokens(dir), 2_500_000);
    card({ supra_train: 'supra train --tokens 2500000', pretraining_tokens: 11_264_000 });
    assert.equal(teacherPretrainingTokens(dir), 11_264_000, 'the total of the stages wins over one stage\'s command');
    card({ pretraining_tokens: 10_240_000, language_pretraining_tokens: 3_072_000 });
    assert.equal(teacherPretrainingTokens(dir), 3_072_000, 'a staged build counts its language stage, not the synthetic warm start');
    card({ pretraining_tokens: 10_240_000, language_pretraining_tokens: 0 });
    assert.throws(() => teacherPretrainingTokens(dir), /training\.json: language_pretraining_tokens must be a positive whole number/);
    card({ stages: [] });
    assert.equal(teacherPretrainingTokens(dir), null);
    for (const bad of [-5, 1.5, '1000', null]) {
      card({ pretraining_tokens: bad });
      assert.throws(() => teacherPretrainingTokens(dir), /training\.json: pretraining_tokens must be a positive whole number/);
    }
    card('{"pretraining_tokens": 10');
    assert.throws(() => teacherPretrainingTokens(dir), /training\.json: not valid JSON/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const embedded = teacherPretrainingTokens(EMBEDDED_TEACHER_DIR);
  assert.ok(embedded !== null && embedded > 0, 'the embedded teacher records its pretraining tokens');
});
