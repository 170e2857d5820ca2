// The playground's server (supra web): the page (web/), the library as the browser loads it (dist/src,
// the wasm kernels, the tokenizer package), and model folders under /models/<name>/, on 127.0.0.1.
// Every response carries the cross-origin-isolation headers (COOP same-origin, COEP require-corp) that
// give the page SharedArrayBuffer, so the wasm kernels run on a pool of Web Workers. Nothing comes from
// the network.
import { createServer, type Server } from 'node:http';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository (or the installed package): dist/src/serve → root. */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.wasm': 'application/wasm', '.png': 'image/png',
};

/** Bare imports of the library the browser cannot resolve (workers have no import maps): their files. */
const BARE: Record<string, string> = { '@huggingface/tokenizers': '/node_modules/@huggingface/tokenizers/dist/tokenizers.mjs' };

/** A model folder the page offers, at /models/<name>/. */
export interface WebModel {
  name: string;
  dir: string;
  role: 'supra' | 'teacher';
  /** What the page says about it (where it came from). */
  note: string;
}

/** The file under `base` that `rel` names, or null when it escapes base or is not a file. */
function fileUnder(base: string, rel: string): string | null {
  const path = normalize(join(base, rel));
  if (path !== base && !path.startsWith(base + sep)) return null;
  return existsSync(path) && statSync(path).isFile() ? path : null;
}

/**
 * Serve the page, the library and the models on 127.0.0.1:port (0: a free port). Model files stream
 * from disk (a 7B folder's shards are larger than a Node string or buffer may be).
 */
export function startWebServer(models: WebModel[], port: number): Promise<Server> {
  const mounts: Array<[string, string]> = [
    ['/web/', join(root, 'web')],
    ['/dist/src/', join(root, 'dist', 'src')],
    ['/src/core/wasm/', join(root, 'src', 'core', 'wasm')],
    ['/node_modules/@huggingface/tokenizers/dist/', join(root, 'node_modules', '@huggingface', 'tokenizers', 'dist')],
    ...models.map((m): [string, string] => [`/models/${m.name}/`, m.dir]),
  ];
  const listing = JSON.stringify(models.map((m) => ({ name: m.name, role: m.role, note: m.note, url: `/models/${m.name}` })));
  const server = createServer((req, res) => {
    const headers = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp', 'Cache-Control': 'no-store' };
    const send = (status: number, type: string, body: string | Uint8Array): void => {
      res.writeHead(status, { ...headers, 'Content-Type': type });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'GET only');
    let url: string;
    try {
      url = decodeURIComponent(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
    } catch {
      return send(400, 'text/plain', 'bad URL');
    }
    if (url === '/' || url === '/index.html') return send(200, TYPES['.html']!, readFileSync(join(root, 'web', 'index.html')));
    if (url === '/api/models') return send(200, TYPES['.json']!, listing);
    for (const [prefix, base] of mounts) {
      if (!url.startsWith(prefix)) continue;
      const file = fileUnder(base, url.slice(prefix.length));
      if (!file) break;
      const type = TYPES[extname(file)] ?? 'application/octet-stream';
      if (prefix === '/dist/src/' && file.endsWith('.js')) {
        let text = readFileSync(file, 'utf8');
        for (const [bare, to] of Object.entries(BARE)) text = text.replaceAll(`from '${bare}'`, `from '${to}'`);
        return send(200, type, text);
      }
      res.writeHead(200, { ...headers, 'Content-Type': type, 'Content-Length': statSync(file).size });
      if (req.method === 'HEAD') return res.end();
      const stream = createReadStream(file);
      stream.on('error', () => res.destroy());
      stream.pipe(res);
      return;
    }
    send(404, 'text/plain', `not found: ${url}`);
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => ok(server));
  });
}

