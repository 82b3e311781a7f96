// The cohort update a sub-coordinator uploads to its parent (docs/rounds.md, "Hierarchical rounds"): its payload format,
// the cohort aggregate's definition, and which strategies may run hierarchically. Shared by coordinator/cohort.ts (the
// sub) and coordinator/parent.ts (the parent).
import { parseStrategySpec, type StrategySpec } from '../aggregation/index.ts';
import { CoordinatorError } from './errors.ts';

/** The codec name a cohort update is uploaded under. */
export const COHORT_CODEC = 'cohort';
const MAGIC = new TextEncoder().encode('FTCOHORT1');
/** A header over this is refused before it is parsed (a cohort of ~10,000 workers fits). */
const MAX_HEADER_BYTES = 8 * 1024 * 1024;

/** One worker's update inside a cohort, with the fields it signed for the sub-coordinator. */
export interface CohortMember {
  account: string;
  taskId: string;
  samples: number;
  shards: number[];
  trainLoss: number;
  /** 0x-hex SHA-256 of the worker's payload, and its length. */
  payloadSha256: string;
  payloadBytes: number;
  /** 0x-hex: the worker's signature over its update (proto's updateMessage, for the sub-coordinator). */
  signature: string;
}

export interface CohortHeader {
  /** 0x-hex: the cohort's updatesRoot, over its members' leaves in account order. */
  root: string;
  /** The codec the members' payloads are in (the proposal's). */
  codec: string;
  /** The members, in leaf (account) order. */
  members: CohortMember[];
}

export function encodeCohortPayload(header: CohortHeader, aggregate: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(MAGIC.length + 4 + json.length + aggregate.length);
  out.set(MAGIC, 0);
  new DataView(out.buffer).setUint32(MAGIC.length, json.length, true);
  out.set(json, MAGIC.length + 4);
  out.set(aggregate, MAGIC.length + 4 + json.length);
  return out;
}

export const isCohortPayload = (payload: Uint8Array): boolean =>
  payload.length >= MAGIC.length && MAGIC.every((b, i) => payload[i] === b);

/** The header and the dense aggregate of a cohort payload; E_COHORT_MALFORMED when it is not one. */
export function decodeCohortPayload(payload: Uint8Array): { header: CohortHeader; aggregate: Uint8Array } {
  const bad = (why: string) => new CoordinatorError('E_COHORT_MALFORMED', `cohort update: ${why}`);
  if (!isCohortPayload(payload) || payload.length < MAGIC.length + 4) throw bad('no FTCOHORT1 header');
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const length = view.getUint32(MAGIC.length, true);
  const start = MAGIC.length + 4;
  if (length > MAX_HEADER_BYTES || start + length > payload.length)
    throw bad(`header length ${length} does not fit the payload of ${payload.length} bytes`);
  let header: CohortHeader;
  try {
    header = JSON.parse(new TextDecoder().decode(payload.subarray(start, start + length))) as CohortHeader;
  } catch {
    throw bad('the header is not JSON');
  }
  const members = (header as { members?: unknown }).members;
  if (
    typeof header.root !== 'string' ||
    !/^0x[0-9a-f]{64}$/.test(header.root) ||
    typeof header.codec !== 'string' ||
    !Array.isArray(members)
  )
    throw bad('the header needs root, codec and members');
  for (const m of members as CohortMember[]) {
    const ok =
      typeof m === 'object' &&
      m !== null &&
      typeof m.account === 'string' &&
      typeof m.taskId === 'string' &&
      Number.isSafeInteger(m.samples) &&
      Array.isArray(m.shards) &&
      m.shards.every((s) => Number.isSafeInteger(s) && s >= 0) &&
      typeof m.trainLoss === 'number' &&
      typeof m.payloadSha256 === 'string' &&
      /^0x[0-9a-f]{64}$/.test(m.payloadSha256) &&
      Number.isSafeInteger(m.payloadBytes) &&
      typeof m.signature === 'string';
    if (!ok)
      throw bad(
        'a member needs account, taskId, samples, shards, trainLoss, payloadSha256, payloadBytes, signature',
      );
  }
  return { header, aggregate: payload.subarray(start + length) };
}

/** Strategies whose aggregate of cohort aggregates is the flat one (in real numbers): the weighted-mean family. */
const HIERARCHICAL = new Set(['fedavg', 'fedavgm', 'fedadam', 'fedyogi', 'fedadagrad']);

/** Why a proposal's strategy cannot run hierarchically, or null when it can. */
export function hierarchyRefusal(spec: unknown): string | null {
  let parsed: StrategySpec;
  try {
    parsed = parseStrategySpec(spec);
  } catch (error) {
    return (error as Error).message;
  }
  if (!HIERARCHICAL.has(parsed.name))
    return `strategy ${parsed.name} is not a weighted mean: a mean of cohort aggregates is not its aggregate (hierarchy runs ${[...HIERARCHICAL].join(', ')})`;
  if (parsed.options.clip !== null)
    return `strategy ${parsed.name} clips each update by a bound over all of the round's updates, which no cohort sees: set "clip": null to run it hierarchically`;
  return null;
}

/**
 * The spec of a cohort's aggregate: FedAvg with server learning rate 1 and no clipping, started from zero weights, so
 * that its weights after the round are the sample-weighted mean of the members' deltas. The proposal's norm bound
 * still applies to each member.
 */
export function cohortMeanSpec(spec: unknown): StrategySpec {
  const parsed = parseStrategySpec(spec);
  return parseStrategySpec({
    name: 'fedavg',
    options: { serverLr: 1, clip: null, maxNorm: parsed.options.maxNorm },
  });
}
