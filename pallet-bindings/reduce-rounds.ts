// The reducer's round calls: a member proposes a round; a coordinator opens it, finalizes each of its rounds (with
// the rewards paid beside the commit) or fails it; a barred coordinator does none of these.
import { openExpiresAfter, roundExpiresAfter } from './decide.ts';
import { fail, type Draft } from './draft.ts';
import { checkRewards } from './rewards.ts';
import { newProposal, putToVote, requireMember, requireRound, type Call } from './reduce-dao.ts';
import type { NetworkState, Proposal, RoundProposal } from './state.ts';
import type { Account } from './types.ts';

/** Barred coordinators may not open, finalize or fail rounds. */
function requireNotBarredCoordinator(net: NetworkState, signer: Account): void {
  const bar = net.barredCoordinators[signer];
  if (bar !== undefined) {
    fail(
      'E_COORDINATOR_BARRED',
      `${signer} was barred as a coordinator by dispute ${bar.dispute} (${bar.code})`,
    );
  }
}

/** The block a round's tasks were handed out after: its proposal's opening for round 0, else the previous round's commit. */
function roundStart(p: RoundProposal): number {
  return p.finalized.at(-1)?.block ?? p.openedAt ?? p.proposedAt;
}

export function proposeRound(
  draft: Draft,
  net: NetworkState,
  call: Call<'proposeRound'>,
  signer: Account,
  block: number,
): void {
  requireMember(net, signer);
  const { type: _type, ...round } = call;
  if (net.datasets[call.dataset] === undefined) fail('E_UNKNOWN_DATASET', `no dataset ${call.dataset}`);
  if (call.kind === 'Finetune') {
    if (call.baseCheckpoint === null) fail('E_BASE_REQUIRED', 'a Finetune round names its base checkpoint');
    if (net.checkpoints[call.baseCheckpoint]?.certified !== true) {
      fail('E_BASE_NOT_CERTIFIED', `base checkpoint ${call.baseCheckpoint} is not certified`);
    }
  } else if (call.baseCheckpoint !== null) {
    fail('E_BAD_PROPOSAL', 'a Pretrain round starts from scratch and takes no base checkpoint');
  }
  if (call.rounds < 1) fail('E_BAD_PROPOSAL', 'rounds must be at least 1');
  if (call.minWorkers < 1 || call.maxWorkers < call.minWorkers) {
    fail('E_BAD_PROPOSAL', `workers ${call.minWorkers}..${call.maxWorkers} is not a range of at least one`);
  }
  const p: Proposal = {
    ...newProposal(net, signer, block),
    type: 'round',
    round,
    coordinator: null,
    coordinatorEndpoint: null,
    openedAt: null,
    finalized: [],
    failure: null,
  };
  putToVote(draft, net, p);
}

export function openRound(
  draft: Draft,
  net: NetworkState,
  call: Call<'openRound'>,
  signer: Account,
  block: number,
): void {
  if (!net.coordinators.includes(signer)) fail('E_NOT_COORDINATOR', `${signer} is not a coordinator`);
  requireNotBarredCoordinator(net, signer);
  const existing = requireRound(net, call.proposal);
  if (existing.status !== 'approved') {
    fail('E_NOT_APPROVED', `proposal ${call.proposal} is ${existing.status}, not approved`);
  }
  if (block > openExpiresAfter(existing)) {
    fail('E_EXPIRED', `proposal ${call.proposal} could be opened until block ${openExpiresAfter(existing)}`);
  }
  const p = draft.proposal(net, call.proposal) as Extract<Proposal, { type: 'round' }>;
  p.status = 'open';
  p.coordinator = signer;
  p.coordinatorEndpoint = call.coordinatorEndpoint;
  p.openedAt = block;
}

/** `transfers`: the ones that ran beside the remark in its batchAll (the rewards). */
export function finalizeRound(
  draft: Draft,
  net: NetworkState,
  call: Call<'finalizeRound'>,
  signer: Account,
  block: number,
  transfers: { account: Account; amount: string }[],
): void {
  requireNotBarredCoordinator(net, signer);
  const existing = requireRound(net, call.proposal);
  if (existing.status !== 'open')
    fail('E_NOT_OPEN', `proposal ${call.proposal} is ${existing.status}, not open`);
  if (existing.coordinator !== signer) {
    fail('E_NOT_ROUND_COORDINATOR', `round ${call.proposal} was opened by ${existing.coordinator}`);
  }
  if (call.round !== existing.finalized.length) {
    fail(
      'E_ROUND_OUT_OF_ORDER',
      `next round of ${call.proposal} is ${existing.finalized.length}, got ${call.round}`,
    );
  }
  if (net.checkpoints[call.checkpoint.id] !== undefined) {
    fail('E_CHECKPOINT_EXISTS', `checkpoint ${call.checkpoint.id} is already committed`);
  }
  if (block > roundExpiresAfter(existing)) {
    fail(
      'E_EXPIRED',
      `round ${call.round} of ${call.proposal} was due by block ${roundExpiresAfter(existing)}`,
    );
  }
  // A worker barred before this round's tasks were handed out cannot have been given one by an honest coordinator.
  const start = roundStart(existing);
  const barred = call.contributors.find((c) => (net.barredWorkers[c.account]?.block ?? Infinity) < start);
  if (barred !== undefined) {
    const bar = net.barredWorkers[barred.account]!;
    fail(
      'E_CONTRIBUTOR_BARRED',
      `contributor ${barred.account} was barred by dispute ${bar.dispute} at block ${bar.block}, before the round started at block ${start}`,
    );
  }
  checkRewards(existing.round.rewardPerRound, call.contributors, transfers);
  const { type: _type, proposal: _proposal, ...fields } = call;
  const p = draft.proposal(net, call.proposal) as Extract<Proposal, { type: 'round' }>;
  p.finalized.push({ ...fields, block, coordinator: signer, rewards: transfers });
  if (p.finalized.length === p.round.rounds) p.status = 'completed';
  net.checkpoints[call.checkpoint.id] = {
    id: call.checkpoint.id,
    proposal: call.proposal,
    round: call.round,
    bytes: call.checkpoint.bytes,
    uri: call.checkpoint.uri,
    block,
    attests: {},
    certified: false,
    certifiedAt: null,
  };
}

export function failRound(
  draft: Draft,
  net: NetworkState,
  call: Call<'failRound'>,
  signer: Account,
  block: number,
): void {
  requireNotBarredCoordinator(net, signer);
  const existing = requireRound(net, call.proposal);
  if (existing.status === 'open') {
    if (existing.coordinator !== signer) {
      fail('E_NOT_ROUND_COORDINATOR', `round ${call.proposal} was opened by ${existing.coordinator}`);
    }
  } else if (existing.status === 'approved') {
    if (!net.coordinators.includes(signer)) fail('E_NOT_COORDINATOR', `${signer} is not a coordinator`);
  } else {
    fail(
      'E_BAD_STATUS',
      `proposal ${call.proposal} is ${existing.status}; only approved or open rounds fail`,
    );
  }
  const p = draft.proposal(net, call.proposal) as Extract<Proposal, { type: 'round' }>;
  p.status = 'failed';
  p.failure = { reason: call.reason, block, by: signer };
}
