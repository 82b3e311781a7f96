// What the devchain tests share: a quiet logger, stock @polkadot/api clients, and submitting a transaction to finality.
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import type { KeyringPair } from '@polkadot/keyring/types';
import type { SubmittableExtrinsic } from '@polkadot/api/types';
import type { EventRecord } from '@polkadot/types/interfaces';
import { cryptoWaitReady, decodeAddress } from '@polkadot/util-crypto';
import { u8aToHex } from '@polkadot/util';
import { pino } from 'pino';

export const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export async function connect(url: string): Promise<ApiPromise> {
  return ApiPromise.create({ provider: new WsProvider(url), noInitWarn: true, throwOnConnect: true });
}

export async function keyring(): Promise<Keyring> {
  await cryptoWaitReady();
  return new Keyring({ type: 'sr25519', ss58Format: 42 });
}

export async function pair(uri: string): Promise<KeyringPair> {
  return (await keyring()).addFromUri(uri);
}

export interface Landed {
  blockHash: string;
  blockNumber: number;
  /** The extrinsic's index in its block. */
  index: number;
  events: EventRecord[];
  finalized: boolean;
}

/** Sends a signed transaction and resolves once its block is finalized, with the events of that extrinsic. */
export function send(
  api: ApiPromise,
  tx: SubmittableExtrinsic<'promise'>,
  signer: KeyringPair,
  options: { nonce?: number } = {},
): Promise<Landed> {
  return new Promise<Landed>((resolve, reject) => {
    let unsubscribe: (() => void) | undefined;
    tx.signAndSend(signer, { nonce: options.nonce ?? -1 }, (result) => {
      if (result.isError) {
        unsubscribe?.();
        reject(new Error(`transaction failed: ${result.status.type}`));
        return;
      }
      if (!result.status.isFinalized) return;
      unsubscribe?.();
      const blockHash = result.status.asFinalized.toHex();
      api.rpc.chain.getHeader(blockHash).then(
        (header) =>
          resolve({
            blockHash,
            blockNumber: header.number.toNumber(),
            index: result.txIndex ?? -1,
            events: result.events,
            finalized: true,
          }),
        reject,
      );
    })
      .then((u) => {
        unsubscribe = u;
      })
      .catch(reject);
  });
}

export async function free(api: ApiPromise, address: string, at?: string): Promise<bigint> {
  const query = at ? await api.at(at) : api;
  const info = (await query.query.system.account(address)) as unknown as {
    data: { free: { toBigInt(): bigint } };
  };
  return info.data.free.toBigInt();
}

/**
 * The fee the runtime charged `payer`: what Balances.Withdraw took from it, less any Balances.Deposit back to it (the
 * refund for unused weight). This runtime (spec 900) predates TransactionPayment.TransactionFeePaid.
 */
export function feeOf(events: EventRecord[], payer: string): bigint {
  const key = u8aToHex(decodeAddress(payer));
  let fee = 0n;
  let withdrawn = false;
  for (const { event } of events) {
    if (event.section !== 'balances') continue;
    if (event.method !== 'Withdraw' && event.method !== 'Deposit') continue;
    const who = u8aToHex(decodeAddress(event.data[0]!.toString()));
    if (who !== key) continue;
    const amount = (event.data[1] as unknown as { toBigInt(): bigint }).toBigInt();
    if (event.method === 'Withdraw') {
      withdrawn = true;
      fee += amount;
    } else fee -= amount;
  }
  if (!withdrawn) throw new Error('no Balances.Withdraw from the payer');
  return fee;
}

/** Whether two addresses (any SS58 prefix) name the same account. */
export function sameAccount(a: string, b: string): boolean {
  return u8aToHex(decodeAddress(a)) === u8aToHex(decodeAddress(b));
}

export function names(events: EventRecord[]): string[] {
  return events.map((e) => `${e.event.section}.${e.event.method}`);
}

/** Resolves with the error a promise rejects with; fails when it resolves. */
export async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}
