// Read-only HTTP serving of a checkpoint store: manifests, chunks, and the whole file with Range support.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { chunkRange, type CheckpointManifest } from './manifest.ts';
import type { CheckpointStore } from './store.ts';

const ROUTE = /^\/checkpoints\/(0x[0-9a-f]{64})\/(manifest|file|chunks\/(0|[1-9][0-9]{0,8}))$/;

function sendError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
) {
  const body = JSON.stringify({ error: { code, message } });
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}

/** Parses a single `bytes=` range against a file size; returns null for a range that cannot be served. */
export function parseRange(header: string, size: number): [number, number] | null {
  const match = /^bytes=(\d{0,15})-(\d{0,15})$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return null;
  let start: number;
  let end: number; // inclusive
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0) return null;
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  if (start >= size || start > end) return null;
  return [start, end];
}

/** Streams bytes [start, end] (inclusive) of a checkpoint by reading only the chunks that hold them. */
async function* checkpointBytes(
  store: CheckpointStore,
  manifest: CheckpointManifest,
  start: number,
  end: number,
) {
  const first = Math.floor(start / manifest.chunkSize);
  const last = Math.floor(end / manifest.chunkSize);
  for (let n = first; n <= last; n++) {
    const [chunkStart] = chunkRange(manifest, n);
    const from = Math.max(start, chunkStart) - chunkStart;
    const to = Math.min(end, chunkStart + manifest.chunkSize - 1) - chunkStart;
    for await (const piece of createReadStream(store.chunkPath(manifest.chunks[n]!), {
      start: from,
      end: to,
    })) {
      yield piece as Buffer;
    }
  }
}

/**
 * Handles a request if its path is under /checkpoints; returns false otherwise so that a host server
 * (the coordinator's) can route the rest. Only well-formed ids and chunk numbers ever reach the file system.
 */
export async function handleCheckpointRequest(
  store: CheckpointStore,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<boolean> {
  const path = (req.url ?? '/').split('?')[0]!;
  if (path !== '/checkpoints' && !path.startsWith('/checkpoints/')) return false;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendError(res, 405, 'E_METHOD', `${req.method} is not allowed: the checkpoint store is read-only`, {
      allow: 'GET, HEAD',
    });
    return true;
  }
  if (path === '/checkpoints') {
    const body = JSON.stringify({ checkpoints: await store.list() });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  }
  const route = ROUTE.exec(path);
  if (!route) {
    sendError(res, 404, 'E_NOT_FOUND', 'expected /checkpoints/0x<64 hex>/(manifest|file|chunks/<n>)');
    return true;
  }
  const id = route[1]!;
  const manifestBytes = await store.getManifestBytes(id);
  if (manifestBytes === null) {
    sendError(res, 404, 'E_NOT_FOUND', `checkpoint ${id} is not in this store`);
    return true;
  }
  const manifest = JSON.parse(Buffer.from(manifestBytes).toString('utf8')) as CheckpointManifest;
  const body = req.method === 'HEAD' ? null : res;

  if (route[2] === 'manifest') {
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': manifestBytes.length,
      etag: `"${id}"`,
    });
    res.end(body ? manifestBytes : undefined);
    return true;
  }
  if (route[3] !== undefined) {
    const n = Number(route[3]);
    if (n >= manifest.chunks.length) {
      sendError(
        res,
        404,
        'E_NOT_FOUND',
        `checkpoint ${id} has ${manifest.chunks.length} chunks; there is no chunk ${n}`,
      );
      return true;
    }
    const [start, end] = chunkRange(manifest, n);
    const hash = manifest.chunks[n]!;
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': end - start,
      etag: `"${hash}"`,
      'x-chunk-sha256': hash,
    });
    // A chunk is at most chunkSize bytes: one read and one write serve it several times faster than a stream.
    res.end(body ? await readFile(store.chunkPath(hash)) : undefined);
    return true;
  }

  // The whole file, or one byte range of it.
  const rangeHeader = req.headers.range;
  let start = 0;
  let end = manifest.size - 1;
  let status = 200;
  const headers: Record<string, string | number> = {
    'content-type': 'application/octet-stream',
    'accept-ranges': 'bytes',
    etag: `"${id}"`,
  };
  if (rangeHeader !== undefined) {
    const range = parseRange(rangeHeader, manifest.size);
    if (range === null) {
      sendError(
        res,
        416,
        'E_RANGE',
        `cannot serve range ${JSON.stringify(rangeHeader)} of a ${manifest.size}-byte file (one bytes= range only)`,
        {
          'content-range': `bytes */${manifest.size}`,
        },
      );
      return true;
    }
    [start, end] = range;
    status = 206;
    headers['content-range'] = `bytes ${start}-${end}/${manifest.size}`;
  }
  headers['content-length'] = manifest.size === 0 ? 0 : end - start + 1;
  res.writeHead(status, headers);
  if (body && manifest.size > 0)
    await pipeline(Readable.from(checkpointBytes(store, manifest, start, end)), res);
  else res.end();
  return true;
}

