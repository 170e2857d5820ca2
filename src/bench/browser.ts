// The playground (supra web) in headless Chromium, driven by playwright-core: for the browser tests, the
// browser decode benchmark and the README's screenshot. Chromium is the system's (Debian: apt-get install
// chromium), never a download; SUPRA_CHROMIUM names another executable.
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Server } from 'node:http';
import { startWebServer, type WebModel } from '../serve/playground.js';

const CANDIDATES = ['/usr/lib/chromium/chromium', 'chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];

/** The Chromium executable to drive, or null when none is installed. */
export function findChromium(): string | null {
  const preset = process.env.SUPRA_CHROMIUM;
  if (preset) {
    if (!existsSync(preset)) throw new Error(`supra: SUPRA_CHROMIUM=${preset}: no such file`);
    return preset;
  }
  for (const c of CANDIDATES) {
    if (c.startsWith('/')) {
      if (existsSync(c)) return c;
      continue;
    }
    for (const dir of (process.env.PATH ?? '').split(delimiter)) if (dir && existsSync(join(dir, c))) return join(dir, c);
  }
  return null;
}

export const NO_CHROMIUM =
  'no Chromium found for the browser tests: install it (Debian: apt-get install chromium) or set SUPRA_CHROMIUM to its executable';

/** What the page logged: console errors and uncaught exceptions, from the page and its workers; the URLs it asked for. */
export interface PageLog {
  errors: string[];
  requests: string[];
}

/** playwright's Page, typed loosely (playwright-core is a dev dependency). */
export interface PlaygroundPage {
  evaluate<R, A = unknown>(f: (arg: A) => R | Promise<R>, arg?: A): Promise<R>;
  setInputFiles(selector: string, files: string | string[]): Promise<void>;
  screenshot(options: { path: string; fullPage?: boolean }): Promise<unknown>;
  setViewportSize(size: { width: number; height: number }): Promise<void>;
  route(url: string, handler: (route: { abort(): Promise<void> }) => unknown): Promise<void>;
  goto(url: string): Promise<unknown>;
  click(selector: string): Promise<void>;
  waitForEvent(event: 'download'): Promise<{ path(): Promise<string | null> }>;
  close(): Promise<void>;
}

export interface Playground {
  url: string;
  page: PlaygroundPage;
  log: PageLog;
  /** Another page of the same browser, not yet at the playground (to intercept its requests before it loads). */
  newPage(): Promise<PlaygroundPage>;
  close(): Promise<void>;
}

/**
 * Serve `models` on a free port, open the page in headless Chromium and wait until it lists them.
 * isolated: false strips the cross-origin-isolation headers on their way to the page, as a host that
 * does not send them would (no SharedArrayBuffer: the kernels fall back to one thread).
 */
export async function openPlayground(models: WebModel[], options: { isolated?: boolean } = {}): Promise<Playground> {
  const executablePath = findChromium();
  if (!executablePath) throw new Error(`supra: ${NO_CHROMIUM}`);
  let pw: typeof import('playwright-core');
  try {
    pw = await import('playwright-core');
  } catch {
    throw new Error('supra: playwright-core is not installed (it is a dev dependency: run npm install in the repository)');
  }
  const server: Server = await startWebServer(models, 0);
  const address = server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/`;
  // the sandbox needs user namespaces, which containers (and root) often lack
  const browser = await pw.chromium.launch({ executablePath, args: ['--no-sandbox'] }).catch((e: Error) => {
    server.close();
    throw new Error(`supra: cannot start ${executablePath}: ${e.message.split('\n')[0]}`);
  });
  const log: PageLog = { errors: [], requests: [] };
  const close = async (): Promise<void> => {
    await browser.close();
    await new Promise((ok) => server.close(ok));
  };
  try {
    const page = await browser.newPage();
    // the page's console carries its workers' messages too
    page.on('console', (m) => {
      if (m.type() === 'error') log.errors.push(`console: ${m.text()} (${m.location().url})`);
    });
    page.on('pageerror', (e) => log.errors.push(`page: ${e.message}`));
    page.on('request', (r) => log.requests.push(r.url()));
    if (options.isolated === false) {
      await page.route('**/*', async (route) => {
        const response = await route.fetch();
        const headers = { ...response.headers() };
        delete headers['cross-origin-opener-policy'];
        delete headers['cross-origin-embedder-policy'];
        await route.fulfill({ response, headers });
      });
    }
    await page.goto(url);
    // ready, or an error on the page (which is then the message)
    await page.waitForFunction(
      () => (window as unknown as { playground?: { ready?: boolean } }).playground?.ready === true || document.getElementById('error')?.hidden === false,
      undefined,
      { timeout: 60_000 },
    );
    const shown = await page.evaluate(() => (document.getElementById('error')?.hidden === false ? document.getElementById('error')!.textContent : null));
    if (shown) throw new Error(`supra: the playground at ${url} shows an error: ${shown}`);
    const newPage = async (): Promise<PlaygroundPage> => (await browser.newPage()) as unknown as PlaygroundPage;
    return { url, page: page as unknown as PlaygroundPage, log, newPage, close };
  } catch (e) {
    await close();
    throw e;
  }
}
