// A block in one runtime task: initialize, the inherents, every pooled extrinsic and finalize run in one call to
// chopsticks' executor instead of one each, with chopsticks' own block builder as the fallback whenever that would not
// give the same block.
import type { Blockchain, BuildBlockParams, InherentProvider } from '@acala-network/chopsticks-core';
import type { HexString } from '@polkadot/util/types';
import type { Vec } from '@polkadot/types';
import type { EventRecord, Header } from '@polkadot/types/interfaces';
import { u8aConcat, u8aToHex } from '@polkadot/util';
import { blake2AsU8a, xxhashAsU8a } from '@polkadot/util-crypto';
import type { Logger } from 'pino';
import type { ChopsticksCore } from './chopsticks.ts';

/** How the blocks since start-up were built. */
export interface BlockBuildStats {
  /** Blocks built in one runtime task. */
  oneTask: number;
  /** Blocks handed to chopsticks' own builder (one runtime task per call), e.g. because an extrinsic failed to apply. */
  fallback: number;
  /** Of the one-task blocks, those built ahead, when their one extrinsic was submitted (see `ahead`). */
  ahead: number;
}

export interface OneTaskBuilder {
  stats(): BlockBuildStats;
  /**
   * Instant mode, nothing pending or being built: builds now the block that `extrinsic` alone makes on the head, and
   * keeps it for the build chopsticks asks for next, which then takes it as it is (same head, this extrinsic alone).
   * true when every inherent and the extrinsic applied: the extrinsic is valid on the head, which is what the pool's
   * validate_transaction call would have said, so the two runtime tasks of a transaction (validate, then build) become
   * one. false when it did not apply or the block cannot be built so: the caller validates as usual.
   */
  ahead(extrinsic: HexString): Promise<boolean>;
  /** Puts chopsticks' own builder back, after the block being built, if any. */
  dispose(): Promise<void>;
}

const SYSTEM_EVENTS = u8aToHex(u8aConcat(xxhashAsU8a('System', 128), xxhashAsU8a('Events', 128)));

/** Why a block goes to chopsticks' builder, or null when the one-task path can build it. */
async function unsupported(chain: Blockchain, params: BuildBlockParams): Promise<string | null> {
  // On block 1 chopsticks writes System.ParentHash after initialize: the hash of the genesis header as its registry
  // encodes it, where the runtime wrote the header's parent, the genesis block's hash. With chopsticks' own genesis
  // provider they differ (it reports a constant hash); with devchain/genesis.ts's real hash the write changes nothing.
  if (chain.head.number === 0 && (await chain.head.header).hash.toHex() !== chain.head.hash)
    return "block 1 on a genesis whose hash is not its header's (chopsticks rewrites System.ParentHash)";
  if (params.unsafeBlockHeight !== undefined) return 'unsafeBlockHeight';
  if (params.relayParentNumber !== undefined) return 'relayParentNumber';
  if ((params.relayChainStateOverrides?.length ?? 0) > 0) return 'relay chain state overrides';
  if (Object.values(params.upwardMessages ?? {}).some((m) => m.length > 0)) return 'upward messages';
  if ((params.downwardMessages?.length ?? 0) > 0) return 'downward messages';
  if (Object.values(params.horizontalMessages ?? {}).some((m) => m.length > 0)) return 'horizontal messages';
  return null;
}

/**
 * Replaces `chain.txPool.buildBlockWithParams`, the method every block path ends in (instant and batch mode,
 * `chain.newBlock`, `dev_newBlock`, fedtune's timers). chopsticks' builder makes one runtime task per call, and its
 * executor instantiates the whole runtime for every task (about 80 ms here, against a few ms for a small call); a
 * task may carry several calls that share their storage changes, so one task builds the block.
 *
 * The one-task block is kept only when every inherent and extrinsic applied (one System.ExtrinsicSuccess or
 * ExtrinsicFailed per index in the block's events): an `apply_extrinsic` that returns an error is not promised to leave
 * storage untouched, and chopsticks drops such an extrinsic and reports it to its submitter. Otherwise, and when the
 * task fails, the block is built again by chopsticks' own builder from the same parent.
 */
