// The journal's records and the index a round is rebuilt from (after a restart, or after a step failed in-process).
import type { FinalizeRound } from '../pallet-bindings/index.ts';
import { CoordinatorError } from './errors.ts';
import { openJournal, type Journal } from './journal.ts';

export interface TaskRecord {
  account: string;
  /** `proposal-round-attempt-slot`. */
  taskId: string;
  shards: number[];
}

/** A round attempt began (or was retried, or a task was added or handed on): the tasks outstanding now. */
export interface RoundRecord {
  t: 'round';
  proposal: number;
  round: number;
  attempt: number;
  base: string;
  deadlineMs: number;
  slots: number;
  tasks: TaskRecord[];
}

/** An update that passed every check; written (and fsync'd) before the worker is acknowledged. */
export interface UpdateRecord {
  t: 'update';
  proposal: number;
  round: number;
  account: string;
  taskId: string;
  /** Derived from the task (steps × batch size), never the worker's claim. */
  samples: number;
  shards: number[];
  trainLoss: number;
  payloadSha256: Uint8Array;
  updateHash: Uint8Array;
  /** The worker's signature over the update (proto updateMessage): published with the round so anyone can check it. */
  signature?: Uint8Array;
  payload: Uint8Array;
}

/** The round was aggregated and stored; this exact call is what gets committed (again, after a crash). */
export interface ClosedRecord {
  t: 'closed';
  proposal: number;
  round: number;
  call: Omit<FinalizeRound, 'proposal' | 'round'>;
  transfers: { dest: string; value: string }[];
  leaves: { account: string; updateHash: Uint8Array }[];
}

export interface CommittedRecord {
  t: 'committed';
  proposal: number;
  round: number;
  blockHash: string;
  blockNumber: number;
}

export type JournalRecord = RoundRecord | UpdateRecord | ClosedRecord | CommittedRecord;

export const roundKey = (proposal: number, round: number) => `${proposal}/${round}`;

/** The journal and what it holds per round: the latest round record, its updates, its call, whether it is committed. */
export class RoundLog {
  readonly rounds = new Map<string, RoundRecord>();
  readonly updates = new Map<string, UpdateRecord[]>();
  readonly closed = new Map<string, ClosedRecord>();
  readonly committed = new Set<string>();
  /** The committed records themselves (small): after a compaction they are what says a round must not run again. */
  private readonly commits: CommittedRecord[] = [];

  private constructor(private readonly journal: Journal<JournalRecord>) {
    journal.recovered.forEach((rec) => this.index(rec));
  }

  static async open(path: string): Promise<RoundLog> {
    try {
      return new RoundLog(await openJournal<JournalRecord>(path));
    } catch (error) {
      const code = (error as { code?: string }).code ?? 'unknown';
      throw new CoordinatorError(
        'E_DATA_DIR',
        `cannot open the journal ${path} for appending (${code}): the data directory must be writable and have room`,
        { cause: error },
      );
    }
  }

  get recoveredCount(): number {
    return this.journal.recovered.length;
  }

  get truncatedBytes(): number {
    return this.journal.truncatedBytes;
  }

  /** Appends a record (fsync'd) and indexes it. */
  async write(rec: JournalRecord): Promise<void> {
    await this.journal.append(rec);
    this.index(rec);
  }

  close(): Promise<void> {
    return this.journal.close();
  }

  /**
   * Rewrites the journal as what a restart still needs: every `committed` record, and the round, update and closed
   * records of rounds not yet committed. Payloads of committed rounds leave the disk.
   */
  compact(): Promise<void> {
    const open = [
      ...this.rounds.values(),
      ...[...this.updates.values()].flat(),
      ...this.closed.values(),
    ].filter((rec) => !this.committed.has(roundKey(rec.proposal, rec.round)));
    return this.journal.compact([...this.commits, ...open]);
  }

  private index(rec: JournalRecord): void {
    const k = roundKey(rec.proposal, rec.round);
    if (rec.t === 'round') this.rounds.set(k, rec);
    else if (rec.t === 'update') {
      // Appended in place: copying the list per update made a round of n updates cost O(n²).
      const list = this.updates.get(k);
      if (list) list.push(rec);
      else this.updates.set(k, [rec]);
    } else if (rec.t === 'closed') this.closed.set(k, rec);
    else {
      this.committed.add(k);
      this.commits.push(rec);
      this.closed.delete(k);
      // A committed round is never rebuilt: free its payloads.
      this.updates.delete(k);
      this.rounds.delete(k);
    }
  }
}
