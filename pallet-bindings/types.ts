// The fedtune protocol's calls as TypeScript values: the one vocabulary the codec, the reducer and the CLI share.

/** `0x` followed by 64 lower-case hex digits: a network id, a dataset root, a checkpoint id. */
export type Hex32 = `0x${string}`;
/** An account as an SS58 address with the generic Substrate prefix 42 (the reducer's canonical form). */
export type Account = string;

/** A fraction of the membership: approved when `ayes * denominator >= numerator * members`. */
export interface Quorum {
  numerator: number;
  denominator: number;
}

export interface CreateNetwork {
  name: string;
  members: Account[];
  quorum: Quorum;
  /** Blocks a proposal stays open for votes after the block it was proposed in. */
  votingPeriod: number;
  coordinators: Account[];
}

export interface RegisterDataset {
  name: string;
  root: Hex32;
  records: number;
  shards: number;
  bytes: number;
  license: string;
  source: string;
  tokenizer: string;
  manifestUri: string;
}

export interface WorkerCapabilities {
  backend: string;
  device: string;
  memoryBytes: number;
}

export interface RegisterWorker {
  capabilities: WorkerCapabilities;
  endpoint: string | null;
}

/** One worker's consent inside a `registerWorkers` call: its registration and its sr25519 signature over it. */
export interface WorkerRegistration {
  account: Account;
  capabilities: WorkerCapabilities;
  endpoint: string | null;
  /** 64 bytes, hex: the worker's signature over registrationMessage (registrations.ts). */
  signature: `0x${string}`;
}

/** Registers many workers in one call, each by its own signature; anyone may submit it (and pays for it). */
export interface RegisterWorkers {
  /** The last block the signatures are good for: an old consent cannot be replayed after it. */
  validUntil: number;
  workers: WorkerRegistration[];
}

export type RoundKind = 'Pretrain' | 'Finetune';

/** The model: its architecture config (JSON text) inline, or the hash of that config. */
export type ModelRef = { config: string } | { hash: Hex32 };

export interface HyperParams {
  localSteps: number;
  batchSize: number;
  learningRate: number;
  optimiser: string;
  fedProxMu: number;
  aggregator: string;
  /** The aggregator's options as JSON text ("{}" when none). */
  aggregatorOptions: string;
  updateEncoding: string;
}

export interface ProposeRound {
  kind: RoundKind;
  /** Required (and certified) for Finetune, absent for Pretrain. */
  baseCheckpoint: Hex32 | null;
  /** The dataset's Merkle root, as registered. */
  dataset: Hex32;
  model: ModelRef;
  hyperParams: HyperParams;
  rounds: number;
  minWorkers: number;
  maxWorkers: number;
  /** Seconds each round may take off chain before the coordinator closes it. */
  roundDeadline: number;
  /** Planck paid out per round, in total, as decimal digits (u128). */
  rewardPerRound: string;
}

/** Add or remove a member, or (by the same vote) a coordinator: members can take a coordinator's role away. */
export type MembershipAction = 'Add' | 'Remove' | 'AddCoordinator' | 'RemoveCoordinator';

export interface ProposeMembership {
  action: MembershipAction;
  account: Account;
}

export interface Vote {
  proposal: number;
  aye: boolean;
}

export interface OpenRound {
  proposal: number;
  coordinatorEndpoint: string;
}

export interface CheckpointRef {
  id: Hex32;
  bytes: number;
  uri: string;
}

export interface Contributor {
  account: Account;
  samples: number;
  shards: number[];
}

export interface Metric {
  name: string;
  value: number;
}

export interface RoundMetrics {
  trainLoss: number;
  evalLoss: number;
  extra: Metric[];
}

export interface FinalizeRound {
  proposal: number;
  /** 0-based; rounds are finalized in order. */
  round: number;
  checkpoint: CheckpointRef;
  updatesRoot: Hex32;
  contributors: Contributor[];
  datasetShardsRoot: Hex32;
  metrics: RoundMetrics;
}

export interface Attest {
  checkpoint: Hex32;
  evalLoss: number;
  verdict: boolean;
  /**
   * Why a "no": the failed verification's code (`E_AGGREGATE_MISMATCH`, …; see isFailureCode). Only with
   * `verdict: false`; absent (or null) for a yes and for a no without a code, which travel as the original `attest`
   * variant, while a coded no travels as `attestWithCode` (docs/protocol.md).
   */
  code?: string | null;
}

/** A member puts a failed verification of a finalized round on chain, naming a contributor or its coordinator. */
export interface Dispute {
  proposal: number;
  round: number;
  accused: Account;
  /** The failed check's code, as `fedtune round verify` names it (`E_WORK_MISMATCH`, …; see isFailureCode). */
  code: string;
  /** A hash of the evidence (for example sha-256 of the verify report JSON); the evidence itself is off chain. */
  evidence: Hex32;
}

export interface UpholdDispute {
  /** The dispute's id (dispute ids count up from 0 per network). */
  dispute: number;
}

export interface FailRound {
  proposal: number;
  reason: string;
}

/** One protocol call; `type` is the call's name on chain and in the reducer. */
export type FedtuneCall =
  | ({ type: 'createNetwork' } & CreateNetwork)
  | ({ type: 'registerDataset' } & RegisterDataset)
  | ({ type: 'registerWorker' } & RegisterWorker)
  | { type: 'deregisterWorker' }
  | ({ type: 'proposeRound' } & ProposeRound)
  | ({ type: 'proposeMembership' } & ProposeMembership)
  | ({ type: 'vote' } & Vote)
  | ({ type: 'openRound' } & OpenRound)
  | ({ type: 'finalizeRound' } & FinalizeRound)
  | ({ type: 'attest' } & Attest)
  | ({ type: 'failRound' } & FailRound)
  | ({ type: 'dispute' } & Dispute)
  | ({ type: 'upholdDispute' } & UpholdDispute)
  | ({ type: 'registerWorkers' } & RegisterWorkers);

export type CallType = FedtuneCall['type'];

/** A decoded payload: the network it addresses (null only for createNetwork) and the call. */
export interface Payload {
  network: Hex32 | null;
  call: FedtuneCall;
}
