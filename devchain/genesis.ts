// The dev chain's genesis: Rococo Asset Hub's raw chain spec from @substrate/connect-known-chains, runtime included,
// with the dev accounts' balances written into its raw storage; made once per process.
import { chainSpec } from '@substrate/connect-known-chains/rococo_v2_2_asset_hub';
import type { GenesisProvider } from '@acala-network/chopsticks-core';
import type { ChopsticksCore } from './chopsticks.ts';
import { blake2AsHex, blake2AsU8a, xxhashAsU8a } from '@polkadot/util-crypto';
import { u8aConcat, u8aToHex, hexToU8a, bnToU8a } from '@polkadot/util';
import type { HexString } from '@polkadot/util/types';
import { DEV_BALANCE, type DevAccount } from './accounts.ts';
import type { Runtime } from './runtime.ts';

export interface RawChainSpec {
  name: string;
  id: string;
  properties?: Record<string, unknown>;
  genesis: { raw: { top: Record<string, string>; childrenDefault?: Record<string, unknown> } };
  [key: string]: unknown;
}

const storagePrefix = (pallet: string, item: string) =>
  u8aConcat(xxhashAsU8a(pallet, 128), xxhashAsU8a(item, 128));

function u128(value: bigint): Uint8Array {
  return bnToU8a(value, { bitLength: 128, isLe: true });
}

/**
 * System.Account for an account with one provider and a free balance. The layout of this runtime's AccountInfo
 * (spec 900): nonce, consumers, providers, sufficients as u32, then AccountData as four u128 (free, reserved and
 * two frozen fields) — 80 bytes, little-endian. A test reads the balances back through the runtime.
 */
function accountInfo(free: bigint): Uint8Array {
  const out = new Uint8Array(80);
  const view = new DataView(out.buffer);
  view.setUint32(8, 1, true); // providers
  out.set(u128(free), 16);
  return out;
}

/** The chain spec with every dev account funded and the total issuance raised to match. */
export function devGenesis(accounts: DevAccount[]): RawChainSpec {
  const spec = JSON.parse(chainSpec) as RawChainSpec;
  const top = spec.genesis.raw.top;
  for (const account of accounts) {
    const key = u8aConcat(
      storagePrefix('System', 'Account'),
      blake2AsU8a(account.publicKey, 128),
      account.publicKey,
    );
    top[u8aToHex(key)] = u8aToHex(accountInfo(DEV_BALANCE));
  }
  const issuanceKey = u8aToHex(storagePrefix('Balances', 'TotalIssuance'));
  const previous = top[issuanceKey] ? hexToU8a(top[issuanceKey]) : new Uint8Array(16);
  let issued = 0n;
  for (let i = 15; i >= 0; i--) issued = (issued << 8n) | BigInt(previous[i] ?? 0);
  top[issuanceKey] = u8aToHex(u128(issued + DEV_BALANCE * BigInt(accounts.length)));
  // chopsticks' GenesisProvider answers "next key" with the first greater key in the object's order, so the keys must
  // be in byte order or state_getKeysPaged (and with it api.query.*.entries()) skips entries.
  spec.genesis.raw.top = Object.fromEntries(
    Object.entries(top).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
  return spec;
}

const CODE_KEY = u8aToHex(new TextEncoder().encode(':code'));
const ZERO_HASH = `0x${'00'.repeat(32)}` as HexString;

/**
 * chopsticks' GenesisProvider with a real genesis hash. Its own stands in a constant (0x4545…) for both the genesis
 * hash and the genesis parent; a node computes blake2-256 of the SCALE-encoded header (parent zero, number 0, the
 * state root of the raw storage, the empty extrinsics root, no digest), and so does this.
 */
export async function genesisProvider(core: ChopsticksCore, spec: RawChainSpec): Promise<GenesisProvider> {
  const provider = new core.GenesisProvider(spec as never);
  const original = await provider.getHeader();
  const header = { ...original, parentHash: ZERO_HASH };
  // Header: parent (32) ‖ compact number 0 (0x00) ‖ state root (32) ‖ extrinsics root (32) ‖ digest: empty vec (0x00).
  const encoded = u8aConcat(
    hexToU8a(ZERO_HASH),
    new Uint8Array([0]),
    hexToU8a(header.stateRoot),
    hexToU8a(header.extrinsicsRoot),
    new Uint8Array([0]),
  );
  const hash = blake2AsHex(encoded, 256);
  provider.getHeader = async () => header;
  Object.defineProperty(provider, 'blockHash', { get: () => hash });
  return provider;
}

export interface DevGenesis {
  provider: GenesisProvider;
  /** The runtime the chain starts with. */
  runtime: Runtime;
}

const made = new Map<string, Promise<DevGenesis>>();

/**
 * The genesis provider for `devGenesis(accounts)`, made once per process and shared by its devnets: parsing the spec
 * and computing its state root (a runtime task) need doing only once. The provider only answers from the spec; what
 * a chain does to it (connect, disconnect) only flips a flag that nothing reads.
 */
export function devGenesisProvider(core: ChopsticksCore, accounts: DevAccount[]): Promise<DevGenesis> {
  const key = accounts.map((account) => u8aToHex(account.publicKey)).join(',');
  let genesis = made.get(key);
  if (!genesis) {
    const spec = devGenesis(accounts);
    const code = (spec.genesis.raw.top[CODE_KEY] ?? '0x') as HexString;
    genesis = genesisProvider(core, spec).then((provider) => ({
      provider,
      runtime: { spec: { id: spec.id, properties: spec.properties ?? {} }, code },
    }));
    made.set(key, genesis);
    genesis.catch(() => made.delete(key));
  }
  return genesis;
}
