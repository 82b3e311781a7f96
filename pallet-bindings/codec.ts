// The payload codec: magic, version, target network and the SCALE-encoded call, over a @polkadot/types registry of our own types.
import { TypeRegistry } from '@polkadot/types';
import type { ChainProperties } from '@polkadot/types/interfaces';
import type { Codec, RegistryTypes } from '@polkadot/types/types';
import { blake2AsU8a, decodeAddress, encodeAddress } from '@polkadot/util-crypto';
import { u8aConcat, u8aToHex, u8aEq, hexToU8a, stringToHex, stringToU8a } from '@polkadot/util';
import { isHex32 } from '../merkle/index.ts';
import { PalletError } from './errors.ts';
import type { Account, CallType, FedtuneCall, Hex32, MembershipAction, Payload } from './types.ts';

/** The first four bytes of every fedtune payload: ASCII "fdtn". */
export const MAGIC = new Uint8Array([0x66, 0x64, 0x74, 0x6e]);
/** The protocol version this codec writes and the only one the reducer accepts. */
export const PROTOCOL_VERSION = 1;

/** The membership actions by their lower-cased enum key, as @polkadot/types spells it. */
const MEMBERSHIP_ACTIONS: Record<string, MembershipAction> = {
  add: 'Add',
  remove: 'Remove',
  addcoordinator: 'AddCoordinator',
  removecoordinator: 'RemoveCoordinator',
};
/** Payloads larger than this are ignored unread. */
export const MAX_PAYLOAD_BYTES = 64 * 1024;
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

const registry = createFedtuneRegistry();

/** Why a payload was not a valid fedtune call; `code` is stable, `reason` is for people. */
export class PayloadError extends PalletError {
  constructor(code: string, message: string) {
    super(code, message, { exitCode: 2 });
    this.name = 'PayloadError';
  }
}

export { isHex32 };

/** The canonical account form: SS58 with prefix 42. Accepts any SS58 prefix or a 0x public key; throws E_BAD_ACCOUNT. */
export function toAccount(address: string | Uint8Array): Account {
  try {
    return encodeAddress(decodeAddress(address), SS58_PREFIX);
  } catch (cause) {
    throw new PalletError('E_BAD_ACCOUNT', `not an SS58 address or 32-byte public key: ${String(address)}`, {
      exitCode: 2,
      cause,
    });
  }
}

/** True when `bytes` start with the fedtune magic (cheap pre-filter for remarks that are not ours). */
export function hasMagic(bytes: Uint8Array): boolean {
  return bytes.length >= MAGIC.length && u8aEq(bytes.subarray(0, MAGIC.length), MAGIC);
}

/** The variant a call travels as: its own, or `attestWithCode` for an attest that carries a failure code. */
function variantOf(call: FedtuneCall): CallVariant {
  if (call.type !== 'attest' || call.code === undefined || call.code === null) return call.type;
  if (call.verdict) {
    throw new PalletError('E_BAD_CALL', 'cannot encode attest: a yes carries no failure code', {
      exitCode: 2,
    });
  }
  return 'attestWithCode';
}

/** The SCALE bytes of one call (no header). */
export function encodeCall(call: FedtuneCall): Uint8Array {
  const variant = variantOf(call);
  const value = variant === 'deregisterWorker' ? null : toCodecInput(call, variant);
  try {
    return registry.createType('FedtuneCall', textAsHex('FedtuneCall', { [variant]: value })).toU8a();
  } catch (cause) {
    throw new PalletError('E_BAD_CALL', `cannot encode ${call.type}: ${(cause as Error).message}`, {
      exitCode: 2,
      cause,
    });
  }
}

/** The full payload: magic, version, Option<network id>, call. createNetwork carries no network id; every other call must. */
export function encodePayload(payload: Payload): Uint8Array {
  const isCreate = payload.call.type === 'createNetwork';
  if (isCreate !== (payload.network === null)) {
    throw new PalletError(
      'E_BAD_CALL',
      isCreate ? 'createNetwork takes no network id' : `${payload.call.type} needs a network id`,
      { exitCode: 2 },
    );
  }
  if (payload.network !== null && !isHex32(payload.network)) {
    throw new PalletError(
      'E_BAD_NETWORK_ID',
      `network id must be 0x + 64 hex digits, got ${payload.network}`,
      {
        exitCode: 2,
      },
    );
  }
  const target = registry.createType('FedtunePayloadTarget', payload.network).toU8a();
  const bytes = u8aConcat(MAGIC, new Uint8Array([PROTOCOL_VERSION]), target, encodeCall(payload.call));
  if (bytes.length > MAX_PAYLOAD_BYTES) {
    throw new PalletError(
      'E_PAYLOAD_TOO_LARGE',
      `payload is ${bytes.length} bytes, at most ${MAX_PAYLOAD_BYTES}`,
      {
        exitCode: 2,
      },
    );
  }
  return bytes;
}

