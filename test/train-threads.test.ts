// The same seed trains the same model whatever the thread count: every reduction runs in a fixed order, and
// which kernel computes a product never depends on how many threads there are. That holds for wasm and for
// the add-on's own kernels; OpenBLAS's AVX2 kernel sets (Haswell, Zen) round a product they split over
// threads differently, so on native this runs OpenBLAS's AVX-512 set (where the CPU has it), and the study's
// run key holds Backend.fingerprint (kernels and threads for native, docs/results.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getBackend } from '../src/core/select.js';
import type { NativeBackend } from '../src/core/native/backend.js';
import { charTokenizerFiles, tinyConfig } from './helpers/train-data.js';

const cli = resolve(dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');

const backend = getBackend();
// OpenBLAS's AVX-512 kernel sets give a product the same bits on any thread count; its AVX2 sets do not
const avx512 = backend.name === 'wasm' || ['SkylakeX', 'Cooperlake', 'SapphireRapids'].includes((backend as NativeBackend).info().corename);

test('training with 1 and 2 threads gives the same bits (group norm and the sum denominator)', { skip: avx512 ? false : 'OpenBLAS without AVX-512 kernels: its products depend on the threads' }, () => {
  const root = mkdtempSync(join(tmpdir(), 'supra-threads-'));
  try {
    const tok = join(root, 'tok');
    mkdirSync(tok);
    for (const [name, text] of Object.entries(charTokenizerFiles())) writeFileSync(join(tok, name), text);
    writeFileSync(join(root, 'text.txt'), Array.from({ length: 80 }, (_, i) => `the cat sat on the mat ${i % 7}. the dog ate the log ${i % 5}.`).join('\n\n'));
    for (const normalization of ['group_norm', 'sum']) {
      const config = tinyConfig({ supra: true, vocab: 128 });
      config.supra = { ...(config.supra as object), normalization, ...(normalization === 'sum' ? { decay: 'none' } : {}) };
      writeFileSync(join(root, 'config.json'), JSON.stringify(config));
      const weights = [1, 2].map((threads) => {
        const out = join(root, `out-${normalization}-${threads}`);
        const r = spawnSync(process.execPath, [
          cli, 'train', '--init', join(root, 'config.json'), '--tokenizer', tok, '--data', join(root, 'text.txt'), '--txt-split', 'paragraph',
          '--validation-fraction', '0.1', '--cache-dir', join(root, 'cache'), '--seq-len', '96', '--batch-size', '4', '--lr', '1e-2',
          '--steps', '4', '--eval-sequences', '2', '--quiet', '--out', out, '--backend', backend.name,
        ], { encoding: 'utf8', env: { ...process.env, SUPRA_THREADS: String(threads), SUPRA_OPENBLAS_CORETYPE: 'SkylakeX' } });
        assert.equal(r.status, 0, r.stderr + r.stdout);
        return readFileSync(join(out, 'final', 'model.safetensors'));
      });
      assert.ok(weights[0]!.equals(weights[1]!), `${normalization}: the model trained on 1 thread differs from the one trained on 2`);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
