// The reducer's verdict calls on finalized rounds: members attest a checkpoint (certified at quorum), dispute a
// contributor or coordinator, and uphold disputes (upheld at quorum, the accused barred in every role it played).
import { isFailureCode, MAX_FAILURE_CODE_CHARS } from './scale-types.ts';
import { failRoundsOf } from './decide.ts';
import { fail, type Draft } from './draft.ts';
import { ayesNeeded, requireMember, requireRound, type Call } from './reduce-dao.ts';
import type { DisputeRecord, DisputeRole, NetworkState, RoundProposal } from './state.ts';
import type { Account } from './types.ts';

function requireFailureCode(code: string): void {
  if (!isFailureCode(code as unknown)) {
    fail(
      'E_BAD_CODE',
      `a failure code is 1 to ${MAX_FAILURE_CODE_CHARS} of A-Z, 0-9 and _, starting with a letter; got ${JSON.stringify(String(code).slice(0, 40))}`,
    );
  }
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

export function attest(
  draft: Draft,
  net: NetworkState,
  call: Call<'attest'>,
  signer: Account,
  block: number,
): void {
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
  const positive = Object.entries(c.attests).filter(([a, x]) => x.verdict && net.members.includes(a)).length;
  if (!c.certified && positive >= ayesNeeded(net.quorum, net.members.length)) {
    c.certified = true;
    c.certifiedAt = block;
  }
}

export function dispute(
  draft: Draft,
  net: NetworkState,
  call: Call<'dispute'>,
  signer: Account,
  block: number,
): void {
  requireMember(net, signer);
  requireFailureCode(call.code);
  const existing = requireRound(net, call.proposal);
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
    fail('E_DISPUTE_EXISTS', `dispute ${same.id} against ${call.accused} for this round is open: uphold it`);
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
}

export function upholdDispute(
  draft: Draft,
  net: NetworkState,
  call: Call<'upholdDispute'>,
  signer: Account,
  block: number,
): void {
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
}
