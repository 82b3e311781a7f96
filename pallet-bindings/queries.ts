// Questions other folders ask of the derived state: the coordinator's rounds, the consumer's certified checkpoints, roles.
import { PalletError } from './errors.ts';
import type { CheckpointRecord, NetworkState, ProtocolState, RoundProposal } from './state.ts';
import type { Account, Hex32 } from './types.ts';

/** The network, or E_UNKNOWN_NETWORK. */
export function getNetwork(state: ProtocolState, id: Hex32): NetworkState {
  const net = state.networks[id];
  if (net === undefined) {
    throw new PalletError('E_UNKNOWN_NETWORK', `no network ${id} in the state at block ${state.height}`);
  }
  return net;
}

export function roundProposals(net: NetworkState): RoundProposal[] {
  return net.proposals.filter((p): p is RoundProposal => p.type === 'round');
}

/** Approved rounds nobody opened yet: what a coordinator may `openRound`. */
export function approvedRounds(net: NetworkState): RoundProposal[] {
  return roundProposals(net).filter((p) => p.status === 'approved');
}

/** Rounds open under `coordinator` (all open rounds when omitted). */
export function openRounds(net: NetworkState, coordinator?: Account): RoundProposal[] {
  return roundProposals(net).filter(
    (p) => p.status === 'open' && (coordinator === undefined || p.coordinator === coordinator),
  );
}

/** A round proposal by id, or E_UNKNOWN_PROPOSAL / E_NOT_ROUND. */
export function getRound(net: NetworkState, id: number): RoundProposal {
  const p = net.proposals[id];
  if (p === undefined) throw new PalletError('E_UNKNOWN_PROPOSAL', `no proposal ${id} in ${net.name}`);
  if (p.type !== 'round') throw new PalletError('E_NOT_ROUND', `proposal ${id} is a membership change`);
  return p;
}

export function certifiedCheckpoints(net: NetworkState): CheckpointRecord[] {
  return Object.values(net.checkpoints).filter((c) => c.certified);
}

export function isMember(net: NetworkState, account: Account): boolean {
  return net.members.includes(account);
}

export function isCoordinator(net: NetworkState, account: Account): boolean {
  return net.coordinators.includes(account);
}

export function isWorker(net: NetworkState, account: Account): boolean {
  return net.workers[account] !== undefined;
}

/** An upheld dispute barred this worker: it gets no further task of the network. */
export function isBarredWorker(net: NetworkState, account: Account): boolean {
  return net.barredWorkers[account] !== undefined;
}

/** An upheld dispute barred this coordinator: it may not open, finalize or fail rounds. */
export function isBarredCoordinator(net: NetworkState, account: Account): boolean {
  return net.barredCoordinators[account] !== undefined;
}
