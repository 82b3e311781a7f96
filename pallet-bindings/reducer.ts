// The deterministic reducer: (state, finalized block) → state. Pure: it never mutates its input and never throws on chain data.
import {
  decodePayload,
  deriveNetworkId,
  hasMagic,
  isFailureCode,
  MAX_FAILURE_CODE_CHARS,
  PayloadError,
} from './codec.ts';
import { endBlock, failRoundsOf, openExpiresAfter, roundExpiresAfter } from './decide.ts';
import { Draft, RuleBroken, fail } from './draft.ts';
import { checkRewards } from './rewards.ts';
import type {
  CallSite,
  ChainBlock,
  ChainCall,
  DisputeRecord,
  DisputeRole,
  NetworkState,
  Proposal,
  ProtocolState,
  RoundProposal,
} from './state.ts';
import type { Account, FedtuneCall, Hex32, Quorum } from './types.ts';

/** A remark of an extrinsic that ran, with the transfers that ran beside it in its innermost batchAll. */
interface Remark {
  data: Uint8Array;
  position: number;
  transfers: { account: Account; amount: string }[];
}

/** Remarks of one extrinsic in execution order; calls that did not run (or were rolled back) are skipped. */
function remarksOf(call: ChainCall): Remark[] {
  const out: Remark[] = [];
  let position = 0;
  const walk = (node: ChainCall, live: boolean, siblings: Remark['transfers']): void => {
    const runs = live && node.ok;
    if (node.kind === 'remark') {
      if (runs) out.push({ data: node.data, position, transfers: siblings });
      position += 1;
    } else if (node.kind === 'batch') {
      const transfers =
        node.mode === 'batchAll'
          ? node.calls.flatMap((c) =>
              c.kind === 'transfer' && c.ok && runs ? [{ account: c.dest, amount: c.value }] : [],
            )
          : [];
      for (const child of node.calls) walk(child, runs, node.mode === 'batchAll' ? transfers : []);
    }
  };
  walk(call, true, []);
  return out;
}

/** Ayes needed for `quorum` of `members`: the least n with n * denominator >= numerator * members. */
export function ayesNeeded(quorum: Quorum, members: number): number {
  return Math.max(1, Math.ceil((quorum.numerator * members) / quorum.denominator));
}

/**
 * Folds one finalized block into the state. Blocks at or below `state.height` are already in and change nothing.
 * Calls are applied in extrinsic order and, inside batches, in call order; at the end of the block every
 * proposal whose deadline is this block is decided.
 */
export function reduceBlock(state: ProtocolState, block: ChainBlock): ProtocolState {
  if (block.number <= state.height) return state;
  const draft = new Draft(state);
  for (const extrinsic of block.extrinsics) {
    if (!extrinsic.ok || extrinsic.signer === null) continue;
    let remarks: Remark[];
    try {
      remarks = remarksOf(extrinsic.call);
    } catch {
      continue;
    }
    for (const remark of remarks) {
      if (!hasMagic(remark.data)) continue;
      const site: CallSite = {
        block: block.number,
        extrinsic: extrinsic.index,
        call: remark.position,
        signer: extrinsic.signer,
      };
      applyRemark(draft, block, site, extrinsic.signer, remark);
    }
  }
  endBlock(draft, block.number);
  draft.state.height = block.number;
  draft.state.blockHash = block.hash;
  return draft.state;
}

/** Folds blocks in order. */
export function reduceBlocks(state: ProtocolState, blocks: Iterable<ChainBlock>): ProtocolState {
  let s = state;
  for (const block of blocks) s = reduceBlock(s, block);
  return s;
}

