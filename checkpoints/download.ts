// Verified, resumable, parallel download of a checkpoint from one or more sources, checked chunk by chunk against its id.
import { mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import type { Logger } from 'pino';
import { CheckpointError } from './errors.ts';
import { chunkRange, encodeManifest, parseManifest, sha256Hex, type CheckpointManifest } from './manifest.ts';
import { syncPath, writeFileAtomic } from './store.ts';

/** Where chunks can be fetched from. Sources are tried in order for each chunk; a bad answer moves on to the next. */
export interface CheckpointSource {
  name: string;
  manifestUrl(id: string): string;
  chunkUrl(id: string, n: number, hash: string): string;
}

/** A fedtune checkpoint server (a coordinator, or `serveCheckpoints`) at a base URL. */
export function httpSource(baseUrl: string): CheckpointSource {
  const base = baseUrl.replace(/\/+$/, '');
  return {
    name: base,
    manifestUrl: (id) => `${base}/checkpoints/${id}/manifest`,
    chunkUrl: (id, n) => `${base}/checkpoints/${id}/chunks/${n}`,
  };
}

/**
 * Any host that lays out the same objects under other URLs, e.g. an S3-compatible bucket or an IPFS gateway
 * serving a directory: `{id}`, `{n}` and `{hash}` (a chunk's SHA-256 as 0x…) are replaced in the templates, and
 * `{idhex}` / `{hashhex}` by the same without `0x`, as the store names its files.
 */
export function templateSource(manifestTemplate: string, chunkTemplate: string): CheckpointSource {
  const fill = (t: string, vars: Record<string, string>) =>
    t.replace(/\{(id|idhex|n|hash|hashhex)\}/g, (_, k: string) => vars[k]!);
  return {
    name: chunkTemplate,
    manifestUrl: (id) => fill(manifestTemplate, { id, idhex: id.slice(2), n: '', hash: '', hashhex: '' }),
    chunkUrl: (id, n, hash) =>
      fill(chunkTemplate, { id, idhex: id.slice(2), n: String(n), hash, hashhex: hash.slice(2) }),
  };
}

/** Parses a `--source` argument: a base URL, or `manifestTemplate|chunkTemplate`. */
export function parseSource(spec: string): CheckpointSource {
  const parts = spec.split('|');
  for (const p of parts) {
    if (!/^https?:\/\//.test(p)) {
      throw new CheckpointError(
        'E_BAD_SOURCE',
        `a source is an http(s) URL or "MANIFEST_TEMPLATE|CHUNK_TEMPLATE", got ${JSON.stringify(spec)}`,
      );
    }
  }
  if (parts.length === 1) return httpSource(parts[0]!);
  if (parts.length === 2) return templateSource(parts[0]!, parts[1]!);
  throw new CheckpointError(
    'E_BAD_SOURCE',
    `a source has at most two templates separated by "|", got ${JSON.stringify(spec)}`,
  );
}

export interface DownloadProgress {
  bytesDone: number;
  bytesTotal: number;
  chunksDone: number;
  chunksTotal: number;
  /** Chunks found already verified on disk from an earlier, interrupted download. */
  chunksReused: number;
}

export interface DownloadCheckpointParameters {
  id: string;
  sources: CheckpointSource[];
  outDir: string;
  concurrency?: number;
  /** Per-request timeout. */
  timeoutMs?: number;
  onProgress?: (progress: DownloadProgress) => void;
  logger?: Logger;
  signal?: AbortSignal;
}

export interface DownloadCheckpointResult {
  manifest: CheckpointManifest;
  /** The assembled, verified file: outDir/model.safetensors. */
  path: string;
  chunksFetched: number;
  chunksReused: number;
}

export const CHECKPOINT_FILE = 'model.safetensors';
export const MANIFEST_FILE = 'manifest.json';

/**
 * GET into memory with a timeout, an abort signal and a size limit. node:http rather than fetch: on Node 20 it reads
 * loopback about five times faster (bench/checkpoints).
 */
function fetchBytes(
  url: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  limit: number,
): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const get = url.startsWith('https:') ? httpsGet : httpGet;
    const req = get(url, { signal, timeout: timeoutMs }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`HTTP ${res.statusCode}`));
        return;
      }
      const declared = Number(res.headers['content-length'] ?? NaN);
      if (declared > limit) {
        req.destroy();
        reject(new Error(`answer of ${declared} bytes where at most ${limit} were expected`));
        return;
      }
      const parts: Buffer[] = [];
      let received = 0;
      res.on('data', (part: Buffer) => {
        received += part.length;
        if (received > limit) {
          req.destroy();
          reject(new Error(`answer of more than ${limit} bytes`));
          return;
        }
        parts.push(part);
      });
      res.on('end', () => resolve(new Uint8Array(Buffer.concat(parts, received))));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

