// What a coordinator publishes for each round beside its checkpoint: the accepted updates in leaf order with the fields
// their workers signed, and the strategy state the round started from. Served as JSON at /rounds/<proposal>/<round>;
// every field is checked against the chain and the signatures before a verifier uses it, so the server is not trusted.
import { HASH_PATTERN } from '../checkpoints/index.ts';
import { CodedError } from '../errors/index.ts';

export const PUBLICATION_VERSION = 1;
/** Bounds on what a publication may hold before anything is allocated for it. */
export const MAX_PUBLISHED_UPDATES = 100_000;
const MAX_SHARDS = 4096;
const MAX_TEXT = 256;

export interface PublishedUpdateRecord {
  account: string;
  taskId: string;
  samples: number;
  shards: number[];
  trainLoss: number;
  /** 0x-hex SHA-256 of the payload: the blob's name at /blobs/<hash>. */
  payloadSha256: string;
  payloadBytes: number;
  /** 0x-hex sr25519 signature over proto's updateMessage. */
  signature: string;
}

export interface RoundPublication {
  version: number;
  network: string;
  proposal: number;
  round: number;
  coordinator: string;
  /** The checkpoint the round started from. */
  base: string;
  codec: string;
  /** SHA-256 of the strategy state the round started from (a blob), or null for a fresh strategy. */
  stateBefore: string | null;
  /** In updatesRoot leaf order (by account). */
  updates: PublishedUpdateRecord[];
}

export class PublicationError extends CodedError {}

const HEX = /^0x(?:[0-9a-f]{2})*$/;
const text256 = (x: unknown) => typeof x === 'string' && x.length > 0 && x.length <= MAX_TEXT;
const count = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 0;

/**
 * Why one update record (the fields its worker signed) is out of bounds: the field, '' when it is not an object, or
 * null when it is within them. A round's publication and a cohort update's members are held to the same bounds.
 */
export function updateRecordProblem(u: unknown): string | null {
  if (typeof u !== 'object' || u === null) return '';
  const r = u as Record<string, unknown>;
  if (!text256(r.account) || !text256(r.taskId)) return 'account/taskId';
  if (!count(r.samples) || !count(r.payloadBytes)) return 'samples/payloadBytes';
  if (!(typeof r.trainLoss === 'number' && Number.isFinite(r.trainLoss))) return 'trainLoss';
  if (!Array.isArray(r.shards) || r.shards.length > MAX_SHARDS || !r.shards.every(count)) return 'shards';
  if (!HASH_PATTERN.test(String(r.payloadSha256))) return 'payloadSha256';
  if (typeof r.signature !== 'string' || r.signature.length > 2 + 2 * 128 || !HEX.test(r.signature))
    return 'signature';
  return null;
}

/** Parses and bounds a publication's JSON; throws E_PUBLICATION_INVALID naming the first bad field. */
export function parsePublication(text: string): RoundPublication {
  const bad = (why: string): never => {
    throw new PublicationError('E_PUBLICATION_INVALID', `the round's publication is invalid: ${why}`);
  };
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return bad('not JSON');
  }
  if (typeof v !== 'object' || v === null) bad('not an object');
  if (v.version !== PUBLICATION_VERSION) bad(`version ${String(v.version)}`);
  for (const k of ['network', 'coordinator', 'base', 'codec'] as const) if (!text256(v[k])) bad(k);
  if (!count(v.proposal) || !count(v.round)) bad('proposal/round');
  if (!HASH_PATTERN.test(String(v.base))) bad('base');
  if (v.stateBefore !== null && !HASH_PATTERN.test(String(v.stateBefore))) bad('stateBefore');
  if (!Array.isArray(v.updates) || v.updates.length > MAX_PUBLISHED_UPDATES) bad('updates');
  (v.updates as unknown[]).forEach((u, i) => {
    const problem = updateRecordProblem(u);
    if (problem !== null) bad(`updates[${i}]${problem === '' ? '' : `.${problem}`}`);
  });
  return v as unknown as RoundPublication;
}
