// Where a registered dataset's manifest and records come from: its manifestUri (file, path or HTTP), checked against
// the on-chain root, and the records of a built-in corpus by name or of a trainer's own data by path.
import { readFile } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { fileURLToPath } from 'node:url';
import { DatasetError } from './errors.ts';
import { verifyManifest, type DatasetManifest } from './manifest.ts';
import { isBuiltin, loadDataset } from './sources.ts';
import type { Dataset } from './types.ts';

/** Largest manifest accepted over HTTP (a manifest lists every record's hash: 100k records is about 12 MB). */
const MAX_MANIFEST_BYTES = 256 * 1024 * 1024;

function fetchBytes(url: string, timeoutMs: number): Promise<Uint8Array> {
  const get = url.startsWith('https:') ? httpsGet : httpGet;
  return new Promise((resolve, reject) => {
    const req = get(url, { timeout: timeoutMs }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`HTTP ${res.statusCode} from ${url}`));
        return;
      }
      const parts: Buffer[] = [];
      let size = 0;
      res.on('data', (d: Buffer) => {
        size += d.length;
        if (size > MAX_MANIFEST_BYTES) req.destroy(new Error(`more than ${MAX_MANIFEST_BYTES} bytes`));
        else parts.push(d);
      });
      res.on('end', () => resolve(new Uint8Array(Buffer.concat(parts))));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/**
 * Reads a dataset manifest from a file:// URL, a plain path or an http(s):// URL, and checks it against the root
 * registered on chain: E_MANIFEST_UNAVAILABLE when it cannot be read, E_MANIFEST_MISMATCH when it is not that dataset's.
 */
export async function fetchManifest(
  uri: string,
  root: string,
  { timeoutMs = 30_000 }: { timeoutMs?: number } = {},
): Promise<DatasetManifest> {
  let bytes: Uint8Array;
  try {
    if (/^https?:\/\//.test(uri)) bytes = await fetchBytes(uri, timeoutMs);
    else bytes = await readFile(uri.startsWith('file:') ? fileURLToPath(uri) : uri);
  } catch (cause) {
    throw new DatasetError(
      'E_MANIFEST_UNAVAILABLE',
      `cannot read the manifest of dataset ${root} at ${uri || '(no uri)'}: ${(cause as Error).message}`,
      { exitCode: 1, cause },
    );
  }
  let manifest: DatasetManifest;
  try {
    manifest = JSON.parse(Buffer.from(bytes).toString('utf8')) as DatasetManifest;
    verifyManifest(manifest, root);
  } catch (cause) {
    throw new DatasetError(
      'E_MANIFEST_MISMATCH',
      `the manifest at ${uri} is not dataset ${root}: ${(cause as Error).message}`,
      { exitCode: 1, cause },
    );
  }
  return manifest;
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
