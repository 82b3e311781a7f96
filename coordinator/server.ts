// The coordinator's network face: HTTP (/health, /metrics, checkpoints) and the worker WebSocket protocol — handshake,
// challenge authentication, chunked uploads with limits and resume, heartbeats — answering every fault with a coded error.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import { decodeAddress, signatureVerify } from '@polkadot/util-crypto';
import type { Logger } from 'pino';
import {
  DEFAULT_MAX_FRAME_BYTES,
  PROTOCOL_VERSION,
  WireError,
  authMessage,
  decodeFrame,
  encodeFrame,
  updateMessage,
  type Challenge,
  type Frame,
  type FrameInput,
  type TaskFailed,
  type UpdateBegin,
} from '../proto/index.ts';
import { Metrics } from './metrics.ts';

export interface ServerLimits {
  /** Largest WebSocket message accepted. */
  maxFrameBytes: number;
  /** Largest encoded update accepted. */
  maxUpdateBytes: number;
  /** A connection that has not authenticated by then is closed. */
  authTimeoutMs: number;
  /** A connection silent for this long is closed. */
  idleTimeoutMs: number;
  heartbeatMs: number;
  maxConnections: number;
  /** Bytes of all uploads held at once (their buffers are allocated at UpdateBegin); over it, E_BUSY until others end. */
  maxPendingUploadBytes: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
  maxUpdateBytes: 512 * 1024 * 1024,
  authTimeoutMs: 10_000,
  idleTimeoutMs: 60_000,
  heartbeatMs: 10_000,
  maxConnections: 1024,
  maxPendingUploadBytes: 2 * 1024 * 1024 * 1024,
};

export type Verdict = { ok: true } | { ok: false; code: string; message: string };

/** What the round engine expects from a worker for a task: the fields a begun upload must match. */
export interface ExpectedUpload {
  proposal: number;
  round: number;
  base: string;
  codec: string;
}

export interface UploadedUpdate {
  account: string;
  begin: UpdateBegin;
  /** The whole encoded payload; its SHA-256 matched the signed hash. */
  payload: Uint8Array;
}

export interface RoundEngineHooks {
  /** Whether an authenticated account may take part (e.g. registered as a worker on chain). */
  admit(account: string): Promise<Verdict>;
  /** The upload a worker owes for a task, or null when it has no such task now. */
  expectedUpload(account: string, taskId: string): ExpectedUpload | null;
  /** If this exact update was already accepted, its receipt hash (a worker resending after a lost acknowledgement). */
  receiptFor?(account: string, taskId: string, payloadSha256: Uint8Array): Uint8Array | null;
  /**
   * Validates and durably records an update; resolves with the receipt hash once it is journaled, or a rejection.
   * Only after it resolves is the worker acknowledged.
   */
  acceptUpdate(
    update: UploadedUpdate,
  ): Promise<{ ok: true; updateHash: Uint8Array } | { ok: false; code: string; message: string }>;
  taskFailed?(account: string, failure: TaskFailed): void;
  connected?(account: string): void;
  disconnected?(account: string): void;
}

export interface CoordinatorServerOptions {
  host?: string;
  port?: number;
  /** The coordinator's chain account (SS58), named in every challenge. */
  coordinator: string;
  network: string;
  hooks: RoundEngineHooks;
  limits?: Partial<ServerLimits>;
  /** Extra HTTP routes (e.g. checkpoints); returns false when the request is not theirs. */
  http?: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;
  metrics?: Metrics;
  logger: Logger;
}

export interface CoordinatorServer {
  /** ws://host:port, for workers. */
  url: string;
  /** http://host:port, for checkpoints, /health and /metrics. */
  httpUrl: string;
  metrics: Metrics;
  connectedAccounts(): string[];
  /** Cuts a worker's connection at once, as a network failure would (its partial upload is kept for resume). */
  disconnect(account: string): boolean;
  /** Sends a frame (a task, a round result) to an authenticated worker; false when it is not connected. */
  send(account: string, frame: FrameInput): boolean;
  close(): Promise<void>;
}

interface Upload {
  begin: UpdateBegin;
  buffer: Uint8Array;
  received: number;
}

