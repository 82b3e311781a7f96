// Commit: the journaled finalizeRound (with its reward transfers) goes on chain once, checked by the reducer before it
// is signed and counted only when the reducer's state shows the round finalized; failRound when a proposal cannot run.
import type { Logger } from 'pino';
import {
  ProtocolRejection,
  submitChecked,
  type ChainClient,
  type Hex32,
  type KeyringPair,
  type ProtocolState,
  type RoundProposal,
  type Transfer,
} from '../pallet-bindings/index.ts';
import { sleep, type Clock } from './clock.ts';
import { codeOf } from './errors.ts';
import type { ClosedRecord } from './records.ts';

export interface ChainDependencies {
  chain: ChainClient;
  signer: KeyringPair;
  network: Hex32;
  /** The protocol state as last followed. */
  state(): ProtocolState;
  /** Follows the chain to at least block `height`. */
  syncTo(height: number): Promise<ProtocolState>;
  clock: Clock;
  /** Aborts when the coordinator stops: back-offs end at once. */
  signal: AbortSignal;
  logger: Logger;
}

/** Errors no retry can mend: the reducer refused the call, or it cannot even be encoded. */
export const isPermanent = (error: unknown): boolean =>
  error instanceof ProtocolRejection || codeOf(error) === 'E_BAD_CALL';

const proposalOf = (deps: ChainDependencies, id: number) =>
  deps.state().networks[deps.network]?.proposals[id] as RoundProposal | undefined;

export type CommitOutcome =
  | { kind: 'committed'; blockHash: string; blockNumber: number; submitted: boolean }
  | { kind: 'refused'; error: Error }
  | { kind: 'stale'; status: string | undefined }
  | { kind: 'stopped' };

/** Puts the round's call on chain (or finds it there already); retries transient failures with back-off. */
export async function commitRound(record: ClosedRecord, deps: ChainDependencies): Promise<CommitOutcome> {
  for (let attempt = 0; ; attempt++) {
    if (deps.signal.aborted) return { kind: 'stopped' };
    try {
      const state = await deps.syncTo(0);
      const p = proposalOf(deps, record.proposal);
      const onChain = p?.finalized[record.round];
      if (onChain) {
        if (onChain.checkpoint.id !== record.call.checkpoint.id)
          deps.logger.error(
            { proposal: record.proposal, round: record.round },
            'a different checkpoint was committed for this round',
          );
        const blockHash = (await deps.chain.api.rpc.chain.getBlockHash(onChain.block)).toHex();
        return { kind: 'committed', blockHash, blockNumber: onChain.block, submitted: false };
      }
      if (!p || p.status !== 'open') return { kind: 'stale', status: p?.status };
      const { inclusion } = await submitChecked(deps.chain, {
        signer: deps.signer,
        network: deps.network,
        calls: [{ type: 'finalizeRound', proposal: record.proposal, round: record.round, ...record.call }],
        transfers: record.transfers as Transfer[],
        state,
        sync: (to) => deps.syncTo(to),
        confirm: (after) => {
          const done = (after.networks[deps.network]?.proposals[record.proposal] as RoundProposal | undefined)
            ?.finalized[record.round];
          return done?.checkpoint.id === record.call.checkpoint.id
            ? null
            : `round ${record.round} is not finalized in the reducer's state`;
        },
      });
      return {
        kind: 'committed',
        blockHash: inclusion.blockHash,
        blockNumber: inclusion.blockNumber,
        submitted: true,
      };
    } catch (error) {
      if (isPermanent(error)) return { kind: 'refused', error: error as Error };
      const waitMs = Math.min(30_000, 1000 * 2 ** attempt);
      deps.logger.warn(
        { code: codeOf(error), attempt, retryInMs: waitMs },
        `committing the round failed: ${(error as Error).message}`,
      );
      await sleep(deps.clock, waitMs, deps.signal);
    }
  }
}

/** Fails a proposal on chain with the reason (its code first); retries transient failures until the coordinator stops. */
export async function failProposal(id: number, error: Error, deps: ChainDependencies): Promise<boolean> {
  const reason = `${codeOf(error) === 'E_INTERNAL' ? 'E_ROUND' : codeOf(error)}: ${error.message}`.slice(
    0,
    500,
  );
  deps.logger.warn({ proposal: id }, `failing proposal: ${reason}`);
  for (let attempt = 0; ; attempt++) {
    if (deps.signal.aborted) return false;
    try {
      await submitChecked(deps.chain, {
        signer: deps.signer,
        network: deps.network,
        calls: [{ type: 'failRound', proposal: id, reason }],
        state: await deps.syncTo(0),
        sync: (to) => deps.syncTo(to),
      });
      return true;
    } catch (e) {
      if (isPermanent(e)) {
        deps.logger.error(
          { proposal: id, code: codeOf(e) },
          `failRound was refused: ${(e as Error).message}`,
        );
        return false;
      }
      const waitMs = Math.min(30_000, 1000 * 2 ** attempt);
      deps.logger.warn(
        { code: codeOf(e), retryInMs: waitMs },
        `submitting failRound failed: ${(e as Error).message}`,
      );
      await sleep(deps.clock, waitMs, deps.signal);
    }
  }
}
