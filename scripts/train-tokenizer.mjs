// Trains the embedded tokenizer: byte-level BPE (GPT-2 style) with 4096 ids on the embedded corpus,
// using Hugging Face's `tokenizers` Node binding, and writes assets/teacher/tokenizer.json and
// tokenizer_config.json. Then checks that supra's own loader (src/io/tokenizer.ts, on the pure-JS
// @huggingface/tokenizers) encodes and decodes exactly as the Rust implementation does.
//
//   npm run build && node scripts/train-tokenizer.mjs [--out assets/teacher] [--vocab 4096] [--max-length 1024]
//   (SUPRA_DIST=dist-foo picks another compiled tree.)
//
// The binding (0.23) exposes no BpeTrainer, only Tokenizer.train(files) with the model's default trainer
// (vocab 30000, no special tokens, no forced alphabet). BPE training is greedy, so its first k merges
// are exactly what a trainer stopped at a smaller vocabulary would learn. We therefore train once, then
// build the final vocabulary ourselves: id 0 <|endoftext|>, ids 1..256 the 256 byte symbols in byte
// order (every byte encodable, even ones the corpus lacks), then the learned merges in order until the
// vocabulary holds `--vocab` ids. Same corpus and package versions, same files, byte for byte.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { Tokenizer, BPE, byteLevelPreTokenizer } = require('tokenizers');

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const v = process.argv[i + 1];
  if (v === undefined) throw new Error(`train-tokenizer: ${name} needs a value`);
  return v;
}
const outDir = resolve(option('--out', join(root, 'assets', 'teacher')));
const vocabSize = Number(option('--vocab', '4096'));
const maxLength = Number(option('--max-length', '1024'));
if (!Number.isInteger(vocabSize) || vocabSize < 258) throw new Error('train-tokenizer: --vocab must be an integer >= 258');
const dist = resolve(root, process.env.SUPRA_DIST ?? 'dist');
const EOT = '<|endoftext|>';

async function importDist(rel) {
  const path = join(dist, rel);
  try {
    return await import(pathToFileURL(path).href);
  } catch (e) {
    throw new Error(`train-tokenizer: cannot load ${path} (${e.message}); run \`npm run build\` first or set SUPRA_DIST`);
  }
}
const { embeddedCorpus } = await importDist('src/train/data/corpus.js');
const { loadTokenizer } = await importDist('src/io/tokenizer.js');

/** GPT-2's byte -> printable character table (bytes_to_unicode): printable Latin-1 bytes map to themselves. */
function byteSymbols() {
  const direct = [];
  for (let b = 0x21; b <= 0x7e; b++) direct.push(b);
  for (let b = 0xa1; b <= 0xac; b++) direct.push(b);
  for (let b = 0xae; b <= 0xff; b++) direct.push(b);
  const symbols = new Array(256);
  let next = 0;
  for (let b = 0; b < 256; b++) symbols[b] = direct.includes(b) ? String.fromCodePoint(b) : String.fromCodePoint(256 + next++);
  return symbols;
}

