// Running an open proposal: each round from its base through tasks and updates to close and commit, rebuilt from the
// journal after a restart or a failed step; receipts go to the contributors once the round is final on chain.
import type { CheckpointStore } from '../checkpoints/index.ts';
import { fromHex, updatesTree, type NetworkState, type RoundProposal } from '../pallet-bindings/index.ts';
import type { FrameInput } from '../proto/index.ts';
import { noiseSeed, proposalFit, proposalStrategy } from '../verify/index.ts';
import { checkUpdate } from './accept.ts';
import { COHORT_CODEC, decodeCohortPayload, isCohortPayload } from './cohort-payload.ts';
import { noteCohort } from './parent.ts';
import { baseModel, resetContext } from './base.ts';
import { closeRound, evaluateHeldOut } from './close.ts';
import { commitRound, failProposal, type ChainDependencies } from './commit.ts';
import { CoordinatorError, codeOf } from './errors.ts';
import type { CoordinatorEvent } from './events.ts';
import type { AckBook } from './acks.ts';
import type { ChainView } from './follow.ts';
import type { Metrics } from './metrics.ts';
import { PROPOSAL_FAULTS, type ProposalContext } from './prepare.ts';
import { pruneUpdates, type KeepUpdates } from './publish.ts';
import { roundKey, type ClosedRecord, type RoundLog } from './records.ts';
import {
  allAnswered,
  endRound,
  newLiveRound,
  retry,
  startTasks,
  sendTask,
  candidates,
  type LiveRound,
  type RoundDependencies,
} from './round.ts';

export interface ProposalRunDependencies extends ChainDependencies {
  me: string;
  store: CheckpointStore;
  log: RoundLog;
  acks: AckBook;
  metrics: Metrics;
  round: RoundDependencies;
  maxRetries: number;
  evalExamples?: number;
  keepUpdates: KeepUpdates;
  downloadDir: string;
  net(): NetworkState | undefined;
  emit(event: CoordinatorEvent): void;
  setLive(live: { round: LiveRound; ctx: ProposalContext } | null): void;
  sendResult(account: string, frame: FrameInput): boolean;
}

const proposalIn = (deps: ProposalRunDependencies, id: number) =>
  deps.net()?.proposals[id] as RoundProposal | undefined;

/** Runs the proposal's rounds until it is completed, failed, no longer ours, or the coordinator stops. */
export async function runProposal(
  ctx: ProposalContext,
  deps: ProposalRunDependencies,
  view: ChainView,
): Promise<void> {
  for (;;) {
    const p = proposalIn(deps, ctx.id);
    if (!p || p.status !== 'open' || p.coordinator !== deps.me || deps.signal.aborted) return;
    ctx.proposal = p;
    const r = p.finalized.length;
    const pending = deps.log.closed.get(roundKey(ctx.id, r));
    if (pending && !deps.log.committed.has(roundKey(ctx.id, r))) {
      if (!(await commit(ctx, pending, deps))) return;
      await view.refresh();
      continue;
    }
    let outcome: 'committed' | 'failed' | 'stopped';
    try {
      outcome = await runRound(ctx, r, deps);
    } catch (error) {
      // Start the round over from the journal: the base again, a fresh strategy, every journaled update.
      resetContext(ctx);
      throw error;
    }
    if (outcome !== 'committed') return;
    await view.refresh();
  }
}

