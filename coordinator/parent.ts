// The parent's side of a hierarchical round (docs/rounds.md, "Hierarchical rounds"): checking a sub-coordinator's
// cohort update against the task it was given and the chain, expanding accepted cohorts into the round's contributors
// and the updates its aggregate is derived from, and the receipt a sub-coordinator is sent.
import type { Strategy } from '../aggregation/index.ts';
import {
  cohortLeafHash,
  fromHex,
  isBarredWorker,
  isCoordinator,
  isWorker,
  updateLeafHash,
  updatesTree,
  type NetworkState,
} from '../pallet-bindings/index.ts';
import { updateMessage } from '../proto/index.ts';
import { checkTask, checkUpdate, type Rejection } from './accept.ts';
import type { Assignment } from './assign.ts';
import {
  decodeCohortPayload,
  hexBytes,
  hierarchyRefusal,
  isCohortPayload,
  type CohortHeader,
} from './cohort-payload.ts';
import type { UpdateRecord } from './records.ts';
import type { UploadedUpdate } from './server.ts';
import { verifyInline } from './server/crypto-pool.ts';

/** Whether an account takes part as a sub-coordinator: one of the network's coordinators (never this one). */
export const isCohortAccount = (net: NetworkState | undefined, account: string, me: string): boolean =>
  net !== undefined && account !== me && isCoordinator(net, account);

/** Members of the cohorts accepted into a round, by the round's accepted map: no worker counts twice. */
const membersByRound = new WeakMap<ReadonlyMap<string, unknown>, Map<string, string>>();

/** The sub-coordinator whose accepted cohort holds this worker, if any. */
export function cohortOf(accepted: ReadonlyMap<string, unknown>, account: string): string | undefined {
  return membersByRound.get(accepted)?.get(account);
}

/**
 * Checks a cohort update: the sub's task and shards; each member a registered, unbarred worker not yet in the round,
 * with a task's samples, its shards disjoint and within the sub's, its signature for the sub; the cohort root and
 * samples derived; the aggregate dense and within the strategy's checks. Returns the journal record (its leaf the
 * cohort's), or why it was refused.
 */
