// Shared by the serve tests: a tiny tokenizer that covers exactly the 256 ids of the fixture teacher's
// vocabulary, a model folder (the teacher plus that tokenizer), and small HTTP helpers with timeouts.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { gqaDir } from './fixture.js';
import { bpeTokenizerJson, LLAMA_SPECIALS, SPACE } from './tokenizers.js';

export const TEMPLATE =
  "{{ bos_token }}{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}";

/**
 * SentencePiece-style BPE: <unk>=0 <s>=1 </s>=2 ▁=3, the printable ASCII characters, then merges
 * ("▁a" … "▁z", then common letter pairs) until there are exactly 256 entries, so every id the model can
 * produce decodes.
 */
export function tinyTokenizerJson(): Record<string, unknown> {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2, [SPACE]: 3 };
  for (let c = 33; c <= 126; c++) vocab[String.fromCharCode(c)] = Object.keys(vocab).length;
  const merges: string[] = [];
  const add = (a: string, b: string) => {
    if (Object.keys(vocab).length >= 256 || (a + b) in vocab) return;
    vocab[a + b] = Object.keys(vocab).length;
    merges.push(`${a} ${b}`);
  };
  for (let c = 97; c <= 122; c++) add(SPACE, String.fromCharCode(c));
  const common = 'etaoinshrdlcumwfgypb';
  for (const a of common) for (const b of common) add(a, b);
  if (Object.keys(vocab).length !== 256) throw new Error('tiny tokenizer: vocabulary is not 256 entries');
  return bpeTokenizerJson({ vocab, merges, specials: LLAMA_SPECIALS, bosInFront: true, sentencePiece: true, fuseUnk: true });
}

/** Write tokenizer.json (+ tokenizer_config.json, with the chat template when asked) into dir. */
export function writeTinyTokenizer(dir: string, chat = true): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tinyTokenizerJson()));
  const config: Record<string, unknown> = { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' };
  if (chat) config.chat_template = TEMPLATE;
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
}

/** A model folder: the fixture teacher with the tiny tokenizer. */
export function writeModelFolder(dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const f of ['config.json', 'model.safetensors']) copyFileSync(join(gqaDir, 'teacher', f), join(dir, f));
  writeTinyTokenizer(dir);
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

/**
 * One HTTP request over loopback with node:http (a raw string or Buffer body is sent as is). Rejects after
 * `timeoutMs` so a test can never hang.
 */
export function call(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}, timeoutMs = 20_000): Promise<Reply> {
  const url = new URL(path, base);
  const payload = body === undefined ? undefined : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, {
      method,
      headers: { ...(payload !== undefined ? { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(payload)) } : {}), ...headers },
      timeout: timeoutMs,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown = null;
        try {
          json = JSON.parse(text);
        } catch {
          // not JSON (an event stream)
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** The JSON events of an SSE body, and whether it ended with data: [DONE]. */
export function parseEvents(text: string): { events: any[]; done: boolean } { // eslint-disable-line @typescript-eslint/no-explicit-any
  const lines = text.split('\n\n').map((l) => l.trim()).filter((l) => l.length > 0);
  const done = lines[lines.length - 1] === 'data: [DONE]';
  const events = lines.filter((l) => l !== 'data: [DONE]').map((l) => {
    if (!l.startsWith('data: ')) throw new Error(`not an SSE data line: ${l}`);
    return JSON.parse(l.slice(6));
  });
  return { events, done };
}
