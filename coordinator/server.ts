// The coordinator's network face: HTTP (/health, /metrics, checkpoints) and the worker WebSocket protocol — handshake,
// challenge authentication, chunked uploads with limits and resume, heartbeats — answering every fault with a coded error.
// Frame handlers live in coordinator/server/ (auth.ts, upload.ts); pre-authentication limits in server/guard.ts.
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import {
  DEFAULT_MAX_FRAME_BYTES,
  MAX_MESSAGE_CHARS,
  WireError,
  decodeFrame,
  encodeFrame,
  type Frame,
  type FrameInput,
} from '../proto/index.ts';
import { Metrics } from './metrics.ts';
import { authenticate, hello } from './server/auth.ts';
import { startCryptoPool } from './server/crypto-pool.ts';
import { MessageLengthWatcher, SocketGuard, busyResponse } from './server/guard.ts';
import {
  FrameFault,
  type Connection,
  type CoordinatorServer,
  type CoordinatorServerOptions,
  type ServerContext,
  type ServerLimits,
  type Upload,
} from './server/types.ts';
import { updateBegin, updateChunk, updateEnd } from './server/upload.ts';

export type {
  CoordinatorServer,
  CoordinatorServerOptions,
  ExpectedUpload,
  RoundEngineHooks,
  ServerLimits,
  UploadedUpdate,
  Verdict,
} from './server/types.ts';

export const DEFAULT_LIMITS: ServerLimits = {
  maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
  maxPreAuthFrameBytes: 64 * 1024,
  maxUpdateBytes: 512 * 1024 * 1024,
  authTimeoutMs: 10_000,
  idleTimeoutMs: 60_000,
  heartbeatMs: 10_000,
  maxConnections: 1024,
  maxUnauthenticated: 512,
  maxUnauthenticatedPerAddress: 32,
  unauthenticatedPerWorker: 8,
  maxHttpHeaderBytes: 16 * 1024,
  maxPendingUploadBytes: 2 * 1024 * 1024 * 1024,
};

const clip = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);

