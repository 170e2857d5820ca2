// The layering rules, read from the sources: nothing lower (core, layers, models, io) imports anything
// higher, and the code above models/ reaches token mixers only through the seam (layers/types.ts,
// registered by architecture), never a concrete layer class: a new mixer then needs no edit there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const src = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');
/** The lower layers, bottom first: each may import only itself and those before it. */
const LOWER = ['core', 'io', 'layers', 'models'];
const ABOVE_MODELS = ['train', 'generate', 'serve', 'eval', 'bench', 'experiments', 'cli'];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []);
}

/** Each relative import of a file, as a path under src/ ('layers/types.js'). */
function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/\b(?:from|import)\s*\(?\s*'(\.[^']+)'/g)].map((m) => relative(src, resolve(dirname(file), m[1]!)));
}

test('core, io, layers and models import only themselves and the layers below them', () => {
  LOWER.forEach((folder, rank) => {
    for (const file of sources(join(src, folder))) {
      for (const target of imports(file)) {
        const top = target.split(/[\\/]/)[0]!;
        assert.ok(LOWER.indexOf(top) >= 0 && LOWER.indexOf(top) <= rank, `${relative(src, file)} imports ${target}`);
      }
    }
  });
});

test('train, generate, serve, eval, bench, experiments and cli use no concrete layer class (only layers/types)', () => {
  for (const folder of ABOVE_MODELS) {
    for (const file of sources(join(src, folder))) {
      for (const target of imports(file)) {
        if (!target.startsWith('layers')) continue;
        assert.equal(target.replace(/\\/g, '/'), 'layers/types.js', `${relative(src, file)} imports ${target}`);
      }
    }
  }
});

test('only cli/ imports cli/: the command line is the top layer', () => {
  const offences: string[] = [];
  for (const file of sources(src)) {
    if (relative(src, file).split(/[\\/]/)[0] === 'cli') continue;
    for (const target of imports(file)) if (target.split(/[\\/]/)[0] === 'cli') offences.push(`${relative(src, file)} imports ${target}`);
  }
  assert.deepEqual(offences, []);
});
