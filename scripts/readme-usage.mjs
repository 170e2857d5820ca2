// Rewrites the README's copies of `supra <command> --help` (a ```text block right after a line that starts
// with "`supra <command> --help`") from the commands themselves, so the README never drifts from --help.
// Run after `npm run build`: node scripts/readme-usage.mjs  (the tests check the copies are current).
import { readFileSync, writeFileSync } from 'node:fs';
import { commands } from '../dist/src/cli/commands.js';

const path = new URL('../README.md', import.meta.url);
let readme = readFileSync(path, 'utf8');
let updated = 0;
for (const [name, load] of Object.entries(commands)) {
  const block = new RegExp('(^`supra ' + name + ' --help`[^\\n]*\\n\\n```text\\n)[\\s\\S]*?(\\n```)', 'm');
  if (!block.test(readme)) continue;
  const { usage } = await load();
  readme = readme.replace(block, (_, open, close) => open + usage + close);
  updated++;
}
writeFileSync(path, readme);
console.log(`README.md: ${updated} --help copies rewritten`);