export async function startCoordinatorServer(options: CoordinatorServerOptions): Promise<CoordinatorServer> {
  const { host = '127.0.0.1', port = 0, network, coordinator, logger } = options;
  const limits: ServerLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const metrics = options.metrics ?? new Metrics();
  const byAccount = new Map<string, Connection>();
  const connections = new Set<Connection>();
  const uploads = new Map<string, Upload>();
  const guard = new SocketGuard(limits);
  const sockets = new WeakMap<Connection, Socket>();
  const authTimers = new WeakMap<Connection, NodeJS.Timeout>();
  const crypto = startCryptoPool({ threads: options.cryptoThreads, logger });

  const http = createServer(
    { maxHeaderSize: limits.maxHttpHeaderBytes, requestTimeout: limits.authTimeoutMs },
    (req, res) => {
      void routeHttp(req, res).catch((error: unknown) => {
        logger.warn({ err: error, url: req.url }, 'HTTP request failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'E_INTERNAL', message: 'internal error' } }));
      });
    },
  );
  // A client must send its request head within the auth timeout; the check runs every second, not Node's 30 s.
  http.headersTimeout = limits.authTimeoutMs;
  (http as { connectionsCheckingInterval?: number }).connectionsCheckingInterval = 1000;
  http.on('connection', (socket: Socket) => {
    // Idle sockets not yet of a worker are cut after the auth timeout (a WebSocket upgrade clears this; the auth timer
    // takes over); an HTTP download that keeps moving bytes is not idle.
    socket.setTimeout(limits.authTimeoutMs, () => socket.destroy());
    const admitted = guard.admit(socket);
    if (!admitted.ok) {
      metrics.inc('fedtune_frames_rejected_total', 'Frames answered with an error, by code', {
        code: 'E_BUSY',
      });
      socket.end(busyResponse(admitted.message));
      socket.destroySoon?.();
    }
  });

  async function routeHttp(
    req: import('node:http').IncomingMessage,
    res: import('node:http').ServerResponse,
  ) {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/health') {
      const body = JSON.stringify({ status: 'ok', connectedWorkers: byAccount.size, network, coordinator });
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    } else if (path === '/metrics') {
      metrics.set('fedtune_connected_workers', 'Authenticated worker connections', byAccount.size);
      metrics.set(
        'fedtune_unauthenticated_sockets',
        'Sockets not (yet) of an authenticated worker',
        guard.size,
      );
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(metrics.render());
    } else if (!(await options.http?.(req, res))) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          error: {
            code: 'E_NOT_FOUND',
            message: 'routes: /health, /metrics, /checkpoints, and WebSocket upgrades',
          },
        }),
      );
    }
  }

  // ws's own ceiling is the frame limit; the MessageLengthWatcher answers anything over it with a coded frame first.
  const wss = new WebSocketServer({ server: http, maxPayload: limits.maxFrameBytes });

  const send = (conn: Connection, frame: FrameInput, body?: Uint8Array) => {
    if (conn.ws.readyState !== WebSocket.OPEN) return false;
    conn.ws.send(encodeFrame({ ...frame, seq: ++conn.seq } as Frame, body));
    return true;
  };

  const fail = (conn: Connection, code: string, message: string, refSeq: number, fatal: boolean) => {
    metrics.inc('fedtune_frames_rejected_total', 'Frames answered with an error, by code', { code });
    logger.info({ conn: conn.id, account: conn.account, code, fatal }, message);
    // The wire bounds an error's message (proto/limits.ts); a longer one would make the whole frame undecodable.
    send(conn, { kind: 'error', error: { code, message: clip(message, MAX_MESSAGE_CHARS), refSeq, fatal } });
    if (fatal) closeConnection(conn, code === 'E_FRAME_TOO_LARGE' ? 1009 : 1008, code);
  };

  /** Marks a connection closed and drops it from the registries, telling the round engine once. */
  const forget = (conn: Connection) => {
    conn.state = 'closed';
    connections.delete(conn);
    clearTimeout(authTimers.get(conn));
    if (conn.account !== null && byAccount.get(conn.account) === conn) {
      byAccount.delete(conn.account);
      options.hooks.disconnected?.(conn.account);
    }
  };

  const closeConnection = (conn: Connection, wsCode: number, reason: string) => {
    if (conn.state === 'closed') return;
    forget(conn);
    conn.ws.close(wsCode, reason.slice(0, 120));
    // Reading resumes (a frame being handled had paused it) so the peer's close reply is read and the handshake ends
    // at once; frames that still arrive are dropped (the connection is closed). A peer that does not answer is cut off.
    conn.ws.resume();
    setTimeout(() => conn.ws.terminate(), 2000).unref();
  };

  const ctx: ServerContext = {
    options,
    limits,
    metrics,
    logger,
    crypto,
    byAccount,
    uploads,
    send,
    closeConnection,
    authenticated(conn) {
      clearTimeout(authTimers.get(conn));
      const socket = sockets.get(conn);
      if (socket) guard.release(socket, true);
    },
  };

  async function handle(conn: Connection, frame: Frame, body: Uint8Array): Promise<void> {
    switch (frame.kind) {
      case 'heartbeat':
        return;
      case 'hello':
        return hello(ctx, conn, frame.hello);
      case 'authenticate':
        return authenticate(ctx, conn, frame.authenticate);
      default:
        break;
    }
    if (conn.state !== 'ready')
      throw new FrameFault('E_NOT_AUTHENTICATED', `${frame.kind} before authentication`, true);
    const account = conn.account!;
    switch (frame.kind) {
      case 'updateBegin':
        return updateBegin(ctx, conn, account, frame.updateBegin);
      case 'updateChunk':
        return updateChunk(ctx, conn, account, frame.updateChunk, body);
      case 'updateEnd':
        return updateEnd(ctx, conn, account, frame.updateEnd);
      case 'taskFailed':
        options.hooks.taskFailed?.(account, frame.taskFailed);
        return;
      default:
        throw new FrameFault('E_UNEXPECTED_FRAME', `a worker does not send ${frame.kind} frames`);
    }
  }

  /** The message limit for a connection now: small until it has authenticated. */
  const frameLimit = (conn: Connection) =>
    conn.state === 'ready'
      ? limits.maxFrameBytes
      : Math.min(limits.maxPreAuthFrameBytes, limits.maxFrameBytes);

  wss.on('connection', (ws, req) => {
    const conn: Connection = {
      ws,
      id: randomUUID().slice(0, 8),
      state: 'hello',
      account: null,
      challenge: null,
      seq: 0,
      lastSeen: Date.now(),
    };
    if (connections.size >= limits.maxConnections) {
      ws.send(
        encodeFrame({
          seq: 1,
          kind: 'error',
          error: { code: 'E_BUSY', message: 'too many connections; retry later', refSeq: 0, fatal: true },
        }),
      );
      ws.close(1013, 'E_BUSY');
      return;
    }
    connections.add(conn);
    sockets.set(conn, req.socket);
    // Runs before ws's own reader sees the bytes: an oversized message is answered at its frame header, and the
    // socket stops being read, so at most one read's worth of it is ever held.
    const watcher = new MessageLengthWatcher((messageBytes) => {
      const limit = frameLimit(conn);
      if (messageBytes <= limit || conn.state === 'closed') return true;
      req.socket.pause();
      fail(
        conn,
        'E_FRAME_TOO_LARGE',
        `message of ${messageBytes}+ bytes exceeds the limit of ${limit}` +
          (conn.state === 'ready' ? '' : ' before authentication: send Hello and Authenticate first'),
        0,
        true,
      );
      return false;
    });
    req.socket.prependListener('data', (chunk: Buffer) => watcher.push(chunk));
    authTimers.set(
      conn,
      setTimeout(() => {
        if (conn.state === 'hello' || (conn.state === 'authenticating' && !conn.answered)) {
          fail(conn, 'E_AUTH_TIMEOUT', `not authenticated within ${limits.authTimeoutMs} ms`, 0, true);
        }
      }, limits.authTimeoutMs),
    );

    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (conn.state === 'closed') return;
      conn.lastSeen = Date.now();
      const message = Array.isArray(data)
        ? Buffer.concat(data)
        : Buffer.isBuffer(data)
          ? data
          : Buffer.from(data);
      if (!isBinary) {
        fail(
          conn,
          'E_FRAME_MALFORMED',
          'text messages are not part of the protocol; send binary frames',
          0,
          true,
        );
        return;
      }
      let decoded: ReturnType<typeof decodeFrame>;
      try {
        decoded = decodeFrame(message, frameLimit(conn));
      } catch (error) {
        const wire = error as WireError;
        fail(conn, wire.code ?? 'E_FRAME_MALFORMED', wire.message, 0, true);
        return;
      }
      // One frame at a time per connection: reading pauses while a frame is handled, which is the backpressure.
      ws.pause();
      handle(conn, decoded.frame, decoded.body)
        .catch((error: unknown) => {
          if (error instanceof FrameFault)
            fail(conn, error.code, error.message, decoded.frame.seq, error.fatal);
          else {
            logger.error({ err: error, conn: conn.id }, 'frame handling failed');
            fail(conn, 'E_INTERNAL', 'the coordinator failed to handle this frame', decoded.frame.seq, false);
          }
        })
        .finally(() => {
          if (conn.state !== 'closed') ws.resume();
        });
    });
    ws.on('error', (error) => logger.debug({ err: error, conn: conn.id }, 'websocket error'));
    ws.on('close', () => {
      if (conn.state !== 'closed') forget(conn);
    });
  });

  const heartbeat = setInterval(() => {
    const now = Date.now();
    for (const conn of connections) {
      if (now - conn.lastSeen > limits.idleTimeoutMs) {
        fail(conn, 'E_TIMEOUT', `no frame for ${limits.idleTimeoutMs} ms`, 0, true);
      } else if (conn.state === 'ready') {
        send(conn, { kind: 'heartbeat', heartbeat: { timeMs: now } });
      }
    }
  }, limits.heartbeatMs);
  heartbeat.unref();

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, host, () => {
      http.off('error', reject);
      resolve();
    });
  }).catch(async (error: unknown) => {
    clearInterval(heartbeat);
    await crypto.close();
    throw error;
  });
  const address = http.address() as AddressInfo;
  const hostPart = host.includes(':') ? `[${host}]` : host;
  logger.info({ port: address.port, host }, 'coordinator listening');

  return {
    url: `ws://${hostPart}:${address.port}`,
    httpUrl: `http://${hostPart}:${address.port}`,
    metrics,
    connectedAccounts: () => [...byAccount.keys()],
    disconnect(account) {
      const conn = byAccount.get(account);
      conn?.ws.terminate();
      return conn !== undefined;
    },
    send(account, frame) {
      const conn = byAccount.get(account);
      return conn ? send(conn, frame) : false;
    },
    async close() {
      clearInterval(heartbeat);
      for (const conn of [...connections]) closeConnection(conn, 1001, 'coordinator shutting down');
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      });
      for (const ws of wss.clients) ws.terminate();
      await crypto.close();
    },
  };
}