async function runRound(
  ctx: ProposalContext,
  r: number,
  deps: ProposalRunDependencies,
): Promise<'committed' | 'failed' | 'stopped'> {
  const p = ctx.proposal;
  const k = roundKey(p.id, r);
  let base: Awaited<ReturnType<typeof baseModel>>;
  try {
    base = await baseModel(ctx, r, {
      store: deps.store,
      network: deps.network,
      net: deps.net,
      downloadDir: deps.downloadDir,
      logger: deps.logger,
    });
  } catch (error) {
    // A base the proposal's config cannot start from (E_MODEL_MISMATCH) is the proposal's own fault: failed at once.
    if (!PROPOSAL_FAULTS.has(codeOf(error))) throw error;
    return (await fail(ctx, error as Error, deps)) ? 'failed' : 'stopped';
  }
  const baseBytes = (await deps.store.getManifest(base.id))!.size;
  ctx.noiseSeed = noiseSeed(deps.network, p.id, p.openedAt ?? 0);
  if (!ctx.strategy) {
    try {
      const made = proposalStrategy(ctx.spec, base.model, { noiseSeed: ctx.noiseSeed });
      ctx.strategy = made.strategy;
      ctx.maxValues = made.maxValues;
    } catch (error) {
      return (await fail(ctx, error as Error, deps)) ? 'failed' : 'stopped';
    }
    if (r > 0) await restoreState(ctx, base.id, deps);
  }
  ctx.stateBefore = ctx.strategy.exportState();
  const config = ctx.strategy.configureRound(r, proposalFit(p));
  if (r === 0 && ctx.baseEvalLoss === null) {
    const before = await evaluateHeldOut(base.model, ctx.dataset, ctx.manifest, {
      maxExamples: deps.evalExamples,
    });
    ctx.baseEvalLoss = before.loss;
    ctx.baseAccuracy = before.accuracy ?? null;
  }
  const previous = deps.log.rounds.get(k);
  if (previous && previous.base !== base.id)
    throw new CoordinatorError(
      'E_JOURNAL_MISMATCH',
      `journal says round ${k} starts from ${previous.base}, not ${base.id}`,
    );
  const deadlineSpanMs = p.round.roundDeadline * 1000;
  const round = newLiveRound({
    ctx,
    round: r,
    config,
    base: { id: base.id, bytes: baseBytes },
    previous,
    deadlineSpanMs,
    clock: deps.clock,
  });
  for (const rec of deps.log.updates.get(k) ?? []) {
    // A sub-coordinator's journaled cohort update is checked as its dense aggregate (parent.ts).
    const cohort = isCohortPayload(rec.payload);
    const checked = checkUpdate(ctx.strategy, {
      ...rec,
      payload: cohort ? decodeCohortPayload(rec.payload).aggregate : rec.payload,
      codec: cohort ? 'dense' : ctx.updateEncoding.codec,
      maxValues: ctx.maxValues!,
    });
    if (!checked.ok) {
      deps.logger.error(
        { account: rec.account, code: checked.code },
        "a journaled update no longer passes the strategy's checks",
      );
      continue;
    }
    round.accepted.set(rec.account, { ...rec, payload: new Uint8Array(0) });
    if (cohort) noteCohort(round.accepted, rec);
    deps.acks.record(rec.account, rec.taskId, {
      proposal: rec.proposal,
      round: rec.round,
      base: base.id,
      codec: cohort ? COHORT_CODEC : ctx.updateEncoding.codec,
      payloadSha256: rec.payloadSha256,
      updateHash: rec.updateHash,
    });
  }
  deps.setLive({ round, ctx });
  const started = deps.clock.now();
  try {
    const outcome = await collect(ctx, round, previous !== undefined, deadlineSpanMs, deps);
    if (outcome !== 'ready') return outcome;
    endRound(round);
    await Promise.allSettled([...round.writing]);
    // The accepted updates with their payloads, as journaled.
    const accepted = (deps.log.updates.get(k) ?? []).filter(
      (u) => round.accepted.get(u.account)?.taskId === u.taskId,
    );
    const closedRound = await closeRound({
      ctx,
      round: r,
      base: base.id,
      accepted,
      stateBefore: ctx.stateBefore,
      network: deps.network,
      coordinator: deps.me,
      store: deps.store,
      publicUrl: deps.round.publicUrl(),
      evalExamples: deps.evalExamples,
      rewards: { payer: deps.me },
      payable: (transfers) => payable(transfers, deps),
      logger: deps.logger,
    });
    await deps.log.write(closedRound.record);
    const { record, aggregationMs } = closedRound;
    const seconds = (deps.clock.now() - started) / 1000;
    deps.metrics.inc('fedtune_round_seconds_total', 'Wall time spent in rounds', {}, seconds);
    deps.metrics.set('fedtune_last_round_seconds', 'Wall time of the last round, start to close', seconds);
    deps.metrics.inc('fedtune_aggregation_seconds_total', 'Time spent aggregating', {}, aggregationMs / 1000);
    deps.metrics.set(
      'fedtune_last_aggregation_seconds',
      'Aggregation time of the last round',
      aggregationMs / 1000,
    );
    deps.emit({
      type: 'roundClosed',
      proposal: p.id,
      round: r,
      accepted: round.accepted.size,
      checkpointId: record.call.checkpoint.id,
      evalLoss: record.call.metrics.evalLoss,
      baseEvalLoss: r === 0 ? ctx.baseEvalLoss : null,
      ...(ctx.config.kind === 'classifier'
        ? {
            accuracy: record.call.metrics.extra.find((m) => m.name === 'accuracy')?.value ?? null,
            baseAccuracy: r === 0 ? ctx.baseAccuracy : null,
          }
        : {}),
      aggregationMs,
    });
    return (await commit(ctx, record, deps)) ? 'committed' : 'failed';
  } finally {
    endRound(round);
    deps.setLive(null);
  }
}

