// The protocol's SCALE types: the call enum's variants in index order, each variant's layout in @polkadot/types syntax,
// the registry built from them alone, and the canonical account form.
import { TypeRegistry } from '@polkadot/types';
import type { ChainProperties } from '@polkadot/types/interfaces';
import type { RegistryTypes } from '@polkadot/types/types';
import { decodeAddress, encodeAddress } from '@polkadot/util-crypto';
import { PalletError } from './errors.ts';
import type { Account, CallType } from './types.ts';

/** The SS58 prefix of every account in decoded calls and in the reducer's state (generic Substrate). */
export const SS58_PREFIX = 42;

/**
 * The call enum's variants in index order; the index is the first byte of the encoded call and never changes. The
 * protocol grows by appending variants: a payload of an older client decodes to the same call as before, and an older
 * client ignores a newer variant as an unknown call index. Each variant is one call of the reducer's vocabulary, except
 * `attestWithCode`, the wire form of an `attest` whose "no" carries a failure code (the `attest` variant's layout
 * could not grow a field without changing the meaning of the bytes already on chain).
 */
export const CALL_TYPES = [
  'createNetwork',
  'registerDataset',
  'registerWorker',
  'deregisterWorker',
  'proposeRound',
  'proposeMembership',
  'vote',
  'openRound',
  'finalizeRound',
  'attest',
  'failRound',
  'attestWithCode',
  'dispute',
  'upholdDispute',
  'registerWorkers',
] as const satisfies readonly (CallType | 'attestWithCode')[];

/** A variant name of the call enum (the call types, plus `attestWithCode`). */
export type CallVariant = (typeof CALL_TYPES)[number];

/** The longest failure code an attest or a dispute carries, in characters. */
export const MAX_FAILURE_CODE_CHARS = 32;

/**
 * A failure code: 1 to 32 characters of upper-case ASCII letters, digits and `_`, starting with a letter, like the
 * codes `fedtune round verify` exits with (`E_AGGREGATE_MISMATCH`, `E_WORK_MISMATCH`). Bounded and plain so that it
 * prints safely in every table and log.
 */
export function isFailureCode(code: unknown): code is string {
  return typeof code === 'string' && /^[A-Z][A-Z0-9_]*$/.test(code) && code.length <= MAX_FAILURE_CODE_CHARS;
}

