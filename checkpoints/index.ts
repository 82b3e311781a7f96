// Public face of checkpoints/: the content-addressed store, its HTTP serving and the verified downloader.
export { CheckpointError } from './errors.ts';
export {
  DEFAULT_CHUNK_SIZE,
  MAX_CHUNK_SIZE,
  MIN_CHUNK_SIZE,
  HASH_PATTERN,
  MANIFEST_VERSION,
  buildManifest,
  canonicalJson,
  checkpointId,
  chunkRange,
  encodeManifest,
  parseManifest,
  sha256Hex,
  type CheckpointManifest,
  type JsonValue,
} from './manifest.ts';
export { openStore, syncPath, writeFileAtomic, type CheckpointStore } from './store.ts';
export {
  handleBlobRequest,
  handleCheckpointRequest,
  parseRange,
  serveCheckpoints,
  type CheckpointServer,
} from './server.ts';
export {
  CHECKPOINT_FILE,
  MANIFEST_FILE,
  downloadCheckpoint,
  httpSource,
  parseSource,
  templateSource,
  verifyCheckpointDir,
  type CheckpointSource,
  type DownloadCheckpointParameters,
  type DownloadCheckpointResult,
  type DownloadProgress,
} from './download.ts';
export {
  buildProvenance,
  listCheckpoints,
  parentOf,
  type CheckpointSummary,
  type Provenance,
  type ProvenanceNetwork,
  type ProvenanceRound,
  type RoundKind,
} from './provenance.ts';