function applyRemark(draft: Draft, block: ChainBlock, site: CallSite, signer: Account, remark: Remark): void {
  let network: Hex32 | null;
  let call: FedtuneCall;
  try {
    ({ network, call } = decodePayload(remark.data));
  } catch (error) {
    const code = error instanceof PayloadError ? error.code : 'E_MALFORMED_PAYLOAD';
    draft.ignore({ ...site, code, reason: (error as Error).message });
    return;
  }
  const only = draft.state.only;
  if (call.type === 'createNetwork') {
    const id = deriveNetworkId(block.hash, site.extrinsic, site.call);
    if (only !== null && id !== only) {
      draft.ignore({
        ...site,
        code: 'E_OTHER_NETWORK',
        reason: `creates network ${id}, following ${only} only`,
      });
      return;
    }
    try {
      createNetwork(draft, id, call, signer, block.number);
    } catch (error) {
      recordRule(draft, site, null, call, error);
    }
    return;
  }
  if (only !== null && network !== only) {
    draft.ignore({
      ...site,
      code: 'E_OTHER_NETWORK',
      reason: `addressed to network ${network}, following ${only} only`,
    });
    return;
  }
  if (draft.state.networks[network!] === undefined) {
    draft.ignore({ ...site, code: 'E_UNKNOWN_NETWORK', reason: `no network ${network}` });
    return;
  }
  try {
    applyCall(draft, draft.network(network!), call, signer, block.number, remark);
  } catch (error) {
    recordRule(draft, site, network, call, error);
  }
}

function recordRule(
  draft: Draft,
  site: CallSite,
  network: Hex32 | null,
  call: FedtuneCall,
  error: unknown,
): void {
  const rule =
    error instanceof RuleBroken
      ? error
      : new RuleBroken('E_REDUCER_INTERNAL', `unexpected: ${String(error)}`);
  draft.audit({ ...site, network, callType: call.type, code: rule.code, reason: rule.reason });
}

function validQuorum(q: Quorum): boolean {
  return q.denominator > 0 && q.numerator > 0 && q.numerator <= q.denominator;
}

function unique(accounts: Account[]): boolean {
  return new Set(accounts).size === accounts.length;
}