const BLOB_ROUTE = /^\/blobs\/(0x[0-9a-f]{64})$/;

/**
 * Serves /blobs/0x<sha256>: whole objects named by their hash (a round's update payloads, strategy states), with one
 * bytes= Range. Returns false for other paths. Whoever fetches one checks its hash; this server is not trusted.
 */
export async function handleBlobRequest(
  store: CheckpointStore,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<boolean> {
  const path = (req.url ?? '/').split('?')[0]!;
  if (!path.startsWith('/blobs')) return false;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendError(res, 405, 'E_METHOD', `${req.method} is not allowed: the store is read-only`, {
      allow: 'GET, HEAD',
    });
    return true;
  }
  const route = BLOB_ROUTE.exec(path);
  if (!route) {
    sendError(res, 404, 'E_NOT_FOUND', 'expected /blobs/0x<64 hex>');
    return true;
  }
  const hash = route[1]!;
  const file = store.blobPath(hash);
  const size = await stat(file).then(
    (st) => st.size,
    () => null,
  );
  if (size === null) {
    sendError(res, 404, 'E_NOT_FOUND', `blob ${hash} is not in this store (not published, or pruned)`);
    return true;
  }
  const headers: Record<string, string | number> = {
    'content-type': 'application/octet-stream',
    'accept-ranges': 'bytes',
    etag: `"${hash}"`,
  };
  let [start, end] = [0, size - 1];
  let status = 200;
  if (req.headers.range !== undefined) {
    const range = parseRange(req.headers.range, size);
    if (range === null) {
      sendError(
        res,
        416,
        'E_RANGE',
        `cannot serve range ${JSON.stringify(req.headers.range)} of ${size} bytes`,
        {
          'content-range': `bytes */${size}`,
        },
      );
      return true;
    }
    [start, end] = range;
    status = 206;
    headers['content-range'] = `bytes ${start}-${end}/${size}`;
  }
  headers['content-length'] = size === 0 ? 0 : end - start + 1;
  res.writeHead(status, headers);
  if (req.method === 'GET' && size > 0) await pipeline(createReadStream(file, { start, end }), res);
  else res.end();
  return true;
}

export interface CheckpointServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** A standalone read-only server for a store (the coordinator mounts handleCheckpointRequest on its own instead). */
export async function serveCheckpoints(params: {
  store: CheckpointStore;
  host?: string;
  port?: number;
  logger?: Logger;
}): Promise<CheckpointServer> {
  const { store, host = '127.0.0.1', port = 0, logger } = params;
  const server = createServer((req, res) => {
    handleCheckpointRequest(store, req, res)
      .then(async (handled) => handled || (await handleBlobRequest(store, req, res)))
      .then((handled) => {
        if (!handled) sendError(res, 404, 'E_NOT_FOUND', 'only /checkpoints and /blobs are served here');
      })
      .catch((error: unknown) => {
        logger?.warn({ err: error, url: req.url }, 'checkpoint request failed');
        if (!res.headersSent) sendError(res, 500, 'E_INTERNAL', 'the store could not read this object');
        else res.destroy();
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
  logger?.info({ url, dir: store.dir }, 'serving checkpoints');
  return {
    url,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
