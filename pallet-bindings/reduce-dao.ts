// The reducer's DAO calls: creating a network, registering datasets and workers, proposing membership changes and
// voting on proposals; and the checks every call family shares (membership, a known proposal, the quorum).
import { fail, type Draft } from './draft.ts';
import type { NetworkState, Proposal, RoundProposal } from './state.ts';
import type { Account, FedtuneCall, Hex32, Quorum } from './types.ts';

/** The protocol call of one type. */
export type Call<T extends FedtuneCall['type']> = Extract<FedtuneCall, { type: T }>;

/** Ayes needed for `quorum` of `members`: the least n with n * denominator >= numerator * members. */
export function ayesNeeded(quorum: Quorum, members: number): number {
  return Math.max(1, Math.ceil((quorum.numerator * members) / quorum.denominator));
}

function validQuorum(q: Quorum): boolean {
  return q.denominator > 0 && q.numerator > 0 && q.numerator <= q.denominator;
}

function unique(accounts: Account[]): boolean {
  return new Set(accounts).size === accounts.length;
}

export function requireMember(net: NetworkState, signer: Account): void {
  if (!net.members.includes(signer)) fail('E_NOT_MEMBER', `${signer} is not a member of ${net.name}`);
}

export function requireProposal(net: NetworkState, id: number): Proposal {
  const p = net.proposals[id];
  if (p === undefined) fail('E_UNKNOWN_PROPOSAL', `no proposal ${id} in ${net.name}`);
  return p;
}

/** Proposal `id`, which must be a round proposal. */
export function requireRound(net: NetworkState, id: number): RoundProposal {
  const p = requireProposal(net, id);
  if (p.type !== 'round') fail('E_NOT_ROUND', `proposal ${id} is a membership change`);
  return p;
}

export function newProposal(net: NetworkState, signer: Account, block: number) {
  return {
    id: net.proposals.length,
    proposer: signer,
    proposedAt: block,
    deadline: block + net.votingPeriod,
    electorate: net.members.slice(),
    ayesNeeded: ayesNeeded(net.quorum, net.members.length),
    votes: {},
    ayes: 0,
    nays: 0,
    status: 'voting' as const,
    decidedAt: null,
  };
}

/** Adds a new proposal and puts it to the vote. */
export function putToVote(draft: Draft, net: NetworkState, p: Proposal): void {
  draft.addProposal(net, p);
  net.voting.push(p.id);
}

export function createNetwork(
  draft: Draft,
  id: Hex32,
  call: Call<'createNetwork'>,
  signer: Account,
  block: number,
): void {
  if (call.name.trim() === '') fail('E_BAD_NETWORK', 'the network needs a name');
  if (call.members.length === 0) fail('E_BAD_NETWORK', 'the network needs at least one member');
  if (!unique(call.members)) fail('E_BAD_NETWORK', 'members are listed twice');
  if (call.coordinators.length === 0) fail('E_BAD_NETWORK', 'the network needs at least one coordinator');
  if (!validQuorum(call.quorum)) {
    fail('E_BAD_NETWORK', `quorum ${call.quorum.numerator}/${call.quorum.denominator} is not in (0, 1]`);
  }
  if (call.votingPeriod < 1) fail('E_BAD_NETWORK', 'the voting period must be at least one block');
  draft.addNetwork({
    id,
    name: call.name,
    founder: signer,
    createdAt: block,
    members: call.members.slice(),
    coordinators: [...new Set(call.coordinators)],
    quorum: { ...call.quorum },
    votingPeriod: call.votingPeriod,
    datasets: {},
    workers: {},
    proposals: [],
    voting: [],
    checkpoints: {},
    disputes: [],
    barredWorkers: {},
    barredCoordinators: {},
  });
}

export function registerDataset(
  net: NetworkState,
  call: Call<'registerDataset'>,
  signer: Account,
  block: number,
): void {
  const { type: _type, ...fields } = call;
  if (net.datasets[call.root] !== undefined) fail('E_DATASET_EXISTS', `dataset ${call.root} is registered`);
  if (call.name.trim() === '') fail('E_BAD_DATASET', 'the dataset needs a name');
  if (call.shards < 1 || call.records < 1)
    fail('E_BAD_DATASET', 'a dataset has at least one record and one shard');
  net.datasets[call.root] = { ...fields, owner: signer, block };
}

export function registerWorker(
  net: NetworkState,
  call: Call<'registerWorker'>,
  signer: Account,
  block: number,
): void {
  net.workers[signer] = {
    account: signer,
    capabilities: { ...call.capabilities },
    endpoint: call.endpoint,
    block,
  };
}

export function deregisterWorker(net: NetworkState, signer: Account): void {
  if (net.workers[signer] === undefined) fail('E_NOT_REGISTERED', `${signer} is not a registered worker`);
  delete net.workers[signer];
}

export function proposeMembership(
  draft: Draft,
  net: NetworkState,
  call: Call<'proposeMembership'>,
  signer: Account,
  block: number,
): void {
  requireMember(net, signer);
  const isMember = net.members.includes(call.account);
  if (call.action === 'Add' && isMember) fail('E_ALREADY_MEMBER', `${call.account} is already a member`);
  if (call.action === 'Remove' && !isMember) fail('E_MEMBER_UNKNOWN', `${call.account} is not a member`);
  if (call.action === 'Remove' && net.members.length === 1)
    fail('E_LAST_MEMBER', 'the last member cannot leave');
  const isCoordinator = net.coordinators.includes(call.account);
  if (call.action === 'AddCoordinator' && isCoordinator)
    fail('E_ALREADY_COORDINATOR', `${call.account} is already a coordinator`);
  if (call.action === 'RemoveCoordinator' && !isCoordinator)
    fail('E_COORDINATOR_UNKNOWN', `${call.account} is not a coordinator`);
  if (call.action === 'RemoveCoordinator' && net.coordinators.length === 1)
    fail('E_LAST_COORDINATOR', 'the last coordinator cannot be removed; add another first');
  const p: Proposal = {
    ...newProposal(net, signer, block),
    type: 'membership',
    membership: { action: call.action, account: call.account },
    applied: false,
  };
  putToVote(draft, net, p);
}

export function vote(
  draft: Draft,
  net: NetworkState,
  call: Call<'vote'>,
  signer: Account,
  block: number,
): void {
  const existing = requireProposal(net, call.proposal);
  if (existing.status !== 'voting' || block > existing.deadline) {
    fail('E_VOTING_CLOSED', `voting on proposal ${call.proposal} closed at block ${existing.deadline}`);
  }
  if (!existing.electorate.includes(signer)) {
    fail('E_NOT_MEMBER', `${signer} was not a member when proposal ${call.proposal} was made`);
  }
  if (existing.votes[signer] !== undefined)
    fail('E_DOUBLE_VOTE', `${signer} already voted on ${call.proposal}`);
  const p = draft.proposal(net, call.proposal);
  p.votes[signer] = call.aye;
  if (call.aye) p.ayes += 1;
  else p.nays += 1;
}
