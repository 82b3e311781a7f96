// The well-known dev accounts (sr25519 //Alice … //Ferdie), funded in the dev chain's genesis as on a `--dev` node.
import { hexToU8a } from '@polkadot/util';

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

/**
 * What the keyring derives from each URI (sr25519, from Substrate's public dev phrase), written out: deriving them cost
 * every devnet start about 0.1 s, and a fresh process about 0.7 s more to build the JavaScript sr25519's tables.
 * test/devchain/accounts.test.ts derives them again and compares.
 */
const DERIVED: Record<DevAccountName, { publicKey: string; address: string }> = {
  Alice: {
    publicKey: '0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d',
    address: '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY',
  },
  Bob: {
    publicKey: '0x8eaf04151687736326c9fea17e25fc5287613693c912909cb226aa4794f26a48',
    address: '5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty',
  },
  Charlie: {
    publicKey: '0x90b5ab205c6974c9ea841be688864633dc9ca8a357843eeacf2314649965fe22',
    address: '5FLSigC9HGRKVhB9FiEo4Y3koPsNmBmLJbpXg2mp1hXcS59Y',
  },
  Dave: {
    publicKey: '0x306721211d5404bd9da88e0204360a1a9ab8b87c66c1bc2fcdd37f3c2222cc20',
    address: '5DAAnrj7VHTznn2AWBemMuyBwZWs6FNFjdyVXUeYum3PTXFy',
  },
  Eve: {
    publicKey: '0xe659a7a1628cdd93febc04a4e0646ea20e9f5f0ce097d9a05290d4a9e054df4e',
    address: '5HGjWAeFDfFCWPsjFQdVV2Msvz2XtMktvgocEZcCj68kUMaw',
  },
  Ferdie: {
    publicKey: '0x1cbd2d43530a44705ad088af313e18f80b53ef16b36177cd4b77b846f2a5f07c',
    address: '5CiPPseXPECbkjWCa6MnjNokrgYjMqmKndv2rSnekmSK2DjL',
  },
};

/** The dev accounts; each call gets its own copies. */
export async function devAccounts(): Promise<DevAccount[]> {
  return DEV_ACCOUNT_NAMES.map((name) => ({
    name,
    uri: `//${name}`,
    address: DERIVED[name].address,
    publicKey: hexToU8a(DERIVED[name].publicKey),
  }));
}
