// A future queue in front of chopsticks' transaction pool, as a real node keeps one: a transaction whose nonce is
// ahead (its `requires` tags are not yet provided) waits until the transaction providing them is pooled or included.
import type { Blockchain } from '@acala-network/chopsticks-core';
import type { ChopsticksCore } from './chopsticks.ts';
import type { HexString } from '@polkadot/util/types';
import { blake2AsHex } from '@polkadot/util-crypto';
import { hexToU8a } from '@polkadot/util';
import type { GenericExtrinsic } from '@polkadot/types';
import type { Index } from '@polkadot/types/interfaces';

interface Tx {
  extrinsic: HexString;
  /** The signer's public key, hex: addresses come in any SS58 prefix. */
  signer: string;
  nonce: number;
  provides: string[];
}

interface Held extends Tx {
  requires: string[];
  /** The head its `requires` were computed on: re-validating on the same head would only repeat the answer. */
  validatedAt: string;
}

export interface FutureQueue {
  /**
   * system_accountNextIndex as a node answers it: the account's nonce at the head, advanced past every nonce of its
   * transactions that are pooled, being built into a block, or waiting for their turn, as long as they follow on.
   */
  nextIndex(address: string): Promise<number>;
  dispose(): void;
}

/**
 * Replaces `chain.submitExtrinsic`. Without it, two transactions with consecutive nonces sent at the same moment race
 * to the block builder: in instant mode the second can be built alone first, fail with a future nonce, and be reported
 * as invalid to its sender although the first lands a moment later.
 */
export function installFutureQueue(
  core: ChopsticksCore,
  chain: Blockchain,
  /** Called each time a transaction enters chopsticks' pool. */
  onPooled: () => void = () => undefined,
): FutureQueue {
  // Every transaction is validated here already; chain.submitExtrinsic would validate it again (a runtime call) before
  // it reaches the pool, so this goes to the pool directly.
  const submitToPool = async (extrinsic: HexString): Promise<HexString> => {
    await chain.txPool.submitExtrinsic(extrinsic);
    return blake2AsHex(extrinsic, 256);
  };
  // Hand-offs to the pool go one at a time, in the order transactions were marked pooled: the pool awaits the signer's
  // decoding before it appends, so two hand-offs at once could land swapped and the later nonce be built first.
  let handoff: Promise<unknown> = Promise.resolve();
  const submit = (extrinsic: HexString): Promise<HexString> => {
    const submitted = handoff.then(() => submitToPool(extrinsic));
    handoff = submitted.catch(() => undefined);
    return submitted.then((hash) => {
      onPooled();
      return hash;
    });
  };
  const held: Held[] = [];
  // Transactions handed to the pool and not yet seen in a block, with the tags they provide.
  const pooled = new Map<HexString, Tx>();
  let releasing = Promise.resolve();

  // chopsticks runs the runtime in one worker, one call at a time, and sends it the whole runtime code (1.2 MB) with
  // every call: validating a few at a time is as fast, and a burst of submissions does not queue copies of it.
  const slots = { free: 2, waiting: [] as (() => void)[] };
  const validate = async (extrinsic: HexString) => {
    if (slots.free === 0) await new Promise<void>((resolve) => slots.waiting.push(resolve));
    else slots.free--;
    try {
      return await chain.validateExtrinsic(extrinsic);
    } finally {
      const next = slots.waiting.shift();
      if (next) next();
      else slots.free++;
    }
  };
  const validity = async (extrinsic: HexString) => {
    const result = await validate(extrinsic);
    if (!result.isOk) throw result.asErr;
    const ok = result.asOk;
    return { requires: ok.requires.map((t) => t.toHex()), provides: ok.provides.map((t) => t.toHex()) };
  };
  const describe = async (extrinsic: HexString, provides: string[]): Promise<Tx> => {
    const registry = await chain.head.registry;
    const tx = registry.createType<GenericExtrinsic>('GenericExtrinsic', extrinsic);
    return {
      extrinsic,
      signer: registry.createType('AccountId', tx.signer.toString()).toHex(),
      nonce: tx.nonce.toNumber(),
      provides,
    };
  };
  const providedTags = () => new Set([...pooled.values()].flatMap((tx) => tx.provides));

  /** Hands every held transaction whose requirements are now met to the pool, in the order they become ready. */
  const release = () => {
    releasing = releasing.then(async () => {
      for (let progress = true; progress;) {
        progress = false;
        const provided = providedTags();
        for (const h of [...held]) {
          let requires = h.requires;
          if (!requires.every((t) => provided.has(t))) {
            if (h.validatedAt === chain.head.hash) continue;
            // The chain itself may provide them now (the providing transaction is included).
            try {
              h.validatedAt = chain.head.hash;
              requires = (await validity(h.extrinsic)).requires;
              h.requires = requires;
            } catch {
              held.splice(held.indexOf(h), 1); // no longer valid (e.g. its nonce was used): drop it
              continue;
            }
            if (!requires.every((t) => provided.has(t))) continue;
          }
          held.splice(held.indexOf(h), 1);
          pooled.set(h.extrinsic, h);
          await submit(h.extrinsic).catch(() => pooled.delete(h.extrinsic));
          progress = true;
        }
      }
    });
    return releasing;
  };

  chain.submitExtrinsic = async (extrinsic: HexString) => {
    const validatedAt = chain.head.hash;
    const { requires, provides } = await validity(extrinsic);
    const tx = await describe(extrinsic, provides);
    const provided = providedTags();
    const hash = await (async () => {
      if (requires.every((t) => provided.has(t))) {
        pooled.set(extrinsic, tx);
        try {
          return await submit(extrinsic);
        } catch (error) {
          pooled.delete(extrinsic);
          throw error;
        }
      }
      held.push({ ...tx, requires, validatedAt });
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
    async nextIndex(address) {
      const registry = await chain.head.registry;
      const account = registry.createType('AccountId', address).toHex();
      const { result } = await chain.head.call('AccountNonceApi_account_nonce', [account]);
      let next = registry.createType<Index>('Index', hexToU8a(result)).toNumber();
      const nonces = new Set(
        [...pooled.values(), ...held].filter((tx) => tx.signer === account).map((tx) => tx.nonce),
      );
      while (nonces.has(next)) next++;
      return next;
    },
    dispose: () => {
      chain.headState.unsubscribeHead(subscription);
      chain.txPool.event.off(core.APPLY_EXTRINSIC_ERROR, onApplyError);
    },
  };
}
