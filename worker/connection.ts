// The worker's side of the wire: connect, authenticate with the chain key, receive tasks, upload updates in chunks with
// backpressure, and reconnect with backoff, resuming an upload the coordinator has not acknowledged.
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { CodedError } from '../errors/index.ts';
import type { Logger } from 'pino';
import { u8aEq } from '@polkadot/util';
import { decodeAddress } from '@polkadot/util-crypto';
import {
  PROTOCOL_VERSION,
  authMessage,
  decodeFrame,
  encodeFrame,
  updateMessage,
  type Ack,
  type ErrorFrame,
  type Frame,
  type FrameInput,
  type RoundResult,
  type Task,
  type UploadStatus,
  type Welcome,
} from '../proto/index.ts';

/**
 * Frames stay masked, as RFC 6455 asks of a client, with the key 0: masking guards caching proxies against scripts
 * that a browser runs, which a worker is not, and a zero key lets both sides skip XORing every byte (ws does, at
 * both ends) — for a dense update that was most of the coordinator's per-byte work.
 */
const zeroMask = (mask: Buffer) => void mask.fill(0);

export class WorkerError extends CodedError {}

/** The chain key: a polkadot.js KeyringPair fits. */
export interface Signer {
  address: string;
  sign(message: Uint8Array): Uint8Array;
}

/** Errors after which reconnecting cannot help: the operator must act. */
const FINAL_CODES = new Set([
  'E_VERSION',
  'E_AUTH_REJECTED',
  'E_NOT_REGISTERED',
  'E_BAD_ACCOUNT',
  'E_REPLACED',
  'E_WRONG_COORDINATOR',
  // Members upheld a dispute against this worker: the network gives it no more tasks.
  'E_WORKER_BARRED',
]);

export interface WorkerConnectionOptions {
  url: string;
  signer: Signer;
  client?: string;
  logger: Logger;
  onTask(task: Task): void;
  onRoundResult?(result: RoundResult): void;
  /** Backoff between reconnection attempts, doubling from min to max. */
  reconnect?: { minMs?: number; maxMs?: number };
  /** Body bytes per UpdateChunk frame; at most the coordinator's maxFrameBytes less room for the header. */
  chunkBytes?: number;
  /**
   * Who the worker means to talk to, as the chain says (the network's id and the coordinator account that opened the
   * round). A challenge naming anyone else is not signed: the connection ends with E_WRONG_COORDINATOR.
   */
  expect?: { network?: string; coordinators?: string[] };
}

export interface UploadParameters {
  taskId: string;
  proposal: number;
  round: number;
  base: string;
  codec: string;
  payload: Uint8Array;
  samples: number;
  shards: number[];
  trainLoss: number;
  /** Give up (E_UPLOAD_DEADLINE) once this unix time in ms has passed. */
  deadlineMs?: number;
  onProgress?(sentBytes: number, totalBytes: number): void;
}

export interface WorkerConnection {
  /** Resolves at the first successful authentication. */
  ready: Promise<Welcome>;
  /** Uploads an update; survives reconnections, resuming from what the coordinator holds. Resolves with the receipt. */
  upload(params: UploadParameters): Promise<Ack>;
  send(frame: FrameInput): boolean;
  close(): Promise<void>;
}

type UploadReply =
  { kind: 'status'; status: UploadStatus } | { kind: 'ack'; ack: Ack } | { kind: 'error'; error: ErrorFrame };

