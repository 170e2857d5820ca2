import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gqaDir } from './helpers/fixture.js';
import { bpeTokenizerJson, LLAMA_SPECIALS, writeTokenizer } from './helpers/tokenizers.js';

const cli = resolve(dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');
const supra = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });

/** A character-level tokenizer.json (BPE without merges): '<unk>' 0, '<s>' 1, '</s>' 2, then ' '…'~'. */
function writeCharTokenizer(dir: string): void {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let c = 32; c < 127; c++) vocab[String.fromCharCode(c)] = Object.keys(vocab).length;
  writeTokenizer(dir, bpeTokenizerJson({ vocab, specials: LLAMA_SPECIALS }), { bos_token: '<s>', eos_token: '</s>' });
}

test('supra probe and supra analyze write JSON, PNG and SVG for the fixture teacher and its SUPRA model', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'supra-probe-'));
  try {
    const teacher = join(gqaDir, 'teacher'), model = join(tmp, 'supra'), out = join(tmp, 'out');
    assert.equal(supra('linearize', teacher, '--out', model, '--seed', '1000').status, 0);
    writeCharTokenizer(model);

    const r1 = supra('probe', 'mqar', '--teacher', teacher, '--model', model, '--out', out, '--samples', '2', '--pairs', '2,4');
    assert.equal(r1.status, 0, r1.stderr);
    const mq = JSON.parse(readFileSync(join(out, 'mqar.json'), 'utf8'));
    assert.deepEqual(mq.x, [2, 4]);
    assert.equal(mq.model.accuracy.length, 2);
    assert.ok(readFileSync(join(out, 'mqar.png')).subarray(1, 4).toString() === 'PNG');
    assert.ok(readFileSync(join(out, 'mqar.svg'), 'utf8').includes('</svg>'));

    const r2 = supra('probe', 'passkey', '--teacher', teacher, '--model', model, '--out', out, '--samples', '1', '--lengths', '260', '--depths', '0.5');
    assert.equal(r2.status, 0, r2.stderr);
    assert.ok(existsSync(join(out, 'passkey.png')));
    const rc = supra('probe', 'copy', '--teacher', teacher, '--model', model, '--out', out, '--samples', '1', '--gaps', '0,4', '--span', '4');
    assert.equal(rc.status, 0, rc.stderr);
    // the table names the real no-memory baseline (each model's first-copy loss), not uniform guessing as "chance"
    assert.match(rc.stdout, /baseline without memory \(loss on the first copy, mean over gaps\): teacher \d+\.\d+, model \d+\.\d+/);
    assert.doesNotMatch(rc.stdout, /chance/);
    const r3 = supra('probe', 'copy', '--teacher', teacher, '--model', model, '--out', out, '--gaps', 'x');
    assert.equal(r3.status, 2);
    assert.match(r3.stderr, /--gaps must be a comma-separated list/);
    assert.equal(supra('probe', 'nope', '--teacher', teacher, '--model', model, '--out', out).status, 2);

    const text = join(tmp, 'text.txt');
    writeFileSync(text, 'The quick brown fox jumps over the lazy dog. '.repeat(4));
    const r4 = supra('analyze', '--teacher', teacher, '--model', model, '--text', text, '--out', out, '--tokens', '24', '--windows', '2');
    assert.equal(r4.status, 0, r4.stderr);
    const an = JSON.parse(readFileSync(join(out, 'analysis.json'), 'utf8'));
    assert.equal(an.tokens, 24);
    assert.equal(an.windows, 2);
    assert.equal(an.cosine.raw.length, 2);
    assert.equal(an.svDistance.rownorm[0].length, 4);
    assert.ok(typeof an.definitions.svDistance === 'string');
    for (const stem of ['cosine_raw', 'cosine_rownorm', 'svdist_raw', 'svdist_rownorm', 'weight_drift']) {
      assert.ok(existsSync(join(out, `${stem}.png`)) && existsSync(join(out, `${stem}.svg`)), stem);
    }
    // the teacher as --model is refused with a clear message
    const r5 = supra('analyze', '--teacher', teacher, '--model', teacher, '--text', text, '--out', out, '--tokenizer', model);
    assert.equal(r5.status, 1);
    assert.match(r5.stderr, /not SUPRA attention/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