/** Hands out tasks and waits for updates until the round can close, retrying short rounds; 'ready' to close. */
async function collect(
  ctx: ProposalContext,
  round: LiveRound,
  resumed: boolean,
  deadlineSpanMs: number,
  deps: ProposalRunDependencies,
): Promise<'ready' | 'failed' | 'stopped'> {
  const p = ctx.proposal.round;
  const a = round.assignment;
  if (!resumed) {
    // Wait (within the deadline) until enough registered workers are connected to hand out the tasks.
    while (candidates(round, deps.round).length < p.minWorkers && deps.clock.now() < round.deadlineMs) {
      if (deps.signal.aborted) return 'stopped';
      await round.signal.wait(round.deadlineMs);
    }
    await startTasks(round, ctx, deps.round);
  }
  round.started = true;
  deps.emit({
    type: 'roundStarted',
    proposal: ctx.id,
    round: a.round,
    attempt: a.attempt,
    base: round.base.id,
    deadlineMs: round.deadlineMs,
    tasks: a.tasks.size,
    resumed,
  });
  deps.logger.info(
    { proposal: ctx.id, round: a.round, tasks: a.tasks.size, resumed, accepted: round.accepted.size },
    'round started',
  );
  for (const task of a.tasks.values())
    if (!round.accepted.has(task.account)) sendTask(round, task, ctx, deps.round);
  // A round rebuilt from the journal may already hold every update it needs: look before the first wait.
  round.signal.wake();
  for (;;) {
    // Until an update, a handed-on task, a new worker or the deadline.
    await round.signal.wait(round.deadlineMs);
    if (deps.signal.aborted) return 'stopped';
    const late = deps.clock.now() >= round.deadlineMs;
    const ready = allAnswered(round) || round.accepted.size >= p.maxWorkers || late;
    if (ready && round.accepted.size >= p.minWorkers) return 'ready';
    // Still waiting, or everyone answered with too few accepted: the deadline decides on a retry.
    if (!late) continue;
    if (a.attempt >= deps.maxRetries) {
      endRound(round);
      const error = new CoordinatorError(
        'E_TOO_FEW_UPDATES',
        `round ${a.round}: ${round.accepted.size} accepted update(s), minWorkers is ${p.minWorkers}, after ${a.attempt + 1} attempt(s)`,
      );
      return (await fail(ctx, error, deps)) ? 'failed' : 'stopped';
    }
    await retry(round, ctx, deps.round, deadlineSpanMs);
    deps.emit({
      type: 'roundRetried',
      proposal: ctx.id,
      round: a.round,
      attempt: a.attempt,
      accepted: round.accepted.size,
    });
    deps.logger.warn(
      { proposal: ctx.id, round: a.round, attempt: a.attempt, accepted: round.accepted.size },
      'too few updates; retrying the round',
    );
  }
}

/**
 * A strategy rebuilt for round r > 0 (after a restart) takes up the state the base checkpoint's manifest names, so the
 * round is aggregated as it would have been without the restart. A base without a published state starts fresh.
 */