export function acceptCohortUpdate(params: {
  assignment: Assignment | null;
  closing: boolean;
  accepted: Map<string, unknown>;
  maxWorkers: number;
  /** The samples a task of this round stands for. */
  samples: number;
  strategy: Strategy;
  spec: unknown;
  codec: string;
  maxValues: number;
  network: string;
  net: NetworkState | undefined;
  base: string;
  update: UploadedUpdate;
}): { ok: true; record: UpdateRecord } | Rejection {
  const taken = checkTask(params);
  if (!taken.ok) return taken;
  const { assignment: a, task, update } = taken;
  const { begin, account } = update;
  const reject = (code: string, message: string): Rejection => ({ ok: false, code, message });
  const refusal = hierarchyRefusal(params.spec);
  if (refusal !== null) return reject('E_HIERARCHY_UNSUPPORTED', refusal);
  let header: CohortHeader;
  let aggregate: Uint8Array;
  try {
    ({ header, aggregate } = decodeCohortPayload(update.payload));
  } catch (error) {
    return reject('E_COHORT_MALFORMED', (error as Error).message);
  }
  const bad = (code: string, why: string) => reject(code, `cohort of ${account}: ${why}`);
  if (header.members.length === 0) return bad('E_COHORT_EMPTY', 'no member updates');
  if (header.codec !== params.codec)
    return bad('E_COHORT_CODEC', `members' codec ${header.codec}, the round's is ${params.codec}`);
  const members = membersByRound.get(params.accepted);
  const seen = new Set<string>();
  const shardsUsed = new Set<number>();
  const taskShards = new Set(task.shards);
  const leaves: { account: string; updateHash: Uint8Array }[] = [];
  for (const m of header.members) {
    if (!params.net || !isWorker(params.net, m.account) || isBarredWorker(params.net, m.account))
      return bad('E_COHORT_MEMBER', `${m.account} is not a registered, unbarred worker of the network`);
    if (seen.has(m.account) || params.accepted.has(m.account) || members?.has(m.account))
      return bad('E_DUPLICATE_UPDATE', `${m.account} already contributes to this round`);
    seen.add(m.account);
    if (m.samples !== params.samples)
      return bad(
        'E_SAMPLES_MISMATCH',
        `${m.account} claims ${m.samples} samples; a task of this round is ${params.samples}`,
      );
    for (const s of m.shards) {
      if (!taskShards.has(s) || shardsUsed.has(s))
        return bad('E_WRONG_SHARDS', `${m.account}'s shard ${s} is not the sub's to give, or given twice`);
      shardsUsed.add(s);
    }
    const payloadSha256 = fromHex(m.payloadSha256);
    const signed = updateMessage({
      network: params.network,
      coordinator: account,
      proposal: a.proposal,
      round: a.round,
      samples: m.samples,
      payloadBytes: m.payloadBytes,
      base: params.base,
      codec: params.codec,
      shards: m.shards,
      payloadSha256,
    });
    // sr25519 in WebAssembly (loaded with the server's crypto pool): a thousand members cost ~4 s in JavaScript.
    if (!verifyInline(signed, hexBytes(m.signature), m.account))
      return bad('E_BAD_SIGNATURE', `${m.account}'s signature does not verify for this update`);
    const leaf = {
      proposal: a.proposal,
      round: a.round,
      account: m.account,
      samples: m.samples,
      payloadSha256,
    };
    leaves.push({ account: m.account, updateHash: updateLeafHash(leaf) });
  }
  const root = updatesTree(leaves).root;
  if (root !== header.root)
    return bad('E_COHORT_ROOT', `its root is ${header.root}; its members' leaves give ${root}`);
  const samples = header.members.length * params.samples;
  if (begin.samples !== samples)
    return bad(
      'E_SAMPLES_MISMATCH',
      `claims ${begin.samples} samples; its ${header.members.length} members stand for ${samples}`,
    );
  const checked = checkUpdate(params.strategy, {
    account,
    samples,
    payload: aggregate,
    codec: 'dense',
    maxValues: params.maxValues,
  });
  if (!checked.ok) return checked;
  const trainLoss = header.members.reduce((s, m) => s + m.trainLoss * m.samples, 0) / samples;
  return {
    ok: true,
    record: {
      t: 'update',
      proposal: a.proposal,
      round: a.round,
      account,
      taskId: begin.taskId,
      samples,
      shards: begin.shards,
      trainLoss: Number.isFinite(trainLoss) ? trainLoss : 0,
      payloadSha256: begin.payloadSha256,
      updateHash: cohortLeafHash({
        proposal: a.proposal,
        round: a.round,
        account,
        samples,
        payloadSha256: begin.payloadSha256,
        cohortRoot: fromHex(root),
      }),
      signature: begin.signature,
      payload: update.payload,
    },
  };
}

/** Records an accepted cohort's members in the round, so that none of them counts again. */
export function noteCohort(accepted: ReadonlyMap<string, unknown>, record: UpdateRecord): void {
  let members = membersByRound.get(accepted);
  if (!members) membersByRound.set(accepted, (members = new Map()));
  for (const m of decodeCohortPayload(record.payload).header.members) members.set(m.account, record.account);
}

/** A contributor of finalizeRound: a direct worker, or a cohort's member. */
export interface Contribution {
  account: string;
  samples: number;
  shards: number[];
  trainLoss: number;
}

/**
 * A round's accepted updates as its aggregate and its contributors see them: a cohort update becomes its dense
 * aggregate (derived with the dense codec) and its members; a worker's update stays as it is.
 */
export function expandCohorts(
  accepted: readonly UpdateRecord[],
  codec: string,
): { derive: (UpdateRecord & { codec: string })[]; contributors: Contribution[] } {
  const derive: (UpdateRecord & { codec: string })[] = [];
  const contributors: Contribution[] = [];
  for (const u of accepted) {
    if (!isCohortPayload(u.payload)) {
      derive.push({ ...u, codec });
      contributors.push(u);
      continue;
    }
    const { header, aggregate } = decodeCohortPayload(u.payload);
    derive.push({ ...u, payload: aggregate, codec: 'dense' });
    for (const m of header.members)
      contributors.push({ account: m.account, samples: m.samples, shards: m.shards, trainLoss: m.trainLoss });
  }
  return { derive, contributors };
}
