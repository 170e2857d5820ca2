// Every code example in README.md and docs/*.md runs as written: imports from 'supra' (the package's own
// name, which resolves to this checkout's build) or node:, run from the repository root like a user would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The ```js / ```ts blocks of a markdown file, with the line each starts on. */
function codeBlocks(file: string): Array<{ line: number; code: string }> {
  const lines = readFileSync(file, 'utf8').split('\n');
  const blocks: Array<{ line: number; code: string }> = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(js|ts|javascript|typescript)\s*$/.test(lines[i]!)) continue;
    const start = i + 1;
    let j = start;
    while (j < lines.length && !lines[j]!.startsWith('```')) j++;
    blocks.push({ line: start, code: lines.slice(start, j).join('\n') });
    i = j;
  }
  return blocks;
}

const docs = ['README.md', ...readdirSync(join(repoRoot, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join('docs', f))];
const examples = docs.flatMap((doc) => codeBlocks(join(repoRoot, doc)).map((b) => ({ doc, ...b })));

test('the docs have code examples, and each imports only from supra and node:', () => {
  assert.ok(examples.length >= 4, `found ${examples.length} examples`);
  for (const e of examples) {
    const sources = [...e.code.matchAll(/\bfrom\s+'([^']+)'/g)].map((m) => m[1]!);
    assert.ok(sources.length > 0, `${e.doc}:${e.line}: an example without imports`);
    for (const s of sources) assert.ok(s === 'supra' || s.startsWith('node:'), `${e.doc}:${e.line}: imports '${s}'; examples import from 'supra'`);
  }
});

for (const e of examples) {
  test(`${e.doc}:${e.line} runs as written`, () => {
    // inside the package, so that 'supra' resolves to it (a package can import itself by its name)
    const dir = join(repoRoot, 'dist', 'docs-examples');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${e.doc.replace(/[/.]/g, '_')}_${e.line}.mjs`);
    writeFileSync(file, e.code);
    const cache = join(dir, `cache-${process.pid}`);
    try {
      const r = spawnSync(process.execPath, [file], {
        cwd: repoRoot, encoding: 'utf8', timeout: 120_000,
        env: { ...process.env, SUPRA_CACHE_DIR: cache },
      });
      assert.equal(r.status, 0, `${e.doc}:${e.line} failed:\n${r.stderr}`);
    } finally {
      rmSync(file, { force: true });
      rmSync(cache, { recursive: true, force: true });
    }
  });
}