async function restoreState(ctx: ProposalContext, baseId: string, deps: ProposalRunDependencies) {
  const manifest = await deps.store.getManifest(baseId);
  if (!manifest?.state) return;
  const state = await deps.store.readBlob(manifest.state);
  if (!state) {
    deps.logger.warn(
      { base: baseId, state: manifest.state },
      "the base checkpoint's strategy state is not in the store; starting the strategy fresh",
    );
    return;
  }
  ctx.strategy!.restoreState(state);
}

async function fail(ctx: ProposalContext, error: Error, deps: ProposalRunDependencies): Promise<boolean> {
  const ok = await failProposal(ctx.id, error, deps);
  if (ok) deps.emit({ type: 'failRound', proposal: ctx.id, reason: error.message });
  return ok;
}

/** Rewards below the existential deposit cannot go to an empty account: those transfers are dropped. */
async function payable(transfers: { dest: string; value: string }[], deps: ProposalRunDependencies) {
  const ed = BigInt(deps.chain.api.consts.balances.existentialDeposit.toString());
  const out = [];
  for (const t of transfers) {
    if (BigInt(t.value) < ed) {
      const account = (await deps.chain.api.query.system.account(t.dest)) as unknown as {
        data: { free: { toString(): string } };
      };
      if (BigInt(account.data.free.toString()) === 0n) {
        deps.logger.warn(
          { account: t.dest, value: t.value },
          'reward below the existential deposit of an empty account; skipped',
        );
        continue;
      }
    }
    out.push(t);
  }
  return out;
}

/** Commits the journaled call once, records it, and sends each contributor its receipt; false if the proposal ended. */
async function commit(
  ctx: ProposalContext,
  record: ClosedRecord,
  deps: ProposalRunDependencies,
): Promise<boolean> {
  const t0 = deps.clock.now();
  const outcome = await commitRound(record, deps);
  if (outcome.kind === 'stopped') return false;
  if (outcome.kind === 'stale') {
    deps.logger.warn(
      { proposal: record.proposal, status: outcome.status },
      'proposal no longer open; not committing',
    );
    return false;
  }
  if (outcome.kind === 'refused') {
    await fail(ctx, outcome.error, deps);
    return false;
  }
  const { blockHash, blockNumber } = outcome;
  if (outcome.submitted)
    deps.metrics.set(
      'fedtune_last_commit_seconds',
      'Seconds from round close to on-chain finality',
      (deps.clock.now() - t0) / 1000,
    );
  await deps.log.write({
    t: 'committed',
    proposal: record.proposal,
    round: record.round,
    blockHash,
    blockNumber,
  });
  // What a restart needs of this round is now one small record: its payloads leave the journal (their published copies
  // stay in the store for as long as --keep-updates says).
  await deps.log.compact();
  const pruned = await pruneUpdates(deps.store, record.proposal, record.round, deps.keepUpdates);
  if (pruned > 0)
    deps.logger.info({ proposal: record.proposal, pruned }, "pruned old rounds' update payloads");
  deps.metrics.inc('fedtune_rounds_committed_total', 'Rounds committed on chain');
  deps.emit({
    type: 'finalizeRound',
    proposal: record.proposal,
    round: record.round,
    checkpointId: record.call.checkpoint.id,
    blockHash,
    blockNumber,
    evalLoss: record.call.metrics.evalLoss,
    rewards: record.transfers.map((t) => ({ account: t.dest, amount: t.value })),
  });
  const tree = updatesTree(record.leaves);
  for (const leaf of record.leaves) {
    const proof = tree.proof(leaf.account)!;
    deps.sendResult(leaf.account, {
      kind: 'roundResult',
      roundResult: {
        proposal: record.proposal,
        round: record.round,
        checkpointId: record.call.checkpoint.id,
        updatesRoot: fromHex(tree.root),
        proof: proof.siblings.map((s) => fromHex(s)),
        leafIndex: proof.leafIndex,
        leafCount: record.leaves.length,
        blockHash,
      },
    });
  }
  // The next round starts from this checkpoint: make sure the context holds it.
  if (ctx.current?.id !== record.call.checkpoint.id) resetContext(ctx);
  return true;
}
