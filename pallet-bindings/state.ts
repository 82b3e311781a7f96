// The reducer's input (a plain description of a finalized block) and its output (the protocol state), as plain data.
import type {
  Account,
  CallType,
  CreateNetwork,
  Dispute,
  FinalizeRound,
  Hex32,
  ProposeMembership,
  ProposeRound,
  Quorum,
  RegisterDataset,
  WorkerCapabilities,
} from './types.ts';

// ---- input: what the chain client makes of a block and its events -----------------------------

/**
 * One call of an extrinsic, with `ok`: whether it ran and its effects stand (read from the block's events).
 * Only the shapes the protocol looks at are told apart; everything else is `other`.
 */
export type ChainCall =
  | { kind: 'remark'; data: Uint8Array; ok: boolean }
  | { kind: 'batch'; mode: 'batch' | 'batchAll' | 'forceBatch'; calls: ChainCall[]; ok: boolean }
  | { kind: 'transfer'; dest: Account; value: string; ok: boolean }
  | { kind: 'other'; name: string; ok: boolean };

export interface ChainExtrinsic {
  /** Position in the block. */
  index: number;
  /** The signer in canonical form (SS58 prefix 42), null for unsigned extrinsics and inherents. */
  signer: Account | null;
  /** ExtrinsicSuccess (true) or ExtrinsicFailed (false). */
  ok: boolean;
  call: ChainCall;
}

export interface ChainBlock {
  number: number;
  hash: string;
  parentHash: string;
  extrinsics: ChainExtrinsic[];
}

// ---- output: the protocol state -----------------------------------------------------------------

export type ProposalStatus = 'voting' | 'approved' | 'rejected' | 'open' | 'completed' | 'failed';

interface ProposalBase {
  id: number;
  proposer: Account;
  /** Block the proposal was made in. */
  proposedAt: number;
  /** Last block in which votes count; the proposal is decided at the end of this block. */
  deadline: number;
  /** The members when it was proposed: only they vote, and the quorum is of them. */
  electorate: Account[];
  ayesNeeded: number;
  votes: Record<Account, boolean>;
  ayes: number;
  nays: number;
  status: ProposalStatus;
  decidedAt: number | null;
}

export interface FinalizedRound extends Omit<FinalizeRound, 'proposal'> {
  block: number;
  coordinator: Account;
  /** balances.transferKeepAlive calls that ran in the same utility.batchAll as the finalizeRound. */
  rewards: { account: Account; amount: string }[];
}

export interface RoundProposal extends ProposalBase {
  type: 'round';
  round: ProposeRound;
  coordinator: Account | null;
  coordinatorEndpoint: string | null;
  openedAt: number | null;
  finalized: FinalizedRound[];
  /** Why it failed: a failRound's reason and signer, or a reducer rule (expiry, coordinator removed) with `by` ''. */
  failure: { reason: string; block: number; by: Account } | null;
}

export interface MembershipProposal extends ProposalBase {
  type: 'membership';
  membership: ProposeMembership;
  /** Whether the change was made when approved (false when it no longer applied, e.g. the account was already added). */
  applied: boolean;
}

export type Proposal = RoundProposal | MembershipProposal;

export interface DatasetRecord extends RegisterDataset {
  owner: Account;
  block: number;
}

export interface WorkerRecord {
  account: Account;
  capabilities: WorkerCapabilities;
  endpoint: string | null;
  block: number;
}

export interface CheckpointRecord {
  id: Hex32;
  proposal: number;
  round: number;
  bytes: number;
  uri: string;
  block: number;
  /** Each member's attest; `code` is a "no"'s failure code (`attestWithCode`), null for a yes or an uncoded no. */
  attests: Record<Account, { evalLoss: number; verdict: boolean; code: string | null; block: number }>;
  certified: boolean;
  certifiedAt: number | null;
}

/** The part an accused played in the disputed round: a contributor (worker), or the coordinator that finalized it. */
export type DisputeRole = 'worker' | 'coordinator';

export interface DisputeRecord extends Dispute {
  id: number;
  disputer: Account;
  /** Block the dispute was made in. */
  openedAt: number;
  /** What the accused was in that round (both when it coordinated a round it contributed to): what a bar takes. */
  roles: DisputeRole[];
  /** Members who upheld it, with the block; the disputer's own dispute is its first uphold. */
  upholds: Record<Account, number>;
  /** `open` until upholds by current members reach the quorum; then `upheld`, for good. */
  status: 'open' | 'upheld';
  upheldAt: number | null;
}

/** Why an account is barred: the upheld dispute (the first one, if several were upheld) and its block. */
export interface Bar {
  dispute: number;
  code: string;
  block: number;
}

export interface NetworkState extends Omit<CreateNetwork, 'members' | 'coordinators'> {
  id: Hex32;
  founder: Account;
  createdAt: number;
  members: Account[];
  coordinators: Account[];
  quorum: Quorum;
  datasets: Record<Hex32, DatasetRecord>;
  workers: Record<Account, WorkerRecord>;
  /** Indexed by proposal id (ids count up from 0 per network). */
  proposals: Proposal[];
  /** Ids of proposals still voting, oldest first. */
  voting: number[];
  checkpoints: Record<Hex32, CheckpointRecord>;
  /** Indexed by dispute id (ids count up from 0 per network). */
  disputes: DisputeRecord[];
  /** Workers an upheld dispute barred: they get no further task of this network. */
  barredWorkers: Record<Account, Bar>;
  /** Coordinators an upheld dispute barred: the reducer refuses their openRound, finalizeRound and failRound. */
  barredCoordinators: Record<Account, Bar>;
}

/** Where a call sat on chain. `call` is its position among the extrinsic's remarks (depth-first). */
export interface CallSite {
  block: number;
  extrinsic: number;
  call: number;
  signer: Account | null;
}

/** A call that broke a rule: it changed nothing. */
export interface AuditEntry extends CallSite {
  network: Hex32 | null;
  callType: CallType;
  code: string;
  reason: string;
}

/** A payload that was not read at all: malformed, unknown version, unknown or other network. */
export interface IgnoredEntry extends CallSite {
  code: string;
  reason: string;
}

export interface ProtocolState {
  /** Layout version of this object (snapshots of another layout are discarded). */
  layout: typeof STATE_LAYOUT;
  /** Follow only this network (others' payloads are ignored as E_OTHER_NETWORK); null follows all. */
  only: Hex32 | null;
  /** The last block folded in, -1 before any. */
  height: number;
  blockHash: string | null;
  networks: Record<Hex32, NetworkState>;
  /** Most recent first is not kept: oldest first, capped at MAX_LOG entries each. */
  audit: AuditEntry[];
  ignored: IgnoredEntry[];
}

export const MAX_LOG = 10_000;

/** The layout of ProtocolState: 2 added disputes, bars and attest codes (a snapshot of layout 1 is replayed instead). */
export const STATE_LAYOUT = 2;

export function initialState(options: { only?: Hex32 | null } = {}): ProtocolState {
  return {
    layout: STATE_LAYOUT,
    only: options.only ?? null,
    height: -1,
    blockHash: null,
    networks: {},
    audit: [],
    ignored: [],
  };
}
