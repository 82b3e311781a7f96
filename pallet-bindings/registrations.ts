// registerWorkers: many workers registered by one extrinsic, each by its own sr25519 consent (pure JS, no wasm to wait for): the message a worker signs,
// signing it, splitting a list into calls within the bounds, and the reducer's rule for the call.
import { decodeAddress, sr25519Verify } from '@polkadot/util-crypto';
import { hexToU8a, stringToU8a, u8aConcat, u8aToHex } from '@polkadot/util';
import { encodeCall, isHex32 } from './codec.ts';
import { toAccount } from './scale-types.ts';
import { fail } from './draft.ts';
import { PalletError } from './errors.ts';
import type { KeyringPair } from './keys.ts';
import type { NetworkState } from './state.ts';
import type { Hex32, RegisterWorker, RegisterWorkers, WorkerRegistration } from './types.ts';

/** The domain tag in front of every registration message: a consent signature can mean nothing else. */
export const REGISTRATION_TAG = 'fedtune/registerWorkers';
/**
 * At most this many workers in one registerWorkers call. A registration with short capabilities is about 110 bytes, so
 * 256 stay well inside a payload's 64 KiB; more go in further calls of the same utility.batchAll.
 */
export const MAX_REGISTRATIONS_PER_CALL = 256;

/**
 * What a worker signs to be registered by someone else: the tag, the network id, the worker's public key, the last
 * block the consent is good for (u32 LE) and the SCALE bytes of the registerWorker call it would have submitted itself.
 * The capabilities and the endpoint are covered, so a submitter cannot change what the worker declared.
 */
export function registrationMessage(
  network: Hex32,
  account: string,
  validUntil: number,
  registration: RegisterWorker,
): Uint8Array {
  const until = new Uint8Array(4);
  new DataView(until.buffer).setUint32(0, validUntil, true);
  return u8aConcat(
    stringToU8a(REGISTRATION_TAG),
    hexToU8a(network),
    decodeAddress(account),
    until,
    encodeCall({ type: 'registerWorker', ...registration }),
  );
}

/** A worker's consent: its registration and its signature, ready to go into a registerWorkers call. */
export function signRegistration(
  pair: KeyringPair,
  network: Hex32,
  validUntil: number,
  registration: RegisterWorker,
): WorkerRegistration {
  if (!isHex32(network)) {
    throw new PalletError('E_BAD_NETWORK_ID', `network id must be 0x + 64 hex digits, got ${network}`, {
      exitCode: 2,
    });
  }
  const account = toAccount(pair.address);
  const signature = u8aToHex(pair.sign(registrationMessage(network, account, validUntil, registration)));
  return {
    account,
    capabilities: { ...registration.capabilities },
    endpoint: registration.endpoint,
    signature,
  };
}

/** The registerWorkers calls for a list of consents, MAX_REGISTRATIONS_PER_CALL each, in order. */
export function registerWorkersCalls(
  validUntil: number,
  workers: readonly WorkerRegistration[],
): ({ type: 'registerWorkers' } & RegisterWorkers)[] {
  const calls: ({ type: 'registerWorkers' } & RegisterWorkers)[] = [];
  for (let i = 0; i < workers.length; i += MAX_REGISTRATIONS_PER_CALL)
    calls.push({
      type: 'registerWorkers',
      validUntil,
      workers: workers.slice(i, i + MAX_REGISTRATIONS_PER_CALL),
    });
  return calls;
}

/** sr25519 only (the keys fedtune makes); a malformed signature is simply not valid. */
function verifies(message: Uint8Array, signature: string, account: string): boolean {
  try {
    return sr25519Verify(message, signature, decodeAddress(account));
  } catch {
    return false;
  }
}

/**
 * The reducer's rule: all or nothing. Every entry must be signed by its own account over this network and validUntil,
 * the call must land by validUntil, and no account may appear twice; then each is registered as by its own
 * registerWorker (a later registration replaces an earlier one, as there).
 */
export function applyRegisterWorkers(net: NetworkState, call: RegisterWorkers, block: number): void {
  const n = call.workers.length;
  if (n === 0 || n > MAX_REGISTRATIONS_PER_CALL) {
    fail(
      'E_BAD_REGISTRATIONS',
      `a registerWorkers call registers 1 to ${MAX_REGISTRATIONS_PER_CALL} workers, got ${n}`,
    );
  }
  if (block > call.validUntil) {
    fail(
      'E_REGISTRATION_EXPIRED',
      `the workers' consents were good until block ${call.validUntil}; this is block ${block}`,
    );
  }
  if (new Set(call.workers.map((w) => w.account)).size !== n)
    fail('E_BAD_REGISTRATIONS', 'a worker is listed twice');
  call.workers.forEach((w, i) => {
    const message = registrationMessage(net.id, w.account, call.validUntil, {
      capabilities: w.capabilities,
      endpoint: w.endpoint,
    });
    if (!verifies(message, w.signature, w.account)) {
      fail(
        'E_BAD_REGISTRATION_SIGNATURE',
        `worker ${i} (${w.account}) did not sign this registration for network ${net.id} until block ${call.validUntil}`,
      );
    }
  });
  for (const w of call.workers) {
    net.workers[w.account] = {
      account: w.account,
      capabilities: { ...w.capabilities },
      endpoint: w.endpoint,
      block,
    };
  }
}
