// TS values <-> codec values: a call as the registry's input (every Text as the hex of its bytes), and a decoded
// call's primitive form read back into a FedtuneCall, each number bounded and each account canonical.
import type { Codec } from '@polkadot/types/types';
import { u8aToHex, stringToHex, stringToU8a } from '@polkadot/util';
import { isHex32 } from '../merkle/index.ts';
import { FEDTUNE_TYPES, toAccount, type CallVariant } from './scale-types.ts';
import type { Account, FedtuneCall, Hex32, MembershipAction } from './types.ts';
import type { TypeRegistry } from '@polkadot/types';

/** The membership actions by their lower-cased enum key, as @polkadot/types spells it. */
const MEMBERSHIP_ACTIONS: Record<string, MembershipAction> = {
  add: 'Add',
  remove: 'Remove',
  addcoordinator: 'AddCoordinator',
  removecoordinator: 'RemoveCoordinator',
};

/**
 * Every `Text` value given as the hex of its UTF-8 bytes: @polkadot/types reads a string that looks like hex ("0x12")
 * as hex, so "0x" would otherwise be stored as an empty text. Walks the input along the type definitions above.
 */
export function textAsHex(registry: TypeRegistry, type: string, value: unknown): unknown {
  if (value === null || value === undefined) return value;
  if (type === 'Text') return typeof value === 'string' ? stringToHex(value) : value;
  const wrapped = /^(Option|Vec)<(.+)>$/.exec(type);
  if (wrapped) {
    if (wrapped[1] === 'Vec')
      return Array.isArray(value) ? value.map((v) => textAsHex(registry, wrapped[2]!, v)) : value;
    // An Option reads an empty hex ("0x") as None: give it the Text itself, so that Some("") stays Some("").
    if (wrapped[2] === 'Text' && typeof value === 'string')
      return registry.createType('Text', stringToHex(value));
    return textAsHex(registry, wrapped[2]!, value);
  }
  const def = FEDTUNE_TYPES[type];
  if (def === undefined || typeof def === 'string')
    return typeof def === 'string' ? textAsHex(registry, def, value) : value;
  if (typeof value !== 'object') return value;
  const fields = (def._enum ?? def) as Record<string, string> | string[];
  if (Array.isArray(fields)) return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).map(([k, v]) => [
      k,
      fields[k] === undefined ? v : textAsHex(registry, fields[k], v),
    ]),
  );
}

export function toCodecInput(call: FedtuneCall, variant: CallVariant): unknown {
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
/** A 64-byte field (a signature), read back as hex the way hex() reads a 32-byte one. */
function hex64(value: Primitive): `0x${string}` {
  const s = str(value);
  return /^0x[0-9a-f]{128}$/.test(s) ? (s as `0x${string}`) : u8aToHex(stringToU8a(s));
}
function account(value: Primitive): Account {
  return toAccount(str(value));
}
function enumKey(value: Primitive): string {
  return typeof value === 'string' ? value : Object.keys(obj(value))[0]!;
}

export function fromCodec(type: CallVariant, value: Codec): FedtuneCall {
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
    case 'registerWorkers':
      return {
        type,
        validUntil: num(v.validUntil!, 'validUntil'),
        workers: arr(v.workers!).map((x) => {
          const w = obj(x);
          const c = obj(w.capabilities!);
          return {
            account: account(w.account!),
            capabilities: {
              backend: str(c.backend!),
              device: str(c.device!),
              memoryBytes: num(c.memoryBytes!, 'memoryBytes'),
            },
            endpoint: w.endpoint === null ? null : str(w.endpoint!),
            signature: hex64(w.signature!),
          };
        }),
      };
  }
}