/**
 * Decodes a payload, or throws a PayloadError (E_NOT_FEDTUNE, E_UNKNOWN_VERSION, E_MALFORMED_PAYLOAD).
 * Only canonical encodings are accepted: the decoded call must re-encode to exactly the bytes given.
 */
export function decodePayload(bytes: Uint8Array): Payload {
  if (!hasMagic(bytes)) throw new PayloadError('E_NOT_FEDTUNE', 'no fedtune magic prefix');
  if (bytes.length > MAX_PAYLOAD_BYTES) {
    throw new PayloadError(
      'E_MALFORMED_PAYLOAD',
      `payload is ${bytes.length} bytes, at most ${MAX_PAYLOAD_BYTES}`,
    );
  }
  if (bytes.length < 5) throw new PayloadError('E_MALFORMED_PAYLOAD', 'payload ends after the magic');
  const version = bytes[4]!;
  if (version !== PROTOCOL_VERSION) {
    throw new PayloadError(
      'E_UNKNOWN_VERSION',
      `protocol version ${version}, this client reads ${PROTOCOL_VERSION}`,
    );
  }
  if (bytes.length < 7) throw new PayloadError('E_MALFORMED_PAYLOAD', 'payload ends after the version');
  const body = bytes.subarray(5);
  let network: Hex32 | null;
  let offset: number;
  if (body[0] === 0) {
    network = null;
    offset = 1;
  } else if (body[0] === 1 && body.length >= 33) {
    network = u8aToHex(body.subarray(1, 33)) as Hex32;
    offset = 33;
  } else {
    throw new PayloadError(
      'E_MALFORMED_PAYLOAD',
      'the network id field is neither None (0x00) nor Some (0x01 + 32 bytes)',
    );
  }
  const callBytes = body.subarray(offset);
  if (callBytes.length === 0 || callBytes[0]! >= CALL_TYPES.length) {
    throw new PayloadError('E_MALFORMED_PAYLOAD', `unknown call index ${callBytes[0] ?? '(none)'}`);
  }
  let call: FedtuneCall;
  try {
    const codec = registry.createType('FedtuneCall', callBytes);
    if (!u8aEq(codec.toU8a(), callBytes))
      throw new Error('not the canonical SCALE encoding (or trailing bytes)');
    call = fromCodec(CALL_TYPES[callBytes[0]!]!, (codec as unknown as { value: Codec }).value);
  } catch (cause) {
    throw new PayloadError('E_MALFORMED_PAYLOAD', `call does not decode: ${(cause as Error).message}`);
  }
  if ((call.type === 'createNetwork') !== (network === null)) {
    throw new PayloadError(
      'E_MALFORMED_PAYLOAD',
      call.type === 'createNetwork'
        ? 'createNetwork must not name a network'
        : `${call.type} must name a network`,
    );
  }
  return { network, call };
}

/**
 * The id of a network created by a createNetwork call: blake2-256 of "fedtune/network", the block hash,
 * the extrinsic index (u32 LE) and the call's position among the extrinsic's protocol calls (u32 LE).
 */
export function deriveNetworkId(blockHash: string, extrinsicIndex: number, callIndex: number): Hex32 {
  const position = new Uint8Array(8);
  const view = new DataView(position.buffer);
  view.setUint32(0, extrinsicIndex, true);
  view.setUint32(4, callIndex, true);
  return u8aToHex(
    blake2AsU8a(u8aConcat(stringToU8a('fedtune/network'), hexToU8a(blockHash), position), 256),
  ) as Hex32;
}

// ---- TS values <-> codec values ------------------------------------------------------------------

/**
 * Every `Text` value given as the hex of its UTF-8 bytes: @polkadot/types reads a string that looks like hex ("0x12")
 * as hex, so "0x" would otherwise be stored as an empty text. Walks the input along the type definitions above.
 */
