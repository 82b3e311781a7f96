// The content-addressed checkpoint store on disk: chunks named by their SHA-256, manifests named by the checkpoint id.
import { mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { CheckpointError } from './errors.ts';
import {
  HASH_PATTERN,
  buildManifest,
  chunkRange,
  encodeManifest,
  parseManifest,
  sha256Hex,
  type CheckpointManifest,
  type ManifestFields,
} from './manifest.ts';

/**
 * Layout under the store's directory:
 *   chunks/<64 hex>      one file per distinct chunk (shared by checkpoints that share bytes)
 *   manifests/<64 hex>   the canonical manifest bytes; present only once all its chunks are
 *   blobs/<64 hex>       whole objects named by their SHA-256: round updates, strategy states
 *   tmp/                 files being written; renamed into place when complete and fsync'd
 */
export interface CheckpointStore {
  readonly dir: string;
  put(bytes: Uint8Array, fields: ManifestFields): Promise<{ id: string; manifest: CheckpointManifest }>;
  has(id: string): Promise<boolean>;
  list(): Promise<string[]>;
  /** The manifest's exact bytes (what the id hashes), or null when the store lacks the checkpoint. */
  getManifestBytes(id: string): Promise<Uint8Array | null>;
  getManifest(id: string): Promise<CheckpointManifest | null>;
  /** Path of a chunk file, for streaming; the chunk is named by its hash. */
  chunkPath(hash: string): string;
  readChunk(hash: string): Promise<Uint8Array | null>;
  /** The assembled file, every chunk checked against the manifest. */
  readCheckpoint(id: string): Promise<Uint8Array>;
  /** Stores bytes named by their SHA-256 (an update payload, a strategy state), durably; returns the hash. */
  putBlob(bytes: Uint8Array): Promise<string>;
  /** Path of a blob file (it may not exist). */
  blobPath(hash: string): string;
  /** A blob's bytes, checked against its name; null when the store lacks it. */
  readBlob(hash: string): Promise<Uint8Array | null>;
  deleteBlob(hash: string): Promise<void>;
}

export async function openStore(dir: string): Promise<CheckpointStore> {
  await Promise.all(
    ['chunks', 'manifests', 'blobs', 'tmp'].map((sub) => mkdir(join(dir, sub), { recursive: true })),
  );
  return new DiskStore(dir);
}

function hexName(hash: string): string {
  if (!HASH_PATTERN.test(hash)) {
    throw new CheckpointError(
      'E_BAD_ID',
      `not a checkpoint id or chunk hash (0x + 64 lowercase hex): ${JSON.stringify(hash)}`,
    );
  }
  return hash.slice(2);
}

/**
 * Writes a file so that it appears under its final name complete or not at all. With `durable` (the default) it also
 * survives a crash once this returns: the data and the directory entry are fsync'd.
 */
export async function writeFileAtomic(
  tmpDir: string,
  finalPath: string,
  bytes: Uint8Array,
  { durable = true }: { durable?: boolean } = {},
): Promise<void> {
  const tmp = join(tmpDir, `${randomBytes(8).toString('hex')}.tmp`);
  const handle = await open(tmp, 'w');
  try {
    await handle.writeFile(bytes);
    if (durable) await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, finalPath);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
  if (durable) await syncPath(dirname(finalPath));
}

/** fsync of a file or directory by path. */
export async function syncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function readOrNull(path: string): Promise<Uint8Array | null> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

class DiskStore implements CheckpointStore {
  constructor(readonly dir: string) {}

  async put(bytes: Uint8Array, fields: Parameters<CheckpointStore['put']>[1]) {
    const manifest = buildManifest(bytes, fields);
    const tmpDir = join(this.dir, 'tmp');
    // Chunks are written without waiting on the disk one by one, then made durable together (the file system
    // coalesces the syncs), and only then does the manifest appear: a manifest never names a chunk a crash lost.
    const written: string[] = [];
    for (let n = 0; n < manifest.chunks.length; n++) {
      const path = this.chunkPath(manifest.chunks[n]!);
      const exists = await stat(path).then(
        () => true,
        () => false,
      );
      if (!exists) {
        await writeFileAtomic(tmpDir, path, bytes.subarray(...chunkRange(manifest, n)), { durable: false });
        written.push(path);
      }
    }
    await Promise.all(written.map(syncPath));
    if (written.length > 0) await syncPath(join(this.dir, 'chunks'));
    const manifestBytes = encodeManifest(manifest);
    const id = sha256Hex(manifestBytes);
    await writeFileAtomic(tmpDir, join(this.dir, 'manifests', hexName(id)), manifestBytes);
    return { id, manifest };
  }

  async has(id: string) {
    return stat(join(this.dir, 'manifests', hexName(id))).then(
      () => true,
      () => false,
    );
  }

  async list() {
    const names = await readdir(join(this.dir, 'manifests'));
    return names.filter((n) => /^[0-9a-f]{64}$/.test(n)).map((n) => `0x${n}`);
  }

  getManifestBytes(id: string) {
    return readOrNull(join(this.dir, 'manifests', hexName(id)));
  }

  async getManifest(id: string) {
    const bytes = await this.getManifestBytes(id);
    return bytes === null ? null : parseManifest(bytes, id);
  }

  chunkPath(hash: string) {
    return join(this.dir, 'chunks', hexName(hash));
  }

  readChunk(hash: string) {
    return readOrNull(this.chunkPath(hash));
  }

  async putBlob(bytes: Uint8Array) {
    const hash = sha256Hex(bytes);
    const path = this.blobPath(hash);
    const exists = await stat(path).then(
      (st) => st.size === bytes.length,
      () => false,
    );
    if (!exists) await writeFileAtomic(join(this.dir, 'tmp'), path, bytes);
    return hash;
  }

  blobPath(hash: string) {
    return join(this.dir, 'blobs', hexName(hash));
  }

  async readBlob(hash: string) {
    const bytes = await readOrNull(this.blobPath(hash));
    if (bytes === null) return null;
    if (sha256Hex(bytes) !== hash)
      throw new CheckpointError('E_CHUNK_CORRUPT', `blob ${hash} is corrupt in the store at ${this.dir}`);
    return bytes;
  }

  async deleteBlob(hash: string) {
    await rm(this.blobPath(hash), { force: true });
  }

  async readCheckpoint(id: string) {
    const manifest = await this.getManifest(id);
    if (manifest === null)
      throw new CheckpointError('E_NOT_FOUND', `checkpoint ${id} is not in the store at ${this.dir}`);
    const out = new Uint8Array(manifest.size);
    for (let n = 0; n < manifest.chunks.length; n++) {
      const expected = manifest.chunks[n]!;
      const chunk = await this.readChunk(expected);
      const [start, end] = chunkRange(manifest, n);
      if (chunk === null || chunk.length !== end - start || sha256Hex(chunk) !== expected) {
        throw new CheckpointError(
          'E_CHUNK_CORRUPT',
          `chunk ${n} of checkpoint ${id} is missing or corrupt in the store`,
        );
      }
      out.set(chunk, start);
    }
    return out;
  }
}
