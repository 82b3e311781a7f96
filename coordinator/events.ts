// What the engine reports as it goes (the CLI's progress lines, the demo, tests), named after the protocol's calls.
import type { Logger } from 'pino';
export type CoordinatorEvent =
  | { type: 'openRound'; proposal: number; blockNumber: number }
  | {
      type: 'roundStarted';
      proposal: number;
      round: number;
      attempt: number;
      base: string;
      deadlineMs: number;
      tasks: number;
      resumed: boolean;
    }
  | { type: 'taskSent'; proposal: number; round: number; account: string; shards: number[] }
  | { type: 'taskHandedOn'; proposal: number; round: number; from: string; reason: string }
  | {
      type: 'updateAccepted';
      proposal: number;
      round: number;
      account: string;
      samples: number;
      bytes: number;
    }
  | {
      type: 'updateRejected';
      proposal: number;
      round: number;
      account: string;
      code: string;
      message: string;
    }
  | { type: 'roundRetried'; proposal: number; round: number; attempt: number; accepted: number }
  | {
      type: 'roundClosed';
      proposal: number;
      round: number;
      accepted: number;
      checkpointId: string;
      evalLoss: number;
      baseEvalLoss: number | null;
      /** Classifiers: held-out accuracy of the round's checkpoint, and of round 0's base (null in later rounds). */
      accuracy?: number | null;
      baseAccuracy?: number | null;
      aggregationMs: number;
    }
  | {
      type: 'finalizeRound';
      proposal: number;
      round: number;
      checkpointId: string;
      blockHash: string;
      blockNumber: number;
      evalLoss: number;
      rewards: { account: string; amount: string }[];
    }
  | { type: 'failRound'; proposal: number; reason: string }
  /** A sub-coordinator's cohort update was acknowledged and the parent's round is final: receipts went out. */
  | {
      type: 'cohortSubmitted';
      proposal: number;
      round: number;
      members: number;
      samples: number;
      checkpointId: string;
      blockHash: string;
    };

/** Calls the embedder's event handler; one that throws is logged, never allowed to break a round. */
export function eventEmitter(
  onEvent: ((event: CoordinatorEvent) => void) | undefined,
  logger: Logger,
): (event: CoordinatorEvent) => void {
  return (event) => {
    try {
      onEvent?.(event);
    } catch (error) {
      logger.warn({ err: error }, 'event handler failed');
    }
  };
}
