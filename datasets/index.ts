// datasets/: corpora and a trainer's own data, the byte-level tokenizer, sharding, manifests with Merkle roots and proofs.
export { DatasetError } from './errors.ts';
export { MANIFEST_TIMEOUT_MS, MAX_MANIFEST_BYTES, type FetchManifestOptions } from './resolve.ts';
export type { Dataset, DatasetRecord } from './types.ts';
export {
  BOS,
  CLS,
  EOS,
  PAD,
  TOKENIZER_ID,
  VOCAB_SIZE,
  decode,
  encode,
  type EncodeOptions,
} from './tokenizer.ts';
export {
  BUILTIN_NAMES,
  builtinInfo,
  decodeUtf8,
  isBuiltin,
  loadBuiltin,
  loadDataset,
  loadOwn,
  type BuiltinInfo,
  type BuiltinName,
  type LoadDatasetParameters,
  type LoadOwnOptions,
} from './sources.ts';
export { builtinStats, type BuiltinStats } from './builtin-stats.ts';
export { Prng } from './prng.ts';
export {
  DEFAULT_ALPHA,
  DEFAULT_EVAL_FRACTION,
  DEFAULT_SEED,
  SHARD_SCHEMES,
  labelSkew,
  shardDataset,
  type ShardParameters,
  type ShardPlan,
  type ShardScheme,
} from './sharding.ts';
export {
  LEAF_TAG,
  MANIFEST_FORMAT,
  buildManifest,
  evalProof,
  evalRecords,
  manifestRoot,
  recordHash,
  recordProof,
  registerDatasetFields,
  shardProof,
  shardRecords,
  verifyManifest,
  verifyRecord,
  verifyShard,
  type DatasetManifest,
  type ManifestRecord,
  type ManifestShard,
  type RecordProof,
  type RegisterDatasetFields,
  type ShardProof,
} from './manifest.ts';
export {
  classificationExamples,
  lmWindows,
  type ClassificationExample,
  type LmWindowsOptions,
} from './examples.ts';
export { datasetForManifest, fetchManifest } from './resolve.ts';
export {
  DEFAULT_EVAL_EXAMPLES,
  examplesFor,
  heldOutExamples,
  type Example,
  type ExampleShape,
} from './heldout.ts';
