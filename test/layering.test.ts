import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// The README's rule: nothing lower imports anything higher. Lower layers, bottom first; every folder of
// src/ not listed here (train, eval, generate, serve, bench, experiments, cli) is above all of them.
const LOWER = ['core', 'io', 'layers', 'models'];
const src = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** The folder of src/ a file is in ('' for src/ itself). */
function layerOf(file: string): string {
  const parts = relative(src, file).split(/[\\/]/);
  return parts.length > 1 ? parts[0]! : '';
}

test('no lower layer (core, io, layers, models) imports a layer above it', () => {
  const offences: string[] = [];
  for (const [rank, layer] of LOWER.entries()) {
    for (const file of sources(join(src, layer))) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+['"](\.[^'"]+)['"]/gm)) {
        const target = layerOf(resolve(dirname(file), m[1]!));
        const targetRank = LOWER.indexOf(target);
        if (targetRank < 0 || targetRank > rank) offences.push(`${relative(src, file)} imports ${m[1]} (${target || 'src'})`);
      }
    }
  }
  assert.deepEqual(offences, []);
});
