// Hierarchical rounds (docs/rounds.md, "Hierarchical rounds"): the cohort update's payload format, shared by the
// sub-coordinator that writes it and the parent that checks it, and a verifier's check of a hierarchical round's chain
// of custody: every cohort update and every worker's update inside it signed, the cohort roots and the on-chain
// updatesRoot recomputed, the contributors and rewards on chain exactly the cohorts' workers.
import { createHash } from 'node:crypto';
import { signatureVerify } from '@polkadot/util-crypto';
import {
  createStrategy,
  encodeUpdate,
  parseStrategySpec,
  type FitConfig,
  type NamedTensor,
  type StrategySpec,
} from '../aggregation/index.ts';
import { CodedError } from '../errors/index.ts';
import { getWeights, trainableNames, type Model } from '../model/index.ts';
import {
  cohortLeafHash,
  fromHex,
  rewardShares,
  updateLeafHash,
  updatesTree,
  type FinalizedRound,
} from '../pallet-bindings/index.ts';
import { updateMessage } from '../proto/index.ts';
import { deriveAggregate, type DerivedAggregate, type PublishedUpdate } from './derive.ts';
import { httpGetBytes } from './fetch.ts';
import {
  MAX_PUBLISHED_UPDATES,
  parsePublication,
  updateRecordProblem,
  type PublishedUpdateRecord,
  type RoundPublication,
} from './publication.ts';

/** The codec name a cohort update is uploaded under. */
export const COHORT_CODEC = 'cohort';
/** The extra metric a hierarchical round's finalizeRound carries: how many cohort updates it aggregated. */
export const COHORTS_METRIC = 'cohorts';
const MAGIC = new TextEncoder().encode('FTCOHORT1');
/** A header over this is refused before it is parsed (a cohort of ~10,000 workers fits). */
const MAX_HEADER_BYTES = 8 * 1024 * 1024;
const HASH = /^0x[0-9a-f]{64}$/;
const MAX_TEXT = 256;
const MAX_URL = 2048;

