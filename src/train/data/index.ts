// The training data pipeline: readers (.txt, .jsonl, .parquet), the embedded corpus, and tokenized,
// packed, shuffled batches served from a token cache. See docs/data.md.
export { embeddedCorpus, brownDocuments, nlpCorpusDocuments, writeEmbeddedCorpus, embeddedCorpusVersion, detokenizeBrown, brownDocument } from './corpus.js';
export type { EmbeddedCorpusFile } from './corpus.js';
export { expandInputs, globToRegExp, formatOf, EMBEDDED_INPUT, DATA_EXTENSIONS } from './files.js';
export type { ExpandedInputs, DataFormat } from './files.js';
export { readDocuments, readFile, fileLines, fileText, newReadStats, resolveTxtSplit } from './readers.js';
export type { ReadOptions, ReadStats, TextDocument, TxtSplit, SettingName } from './readers.js';
export { openTokenBatches, prepareTokenCache, TokenDataset, sequenceCount, epochPermutation, defaultCacheDir, DATA_DEFAULTS, DocumentEncoder, pieceCut, TOKENIZE_PIECE_CHARS } from './dataset.js';
export type { TokenDataOptions, TokenCache, TokenCacheIndex, SplitIndex } from './dataset.js';
