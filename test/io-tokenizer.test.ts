import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadTokenizer } from '../src/io/tokenizer.js';
import { ChatTemplate } from '../src/serve/chat.js';
import { errorOf } from './helpers/errors.js';
import { tempRoot, freshDirs } from './helpers/tmp.js';
import { bpeTokenizerJson, LLAMA_SPECIALS, SPACE } from './helpers/tokenizers.js';

const root = tempRoot('supra-io-tok-');
const freshDir = freshDirs(root, 't');

/**
 * A tiny Llama-2-style tokenizer.json built by hand: SentencePiece BPE with byte fallback.
 * ids: <unk>=0 <s>=1 </s>=2, <0x00>..<0xFF> = 3..258, then characters and merged pieces, then an
 * added chat token <|im_end|>.
 */
function tinyTokenizer(): { json: Record<string, unknown>; vocab: Record<string, number>; imEnd: number } {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  const merges: Array<[string, string]> = [
    ['l', 'l'],
    [SPACE, 'h'],
    ['e', 'll'],
    [`${SPACE}h`, 'ell'],
    [`${SPACE}hell`, 'o'],
    [SPACE, 'w'],
    ['o', 'r'],
    [`${SPACE}w`, 'or'],
    ['l', 'd'],
    [`${SPACE}wor`, 'ld'],
  ];
  for (const piece of [SPACE, 'h', 'e', 'l', 'o', 'w', 'r', 'd', ...merges.map(([a, b]) => a + b)]) {
    if (!(piece in vocab)) vocab[piece] = Object.keys(vocab).length;
  }
  const imEnd = Object.keys(vocab).length;
  const json = bpeTokenizerJson({
    vocab,
    merges: merges.map(([a, b]) => `${a} ${b}`),
    specials: [...LLAMA_SPECIALS, [imEnd, '<|im_end|>']],
    bosInFront: true,
    bosBeforeSecond: true,
    sentencePiece: true,
    byteFallback: true,
    fuseUnk: true,
  });
  return { json, vocab, imEnd };
}

const TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}<|im_end|>{% endfor %}";

function folder(files: Record<string, unknown>): string {
  const dir = freshDir();
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(join(dir, name), typeof content === 'string' ? content : JSON.stringify(content));
  }
  return dir;
}

test('encode/decode with a hand-built SentencePiece BPE: merges, BOS, byte fallback', () => {
  const { json, vocab, imEnd } = tinyTokenizer();
  const dir = folder({
    'tokenizer.json': json,
    'tokenizer_config.json': {
      bos_token: '<s>',
      eos_token: { content: '</s>', lstrip: false, normalized: false, rstrip: false, single_word: false, __type: 'AddedToken' },
      unk_token: '<unk>',
      pad_token: null,
      clean_up_tokenization_spaces: false,
      chat_template: TEMPLATE,
    },
    'config.json': { bos_token_id: 1, eos_token_id: [2, imEnd] },
  });
  const tok = loadTokenizer(dir);
  assert.deepEqual(tok.encode('hello world'), [1, vocab[`${SPACE}hello`], vocab[`${SPACE}world`]]);
  assert.deepEqual(tok.encode('hello world', { add_special_tokens: false }), [vocab[`${SPACE}hello`], vocab[`${SPACE}world`]]);
  // "hold": no merge makes "▁hold" (ld merges but ▁h+o+ld stays apart)
  assert.deepEqual(tok.encode('hold', { add_special_tokens: false }), [vocab[`${SPACE}h`], vocab.o, vocab.ld]);
  // characters outside the vocabulary fall back to their UTF-8 bytes: é = C3 A9, ! = 21
  const ids = tok.encode('hello é!', { add_special_tokens: false });
  assert.deepEqual(ids, [vocab[`${SPACE}hello`], vocab[SPACE], 3 + 0xc3, 3 + 0xa9, 3 + 0x21]);
  assert.equal(tok.decode(ids), 'hello é!');
  // the added chat token is matched whole and is special
  const chat = tok.encode('world<|im_end|>', { add_special_tokens: false });
  assert.deepEqual(chat, [vocab[`${SPACE}world`], imEnd]);
  assert.equal(tok.decode([1, ...chat], { skip_special_tokens: true }), 'world');
  assert.equal(tok.decode([1, ...chat], { skip_special_tokens: false }), '<s> world<|im_end|>');
  assert.equal(tok.decode([]), '');
  assert.match(errorOf(() => tok.decode([imEnd + 1])), /tokenizer\.json: cannot decode token id \d+/);

  assert.equal(tok.bos_token_id, 1);
  assert.equal(tok.eos_token_id, 2);
  assert.deepEqual(tok.eos_token_ids, [2, imEnd], 'eos ids from tokenizer_config.json and config.json');
  assert.equal(tok.pad_token_id, null);
  assert.equal(tok.unk_token_id, 0);
  assert.equal(tok.vocab_size, imEnd + 1);
  assert.equal(tok.chat_template, TEMPLATE);
  assert.equal(tok.tokenToId(`${SPACE}hello`), vocab[`${SPACE}hello`]);
  assert.equal(tok.idToToken(vocab.ld!), 'ld');
  assert.equal(tok.tokenToId('not-a-token'), null);
});

