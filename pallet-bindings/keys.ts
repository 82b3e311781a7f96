// Signing keys: dev seeds (//Alice), mnemonics and polkadot.js JSON keystores. Secrets never reach a log or an error.
import { Keyring } from '@polkadot/keyring';
import type { KeyringPair } from '@polkadot/keyring/types';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { PalletError } from './errors.ts';

export type { KeyringPair };

/** A key from a secret URI: `//Alice`, a 12/24-word mnemonic, optionally with a `//derivation` path. sr25519. */
export async function signerFromSeed(seed: string): Promise<KeyringPair> {
  await cryptoWaitReady();
  try {
    return new Keyring({ type: 'sr25519', ss58Format: 42 }).addFromUri(seed);
  } catch {
    // The message would echo the seed; say only what kind of input was expected.
    throw new PalletError('E_BAD_SEED', 'the seed is neither a dev seed like //Alice nor a valid mnemonic', {
      exitCode: 2,
    });
  }
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
