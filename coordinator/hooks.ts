// The engine's side of the worker server: who may take part, which upload a worker owes, what happens when an update
// arrives, a task fails, or a worker comes and goes. Each hook reads the live round and hands the work to its module.
import type { Logger } from 'pino';
import { isBarredCoordinator, isWorker, type Hex32 } from '../pallet-bindings/index.ts';
import { acceptUpdate } from './accept.ts';
import { COHORT_CODEC } from './cohort-payload.ts';
import { acceptCohortUpdate, cohortOf, isCohortAccount, noteCohort } from './parent.ts';
import type { CoordinatorEvent } from './events.ts';
import type { ChainView } from './follow.ts';
import type { ProposalContext } from './prepare.ts';
import type { AckBook } from './acks.ts';
import type { RoundLog } from './records.ts';
import { handOn, watchSilent, welcome, type LiveRound, type RoundDependencies } from './round.ts';
import type { RoundEngineHooks, UploadedUpdate } from './server.ts';

export interface HookDependencies {
  network: Hex32;
  /** This coordinator's account. */
  me: string;
  view: ChainView;
  log: RoundLog;
  /** Journaled updates by worker and task, for acknowledgements that were lost. */
  acks: AckBook;
  round: RoundDependencies;
  live(): { round: LiveRound; ctx: ProposalContext } | null;
  emit(event: CoordinatorEvent): void;
  /** A journal write failed: the coordinator stops, so a restart replays only what is durable. */
  stepFailed(error: unknown): void;
  logger: Logger;
}

