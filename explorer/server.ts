// The explorer's HTTP face: the bundled page, the reduced state as JSON, live updates as Server-Sent Events, the
// coordinator's figures, and a relay to checkpoint sources so the browser can fetch and verify chunks itself.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Logger } from 'pino';
import { httpSource, parseSource, type CheckpointSource } from '../checkpoints/index.ts';
import type { Hex32, NetworkState } from '../pallet-bindings/index.ts';
import type { CoordinatorWatch } from './coordinator.ts';
import { ExplorerError, reasonOf } from './errors.ts';
import type { Follower } from './follower.ts';
import { buildView, pickNetwork, type SourceView } from './view.ts';

const DIST = new URL('./dist/', import.meta.url);
const ASSETS: Record<string, string> = {
  '/': 'index.html',
  '/index.html': 'index.html',
  '/assets/app.js': 'app.js',
  '/assets/app.css': 'app.css',
};
const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};
/** Nothing but this origin: the page works offline and cannot leak what it shows to a third party. */
const CSP =
  "default-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'";
const SOURCE_ROUTE =
  /^\/api\/source\/(\d{1,3})\/checkpoints\/(0x[0-9a-f]{64})\/(manifest|chunks\/(0|[1-9]\d{0,8}))$/;
/** The most the relay passes on for one object: a manifest's limit in checkpoints/, and far above any chunk. */
const MAX_RELAY_BYTES = 64 * 1024 * 1024;
const RELAY_TIMEOUT_MS = 30_000;

export interface ExplorerServerParameters {
  follower: Follower;
  coordinator: CoordinatorWatch | null;
  network: Hex32 | null;
  /** Extra checkpoint sources (as `fedtune checkpoint download --source` takes them), after the one on chain. */
  sources: string[];
  host: string;
  port: number;
  logger: Logger;
}

export interface ExplorerServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  sendJson(res, status, { error: { code, message } });
}

async function loadAssets(): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const name of new Set(Object.values(ASSETS))) {
    try {
      files.set(name, await readFile(new URL(name, DIST)));
    } catch (cause) {
      throw new ExplorerError(
        'E_EXPLORER_NOT_BUILT',
        `the explorer's page is missing (${name} in explorer/dist): run \`node scripts/build-explorer.mjs\``,
        { cause },
      );
    }
  }
  return files;
}