async function readIfExists(path: string): Promise<Uint8Array | null> {
  try {
    return new Uint8Array(await readFile(path));
  } catch {
    return null;
  }
}

/** Largest manifest accepted from a source: generous for millions of chunks, small enough to refuse a flood. */
const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;

/** Whether a process with this id runs on this machine (EPERM: it does, under another user). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * This download's own working folder, `.partial-<id prefix>-<pid>-<random>`. Two downloads of one checkpoint into one
 * folder (two trainers sharing a cache) each write and then delete only their own, so neither pulls the other's files
 * from under it. The chunks of an interrupted download are resumed: a folder left by a process that is gone (or by an
 * older fedtune, without a pid) is taken over by renaming it, which only one taker can win.
 */
const working = new Set<string>();

async function claimPartial(outDir: string, id: string): Promise<string> {
  const prefix = `.partial-${id.slice(2, 18)}`;
  const mine = join(outDir, `${prefix}-${process.pid}-${randomBytes(4).toString('hex')}`);
  const names = await readdir(outDir).catch(() => [] as string[]);
  for (const name of names) {
    if (name !== prefix) {
      const owner = name.startsWith(prefix) ? /^-(\d+)-[0-9a-f]+$/.exec(name.slice(prefix.length)) : null;
      if (owner === null) continue;
      const pid = Number(owner[1]);
      // This process's own folders are in use while `working` lists them; others were left by an aborted download.
      if (pid === process.pid ? working.has(join(outDir, name)) : alive(pid)) continue;
    }
    try {
      working.add(mine);
      await rename(join(outDir, name), mine);
      return mine;
    } catch {
      working.delete(mine); // another download took it first
    }
  }
  working.add(mine);
  await mkdir(mine, { recursive: true });
  return mine;
}

export async function downloadCheckpoint(
  params: DownloadCheckpointParameters,
): Promise<DownloadCheckpointResult> {
  const { id, sources, outDir } = params;
  if (sources.length === 0) throw new CheckpointError('E_BAD_SOURCE', 'no source to download from');
  await mkdir(outDir, { recursive: true });
  const partial = await claimPartial(outDir, id);
  try {
    return await downloadInto(partial, params);
  } finally {
    working.delete(partial);
  }
}

