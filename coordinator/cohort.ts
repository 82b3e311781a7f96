// A sub-coordinator (`fedtune coordinator --parent URL --cohort N`, docs/rounds.md "Hierarchical rounds"): it takes part
// in its parent's rounds over one connection, hands its task's shards to its own workers, checks and journals their
// updates like any round, aggregates them into the cohort's weighted mean, publishes its round, uploads one signed cohort
// update to the parent, and passes each worker its receipt through the cohort's root once the parent's round is final.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import {
  fromHex,
  updatesTree,
  type KeyringPair,
  type NetworkState,
  type RoundProposal,
} from '../pallet-bindings/index.ts';
import type { RoundResult, Task } from '../proto/index.ts';
import { proposalFit, proposalStrategy } from '../verify/index.ts';
import { connectWorker, type WorkerConnection } from '../worker/index.ts';
import { assignSlots } from './assign.ts';
import { baseModel } from './base.ts';
import { sleep, type Clock, type Signal } from './clock.ts';
import {
  COHORT_CODEC,
  cohortAggregate,
  encodeCohortPayload,
  hierarchyRefusal,
  type CohortMember,
} from './cohort-payload.ts';
import { codeOf, CoordinatorError } from './errors.ts';
import type { ChainView } from './follow.ts';
import type { ProposalContext } from './prepare.ts';
import type { Proposals } from './proposals.ts';
import { publishedRecords, publishRound } from './publish.ts';
import { roundKey } from './records.ts';
import { allAnswered, candidates, endRound, newLiveRound, roundRecord, sendTask } from './round.ts';
import type { ProposalRunDependencies } from './run.ts';

/** The share of the way to the parent's deadline a cohort waits for its workers before it closes. */
export const COHORT_CLOSE_FRACTION = 0.8;

/** The sub-coordinator's connection to its parent: the tasks and results it sends, by proposal and round. */
export interface ParentLink {
  url: string;
  connection: WorkerConnection;
  /** The parent's task for a round, once it arrives. */
  task(proposal: number, round: number, signal: AbortSignal): Promise<Task>;
  /** The parent's RoundResult for a round (the cohort leaf's proof), once the round is final. */
  result(proposal: number, round: number, signal: AbortSignal): Promise<RoundResult>;
}

export function connectParent(params: {
  url: string;
  signer: KeyringPair;
  net: () => NetworkState | undefined;
  network: string;
  logger: Logger;
}): ParentLink {
  const tasks = new Map<string, Task>();
  const results = new Map<string, RoundResult>();
  let waiters: (() => void)[] = [];
  const wake = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const connection = connectWorker({
    url: params.url,
    signer: params.signer,
    logger: params.logger,
    client: 'fedtune sub-coordinator',
    onTask: (task) => {
      tasks.set(`${task.proposal}/${task.round}`, task);
      wake();
    },
    onRoundResult: (result) => {
      results.set(`${result.proposal}/${result.round}`, result);
      wake();
    },
    // Like any worker, the sub signs only a challenge of one of the network's coordinators on chain.
    expect: { network: params.network, coordinators: params.net()?.coordinators },
  });
  const waitIn = async <T>(map: Map<string, T>, key: string, signal: AbortSignal): Promise<T> => {
    for (;;) {
      const found = map.get(key);
      if (found !== undefined) return found;
      if (signal.aborted) throw new CoordinatorError('E_STOPPED', 'the sub-coordinator is stopping');
      await new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener('abort', done);
          resolve();
        };
        waiters.push(done);
        signal.addEventListener('abort', done, { once: true });
      });
    }
  };
  return {
    url: params.url,
    connection,
    task: (p, r, signal) => waitIn(tasks, `${p}/${r}`, signal),
    result: (p, r, signal) => waitIn(results, `${p}/${r}`, signal),
  };
}

/** The parent's open rounds this sub-coordinator takes part in: those opened with the parent's URL as endpoint. */
export function parentRounds(net: NetworkState | undefined, parentUrl: string): RoundProposal[] {
  if (!net) return [];
  const same = (a: string | null | undefined) =>
    (a ?? '').replace(/\/+$/, '') === parentUrl.replace(/\/+$/, '');
  return net.proposals.filter(
    (p): p is RoundProposal => p.type === 'round' && p.status === 'open' && same(p.coordinatorEndpoint),
  );
}

/**
 * A sub-coordinator's step of the engine's loop: the next of its parent's rounds it can take part in, run with its
 * cohort (true when there was one). A proposal it cannot join (E_HIERARCHY_UNSUPPORTED) is logged and skipped.
 */
