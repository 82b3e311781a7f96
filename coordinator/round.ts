// One round attempt's life between its start and its close: hand out tasks, take updates, hand a failed or silent
// worker's slot to an idle one, retry with a new deadline while short of minWorkers. Waits are event-driven.
import type { RoundConfig } from '../aggregation/index.ts';
import type { NetworkState } from '../pallet-bindings/index.ts';
import type { FrameInput } from '../proto/index.ts';
import {
  assignable,
  assignSlots,
  eligibleOrder,
  initialSlots,
  releaseTask,
  slotCap,
  taskFrame,
  taskSamples,
  type Assignment,
} from './assign.ts';
import { Signal, type Clock } from './clock.ts';
import type { ProposalContext } from './prepare.ts';
import type { RoundRecord, TaskRecord, UpdateRecord } from './records.ts';

export interface LiveRound {
  assignment: Assignment;
  base: { id: string; bytes: number };
  deadlineMs: number;
  config: RoundConfig;
  /** The samples every task stands for (derived, never claimed). */
  samples: number;
  /** Accepted updates, without their payloads (folded in and journaled). */
  accepted: Map<string, UpdateRecord>;
  /** Journal writes of accepted updates still in flight: the round is aggregated only once they have landed. */
  writing: Set<Promise<void>>;
  /** Tasks have been handed out (before that, the round waits for workers). */
  started: boolean;
  closing: boolean;
  signal: Signal;
  /** Silent workers' timers, by account. */
  silent: Map<string, () => void>;
}

export interface RoundDependencies {
  network: string;
  clock: Clock;
  net(): NetworkState | undefined;
  connected(): string[];
  send(account: string, frame: FrameInput): boolean;
  /** Journals the round's task state (fsync'd). */
  journal(record: RoundRecord): Promise<void>;
  /** The HTTP base URL workers fetch bases from. */
  publicUrl(): string;
  overselect: number;
  /** How long a worker with an open task may stay disconnected before its slot goes to someone else. */
  silentAfterMs: number;
  onTaskSent(round: LiveRound, task: TaskRecord): void;
}

export function newLiveRound(params: {
  ctx: ProposalContext;
  round: number;
  config: RoundConfig;
  base: { id: string; bytes: number };
  previous: RoundRecord | undefined;
  deadlineSpanMs: number;
  clock: Clock;
}): LiveRound {
  const { ctx, previous, clock } = params;
  return {
    assignment: {
      proposal: ctx.id,
      round: params.round,
      attempt: previous?.attempt ?? 0,
      slots: previous?.slots ?? 0,
      shardCount: ctx.manifest.shards.length,
      tasks: new Map((previous?.tasks ?? []).map((t) => [t.account, t])),
      released: new Set(),
    },
    base: params.base,
    deadlineMs: previous
      ? Math.max(previous.deadlineMs, clock.now() + 15_000)
      : clock.now() + params.deadlineSpanMs,
    config: params.config,
    samples: taskSamples(params.config.fit),
    accepted: new Map(),
    writing: new Set(),
    started: previous !== undefined,
    closing: false,
    signal: new Signal(clock),
    silent: new Map(),
  };
}

export function roundRecord(round: LiveRound): RoundRecord {
  const a = round.assignment;
  return {
    t: 'round',
    proposal: a.proposal,
    round: a.round,
    attempt: a.attempt,
    base: round.base.id,
    deadlineMs: round.deadlineMs,
    slots: a.slots,
    tasks: [...a.tasks.values()],
  };
}

/** Registered workers connected now and not barred, in the round's deterministic order. */
export function candidates(round: LiveRound, deps: RoundDependencies): string[] {
  const a = round.assignment;
  return eligibleOrder(deps.network, a.proposal, a.round, assignable(deps.net(), deps.connected()));
}

