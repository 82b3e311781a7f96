// The payload codec: magic, version, target network and the SCALE-encoded call, over a @polkadot/types registry of our own types.
import { blake2AsU8a } from '@polkadot/util-crypto';
import { u8aConcat, u8aToHex, u8aEq, hexToU8a, stringToU8a } from '@polkadot/util';
import type { Codec } from '@polkadot/types/types';
import { isHex32 } from '../merkle/index.ts';
import { fromCodec, textAsHex, toCodecInput } from './codec-values.ts';
import { PalletError } from './errors.ts';
import { CALL_TYPES, createFedtuneRegistry, type CallVariant } from './scale-types.ts';
import type { FedtuneCall, Hex32, Payload } from './types.ts';

/** The first four bytes of every fedtune payload: ASCII "fdtn". */
export const MAGIC = new Uint8Array([0x66, 0x64, 0x74, 0x6e]);
/** The protocol version this codec writes and the only one the reducer accepts. */
export const PROTOCOL_VERSION = 1;
/** Payloads larger than this are ignored unread. */
export const MAX_PAYLOAD_BYTES = 64 * 1024;

const registry = createFedtuneRegistry();

/** Why a payload was not a valid fedtune call; `code` is stable, `reason` is for people. */
export class PayloadError extends PalletError {
  constructor(code: string, message: string) {
    super(code, message, { exitCode: 2 });
    this.name = 'PayloadError';
  }
}

export { isHex32 };

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
    return registry
      .createType('FedtuneCall', textAsHex(registry, 'FedtuneCall', { [variant]: value }))
      .toU8a();
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