test('special ids fall back to config.json / generation_config.json; chat_template.jinja is read', () => {
  const { json, imEnd } = tinyTokenizer();
  const dir = folder({
    'tokenizer.json': json,
    'config.json': { bos_token_id: 1, eos_token_id: 2, pad_token_id: 0 },
    'generation_config.json': { eos_token_id: [2, imEnd] },
    'chat_template.jinja': TEMPLATE,
  });
  const tok = loadTokenizer(dir);
  assert.equal(tok.bos_token_id, 1);
  assert.deepEqual(tok.eos_token_ids, [2, imEnd]);
  assert.equal(tok.pad_token_id, 0);
  assert.equal(tok.chat_template, TEMPLATE);
  assert.equal(tok.chat_template_file, join(dir, 'chat_template.jinja'));
  // a template that does not parse stops the server at start-up, naming its file
  const broken = { ...tok, chat_template: '{% if %}' };
  assert.match(errorOf(() => new ChatTemplate(broken.chat_template, broken)), new RegExp(`${join(dir, 'chat_template.jinja')}: the chat template does not parse`));
  // without any of them
  const bare = loadTokenizer(folder({ 'tokenizer.json': json }));
  assert.equal(bare.bos_token_id, null);
  assert.equal(bare.eos_token_id, null);
  assert.deepEqual(bare.eos_token_ids, []);
  assert.equal(bare.chat_template, null);
  assert.deepEqual(bare.encode('hello').slice(0, 1), [1], 'the post-processor still adds <s>');
  // a list of named templates: "default" is the one used
  const named = loadTokenizer(folder({
    'tokenizer.json': json,
    'tokenizer_config.json': { chat_template: [{ name: 'tool_use', template: 'T' }, { name: 'default', template: TEMPLATE }] },
  }));
  assert.equal(named.chat_template, TEMPLATE);
});

test('missing or broken tokenizer files give errors naming the path', () => {
  const empty = folder({});
  assert.equal(
    errorOf(() => loadTokenizer(empty)),
    `supra: ${join(empty, 'tokenizer.json')}: not found (expected a Hugging Face tokenizer.json in ${empty})`,
  );
  const broken = folder({ 'tokenizer.json': '{"model": {' });
  assert.match(errorOf(() => loadTokenizer(broken)), new RegExp(`${join(broken, 'tokenizer.json')}: not valid JSON`));
  const noModel = folder({ 'tokenizer.json': { version: '1.0' } });
  assert.match(errorOf(() => loadTokenizer(noModel)), /tokenizer\.json: missing "model"/);
  const { json } = tinyTokenizer();
  const badConfig = folder({ 'tokenizer.json': json, 'tokenizer_config.json': '{"bos_token": ' });
  assert.match(errorOf(() => loadTokenizer(badConfig)), /tokenizer_config\.json: not valid JSON/);
  const unknownBos = folder({ 'tokenizer.json': json, 'tokenizer_config.json': { bos_token: '<bos>' } });
  assert.match(errorOf(() => loadTokenizer(unknownBos)), /tokenizer_config\.json: bos_token '<bos>' is not in the vocabulary of .*tokenizer\.json/);
});
