// Copy-on-write over the protocol state for one block, and the reducer's one failure: a rule broken, with its code.
import {
  MAX_LOG,
  type AuditEntry,
  type CheckpointRecord,
  type DisputeRecord,
  type IgnoredEntry,
  type NetworkState,
  type Proposal,
  type ProtocolState,
} from './state.ts';
import type { Hex32 } from './types.ts';
import { CodedError } from '../errors/index.ts';

/** The code and reason land in the audit entry (`reason` is the message, as for every CodedError). */
export class RuleBroken extends CodedError {}

export function fail(code: string, reason: string): never {
  throw new RuleBroken(code, reason);
}

/** Copy-on-write over the state for one block: each network, proposal, checkpoint and dispute is copied at most once. */
export class Draft {
  readonly state: ProtocolState;
  private readonly networks = new Set<string>();
  private readonly proposals = new Set<string>();
  private readonly checkpoints = new Set<string>();
  private readonly disputes = new Set<string>();
  private logsCopied = false;

  constructor(prev: ProtocolState) {
    this.state = { ...prev, networks: { ...prev.networks } };
  }

  network(id: Hex32): NetworkState {
    const n = this.state.networks[id]!;
    if (this.networks.has(id)) return n;
    this.networks.add(id);
    const copy: NetworkState = {
      ...n,
      members: n.members.slice(),
      coordinators: n.coordinators.slice(),
      datasets: { ...n.datasets },
      workers: { ...n.workers },
      proposals: n.proposals.slice(),
      voting: n.voting.slice(),
      checkpoints: { ...n.checkpoints },
      disputes: n.disputes.slice(),
      barredWorkers: { ...n.barredWorkers },
      barredCoordinators: { ...n.barredCoordinators },
    };
    this.state.networks[id] = copy;
    return copy;
  }

  addNetwork(network: NetworkState): void {
    this.state.networks[network.id] = network;
    this.networks.add(network.id);
  }

  proposal(net: NetworkState, id: number): Proposal {
    const key = `${net.id}/${id}`;
    const p = net.proposals[id]!;
    if (this.proposals.has(key)) return p;
    this.proposals.add(key);
    const copy: Proposal =
      p.type === 'round'
        ? { ...p, votes: { ...p.votes }, finalized: p.finalized.slice() }
        : { ...p, votes: { ...p.votes } };
    net.proposals[id] = copy;
    return copy;
  }

  addProposal(net: NetworkState, p: Proposal): void {
    net.proposals.push(p);
    this.proposals.add(`${net.id}/${p.id}`);
  }

  checkpoint(net: NetworkState, id: Hex32): CheckpointRecord {
    const key = `${net.id}/${id}`;
    const c = net.checkpoints[id]!;
    if (this.checkpoints.has(key)) return c;
    this.checkpoints.add(key);
    const copy = { ...c, attests: { ...c.attests } };
    net.checkpoints[id] = copy;
    return copy;
  }

  dispute(net: NetworkState, id: number): DisputeRecord {
    const key = `${net.id}/${id}`;
    const d = net.disputes[id]!;
    if (this.disputes.has(key)) return d;
    this.disputes.add(key);
    const copy = { ...d, upholds: { ...d.upholds } };
    net.disputes[id] = copy;
    return copy;
  }

  addDispute(net: NetworkState, d: DisputeRecord): void {
    net.disputes.push(d);
    this.disputes.add(`${net.id}/${d.id}`);
  }

  private copyLogs(): void {
    if (this.logsCopied) return;
    this.logsCopied = true;
    this.state.audit = this.state.audit.slice(-MAX_LOG + 1);
    this.state.ignored = this.state.ignored.slice(-MAX_LOG + 1);
  }

  audit(entry: AuditEntry): void {
    this.copyLogs();
    if (this.state.audit.length >= MAX_LOG) this.state.audit.shift();
    this.state.audit.push(entry);
  }

  ignore(entry: IgnoredEntry): void {
    this.copyLogs();
    if (this.state.ignored.length >= MAX_LOG) this.state.ignored.shift();
    this.state.ignored.push(entry);
  }
}
