// What happens at the end of every block: proposals whose voting closed are decided (and membership changes applied),
// and approved proposals or open rounds past their expiry fail, so one stuck proposal cannot hold up the rest.
// The rules and their constants are listed in docs/protocol.md, "Expiry and limits".
import type { Draft } from './draft.ts';
import type { NetworkState, RoundProposal } from './state.ts';
import type { Hex32 } from './types.ts';

/** An approved round proposal that no coordinator opens within this many blocks of its approval fails. */
export const OPEN_EXPIRY_BLOCKS = 600;
/**
 * An open round with no finalizeRound for ROUND_EXPIRY_BLOCKS_PER_SECOND × roundDeadline + ROUND_EXPIRY_SLACK_BLOCKS
 * blocks (counted from the opening or the last finalized round) fails: at 6 s blocks, a third of a block per second
 * of deadline would be exactly on time; two per second leaves six times the deadline, plus slack for a slow commit.
 */
export const ROUND_EXPIRY_BLOCKS_PER_SECOND = 2;
export const ROUND_EXPIRY_SLACK_BLOCKS = 100;

/** The last block in which an open round's next finalizeRound still counts. */
export function roundExpiresAfter(p: RoundProposal): number {
  const since = p.finalized.at(-1)?.block ?? p.openedAt ?? p.decidedAt ?? p.proposedAt;
  return since + ROUND_EXPIRY_BLOCKS_PER_SECOND * p.round.roundDeadline + ROUND_EXPIRY_SLACK_BLOCKS;
}

/** The last block in which an approved round proposal can still be opened. */
export function openExpiresAfter(p: RoundProposal): number {
  return (p.decidedAt ?? p.deadline) + OPEN_EXPIRY_BLOCKS;
}

/** Decides every proposal whose deadline is at or before `block`, in id order; then expires what is overdue. */
export function endBlock(draft: Draft, block: number): void {
  closeProposals(draft, block);
  expireProposals(draft, block);
}

function closeProposals(draft: Draft, block: number): void {
  for (const id of Object.keys(draft.state.networks) as Hex32[]) {
    const voting = draft.state.networks[id]!.voting;
    if (
      voting.length === 0 ||
      !voting.some((pid) => draft.state.networks[id]!.proposals[pid]!.deadline <= block)
    ) {
      continue;
    }
    const net = draft.network(id);
    const still: number[] = [];
    for (const pid of net.voting) {
      if (net.proposals[pid]!.deadline > block) {
        still.push(pid);
        continue;
      }
      const p = draft.proposal(net, pid);
      p.decidedAt = block;
      p.status = p.ayes >= p.ayesNeeded ? 'approved' : 'rejected';
      if (p.status === 'approved' && p.type === 'membership') {
        const { action, account } = p.membership;
        const isMember = net.members.includes(account);
        const isCoordinator = net.coordinators.includes(account);
        if (action === 'Add' && !isMember) {
          net.members.push(account);
          p.applied = true;
        } else if (action === 'Remove' && isMember && net.members.length > 1) {
          net.members = net.members.filter((m) => m !== account);
          p.applied = true;
        } else if (action === 'AddCoordinator' && !isCoordinator) {
          net.coordinators.push(account);
          p.applied = true;
        } else if (action === 'RemoveCoordinator' && isCoordinator && net.coordinators.length > 1) {
          net.coordinators = net.coordinators.filter((c) => c !== account);
          p.applied = true;
          failRoundsOf(
            draft,
            net,
            account,
            block,
            `E_COORDINATOR_REMOVED: ${account} was removed by the members`,
          );
        }
      }
    }
    net.voting = still;
  }
}

/** A removed (or barred) coordinator's open rounds fail at once, so another coordinator can take the next proposal. */
export function failRoundsOf(
  draft: Draft,
  net: NetworkState,
  coordinator: string,
  block: number,
  reason: string,
): void {
  for (const p of net.proposals) {
    if (p.type !== 'round' || p.status !== 'open' || p.coordinator !== coordinator) continue;
    const copy = draft.proposal(net, p.id) as RoundProposal;
    copy.status = 'failed';
    copy.failure = { reason, block, by: '' };
  }
}

function expireProposals(draft: Draft, block: number): void {
  for (const id of Object.keys(draft.state.networks) as Hex32[]) {
    const overdue = draft.state.networks[id]!.proposals.filter(
      (p) =>
        p.type === 'round' &&
        ((p.status === 'approved' && block > openExpiresAfter(p)) ||
          (p.status === 'open' && block > roundExpiresAfter(p))),
    );
    if (overdue.length === 0) continue;
    const net = draft.network(id);
    for (const p of overdue) {
      const copy = draft.proposal(net, p.id) as RoundProposal;
      const reason =
        copy.status === 'approved'
          ? `E_EXPIRED: approved at block ${copy.decidedAt} and not opened within ${OPEN_EXPIRY_BLOCKS} blocks`
          : `E_EXPIRED: no finalizeRound by block ${roundExpiresAfter(copy)} (round ${copy.finalized.length})`;
      copy.status = 'failed';
      copy.failure = { reason, block, by: '' };
    }
  }
}
