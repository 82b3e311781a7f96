// Signing keys: dev seeds (//Alice), mnemonics and polkadot.js JSON keystores. Secrets never reach a log or an error.
import { DEV_PHRASE, Keyring } from '@polkadot/keyring';
import type { KeyringPair } from '@polkadot/keyring/types';
import { hexToU8a, isHex, stringToU8a, u8aConcat, u8aToU8a } from '@polkadot/util';
import { cryptoWaitReady, keyExtractSuri, mnemonicToMiniSecret } from '@polkadot/util-crypto';
import {
  isReady,
  sr25519DeriveKeypairHard,
  sr25519DeriveKeypairSoft,
  sr25519KeypairFromSeed,
  sr25519Sign,
} from '@polkadot/wasm-crypto';
import { PalletError } from './errors.ts';

export type { KeyringPair };

const SR25519_PREFIX = new Uint8Array([1]);
const MNEMONIC_WORDS = [12, 15, 18, 21, 24];

/**
 * A key from a secret URI: `//Alice`, a 12/24-word mnemonic, optionally with a `//derivation` path. sr25519.
 *
 * The keyring's own `addFromUri` computes the key in JavaScript (@scure/sr25519 since util-crypto 13): its first
 * public key builds @noble/curves' precomputed tables, about 0.4 s of a one-shot command's CPU. The same steps run here
 * in @polkadot/wasm-crypto instead, which `cryptoWaitReady` (and every ApiPromise) initialises anyway, and the pair
 * signs there too: the same secret URI grammar, keys and signature scheme as the keyring's (test/pallet-bindings/keys).
 */
export async function signerFromSeed(seed: string): Promise<KeyringPair> {
  const wasm = await cryptoWaitReady();
  const keyring = new Keyring({ type: 'sr25519', ss58Format: 42 });
  try {
    return wasm && isReady() ? wasmPair(keyring, seed) : keyring.addFromUri(seed);
  } catch {
    // The message would echo the seed; say only what kind of input was expected.
    throw new PalletError('E_BAD_SEED', 'the seed is neither a dev seed like //Alice nor a valid mnemonic', {
      exitCode: 2,
    });
  }
}

/** Keyring.createFromUri's steps for sr25519 (dev phrase, hex seed, mnemonic or short raw seed; then the junctions). */
function wasmPair(keyring: Keyring, uri: string): KeyringPair {
  const { password, path, phrase } = keyExtractSuri(uri.startsWith('//') ? `${DEV_PHRASE}${uri}` : uri);
  let seed: Uint8Array;
  if (isHex(phrase, 256)) seed = hexToU8a(phrase);
  else if (MNEMONIC_WORDS.includes(phrase.split(' ').length)) seed = mnemonicToMiniSecret(phrase, password);
  else if (phrase.length > 32) throw new Error('not a mnemonic, and too long for a raw seed');
  else seed = stringToU8a(phrase.padEnd(32));
  // 96 bytes: the 64-byte secret key (key and nonce), then the 32-byte public key, as util-crypto splits them.
  let keypair = sr25519KeypairFromSeed(seed);
  for (const { chainCode, isSoft } of path) {
    keypair = isSoft
      ? sr25519DeriveKeypairSoft(keypair, chainCode)
      : sr25519DeriveKeypairHard(keypair, chainCode);
  }
  const secretKey = keypair.slice(0, 64);
  const publicKey = keypair.slice(64);
  const pair = keyring.addFromPair({ publicKey, secretKey });
  // As the keyring's pair signs (type prefix 1 for sr25519 when asked), in WebAssembly.
  pair.sign = (message, options = {}) => {
    if (pair.isLocked) throw new Error('Cannot sign with a locked key pair');
    return u8aConcat(
      options.withType ? SR25519_PREFIX : new Uint8Array(),
      sr25519Sign(publicKey, secretKey, u8aToU8a(message)),
    );
  };
  return pair;
}

/** A key from a polkadot.js JSON keystore (the file polkadot.js apps exports), unlocked with its password. */
export async function signerFromKeyfile(json: string, password: string): Promise<KeyringPair> {
  await cryptoWaitReady();
  let pair: KeyringPair;
  try {
    pair = new Keyring({ ss58Format: 42 }).addFromJson(JSON.parse(json));
  } catch (cause) {
    throw new PalletError('E_BAD_KEYFILE', 'the keyfile is not a polkadot.js JSON keystore', {
      exitCode: 2,
      cause,
    });
  }
  try {
    pair.decodePkcs8(password);
  } catch {
    throw new PalletError('E_BAD_PASSWORD', 'the password does not unlock the keyfile', { exitCode: 2 });
  }
  return pair;
}
