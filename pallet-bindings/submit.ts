// Submitting protocol calls: sign, submit, wait for finality, then read once where the extrinsic landed and whether it
// applied. The block is read as raw JSON (the extrinsic found by its hash, nothing decoded) and the events are decoded
// once: a round's commit carries a thousand transfers, and @polkadot/api's own watcher decodes the whole block and all its
// events again for the in-block status and for the finalized one.
import type { ApiPromise } from '@polkadot/api';
import type { KeyringPair } from '@polkadot/keyring/types';
import type { DispatchError, EventRecord, ExtrinsicStatus } from '@polkadot/types/interfaces';
import { blake2AsHex } from '@polkadot/util-crypto';
import { buildCall, type CallBuilders, type ChainClient, type Transfer } from './client.ts';
import { encodePayload } from './codec.ts';
import { PalletError } from './errors.ts';
import { publicKeyOf } from './scale-types.ts';
import type { FedtuneCall, Hex32 } from './types.ts';
import type { SubmittableExtrinsic } from '@polkadot/api/types';

export interface SubmitParameters {
  signer: KeyringPair;
  /** The network the calls address; null for createNetwork. */
  network: Hex32 | null;
  calls: FedtuneCall[];
  transfers?: Transfer[];
}

export interface Inclusion {
  blockHash: string;
  blockNumber: number;
  extrinsicIndex: number;
  txHash: string;
}

type Submittable = SubmittableExtrinsic<'promise'>;

/**
 * `api.tx`'s three constructors, a transfer's destination given as its public key (`MultiAddress::Id`): the same
 * bytes as the SS58 text, without @polkadot/api decoding the text again for each of a commit's transfers.
 */
function apiBuilders(api: ApiPromise): CallBuilders<Submittable> {
  return {
    system: { remarkWithEvent: (remark) => api.tx.system.remarkWithEvent(remark) },
    utility: { batchAll: (calls) => api.tx.utility.batchAll(calls) },
    balances: {
      transferKeepAlive: (dest, value) => api.tx.balances.transferKeepAlive({ Id: publicKeyOf(dest) }, value),
    },
  };
}

/**
 * Signs, submits and waits for finality. Resolves with where the extrinsic landed; rejects with
 * E_DISPATCH_FAILED (it landed but failed: nothing it carried counts, its details name the block),
 * E_SUBMIT_REJECTED (the node refused it: bad nonce, fees, …) or E_CHAIN_UNREACHABLE (the block could not be read).
 */
export async function submit(client: ChainClient, params: SubmitParameters): Promise<Inclusion> {
  const { api, logger } = client;
  const payloads = params.calls.map((call) => encodePayload({ network: params.network, call }));
  const tx = buildCall(apiBuilders(api), payloads, params.transfers ?? []);
  const what = params.calls.map((c) => c.type).join('+');
  logger.debug(
    { calls: what, signer: params.signer.address, transfers: params.transfers?.length ?? 0 },
    'submitting',
  );
  const refused = (cause: unknown) =>
    new PalletError('E_SUBMIT_REJECTED', `the node refused ${what}: ${(cause as Error).message}`, { cause });
  let signed: Submittable;
  try {
    signed = await tx.signAsync(params.signer, { nonce: -1 });
  } catch (cause) {
    throw refused(cause);
  }
  const txHash = signed.hash.toHex();
  return new Promise<Inclusion>((resolve, reject) => {
    let unsubscribe: (() => void) | undefined;
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      unsubscribe?.();
      fn();
    };
    const onStatus = (status: ExtrinsicStatus) => {
      if (status.isInvalid || status.isDropped || status.isUsurped) {
        settle(() =>
          reject(
            new PalletError('E_SUBMIT_REJECTED', `the transaction pool dropped ${what}: ${status.type}`),
          ),
        );
        return;
      }
      if (!status.isFinalized) return;
      void landed(api, status.asFinalized.toHex(), txHash).then(
        ({ inclusion, dispatchError }) => {
          if (dispatchError !== null) {
            const error = describeDispatchError(api, dispatchError);
            settle(() =>
              reject(
                new PalletError(
                  'E_DISPATCH_FAILED',
                  `${what} landed in block ${inclusion.blockNumber} but failed: ${error}`,
                  { details: { ...inclusion, error } },
                ),
              ),
            );
          } else {
            logger.info({ calls: what, ...inclusion }, 'finalized');
            settle(() => resolve(inclusion));
          }
        },
        (cause: unknown) =>
          settle(() =>
            reject(
              new PalletError('E_CHAIN_UNREACHABLE', 'lost the chain while reading the block', { cause }),
            ),
          ),
      );
    };
    api.rpc.author
      .submitAndWatchExtrinsic(signed, onStatus)
      .then((u) => {
        unsubscribe = u;
        if (settled) u();
      })
      .catch((cause: unknown) => settle(() => reject(refused(cause))));
  });
}

/** Where the extrinsic `txHash` sits in the finalized block, and its ExtrinsicFailed error if it did not apply. */
async function landed(
  api: ApiPromise,
  blockHash: string,
  txHash: string,
): Promise<{ inclusion: Inclusion; dispatchError: DispatchError | null }> {
  const [raw, apiAt] = await Promise.all([
    api.rpc.chain.getBlock.raw(blockHash) as Promise<{
      block: { header: { number: string }; extrinsics: string[] };
    }>,
    api.at(blockHash),
  ]);
  const extrinsicIndex = raw.block.extrinsics.findIndex((hex) => blake2AsHex(hex) === txHash);
  const events = (await apiAt.query.system.events()) as unknown as EventRecord[];
  let dispatchError: DispatchError | null = null;
  for (const { phase, event } of events) {
    if (!phase.isApplyExtrinsic || phase.asApplyExtrinsic.toNumber() !== extrinsicIndex) continue;
    if (api.events.system.ExtrinsicFailed.is(event)) dispatchError = event.data[0] as DispatchError;
  }
  return {
    inclusion: { blockHash, blockNumber: Number(raw.block.header.number), extrinsicIndex, txHash },
    dispatchError,
  };
}

function describeDispatchError(api: ApiPromise, error: DispatchError): string {
  if (error.isModule) {
    try {
      const meta = api.registry.findMetaError(error.asModule);
      return `${meta.section}.${meta.name}`;
    } catch {
      return error.toString();
    }
  }
  return error.type === 'Token' ? `Token.${error.asToken.type}` : error.toString();
}
