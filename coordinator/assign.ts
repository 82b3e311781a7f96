// Task assignment: which connected worker gets which slot (and so which shards), and the task frame it is sent. One
// function hands out slots at a round's start, to late joiners, on a retry, and when a task fails or its worker goes
// silent; every choice is a pure function of the round, so a restarted coordinator makes the same ones.
import { createHash } from 'node:crypto';
import {
  isBarredCoordinator,
  isBarredWorker,
  isCoordinator,
  isWorker,
  type NetworkState,
} from '../pallet-bindings/index.ts';
import { taskFrame, taskSamples, taskSeed } from '../verify/index.ts';
import type { TaskRecord } from './records.ts';

/** The task state of one round attempt. */
export interface Assignment {
  proposal: number;
  round: number;
  attempt: number;
  /** How many slots the round has; slot s trains the shards `slotShards(s, …)`. */
  slots: number;
  shardCount: number;
  /** A sub-coordinator's round: the shards its parent's task gave it; slot shard i stands for shardList[i]. */
  shardList?: number[];
  /** The outstanding or answered task of each account. */
  tasks: Map<string, TaskRecord>;
  /** Accounts whose task failed or who went silent: their slot went to another worker, and they get none again. */
  released: Set<string>;
}

const hashHex = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * The accounts that may get a task: registered workers of the network that no upheld dispute barred (a barred worker
 * gets no further task, docs/verification.md "Disputes and bars"). Order is kept.
 */
export function assignable(net: NetworkState | undefined, accounts: readonly string[]): string[] {
  if (net === undefined) return [];
  // A connected coordinator is a sub-coordinator taking part with its cohort (docs/rounds.md, "Hierarchical rounds").
  return accounts.filter(
    (a) =>
      (isWorker(net, a) && !isBarredWorker(net, a)) ||
      (isCoordinator(net, a) && !isBarredCoordinator(net, a)),
  );
}

/** Candidates in the round's deterministic order (a hash of network, proposal, round and account). */
export function eligibleOrder(
  network: string,
  proposal: number,
  round: number,
  accounts: readonly string[],
): string[] {
  return accounts
    .map((a) => ({ a, h: hashHex(`${network}:${proposal}:${round}:${a}`) }))
    .sort((x, y) => (x.h < y.h ? -1 : x.h > y.h ? 1 : 0))
    .map((x) => x.a);
}

/** The shards of a slot: shard j goes to slot (j + round) mod slots, so shards rotate between rounds. */
export function slotShards(slot: number, slots: number, round: number, shardCount: number): number[] {
  const out: number[] = [];
  for (let j = 0; j < shardCount; j++) if ((j + round) % slots === slot) out.push(j);
  return out;
}

/** Task ids are `proposal-round-attempt-slot`. */
export const slotOf = (task: TaskRecord): number => Number(task.taskId.split('-')[3]);

/** How many slots a round may have: maxWorkers plus the over-selection, no more than there are shards. */
export function slotCap(maxWorkers: number, overselect: number, shardCount: number): number {
  return Math.max(1, Math.min(shardCount, Math.ceil(maxWorkers * (1 + overselect))));
}

/** The slot count at a round's start: every connected candidate up to the cap, with room for late joiners up to minWorkers. */
export function initialSlots(candidates: number, minWorkers: number, cap: number): number {
  return Math.max(1, Math.min(cap, Math.max(candidates, minWorkers)));
}

/**
 * Gives free slots to candidates (in the order given) that hold no task and were not released; returns the new tasks,
 * already recorded in the assignment. A slot is free when no task holds it.
 */
export function assignSlots(a: Assignment, candidates: readonly string[]): TaskRecord[] {
  const used = new Set([...a.tasks.values()].map(slotOf));
  const added: TaskRecord[] = [];
  let slot = 0;
  for (const account of candidates) {
    if (a.tasks.has(account) || a.released.has(account)) continue;
    while (slot < a.slots && used.has(slot)) slot++;
    if (slot >= a.slots) break;
    const task: TaskRecord = {
      account,
      taskId: `${a.proposal}-${a.round}-${a.attempt}-${slot}`,
      shards: slotShards(slot, a.slots, a.round, a.shardCount).map((i) => a.shardList?.[i] ?? i),
    };
    used.add(slot);
    a.tasks.set(account, task);
    added.push(task);
  }
  return added;
}

/** Takes an unanswered task back (it failed, or its worker went silent) so that its slot can go to someone else. */
export function releaseTask(a: Assignment, account: string): TaskRecord | null {
  const task = a.tasks.get(account);
  if (!task) return null;
  a.tasks.delete(account);
  a.released.add(account);
  return task;
}

export { taskFrame, taskSamples, taskSeed };