export function connectWorker(options: WorkerConnectionOptions): WorkerConnection {
  const { url, signer, logger } = options;
  const minMs = options.reconnect?.minMs ?? 500;
  const maxMs = options.reconnect?.maxMs ?? 15_000;
  let chunkBytes = options.chunkBytes ?? 1024 * 1024;
  let ws: WebSocket | null = null;
  let seq = 0;
  let closing = false;
  // Wakes every backoff wait at once when the worker closes, so a stop never waits out a reconnection delay.
  const stopping = new AbortController();
  const pause = (ms: number) => sleep(ms, undefined, { signal: stopping.signal }).catch(() => undefined);
  let finalError: WorkerError | null = null;
  let authenticated = false;
  // Waiters for the next authenticated connection (uploads wait here across reconnects).
  let readyWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  // Replies to the upload in flight, matched by task id (and by seq for errors).
  const replyWaiters = new Map<string, (reply: UploadReply) => void>();
  const seqToTask = new Map<number, string>();

  let resolveFirst!: (w: Welcome) => void;
  let rejectFirst!: (e: Error) => void;
  const ready = new Promise<Welcome>((resolve, reject) => {
    resolveFirst = resolve;
    rejectFirst = reject;
  });
  ready.catch(() => undefined);

  const sendFrame = (frame: FrameInput, body?: Uint8Array): Promise<number> => {
    const socket = ws;
    if (!socket || socket.readyState !== WebSocket.OPEN)
      return Promise.reject(new WorkerError('E_DISCONNECTED', 'not connected'));
    const mySeq = ++seq;
    return new Promise((resolve, reject) =>
      socket.send(encodeFrame({ ...frame, seq: mySeq } as Frame, body), (error) =>
        error ? reject(error) : resolve(mySeq),
      ),
    );
  };

  const waitReady = (): Promise<void> => {
    if (finalError) return Promise.reject(finalError);
    // A socket that is going away is not ready, even before its close event has run.
    if (authenticated && ws?.readyState === WebSocket.OPEN) return Promise.resolve();
    authenticated = false;
    return new Promise((resolve, reject) => readyWaiters.push({ resolve, reject }));
  };

  const setFinal = (error: WorkerError) => {
    finalError = error;
    rejectFirst(error);
    for (const w of readyWaiters) w.reject(error);
    readyWaiters = [];
    for (const [, waiter] of replyWaiters)
      waiter({ kind: 'error', error: { code: error.code, message: error.message, refSeq: 0, fatal: true } });
  };

  /** The network and coordinator of the challenge this worker last signed: its updates are bound to them. */
  let binding: { network: string; coordinator: string } | null = null;

  const onFrame = (frame: Frame, socket: WebSocket) => {
    switch (frame.kind) {
      case 'challenge': {
        const refusal = unexpectedChallenge(
          frame.challenge.network,
          frame.challenge.coordinator,
          options.expect,
        );
        if (refusal !== null) {
          logger.error({ url }, refusal);
          setFinal(new WorkerError('E_WRONG_COORDINATOR', refusal));
          socket.close();
          return;
        }
        binding = { network: frame.challenge.network, coordinator: frame.challenge.coordinator };
        const signature = signer.sign(authMessage(frame.challenge, signer.address, url));
        void sendFrame({ kind: 'authenticate', authenticate: { signature, endpoint: url } }).catch(
          () => undefined,
        );
        return;
      }
      case 'welcome': {
        authenticated = true;
        chunkBytes = Math.min(chunkBytes, frame.welcome.maxFrameBytes - 64 * 1024);
        logger.info({ url, session: frame.welcome.session }, 'authenticated with the coordinator');
        resolveFirst(frame.welcome);
        for (const w of readyWaiters) w.resolve();
        readyWaiters = [];
        return;
      }
      case 'task':
        options.onTask(frame.task);
        return;
      case 'roundResult':
        options.onRoundResult?.(frame.roundResult);
        return;
      case 'uploadStatus':
        replyWaiters.get(frame.uploadStatus.taskId)?.({ kind: 'status', status: frame.uploadStatus });
        return;
      case 'ack':
        replyWaiters.get(frame.ack.taskId)?.({ kind: 'ack', ack: frame.ack });
        return;
      case 'heartbeat':
        void sendFrame({ kind: 'heartbeat', heartbeat: { timeMs: Date.now() } }).catch(() => undefined);
        return;
      case 'error': {
        const { code, message, refSeq, fatal } = frame.error;
        logger.warn({ code, fatal }, `coordinator: ${message}`);
        const taskId = seqToTask.get(refSeq);
        if (taskId !== undefined) replyWaiters.get(taskId)?.({ kind: 'error', error: frame.error });
        if (FINAL_CODES.has(code)) setFinal(new WorkerError(code, message));
        if (fatal) socket.close();
        return;
      }
      default:
        logger.debug({ kind: frame.kind }, 'ignoring frame');
    }
  };

  const connectLoop = async () => {
    let delay = minMs;
    while (!closing && !finalError) {
      const socket = new WebSocket(url, { maxPayload: 64 * 1024 * 1024, generateMask: zeroMask });
      ws = socket;
      const opened = await new Promise<boolean>((resolve) => {
        socket.once('open', () => resolve(true));
        socket.once('error', (error) => {
          logger.debug({ err: error }, 'connection failed');
          resolve(false);
        });
      });
      if (opened) {
        delay = minMs;
        socket.on('message', (data: Buffer, isBinary) => {
          if (!isBinary) return;
          try {
            onFrame(decodeFrame(data).frame, socket);
          } catch (error) {
            logger.warn({ err: error }, 'undecodable frame from the coordinator');
          }
        });
        await sendFrame({
          kind: 'hello',
          hello: {
            protocolVersion: PROTOCOL_VERSION,
            account: signer.address,
            client: options.client ?? 'fedtune',
          },
        }).catch(() => undefined);
        await new Promise<void>((resolve) => {
          socket.once('close', () => resolve());
          if (socket.readyState === WebSocket.CLOSED) resolve();
        });
        authenticated = false;
        for (const [, waiter] of replyWaiters)
          waiter({
            kind: 'error',
            error: { code: 'E_DISCONNECTED', message: 'connection lost', refSeq: 0, fatal: false },
          });
      }
      if (closing || finalError) break;
      logger.info({ url, retryInMs: delay }, 'coordinator unreachable; reconnecting');
      await pause(delay + Math.floor(Math.random() * delay * 0.2));
      delay = Math.min(maxMs, delay * 2);
    }
  };
  const loop = connectLoop();

  /** Sends a frame of an upload and waits for the coordinator's reply about that task. */
  const request = (taskId: string, frame: FrameInput): Promise<UploadReply> =>
    new Promise((resolve) => {
      replyWaiters.set(taskId, (reply) => {
        replyWaiters.delete(taskId);
        resolve(reply);
      });
      // sendFrame numbers the frame synchronously, so the error that answers it can be matched before it is written.
      seqToTask.set(seq + 1, taskId);
      sendFrame(frame).then(
        () => undefined,
        () => {
          replyWaiters.delete(taskId);
          resolve({
            kind: 'error',
            error: { code: 'E_DISCONNECTED', message: 'connection lost', refSeq: 0, fatal: false },
          });
        },
      );
    });

  async function upload(params: UploadParameters): Promise<Ack> {
    const { taskId, payload } = params;
    const payloadSha256 = new Uint8Array(createHash('sha256').update(payload).digest());
    const fields = {
      proposal: params.proposal,
      round: params.round,
      base: params.base,
      codec: params.codec,
      payloadBytes: payload.length,
      payloadSha256,
      samples: params.samples,
      shards: params.shards,
    };
    for (;;) {
      if (params.deadlineMs !== undefined && Date.now() > params.deadlineMs) {
        throw new WorkerError(
          'E_UPLOAD_DEADLINE',
          `task ${taskId}: the round's deadline passed before the coordinator acknowledged`,
        );
      }
      await waitReady();
      // Signed for the network and coordinator this connection authenticated with (checked against `expect`).
      const signature = signer.sign(updateMessage({ ...fields, ...binding! }));
      const begun = await request(taskId, {
        kind: 'updateBegin',
        updateBegin: { taskId, ...fields, trainLoss: params.trainLoss, signature },
      });
      if (begun.kind === 'ack') return begun.ack;
      if (begun.kind === 'error') {
        if (begun.error.code === 'E_DISCONNECTED') continue;
        if (begun.error.code === 'E_BUSY') {
          // The coordinator holds too many uploads at once: wait a little and begin again.
          await pause(minMs + Math.floor(Math.random() * minMs));
          continue;
        }
        throw new WorkerError(begun.error.code, begun.error.message);
      }
      let offset = begun.status.receivedBytes;
      if (offset > 0) logger.info({ taskId, offset }, 'resuming upload');
      try {
        // At most two chunks in flight: the send callback fires once a chunk is handed to the socket.
        let inFlight: Promise<number> | null = null;
        while (offset < payload.length) {
          const end = Math.min(offset + chunkBytes, payload.length);
          const sent = sendFrame(
            { kind: 'updateChunk', updateChunk: { taskId, offset } },
            payload.subarray(offset, end),
          );
          // Awaited on the next turn; until then a failure must not count as unhandled.
          sent.catch(() => undefined);
          if (inFlight) await inFlight;
          inFlight = sent;
          offset = end;
          params.onProgress?.(offset, payload.length);
        }
        if (inFlight) await inFlight;
      } catch {
        continue; // the connection dropped; resume after reconnecting
      }
      const ended = await request(taskId, { kind: 'updateEnd', updateEnd: { taskId } });
      if (ended.kind === 'ack') return ended.ack;
      if (ended.kind === 'error' && ended.error.code === 'E_DISK_FULL') {
        // The coordinator could not record it yet (its disk is full): begin again after a while.
        logger.warn({ taskId }, `coordinator: ${ended.error.message}`);
        await pause(4 * minMs + Math.floor(Math.random() * minMs));
        continue;
      }
      if (
        ended.kind === 'error' &&
        ended.error.code !== 'E_DISCONNECTED' &&
        ended.error.code !== 'E_INCOMPLETE_UPDATE'
      ) {
        throw new WorkerError(ended.error.code, ended.error.message);
      }
    }
  }

  return {
    ready,
    upload,
    send: (frame) => {
      if (!ws || ws.readyState !== WebSocket.OPEN) return false;
      void sendFrame(frame).catch(() => undefined);
      return true;
    },
    async close() {
      closing = true;
      stopping.abort();
      setFinal(new WorkerError('E_CLOSED', 'connection closed by the worker'));
      const socket = ws;
      socket?.close(1000);
      // A coordinator that does not answer the close handshake (busy, or gone) is cut off after a second.
      const cut = setTimeout(() => socket?.terminate(), 1_000);
      await loop;
      clearTimeout(cut);
    },
  };
}

/** Why a challenge must not be signed, or null: it names another network or coordinator than the chain says. */
export function unexpectedChallenge(
  network: string,
  coordinator: string,
  expect: WorkerConnectionOptions['expect'],
): string | null {
  if (expect?.network !== undefined && network.toLowerCase() !== expect.network.toLowerCase())
    return `the coordinator's challenge is for network ${network}, not ${expect.network}: check --coordinator`;
  if (expect?.coordinators !== undefined && !expect.coordinators.some((c) => sameAccount(coordinator, c)))
    return `the challenge names coordinator ${coordinator}, not ${expect.coordinators.join(' or ')} (as on chain): check --coordinator`;
  return null;
}

function sameAccount(a: string, b: string): boolean {
  try {
    return u8aEq(decodeAddress(a), decodeAddress(b));
  } catch {
    return false;
  }
}
