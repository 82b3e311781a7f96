// Where a registered dataset's manifest and records come from: its manifestUri (file, path or HTTP), checked against
// the on-chain root, and the records of a built-in corpus by name or of a trainer's own data by path.
import { open, realpath } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { isAbsolute, relative, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DatasetError } from './errors.ts';
import { verifyManifest, type DatasetManifest } from './manifest.ts';
import { isBuiltin, loadDataset } from './sources.ts';
import type { Dataset } from './types.ts';

/** Largest manifest accepted by default (a manifest lists every record's hash: 100k records is about 12 MB). */
export const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;
/** Default time for the whole manifest to arrive, not just between two bytes (a slow drip is cut off too). */
export const MANIFEST_TIMEOUT_MS = 30_000;

export interface FetchManifestOptions {
  /** The whole read, connection to last byte (default MANIFEST_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Largest manifest accepted (default MAX_MANIFEST_BYTES). */
  maxBytes?: number;
  /**
   * Folders a local manifest (a path or file:// URL) may be read from; anything resolving outside them (symbolic links
   * included) is refused with E_MANIFEST_URI. Undefined: any local path of a regular file (a trainer or consumer
   * reading its own files). A coordinator, which reads URIs anyone registered, passes its data directory.
   */
  localRoots?: readonly string[];
}

/** Failures say what went wrong, never what the bytes were: these messages go on chain in failRound reasons. */
class Unavailable extends Error {}

function fetchBytes(url: string, timeoutMs: number, maxBytes: number): Promise<Uint8Array> {
  const get = url.startsWith('https:') ? httpsGet : httpGet;
  return new Promise((resolve, reject) => {
    const req = get(url, { timeout: timeoutMs }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Unavailable(`HTTP ${res.statusCode}`));
        return;
      }
      const declared = Number(res.headers['content-length'] ?? 0);
      if (declared > maxBytes) {
        req.destroy(new Unavailable(`declares ${declared} bytes, more than the limit of ${maxBytes}`));
        return;
      }
      const parts: Buffer[] = [];
      let size = 0;
      res.on('data', (d: Buffer) => {
        size += d.length;
        if (size > maxBytes) req.destroy(new Unavailable(`more than the limit of ${maxBytes} bytes`));
        else parts.push(d);
      });
      res.on('end', () => resolve(new Uint8Array(Buffer.concat(parts))));
      res.on('error', reject);
    });
    const deadline = setTimeout(
      () => req.destroy(new Unavailable(`not complete within ${timeoutMs} ms`)),
      timeoutMs,
    );
    req.on('close', () => clearTimeout(deadline));
    req.on('timeout', () => req.destroy(new Unavailable(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

async function readLocal(
  uri: string,
  options: Required<Omit<FetchManifestOptions, 'localRoots'>> & FetchManifestOptions,
) {
  const path = resolvePath(uri.startsWith('file:') ? fileURLToPath(uri) : uri);
  const real = await realpath(path).catch(() => {
    throw new Unavailable('no such file');
  });
  if (options.localRoots !== undefined) {
    const roots = await Promise.all(
      options.localRoots.map((r) => realpath(resolvePath(r)).catch(() => null)),
    );
    const inside = roots.some((root) => {
      if (root === null) return false;
      const rel = relative(root, real);
      return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
    });
    if (!inside) {
      throw new DatasetError(
        'E_MANIFEST_URI',
        `a local manifest must lie under ${options.localRoots.join(', ')}; serve it over http(s) instead`,
      );
    }
  }
  const handle = await open(real, 'r');
  try {
    const stat = await handle.stat();
    // Devices, FIFOs and directories are refused: /dev/zero never ends, a FIFO blocks.
    if (!stat.isFile()) throw new Unavailable('not a regular file');
    if (stat.size > options.maxBytes)
      throw new Unavailable(`${stat.size} bytes, more than the limit of ${options.maxBytes}`);
    const bytes = new Uint8Array(stat.size);
    const { bytesRead } = await handle.read(bytes, 0, stat.size, 0);
    return bytes.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/**
 * Reads a dataset manifest from an http(s):// URL, a file:// URL or a plain path, within size and time limits, and
 * checks it against the root registered on chain: E_MANIFEST_URI for a scheme other than http, https or file (or a local
 * path outside `localRoots`), E_MANIFEST_UNAVAILABLE when it cannot be read, E_MANIFEST_MISMATCH when it is not that
 * dataset's. No message quotes the bytes read.
 */
export async function fetchManifest(
  uri: string,
  root: string,
  options: FetchManifestOptions = {},
): Promise<DatasetManifest> {
  const timeoutMs = options.timeoutMs ?? MANIFEST_TIMEOUT_MS;
  const maxBytes = options.maxBytes ?? MAX_MANIFEST_BYTES;
  const shown = uri.length > 200 ? `${uri.slice(0, 200)}…` : uri || '(no uri)';
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(uri)?.[1]?.toLowerCase();
  const remote = scheme === 'http' || scheme === 'https';
  // A Windows drive letter reads as a one-letter scheme; anything else with a scheme is refused.
  if (scheme !== undefined && !remote && scheme !== 'file' && scheme.length > 1) {
    throw new DatasetError(
      'E_MANIFEST_URI',
      `the manifest of dataset ${root} is at ${shown}: only http(s) URLs and local files are read`,
    );
  }
  let bytes: Uint8Array;
  try {
    bytes = remote
      ? await fetchBytes(uri, timeoutMs, maxBytes)
      : await readLocal(uri, { ...options, timeoutMs, maxBytes });
  } catch (cause) {
    if (cause instanceof DatasetError) throw cause;
    // Only our own reasons are quoted; a system error is named by its code (ENOENT, EACCES, ECONNREFUSED).
    const why =
      cause instanceof Unavailable ? cause.message : ((cause as { code?: string }).code ?? 'read failed');
    throw new DatasetError(
      'E_MANIFEST_UNAVAILABLE',
      `cannot read the manifest of dataset ${root} at ${shown}: ${why}`,
      {
        exitCode: 1,
        cause,
      },
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (cause) {
    throw new DatasetError(
      'E_MANIFEST_MISMATCH',
      `the manifest at ${shown} is not dataset ${root}: it is not JSON`,
      {
        exitCode: 1,
        cause,
      },
    );
  }
  try {
    verifyManifest(parsed as DatasetManifest, root);
  } catch (cause) {
    // The code says which check failed; the message (which may quote the file's fields) stays in `cause`, off chain.
    const code = (cause as { code?: string }).code ?? 'E_MANIFEST_BAD';
    throw new DatasetError(
      'E_MANIFEST_MISMATCH',
      `the manifest at ${shown} is not dataset ${root} (${code})`,
      {
        exitCode: 1,
        cause,
      },
    );
  }
  return parsed as DatasetManifest;
}

/**
 * The records a manifest describes: the built-in corpus it names, or the trainer's own data at `data` (a folder of
 * .txt files or a .jsonl file), with the manifest's labels. Whether they are the registered bytes is checked later,
 * shard by shard, against the root.
 */
export function datasetForManifest(manifest: DatasetManifest, data?: string): Dataset {
  const name = data ?? manifest.name;
  if (data === undefined && !isBuiltin(name)) {
    throw new DatasetError(
      'E_DATASET_NOT_LOCAL',
      `dataset "${manifest.name}" is not built in; pass --data with the folder or .jsonl file that holds it`,
    );
  }
  return loadDataset({
    name,
    ...(manifest.labels !== undefined ? { labels: manifest.labels } : {}),
    license: manifest.license,
    source: manifest.source,
  });
}
