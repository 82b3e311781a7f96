// The wire codec: frames of a protobuf header plus a 4-byte-aligned raw body, their limits, and the signed messages.
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import protobuf from 'protobufjs';
import { WireError } from './errors.ts';
import { checkFieldLimits } from './limits.ts';

// Version 2: the auth message binds the endpoint the worker dialled, the update message binds network and coordinator.
export const PROTOCOL_VERSION = 2;
/** Default ceiling for one WebSocket message; updates travel in chunks below it. */
export const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024;
/** Largest header accepted, whatever the frame limit: headers carry ids and JSON configs, never tensors. */
export const MAX_HEADER_BYTES = 256 * 1024;

export { WireError } from './errors.ts';
export {
  MAX_ACCOUNT_CHARS,
  MAX_BYTES_FIELD,
  MAX_MESSAGE_CHARS,
  MAX_REPEATED,
  MAX_STRING_CHARS,
} from './limits.ts';

const root = protobuf.parse(readFileSync(new URL('./fedtune.proto', import.meta.url), 'utf8'), {
  keepCase: false,
}).root;
const FrameType = root.lookupType('fedtune.v1.Frame');

export interface CheckpointRef {
  id: string;
  bytes: number;
  url: string;
}
export interface Hello {
  protocolVersion: number;
  account: string;
  client: string;
}
export interface Challenge {
  protocolVersion: number;
  nonce: Uint8Array;
  coordinator: string;
  network: string;
}
export interface Authenticate {
  signature: Uint8Array;
  /** The URL the worker dialled, signed with the challenge: a relay at another address cannot reuse the signature. */
  endpoint: string;
}
export interface Welcome {
  session: string;
  maxFrameBytes: number;
  maxUpdateBytes: number;
  heartbeatMs: number;
}
export interface Task {
  taskId: string;
  proposal: number;
  round: number;
  base: CheckpointRef;
  shards: number[];
  datasetRoot: string;
  modelJson: string;
  hyperparamsJson: string;
  codecJson: string;
  deadlineMs: number;
}
export interface UpdateBegin {
  taskId: string;
  proposal: number;
  round: number;
  base: string;
  codec: string;
  payloadBytes: number;
  payloadSha256: Uint8Array;
  samples: number;
  shards: number[];
  trainLoss: number;
  signature: Uint8Array;
}
export interface UpdateChunk {
  taskId: string;
  offset: number;
}
export interface UpdateEnd {
  taskId: string;
}
export interface UploadStatus {
  taskId: string;
  receivedBytes: number;
}
export interface Ack {
  taskId: string;
  updateHash: Uint8Array;
  proposal: number;
  round: number;
}
export interface RoundResult {
  proposal: number;
  round: number;
  checkpointId: string;
  updatesRoot: Uint8Array;
  proof: Uint8Array[];
  leafIndex: number;
  leafCount: number;
  blockHash: string;
  /** From a sub-coordinator: the cohort's leaf and its proof to updatesRoot (docs/rounds.md, "Hierarchical rounds"). */
  cohort?: CohortProof | null;
}
export interface CohortProof {
  account: string;
  samples: number;
  payloadSha256: Uint8Array;
  root: Uint8Array;
  proof: Uint8Array[];
  leafIndex: number;
  leafCount: number;
}
export interface TaskFailed {
  taskId: string;
  code: string;
  message: string;
}
export interface Heartbeat {
  timeMs: number;
}
export interface ErrorFrame {
  code: string;
  message: string;
  refSeq: number;
  fatal: boolean;
}

/** One frame: its sequence number and exactly one kind of message. */
export type Frame = { seq: number } & (
  | { kind: 'hello'; hello: Hello }
  | { kind: 'challenge'; challenge: Challenge }
  | { kind: 'authenticate'; authenticate: Authenticate }
  | { kind: 'welcome'; welcome: Welcome }
  | { kind: 'task'; task: Task }
  | { kind: 'updateBegin'; updateBegin: UpdateBegin }
  | { kind: 'updateChunk'; updateChunk: UpdateChunk }
  | { kind: 'updateEnd'; updateEnd: UpdateEnd }
  | { kind: 'ack'; ack: Ack }
  | { kind: 'roundResult'; roundResult: RoundResult }
  | { kind: 'heartbeat'; heartbeat: Heartbeat }
  | { kind: 'error'; error: ErrorFrame }
  | { kind: 'uploadStatus'; uploadStatus: UploadStatus }
  | { kind: 'taskFailed'; taskFailed: TaskFailed }
);
export type FrameKind = Frame['kind'];

/** A frame before the sender numbers it: any one kind, without `seq`. */
export type FrameInput = Frame extends infer F ? (F extends unknown ? Omit<F, 'seq'> : never) : never;

/** Encodes a frame and an optional body into one message: u32le header length, header, padding to 4, body. */
export function encodeFrame(frame: Frame, body?: Uint8Array): Uint8Array {
  const header = FrameType.encode(FrameType.fromObject(frame)).finish();
  const bodyOffset = align4(4 + header.length);
  const out = new Uint8Array(bodyOffset + (body?.length ?? 0));
  new DataView(out.buffer).setUint32(0, header.length, true);
  out.set(header, 4);
  if (body) out.set(body, bodyOffset);
  return out;
}