export function engineHooks(deps: HookDependencies): RoundEngineHooks {
  async function accept(update: UploadedUpdate) {
    const current = deps.live();
    const cohort = isCohortAccount(deps.view.net(), update.account, deps.me);
    const common = {
      assignment: current?.round.assignment ?? null,
      closing: current?.round.closing ?? true,
      accepted: current?.round.accepted ?? new Map(),
      maxWorkers: current?.ctx.proposal.round.maxWorkers ?? 0,
      samples: current?.round.samples ?? 0,
      strategy: current?.ctx.strategy as never,
      codec: current?.ctx.updateEncoding.codec ?? '',
      maxValues: current?.ctx.maxValues ?? 0,
      update,
    };
    const inCohort = current ? cohortOf(current.round.accepted, update.account) : undefined;
    const verdict = cohort
      ? acceptCohortUpdate({
          ...common,
          spec: current?.ctx.spec,
          network: deps.network,
          net: deps.view.net(),
          base: current?.round.base.id ?? '',
        })
      : inCohort !== undefined
        ? {
            ok: false as const,
            code: 'E_DUPLICATE_UPDATE',
            message: `${update.account} already contributes to this round in the cohort of ${inCohort}`,
          }
        : acceptUpdate(common);
    const where = { proposal: update.begin.proposal, round: update.begin.round, account: update.account };
    if (!verdict.ok) {
      // A rejected worker may still send a good update; one that gives up says so with TaskFailed.
      deps.emit({ type: 'updateRejected', ...where, code: verdict.code, message: verdict.message });
      deps.logger.info(
        { account: update.account, code: verdict.code },
        `update rejected: ${verdict.message}`,
      );
      return verdict;
    }
    const { record } = verdict;
    if (cohort) noteCohort(current!.round.accepted, record);
    // The payload is folded in and goes to the journal; memory keeps only what the receipts and the commit need.
    current!.round.accepted.set(update.account, { ...record, payload: new Uint8Array(0) });
    const write = deps.log.write(record);
    current!.round.writing.add(write);
    try {
      await write;
      deps.acks.record(update.account, record.taskId, {
        proposal: record.proposal,
        round: record.round,
        base: current!.round.base.id,
        codec: cohort ? COHORT_CODEC : current!.ctx.updateEncoding.codec,
        payloadSha256: record.payloadSha256,
        updateHash: record.updateHash,
      });
    } catch (error) {
      if ((error as { code?: string }).code === 'E_DISK_FULL') {
        // Not recorded, so not accepted: the worker is told, and sends it again once there is room.
        if (current!.round.accepted.get(update.account)?.taskId === record.taskId)
          current!.round.accepted.delete(update.account);
        deps.logger.warn({ account: update.account, code: 'E_DISK_FULL' }, (error as Error).message);
        return { ok: false as const, code: 'E_DISK_FULL', message: (error as Error).message };
      }
      deps.stepFailed(error);
      throw error;
    } finally {
      current!.round.writing.delete(write);
    }
    deps.emit({ type: 'updateAccepted', ...where, samples: record.samples, bytes: update.payload.length });
    current!.round.signal.wake();
    return { ok: true as const, updateHash: record.updateHash };
  }

  return {
    async admit(account) {
      // A sub-coordinator takes part with its cohort: one of the network's coordinators, not barred (parent.ts).
      if (isCohortAccount(deps.view.net(), account, deps.me)) {
        if (!isBarredCoordinator(deps.view.net()!, account)) return { ok: true };
        return { ok: false, code: 'E_COORDINATOR_BARRED', message: `${account} was barred as a coordinator` };
      }
      const registered = () => deps.view.net() !== undefined && isWorker(deps.view.net()!, account);
      if (!registered()) await deps.view.refresh();
      const bar = deps.view.net()?.barredWorkers[account];
      if (bar !== undefined)
        return {
          ok: false,
          code: 'E_WORKER_BARRED',
          message: `${account} was barred from network ${deps.network} by dispute ${bar.dispute} (${bar.code}, block ${bar.block}): it gets no further task`,
        };
      if (registered()) return { ok: true };
      return {
        ok: false,
        code: 'E_NOT_REGISTERED',
        message: `${account} is not registered as a worker of network ${deps.network}: run \`fedtune worker register\``,
      };
    },
    expectedUpload(account, taskId) {
      const live = deps.live();
      const task = live?.round.assignment.tasks.get(account);
      if (!live || !task || task.taskId !== taskId) {
        // Not a task of the live round: an update already journaled may still be asked for its receipt.
        const acked = deps.acks.get(account, taskId);
        if (acked)
          return { proposal: acked.proposal, round: acked.round, base: acked.base, codec: acked.codec };
        // A task of a round the journal holds but the engine has not rebuilt yet (just restarted): ask again shortly.
        const pending = [...deps.log.rounds.values()].some((r) =>
          r.tasks.some((t) => t.account === account && t.taskId === taskId),
        );
        return pending ? 'busy' : null;
      }
      const a = live.round.assignment;
      return {
        proposal: a.proposal,
        round: a.round,
        base: live.round.base.id,
        codec: isCohortAccount(deps.view.net(), account, deps.me)
          ? COHORT_CODEC
          : live.ctx.updateEncoding.codec,
      };
    },
    receiptFor: (account, taskId, payloadSha256) => deps.acks.receipt(account, taskId, payloadSha256),
    acceptUpdate: (update) => accept(update),
    taskFailed(account, failure) {
      const current = deps.live();
      if (!current || current.round.assignment.tasks.get(account)?.taskId !== failure.taskId) return;
      deps.logger.warn({ account, code: failure.code }, `worker failed its task: ${failure.message}`);
      deps.emit({
        type: 'taskHandedOn',
        proposal: current.ctx.id,
        round: current.round.assignment.round,
        from: account,
        reason: failure.code,
      });
      void handOn(current.round, account, current.ctx, deps.round).catch(deps.stepFailed);
    },
    connected(account) {
      const live = deps.live();
      if (live) void welcome(live.round, account, live.ctx, deps.round).catch(deps.stepFailed);
    },
    disconnected(account) {
      const live = deps.live();
      if (live) watchSilent(live.round, account, live.ctx, deps.round);
    },
  };
}