function textAsHex(type: string, value: unknown): unknown {
  if (value === null || value === undefined) return value;
  if (type === 'Text') return typeof value === 'string' ? stringToHex(value) : value;
  const wrapped = /^(Option|Vec)<(.+)>$/.exec(type);
  if (wrapped) {
    if (wrapped[1] === 'Vec')
      return Array.isArray(value) ? value.map((v) => textAsHex(wrapped[2]!, v)) : value;
    // An Option reads an empty hex ("0x") as None: give it the Text itself, so that Some("") stays Some("").
    if (wrapped[2] === 'Text' && typeof value === 'string')
      return registry.createType('Text', stringToHex(value));
    return textAsHex(wrapped[2]!, value);
  }
  const def = FEDTUNE_TYPES[type];
  if (def === undefined || typeof def === 'string')
    return typeof def === 'string' ? textAsHex(def, value) : value;
  if (typeof value !== 'object') return value;
  const fields = (def._enum ?? def) as Record<string, string> | string[];
  if (Array.isArray(fields)) return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).map(([k, v]) => [
      k,
      fields[k] === undefined ? v : textAsHex(fields[k], v),
    ]),
  );
}

function toCodecInput(call: FedtuneCall, variant: CallVariant): unknown {
  if (call.type === 'attest') {
    const { checkpoint, evalLoss, verdict, code } = call;
    return variant === 'attestWithCode' ? { checkpoint, evalLoss, code } : { checkpoint, evalLoss, verdict };
  }
  switch (call.type) {
    case 'proposeRound': {
      const { type: _t, model, ...rest } = call;
      return { ...rest, model: 'config' in model ? { config: model.config } : { hash: model.hash } };
    }
    default: {
      const { type: _t, ...rest } = call;
      return rest;
    }
  }
}

type Primitive = null | boolean | number | string | Primitive[] | { [key: string]: Primitive };

function num(value: Primitive, field: string): number {
  // toPrimitive gives integers above 2^52 as decimal strings; those up to 2^53 - 1 are still exact numbers.
  if (typeof value === 'string' && /^\d+$/.test(value) && Number.isSafeInteger(Number(value)))
    return Number(value);
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new Error(`${field}: ${String(value)} is not a finite number within 2^53`);
  }
  return value === 0 ? 0 : value; // -0 reads as 0, as msgpack and JSON would make it anyway
}
function str(value: Primitive): string {
  return String(value);
}
function obj(value: Primitive): { [key: string]: Primitive } {
  return value as { [key: string]: Primitive };
}
function arr(value: Primitive): Primitive[] {
  return value as Primitive[];
}
function hex(value: Primitive): Hex32 {
  const s = str(value);
  // toPrimitive gives a fixed-size field whose bytes are all printable ASCII as that text ("\"\"\"…" for 0x2222…), not
  // as hex; 32 printable bytes can never read as 0x + 64 hex digits, so the text is turned back into its bytes.
  return (isHex32(s) ? s : u8aToHex(stringToU8a(s))) as Hex32;
}
function account(value: Primitive): Account {
  return toAccount(str(value));
}
function enumKey(value: Primitive): string {
  return typeof value === 'string' ? value : Object.keys(obj(value))[0]!;
}