const isHttpUrl = (x: unknown): boolean => {
  if (typeof x !== 'string' || x.length > MAX_URL) return false;
  try {
    const { protocol } = new URL(x);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
};

export class CohortError extends CodedError {}

/** One worker's update inside a cohort: the fields it signed for the sub-coordinator, as a round record lists them. */
export type CohortMember = PublishedUpdateRecord;

export interface CohortHeader {
  /** 0x-hex: the cohort's updatesRoot, over its members' leaves in account order. */
  root: string;
  /** The codec the members' payloads are in (the proposal's). */
  codec: string;
  /** The members, in leaf (account) order. */
  members: CohortMember[];
  /** The sub-coordinator's HTTP base URL: its own round publication and the members' payloads (/rounds, /blobs). */
  source: string;
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
  const bad = (why: string) => new CohortError('E_COHORT_MALFORMED', `cohort update: ${why}`);
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
  if (!(typeof header.root === 'string' && HASH.test(header.root)))
    throw bad('the header needs a root (0x + 64 hex)');
  if (!(typeof header.codec === 'string' && header.codec.length > 0 && header.codec.length <= MAX_TEXT))
    throw bad(`the header needs a codec (1 to ${MAX_TEXT} characters)`);
  if (!Array.isArray(members) || members.length > MAX_PUBLISHED_UPDATES)
    throw bad(`the header needs members (at most ${MAX_PUBLISHED_UPDATES})`);
  if (!isHttpUrl(header.source))
    throw bad(
      `the header's source (where its members' updates are served) must be an http(s) URL of at most ${MAX_URL} characters`,
    );
  members.forEach((m: unknown, i: number) => {
    const problem = updateRecordProblem(m);
    if (problem !== null) throw bad(`member ${i}: ${problem === '' ? 'not an object' : `bad ${problem}`}`);
  });
  return { header, aggregate: payload.subarray(start + length) };
}

/** Bytes of any 0x-hex string (fromHex takes 32-byte hashes only; a signature is 64 bytes or more). */
export const hexBytes = (hex: string): Uint8Array =>
  new Uint8Array(Buffer.from(hex.replace(/^0x/, ''), 'hex'));

/** Whether `signature` (0x-hex) over `message` verifies for `account`; a malformed one does not. */
export function signedBy(message: Uint8Array, signature: string, account: string): boolean {
  try {
    return signatureVerify(message, hexBytes(signature), account).isValid;
  } catch {
    return false;
  }
}

/** Whether a finalized round was aggregated from cohort updates (its finalizeRound says how many). */
export const isHierarchical = (f: FinalizedRound): boolean =>
  f.metrics.extra.some((m) => m.name === COHORTS_METRIC && m.value > 0);

export interface CustodyFailure {
  code:
    | 'E_UPDATE_UNAVAILABLE'
    | 'E_UPDATE_HASH'
    | 'E_UPDATE_SIGNATURE'
    | 'E_REWARD_MISMATCH'
    | 'E_SHARDS_MISMATCH'
    | 'E_AGGREGATE_MISMATCH';
  message: string;
  culprit: string | null;
}

/**
 * A hierarchical round's chain of custody, from the parent's publication and the cohort payloads it serves: each
 * update's signature (a sub's over its cohort update, each worker's inside it over its own), each cohort's root from
 * its members' leaves, updatesRoot from the cohort leaves, and the contributors, their samples and shards and the
 * rewards on chain from the cohorts' members. Returns what it checked, or the first failure.
 */
export async function checkCustody(params: {
  network: string;
  proposal: number;
  round: number;
  f: FinalizedRound;
  rewardPerRound: string;
  sources: string[];
  codec: string;
  /** What a task of this round stands for. */
  samples: number;
}): Promise<{ ok: true; detail: string; publication: RoundPublication } | ({ ok: false } & CustodyFailure)> {
  const { f } = params;
  const fail = (code: CustodyFailure['code'], message: string, culprit: string | null = f.coordinator) => ({
    ok: false as const,
    code,
    message,
    culprit,
  });
  let pub: RoundPublication | null = null;
  let source = '';
  for (const s of params.sources) {
    const bytes = await httpGetBytes(`${s}/rounds/${params.proposal}/${params.round}`, {
      maxBytes: 64 * 1024 * 1024,
    }).catch(() => null);
    if (bytes) {
      pub = parsePublication(new TextDecoder().decode(bytes));
      source = s;
      break;
    }
  }
  if (!pub) return fail('E_UPDATE_UNAVAILABLE', `no source serves round ${params.round}'s publication`);
  const leaves: { account: string; updateHash: Uint8Array }[] = [];
  const credited = new Map<string, { samples: number; shards: number[] }>();
  let members = 0;
  for (const u of pub.updates) {
    let payload: Uint8Array | null = null;
    for (const s of [source, ...params.sources.filter((x) => x !== source)]) {
      payload = await httpGetBytes(`${s}/blobs/${u.payloadSha256}`, { maxBytes: u.payloadBytes }).catch(
        () => null,
      );
      if (payload && sha256Hex(payload) === u.payloadSha256) break;
      payload = null;
    }
    if (!payload) return fail('E_UPDATE_UNAVAILABLE', `no source serves the update of ${u.account}`);
    const cohort = isCohortPayload(payload);
    const signed = updateMessage({
      network: params.network,
      coordinator: f.coordinator,
      proposal: params.proposal,
      round: params.round,
      samples: u.samples,
      payloadBytes: u.payloadBytes,
      base: pub.base,
      codec: cohort ? COHORT_CODEC : params.codec,
      shards: u.shards,
      payloadSha256: fromHex(u.payloadSha256),
    });
    if (!signedBy(signed, u.signature, u.account))
      return fail('E_UPDATE_SIGNATURE', `the update of ${u.account} is not signed by it`);
    if (!cohort) {
      const leaf = {
        ...u,
        proposal: params.proposal,
        round: params.round,
        payloadSha256: fromHex(u.payloadSha256),
      };
      leaves.push({ account: u.account, updateHash: updateLeafHash(leaf) });
      credited.set(u.account, u);
      continue;
    }
    let header: CohortHeader;
    try {
      header = decodeCohortPayload(payload).header;
    } catch (error) {
      return fail('E_UPDATE_HASH', (error as Error).message, u.account);
    }
    const memberLeaves = [];
    for (const m of header.members) {
      const message = updateMessage({
        network: params.network,
        coordinator: u.account,
        proposal: params.proposal,
        round: params.round,
        samples: m.samples,
        payloadBytes: m.payloadBytes,
        base: pub.base,
        codec: params.codec,
        shards: m.shards,
        payloadSha256: fromHex(m.payloadSha256),
      });
      if (!signedBy(message, m.signature, m.account))
        return fail(
          'E_UPDATE_SIGNATURE',
          `${m.account}'s update in the cohort of ${u.account} is not signed by it`,
          u.account,
        );
      if (m.samples !== params.samples || credited.has(m.account))
        return fail(
          'E_REWARD_MISMATCH',
          `${m.account} in the cohort of ${u.account}: ${m.samples} samples, or counted twice`,
          u.account,
        );
      const leaf = {
        ...m,
        proposal: params.proposal,
        round: params.round,
        payloadSha256: fromHex(m.payloadSha256),
      };
      memberLeaves.push({ account: m.account, updateHash: updateLeafHash(leaf) });
      credited.set(m.account, m);
      members++;
    }
    const root = updatesTree(memberLeaves).root;
    const sum = header.members.reduce((n, m) => n + m.samples, 0);
    if (root !== header.root || sum !== u.samples)
      return fail(
        'E_UPDATE_HASH',
        `the cohort of ${u.account}: root ${header.root} and ${u.samples} samples; its members give ${root} and ${sum}`,
        u.account,
      );
    const hash = cohortLeafHash({
      proposal: params.proposal,
      round: params.round,
      account: u.account,
      samples: u.samples,
      payloadSha256: fromHex(u.payloadSha256),
      cohortRoot: fromHex(root),
    });
    leaves.push({ account: u.account, updateHash: hash });
  }
  const root = updatesTree(leaves).root;
  if (root !== f.updatesRoot)
    return fail(
      'E_UPDATE_HASH',
      `the published cohorts hash to ${root}, not the committed updatesRoot ${f.updatesRoot}`,
    );
  for (const c of f.contributors) {
    const m = credited.get(c.account);
    if (!m || m.samples !== c.samples)
      return fail(
        'E_REWARD_MISMATCH',
        `contributor ${c.account} is credited ${c.samples} samples; the cohorts give it ${m?.samples ?? 0}`,
      );
    if (m.shards.length !== c.shards.length || m.shards.some((s, i) => s !== c.shards[i]))
      return fail(
        'E_SHARDS_MISMATCH',
        `contributor ${c.account} is credited shards [${c.shards}]; it signed [${m.shards}]`,
      );
  }
  if (credited.size !== f.contributors.length)
    return fail(
      'E_REWARD_MISMATCH',
      `${credited.size} workers signed updates; ${f.contributors.length} are credited on chain`,
    );
  const shares = rewardShares(params.rewardPerRound || '0', f.contributors);
  for (const r of f.rewards)
    if (shares.get(r.account) !== BigInt(r.amount))
      return fail(
        'E_REWARD_MISMATCH',
        `${r.account} was paid ${r.amount}; the rules give it ${shares.get(r.account) ?? 0n}`,
      );
  return {
    ok: true,
    publication: pub,
    detail: `${pub.updates.length} update(s) (${members} worker(s) in cohorts) signed and under updatesRoot; contributors, samples, shards and ${f.rewards.length} reward(s) follow`,
  };
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
 * A cohort's aggregate, by definition: FedAvg with server learning rate 1 and no clipping, started from zero weights
 * (so its weights after the round are the sample-weighted mean of the members' deltas), over the members' updates in
 * leaf order, dense-encoded. The proposal's norm bound still applies to each member.
 */
export function cohortAggregate(params: {
  spec: unknown;
  /** The trainable weights' names and shapes (values are not read). */
  like: NamedTensor[];
  round: number;
  fit: Partial<FitConfig>;
  codec: string;
  maxValues: number;
  updates: readonly PublishedUpdate[];
}): {
  aggregate: Uint8Array;
  stateBefore: Uint8Array;
  stateAfter: Uint8Array;
  refused: DerivedAggregate['refused'];
} {
  const parsed = parseStrategySpec(params.spec);
  const spec = { name: 'fedavg', options: { serverLr: 1, clip: null, maxNorm: parsed.options.maxNorm } };
  const zero = params.like.map((t) => ({ ...t, data: new Float32Array(t.data.length) }));
  const mean = createStrategy(spec, zero);
  try {
    const stateBefore = mean.exportState();
    const derived = deriveAggregate({ ...params, strategy: mean });
    return {
      aggregate: encodeUpdate(derived.result.weights, { codec: 'dense' }),
      stateBefore,
      stateAfter: derived.state,
      refused: derived.refused,
    };
  } finally {
    mean.dispose();
  }
}

/**
 * Each cohort's aggregate repeated from its members' updates, fetched from the sub-coordinator the header names (each
 * checked against the hash its worker signed), and compared byte for byte with the aggregate the sub uploaded.
 */
export async function checkCohortAggregates(params: {
  payloads: ReadonlyMap<string, Uint8Array>;
  spec: unknown;
  /** The round's base model: the trainable weights' names and shapes. */
  model: Model;
  round: number;
  fit: Partial<FitConfig>;
  codec: string;
  sources: string[];
}): Promise<{ ok: true; detail: string } | ({ ok: false } & CustodyFailure)> {
  const like = getWeights(params.model, { names: trainableNames(params.model) });
  const maxValues = like.reduce((n, t) => n + t.data.length, 0);
  let cohorts = 0;
  let members = 0;
  for (const [account, payload] of params.payloads) {
    if (!isCohortPayload(payload)) continue;
    const { header, aggregate } = decodeCohortPayload(payload);
    const updates: PublishedUpdate[] = [];
    for (const m of header.members) {
      let body: Uint8Array | null = null;
      for (const s of [header.source, ...params.sources]) {
        body = await httpGetBytes(`${s.replace(/\/+$/, '')}/blobs/${m.payloadSha256}`, {
          maxBytes: m.payloadBytes,
        }).catch(() => null);
        if (body && sha256Hex(body) === m.payloadSha256) break;
        body = null;
      }
      if (!body)
        return {
          ok: false,
          code: 'E_UPDATE_UNAVAILABLE',
          message: `no source serves the update of ${m.account} in the cohort of ${account} (${m.payloadSha256}; tried ${header.source})`,
          culprit: account,
        };
      updates.push({ account: m.account, samples: m.samples, payload: body });
      members++;
    }
    const repeated = cohortAggregate({ ...params, like, maxValues, updates });
    if (repeated.refused.length > 0 || !sameBytes(repeated.aggregate, aggregate))
      return {
        ok: false,
        code: 'E_AGGREGATE_MISMATCH',
        message: `the cohort of ${account}: its members' updates do not aggregate to the uploaded cohort aggregate${repeated.refused.length > 0 ? ` (${repeated.refused[0]!.account}: ${repeated.refused[0]!.code})` : ''}`,
        culprit: account,
      };
    cohorts++;
  }
  return {
    ok: true,
    detail: `${cohorts} cohort aggregate(s) repeated from ${members} worker update(s), byte for byte`,
  };
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

function sha256Hex(bytes: Uint8Array): string {
  return `0x${createHash('sha256').update(bytes).digest('hex')}`;
}