export interface DecodedFrame {
  frame: Frame;
  /** A view into the message (no copy); empty when the frame has no body. */
  body: Uint8Array;
}

/** Decodes one message; anything malformed or over the limit is a WireError with a code, never an exception of another kind. */
export function decodeFrame(message: Uint8Array, maxFrameBytes = DEFAULT_MAX_FRAME_BYTES): DecodedFrame {
  if (message.length > maxFrameBytes) {
    throw new WireError(
      'E_FRAME_TOO_LARGE',
      `frame of ${message.length} bytes exceeds the limit of ${maxFrameBytes}`,
    );
  }
  if (message.length < 4)
    throw new WireError('E_FRAME_MALFORMED', `frame of ${message.length} bytes has no header length`);
  const headerLength = new DataView(message.buffer, message.byteOffset, 4).getUint32(0, true);
  if (headerLength > MAX_HEADER_BYTES || 4 + headerLength > message.length) {
    throw new WireError(
      'E_FRAME_MALFORMED',
      `header length ${headerLength} does not fit a frame of ${message.length} bytes (headers are at most ${MAX_HEADER_BYTES})`,
    );
  }
  const bodyOffset = Math.min(align4(4 + headerLength), message.length);
  for (let i = 4 + headerLength; i < bodyOffset; i++) {
    if (message[i] !== 0)
      throw new WireError('E_FRAME_MALFORMED', 'padding between header and body is not zero');
  }
  let decoded: Record<string, unknown>;
  try {
    const header = FrameType.decode(message.subarray(4, 4 + headerLength));
    decoded = FrameType.toObject(header, {
      longs: Number,
      bytes: Uint8Array,
      defaults: true,
      arrays: true,
      oneofs: true,
    });
  } catch (error) {
    throw new WireError('E_FRAME_MALFORMED', `header is not a fedtune.v1.Frame: ${(error as Error).message}`);
  }
  const kind = decoded.kind as FrameKind | undefined;
  if (kind === undefined) throw new WireError('E_FRAME_MALFORMED', 'frame carries no message');
  checkFieldLimits(decoded[kind], kind);
  // An absent optional message (RoundResult.cohort) is left out, not null.
  const body = decoded[kind] as Record<string, unknown>;
  if (kind === 'roundResult' && body.cohort === null) delete body.cohort;
  const frame = { seq: decoded.seq as number, kind, [kind]: decoded[kind] } as Frame;
  return { frame, body: message.subarray(bodyOffset) };
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

const encoder = new TextEncoder();

function lengthPrefixed(parts: (Uint8Array | string)[]): Uint8Array {
  const bytes = parts.map((p) => (typeof p === 'string' ? encoder.encode(p) : p));
  const out = new Uint8Array(bytes.reduce((n, b) => n + 4 + b.length, 0));
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const b of bytes) {
    view.setUint32(offset, b.length, true);
    out.set(b, offset + 4);
    offset += 4 + b.length;
  }
  return out;
}

/** What a worker signs to authenticate (layout in docs/wire.md): the challenge's network, coordinator and nonce, the
 * worker's account and the endpoint it dialled, after a domain tag, each length-prefixed. */
export function authMessage(challenge: Challenge, worker: string, endpoint: string): Uint8Array {
  return lengthPrefixed([
    AUTH_DOMAIN,
    challenge.network,
    challenge.coordinator,
    worker,
    endpoint,
    challenge.nonce,
  ]);
}

/** Domain tags: a signature made for one purpose never verifies for another. */
export const AUTH_DOMAIN = 'fedtune/auth/v2';
export const UPDATE_DOMAIN = 'fedtune/update/v2';

/** The fields an update signature covers: the upload's own, and the network and coordinator it is meant for. */
export type SignedUpdate = Omit<UpdateBegin, 'signature' | 'taskId' | 'trainLoss'> & {
  network: string;
  coordinator: string;
};

/**
 * What a worker signs for an update: SHA-256 of the domain tag, network, coordinator, proposal, round, sample count,
 * payload size, base checkpoint, codec, shards and the payload's SHA-256, each length-prefixed (docs/wire.md).
 * Changing any of them, or replaying into another round, network or coordinator, breaks it.
 */
export function updateMessage(u: SignedUpdate): Uint8Array {
  const numbers = new Uint8Array(8 + 8 + 8);
  const view = new DataView(numbers.buffer);
  view.setUint32(0, u.proposal, true);
  view.setUint32(4, u.round, true);
  view.setBigUint64(8, BigInt(u.samples), true);
  view.setBigUint64(16, BigInt(u.payloadBytes), true);
  const shards = new Uint8Array(u.shards.length * 4);
  u.shards.forEach((s, i) => new DataView(shards.buffer).setUint32(i * 4, s, true));
  const fields = lengthPrefixed([
    UPDATE_DOMAIN,
    u.network,
    u.coordinator,
    numbers,
    u.base,
    u.codec,
    shards,
    u.payloadSha256,
  ]);
  return new Uint8Array(createHash('sha256').update(fields).digest());
}
