// A future queue in front of chopsticks' transaction pool, as a real node keeps one: a transaction whose nonce is
// ahead (its `requires` tags are not yet provided) waits until the transaction providing them is pooled or included.
import type { Blockchain } from '@acala-network/chopsticks-core';
import type { ChopsticksCore } from './chopsticks.ts';
import type { HexString } from '@polkadot/util/types';
import { blake2AsHex } from '@polkadot/util-crypto';
import type { GenericExtrinsic } from '@polkadot/types';

interface Held {
  extrinsic: HexString;
  signer: string;
  requires: string[];
  provides: string[];
}

export interface FutureQueue {
  /** Transactions of this signer waiting for their turn. */
  heldBy(address: string): number;
  dispose(): void;
}

/**
 * Replaces `chain.submitExtrinsic`. Without it, two transactions with consecutive nonces sent at the same moment race
 * to the block builder: in instant mode the second can be built alone first, fail with a future nonce, and be reported
 * as invalid to its sender although the first lands a moment later.
 */
export function installFutureQueue(core: ChopsticksCore, chain: Blockchain): FutureQueue {
  const submit = chain.submitExtrinsic.bind(chain);
  const held: Held[] = [];
  // Tags provided by transactions handed to the pool and not yet seen in a block.
  const pooled = new Map<HexString, string[]>();
  let releasing = Promise.resolve();

  const validity = async (extrinsic: HexString) => {
    const result = await chain.validateExtrinsic(extrinsic);
    if (!result.isOk) throw result.asErr;
    const ok = result.asOk;
    return { requires: ok.requires.map((t) => t.toHex()), provides: ok.provides.map((t) => t.toHex()) };
  };
  const signerOf = async (extrinsic: HexString) => {
    const registry = await chain.head.registry;
    return registry.createType<GenericExtrinsic>('GenericExtrinsic', extrinsic).signer.toString();
  };
  const providedTags = () => new Set([...pooled.values()].flat());

  /** Hands every held transaction whose requirements are now met to the pool, in the order they become ready. */
  const release = () => {
    releasing = releasing.then(async () => {
      for (let progress = true; progress;) {
        progress = false;
        const provided = providedTags();
        for (const h of [...held]) {
          let requires = h.requires;
          if (!requires.every((t) => provided.has(t))) {
            // The chain itself may provide them now (the providing transaction is included).
            try {
              requires = (await validity(h.extrinsic)).requires;
            } catch {
              held.splice(held.indexOf(h), 1); // no longer valid (e.g. its nonce was used): drop it
              continue;
            }
            if (!requires.every((t) => provided.has(t))) continue;
          }
          held.splice(held.indexOf(h), 1);
          pooled.set(h.extrinsic, h.provides);
          await submit(h.extrinsic).catch(() => pooled.delete(h.extrinsic));
          progress = true;
        }
      }
    });
    return releasing;
  };

  chain.submitExtrinsic = async (extrinsic: HexString) => {
    const { requires, provides } = await validity(extrinsic);
    const provided = providedTags();
    const hash = await (async () => {
      if (requires.every((t) => provided.has(t)) && held.length === 0) {
        pooled.set(extrinsic, provides);
        try {
          return await submit(extrinsic);
        } catch (error) {
          pooled.delete(extrinsic);
          throw error;
        }
      }
      held.push({ extrinsic, signer: await signerOf(extrinsic), requires, provides });
      return blake2AsHex(extrinsic, 256);
    })();
    await release();
    return hash;
  };

  // A pooled transaction that failed in the block builder provides nothing.
  const onApplyError = ([extrinsic]: [HexString, unknown]) => pooled.delete(extrinsic);
  chain.txPool.event.on(core.APPLY_EXTRINSIC_ERROR, onApplyError);

  const subscription = chain.headState.subscribeHead((block) => {
    void (async () => {
      for (const extrinsic of await block.extrinsics) pooled.delete(extrinsic);
      if (held.length > 0) await release();
    })();
  });

  return {
    heldBy: (address) => held.filter((h) => h.signer === address).length,
    dispose: () => {
      chain.headState.unsubscribeHead(subscription);
      chain.txPool.event.off(core.APPLY_EXTRINSIC_ERROR, onApplyError);
    },
  };
}