function fromCodec(type: CallVariant, value: Codec): FedtuneCall {
  // toPrimitive: integers as numbers (decimal strings beyond 2^53), floats as numbers, accounts as SS58 (prefix 42).
  const v = obj(value.toPrimitive() as Primitive);
  switch (type) {
    case 'createNetwork':
      return {
        type,
        name: str(v.name!),
        members: arr(v.members!).map(account),
        quorum: {
          numerator: num(obj(v.quorum!).numerator!, 'numerator'),
          denominator: num(obj(v.quorum!).denominator!, 'denominator'),
        },
        votingPeriod: num(v.votingPeriod!, 'votingPeriod'),
        coordinators: arr(v.coordinators!).map(account),
      };
    case 'registerDataset':
      return {
        type,
        name: str(v.name!),
        root: hex(v.root!),
        records: num(v.records!, 'records'),
        shards: num(v.shards!, 'shards'),
        bytes: num(v.bytes!, 'bytes'),
        license: str(v.license!),
        source: str(v.source!),
        tokenizer: str(v.tokenizer!),
        manifestUri: str(v.manifestUri!),
      };
    case 'registerWorker': {
      const c = obj(v.capabilities!);
      return {
        type,
        capabilities: {
          backend: str(c.backend!),
          device: str(c.device!),
          memoryBytes: num(c.memoryBytes!, 'memoryBytes'),
        },
        endpoint: v.endpoint === null ? null : str(v.endpoint!),
      };
    }
    case 'deregisterWorker':
      return { type };
    case 'proposeRound': {
      const h = obj(v.hyperParams!);
      const model = obj(v.model!);
      return {
        type,
        kind: enumKey(v.kind!).toLowerCase() === 'finetune' ? 'Finetune' : 'Pretrain',
        baseCheckpoint: v.baseCheckpoint === null ? null : hex(v.baseCheckpoint!),
        dataset: hex(v.dataset!),
        model: 'config' in model ? { config: str(model.config!) } : { hash: hex(model.hash!) },
        hyperParams: {
          localSteps: num(h.localSteps!, 'localSteps'),
          batchSize: num(h.batchSize!, 'batchSize'),
          learningRate: num(h.learningRate!, 'learningRate'),
          optimiser: str(h.optimiser!),
          fedProxMu: num(h.fedProxMu!, 'fedProxMu'),
          aggregator: str(h.aggregator!),
          aggregatorOptions: str(h.aggregatorOptions!),
          updateEncoding: str(h.updateEncoding!),
        },
        rounds: num(v.rounds!, 'rounds'),
        minWorkers: num(v.minWorkers!, 'minWorkers'),
        maxWorkers: num(v.maxWorkers!, 'maxWorkers'),
        roundDeadline: num(v.roundDeadline!, 'roundDeadline'),
        rewardPerRound: BigInt(str(v.rewardPerRound!)).toString(),
      };
    }
    case 'proposeMembership':
      return {
        type,
        action: MEMBERSHIP_ACTIONS[enumKey(v.action!).toLowerCase()] ?? 'Add',
        account: account(v.account!),
      };
    case 'vote':
      return { type, proposal: num(v.proposal!, 'proposal'), aye: v.aye === true };
    case 'openRound':
      return {
        type,
        proposal: num(v.proposal!, 'proposal'),
        coordinatorEndpoint: str(v.coordinatorEndpoint!),
      };
    case 'finalizeRound': {
      const c = obj(v.checkpoint!);
      const m = obj(v.metrics!);
      return {
        type,
        proposal: num(v.proposal!, 'proposal'),
        round: num(v.round!, 'round'),
        checkpoint: { id: hex(c.id!), bytes: num(c.bytes!, 'bytes'), uri: str(c.uri!) },
        updatesRoot: hex(v.updatesRoot!),
        contributors: arr(v.contributors!).map((x) => {
          const o = obj(x);
          return {
            account: account(o.account!),
            samples: num(o.samples!, 'samples'),
            shards: arr(o.shards!).map((s) => num(s, 'shard')),
          };
        }),
        datasetShardsRoot: hex(v.datasetShardsRoot!),
        metrics: {
          trainLoss: num(m.trainLoss!, 'trainLoss'),
          evalLoss: num(m.evalLoss!, 'evalLoss'),
          extra: arr(m.extra!).map((x) => ({ name: str(obj(x).name!), value: num(obj(x).value!, 'metric') })),
        },
      };
    }
    case 'attest':
      return {
        type,
        checkpoint: hex(v.checkpoint!),
        evalLoss: num(v.evalLoss!, 'evalLoss'),
        verdict: v.verdict === true,
      };
    case 'failRound':
      return { type, proposal: num(v.proposal!, 'proposal'), reason: str(v.reason!) };
    case 'attestWithCode':
      return {
        type: 'attest',
        checkpoint: hex(v.checkpoint!),
        evalLoss: num(v.evalLoss!, 'evalLoss'),
        verdict: false,
        code: str(v.code!),
      };
    case 'dispute':
      return {
        type,
        proposal: num(v.proposal!, 'proposal'),
        round: num(v.round!, 'round'),
        accused: account(v.accused!),
        code: str(v.code!),
        evidence: hex(v.evidence!),
      };
    case 'upholdDispute':
      return { type, dispute: num(v.dispute!, 'dispute') };
  }
}
