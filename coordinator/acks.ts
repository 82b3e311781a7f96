// The updates this coordinator has journaled, by worker and task: a worker whose acknowledgement was lost (the
// coordinator died, or the round closed, before it arrived) asks again and gets its receipt, not a refusal.
import type { ExpectedUpload } from './server.ts';

export interface AckEntry extends ExpectedUpload {
  payloadSha256: Uint8Array;
  updateHash: Uint8Array;
}

/** The most entries kept: older ones are forgotten first (their rounds are long committed). */
const MAX_ENTRIES = 100_000;

export class AckBook {
  private readonly entries = new Map<string, AckEntry>();

  record(account: string, taskId: string, entry: AckEntry): void {
    const key = `${account}|${taskId}`;
    this.entries.delete(key);
    this.entries.set(key, entry);
    if (this.entries.size > MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
  }

  get(account: string, taskId: string): AckEntry | undefined {
    return this.entries.get(`${account}|${taskId}`);
  }

  /** The receipt of exactly this payload, if it was journaled. */
  receipt(account: string, taskId: string, payloadSha256: Uint8Array): Uint8Array | null {
    const got = this.get(account, taskId);
    return got && Buffer.from(got.payloadSha256).equals(Buffer.from(payloadSha256)) ? got.updateHash : null;
  }
}
