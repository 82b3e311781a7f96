// A future queue in front of chopsticks' transaction pool, as a real node keeps one: a transaction whose nonce is
// ahead (its `requires` tags are not yet provided) waits until the transaction providing them is pooled or included.
import type { Blockchain } from '@acala-network/chopsticks-core';
import type { ChopsticksCore } from './chopsticks.ts';
import type { HexString } from '@polkadot/util/types';
import { blake2AsHex, blake2AsU8a, xxhashAsU8a } from '@polkadot/util-crypto';
import { hexToU8a, u8aConcat, u8aToHex } from '@polkadot/util';
import type { GenericExtrinsic } from '@polkadot/types';

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
  /**
   * AccountNonceApi_account_nonce at the head, as the runtime answers it (the nonce in state, SCALE u32), for the
   * encoded AccountId32 `account` (0x + 64 hex digits).
   */
  accountNonce(account: string): Promise<string>;
  dispose(): void;
}

/**
 * The tags of a signed transaction that applies on the head, as validate_transaction gives them: it requires nothing,
 * and provides what frame_system's CheckNonce tags it with, the SCALE encoding of (AccountId32, u32 nonce).
 */
export function checkNonceTags(signer: string, nonce: number): { requires: string[]; provides: string[] } {
  const encoded = new Uint8Array(4);
  new DataView(encoded.buffer).setUint32(0, nonce, true);
  return { requires: [], provides: [u8aToHex(u8aConcat(hexToU8a(signer), encoded))] };
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
  /**
   * The one-task builder's `ahead`: builds the block of a transaction submitted to an idle pool at once, in place of
   * validating it (a runtime task each). Without it, every transaction is validated.
   */
  ahead?: (extrinsic: HexString) => Promise<boolean>,
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
  const describe = async (extrinsic: HexString): Promise<Omit<Tx, 'provides'> & { signed: boolean }> => {
    const registry = await chain.head.registry;
    const tx = registry.createType<GenericExtrinsic>('GenericExtrinsic', extrinsic);
    return {
      extrinsic,
      signed: tx.isSigned,
      signer: registry.createType('AccountId', tx.signer.toString()).toHex(),
      nonce: tx.nonce.toNumber(),
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
    // What does not decode is for the runtime to refuse, as before (validity throws the error the sender gets).
    const described = await describe(extrinsic).catch(() => null);
    const builtAhead =
      ahead !== undefined &&
      described?.signed === true &&
      pooled.size === 0 &&
      held.length === 0 &&
      (await ahead(extrinsic));
    const { requires, provides } = builtAhead
      ? checkNonceTags(described!.signer, described!.nonce)
      : await validity(extrinsic);
    const { signed: _signed, ...fields } = described ?? (await describe(extrinsic));
    const tx: Tx = { ...fields, provides };
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

  // An account's nonce read from System.Account's storage at the head, not by AccountNonceApi: a runtime call costs
  // chopsticks a third of a second or more whatever it does (docs/devnet.md), and every signed submission asked once.
  const storedNonce = async (account: string): Promise<number> => {
    const id = hexToU8a(account);
    const key = u8aToHex(
      u8aConcat(xxhashAsU8a('System', 128), xxhashAsU8a('Account', 128), blake2AsU8a(id, 128), id),
    );
    const stored = await chain.head.get(key);
    // AccountInfo starts with the nonce (u32 LE); an account never written has nonce 0.
    if (!stored) return 0;
    const info = hexToU8a(stored);
    return new DataView(info.buffer, info.byteOffset, info.byteLength).getUint32(0, true);
  };

  return {
    async accountNonce(account) {
      const nonce = new Uint8Array(4);
      new DataView(nonce.buffer).setUint32(0, await storedNonce(account), true);
      return u8aToHex(nonce);
    },
    async nextIndex(address) {
      const registry = await chain.head.registry;
      const account = registry.createType('AccountId', address).toHex();
      let next = await storedNonce(account);
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