export function installOneTaskBuilder(
  core: ChopsticksCore,
  chain: Blockchain,
  inherentProviders: InherentProvider[],
  logger: Logger,
): OneTaskBuilder {
  const txPool = chain.txPool;
  const chopsticksBuild = txPool.buildBlockWithParams.bind(txPool);
  const counts: BlockBuildStats = { oneTask: 0, fallback: 0, ahead: 0 };
  let queue: Promise<unknown> = Promise.resolve();
  /** Builds asked for and not yet done. */
  let building = 0;
  /** The block built ahead for one extrinsic on a head, until the next build asks for it or not. */
  let kept: { head: string; extrinsic: HexString; block: InstanceType<typeof core.Block> } | null = null;

  const fallback = async (params: BuildBlockParams, reason: string): Promise<void> => {
    counts.fallback++;
    logger.debug(
      { reason, transactions: params.transactions.length },
      'block built by chopsticks, a task a call',
    );
    await chopsticksBuild(params);
  };

  /** The block built in one task, or why not. */
  const oneTask = async (params: BuildBlockParams): Promise<InstanceType<typeof core.Block> | string> => {
    const head = chain.head;
    const registry = await head.registry;
    const header = await core.newHeader(head);
    // The inherent providers read the parent (its state, extrinsics and header); the block is only their handle to it.
    const draftHash: HexString = `0x${Math.round(Math.random() * 1e8)
      .toString(16)
      .padEnd(64, '0')}`;
    const newBlock = new core.Block(chain, header.number.toNumber(), draftHash, head, {
      header,
      extrinsics: [],
      // Its own base layer keeps what the task reads (chopsticks caches each read in the top layer) off the parent.
      storage: new core.StorageLayer(head.storage),
    });
    const calls: [string, HexString[]][] = [['Core_initialize_block', [header.toHex()]]];
    const inherents: HexString[] = [];
    for (const provider of inherentProviders) {
      const extrinsics = (await provider.createInherents(newBlock, params)) as HexString[];
      if (extrinsics.length === 0) continue;
      // chopsticks passes a provider's inherents as one call's arguments, which the runtime reads as the first only.
      if (extrinsics.length > 1) return 'an inherent provider gave several extrinsics';
      calls.push(['BlockBuilder_apply_extrinsic', extrinsics]);
      inherents.push(...extrinsics);
    }
    // chopsticks applies such storage writes after initialize; in one task they would come before it.
    if (newBlock.storageLayerCount > 0) return 'an inherent provider wrote storage';
    for (const extrinsic of params.transactions) calls.push(['BlockBuilder_apply_extrinsic', [extrinsic]]);
    calls.push(['BlockBuilder_finalize_block', []]);

    const response = await core.runTask(
      {
        wasm: await head.wasm,
        calls,
        mockSignatureHost: chain.mockSignatureHost,
        allowUnresolvedImports: chain.allowUnresolvedImports,
        runtimeLogLevel: chain.runtimeLogLevel,
      },
      core.taskHandler(newBlock),
    );
    if (!('Call' in response)) return `the task failed: ${response.Error}`;
    const diff = new Map(response.Call.storageDiff);

    const applied = inherents.length + params.transactions.length;
    const eventsValue = diff.get(SYSTEM_EVENTS);
    if (applied > 0) {
      if (!eventsValue) return 'no System.Events in the block';
      const perIndex = new Array<number>(applied).fill(0);
      for (const { phase, event } of registry.createType<Vec<EventRecord>>('Vec<EventRecord>', eventsValue)) {
        if (event.section !== 'system' || !['ExtrinsicSuccess', 'ExtrinsicFailed'].includes(event.method))
          continue;
        if (!phase.isApplyExtrinsic) return 'an extrinsic outcome outside ApplyExtrinsic';
        const index = phase.asApplyExtrinsic.toNumber();
        if (index >= applied) return `an outcome for extrinsic ${index} of ${applied}`;
        perIndex[index]!++;
      }
      const missing = perIndex.findIndex((n) => n !== 1);
      if (missing >= 0) return `extrinsic ${missing} of ${applied} did not apply`;
    }
    if (chain.offchainWorker) {
      for (const [key, value] of response.Call.offchainStorageDiff) chain.offchainWorker.set(key, value);
    }

    // As chopsticks' buildBlock makes it: the header with a mock extrinsics root, the storage diff on the parent.
    newBlock.pushStorageLayer().setAll(response.Call.storageDiff);
    const extrinsics = [...inherents, ...params.transactions];
    const finalHeader = registry.createType<Header>('Header', {
      ...header.toJSON(),
      extrinsicsRoot: blake2AsU8a(u8aConcat(...extrinsics), 256),
    });
    return new core.Block(chain, newBlock.number, finalHeader.hash.toHex(), head, {
      header: finalHeader,
      extrinsics,
      storage: head.storage,
      storageDiff: await newBlock.storageDiff(),
    });
  };

  /** oneTask, with a task that throws as one more reason not to keep its block. */
  const attempt = (params: BuildBlockParams): ReturnType<typeof oneTask> =>
    oneTask(params).catch((error: unknown) => `the task threw: ${(error as Error).message}`);

  const build = async (params: BuildBlockParams): Promise<void> => {
    await chain.api.isReady;
    const reason = await unsupported(chain, params);
    if (reason) return fallback(params, reason);
    const ready = kept;
    kept = null;
    const taken =
      ready !== null &&
      ready.head === chain.head.hash &&
      params.transactions.length === 1 &&
      params.transactions[0] === ready.extrinsic;
    if (taken) counts.ahead++;
    const block = taken ? ready.block : await attempt(params);
    if (typeof block === 'string') return fallback(params, block);
    counts.oneTask++;
    logger.debug(
      { number: block.number, hash: block.hash, transactions: params.transactions.length },
      'block built in one runtime task',
    );
    // What chopsticks' pool does with a built block; devnet's onNewBlock saves it, then makes it the head.
    await chain.onNewBlock(block);
  };

  // One build at a time, in the order asked, as chopsticks' own queue does. `txPool.upcomingBlocks()` still counts
  // only chopsticks' queue: its builder awaits that method, so it cannot wait on this queue (nothing here calls it).
  txPool.buildBlockWithParams = (params: BuildBlockParams) => {
    building++;
    const built = queue.then(() => build(params)).finally(() => building--);
    queue = built.catch(() => undefined);
    return built;
  };

  /** A block is being built ahead: two at once would be on the same head, and the next build would take neither. */
  let buildingAhead = false;
  const buildAhead = async (extrinsic: HexString): Promise<boolean> => {
    const params: BuildBlockParams = {
      transactions: [extrinsic],
      downwardMessages: [],
      upwardMessages: {},
      horizontalMessages: {},
    };
    await chain.api.isReady;
    if ((await unsupported(chain, params)) !== null) return false;
    const head = chain.head.hash;
    const block = await attempt(params);
    if (typeof block === 'string' || chain.head.hash !== head) {
      const reason = typeof block === 'string' ? block : 'the head moved meanwhile';
      logger.debug({ reason }, 'no block built ahead: the transaction is validated instead');
      return false;
    }
    kept = { head, extrinsic, block };
    return true;
  };

  return {
    stats: () => ({ ...counts }),
    async ahead(extrinsic) {
      if (
        txPool.mode !== core.BuildBlockMode.Instant ||
        building > 0 ||
        buildingAhead ||
        txPool.pendingExtrinsics.length > 0
      )
        return false;
      buildingAhead = true;
      try {
        return await buildAhead(extrinsic);
      } finally {
        buildingAhead = false;
      }
    },
    async dispose() {
      await queue;
      Reflect.deleteProperty(txPool, 'buildBlockWithParams');
    },
  };
}