export function cohortStepper(params: {
  parent: { url: string; cohort: number };
  signer: KeyringPair;
  network: string;
  logger: Logger;
  view: ChainView;
  proposals: Proposals;
  deps: ProposalRunDependencies;
}): { step(): Promise<boolean>; close(): Promise<void> } {
  const { parent, view, logger } = params;
  let link: ParentLink | null = null;
  const refused = new Set<number>();
  return {
    async step() {
      const p = parentRounds(view.net(), parent.url).find((x) => !refused.has(x.id));
      if (!p) return false;
      const ctx = await params.proposals.prepared(p);
      if (!ctx) return false;
      // Connected once the network is known: the parent's challenge must name one of its coordinators on chain.
      link ??= connectParent({
        url: parent.url,
        signer: params.signer,
        net: () => view.net(),
        network: params.network,
        logger,
      });
      try {
        await runCohortProposal(ctx, { ...params.deps, parent: link, cohortSize: parent.cohort }, view);
      } catch (error) {
        if (codeOf(error) !== 'E_HIERARCHY_UNSUPPORTED') throw error;
        refused.add(p.id);
        logger.warn({ proposal: p.id, code: 'E_HIERARCHY_UNSUPPORTED' }, (error as Error).message);
      }
      return true;
    },
    async close() {
      await link?.connection.close();
    },
  };
}

export interface CohortDependencies extends ProposalRunDependencies {
  parent: ParentLink;
  /** The most workers this cohort takes (`--cohort N`). */
  cohortSize: number;
}

/** Takes part in a parent's proposal, round after round, until it ends or the sub-coordinator stops. */
export async function runCohortProposal(
  ctx: ProposalContext,
  deps: CohortDependencies,
  view: ChainView,
): Promise<void> {
  const refusal = hierarchyRefusal(ctx.spec);
  if (refusal !== null) throw new CoordinatorError('E_HIERARCHY_UNSUPPORTED', refusal);
  for (;;) {
    const p = deps.net()?.proposals[ctx.id] as RoundProposal | undefined;
    if (!p || p.status !== 'open' || deps.signal.aborted) return;
    const r = p.finalized.length;
    await runCohortRound(ctx, p, r, deps, view);
    // The parent's RoundResult comes once its commit is final: the chain shows the round by now.
    await view.refresh();
    if ((deps.net()?.proposals[ctx.id] as RoundProposal | undefined)?.finalized.length === r)
      await view.syncTo((view.state.height ?? 0) + 1);
  }
}

/** The parent's task for round r, or null once the chain shows the round finalized or the proposal ended without one. */
async function waitForTask(
  p: RoundProposal,
  r: number,
  deps: CohortDependencies,
  view: ChainView,
): Promise<Task | null> {
  const stop = new AbortController();
  const abort = () => stop.abort();
  deps.signal.addEventListener('abort', abort, { once: true });
  const task = deps.parent.task(p.id, r, stop.signal).catch(() => null);
  try {
    for (;;) {
      const got = await Promise.race([task, sleep(deps.clock, 5000, stop.signal).then(() => undefined)]);
      if (got !== undefined) return got;
      await view.refresh();
      const now = deps.net()?.proposals[p.id] as RoundProposal | undefined;
      if (!now || now.status !== 'open' || now.finalized.length > r) return null;
    }
  } finally {
    stop.abort();
    deps.signal.removeEventListener('abort', abort);
  }
}

async function runCohortRound(
  ctx: ProposalContext,
  p: RoundProposal,
  r: number,
  deps: CohortDependencies,
  view: ChainView,
): Promise<void> {
  ctx.proposal = p;
  const base = await baseModel(ctx, r, {
    store: deps.store,
    network: deps.network,
    net: deps.net,
    downloadDir: deps.downloadDir,
    logger: deps.logger,
  });
  // The parent may give this cohort no slot this round: the round then ends on chain without it.
  const task = await waitForTask(p, r, deps, view);
  if (task === null) return;
  if (task.base?.id && task.base.id !== base.id)
    throw new CoordinatorError(
      'E_BASE_MISMATCH',
      `the parent's task starts from ${task.base.id}; the chain gives round ${r} the base ${base.id}`,
    );
  const baseBytes = (await deps.store.getManifest(base.id))!.size;
  // A fresh strategy per round checks the workers' updates (shapes, finiteness, the norm bound); it never aggregates.
  ctx.strategy?.dispose();
  const made = proposalStrategy(ctx.spec, base.model, { noiseSeed: ctx.noiseSeed });
  ctx.strategy = made.strategy;
  ctx.maxValues = made.maxValues;
  const config = ctx.strategy.configureRound(r, proposalFit(p));
  const now = deps.clock.now();
  const closeAt = now + Math.max(1000, (Number(task.deadlineMs) - now) * COHORT_CLOSE_FRACTION);
  const slots = Math.max(1, Math.min(deps.cohortSize, task.shards.length));
  // The cohort holds at most its slots' updates (acceptUpdate's maxWorkers).
  ctx.proposal = { ...p, round: { ...p.round, maxWorkers: slots } };
  const round = newLiveRound({
    ctx,
    round: r,
    config,
    base: { id: base.id, bytes: baseBytes },
    previous: undefined,
    deadlineSpanMs: closeAt - now,
    clock: deps.clock,
  });
  round.assignment.shardList = [...task.shards];
  round.assignment.shardCount = task.shards.length;
  round.assignment.slots = slots;
  round.started = true;
  deps.setLive({ round, ctx });
  const k = roundKey(p.id, r);
  try {
    assignSlots(round.assignment, candidates(round, deps.round));
    await deps.round.journal(roundRecord(round));
    for (const t of round.assignment.tasks.values()) sendTask(round, t, ctx, deps.round);
    deps.emit({
      type: 'roundStarted',
      proposal: p.id,
      round: r,
      attempt: 0,
      base: base.id,
      deadlineMs: round.deadlineMs,
      tasks: round.assignment.tasks.size,
      resumed: false,
    });
    await waitForCohort(deps.clock, round.signal, round.deadlineMs, () => {
      if (deps.signal.aborted) return true;
      // Late joiners take free slots as they connect (the hooks' welcome); the round closes when all answered.
      return round.assignment.tasks.size > 0 && allAnswered(round);
    });
    if (deps.signal.aborted) return;
    endRound(round);
    await Promise.allSettled([...round.writing]);
    const accepted = (deps.log.updates.get(k) ?? []).filter(
      (u) => round.accepted.get(u.account)?.taskId === u.taskId,
    );
    if (accepted.length === 0) {
      deps.parent.connection.send({
        kind: 'taskFailed',
        taskFailed: {
          taskId: task.taskId,
          code: 'E_TOO_FEW_UPDATES',
          message: 'no worker of the cohort answered',
        },
      });
      throw new CoordinatorError('E_TOO_FEW_UPDATES', `cohort round ${r} of ${p.id}: no accepted update`);
    }
    await submitCohort(ctx, p, r, base.id, task, accepted, deps);
  } finally {
    endRound(round);
    deps.setLive(null);
  }
}