const work = mkdtempSync(join(tmpdir(), 'supra-train-tokenizer-'));
try {
  // 1. the corpus as one text file (the trainer reads files line by line)
  const docs = [...embeddedCorpus()];
  const corpusPath = join(work, 'corpus.txt');
  writeFileSync(corpusPath, docs.join('\n') + '\n');
  const characters = docs.reduce((n, d) => n + d.length, 0);
  console.log(`corpus: ${docs.length} documents, ${characters} characters`);

  // 2. train with the default BPE trainer on byte-level pre-tokenized words
  const trainer = new Tokenizer(BPE.empty());
  trainer.setPreTokenizer(byteLevelPreTokenizer(false, true));
  trainer.train([corpusPath]);
  const trainedPath = join(work, 'trained.json');
  trainer.save(trainedPath, false);
  const trained = JSON.parse(readFileSync(trainedPath, 'utf8'));
  const learned = trained.model.merges.map((m) => (Array.isArray(m) ? m : m.split(' ')));

  // 3. the final vocabulary: <|endoftext|>, 256 byte symbols, then merges in order
  const vocab = { [EOT]: 0 };
  for (const s of byteSymbols()) vocab[s] = Object.keys(vocab).length;
  const merges = [];
  let size = Object.keys(vocab).length;
  for (const [a, b] of learned) {
    if (size >= vocabSize) break;
    if (!(a in vocab) || !(b in vocab)) throw new Error(`train-tokenizer: merge ${a} ${b} uses a token not yet in the vocabulary`);
    merges.push([a, b]);
    if (!(a + b in vocab)) vocab[a + b] = size++;
  }
  if (size < vocabSize) throw new Error(`train-tokenizer: the corpus gave only ${size} ids, fewer than --vocab ${vocabSize}`);

  const special = { id: 0, content: EOT, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
  const tokenizerConfig = {
    add_bos_token: false,
    add_eos_token: false,
    added_tokens_decoder: { 0: special },
    bos_token: EOT,
    clean_up_tokenization_spaces: false,
    eos_token: EOT,
    model_max_length: maxLength,
    pad_token: EOT,
    tokenizer_class: 'PreTrainedTokenizerFast',
    unk_token: null,
  };

  // 4. write both files atomically
  mkdirSync(outDir, { recursive: true });
  const write = (name, text) => {
    const path = join(outDir, name);
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, text);
    renameSync(tmp, path);
    return path;
  };
  // one merge per line keeps the file small and diffable
  const mergesText = '[\n' + merges.map((m) => `      ${JSON.stringify(m)}`).join(',\n') + '\n    ]';
  const tokText = JSON.stringify({ ...tokenizerJson, model: { ...tokenizerJson.model, merges: '@MERGES@' } }, null, 2).replace('"@MERGES@"', mergesText);
  const tokPath = write('tokenizer.json', tokText + '\n');
  write('tokenizer_config.json', JSON.stringify(tokenizerConfig, null, 2) + '\n');
  const sha = createHash('sha256').update(readFileSync(tokPath)).digest('hex');
  console.log(`wrote ${tokPath} (${size} ids, ${merges.length} merges, sha256 ${sha.slice(0, 16)}) and tokenizer_config.json`);

  // 5. check: the Rust tokenizer and supra's loader agree on ids and round trips, on a sample of the corpus
  const rust = Tokenizer.fromFile(tokPath);
  const ours = loadTokenizer(outDir);
  if (ours.eos_token_id !== 0 || ours.bos_token_id !== 0 || ours.pad_token_id !== 0 || ours.vocab_size !== vocabSize) {
    throw new Error(`train-tokenizer: loadTokenizer sees eos ${ours.eos_token_id}, bos ${ours.bos_token_id}, pad ${ours.pad_token_id}, vocab ${ours.vocab_size}`);
  }
  const samples = docs.filter((_, i) => i % 97 === 0);
  samples.push('  two leading spaces,\ttabs\tand trailing  ', 'naïve café — “quotes” 日本語 🙂', `a${EOT}b`, '\n\n', 'x');
  let checked = 0;
  for (const text of samples) {
    const want = (await rust.encode(text, null, { addSpecialTokens: true })).getIds();
    const got = ours.encode(text);
    if (want.length !== got.length || want.some((id, i) => id !== got[i])) throw new Error(`train-tokenizer: encodings differ on ${JSON.stringify(text.slice(0, 80))}`);
    const back = ours.decode(got);
    const rustBack = await rust.decode(want, false);
    if (back !== text || rustBack !== text) throw new Error(`train-tokenizer: decode(encode(x)) != x on ${JSON.stringify(text.slice(0, 80))}`);
    checked++;
  }
  // corpus size in tokens, with the fast tokenizer (plus one eos per document)
  let tokens = 0;
  for (let i = 0; i < docs.length; i += 1000) {
    const batch = await rust.encodeBatch(docs.slice(i, i + 1000));
    for (const e of batch) tokens += e.getLength() + 1;
  }
  console.log(`checked ${checked} samples: identical ids and exact round trips in both implementations`);
  console.log(`corpus: ${tokens} tokens including one <|endoftext|> per document (${(characters / (tokens - docs.length)).toFixed(2)} characters per token)`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