interface Connection {
  ws: WebSocket;
  id: string;
  state: 'hello' | 'authenticating' | 'ready' | 'closed';
  account: string | null;
  challenge: Challenge | null;
  seq: number;
  lastSeen: number;
}

/** A coded failure raised while handling one frame; `fatal` ones close the connection after the Error frame. */
class FrameFault extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly fatal = false,
  ) {
    super(message);
  }
}

export async function startCoordinatorServer(options: CoordinatorServerOptions): Promise<CoordinatorServer> {
  const { host = '127.0.0.1', port = 0, coordinator, network, hooks, logger } = options;
  const limits: ServerLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const metrics = options.metrics ?? new Metrics();
  const byAccount = new Map<string, Connection>();
  const connections = new Set<Connection>();
  // Partial uploads outlive connections, so a worker that reconnects resumes where it stopped.
  const uploads = new Map<string, Upload>();
  /** Bytes held by partial uploads; those whose task is over (the round moved on) are dropped first. */
  const pendingBytes = () => {
    let total = 0;
    for (const [key, upload] of uploads) {
      const account = key.slice(0, key.indexOf('|'));
      if (hooks.expectedUpload(account, upload.begin.taskId) === null) uploads.delete(key);
      else total += upload.begin.payloadBytes;
    }
    return total;
  };

  const http = createServer((req, res) => {
    void routeHttp(req, res).catch((error: unknown) => {
      logger.warn({ err: error, url: req.url }, 'HTTP request failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'E_INTERNAL', message: 'internal error' } }));
    });
  });

  async function routeHttp(req: IncomingMessage, res: ServerResponse) {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/health') {
      const body = JSON.stringify({ status: 'ok', connectedWorkers: byAccount.size, network, coordinator });
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    } else if (path === '/metrics') {
      metrics.set('fedtune_connected_workers', 'Authenticated worker connections', byAccount.size);
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

  // ws enforces a hard ceiling above our own limit, so that a frame just over the limit gets a coded Error frame.
  const wss = new WebSocketServer({ server: http, maxPayload: limits.maxFrameBytes * 2 });

  const send = (conn: Connection, frame: FrameInput, body?: Uint8Array) => {
    if (conn.ws.readyState !== WebSocket.OPEN) return false;
    conn.ws.send(encodeFrame({ ...frame, seq: ++conn.seq } as Frame, body));
    return true;
  };

  const fail = (conn: Connection, code: string, message: string, refSeq: number, fatal: boolean) => {
    metrics.inc('fedtune_frames_rejected_total', 'Frames answered with an error, by code', { code });
    logger.info({ conn: conn.id, account: conn.account, code, fatal }, message);
    send(conn, { kind: 'error', error: { code, message, refSeq, fatal } });
    if (fatal) closeConnection(conn, 1008, code);
  };

  /** Marks a connection closed and drops it from the registries, telling the round engine once. */
  const forget = (conn: Connection) => {
    conn.state = 'closed';
    connections.delete(conn);
    if (conn.account !== null && byAccount.get(conn.account) === conn) {
      byAccount.delete(conn.account);
      hooks.disconnected?.(conn.account);
    }
  };

  const closeConnection = (conn: Connection, wsCode: number, reason: string) => {
    if (conn.state === 'closed') return;
    forget(conn);
    conn.ws.close(wsCode, reason.slice(0, 120));
    // A peer that does not answer the close handshake is cut off.
    setTimeout(() => conn.ws.terminate(), 2000).unref();
  };

  async function handle(conn: Connection, frame: Frame, body: Uint8Array): Promise<void> {
    switch (frame.kind) {
      case 'heartbeat':
        return;
      case 'hello': {
        if (conn.state !== 'hello')
          throw new FrameFault('E_UNEXPECTED_FRAME', 'hello was already received', true);
        const { protocolVersion, account } = frame.hello;
        if (protocolVersion !== PROTOCOL_VERSION) {
          throw new FrameFault(
            'E_VERSION',
            `this coordinator speaks protocol version ${PROTOCOL_VERSION}, the worker ${protocolVersion}: upgrade the older side`,
            true,
          );
        }
        try {
          decodeAddress(account);
        } catch {
          throw new FrameFault('E_BAD_ACCOUNT', `not an SS58 address: ${JSON.stringify(account)}`, true);
        }
        conn.account = account;
        conn.challenge = { protocolVersion: PROTOCOL_VERSION, nonce: randomBytes(32), coordinator, network };
        conn.state = 'authenticating';
        send(conn, { kind: 'challenge', challenge: conn.challenge });
        return;
      }
      case 'authenticate': {
        if (conn.state !== 'authenticating')
          throw new FrameFault('E_UNEXPECTED_FRAME', 'authenticate before hello', true);
        const account = conn.account!;
        const valid = signatureVerify(
          authMessage(conn.challenge!, account),
          frame.authenticate.signature,
          account,
        ).isValid;
        if (!valid)
          throw new FrameFault('E_AUTH_REJECTED', `the signature does not prove control of ${account}`, true);
        const admitted = await hooks.admit(account);
        if (!admitted.ok) throw new FrameFault(admitted.code, admitted.message, true);
        const previous = byAccount.get(account);
        if (previous) {
          send(previous, {
            kind: 'error',
            error: {
              code: 'E_REPLACED',
              message: 'a newer connection of this account took over',
              refSeq: 0,
              fatal: true,
            },
          });
          closeConnection(previous, 1008, 'E_REPLACED');
        }
        conn.state = 'ready';
        byAccount.set(account, conn);
        clearTimeout(authTimers.get(conn));
        send(conn, {
          kind: 'welcome',
          welcome: {
            session: conn.id,
            maxFrameBytes: limits.maxFrameBytes,
            maxUpdateBytes: limits.maxUpdateBytes,
            heartbeatMs: limits.heartbeatMs,
          },
        });
        logger.info({ conn: conn.id, account }, 'worker authenticated');
        hooks.connected?.(account);
        return;
      }
      default:
        break;
    }
    if (conn.state !== 'ready')
      throw new FrameFault('E_NOT_AUTHENTICATED', `${frame.kind} before authentication`, true);
    const account = conn.account!;

    switch (frame.kind) {
      case 'updateBegin': {
        const begin = frame.updateBegin;
        const key = `${account}|${begin.taskId}`;
        const expected = hooks.expectedUpload(account, begin.taskId);
        if (expected === null)
          throw new FrameFault(
            'E_UNKNOWN_TASK',
            `no open task ${JSON.stringify(begin.taskId)} for ${account}`,
          );
        if (begin.proposal !== expected.proposal || begin.round !== expected.round) {
          throw new FrameFault(
            'E_WRONG_ROUND',
            `update for proposal ${begin.proposal} round ${begin.round}; the task is proposal ${expected.proposal} round ${expected.round}`,
          );
        }
        if (begin.base !== expected.base)
          throw new FrameFault(
            'E_WRONG_BASE',
            `update relative to ${begin.base}; the round's base is ${expected.base}`,
          );
        if (begin.codec !== expected.codec)
          throw new FrameFault(
            'E_WRONG_CODEC',
            `update encoded as ${begin.codec}; the round asks for ${expected.codec}`,
          );
        if (begin.payloadBytes > limits.maxUpdateBytes) {
          throw new FrameFault(
            'E_UPDATE_TOO_LARGE',
            `update of ${begin.payloadBytes} bytes exceeds the limit of ${limits.maxUpdateBytes}`,
          );
        }
        if (begin.payloadSha256.length !== 32)
          throw new FrameFault('E_BAD_HASH', 'payloadSha256 must be 32 bytes');
        if (!signatureVerify(updateMessage(begin), begin.signature, account).isValid) {
          throw new FrameFault('E_BAD_SIGNATURE', `the update's signature does not verify for ${account}`);
        }
        const receipt = hooks.receiptFor?.(account, begin.taskId, begin.payloadSha256);
        if (receipt) {
          send(conn, {
            kind: 'ack',
            ack: { taskId: begin.taskId, updateHash: receipt, proposal: begin.proposal, round: begin.round },
          });
          return;
        }
        const existing = uploads.get(key);
        const resumable =
          existing !== undefined &&
          existing.begin.payloadBytes === begin.payloadBytes &&
          Buffer.from(existing.begin.payloadSha256).equals(Buffer.from(begin.payloadSha256));
        if (!resumable) {
          uploads.delete(key);
          if (pendingBytes() + begin.payloadBytes > limits.maxPendingUploadBytes) {
            throw new FrameFault(
              'E_BUSY',
              `the coordinator holds ${limits.maxPendingUploadBytes} bytes of uploads already; retry shortly`,
            );
          }
          uploads.set(key, { begin, buffer: new Uint8Array(begin.payloadBytes), received: 0 });
        }
        send(conn, {
          kind: 'uploadStatus',
          uploadStatus: { taskId: begin.taskId, receivedBytes: uploads.get(key)!.received },
        });
        return;
      }
      case 'updateChunk': {
        const { taskId, offset } = frame.updateChunk;
        const upload = uploads.get(`${account}|${taskId}`);
        if (!upload)
          throw new FrameFault('E_NO_UPLOAD', `no upload begun for task ${JSON.stringify(taskId)}`);
        if (offset !== upload.received) {
          send(conn, { kind: 'uploadStatus', uploadStatus: { taskId, receivedBytes: upload.received } });
          throw new FrameFault('E_BAD_OFFSET', `chunk at offset ${offset}; expected ${upload.received}`);
        }
        if (body.length > upload.begin.payloadBytes - upload.received) {
          uploads.delete(`${account}|${taskId}`);
          throw new FrameFault(
            'E_UPDATE_TOO_LARGE',
            `chunk overruns the declared ${upload.begin.payloadBytes} bytes`,
          );
        }
        upload.buffer.set(body, upload.received);
        upload.received += body.length;
        metrics.inc('fedtune_update_bytes_received_total', 'Update payload bytes received', {}, body.length);
        return;
      }
      case 'updateEnd': {
        const { taskId } = frame.updateEnd;
        const key = `${account}|${taskId}`;
        const upload = uploads.get(key);
        if (!upload)
          throw new FrameFault('E_NO_UPLOAD', `no upload begun for task ${JSON.stringify(taskId)}`);
        if (upload.received !== upload.begin.payloadBytes) {
          send(conn, { kind: 'uploadStatus', uploadStatus: { taskId, receivedBytes: upload.received } });
          throw new FrameFault(
            'E_INCOMPLETE_UPDATE',
            `received ${upload.received} of ${upload.begin.payloadBytes} bytes`,
          );
        }
        uploads.delete(key);
        const digest = createHash('sha256').update(upload.buffer).digest();
        if (!digest.equals(Buffer.from(upload.begin.payloadSha256))) {
          throw new FrameFault('E_PAYLOAD_HASH', 'the payload does not hash to the signed payloadSha256');
        }
        const verdict = await hooks.acceptUpdate({ account, begin: upload.begin, payload: upload.buffer });
        if (!verdict.ok) {
          metrics.inc('fedtune_updates_total', 'Updates by outcome', {
            outcome: 'rejected',
            code: verdict.code,
          });
          throw new FrameFault(verdict.code, verdict.message);
        }
        metrics.inc('fedtune_updates_total', 'Updates by outcome', { outcome: 'accepted', code: '' });
        send(conn, {
          kind: 'ack',
          ack: {
            taskId,
            updateHash: verdict.updateHash,
            proposal: upload.begin.proposal,
            round: upload.begin.round,
          },
        });
        return;
      }
      case 'taskFailed':
        hooks.taskFailed?.(account, frame.taskFailed);
        return;
      default:
        throw new FrameFault('E_UNEXPECTED_FRAME', `a worker does not send ${frame.kind} frames`);
    }
  }

  const authTimers = new WeakMap<Connection, NodeJS.Timeout>();

  wss.on('connection', (ws) => {
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
    authTimers.set(
      conn,
      setTimeout(() => {
        if (conn.state === 'hello' || conn.state === 'authenticating') {
          fail(conn, 'E_AUTH_TIMEOUT', `not authenticated within ${limits.authTimeoutMs} ms`, 0, true);
        }
      }, limits.authTimeoutMs),
    );

    ws.on('message', (data: RawData, isBinary: boolean) => {
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
        decoded = decodeFrame(message, limits.maxFrameBytes);
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
      clearTimeout(authTimers.get(conn));
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
    },
  };
}
