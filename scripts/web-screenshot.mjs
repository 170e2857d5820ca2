// The README's picture of the playground: `supra web`'s default models (the SUPRA model `npm start` made,
// else the linearized embedded teacher, and the teacher beside it), a prompt decoded in both columns,
// saved as docs/playground.png. Needs the build (npm run build) and Chromium (see src/bench/browser.ts).
//   node scripts/web-screenshot.mjs [--out docs/playground.png] [--tokens 160]
import { renameSync } from 'node:fs';
import { join } from 'node:path';

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const dist = process.env.SUPRA_DIST ?? 'dist';
const { openPlayground } = await import(join(process.cwd(), dist, 'src/bench/browser.js'));
const { webModels } = await import(join(process.cwd(), dist, 'src/cli/web.js'));

const out = opt('out', 'docs/playground.png');
const tokens = Number(opt('tokens', '160'));
const pg = await openPlayground(webModels({}));
try {
  await pg.page.setViewportSize({ width: 820, height: 900 });
  await pg.page.evaluate(() => window.playground.load({ model: '/models/supra', teacher: '/models/teacher' }));
  // past the end of text, so that both columns reach the same context
  await pg.page.evaluate(([p, n]) => {
    document.getElementById('stop-at-eos').checked = false;
    return window.playground.generate(p, n);
  }, ['The jury said that', tokens]);
  const tmp = `${out}.tmp-${process.pid}.png`;
  await pg.page.screenshot({ path: tmp, fullPage: true });
  renameSync(tmp, out);
  if (pg.log.errors.length > 0) throw new Error(`the page logged errors: ${pg.log.errors.join('; ')}`);
  console.log(`wrote ${out}`);
} finally {
  await pg.close();
}