async function downloadInto(
  partial: string,
  params: DownloadCheckpointParameters,
): Promise<DownloadCheckpointResult> {
  const { id, sources, outDir, concurrency = 4, timeoutMs = 30_000, onProgress, logger, signal } = params;

  // The manifest: from an earlier attempt if it still hashes to the id, else from the first source that serves it.
  let manifestBytes = await readIfExists(join(partial, MANIFEST_FILE));
  if (manifestBytes === null || sha256Hex(manifestBytes) !== id) {
    const failures: string[] = [];
    manifestBytes = null;
    for (const source of sources) {
      try {
        const bytes = await fetchBytes(source.manifestUrl(id), timeoutMs, signal, MAX_MANIFEST_BYTES);
        parseManifest(bytes, id);
        manifestBytes = bytes;
        break;
      } catch (error) {
        failures.push(`${source.name}: ${(error as Error).message}`);
      }
    }
    if (manifestBytes === null) {
      throw new CheckpointError(
        'E_MANIFEST_UNAVAILABLE',
        `no source served a manifest that hashes to ${id} (${failures.join('; ')}): check that the source is up and serves this checkpoint, or name another with --source URL (a coordinator's http://host:port, or "MANIFEST_TEMPLATE|CHUNK_TEMPLATE" for a bucket)`,
      );
    }
    await writeFileAtomic(partial, join(partial, MANIFEST_FILE), manifestBytes);
  }
  const manifest = parseManifest(manifestBytes, id);

  const progress: DownloadProgress = {
    bytesDone: 0,
    bytesTotal: manifest.size,
    chunksDone: 0,
    chunksTotal: manifest.chunks.length,
    chunksReused: 0,
  };
  let chunksFetched = 0;
  const abort = new AbortController();
  const linked = signal ? AbortSignal.any([signal, abort.signal]) : abort.signal;

  const getChunk = async (n: number): Promise<void> => {
    const expected = manifest.chunks[n]!;
    const [start, end] = chunkRange(manifest, n);
    const path = join(partial, `chunk-${n}`);
    const existing = await readIfExists(path);
    if (existing !== null && existing.length === end - start && sha256Hex(existing) === expected) {
      progress.chunksReused++;
    } else {
      const failures: string[] = [];
      let good: Uint8Array | null = null;
      let corrupt = false;
      for (const source of sources) {
        if (linked.aborted) return;
        const url = source.chunkUrl(id, n, expected);
        try {
          const bytes = await fetchBytes(url, timeoutMs, linked, end - start);
          const actual = sha256Hex(bytes);
          if (bytes.length !== end - start || actual !== expected) {
            corrupt = true;
            failures.push(`${url} sent ${bytes.length} bytes hashing to ${actual}`);
            logger?.warn(
              { chunk: n, url, actual, expected },
              'chunk failed verification; trying the next source',
            );
            continue;
          }
          good = bytes;
          break;
        } catch (error) {
          if (linked.aborted) return;
          failures.push(`${url}: ${(error as Error).message}`);
        }
      }
      if (good === null) {
        await rm(path, { force: true });
        throw new CheckpointError(
          corrupt ? 'E_CHUNK_CORRUPT' : 'E_CHUNK_UNAVAILABLE',
          `chunk ${n} of checkpoint ${id} (expected SHA-256 ${expected}) ${corrupt ? 'failed verification' : 'could not be fetched'} from every source: ${failures.join('; ')}; ${corrupt ? 'the sources serve altered data: name another with --source' : 'run the download again to resume, or name another source with --source'}`,
        );
      }
      // Not fsync'd: a resumed download re-hashes every chunk it finds, so a torn chunk is simply fetched again.
      await writeFileAtomic(partial, path, good, { durable: false });
      chunksFetched++;
    }
    progress.chunksDone++;
    progress.bytesDone += end - start;
    onProgress?.({ ...progress });
  };

  // A fixed pool of workers pulling chunk numbers; the first failure stops the rest.
  let next = 0;
  const workers = Array.from(
    { length: Math.max(1, Math.min(concurrency, manifest.chunks.length)) },
    async () => {
      while (next < manifest.chunks.length && !linked.aborted) {
        const n = next++;
        try {
          await getChunk(n);
        } catch (error) {
          abort.abort();
          throw error;
        }
      }
    },
  );
  const settled = await Promise.allSettled(workers);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  if (signal?.aborted) throw new CheckpointError('E_ABORTED', 'download interrupted; run it again to resume');

  // Assemble: every chunk is verified on disk; the file appears under its final name only when complete.
  const tmpPath = join(partial, `${CHECKPOINT_FILE}.${randomBytes(4).toString('hex')}.tmp`);
  const out = await open(tmpPath, 'w');
  try {
    for (let n = 0; n < manifest.chunks.length; n++) {
      await out.write(await readFile(join(partial, `chunk-${n}`)));
    }
    await out.sync();
  } finally {
    await out.close();
  }
  const finalPath = join(outDir, CHECKPOINT_FILE);
  await writeFileAtomic(partial, join(outDir, MANIFEST_FILE), encodeManifest(manifest));
  await rename(tmpPath, finalPath);
  await syncPath(outDir);
  await rm(partial, { recursive: true, force: true });
  logger?.info(
    { id, bytes: manifest.size, chunksFetched, chunksReused: progress.chunksReused },
    'checkpoint downloaded and verified',
  );
  return { manifest, path: finalPath, chunksFetched, chunksReused: progress.chunksReused };
}

/** Re-checks a downloaded checkpoint folder against a checkpoint id: the manifest's hash, then every chunk of the file. */
export async function verifyCheckpointDir(dir: string, id: string): Promise<CheckpointManifest> {
  const manifestBytes = await readIfExists(join(dir, MANIFEST_FILE));
  if (manifestBytes === null)
    throw new CheckpointError('E_NOT_FOUND', `${join(dir, MANIFEST_FILE)} is missing`);
  const actual = sha256Hex(manifestBytes);
  if (actual !== id) {
    // A folder on disk is not a source that serves altered data: it simply holds another checkpoint (or was edited).
    throw new CheckpointError(
      'E_MANIFEST_MISMATCH',
      `${dir} holds checkpoint ${actual}, not ${id}: pass --id ${actual} to check it against that one, or verify the folder ${id} was downloaded into`,
    );
  }
  const manifest = parseManifest(manifestBytes, id);
  const path = join(dir, CHECKPOINT_FILE);
  const size = await stat(path).then(
    (s) => s.size,
    () => -1,
  );
  if (size !== manifest.size) {
    throw new CheckpointError(
      'E_CHUNK_CORRUPT',
      `${path} has ${size < 0 ? 'no file' : `${size} bytes`}; the manifest says ${manifest.size}: download it again (fedtune checkpoint download ${id} --out ${dir})`,
    );
  }
  const bytes = new Uint8Array(await readFile(path));
  for (let n = 0; n < manifest.chunks.length; n++) {
    if (sha256Hex(bytes.subarray(...chunkRange(manifest, n))) !== manifest.chunks[n]) {
      throw new CheckpointError(
        'E_CHUNK_CORRUPT',
        `chunk ${n} of ${path} does not match checkpoint ${id}: the file was altered or damaged; download it again (fedtune checkpoint download ${id} --out ${dir})`,
      );
    }
  }
  return manifest;
}
