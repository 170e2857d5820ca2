// The playground's server (supra web): the page (web/), the library as the browser loads it (dist/src,
// the wasm kernels, the tokenizer package), and model folders under /models/<name>/, on 127.0.0.1.
// Every response carries the cross-origin-isolation headers (COOP same-origin, COEP require-corp) that
// give the page SharedArrayBuffer, so the wasm kernels run on a pool of Web Workers. Nothing comes from
// the network, and only pages served from 127.0.0.1 or localhost by name get an answer (see hostAllowed).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createReadStream, readFileSync, realpathSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** The repository (or the installed package): dist/src/serve → root. */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
/**
 * The tokenizer library's dist folder, where Node resolves it from here: under the package's own
 * node_modules in a clone, but hoisted beside it when supra is installed as a dependency.
 */
const tokenizersDist = (): string => dirname(createRequire(import.meta.url).resolve('@huggingface/tokenizers'));

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

/**
 * The file under `base` that `rel` names, or null when the request leaves the mount. ".." is resolved
 * first, and every folder on the way must really lie in the mount: a symlinked folder pointing out
 * would hand any request a whole tree. The file itself may be a link to anywhere (its folder's owner
 * put it there, and Hugging Face cache snapshots are folders of links into ../../blobs).
 */
function fileUnder(base: string, rel: string): string | null {
  const path = normalize(join(base, rel));
  if (!path.startsWith(base + sep)) return null;
  try {
    const realBase = realpathSync(base), realDir = realpathSync(dirname(path));
    return realDir === realBase || realDir.startsWith(realBase + sep) ? path : null;
  } catch {
    return null; // the folder is gone (or never was)
  }
}

/**
 * Whether the request names this server by address: a page of another site that points its own name at
 * 127.0.0.1 (DNS rebinding) would otherwise be same-origin here and could read every file served.
 */
function hostAllowed(host: string | undefined): boolean {
  const name = (host ?? '').replace(/:\d+$/, '');
  return name === '127.0.0.1' || name === 'localhost' || name === '[::1]';
}

/**
 * Stream a file through one descriptor (opened, measured and read as one file even when it is replaced
 * by a rename meanwhile). A file cut short while it streams closes the connection, so the client sees a
 * broken transfer rather than waiting for the bytes Content-Length promised.
 */
async function sendFile(res: ServerResponse, path: string, type: string, head: boolean, headers: Record<string, string>): Promise<boolean> {
  const fd = await open(path, 'r').catch(() => null);
  if (!fd) return false;
  const stat = await fd.stat().catch(() => null);
  if (!stat?.isFile()) {
    await fd.close();
    return false;
  }
  res.writeHead(200, { ...headers, 'Content-Type': type, 'Content-Length': stat.size });
  if (head || stat.size === 0) {
    await fd.close();
    res.end();
    return true;
  }
  const stream = createReadStream('', { fd, start: 0, end: stat.size - 1 });
  res.on('close', () => stream.destroy()); // a client that goes away releases the descriptor
  stream.on('error', () => res.destroy());
  stream.on('end', () => (stream.bytesRead === stat.size ? res.end() : res.destroy()));
  stream.pipe(res, { end: false });
  return true;
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
    ['/node_modules/@huggingface/tokenizers/dist/', tokenizersDist()],
    ...models.map((m): [string, string] => [`/models/${m.name}/`, m.dir]),
  ];
  const listing = JSON.stringify(models.map((m) => ({ name: m.name, role: m.role, note: m.note, url: `/models/${m.name}` })));
  const headers = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp', 'Cache-Control': 'no-store' };
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const head = req.method === 'HEAD';
    const send = (status: number, type: string, body: string | Uint8Array): void => {
      res.writeHead(status, { ...headers, 'Content-Type': type });
      res.end(head ? undefined : body);
    };
    if (!hostAllowed(req.headers.host)) return send(421, 'text/plain', 'this server answers to 127.0.0.1 and localhost only');
    if (req.method !== 'GET' && !head) return send(405, 'text/plain', 'GET only');
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
      if (await sendFile(res, file, type, head, headers)) return;
      break;
    }
    send(404, 'text/plain', `not found: ${url}`);
  };
  // a file that vanishes between the checks and the read, or any other surprise, fails this request only
  const server = createServer((req, res) => {
    handle(req, res).catch((e: NodeJS.ErrnoException) => {
      if (res.headersSent) return void res.destroy();
      res.writeHead(e.code === 'ENOENT' || e.code === 'EISDIR' ? 404 : 500, { ...headers, 'Content-Type': 'text/plain' });
      res.end(`${e.code ?? 'error'}: ${req.url}`);
    });
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => ok(server));
  });
}