export function sendTask(
  round: LiveRound,
  task: TaskRecord,
  ctx: ProposalContext,
  deps: RoundDependencies,
): void {
  const frame = taskFrame({
    task,
    proposal: round.assignment.proposal,
    round: round.assignment.round,
    base: { ...round.base, url: deps.publicUrl() },
    datasetRoot: ctx.proposal.round.dataset,
    modelJson: JSON.stringify(ctx.config),
    fit: round.config.fit,
    updateEncoding: ctx.updateEncoding,
    deadlineMs: round.deadlineMs,
  });
  if (deps.send(task.account, { kind: 'task', task: frame })) deps.onTaskSent(round, task);
}

/** Gives free slots to idle candidates, journals the new tasks, then sends them. */
export async function fillSlots(
  round: LiveRound,
  ctx: ProposalContext,
  deps: RoundDependencies,
): Promise<number> {
  if (!round.started || round.closing) return 0;
  const added = assignSlots(round.assignment, candidates(round, deps));
  if (added.length === 0) return 0;
  await deps.journal(roundRecord(round));
  for (const task of added) sendTask(round, task, ctx, deps);
  return added.length;
}

/** Hands out the first tasks: every connected candidate up to the cap, room for late joiners up to minWorkers. */
export async function startTasks(
  round: LiveRound,
  ctx: ProposalContext,
  deps: RoundDependencies,
): Promise<void> {
  const p = ctx.proposal.round;
  const who = candidates(round, deps);
  const cap = slotCap(p.maxWorkers, deps.overselect, round.assignment.shardCount);
  round.assignment.slots = initialSlots(who.length, p.minWorkers, cap);
  round.started = true;
  assignSlots(round.assignment, who);
  await deps.journal(roundRecord(round));
}

/** A task that failed, or whose worker stayed away: its slot goes to an idle worker if there is one. */
export async function handOn(
  round: LiveRound,
  account: string,
  ctx: ProposalContext,
  deps: RoundDependencies,
): Promise<void> {
  if (round.closing || round.accepted.has(account)) return;
  if (!releaseTask(round.assignment, account)) return;
  await deps.journal(roundRecord(round));
  await fillSlots(round, ctx, deps);
  round.signal.wake();
}

/** A worker dropped: if it does not come back in time, its task is handed on. */
export function watchSilent(
  round: LiveRound,
  account: string,
  ctx: ProposalContext,
  deps: RoundDependencies,
): void {
  if (!round.assignment.tasks.has(account) || round.accepted.has(account) || round.silent.has(account))
    return;
  const cancel = deps.clock.after(deps.silentAfterMs, () => {
    round.silent.delete(account);
    if (!deps.connected().includes(account)) void handOn(round, account, ctx, deps);
  });
  round.silent.set(account, cancel);
}

/** The worker is back: it keeps its task (sent again), or gets a free slot. */
export async function welcome(
  round: LiveRound,
  account: string,
  ctx: ProposalContext,
  deps: RoundDependencies,
): Promise<void> {
  round.silent.get(account)?.();
  round.silent.delete(account);
  if (!round.started) return round.signal.wake();
  if (round.closing || round.accepted.has(account)) return;
  const task = round.assignment.tasks.get(account);
  if (task) sendTask(round, task, ctx, deps);
  else await fillSlots(round, ctx, deps);
}

/** Every outstanding task has its update (failed ones were handed on or dropped). */
export const allAnswered = (round: LiveRound): boolean =>
  [...round.assignment.tasks.keys()].every((a) => round.accepted.has(a));

/** A new attempt with a new deadline: outstanding tasks are sent again, free slots go to idle workers. */
export async function retry(
  round: LiveRound,
  ctx: ProposalContext,
  deps: RoundDependencies,
  deadlineSpanMs: number,
): Promise<void> {
  round.assignment.attempt += 1;
  round.deadlineMs = deps.clock.now() + deadlineSpanMs;
  assignSlots(round.assignment, candidates(round, deps));
  await deps.journal(roundRecord(round));
  for (const task of round.assignment.tasks.values())
    if (!round.accepted.has(task.account)) sendTask(round, task, ctx, deps);
}

export function endRound(round: LiveRound): void {
  round.closing = true;
  for (const cancel of round.silent.values()) cancel();
  round.silent.clear();
}
