// The well-known dev accounts (sr25519 //Alice … //Ferdie), funded in the dev chain's genesis as on a `--dev` node.
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';

export const DEV_ACCOUNT_NAMES = ['Alice', 'Bob', 'Charlie', 'Dave', 'Eve', 'Ferdie'] as const;
export type DevAccountName = (typeof DEV_ACCOUNT_NAMES)[number];

/** Each dev account's genesis balance: 10^18 planck, a million ROC at this chain's 12 decimals. */
export const DEV_BALANCE = 10n ** 18n;

export interface DevAccount {
  name: DevAccountName;
  /** The secret URI, e.g. //Alice: well known, so never for value on a real chain. */
  uri: string;
  /** SS58 address with the generic Substrate prefix 42. */
  address: string;
  publicKey: Uint8Array;
}

let derived: Promise<DevAccount[]> | null = null;

/** The dev accounts, derived once per process (six sr25519 derivations, about 0.1 s); each call gets its own copies. */
export async function devAccounts(): Promise<DevAccount[]> {
  derived ??= (async () => {
    await cryptoWaitReady();
    const keyring = new Keyring({ type: 'sr25519', ss58Format: 42 });
    return DEV_ACCOUNT_NAMES.map((name) => {
      const pair = keyring.addFromUri(`//${name}`);
      return { name, uri: `//${name}`, address: pair.address, publicKey: pair.publicKey };
    });
  })();
  derived.catch(() => {
    derived = null;
  });
  return (await derived).map((account) => ({ ...account, publicKey: account.publicKey.slice() }));
}