/** Our types, in @polkadot/types definition syntax; docs/protocol.md spells out the same layout byte by byte. */
export const FEDTUNE_TYPES: Record<string, string | Record<string, unknown>> = {
  FedtuneQuorum: { numerator: 'u32', denominator: 'u32' },
  FedtuneCreateNetwork: {
    name: 'Text',
    members: 'Vec<AccountId32>',
    quorum: 'FedtuneQuorum',
    votingPeriod: 'u32',
    coordinators: 'Vec<AccountId32>',
  },
  FedtuneRegisterDataset: {
    name: 'Text',
    root: 'H256',
    records: 'u64',
    shards: 'u32',
    bytes: 'u64',
    license: 'Text',
    source: 'Text',
    tokenizer: 'Text',
    manifestUri: 'Text',
  },
  FedtuneWorkerCapabilities: { backend: 'Text', device: 'Text', memoryBytes: 'u64' },
  FedtuneRegisterWorker: { capabilities: 'FedtuneWorkerCapabilities', endpoint: 'Option<Text>' },
  FedtuneRoundKind: { _enum: ['Pretrain', 'Finetune'] },
  FedtuneModelRef: { _enum: { config: 'Text', hash: 'H256' } },
  FedtuneHyperParams: {
    localSteps: 'u32',
    batchSize: 'u32',
    learningRate: 'f64',
    optimiser: 'Text',
    fedProxMu: 'f64',
    aggregator: 'Text',
    aggregatorOptions: 'Text',
    updateEncoding: 'Text',
  },
  FedtuneProposeRound: {
    kind: 'FedtuneRoundKind',
    baseCheckpoint: 'Option<H256>',
    dataset: 'H256',
    model: 'FedtuneModelRef',
    hyperParams: 'FedtuneHyperParams',
    rounds: 'u32',
    minWorkers: 'u32',
    maxWorkers: 'u32',
    roundDeadline: 'u32',
    rewardPerRound: 'u128',
  },
  FedtuneMembershipAction: { _enum: ['Add', 'Remove', 'AddCoordinator', 'RemoveCoordinator'] },
  FedtuneProposeMembership: { action: 'FedtuneMembershipAction', account: 'AccountId32' },
  FedtuneVote: { proposal: 'u32', aye: 'bool' },
  FedtuneOpenRound: { proposal: 'u32', coordinatorEndpoint: 'Text' },
  FedtuneCheckpointRef: { id: 'H256', bytes: 'u64', uri: 'Text' },
  FedtuneContributor: { account: 'AccountId32', samples: 'u64', shards: 'Vec<u32>' },
  FedtuneMetric: { name: 'Text', value: 'f64' },
  FedtuneRoundMetrics: { trainLoss: 'f64', evalLoss: 'f64', extra: 'Vec<FedtuneMetric>' },
  FedtuneFinalizeRound: {
    proposal: 'u32',
    round: 'u32',
    checkpoint: 'FedtuneCheckpointRef',
    updatesRoot: 'H256',
    contributors: 'Vec<FedtuneContributor>',
    datasetShardsRoot: 'H256',
    metrics: 'FedtuneRoundMetrics',
  },
  FedtuneAttest: { checkpoint: 'H256', evalLoss: 'f64', verdict: 'bool' },
  FedtuneFailRound: { proposal: 'u32', reason: 'Text' },
  FedtuneAttestWithCode: { checkpoint: 'H256', evalLoss: 'f64', code: 'Text' },
  FedtuneDispute: { proposal: 'u32', round: 'u32', accused: 'AccountId32', code: 'Text', evidence: 'H256' },
  FedtuneUpholdDispute: { dispute: 'u32' },
  FedtuneWorkerRegistration: {
    account: 'AccountId32',
    capabilities: 'FedtuneWorkerCapabilities',
    endpoint: 'Option<Text>',
    signature: 'H512',
  },
  FedtuneRegisterWorkers: { validUntil: 'u32', workers: 'Vec<FedtuneWorkerRegistration>' },
  FedtuneCall: {
    _enum: {
      createNetwork: 'FedtuneCreateNetwork',
      registerDataset: 'FedtuneRegisterDataset',
      registerWorker: 'FedtuneRegisterWorker',
      deregisterWorker: 'Null',
      proposeRound: 'FedtuneProposeRound',
      proposeMembership: 'FedtuneProposeMembership',
      vote: 'FedtuneVote',
      openRound: 'FedtuneOpenRound',
      finalizeRound: 'FedtuneFinalizeRound',
      attest: 'FedtuneAttest',
      failRound: 'FedtuneFailRound',
      attestWithCode: 'FedtuneAttestWithCode',
      dispute: 'FedtuneDispute',
      upholdDispute: 'FedtuneUpholdDispute',
      registerWorkers: 'FedtuneRegisterWorkers',
    },
  },
  FedtunePayloadTarget: 'Option<H256>',
};

/** A registry holding only our types (no chain metadata): the codec never depends on the chain it runs on. */
export function createFedtuneRegistry(): TypeRegistry {
  const registry = new TypeRegistry();
  registry.register(FEDTUNE_TYPES as RegistryTypes);
  registry.setChainProperties(
    registry.createTypeUnsafe<ChainProperties>('ChainProperties', [
      { ss58Format: SS58_PREFIX, tokenDecimals: 12, tokenSymbol: 'UNIT' },
    ]),
  );
  return registry;
}

/**
 * Answers already given, by the text they came from: a round's commit converts the same thousand contributors several
 * times (dry run, the extrinsic, the reducer's fold of its block), ~0.3 ms each through base58 and blake2 checksums.
 * Bounded: a table that fills up is emptied.
 */
const publicKeys = new Map<string, Uint8Array>();
const canonical = new Map<string, Account>();
const REMEMBERED_MAX = 100_000;

function remembered<T>(table: Map<string, T>, key: string, compute: () => T): T {
  const known = table.get(key);
  if (known !== undefined) return known;
  const value = compute();
  if (table.size >= REMEMBERED_MAX) table.clear();
  table.set(key, value);
  return value;
}

/** What `convert` makes of `address`, any failure of it an E_BAD_ACCOUNT. */
function asAccount<T>(address: string | Uint8Array, convert: () => T): T {
  try {
    return convert();
  } catch (cause) {
    throw new PalletError('E_BAD_ACCOUNT', `not an SS58 address or 32-byte public key: ${String(address)}`, {
      exitCode: 2,
      cause,
    });
  }
}

/** An account's 32-byte public key (any SS58 prefix or 0x hex); throws E_BAD_ACCOUNT. Remembered: do not modify it. */
export function publicKeyOf(address: string): Uint8Array {
  return remembered(publicKeys, address, () => asAccount(address, () => decodeAddress(address)));
}

/** The canonical account form: SS58 with prefix 42. Accepts any SS58 prefix or a 0x public key; throws E_BAD_ACCOUNT. */
export function toAccount(address: string | Uint8Array): Account {
  const convert = () => asAccount(address, () => encodeAddress(decodeAddress(address), SS58_PREFIX));
  return typeof address === 'string' ? remembered(canonical, address, convert) : convert();
}