export async function startExplorerServer(params: ExplorerServerParameters): Promise<ExplorerServer> {
  const { follower, coordinator, logger } = params;
  const assets = await loadAssets();
  const extraSources = params.sources.map((spec) => ({ spec, source: parseSource(spec) }));
  const streams = new Set<ServerResponse>();

  /** A checkpoint's sources, in the order the browser tries them: the URI committed on chain, then --source. */
  const sourcesFor = (net: NetworkState, id: string): { view: SourceView; source: CheckpointSource }[] => {
    const list: { name: string; source: CheckpointSource; fileUrl: string | null }[] = [];
    const uri = net.checkpoints[id as Hex32]?.uri ?? '';
    if (/^https?:\/\//.test(uri)) {
      const base = uri.replace(/\/+$/, '');
      list.push({ name: base, source: httpSource(base), fileUrl: `${base}/checkpoints/${id}/file` });
    }
    for (const { spec, source } of extraSources) {
      const plain = !spec.includes('|');
      const base = spec.replace(/\/+$/, '');
      list.push({ name: source.name, source, fileUrl: plain ? `${base}/checkpoints/${id}/file` : null });
    }
    return list.map((s, index) => ({
      view: { index, name: s.name, fileUrl: s.fileUrl },
      source: s.source,
    }));
  };

  const state = (req: IncomingMessage, res: ServerResponse, query: URLSearchParams) => {
    const s = follower.state();
    const picked = pickNetwork(s, query.get('network'), params.network);
    sendJson(
      res,
      200,
      buildView({
        state: s,
        chain: follower.status(),
        network: picked.id,
        error: picked.error,
        sourcesOf: (net, id) => sourcesFor(net, id).map((x) => x.view),
        votedAt: follower.votedAt,
        coordinator: coordinator?.view().url ?? null,
      }),
    );
  };

  const events = (req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
    });
    const send = (event: string, data: unknown) =>
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    res.write('retry: 2000\n\n');
    send('chain', follower.status());
    streams.add(res);
    // Blocks can land in bursts: one update per burst is enough for the page, which refetches the state.
    let pending: NodeJS.Timeout | undefined;
    const offFollower = follower.on((event) => {
      if (event.type === 'chain') {
        send('chain', follower.status());
        return;
      }
      clearTimeout(pending);
      pending = setTimeout(() => send('head', { height: event.height, blockHash: event.blockHash }), 150);
    });
    const offCoordinator = coordinator?.onSample(() => send('coordinator', { t: Date.now() }));
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    req.on('close', () => {
      clearTimeout(pending);
      clearInterval(keepAlive);
      offFollower();
      offCoordinator?.();
      streams.delete(res);
    });
  };

  const relay = async (res: ServerResponse, match: RegExpExecArray) => {
    const [, k, id, what, n] = match;
    const net = Object.values(follower.state().networks).find(
      (x) => x.checkpoints[id as Hex32] !== undefined,
    );
    if (net === undefined) {
      sendError(res, 404, 'E_UNKNOWN_CHECKPOINT', `checkpoint ${id} is not committed on this chain`);
      return;
    }
    const entry = sourcesFor(net, id!)[Number(k)];
    if (entry === undefined) {
      sendError(res, 404, 'E_UNKNOWN_SOURCE', `checkpoint ${id} has no source ${k}`);
      return;
    }
    const { source } = entry;
    // Templated sources name chunks by hash; the browser passes the hash the manifest gave it (it checks it anyway).
    const hash =
      /^0x[0-9a-f]{64}$/.exec(new URL(`http://x${res.req.url}`).searchParams.get('hash') ?? '')?.[0] ?? '';
    const url = what === 'manifest' ? source.manifestUrl(id!) : source.chunkUrl(id!, Number(n), hash);
    const label = what === 'manifest' ? 'the manifest' : `chunk ${n}`;
    let upstream: Response;
    try {
      upstream = await fetch(url, { signal: AbortSignal.timeout(RELAY_TIMEOUT_MS) });
    } catch (cause) {
      const reason = reasonOf(cause);
      sendError(res, 502, 'E_SOURCE_DOWN', `${source.name} does not answer for ${label} (${reason})`);
      return;
    }
    if (upstream.status !== 200 || upstream.body === null) {
      await upstream.body?.cancel();
      sendError(res, 502, 'E_SOURCE_STATUS', `${source.name} answered HTTP ${upstream.status} for ${label}`);
      return;
    }
    const declared = Number(upstream.headers.get('content-length') ?? NaN);
    if (declared > MAX_RELAY_BYTES) {
      await upstream.body.cancel();
      sendError(res, 502, 'E_SOURCE_TOO_LARGE', `${source.name} offers ${declared} bytes for ${label}`);
      return;
    }
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'cache-control': 'no-store',
      ...(Number.isFinite(declared) ? { 'content-length': declared } : {}),
    });
    let seen = 0;
    const body = Readable.fromWeb(upstream.body as WebReadableStream<Uint8Array>);
    body.on('data', (piece: Buffer) => {
      seen += piece.length;
      if (seen > MAX_RELAY_BYTES) body.destroy(new Error('too large'));
    });
    body.on('error', () => res.destroy());
    body.pipe(res);
  };

  const route = async (req: IncomingMessage, res: ServerResponse) => {
    const parsed = new URL(req.url ?? '/', 'http://explorer');
    const path = parsed.pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendError(res, 405, 'E_METHOD', `${req.method} is not allowed: the explorer only reads`);
      return;
    }
    const asset = ASSETS[path];
    if (asset !== undefined) {
      const bytes = assets.get(asset)!;
      res.writeHead(200, {
        'content-type': TYPES[asset.split('.').pop()!]!,
        'content-length': bytes.length,
        'content-security-policy': CSP,
        'x-content-type-options': 'nosniff',
        'cache-control': 'no-cache',
      });
      res.end(req.method === 'HEAD' ? undefined : bytes);
      return;
    }
    if (path === '/api/state') return state(req, res, parsed.searchParams);
    if (path === '/api/events') return events(req, res);
    if (path === '/api/coordinator') {
      if (coordinator === null) {
        sendError(
          res,
          404,
          'E_NO_COORDINATOR',
          'start the explorer with --coordinator URL to watch a coordinator',
        );
      } else sendJson(res, 200, coordinator.view());
      return;
    }
    const source = SOURCE_ROUTE.exec(path);
    if (source) return relay(res, source);
    sendError(
      res,
      404,
      'E_NOT_FOUND',
      `no page at ${path}: the explorer serves /, /api/state, /api/events, /api/coordinator, /api/source/…`,
    );
  };

  const server = createServer((req, res) => {
    route(req, res).catch((error: unknown) => {
      logger.warn({ err: error, url: req.url }, 'explorer request failed');
      if (!res.headersSent) sendError(res, 500, 'E_INTERNAL', 'the explorer could not answer this request');
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new ExplorerError(
          error.code === 'EADDRINUSE' ? 'E_EXPLORER_PORT_IN_USE' : 'E_EXPLORER_LISTEN',
          error.code === 'EADDRINUSE'
            ? `port ${params.port} on ${params.host} is in use: stop what holds it, or pass --listen HOST:PORT with another port`
            : `cannot listen on ${params.host}:${params.port}: ${error.message}`,
          { cause: error },
        ),
      ),
    );
    server.listen(params.port, params.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = params.host.includes(':') ? `[${params.host}]` : params.host;
  const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}/`;
  return {
    url,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of streams) res.end();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
