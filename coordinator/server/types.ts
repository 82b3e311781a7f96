// The coordinator server's public shapes (limits, hooks the round engine implements, options) and the per-connection
// state its frame handlers share.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WebSocket } from 'ws';
import type { Logger } from 'pino';
import { CodedError } from '../../errors/index.ts';
import type { Challenge, FrameInput, TaskFailed, UpdateBegin } from '../../proto/index.ts';
import type { Metrics } from '../metrics.ts';
import type { CryptoPool } from './crypto-pool.ts';

/** Every limit the server enforces; docs/wire.md and the README's "Security model" state the defaults. */
export interface ServerLimits {
  /** Largest WebSocket message accepted from an authenticated worker. */
  maxFrameBytes: number;
  /** Largest WebSocket message accepted before authentication (a Hello or an Authenticate is well under 1 KiB). */
  maxPreAuthFrameBytes: number;
  /** Largest encoded update accepted. */
  maxUpdateBytes: number;
  /** A connection that has not authenticated by then is closed; also the time an HTTP client has to send a request. */
  authTimeoutMs: number;
  /** A connection silent for this long is closed. */
  idleTimeoutMs: number;
  heartbeatMs: number;
  /** Authenticated worker connections at once. */
  maxConnections: number;
  /** TCP sockets not (yet) belonging to an authenticated worker, plain HTTP included, at once. */
  maxUnauthenticated: number;
  /** The same, per remote address... */
  maxUnauthenticatedPerAddress: number;
  /** ...plus this many per authenticated worker connected from that address (room for its checkpoint downloads). */
  unauthenticatedPerWorker: number;
  /** Largest HTTP request head (request line and headers), in bytes. */
  maxHttpHeaderBytes: number;
  /** Bytes of all uploads held at once (their buffers are allocated at UpdateBegin); over it, E_BUSY until others end. */
  maxPendingUploadBytes: number;
}

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
  /**
   * The upload a worker owes for a task, null when it has no such task, or 'busy' when the engine cannot say yet (a
   * restarted coordinator still rebuilding the task's round): the worker is told E_BUSY and begins again shortly.
   */
  expectedUpload(account: string, taskId: string): ExpectedUpload | 'busy' | null;
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
  /** The coordinator's chain account (SS58), named in every challenge and bound into every update signature. */
  coordinator: string;
  network: string;
  /**
   * The public URLs workers dial (e.g. the endpoint published on chain). When given, an Authenticate signed for any
   * other endpoint is refused (a relay between worker and coordinator shows up as a different endpoint).
   */
  endpoints?: string[];
  hooks: RoundEngineHooks;
  limits?: Partial<ServerLimits>;
  /** Extra HTTP routes (e.g. checkpoints); returns false when the request is not theirs. */
  http?: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;
  metrics?: Metrics;
  logger: Logger;
  /** Threads for signature checks and payload hashing (default: one fewer than the CPUs, 1–4; 0: inline). */
  cryptoThreads?: number;
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

export interface Upload {
  begin: UpdateBegin;
  buffer: Uint8Array;
  received: number;
}

export interface Connection {
  ws: WebSocket;
  id: string;
  state: 'hello' | 'authenticating' | 'ready' | 'closed';
  account: string | null;
  challenge: Challenge | null;
  seq: number;
  lastSeen: number;
  /**
   * Set once the worker's Authenticate arrived in time: from then on only the coordinator's own checks (a queue of
   * signature checks behind a thousand logins, the engine's admission) remain, and those never time the worker out.
   */
  answered?: boolean;
}

/** A coded failure raised while handling one frame; `fatal` ones close the connection after the Error frame. */
export class FrameFault extends CodedError {
  constructor(
    code: string,
    message: string,
    readonly fatal = false,
  ) {
    super(code, message);
  }
}

/** What the frame handlers share with the server that owns the connections. */
export interface ServerContext {
  options: CoordinatorServerOptions;
  limits: ServerLimits;
  metrics: Metrics;
  logger: Logger;
  /** Signature checks and payload hashes, off the event loop. */
  crypto: CryptoPool;
  byAccount: Map<string, Connection>;
  /** Partial uploads, by `account|taskId`; they outlive connections, so a worker that reconnects resumes. */
  uploads: Map<string, Upload>;
  send(conn: Connection, frame: FrameInput, body?: Uint8Array): boolean;
  closeConnection(conn: Connection, wsCode: number, reason: string): void;
  /** Called once a connection is authenticated: its socket stops counting against the pre-authentication limits. */
  authenticated(conn: Connection): void;
}