/** Waits on the round's signal until `done` or the deadline. */
async function waitForCohort(
  clock: Clock,
  signal: Signal,
  deadlineMs: number,
  done: () => boolean,
): Promise<void> {
  signal.wake();
  for (;;) {
    await signal.wait(deadlineMs);
    if (done()) return;
    if (clock.now() >= deadlineMs) return;
  }
}

async function submitCohort(
  ctx: ProposalContext,
  p: RoundProposal,
  r: number,
  baseId: string,
  task: Task,
  accepted: import('./records.ts').UpdateRecord[],
  deps: CohortDependencies,
): Promise<void> {
  const codec = ctx.updateEncoding.codec;
  // The cohort's aggregate: the sample-weighted mean of its members' deltas (verify/cohort.ts, cohortAggregate).
  const mean = cohortAggregate({
    spec: ctx.spec,
    like: ctx.strategy!.weights(),
    round: r,
    fit: proposalFit(p),
    codec,
    maxValues: ctx.maxValues!,
    updates: accepted,
  });
  if (mean.refused.length > 0)
    throw new CoordinatorError(
      'E_COHORT_REFUSED',
      `an accepted update does not fold in: ${mean.refused[0]!.code} ${mean.refused[0]!.message}`,
    );
  const { aggregate, stateBefore, stateAfter } = mean;
  const leaves = accepted.map((u) => ({ account: u.account, updateHash: u.updateHash }));
  const tree = updatesTree(leaves);
  const members: CohortMember[] = publishedRecords(accepted);
  const payload = encodeCohortPayload(
    { root: tree.root, codec, members, source: deps.round.publicUrl() },
    aggregate,
  );
  // The sub's own round, published like any: anyone can repeat the cohort's aggregate from its members' updates.
  await publishRound(deps.store, {
    network: deps.network,
    coordinator: deps.me,
    proposal: p.id,
    round: r,
    base: baseId,
    codec,
    stateBefore,
    stateAfter,
    updates: accepted,
  });
  const samples = accepted.reduce((n, u) => n + u.samples, 0);
  const trainLoss = accepted.reduce((s, u) => s + u.trainLoss * u.samples, 0) / samples;
  await deps.parent.connection.upload({
    taskId: task.taskId,
    proposal: p.id,
    round: r,
    base: baseId,
    codec: COHORT_CODEC,
    payload,
    samples,
    shards: task.shards,
    trainLoss,
    deadlineMs: Number(task.deadlineMs),
  });
  deps.logger.info(
    { proposal: p.id, round: r, members: members.length, samples, cohortRoot: tree.root },
    'cohort update acknowledged by the parent',
  );
  const result = await deps.parent.result(p.id, r, deps.signal);
  const payloadSha256 = sha256(payload);
  for (const u of accepted) {
    const proof = tree.proof(u.account)!;
    deps.sendResult(u.account, {
      kind: 'roundResult',
      roundResult: {
        proposal: p.id,
        round: r,
        checkpointId: result.checkpointId,
        updatesRoot: result.updatesRoot,
        blockHash: result.blockHash,
        proof: proof.siblings.map((s) => fromHex(s)),
        leafIndex: proof.leafIndex,
        leafCount: leaves.length,
        cohort: {
          account: deps.me,
          samples,
          payloadSha256,
          root: fromHex(tree.root),
          proof: result.proof,
          leafIndex: result.leafIndex,
          leafCount: result.leafCount,
        },
      },
    });
  }
  deps.emit({
    type: 'cohortSubmitted',
    proposal: p.id,
    round: r,
    members: members.length,
    samples,
    checkpointId: result.checkpointId,
    blockHash: result.blockHash,
  });
}

function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest());
}
