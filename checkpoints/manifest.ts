// The checkpoint manifest: chunk hashes, size and lineage, in one canonical byte form whose SHA-256 is the checkpoint id.
import { createHash } from 'node:crypto';
import { CheckpointError } from './errors.ts';

export const MANIFEST_VERSION = 1;
export const DEFAULT_CHUNK_SIZE = 1024 * 1024;
/** Chunk sizes accepted: a downloader holds one chunk in memory to verify it, so a manifest cannot make it huge. */
export const MIN_CHUNK_SIZE = 1024;
export const MAX_CHUNK_SIZE = 64 * 1024 * 1024;
/** A checkpoint id or chunk hash: 0x and 64 lowercase hex digits. */
export const HASH_PATTERN = /^0x[0-9a-f]{64}$/;

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export interface CheckpointManifest {
  version: number;
  /** The file format of the assembled bytes. */
  format: 'safetensors';
  /** Total size of the assembled file in bytes. */
  size: number;
  chunkSize: number;
  /** SHA-256 of each chunk, in order; the last chunk may be shorter than chunkSize. */
  chunks: string[];
  /** The model configuration the weights belong to (model/'s plain config object). */
  model: JsonValue;
  /** The checkpoint this one was trained from, or null for a pre-training from scratch. */
  parent: string | null;
  proposal: number | null;
  round: number | null;
  /**
   * SHA-256 of the aggregation strategy's state after this round (optimiser moments, clipping norms), published beside
   * the checkpoint: the next round's aggregate depends on it. Absent for checkpoints no round aggregated.
   */
  state?: string;
}

export function sha256Hex(bytes: Uint8Array): string {
  return `0x${createHash('sha256').update(bytes).digest('hex')}`;
}

/**
 * Canonical JSON: object keys sorted by UTF-16 code unit, no insignificant whitespace, numbers as JSON.stringify
 * writes them. Two parties that agree on the manifest's content agree on its bytes, hence on its id.
 */
export function canonicalJson(value: JsonValue): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) {
      throw new CheckpointError('E_MANIFEST_INVALID', `manifest numbers must be finite, got ${value}`);
    }
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value)
    .filter((k) => value[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k]!)}`).join(',')}}`;
}

export function encodeManifest(manifest: CheckpointManifest): Uint8Array {
  return new TextEncoder().encode(canonicalJson(manifest as unknown as JsonValue));
}

export function checkpointId(manifest: CheckpointManifest): string {
  return sha256Hex(encodeManifest(manifest));
}

/** What a checkpoint's manifest says beside its chunks: the model, its lineage, the chunk size, the strategy state. */
export interface ManifestFields {
  model: JsonValue;
  parent?: string | null;
  proposal?: number | null;
  round?: number | null;
  chunkSize?: number;
  state?: string | null;
}

/** Cuts bytes into chunks and describes them; the caller adds lineage. */
export function buildManifest(bytes: Uint8Array, fields: ManifestFields): CheckpointManifest {
  const chunkSize = fields.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) {
    throw new CheckpointError(
      'E_MANIFEST_INVALID',
      `chunk size must be an integer from ${MIN_CHUNK_SIZE} to ${MAX_CHUNK_SIZE} bytes, got ${chunkSize}`,
    );
  }
  const chunks: string[] = [];
  for (let offset = 0; offset < bytes.length; offset += chunkSize) {
    chunks.push(sha256Hex(bytes.subarray(offset, Math.min(offset + chunkSize, bytes.length))));
  }
  return {
    version: MANIFEST_VERSION,
    format: 'safetensors',
    size: bytes.length,
    chunkSize,
    chunks,
    model: fields.model,
    parent: fields.parent ?? null,
    proposal: fields.proposal ?? null,
    round: fields.round ?? null,
    ...(fields.state ? { state: fields.state } : {}),
  };
}

/** Parses manifest bytes and checks them against the expected id and their own internal consistency. */
export function parseManifest(bytes: Uint8Array, expectedId: string): CheckpointManifest {
  const actualId = sha256Hex(bytes);
  if (actualId !== expectedId) {
    throw new CheckpointError(
      'E_MANIFEST_MISMATCH',
      `manifest hashes to ${actualId}, not to the checkpoint id ${expectedId}: the source serves other or altered data`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (cause) {
    throw new CheckpointError('E_MANIFEST_INVALID', 'manifest is not UTF-8 JSON', { cause });
  }
  const m = parsed as Partial<CheckpointManifest>;
  const problems: string[] = [];
  if (m.version !== MANIFEST_VERSION)
    problems.push(`version ${String(m.version)} (expected ${MANIFEST_VERSION})`);
  if (m.format !== 'safetensors') problems.push(`format ${String(m.format)}`);
  if (!Number.isSafeInteger(m.size) || (m.size as number) < 0) problems.push('size');
  if (
    !Number.isSafeInteger(m.chunkSize) ||
    (m.chunkSize as number) < MIN_CHUNK_SIZE ||
    (m.chunkSize as number) > MAX_CHUNK_SIZE
  )
    problems.push(`chunkSize (from ${MIN_CHUNK_SIZE} to ${MAX_CHUNK_SIZE} bytes)`);
  if (!Array.isArray(m.chunks) || !m.chunks.every((c) => typeof c === 'string' && HASH_PATTERN.test(c))) {
    problems.push('chunks');
  } else if (problems.length === 0 && m.chunks.length !== Math.ceil(m.size! / m.chunkSize!)) {
    problems.push(`chunk count ${m.chunks.length} for ${m.size} bytes in chunks of ${m.chunkSize}`);
  }
  if (m.parent !== null && (typeof m.parent !== 'string' || !HASH_PATTERN.test(m.parent)))
    problems.push('parent');
  if (m.state !== undefined && (typeof m.state !== 'string' || !HASH_PATTERN.test(m.state)))
    problems.push('state');
  if (problems.length > 0) {
    throw new CheckpointError(
      'E_MANIFEST_INVALID',
      `manifest ${expectedId} has an invalid ${problems.join(', ')}`,
    );
  }
  return m as CheckpointManifest;
}

/** Byte range [start, end) of chunk n. */
export function chunkRange(manifest: CheckpointManifest, n: number): [number, number] {
  const start = n * manifest.chunkSize;
  return [start, Math.min(start + manifest.chunkSize, manifest.size)];
}
