// The training data pipeline: readers (.txt, .jsonl, .parquet), the embedded corpus, and tokenized,
// packed, shuffled batches served from a token cache. See docs/data.md.
export { embeddedCorpus, brownDocuments, nlpCorpusDocuments, writeEmbeddedCorpus, embeddedCorpusVersion, detokenizeBrown, brownDocument } from './corpus.js';
export type { EmbeddedCorpusFile } from './corpus.js';
export { expandInputs, globToRegExp, formatOf, EMBEDDED_INPUT, DATA_EXTENSIONS } from './files.js';
export type { ExpandedInputs, DataFormat } from './files.js';
export { readDocuments, readFile, fileLines, newReadStats } from './readers.js';
export type { ReadOptions, ReadStats, TextDocument } from './readers.js';
export { openTokenBatches, prepareTokenCache, TokenDataset, sequenceCount, epochPermutation, defaultCacheDir } from './dataset.js';
export type { TokenDataOptions, TokenCache, TokenCacheIndex, SplitIndex } from './dataset.js';