function createNetwork(
  draft: Draft,
  id: Hex32,
  call: Extract<FedtuneCall, { type: 'createNetwork' }>,
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

function requireMember(net: NetworkState, signer: Account): void {
  if (!net.members.includes(signer)) fail('E_NOT_MEMBER', `${signer} is not a member of ${net.name}`);
}

function requireFailureCode(code: string): void {
  if (!isFailureCode(code as unknown)) {
    fail(
      'E_BAD_CODE',
      `a failure code is 1 to ${MAX_FAILURE_CODE_CHARS} of A-Z, 0-9 and _, starting with a letter; got ${JSON.stringify(String(code).slice(0, 40))}`,
    );
  }
}

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

/** What `accused` was in round `round` of `p`: a contributor, the coordinator that finalized it, or both. */
function rolesIn(p: RoundProposal, round: number, accused: Account): DisputeRole[] {
  const f = p.finalized[round]!;
  const roles: DisputeRole[] = [];
  if (f.contributors.some((c) => c.account === accused)) roles.push('worker');
  if (f.coordinator === accused) roles.push('coordinator');
  return roles;
}

const barsOf = (net: NetworkState, role: DisputeRole) =>
  role === 'worker' ? net.barredWorkers : net.barredCoordinators;

/** Upholds by current members reach the quorum: the dispute is upheld and the accused barred in every role it played. */
function decideDispute(draft: Draft, net: NetworkState, d: DisputeRecord, block: number): void {
  const upholds = Object.keys(d.upholds).filter((a) => net.members.includes(a)).length;
  if (d.status !== 'open' || upholds < ayesNeeded(net.quorum, net.members.length)) return;
  d.status = 'upheld';
  d.upheldAt = block;
  for (const role of d.roles) {
    const bars = barsOf(net, role);
    if (bars[d.accused] !== undefined) continue; // barred already: the first upheld dispute stays the reason
    bars[d.accused] = { dispute: d.id, code: d.code, block };
    if (role === 'coordinator') {
      failRoundsOf(
        draft,
        net,
        d.accused,
        block,
        `E_COORDINATOR_BARRED: ${d.accused} was barred by dispute ${d.id} (${d.code})`,
      );
    }
  }
}

function requireProposal(net: NetworkState, id: number): Proposal {
  const p = net.proposals[id];
  if (p === undefined) fail('E_UNKNOWN_PROPOSAL', `no proposal ${id} in ${net.name}`);
  return p;
}

function newProposal(net: NetworkState, signer: Account, block: number) {
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

function applyCall(
  draft: Draft,
  net: NetworkState,
  call: Exclude<FedtuneCall, { type: 'createNetwork' }>,
  signer: Account,
  block: number,
  remark: Remark,
): void {
  switch (call.type) {
    case 'registerDataset': {
      const { type: _type, ...fields } = call;
      if (net.datasets[call.root] !== undefined)
        fail('E_DATASET_EXISTS', `dataset ${call.root} is registered`);
      if (call.name.trim() === '') fail('E_BAD_DATASET', 'the dataset needs a name');
      if (call.shards < 1 || call.records < 1)
        fail('E_BAD_DATASET', 'a dataset has at least one record and one shard');
      net.datasets[call.root] = { ...fields, owner: signer, block };
      return;
    }
    case 'registerWorker':
      net.workers[signer] = {
        account: signer,
        capabilities: { ...call.capabilities },
        endpoint: call.endpoint,
        block,
      };
      return;
    case 'deregisterWorker':
      if (net.workers[signer] === undefined) fail('E_NOT_REGISTERED', `${signer} is not a registered worker`);
      delete net.workers[signer];
      return;
    case 'proposeRound': {
      requireMember(net, signer);
      const { type: _type, ...round } = call;
      if (net.datasets[call.dataset] === undefined) fail('E_UNKNOWN_DATASET', `no dataset ${call.dataset}`);
      if (call.kind === 'Finetune') {
        if (call.baseCheckpoint === null)
          fail('E_BASE_REQUIRED', 'a Finetune round names its base checkpoint');
        if (net.checkpoints[call.baseCheckpoint]?.certified !== true) {
          fail('E_BASE_NOT_CERTIFIED', `base checkpoint ${call.baseCheckpoint} is not certified`);
        }
      } else if (call.baseCheckpoint !== null) {
        fail('E_BAD_PROPOSAL', 'a Pretrain round starts from scratch and takes no base checkpoint');
      }
      if (call.rounds < 1) fail('E_BAD_PROPOSAL', 'rounds must be at least 1');
      if (call.minWorkers < 1 || call.maxWorkers < call.minWorkers) {
        fail(
          'E_BAD_PROPOSAL',
          `workers ${call.minWorkers}..${call.maxWorkers} is not a range of at least one`,
        );
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
      draft.addProposal(net, p);
      net.voting.push(p.id);
      return;
    }
    case 'proposeMembership': {
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
      draft.addProposal(net, p);
      net.voting.push(p.id);
      return;
    }
    case 'vote': {
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
      return;
    }
    case 'openRound': {
      if (!net.coordinators.includes(signer)) fail('E_NOT_COORDINATOR', `${signer} is not a coordinator`);
      requireNotBarredCoordinator(net, signer);
      const existing = requireProposal(net, call.proposal);
      if (existing.type !== 'round') fail('E_NOT_ROUND', `proposal ${call.proposal} is a membership change`);
      if (existing.status !== 'approved') {
        fail('E_NOT_APPROVED', `proposal ${call.proposal} is ${existing.status}, not approved`);
      }
      if (block > openExpiresAfter(existing)) {
        fail(
          'E_EXPIRED',
          `proposal ${call.proposal} could be opened until block ${openExpiresAfter(existing)}`,
        );
      }
      const p = draft.proposal(net, call.proposal) as Extract<Proposal, { type: 'round' }>;
      p.status = 'open';
      p.coordinator = signer;
      p.coordinatorEndpoint = call.coordinatorEndpoint;
      p.openedAt = block;
      return;
    }
    case 'finalizeRound': {
      requireNotBarredCoordinator(net, signer);
      const existing = requireProposal(net, call.proposal);
      if (existing.type !== 'round') fail('E_NOT_ROUND', `proposal ${call.proposal} is a membership change`);
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
      checkRewards(existing.round.rewardPerRound, call.contributors, remark.transfers);
      const { type: _type, proposal: _proposal, ...fields } = call;
      const p = draft.proposal(net, call.proposal) as Extract<Proposal, { type: 'round' }>;
      p.finalized.push({ ...fields, block, coordinator: signer, rewards: remark.transfers });
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
      return;
    }
    case 'attest': {
      requireMember(net, signer);
      const code = call.code ?? null;
      if (code !== null) requireFailureCode(code);
      const existing = net.checkpoints[call.checkpoint];
      if (existing === undefined) fail('E_UNKNOWN_CHECKPOINT', `no checkpoint ${call.checkpoint}`);
      if (existing.attests[signer] !== undefined) {
        fail('E_DOUBLE_ATTEST', `${signer} already attested ${call.checkpoint}`);
      }
      const c = draft.checkpoint(net, call.checkpoint);
      c.attests[signer] = { evalLoss: call.evalLoss, verdict: call.verdict, code, block };
      const positive = Object.entries(c.attests).filter(
        ([a, x]) => x.verdict && net.members.includes(a),
      ).length;
      if (!c.certified && positive >= ayesNeeded(net.quorum, net.members.length)) {
        c.certified = true;
        c.certifiedAt = block;
      }
      return;
    }
    case 'failRound': {
      requireNotBarredCoordinator(net, signer);
      const existing = requireProposal(net, call.proposal);
      if (existing.type !== 'round') fail('E_NOT_ROUND', `proposal ${call.proposal} is a membership change`);
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
      return;
    }
    case 'dispute': {
      requireMember(net, signer);
      requireFailureCode(call.code);
      const existing = requireProposal(net, call.proposal);
      if (existing.type !== 'round') fail('E_NOT_ROUND', `proposal ${call.proposal} is a membership change`);
      if (call.round >= existing.finalized.length) {
        fail(
          'E_ROUND_NOT_FINALIZED',
          `round ${call.round} of proposal ${call.proposal} is not finalized (${existing.finalized.length} are)`,
        );
      }
      const roles = rolesIn(existing, call.round, call.accused);
      if (roles.length === 0) {
        fail(
          'E_NOT_IN_ROUND',
          `${call.accused} neither contributed to round ${call.round} of proposal ${call.proposal} nor coordinated it`,
        );
      }
      const same = net.disputes.find(
        (d) =>
          d.status === 'open' &&
          d.proposal === call.proposal &&
          d.round === call.round &&
          d.accused === call.accused,
      );
      if (same !== undefined) {
        fail(
          'E_DISPUTE_EXISTS',
          `dispute ${same.id} against ${call.accused} for this round is open: uphold it`,
        );
      }
      if (roles.every((role) => barsOf(net, role)[call.accused] !== undefined)) {
        fail('E_ALREADY_BARRED', `${call.accused} is already barred as ${roles.join(' and ')}`);
      }
      const { type: _type, ...fields } = call;
      const d: DisputeRecord = {
        ...fields,
        id: net.disputes.length,
        disputer: signer,
        openedAt: block,
        roles,
        upholds: { [signer]: block },
        status: 'open',
        upheldAt: null,
      };
      draft.addDispute(net, d);
      decideDispute(draft, net, d, block);
      return;
    }
    case 'upholdDispute': {
      requireMember(net, signer);
      const existing = net.disputes[call.dispute];
      if (existing === undefined) fail('E_UNKNOWN_DISPUTE', `no dispute ${call.dispute} in ${net.name}`);
      if (existing.status !== 'open') {
        fail('E_DISPUTE_UPHELD', `dispute ${call.dispute} was upheld at block ${existing.upheldAt}`);
      }
      if (existing.upholds[signer] !== undefined) {
        fail('E_DOUBLE_UPHOLD', `${signer} already upheld dispute ${call.dispute}`);
      }
      const d = draft.dispute(net, call.dispute);
      d.upholds[signer] = block;
      decideDispute(draft, net, d, block);
      return;
    }
  }
}
